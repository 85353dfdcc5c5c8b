"""The tool's arguments, in one place: their rules (the Python API checks its arguments with them, and the CLI's
click types say the same thing: ``tests/test_api_args.py`` compares the two, option by option), and what they become
for the pipeline: the models selected (:func:`select`) and the :class:`~mobileone_bench.pipeline.LatencyJob` built
once from the measurement options (:func:`latency_job`, whose keywords are the one list of them).

A rule is found by the parameter's name (``runs``, ``input_size``, ``results``...), so every function with a
``runs`` argument applies the same rule; a function whose argument of that name means something else passes its
own rule (:func:`check`'s keywords). A bad value is a :class:`~mobileone_bench.errors.UsageError` whose one line
names the argument, what it must be and what it was (``runs must be an integer >= 1 or None, not 2.5``), raised
before anything is built, exported or timed. Only types and ranges are checked here; which values a name may take
(a device, a runtime, a format...) is checked, with the choices in the message, where that name is looked up.
"""

from __future__ import annotations

import inspect
import math
import os
import warnings
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from mobileone_bench.errors import BenchWarning, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline import LatencyJob

__all__ = [
    "Rule",
    "Integer",
    "Real",
    "Flag",
    "Text",
    "Names",
    "PathArg",
    "Folders",
    "Files",
    "Function",
    "ModelName",
    "InputSize",
    "RULES",
    "ONE_FOLDER",
    "INPUT_SIZE_MIN",
    "INPUT_SIZE_MAX",
    "SELECTION_LIMIT",
    "check",
    "confirm_selection",
    "warn_threads",
    "as_names",
    "select",
    "latency_job",
    "job",
    "job_options",
    "DEFAULT_RESULTS",
    "DEFAULT_MODELS_DIR",
]

DEFAULT_RESULTS = "results"
DEFAULT_MODELS_DIR = "models"

#: The input sizes (each side, in pixels) every command accepts: ``--input-size H W`` and ``input_size=(H, W)``.
INPUT_SIZE_MIN = 8
INPUT_SIZE_MAX = 4096

#: A wildcard or zoo that selects more models than this needs ``--yes`` (``yes=True``) before anything is built.
#: 50 is a screenful of a terminal's lines, and above every selection of the tool's own: the largest zoo
#: (paper-table9) has 30 models and ``'*'`` over the tool's own names 50, while a whole outside library
#: (``'timm:*'``: 1,371 in timm 1.0; ``'torchvision:*'``: 80) or a broad family of it (``'timm:vit_*'``: 214,
#: ``'timm:resnet*'``: 75) is an hours-long sweep that is more often a slip of the keyboard than a plan.
SELECTION_LIMIT = 50

_MAX_SHOWN = 60


def _shown(value: Any) -> str:
    """The value as the message shows it: its repr on one short line, or its type."""
    if isinstance(value, bool):
        return f"{value} (a bool)"
    try:
        text = repr(value)
    except Exception:  # noqa: BLE001 - a broken __repr__ must not hide the real message
        text = ""
    if not text or "\n" in text or len(text) > _MAX_SHOWN:
        return f"a {type(value).__module__}.{type(value).__qualname__}".replace("a builtins.", "a ")
    return text


def _fail(name: str, what: str, value: Any) -> None:
    raise UsageError(f"{name} must be {what}, not {_shown(value)}")


class Rule(Protocol):
    """What every rule is: a callable that raises :class:`UsageError` for a bad value of argument ``name``."""

    def __call__(self, name: str, value: Any) -> None: ...  # pragma: no cover - a protocol


def _or_none(text: str, optional: bool) -> str:
    return f"{text} or None" if optional else text


