"""The ``mobileone-bench`` command: a thin click adapter over the Python API.

Every command turns the library's typed errors into one line on stderr and a non-zero exit status; ``--debug``
(or ``MOBILEONE_BENCH_DEBUG=1``) shows the full traceback instead.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from typing import Any, Iterator

import click

from mobileone_bench._version import __version__
from mobileone_bench.errors import BenchError, one_line

__all__ = ["main", "cli"]

_HELP = """Which backbone is fastest on my target, and do FLOPs or parameter counts predict that?

\b
The MobileOne paper's study, for any backbone:
  list       models and zoos the tool knows (own, timm:<name>, torchvision:<name>, paper row names)
  profile    params and FLOPs of the inference-time (re-parameterized) model
  reparam    re-parameterize a model and check it still computes the same thing
  export     ONNX, Core ML, TensorRT, ExecuTorch artifacts with parity checks (models/)
  latency    latency on cpu, gpu, iphone or mac, with full statistics        (results/)
  correlate  Spearman rank correlation of latency vs FLOPs and params (Table 1)
  table      the paper's Table 9 / Table 14 filled with your measurements
  plot       Figure 1 (top-1 vs latency) and Figure 2 (latency vs FLOPs/params)
  roofline   achieved GFLOP/s and fraction of this CPU's peak: compute- or overhead-bound?
  explain    where the time goes: each operator's time, category and FLOPs (the runtime's profiler)
  evaluate   top-1 / top-5 of the model and of each artifact on your own labelled images
  report     the whole study as one HTML file that works offline (tables, figures, distributions)
  merge      copy results folders from other hosts into one (each record once, nothing overwritten)
  export-results  the store as CSV, Parquet or PyTorch OSS benchmark JSON, for dashboards
  run        the whole pipeline over a zoo: profile + export + latency + table
  ablate     the Section 3.2 bottleneck studies (Tables 2 and 3)

\b
Start with:  mobileone-bench run            (the default 'quick' zoo, on this CPU)
Then:        mobileone-bench list --zoo paper-table9
"""


def _debug_requested(ctx: click.Context | None) -> bool:
    if os.environ.get("MOBILEONE_BENCH_DEBUG", "").strip() not in ("", "0"):
        return True
    while ctx is not None:
        if ctx.params.get("debug"):
            return True
        ctx = ctx.parent
    return False


# click >= 8.2 raises this for a bare group invocation; older versions print the help themselves
_NO_ARGS_IS_HELP: Any = getattr(click.exceptions, "NoArgsIsHelpError", ())


class _Group(click.Group):
    """Turns expected errors into one line, unexpected ones into one line plus a hint, unless debugging.

    click's own usage errors (a bad option value, an unknown option, a missing argument) are one line too, with the
    command's ``--help`` as the hint, instead of click's usage block.
    """

    def main(self, args: Any = None, prog_name: str | None = None, complete_var: str | None = None,
             standalone_mode: bool = True, **extra: Any) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, standalone_mode, **extra)
        from mobileone_bench._interrupt import handling

        try:
            argv = list(args) if args is not None else sys.argv[1:]
            with _clean_warnings(debug="--debug" in argv), handling():
                rv = super().main(args, prog_name, complete_var, False, **extra)
        except _NO_ARGS_IS_HELP as exc:  # bare `mobileone-bench`: the help, as click shows it
            click.echo(exc.format_message(), err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.UsageError as exc:
            where = exc.ctx.command_path if exc.ctx is not None else (prog_name or "mobileone-bench")
            click.echo(f"Error: {exc.format_message()} (see '{where} --help')", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.ClickException as exc:
            click.echo(f"Error: {exc.format_message()}", err=True)
            sys.exit(exc.exit_code)
        except click.exceptions.Abort:
            click.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: click.Context) -> Any:
        from mobileone_bench._interrupt import check
        from mobileone_bench.store.records import SAVED

        saved_before = len(SAVED)
        try:
            rv = super().invoke(ctx)
            check()  # a signal held while an error went up is not lost
            return rv
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BenchError as exc:
            if _debug_requested(ctx):
                raise
            click.echo(f"Error: {_one_line(exc)}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt as exc:
            from mobileone_bench._interrupt import exit_status

            click.echo(_interrupted_line(exc, saved_before), err=True)
            sys.exit(exit_status(exc))
        except Exception as exc:  # noqa: BLE001 - last line of defence: never a bare traceback
            if _debug_requested(ctx):
                raise
            click.echo(f"Error: unexpected {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the "
                       f"traceback, and please report it)", err=True)
            sys.exit(1)


@contextlib.contextmanager
def _clean_warnings(debug: bool = False) -> Iterator[None]:
    """Python warnings (the library's and its dependencies') as one ``warning: ...`` line each on stderr, once per
    message, instead of a source path, a line number and the offending line (``--debug`` keeps Python's format)."""
    if debug or os.environ.get("MOBILEONE_BENCH_DEBUG", "").strip() not in ("", "0"):
        yield
        return
    seen: set[str] = set()

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        text = str(message).strip()
        text = text.splitlines()[0] if text else category.__name__
        if text not in seen:
            seen.add(text)
            click.echo(f"warning: {text}", err=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _interrupted_line(exc: BaseException, saved_before: int) -> str:
    """One line: which signal stopped the run, what this run stored, and how to go on."""
    from mobileone_bench._interrupt import signal_name
    from mobileone_bench.store.records import SAVED

    saved = SAVED[saved_before:]
    what = signal_name(getattr(exc, "signum", None))
    parts = []
    for kind in ("profile", "latency"):
        mine = [r for r in saved if r.get("kind") == kind]
        if not mine:
            continue
        broken = sum(1 for r in mine if r.get("status") == "interrupted")
        text = f"{len(mine)} {kind} record{'s' if len(mine) != 1 else ''}"
        if broken:
            text += f" ({broken} interrupted, with the samples of their finished rounds)"
        parts.append(text)
    others = [r for r in saved if r.get("kind") not in ("profile", "latency")]
    if others:
        parts.append(f"{len(others)} other record{'s' if len(others) != 1 else ''}")
    stored = ("stored " + ", ".join(parts)) if parts else "nothing new was stored in this run"
    return (f"Interrupted ({what}): {stored}; what was not finished is not stored (finished rounds are kept in the "
            f"store's journal). Run the same command again to go on: stored steps are reused.")


def _one_line(exc: BaseException) -> str:
    """The terminal's error line: the message's first line, as written (no type name), at most 2000 characters."""
    return one_line(exc, limit=2000, typed=False, first_line=True)


@click.group(cls=_Group, help=_HELP, context_settings={"help_option_names": ["-h", "--help"],
                                                        "max_content_width": 110})
@click.version_option(__version__, "--version", prog_name="mobileone-bench")
@click.option("--debug", is_flag=True, help="Show full tracebacks instead of one-line errors.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


def _register_commands() -> None:
    from mobileone_bench.cli import commands

    for command in commands.ALL:
        cli.add_command(command)


_register_commands()


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="mobileone-bench")
