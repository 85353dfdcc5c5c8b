"""Plumbing shared by the CLI commands: output formats, model selection, consoles, error reporting."""

from __future__ import annotations

import csv
import io
import json
import math
import sys
from typing import Any, Callable, Sequence

import click

from mobileone_bench._args import INPUT_SIZE_MAX, INPUT_SIZE_MIN, SELECTION_LIMIT
from mobileone_bench.errors import UsageError

__all__ = [
    "stdout",
    "format_option",
    "models_argument",
    "zoo_option",
    "input_size_option",
    "weights_option",
    "yes_option",
    "emit",
    "render_table",
    "warn",
    "fmt_num",
    "FiniteFloat",
]

_CONSOLES: dict[str, Any] = {}
_UNWRAPPED_WIDTH = 4000


def stdout() -> Any:
    """The rich console for results (stdout)."""
    from rich.console import Console

    if "out" not in _CONSOLES or _CONSOLES["out"].file is not sys.stdout:
        # A table piped into a file or pasted into a paper, or read by a script, must not wrap at any width: off a
        # terminal, lines are never wrapped and tables get all the room they need (rich pads nothing).
        tty = sys.stdout.isatty()
        _CONSOLES["out"] = Console(file=sys.stdout, width=None if tty else _UNWRAPPED_WIDTH, soft_wrap=not tty)
    return _CONSOLES["out"]


def warn(message: str) -> None:
    """One warning line on stderr."""
    click.echo(f"warning: {message}", err=True)


def format_option(choices: Sequence[str] = ("table", "json"), default: str = "table") -> Callable[[Any], Any]:
    return click.option("--format", "fmt", type=click.Choice(list(choices), case_sensitive=False), default=default,
                        show_default=True, help="Output format: a table for people, json/csv for scripts.")


def models_argument(required: bool = False) -> Callable[[Any], Any]:
    return click.argument("models", nargs=-1, required=required, metavar="MODEL...")


def zoo_option() -> Callable[[Any], Any]:
    return click.option("--zoo", default=None, metavar="NAME",
                        help="A named zoo (paper-table9, paper-table13, paper-table14, mobileone, quick...).")


class FiniteFloat(click.FloatRange):
    """A float in a range that also refuses ``nan`` and ``inf`` (click's FloatRange lets ``nan`` through)."""

    name = "finite float"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not a finite number", param, ctx)
        return number


def _parse_size(ctx: click.Context, param: click.Parameter, value: tuple[int, ...] | None) -> tuple[int, int] | None:
    if not value:
        return None
    h, w = value
    if not (INPUT_SIZE_MIN <= h <= INPUT_SIZE_MAX and INPUT_SIZE_MIN <= w <= INPUT_SIZE_MAX):
        raise click.BadParameter(f"{h}x{w} is out of range ({INPUT_SIZE_MIN}..{INPUT_SIZE_MAX})")
    return (h, w)


def input_size_option() -> Callable[[Any], Any]:
    return click.option("--input-size", nargs=2, type=int, default=None, metavar="H W", callback=_parse_size,
                        help="Input height and width instead of each model's default.")


def _check_weights(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """Read the checkpoint once while the arguments are parsed, so a bad file is one line before any work."""
    if value is None:
        return None
    from mobileone_bench.models.checkpoints import read_state_dict
    from mobileone_bench.errors import CheckpointError

    try:
        read_state_dict(value)
    except CheckpointError as exc:
        raise UsageError(f"--weights: {exc}") from exc
    return value


def weights_option() -> Callable[[Any], Any]:
    return click.option("--weights", type=str, default=None, metavar="FILE", callback=_check_weights,
                        help="Local .pth/.pt/.pth.tar/.safetensors checkpoint (read with weights_only=True, never "
                             "downloaded). Random weights otherwise.")


def yes_option() -> Callable[[Any], Any]:
    """``--yes``: go ahead when a wildcard or zoo selects more models than a screenful (the API's ``yes=True``)."""
    return click.option("--yes", "-y", "yes", is_flag=True,
                        help=f"Go ahead when a wildcard or zoo selects more than {SELECTION_LIMIT} models "
                             f"('timm:*' selects over a thousand); without it such a selection shows the count and "
                             f"stops before anything is built.")


def fmt_num(value: Any, digits: int = 2) -> str:
    """A number for a table: '-' for missing, like the paper."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_table(rows: list[dict[str, Any]], columns: list[tuple[str, str]], title: str | None = None,
                 digits: dict[str, int] | None = None) -> Any:
    """A rich Table from rows; ``columns`` are (key, header) pairs."""
    from rich.table import Table

    digits = digits or {}
    table = Table(title=title, show_lines=False, header_style="bold")
    for key, header in columns:
        numeric = any(isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool) for r in rows)
        table.add_column(header, justify="right" if numeric else "left", overflow="fold")
    for r in rows:
        table.add_row(*[fmt_num(r.get(k), digits.get(k, 2)) for k, _ in columns])
    return table


def emit(rows: list[dict[str, Any]], fmt: str, columns: list[tuple[str, str]], title: str | None = None,
         digits: dict[str, int] | None = None) -> None:
    """Print rows as a rich table, JSON (a list of objects) or CSV on stdout."""
    fmt = fmt.lower()
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, default=_json_default))
    elif fmt == "csv":
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=[k for k, _ in columns], extrasaction="ignore")
        writer.writeheader()
        for r in rows:
            writer.writerow({k: _csv_cell(r.get(k)) for k, _ in columns})
        click.echo(buf.getvalue(), nl=False)
    else:
        stdout().print(render_table(rows, columns, title, digits))


def _csv_cell(v: Any) -> Any:
    if isinstance(v, (list, tuple)):
        return " ".join(str(x) for x in v)
    return "" if v is None else v


def _json_default(o: Any) -> Any:
    if isinstance(o, (set, tuple)):
        return list(o)
    if hasattr(o, "as_dict"):
        return o.as_dict()
    return str(o)