@dataclass(frozen=True)
class Integer:
    """An ``int`` (never a ``bool``) within ``[min, max]``, as click's ``IntRange``."""

    min: int | None = None
    max: int | None = None
    optional: bool = True

    def describe(self) -> str:
        if self.min is not None and self.max is not None:
            bound = f" from {self.min} to {self.max}"
        elif self.min is not None:
            bound = f" >= {self.min}"
        else:
            bound = f" <= {self.max}" if self.max is not None else ""
        return _or_none(f"an integer{bound}", self.optional)

    def __call__(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if (isinstance(value, bool) or not isinstance(value, int) or (self.min is not None and value < self.min)
                or (self.max is not None and value > self.max)):
            _fail(name, self.describe(), value)


@dataclass(frozen=True)
class Real:
    """A number (``int`` or ``float``, never a ``bool`` or ``nan``) within its bounds, as click's ``FloatRange``;
    ``finite`` refuses infinities too (the CLI's ``FiniteFloat``)."""

    min: float | None = None
    max: float | None = None
    min_open: bool = False
    finite: bool = True
    optional: bool = True

    def describe(self) -> str:
        bound = ""
        if self.min is not None:
            bound = f" {'>' if self.min_open else '>='} {self.min:g}"
        if self.max is not None:
            bound += f"{' and' if bound else ''} <= {self.max:g}"
        return _or_none(f"a {'finite ' if self.finite else ''}number{bound}", self.optional)

    def __call__(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            _fail(name, self.describe(), value)
        number = float(value)
        if (math.isnan(number) or (self.finite and math.isinf(number))
                or (self.min is not None and (number <= self.min if self.min_open else number < self.min))
                or (self.max is not None and number > self.max)):
            _fail(name, self.describe(), value)


@dataclass(frozen=True)
class Flag:
    """``True`` or ``False`` (``None`` too when optional): a switch is not a number or a string."""

    optional: bool = False

    def __call__(self, name: str, value: Any) -> None:
        if not isinstance(value, bool) and not (value is None and self.optional):
            _fail(name, "True, False or None" if self.optional else "True or False", value)


@dataclass(frozen=True)
class Text:
    """A string, one of ``choices`` when given."""

    optional: bool = True
    choices: tuple[str, ...] = ()

    def __call__(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if self.choices and value not in self.choices:
            _fail(name, _or_none(f"one of {', '.join(map(repr, self.choices))}", self.optional), value)
        if not isinstance(value, str):
            _fail(name, _or_none("a string", self.optional), value)


@dataclass(frozen=True)
class Names:
    """A name, or a list (tuple, set...) of names: ``"mobileone*"``, ``["mobileone_s0", "deit-tiny"]``."""

    optional: bool = True

    def __call__(self, name: str, value: Any) -> None:
        if isinstance(value, str) or (value is None and self.optional):
            return
        what = _or_none("a string or a list of strings", self.optional)
        if isinstance(value, (bytes, Mapping)) or not hasattr(value, "__iter__"):
            _fail(name, what, value)
        if isinstance(value, Collection):  # a generator is not looked into: that would use it up
            for item in value:
                if not isinstance(item, str):
                    raise UsageError(f"{name} must be {what}, not a list holding {_shown(item)}")


def _is_path(value: Any) -> bool:
    return (isinstance(value, str) and value.strip() != "") or isinstance(value, os.PathLike)


@dataclass(frozen=True)
class PathArg:
    """A file or folder: a non-empty ``str`` or a ``pathlib.Path`` (an ``int`` is not a file descriptor here)."""

    optional: bool = True
    what: str = "a path"

    def __call__(self, name: str, value: Any) -> None:
        if value is None and self.optional:
            return
        if not _is_path(value):
            _fail(name, _or_none(f"{self.what} (a str or pathlib.Path)", self.optional), value)


@dataclass(frozen=True)
class Folders:
    """One folder, or a non-empty list of folders (read as one, or merged)."""

    def __call__(self, name: str, value: Any) -> None:
        what = "a folder (a str or pathlib.Path) or a list of folders"
        if _is_path(value):
            return
        if not isinstance(value, (list, tuple)):
            _fail(name, what, value)
        if not value:
            raise UsageError(f"{name} must be {what}, not an empty list")
        for item in value:
            if not _is_path(item):
                raise UsageError(f"{name} must be {what}, not a list holding {_shown(item)}")


@dataclass(frozen=True)
class Files:
    """A list of files (possibly empty); a bare string is refused, since it would be read as a list of letters."""

    def __call__(self, name: str, value: Any) -> None:
        what = "a list of files (each a str or pathlib.Path)"
        if isinstance(value, (str, os.PathLike)):
            raise UsageError(f"{name} must be {what}, not one {type(value).__name__}: write [{value!r}]")
        if not isinstance(value, (list, tuple)):
            _fail(name, what, value)
        for item in value:
            if not _is_path(item):
                raise UsageError(f"{name} must be {what}, not a list holding {_shown(item)}")


@dataclass(frozen=True)
class Function:
    """A callable, or ``None``."""

    def __call__(self, name: str, value: Any) -> None:
        if value is not None and not callable(value):
            _fail(name, "a function or None", value)


@dataclass(frozen=True)
class ModelName:
    """A model's name (``"mobileone_s0"``, ``"timm:resnet18"``) or its registry spec."""

    def __call__(self, name: str, value: Any) -> None:
        if isinstance(value, str):
            return
        from mobileone_bench.models.registry import ModelSpec

        if not isinstance(value, ModelSpec):
            _fail(name, "a model name (a string such as 'mobileone_s0')", value)


@dataclass(frozen=True)
class InputSize:
    """``(height, width)``: two integers from :data:`INPUT_SIZE_MIN` to :data:`INPUT_SIZE_MAX` (``--input-size H W``),
    or ``None`` for each model's default."""

    min: int = INPUT_SIZE_MIN
    max: int = INPUT_SIZE_MAX

    def __call__(self, name: str, value: Any) -> None:
        if value is None:
            return
        what = f"(height, width), two integers from {self.min} to {self.max}, or None"
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            _fail(name, what, value)
        for side in value:
            if isinstance(side, bool) or not isinstance(side, int) or not self.min <= side <= self.max:
                _fail(name, what, value)


_FLAGS = ("force", "check", "reparameterize", "progress", "as_frame", "dry_run", "latest", "compare", "all_rows",
          "include_contended", "ci", "remeasure", "remeasure_flagged", "sequential", "dynamic_batch", "cuda_graphs",
          "tf32", "yes")
_NAMES = ("models", "exclude", "devices", "figures", "formats", "kinds", "runtimes", "against", "on", "destination")
_TEXTS = ("pattern", "zoo", "runtime", "precision", "report", "protocol", "reference", "team", "bundle_id", "cluster",
          "deployment_target")
_REQUIRED_TEXTS = ("device", "ort_opt", "compute_units", "coreml_type", "coreml_input", "layout", "study", "format")

#: The rule of every argument of the public functions, by name. The numbers are the CLI's: ``--runs`` is
#: ``IntRange(min=1)``, ``--atol`` ``FiniteFloat(min=0)``... (a test compares each option with its rule here).
RULES: dict[str, Rule] = {
    "warmup": Integer(min=0),
    "runs": Integer(min=1),
    "profiled_runs": Integer(min=1, optional=False),
    "top": Integer(min=0, optional=False),
    "threads": Integer(min=1),
    "rounds": Integer(min=1),
    "seed": Integer(min=0, optional=False),
    "max_extra_rounds": Integer(min=0),
    "retries": Integer(min=0, optional=False),
    "opset": Integer(min=7, optional=False),
    "trt_workspace_mb": Integer(min=1, optional=False),
    "calibration_samples": Integer(min=1, optional=False),
    "limit": Integer(min=1),
    "extra_time": Real(min=0, finite=False),
    "memory_budget": Real(min=0, finite=False),
    "wait_quiet": Real(min=0, finite=False),
    "atol": Real(min=0, optional=False),
    "rtol": Real(min=0, optional=False),
    "peak_gflops": Real(min=0, min_open=True),
    "input_size": InputSize(),
    **{name: Flag() for name in _FLAGS},
    "ort_spinning": Flag(optional=True),
    "name": ModelName(),
    **{name: Names() for name in _NAMES},
    **{name: Text() for name in _TEXTS},
    **{name: Text(optional=False) for name in _REQUIRED_TEXTS},
    "kind": Text(choices=("latency", "profile", "peak", "accuracy")),
    "results": Folders(),
    "sources": Folders(),
    "into": PathArg(optional=False, what="a folder"),
    "models_dir": PathArg(optional=False, what="a folder"),
    "weights": PathArg(what="a checkpoint file"),
    "save": PathArg(what="a file"),
    "out": PathArg(),
    "harness": PathArg(what="a folder"),
    "calibration_images": PathArg(what="a folder"),
    "calibration": PathArg(what="a folder"),
    "data": PathArg(optional=False, what="a folder"),
    "labels": PathArg(what="a label file"),
    "from_reports": Files(),
    "on_warning": Function(),
    "announce": Function(),
}

#: ``results`` of the commands that write the store (``latency``, ``run``, ``ablate``): one folder.
ONE_FOLDER = PathArg(optional=False, what="a folder")
#: ``results`` where storing is a choice (``profile``): one folder, or ``None`` to store nothing.
ONE_FOLDER_OR_NONE = PathArg(optional=True, what="a folder")


def check(arguments: Mapping[str, Any], *, options: Mapping[str, Any] | None = None,
          **rules: Rule) -> dict[str, Any]:
    """Check a function's arguments by their names (call it first thing with ``locals()``).

    Args:
        arguments: The arguments, by name; an argument without a rule is not checked.
        options: For a function that takes ``**options``: the options it takes, with their defaults. An option it
            does not take is refused (with the list of those it takes), and every option given is checked like an
            argument.
        **rules: Rules for this function's arguments that differ from :data:`RULES` (``results=ONE_FOLDER``).

    Returns:
        Every argument by name, and with ``options`` every option (given, or its default) in place of ``options``.

    Raises:
        UsageError: The first bad argument, in one line naming it.
    """
    values = dict(arguments)
    if options is not None:
        given = values.pop("options", None) or {}
        unknown = [k for k in given if k not in options]
        if unknown:
            raise UsageError(f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))}; "
                             f"the options are: {', '.join(sorted(options))}")
        values.update(given)
    for name, value in values.items():
        rule = rules.get(name) or RULES.get(name)
        if rule is not None:
            rule(name, value)
    return {**(options or {}), **values}


