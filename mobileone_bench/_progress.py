"""Progress bars for the API and the CLI: rich's, on stderr in a terminal and as a widget in a notebook, or nothing.

A bar is a context manager that yields a ``step(status, advance=0)`` callback, so library code reports progress
without knowing whether anybody is watching (``progress=False`` gives a callback that does nothing).
"""

from __future__ import annotations

import contextlib
import sys
from typing import Any, Callable, Iterator

__all__ = ["Step", "bar", "console"]

Step = Callable[..., None]
_CONSOLE: dict[str, Any] = {}


def console() -> Any:
    """The rich console for progress and messages: stderr, so stdout stays clean for ``--format json``."""
    from rich.console import Console

    if "err" not in _CONSOLE or _CONSOLE["err"].file is not sys.stderr:
        _CONSOLE["err"] = Console(file=sys.stderr)
    return _CONSOLE["err"]


def _nothing(status: str = "", advance: int = 0) -> None:
    return None


@contextlib.contextmanager
def bar(enabled: bool, total: int, title: str) -> Iterator[Step]:
    """A progress bar of ``total`` steps; yields ``step(status, advance=0)``. Completed when the block ends normally.

    Args:
        enabled: ``False``: no bar, the callback does nothing.
        total: Number of steps (timed blocks, models...).
        title: The bar's label.
    """
    if not enabled:
        yield _nothing
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    out = console()
    with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TextColumn("{task.fields[status]}"), TimeElapsedColumn(), console=out,
                  transient=not (out.is_terminal or out.is_jupyter)) as progress:
        task = progress.add_task(title, total=total, status="")

        def step(status: str = "", advance: int = 0) -> None:
            progress.update(task, status=status, advance=advance)

        yield step
        progress.update(task, completed=total, status="done")
