"""Typed errors of the library.

The library raises these; the CLI turns each into one line on stderr and a non-zero exit status (the full
traceback only with ``--debug``). Anything else that escapes is a bug and is reported as such.
"""

from __future__ import annotations

__all__ = [
    "one_line",
    "BenchError",
    "BenchWarning",
    "UsageError",
    "UnknownModelError",
    "ModelUnavailableError",
    "MissingDependencyError",
    "require_modules",
    "CheckpointError",
    "ReparamMismatchError",
    "ExportError",
    "ParityError",
    "DeviceUnavailableError",
    "MeasurementError",
    "RecordsError",
    "ReportError",
    "AnalysisError",
]


class BenchError(Exception):
    """Base class of every error the tool expects and explains to the user."""

    exit_code = 1


class UsageError(BenchError):
    """A bad argument value or combination (the CLI exits with status 2, as click does)."""

    exit_code = 2


class UnknownModelError(UsageError):
    """A model name that no registry, alias or outside zoo knows."""

    def __init__(self, name: str, suggestions: list[str] | None = None):
        self.name = name
        self.suggestions = list(suggestions or [])
        hint = f"; did you mean {', '.join(self.suggestions)}?" if self.suggestions else ""
        super().__init__(f"unknown model {name!r}{hint} (`mobileone-bench list` shows every name)")


class ModelUnavailableError(BenchError):
    """A model the tool knows by name (e.g. a paper row) but cannot build, with the reason."""


class MissingDependencyError(BenchError):
    """An optional dependency or a platform tool is missing; the message names how to get it."""

    def __init__(self, what: str, hint: str):
        self.what = what
        self.hint = hint
        super().__init__(f"{what} is not available: {hint}")


def require_modules(modules: tuple[str, ...] | list[str], what: str, hint: str) -> None:
    """Raise :class:`MissingDependencyError` if one of ``modules`` cannot be imported (checked without importing)."""
    import importlib.util

    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingDependencyError(f"{what} (Python module '{module}')", hint)


class CheckpointError(BenchError):
    """A weights file that cannot be read or does not fit the model."""


class ReparamMismatchError(BenchError):
    """The re-parameterized model does not compute what the train-time model computes."""

    def __init__(self, message: str, max_abs_err: float, max_rel_err: float):
        self.max_abs_err = max_abs_err
        self.max_rel_err = max_rel_err
        super().__init__(message)


class ExportError(BenchError):
    """An export to some format failed."""


class ParityError(ExportError):
    """An exported artifact's outputs differ from PyTorch's beyond tolerance."""


class DeviceUnavailableError(BenchError):
    """The requested device (GPU, iPhone, Mac) is not present or not usable here."""


class MeasurementError(BenchError):
    """A latency measurement could not be taken."""


class RecordsError(BenchError):
    """The results store cannot be read or written."""


class ReportError(BenchError):
    """A benchmark report (e.g. from the iPhone harness) is malformed."""


class AnalysisError(BenchError):
    """An analysis cannot be computed from the records at hand (too few points, constant columns...)."""


class BenchWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI shows it as one ``warning:`` line)."""


def one_line(exc: BaseException, *, limit: int = 500, typed: bool | None = None, first_line: bool = False) -> str:
    """An exception as one line for a record, a table cell or the terminal: the one helper for it.

    Args:
        exc: The exception.
        limit: Longest text kept (cut with an ellipsis).
        typed: Prefix the exception's type name (``ValueError: ...``); ``None``: unless it is one of the tool's own
            errors (whose messages are written for people).
        first_line: Keep only the first line (the terminal's one-line error) instead of joining the lines.
    """
    text = str(exc).strip()
    text = (text.splitlines()[0] if text else "") if first_line else " ".join(text.split())
    if typed is None:
        typed = not isinstance(exc, BenchError)
    if typed:
        text = f"{type(exc).__name__}: {text}" if text else type(exc).__name__
    text = text or type(exc).__name__
    return text if len(text) <= limit else text[: max(limit - 3, 0)] + "..."