def confirm_selection(count: int, selection: str, yes: bool) -> None:
    """Stop, before anything is built, when a wildcard or zoo selects more than :data:`SELECTION_LIMIT` models and
    the user has not confirmed it.

    Raises:
        UsageError: One line with the count, and how to go on.
    """
    if count > SELECTION_LIMIT and not yes:
        raise UsageError(f"{count} models match {selection}, more than {SELECTION_LIMIT}; nothing was built: narrow "
                         f"the selection, or confirm with --yes (yes=True in Python)")


def warn_threads(threads: int | None, device: str) -> None:
    """A :class:`~mobileone_bench.errors.BenchWarning` when more CPU threads are asked for than this machine has
    logical cores (the CLI shows it as one ``warning:`` line). The record keeps both figures: ``threads`` and
    ``env_cores_logical``."""
    if device != "cpu" or threads is None:
        return
    from mobileone_bench.environment import cpu_info

    cores = cpu_info().get("cores_logical")
    if cores and threads > cores:
        warnings.warn(f"{threads} threads on a machine with {cores} logical cores: the threads share cores, so the "
                      f"latency includes that oversubscription (the record keeps threads and env_cores_logical)",
                      BenchWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------------------ selection


def as_names(models: str | Iterable[str] | None) -> list[str]:
    """A name or several as a list (``None``: none)."""
    if models is None:
        return []
    if isinstance(models, str):
        return [models]
    return [str(m) for m in models]


def select(models: str | Iterable[str] | None = None, zoo: str | None = None, *, default_zoo: str | None = None,
           include_unavailable: bool = True, yes: bool = False) -> list[ModelSpec]:
    """Resolve model names/wildcards and a zoo into registry specs (errors are one line).

    A wildcard or zoo that selects more than :data:`SELECTION_LIMIT` models is refused unless ``yes`` (the CLI's
    ``--yes``): the count is in the message, and nothing has been built.
    """
    from mobileone_bench.models import registry

    names = as_names(models)
    if not names and not zoo:
        if default_zoo is None:
            raise UsageError("name at least one MODEL (or a wildcard such as 'mobileone*') or a --zoo")
        zoo = default_zoo
    patterns = [n.strip() for n in names if registry._is_pattern(n)]
    if (patterns or zoo) and not yes:  # counted from the names alone: 'timm:*' is not resolved model by model
        selected = {m for p in patterns for m in registry._match(p)}
        selected |= set(registry.zoo_models(zoo) if zoo else ())
        selected |= {n.strip() for n in names if n.strip() and not registry._is_pattern(n)}
        what = " and ".join([*(repr(p) for p in patterns), *([f"zoo {zoo!r}"] if zoo else [])])
        confirm_selection(len(selected), what, yes)
    return registry.expand(names, zoo=zoo, include_unavailable=include_unavailable)


# ------------------------------------------------------------------------------------------------------ the job


def latency_job(device: str = "cpu", runtime: str | None = None, *, warmup: int | None = None,
                runs: int | None = None, threads: int | None = None, precision: str | None = None,
                report: str | None = None, ort_opt: str = "all", cuda_graphs: bool = True, tf32: bool = False,
                compute_units: str = "all", weights: str | None = None, input_size: tuple[int, int] | None = None,
                reparameterize: bool = True, models_dir: str | Path = DEFAULT_MODELS_DIR,
                protocol: str | None = None, rounds: int | None = None, seed: int = 0,
                max_extra_rounds: int | None = None, extra_time: float | None = None,
                memory_budget: float | None = None, ort_spinning: bool | None = None,
                check_available: bool = True) -> LatencyJob:
    """The :class:`~mobileone_bench.pipeline.LatencyJob` of a measurement, every default filled in and the runtime
    checked (installed, a GPU for ``gpu``) unless ``check_available`` is false (a cluster's nodes have it, not this
    machine). Its keywords are the measurement options of ``latency``, ``run`` and ``ablate``, written here once."""
    from mobileone_bench import pipeline
    from mobileone_bench.devices import ORT_SPINNING_DEFAULT, check_runtime_available, cpu_runtime_options, get_runtime
    from mobileone_bench.devices._rounds import DEFAULT_ROUNDS

    options: dict[str, Any] = {}
    if device == "cpu":
        spinning = ORT_SPINNING_DEFAULT if ort_spinning is None else ort_spinning
        options.update(cpu_runtime_options(runtime, graph_optimization=ort_opt, allow_spinning=spinning))
    elif device == "gpu":
        options["cuda_graphs"] = bool(cuda_graphs)
        options["tf32"] = bool(tf32)  # fp32 layers on TF32 tensor cores (TensorRT: decided when the engine is built)
    elif device in ("iphone", "mac"):
        options["compute_units"] = compute_units
    job = pipeline.LatencyJob(device=device, runtime=runtime, precision=precision, warmup=warmup, runs=runs,
                              threads=threads, report=report, runtime_options=tuple(sorted(options.items())),
                              input_size=input_size, weights=weights, reparameterize=reparameterize,
                              models_dir=str(models_dir), protocol=protocol,
                              rounds=DEFAULT_ROUNDS if rounds is None else rounds, seed=seed,
                              max_extra_rounds=max_extra_rounds, extra_time_share=extra_time,
                              memory_budget_gb=memory_budget).resolved()
    if check_available and device in ("cpu", "gpu"):
        warn_threads(threads, device)  # more threads than logical cores: said, and kept in the record
        check_runtime_available(get_runtime(device, runtime))
        if device == "gpu":
            from mobileone_bench.devices import require_cuda

            require_cuda()
    return job


#: The measurement options: :func:`latency_job`'s keywords.
JOB_KEYWORDS = tuple(p for p in inspect.signature(latency_job).parameters if p != "check_available")


def job_options(*, without: Iterable[str] = ()) -> dict[str, Any]:
    """The measurement options and their defaults, but ``without``: what a function taking ``**options`` lists."""
    params = inspect.signature(latency_job).parameters
    return {k: params[k].default for k in JOB_KEYWORDS if k not in set(without)}


def job(arguments: Mapping[str, Any], **fixed: Any) -> LatencyJob:
    """The job of a call: :func:`latency_job` of its measurement options, found by name among its checked
    ``arguments`` (:func:`check`'s result), with ``fixed`` over them."""
    return latency_job(**{k: v for k, v in arguments.items() if k in JOB_KEYWORDS and k not in fixed}, **fixed)
