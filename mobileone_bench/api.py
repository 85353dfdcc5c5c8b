"""The Python API: every step of the study as a function that returns plain values and pandas DataFrames.

The ``mobileone-bench`` command is a thin adapter over exactly these functions (it calls them, then renders what
they return), so a notebook and the command line can never disagree. The names are the package's top level
(``mobileone_bench.list_models``...), imported lazily: ``import mobileone_bench`` does not import torch.

Conventions:

* Options have the names and defaults of the CLI's (``--runs`` is ``runs=``, ``--no-reparam`` is
  ``reparameterize=False``); models are a name, a wildcard or a list of them, and/or a ``zoo``.
* Results are DataFrames (one row per model or record, the columns of the CLI's CSV/JSON first) unless
  ``as_frame=False``, which gives the same rows as plain dicts. What the CLI prints under a table (notes, footnotes,
  the rank agreement) is in the frame's ``attrs``.
* The analysis functions (:func:`load_results`, :func:`correlate`, :func:`table`, :func:`plot`, :func:`roofline`)
  take ``results`` as one folder or a list of folders, read as one (``--results`` given several times);
  :func:`merge` copies folders into one, :func:`export_results` writes a store for dashboards.
* Errors are the library's typed errors (:mod:`mobileone_bench.errors`, all :class:`~mobileone_bench.errors.BenchError`);
  nothing calls ``sys.exit`` or prints, except the progress bar when ``progress=True``. In a sweep, a model that
  fails is a row with its status and error, and the others go on.
* Arguments are checked first, by the rules of :mod:`mobileone_bench._args` (the CLI's ranges): a wrong type or
  a value out of range (``runs=2.5``, ``runs=True``, ``threads=0``, ``input_size=(64,)``, ``results=None``) is a
  :class:`~mobileone_bench.errors.UsageError` naming the argument, before anything is built; so is an option a
  function does not take.

Example (Table 1 for a handful of models, on this CPU)::

    import mobileone_bench as mb

    mb.run(["mobileone_s0", "mobilenetv2-x1.0", "mobilenetv3-s", "shufflenetv2-1.0", "mnasnet-a1"],
           runs=50, results="results")["models"]
    mb.correlate(results="results")          # Spearman rho of latency vs FLOPs and params, p-value, n
    mb.table("table9", results="results", compare=True)
    mb.plot("latency-vs-flops", results="results")
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence, Union

from mobileone_bench import _args
from mobileone_bench._progress import bar

if TYPE_CHECKING:  # pragma: no cover - names for type hints only; nothing heavy is imported at run time
    import pandas as pd
    from torch import nn

__all__ = [
    "list_models",
    "list_zoos",
    "create_model",
    "reparam",
    "profile",
    "export",
    "latency",
    "run",
    "ablate",
    "load_results",
    "correlate",
    "table",
    "plot",
    "roofline",
    "merge",
    "export_results",
]

DEFAULT_RESULTS = "results"
DEFAULT_MODELS_DIR = "models"

#: What the analysis functions read: one results folder, or several (their union, read as one store: nothing is
#: copied, a record in two folders counts once; see :mod:`mobileone_bench.store.merging`).
Results = Union[str, Path, Sequence[Union[str, Path]]]


# ------------------------------------------------------------------------------------------------------ helpers


def _names(models: str | Iterable[str] | None) -> list[str]:
    if models is None:
        return []
    if isinstance(models, str):
        return [models]
    return [str(m) for m in models]


def select(models: str | Iterable[str] | None = None, zoo: str | None = None, *, default_zoo: str | None = None,
           include_unavailable: bool = True, yes: bool = False) -> list[Any]:
    """Resolve model names/wildcards and a zoo into registry specs (errors are one line).

    A wildcard or zoo that selects more than :data:`~mobileone_bench._args.SELECTION_LIMIT` models is refused
    unless ``yes`` (the CLI's ``--yes``): the count is in the message, and nothing has been built.
    """
    from mobileone_bench.models import registry
    from mobileone_bench.errors import UsageError

    names = _names(models)
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
        _args.confirm_selection(len(selected), what, yes)
    return registry.expand(names, zoo=zoo, include_unavailable=include_unavailable)


def _frame(rows: list[dict[str, Any]], columns: Sequence[str] = (), **attrs: Any) -> "pd.DataFrame":
    """Rows as a DataFrame: ``columns`` first (always present, even with no rows), then every other key."""
    import pandas as pd

    order = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    frame = pd.DataFrame(rows, columns=order)
    frame.attrs.update(attrs)
    return frame


def _out(rows: list[dict[str, Any]], as_frame: bool, columns: Sequence[str] = (), **attrs: Any) -> Any:
    return _frame(rows, columns, **attrs) if as_frame else rows


def _wait_quiet(seconds: float | None, progress: bool) -> None:
    if seconds is None:
        return
    from mobileone_bench._progress import console
    from mobileone_bench.devices._contention import wait_quiet

    def say(text: str) -> None:
        if progress:
            console().print(text, highlight=False)

    waited = wait_quiet(seconds, on_wait=lambda t, busy: say(
        f"waiting for a quiet machine: other processes use {busy:.0%} of the CPUs ({t:.0f} s)"))
    if waited:
        say(f"quiet after {waited:.0f} s")


def _warner(on_warning: Callable[[str], None] | None) -> Callable[[str], None]:
    """Where library warnings go: the caller's function, or Python's ``warnings`` (shown once per message)."""
    if on_warning is not None:
        return on_warning
    import warnings

    from mobileone_bench.errors import BenchWarning

    return lambda message: warnings.warn(message, BenchWarning, stacklevel=3)


# ------------------------------------------------------------------------------------------------------ models

MODEL_COLUMNS = ("name", "source", "target", "input", "branches", "paper_name", "notes")


def list_models(pattern: str | None = None, zoo: str | None = None, *, as_frame: bool = True) -> Any:
    """Every model the tool can build, as ``mobileone-bench list``.

    Args:
        pattern: A name or wildcard (``'mobileone*'``); ``'timm:mobilenet*'`` or ``'torchvision:*'`` list the
            outside zoos.
        zoo: Only the members of this zoo (``paper-table9``, ``quick``...); see :func:`list_zoos`.
        as_frame: A DataFrame (default) or a list of dicts.

    Returns:
        One row per model: name, source, target (what it builds), input, branches (re-parameterizable: yes / no /
        ?), paper_name, notes (why a row is unavailable, or what the tool patches), available.

    Example:
        >>> import mobileone_bench as mb
        >>> frame = mb.list_models("mobileone_s*")
        >>> list(frame["name"])[:2]
        ['mobileone_s0', 'mobileone_s1']
    """
    _args.check(locals())
    from mobileone_bench.models import registry

    rows = []
    for s in registry.list_models(pattern, zoo):
        row = s.as_row()
        row["input"] = f"{s.input_size[0]}x{s.input_size[1]}"
        row["branches"] = "?" if s.reparameterizable is None else ("yes" if s.reparameterizable else "no")
        row["notes"] = s.reason or ", ".join(s.patches)
        row["available"] = s.available
        rows.append(row)
    return _out(rows, as_frame, MODEL_COLUMNS)


def list_zoos(*, as_frame: bool = True) -> Any:
    """The named zoos, as ``mobileone-bench list --zoos``.

    Returns:
        One row per zoo: ``zoo``, ``models`` (how many), ``description``.

    Example:
        >>> import mobileone_bench as mb
        >>> "paper-table9" in set(mb.list_zoos()["zoo"])
        True
    """
    _args.check(locals())
    from mobileone_bench.models import registry

    rows = [{"zoo": k, "models": len(registry.zoo_models(k)), "description": d}
            for k, d in registry.list_zoos().items()]
    return _out(rows, as_frame, ("zoo", "models", "description"))


def create_model(name: str, *, weights: str | None = None, reparameterize: bool = True,
                 input_size: tuple[int, int] | None = None, check: bool = True, atol: float = 1e-5,
                 rtol: float = 1e-4) -> "nn.Module":
    """The model as the tool measures it: built, loaded, re-parameterized and verified, in eval mode.

    Random weights (no ``weights``) are seeded and BatchNorm is given realistic statistics, so outputs mean
    something. With ``reparameterize`` (the default) the inference-time form is returned, after checking that it
    computes what the train-time model computes (``check``; :class:`~mobileone_bench.errors.ReparamMismatchError`
    above ``atol`` / ``rtol``).

    Args:
        name: A registry name (``mobileone_s0``, ``mobilenetv2-x1.0``, ``timm:resnet18``...).
        weights: A local checkpoint file (never downloaded).
        reparameterize: Return the inference-time form (branches fused, BatchNorm folded).
        input_size: ``(H, W)`` of the check, instead of the model's default.
        check: Compare the train-time and inference-time outputs on a random input.
        atol: Absolute tolerance of the check.
        rtol: Tolerance relative to the largest absolute output.

    Example:
        >>> import torch, mobileone_bench as mb
        >>> model = mb.create_model("mobileone_tiny")
        >>> model(torch.zeros(1, 3, 64, 64)).shape
        torch.Size([1, 1000])
    """
    _args.check(locals())
    from mobileone_bench import pipeline

    prepared = pipeline.prepare(name, weights=weights, input_size=input_size, reparameterize=reparameterize,
                                check=check and reparameterize, atol=atol, rtol=rtol)
    return prepared.model


def reparam(name: str, *, weights: str | None = None, input_size: tuple[int, int] | None = None,
            check: bool = True, atol: float = 1e-5, rtol: float = 1e-4, save: str | None = None) -> dict[str, Any]:
    """Re-parameterize a model and report what was done, as ``mobileone-bench reparam``.

    Returns:
        model, input, params_train, params_infer, what re-parameterization did (modules fused, BatchNorms folded,
        any left), and with ``check`` max_abs_err, max_rel_err and check ("passed"); ``saved`` when ``save`` names a
        file for the inference-time state dict.

    Raises:
        ReparamMismatchError: The check failed.
    """
    _args.check(locals())
    from mobileone_bench import pipeline
    from mobileone_bench.complexity import count_params

    if save:
        from mobileone_bench.reparameterization import check_save_path

        check_save_path(save)  # a real write and remove in its folder, before anything is built
    prepared = pipeline.prepare(name, weights=weights, input_size=input_size, check=check, atol=atol, rtol=rtol)
    row: dict[str, Any] = {
        "model": prepared.spec.name,
        "input": "x".join(str(d) for d in prepared.input_shape[2:]),
        "params_train": count_params(prepared.train_model),
        "params_infer": count_params(prepared.model),
        **(prepared.reparam or {}),
    }
    if prepared.verify:
        row.update({"max_abs_err": prepared.verify["max_abs_err"], "max_rel_err": prepared.verify["max_rel_err"],
                    "check": "passed" if prepared.verify["passed"] else "FAILED"})
    else:
        row["check"] = "not run"
    if save:
        from mobileone_bench.reparameterization import save_state_dict

        save_state_dict(prepared.model, save)  # whole or not at all, with the system's reason
        row["saved"] = str(save)
    return row


PROFILE_COLUMNS = ("model", "input", "params_m", "flops_m", "activations_m", "memory_mb_fp32", "memory_mb_fp16", "depth",
                   "paper_params_m", "paper_flops_m", "status", "error")


def _paper_figures(name: str) -> dict[str, Any]:
    from mobileone_bench.reference import paper_row

    for table_name in ("table9", "table13"):
        row = paper_row(name, table_name)
        if row:
            return {"paper_flops_m": row.get("flops_m"), "paper_params_m": row.get("params_m")}
    return {}


def profile(models: str | Sequence[str] | None = None, *, zoo: str | None = None,
            input_size: tuple[int, int] | None = None, weights: str | None = None, progress: bool = False,
            as_frame: bool = True, yes: bool = False) -> Any:
    """Params and FLOPs of the inference-time model (1 FLOP = 1 multiply-add, BatchNorm folded), as
    ``mobileone-bench profile``, with the paper's figures beside them where it has the row.

    A model that fails (it cannot be built, does not run at this input size...) is a row with ``status ==
    "failed"`` and its error, and the others are still profiled, as ``run`` and ``latency`` do (the CLI then exits
    with status 1); only a bad argument raises. With ``progress``, the bar names each model's phase (build +
    re-parameterize, count). A wildcard or zoo that selects more than 50 models needs ``yes=True`` (``--yes``).

    Returns:
        One row per model: model, input, params_m, flops_m, paper_params_m, paper_flops_m, status, error, and the
        exact params, flops, flops_by_op (multiply-adds per aten operator).

    Example:
        >>> import mobileone_bench as mb
        >>> row = mb.profile("mobileone_tiny", input_size=(64, 64)).iloc[0]
        >>> row["status"], bool(row["flops"] > 0)
        ('ok', True)
    """
    _args.check(locals())
    specs = select(models, zoo, yes=yes)
    rows: list[dict[str, Any]] = []
    with bar(progress, len(specs), "profile") as step:
        for spec in specs:
            step(spec.name)
            rows.append(_profile_row(spec, weights=weights, input_size=input_size, step=step))
            step(spec.name, advance=1)
    return _out(rows, as_frame, PROFILE_COLUMNS)


def _profile_row(spec: Any, *, weights: str | None, input_size: tuple[int, int] | None,
                 step: Callable[..., None]) -> dict[str, Any]:
    """One model's profile row: its figures, or its failure as the row's status and error (a bad argument raises)."""
    from mobileone_bench import pipeline
    from mobileone_bench.models import registry
    from mobileone_bench.errors import UsageError

    row: dict[str, Any] = {"model": spec.name, **_paper_figures(spec.name)}
    if not spec.available:
        row.update(status="unavailable", error=spec.reason)
        return row
    try:
        row["input"] = "x".join(str(d) for d in registry.input_shape(spec, input_size)[2:])
        step(f"{spec.name}: build + re-parameterize")
        prepared = pipeline.prepare(spec, weights=weights, input_size=input_size, check=False)
        step(f"{spec.name}: count params and FLOPs")
        row.update(pipeline.profile(prepared), status="ok", error=None)
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data; the sweep goes on, as in run and latency
        row.update(status="failed", error=pipeline._failure_message(exc))
    return row


# ------------------------------------------------------------------------------------------------------ export

EXPORT_COLUMNS = ("model", "format", "precision", "status", "parity", "size_mb", "seconds", "error")


def export_artifacts(specs: list[Any], formats: list[Any], out: Path, options: Any, *, weights: str | None,
                     input_size: tuple[int, int] | None, reparameterize: bool, force: bool,
                     on_step: Callable[[str], None] | None = None) -> list[Any]:
    """Export every model to every format (:class:`~mobileone_bench.formats._base.ExportResult` each); a model's
    failure is a result, the sweep goes on."""
    from dataclasses import replace

    from mobileone_bench import pipeline
    from mobileone_bench.errors import BenchError, UsageError
    from mobileone_bench.formats import FORMATS
    from mobileone_bench.formats._base import FAILED, UNAVAILABLE, ExportResult, export_one

    results: list[ExportResult] = []
    for spec in specs:
        if on_step:
            on_step(spec.name)
        if not spec.available:
            for fmt in formats:
                results.append(ExportResult(spec.name, fmt.name, options.precision_for(fmt), UNAVAILABLE,
                                            error=spec.reason))
            continue
        try:
            prepared = pipeline.prepare(spec, weights=weights, input_size=input_size, reparameterize=reparameterize,
                                        check=reparameterize)
        except UsageError:
            raise
        except Exception as exc:  # noqa: BLE001 - recorded per format, the sweep goes on
            msg = str(exc) if isinstance(exc, BenchError) else f"{type(exc).__name__}: {exc}"
            for fmt in formats:
                results.append(ExportResult(spec.name, fmt.name, options.precision_for(fmt), FAILED,
                                            error=f"model: {msg}"[:400]))
            continue
        context: dict[str, Any] = {"out": str(out)}
        for fmt in formats:
            if fmt.name == "tensorrt" and "onnx" not in context:
                onnx = next((r for r in results if r.model == spec.name and r.format == "onnx"), None)
                if onnx is None:
                    onnx = export_one(prepared, FORMATS["onnx"], out, replace(options, precision="fp32"), force=force)
                if onnx.ok:
                    context.update(onnx=onnx.path, onnx_manifest=onnx.manifest)
            result = export_one(prepared, fmt, out, options, force=force, context=context)
            if fmt.name == "onnx" and result.ok:
                context.update(onnx=result.path, onnx_manifest=result.manifest)
            results.append(result)
    return results


def export(models: str | Sequence[str] | None = None, *, zoo: str | None = None, formats: str | Sequence[str] = "onnx",
           out: str | Path = DEFAULT_MODELS_DIR, precision: str | None = None, weights: str | None = None,
           input_size: tuple[int, int] | None = None, reparameterize: bool = True, force: bool = False,
           dynamic_batch: bool = False, opset: int = 18, coreml_type: str = "mlprogram",
           deployment_target: str | None = None, coreml_input: str = "tensor", trt_workspace_mb: int = 1024,
           calibration_images: str | Path | None = None, calibration_samples: int = 16,
           progress: bool = False, as_frame: bool = True, yes: bool = False) -> Any:
    """Export models to ONNX, Core ML, TensorRT and/or ExecuTorch with a parity check and a manifest each, as
    ``mobileone-bench export``; matching artifacts are reused unless ``force``.

    ExecuTorch int8 (``formats="executorch", precision="int8"``) calibrates on ``calibration_samples`` random inputs,
    or on the first ``calibration_samples`` images of the folder ``calibration_images``. A wildcard or zoo that
    selects more than 50 models needs ``yes=True`` (``--yes``).

    Returns:
        One row per model and format: model, format, precision, status (exported, cached, failed, parity failed,
        unavailable), parity (max errors against PyTorch), size_mb, seconds, error, path.

    Example:
        >>> import mobileone_bench as mb
        >>> mb.export("mobileone_tiny", formats="onnx", out="models", input_size=(64, 64))[["format", "status"]]
        ... # doctest: +SKIP
    """
    _args.check(locals(), out=_args.ONE_FOLDER)
    from mobileone_bench.formats import check_format_available, parse_formats
    from mobileone_bench.formats._base import ExportOptions, ensure_writable

    fmts = parse_formats(formats)
    options = ExportOptions(precision=precision, opset=opset, dynamic_batch=dynamic_batch, coreml_type=coreml_type,
                            coreml_target=deployment_target, coreml_input=coreml_input,
                            trt_workspace_mb=trt_workspace_mb,
                            calibration_images=None if calibration_images is None else str(calibration_images),
                            calibration_samples=calibration_samples)
    options.validate()
    for fmt in fmts:
        options.precision_for(fmt)  # unsupported precision: one line, before any work
        check_format_available(fmt)
        if fmt.needs_gpu:
            from mobileone_bench.formats.tensorrt import require_gpu

            require_gpu()
    specs = select(models, zoo, yes=yes)
    root = ensure_writable(Path(out))
    with bar(progress, len(specs), "export") as step:
        seen: list[str] = []

        def on_step(name: str) -> None:
            step(name, advance=1 if seen else 0)
            seen.append(name)

        results = export_artifacts(specs, fmts, root, options, weights=weights, input_size=input_size,
                                   reparameterize=reparameterize, force=force, on_step=on_step)
    return _out([r.as_row() for r in results], as_frame, EXPORT_COLUMNS, out=str(root))


# ------------------------------------------------------------------------------------------------------ latency


def latency_job(device: str = "cpu", runtime: str | None = None, *, warmup: int | None = None,
                runs: int | None = None, threads: int | None = None, precision: str | None = None,
                report: str | None = None, ort_opt: str = "all", cuda_graphs: bool = True,
                compute_units: str = "all", weights: str | None = None, input_size: tuple[int, int] | None = None,
                reparameterize: bool = True, models_dir: str | Path = DEFAULT_MODELS_DIR,
                protocol: str | None = None, rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None,
                ort_spinning: bool | None = None, check_available: bool = True) -> Any:
    """The :class:`~mobileone_bench.pipeline.LatencyJob` of a measurement, every default filled in and the runtime
    checked (installed, a GPU for ``gpu``) unless ``check_available`` is false (importing iPhone reports)."""
    from mobileone_bench import pipeline
    from mobileone_bench.devices import ORT_SPINNING_DEFAULT, check_runtime_available, cpu_runtime_options, get_runtime
    from mobileone_bench.devices._rounds import DEFAULT_ROUNDS

    options: dict[str, Any] = {}
    if device == "cpu":
        spinning = ORT_SPINNING_DEFAULT if ort_spinning is None else ort_spinning
        options.update(cpu_runtime_options(runtime, graph_optimization=ort_opt, allow_spinning=spinning))
    elif device == "gpu":
        options["cuda_graphs"] = bool(cuda_graphs)
    elif device in ("iphone", "mac"):
        options["compute_units"] = compute_units
    job = pipeline.LatencyJob(device=device, runtime=runtime, precision=precision, warmup=warmup, runs=runs,
                              threads=threads, report=report, runtime_options=tuple(sorted(options.items())),
                              input_size=input_size, weights=weights, reparameterize=reparameterize,
                              models_dir=str(models_dir), protocol=protocol,
                              rounds=DEFAULT_ROUNDS if rounds is None else rounds, seed=seed, max_extra_rounds=max_extra_rounds,
                              extra_time_share=extra_time,
                              memory_budget_gb=memory_budget).resolved()
    if check_available and device in ("cpu", "gpu"):
        _args.warn_threads(threads, device)  # more threads than logical cores: said, and kept in the record
        check_runtime_available(get_runtime(device, runtime))
        if device == "gpu":
            from mobileone_bench.devices.gpu import require_cuda

            require_cuda()
    return job


def _blocks_bar(progress: bool, n_models: int, job: Any, title: str) -> Any:
    """A bar over the timed blocks of a measurement (``n x rounds`` interleaved, ``n`` blocked)."""
    blocks = n_models * (int(job.rounds or 1) if job.protocol == "interleaved" else 1)
    return bar(progress, blocks, title)


def _on_block(step: Callable[..., None]) -> Callable[[str, str], None]:
    def on_step(model: str, what: str) -> None:
        step(f"{model}: {what}", advance=1 if what.startswith(("round ", "measure ")) else 0)

    return on_step


@dataclass
class LatencyOutcome:
    """What :func:`measure` did: the records (one per model, in order), the ids of those reused from the store
    (identical measurement already stored), and the store."""

    records: list[dict[str, Any]]
    reused: set[str]
    store: Any
    job: Any
    phones: list[dict[str, Any]] = field(default_factory=list)  # iPhone: one summary per phone measured


def measure(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
            runtime: str | None = None, warmup: int | None = None, runs: int | None = None,
            threads: int | None = None, precision: str | None = None, report: str | None = None,
            ort_opt: str = "all", cuda_graphs: bool = True, destination: str | Sequence[str] | None = None,
            sequential: bool = False, compute_units: str = "all", from_reports: Sequence[str] = (),
            team: str | None = None,
            bundle_id: str | None = None, harness: str | None = None, weights: str | None = None,
            input_size: tuple[int, int] | None = None, reparameterize: bool = True,
            results: str | Path = DEFAULT_RESULTS, models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False,
            protocol: str | None = None, rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None, wait_quiet: float | None = None,
            ort_spinning: bool | None = None, progress: bool = False,
            on_warning: Callable[[str], None] | None = None, yes: bool = False) -> LatencyOutcome:
    """:func:`latency`, returning the records together with which were reused (what the CLI shows)."""
    _args.check(locals(), results=_args.ONE_FOLDER)
    from mobileone_bench import pipeline
    from mobileone_bench.errors import UsageError
    from mobileone_bench.store.records import ResultsStore

    apple = device in ("iphone", "mac")
    if not apple and (from_reports or destination):
        raise UsageError("--from-report and --destination apply to --device iphone or mac")
    if sequential and (device != "iphone" or from_reports):
        raise UsageError("--sequential applies to measuring on --device iphone (several --destination)")
    job = latency_job(device, runtime, warmup=warmup, runs=runs, threads=threads, precision=precision,
                      report=report, ort_opt=ort_opt, cuda_graphs=cuda_graphs, compute_units=compute_units,
                      weights=weights, input_size=input_size, reparameterize=reparameterize, models_dir=models_dir,
                      protocol=protocol, rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget, ort_spinning=ort_spinning)
    store = ResultsStore(results)
    warn = _warner(on_warning)
    if apple:
        from mobileone_bench.devices import apple as apple_devices

        before = {r.get("record_id") for r in store.records("latency")}
        if from_reports:
            records = apple_devices.import_reports(list(from_reports), store, job=job,
                                                   models=select(models, zoo, yes=yes) if (models or zoo) else None,
                                                   force=force, on_warning=warn)
        else:
            specs = select(models, zoo, yes=yes)
            with bar(progress, len(specs) * max(1, len(apple_devices.destinations(destination))), device) as step:
                records = apple_devices.measure(
                    specs, job, store, destination=destination, sequential=sequential, force=force,
                    harness_dir=harness, team=team, bundle_id=bundle_id, on_warning=warn,
                    on_progress=lambda text, finished: step(text, advance=int(finished)))
        return LatencyOutcome(records, {r["record_id"] for r in records if r.get("record_id") in before}, store, job,
                              apple_devices.phone_summaries(records))
    specs = select(models, zoo, yes=yes)
    _wait_quiet(wait_quiet, progress)
    job = job.for_models(len(specs))
    with _blocks_bar(progress, len(specs), job, "latency") as step:
        done = pipeline.measure_models(specs, job, store, force=force, on_step=_on_block(step))
    return LatencyOutcome([rec for rec, _ in done], {rec["record_id"] for rec, reused in done if reused}, store, job)


def latency(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
            runtime: str | None = None, warmup: int | None = None, runs: int | None = None,
            threads: int | None = None, precision: str | None = None, report: str | None = None,
            results: str | Path = DEFAULT_RESULTS, models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False,
            protocol: str | None = None, rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None, progress: bool = False,
            as_frame: bool = True, **options: Any) -> Any:
    """Measure latency with the paper's protocol and store every record, as ``mobileone-bench latency``.

    Several models are measured in interleaved rounds (``protocol="blocked"`` for one block each). An identical
    measurement already stored is reused unless ``force``. Every other option of the CLI is a keyword:
    ``ort_opt``, ``cuda_graphs``, ``destination`` (iPhone: a name or UDID, a list of them, or ``"all"``),
    ``sequential`` (several iPhones: one after the other), ``compute_units``, ``from_reports``, ``team``,
    ``bundle_id``, ``harness``, ``weights``, ``input_size``, ``reparameterize``, ``wait_quiet``, ``ort_spinning``,
    ``on_warning``, ``yes`` (go ahead when a wildcard or zoo selects more than 50 models). More ``threads`` than
    this machine's logical cores is a :class:`~mobileone_bench.errors.BenchWarning`; the record keeps ``threads`` and
    ``env_cores_logical``.

    Returns:
        One row per model: the full stored record (model, device, runtime, precision, threads, n, min_ms,
        median_ms, mean_ms, std_ms, p90_ms, p99_ms, cv, latency_ms, the protocol, the contention readings and the
        environment). ``attrs["reused"]`` lists the record ids taken from the store; ``attrs["results"]`` is the
        records file.

    Example:
        >>> import mobileone_bench as mb
        >>> frame = mb.latency("mobileone_tiny", runs=5, warmup=1, threads=1, input_size=(64, 64),
        ...                    results="results")                          # doctest: +SKIP
        >>> frame[["model", "runtime", "n", "median_ms", "cv"]]            # doctest: +SKIP
    """
    _args.check(locals(), options_of=measure, results=_args.ONE_FOLDER)
    done = measure(models, zoo=zoo, device=device, runtime=runtime, warmup=warmup, runs=runs, threads=threads,
                   precision=precision, report=report, results=results, models_dir=models_dir, force=force,
                   protocol=protocol, rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget, progress=progress, **options)
    return _out(done.records, as_frame, ("model", "device", "runtime", "latency_ms", "status"),
                reused=sorted(done.reused), results=str(done.store.records_path), phones=done.phones)


# ------------------------------------------------------------------------------------------------------ run

SUMMARY_COLUMNS = ("model", "params_m", "flops_m", "latency_ms", "cv", "paper_latency_ms", "status")


@dataclass
class RunOutcome:
    """What :func:`run_study` did: the pipeline's rows, their summary, the Table 9 layout and the correlations."""

    rows: list[dict[str, Any]]
    summary: list[dict[str, Any]]
    table: dict[str, Any] | None
    correlation: dict[str, Any] | None
    job: Any
    store: Any
    notes: list[str] = field(default_factory=list)
    table_note: str | None = None
    correlation_note: str | None = None


def _summary_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    from mobileone_bench.reference import paper_row
    from mobileone_bench.pipeline import is_unavailable

    out = []
    for r in rows:
        prof, lat = r["profile"], r["latency"]
        paper = paper_row(r["model"]) or paper_row(r["model"], "table13") or {}
        paper_lat = (paper.get("latency_ms") or {}).get(lat.get("device"))
        state = "ok" if lat.get("status") == "ok" else f"failed: {lat.get('error')}"
        if is_unavailable(lat):
            state = str(lat.get("error"))
        if lat.get("status") == "ok" and r["skipped"]["latency"]:
            state = "ok (stored)"
        if lat.get("status") == "ok" and lat.get("contended"):
            state += f" (contended {lat.get('contended_share') or 0:.0%})"
        elif lat.get("status") == "ok" and lat.get("noise_warning"):
            state += " (noisy)"
        out.append({
            "model": r["model"], "params_m": prof.get("params_m"), "flops_m": prof.get("flops_m"),
            "latency_ms": lat.get("latency_ms"), "cv": lat.get("cv"),
            "paper_latency_ms": paper_lat, "status": state,
            **({"on": r["on"]} if "on" in r else {}),  # run --cluster: the host label it was measured on
        })
    return out


def _run_job(device: str, runtime: str | None, warmup: int | None, runs: int | None, threads: int | None,
             precision: str | None, models_dir: str | Path, input_size: tuple[int, int] | None = None,
             compute_units: str | None = None, *, protocol: str | None = None, rounds: int | None = None,
             seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None, ort_spinning: bool | None = None, what: str = "run") -> Any:
    from mobileone_bench.errors import UsageError

    if device in ("iphone", "mac"):
        if compute_units is None:
            raise UsageError(f"`{what}` measures on cpu or gpu; for {device}, export with `export --format coreml`, "
                             f"then `latency --device {device}` (or import the app's report with --from-report)")
        return latency_job(device, runtime, warmup=warmup, runs=runs, precision=precision,
                           compute_units=compute_units, input_size=input_size, models_dir=models_dir,
                           check_available=False)
    return latency_job(device, runtime, warmup=warmup, runs=runs, threads=threads, precision=precision,
                       input_size=input_size, models_dir=models_dir, protocol=protocol, rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget,
                       ort_spinning=ort_spinning)


def _sweep(specs: list[Any], job: Any, store: Any, force: bool, title: str, progress: bool, *,
           force_latency: bool = False) -> list[dict[str, Any]]:
    from mobileone_bench import pipeline

    job = job.for_models(len(specs))
    with _blocks_bar(progress, len(specs), job, title) as step:
        return pipeline.run_models(specs, job, store, force=force, force_latency=force_latency,
                                   on_step=_on_block(step))


def _remeasure(rows: list[dict[str, Any]], specs: list[Any], job: Any, store: Any, progress: bool,
               notes: list[str]) -> list[dict[str, Any]]:
    """One more sweep over the models whose latency record is flagged; the new records are appended (readers take
    the newest per key) and replace the old ones in ``rows``."""
    from mobileone_bench.pipeline import flagged

    again = [spec for spec, row in zip(specs, rows) if flagged(row["latency"])]
    if not again:
        notes.append("--remeasure-flagged: no latency record is flagged")
        return rows
    notes.append(f"--remeasure-flagged: measured {len(again)} flagged model(s) again: "
                 f"{', '.join(s.name for s in again)}")
    new = {r["model"]: r for r in _sweep(again, job, store, False, "remeasure", progress, force_latency=True)}
    still = [name for name, r in new.items() if flagged(r["latency"])]
    if still:
        notes.append(f"--remeasure-flagged: still flagged: {', '.join(still)}")
    return [new.get(row["model"], row) for row in rows]


def _study_report(store: Any, names: list[str], job: Any) -> tuple[Any, Any, str | None, str | None]:
    """The Table 9 layout (the paper's figures beside ours) and the Spearman correlations of the models just run."""
    from mobileone_bench.analysis.correlate import correlate_records
    from mobileone_bench.analysis.tables import build_table
    from mobileone_bench.errors import AnalysisError

    table_ = corr = table_note = corr_note = None
    try:
        table_ = build_table(store, "table9", models=names, compare=True, runtimes=[job.runtime],
                             threads=job.threads, precision=job.precision)
    except AnalysisError as exc:
        table_note = str(exc)
    try:
        corr = correlate_records(store, models=names, device=job.device, runtime=job.runtime, threads=job.threads,
                                 precision=job.precision)
    except AnalysisError as exc:
        corr_note = str(exc)
    return table_, corr, table_note, corr_note


def run_study(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
              runtime: str | None = None, warmup: int | None = None, runs: int | None = None,
              threads: int | None = None, precision: str | None = None, results: str | Path = DEFAULT_RESULTS,
              models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False, protocol: str | None = None,
              rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None, wait_quiet: float | None = None,
              ort_spinning: bool | None = None, input_size: tuple[int, int] | None = None,
              remeasure_flagged: bool = False, progress: bool = False, cluster: str | None = None,
              on: str | Sequence[str] = (), retries: int = 0, yes: bool = False) -> RunOutcome:
    """:func:`run`, returning the pipeline's own structures (what the CLI renders)."""
    _args.check(locals(), results=_args.ONE_FOLDER)
    from mobileone_bench.store.records import ResultsStore

    if cluster is not None or on or retries:
        return _run_on_cluster(models, zoo=zoo, device=device, runtime=runtime, warmup=warmup, runs=runs,
                               threads=threads, precision=precision, results=results, models_dir=models_dir,
                               force=force, protocol=protocol, rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget, wait_quiet=wait_quiet,
                               ort_spinning=ort_spinning, input_size=input_size,
                               remeasure_flagged=remeasure_flagged, progress=progress, cluster=cluster, on=on,
                               retries=retries, yes=yes)
    job = _run_job(device, runtime, warmup, runs, threads, precision, models_dir, input_size, protocol=protocol,
                   rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget, ort_spinning=ort_spinning)
    specs = select(models, zoo, default_zoo="quick", yes=yes)
    store = ResultsStore(results)
    _wait_quiet(wait_quiet, progress)
    notes: list[str] = []
    rows = _sweep(specs, job, store, force, "run", progress)
    if remeasure_flagged:
        rows = _remeasure(rows, specs, job, store, progress, notes)
    table_, corr, table_note, corr_note = _study_report(store, [s.name for s in specs], job)
    return RunOutcome(rows, _summary_rows(rows), table_, corr, job, store, notes, table_note, corr_note)


def _run_on_cluster(models: Any, *, zoo: str | None, device: str, runtime: str | None, warmup: int | None,
                    runs: int | None, threads: int | None, precision: str | None, results: str | Path,
                    models_dir: str | Path, force: bool, protocol: str | None, rounds: int | None, seed: int, max_extra_rounds: int | None, extra_time: float | None, memory_budget: float | None,
                    wait_quiet: float | None, ort_spinning: bool | None, input_size: tuple[int, int] | None,
                    remeasure_flagged: bool, progress: bool, cluster: str | None, on: str | Sequence[str],
                    retries: int, yes: bool = False) -> RunOutcome:
    """:func:`run_study` on a Ray cluster (:mod:`mobileone_bench.pipeline.cluster`): every (model, label) measured on a
    node with that label, the records written here as they come back."""
    from dataclasses import replace

    from mobileone_bench.pipeline import cluster as cluster_mod
    from mobileone_bench.errors import UsageError
    from mobileone_bench.pipeline import flagged
    from mobileone_bench.store.records import ResultsStore

    labels = [on] if isinstance(on, str) else list(on)
    if cluster is None:
        raise UsageError("--on and --retries need --cluster ADDRESS (or auto)")
    if not labels:
        raise UsageError("--cluster needs at least one --on LABEL (the hosts to measure on, e.g. --on cpu-x86)")
    if retries < 0:
        raise UsageError("--retries must be >= 0")
    if device not in ("cpu", "gpu"):
        raise UsageError(f"--cluster measures on cpu or gpu nodes, not {device}")
    if wait_quiet is not None:
        raise UsageError("--wait-quiet applies to a run on this machine, not to --cluster")
    # the runtime need not be installed here, only on the nodes; threads stay the user's (None: each node's cores)
    job = latency_job(device, runtime, warmup=warmup, runs=runs, threads=threads, precision=precision,
                      input_size=input_size, models_dir=models_dir, protocol=protocol, rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget,
                      ort_spinning=ort_spinning, check_available=False)
    job = replace(job, threads=threads if device == "cpu" else None)
    specs = select(models, zoo, default_zoo="quick", yes=yes)
    store = ResultsStore(results)
    notes: list[str] = []
    with cluster_mod.connect(cluster) as executor:

        def sweep(todo: list[Any], force_latency: bool, title: str) -> list[dict[str, Any]]:
            with bar(progress, len(todo) * len(labels), title) as step:
                return cluster_mod.drive(todo, labels, job, store, executor, force=force,
                                         force_latency=force_latency, retries=retries, on_step=lambda m, s: step(
                                             f"{m}: {s}", advance=1 if s.startswith("measure ") else 0))

        rows = sweep(specs, False, "run")
        if remeasure_flagged:
            again = [r for r in rows if flagged(r["latency"])]
            if not again:
                notes.append("--remeasure-flagged: no latency record is flagged")
            else:
                names = list(dict.fromkeys(r["model"] for r in again))
                notes.append(f"--remeasure-flagged: measured {len(names)} flagged model(s) again: "
                             f"{', '.join(names)}")
                new = {(r["model"], r["on"]): r
                       for r in sweep([s for s in specs if s.name in names], True, "remeasure")}
                rows = [new.get((r["model"], r["on"]), r) if flagged(r["latency"]) else r for r in rows]
    table_, corr, table_note, corr_note = _study_report(store, [s.name for s in specs], job)
    return RunOutcome(rows, _summary_rows(rows), table_, corr, job, store, notes, table_note, corr_note)


def run(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
        runtime: str | None = None, warmup: int | None = None, runs: int | None = None, threads: int | None = None,
        precision: str | None = None, results: str | Path = DEFAULT_RESULTS,
        models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False, protocol: str | None = None,
        rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None, wait_quiet: float | None = None, ort_spinning: bool | None = None,
        input_size: tuple[int, int] | None = None, remeasure_flagged: bool = False, progress: bool = False,
        as_frame: bool = True, cluster: str | None = None, on: str | Sequence[str] = (),
        retries: int = 0, yes: bool = False) -> dict[str, Any]:
    """The main job, as ``mobileone-bench run``: profile, export and measure every model (the ``quick`` zoo when
    none is named), storing each step; then the Table 9 layout and the Spearman correlations.

    A failing model is a row with its error and the rest go on; stored steps are reused unless ``force``. A wildcard
    or zoo that selects more than 50 models needs ``yes=True`` (``--yes``).

    With ``cluster`` (a Ray address or ``"auto"``; ``pip install 'mobileone-bench[cluster]'``), every model is
    measured on a node of each label in ``on`` (``on="cpu-x86"`` or a list), one measurement per node at a time,
    and the records come back into ``results``; ``retries`` sends a job whose node died again (see
    :mod:`mobileone_bench.pipeline.cluster`). The ``models`` rows then have an ``on`` column.

    Returns:
        A dict: ``models`` (one row per model: model, params_m, flops_m, latency_ms, cv, paper_latency_ms,
        status), ``records`` (the latency records), ``table`` (Table 9 rows with the paper's figures beside ours,
        or ``None``), ``agreement`` (rank agreement with the paper per device), ``correlation`` (the Table 1
        rows: against, rho, p-value, n), ``notes``. DataFrames unless ``as_frame=False``.

    Example:
        >>> import mobileone_bench as mb
        >>> out = mb.run(["mobileone_s0", "mobilenetv2-x1.0"], runs=20, results="results")   # doctest: +SKIP
        >>> out["models"][["model", "flops_m", "latency_ms"]]                                 # doctest: +SKIP
    """
    _args.check(locals(), results=_args.ONE_FOLDER)
    from mobileone_bench.analysis.tables import flat_rows

    done = run_study(models, zoo=zoo, device=device, runtime=runtime, warmup=warmup, runs=runs, threads=threads,
                     precision=precision, results=results, models_dir=models_dir, force=force, protocol=protocol,
                     rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget, wait_quiet=wait_quiet, ort_spinning=ort_spinning,
                     input_size=input_size, remeasure_flagged=remeasure_flagged, progress=progress,
                     cluster=cluster, on=on, retries=retries, yes=yes)
    corr = done.correlation
    table_rows = flat_rows(done.table) if done.table else None
    agreement = (done.table or {}).get("agreement")
    notes = done.notes + [f"Table 9 layout: {done.table_note}"] * bool(done.table_note) + \
        [f"Spearman correlation: {done.correlation_note}"] * bool(done.correlation_note)
    if not as_frame:
        return {"models": done.summary, "records": [r["latency"] for r in done.rows], "table": table_rows,
                "agreement": agreement, "correlation": corr, "notes": notes}
    return {
        "models": _frame(done.summary, SUMMARY_COLUMNS),
        "records": _frame([r["latency"] for r in done.rows], ("model", "device", "runtime", "latency_ms", "status")),
        "table": None if table_rows is None else _frame(table_rows, (), footnotes=done.table.get("footnotes", [])),
        "agreement": None if agreement is None else _frame(agreement),
        "correlation": None if corr is None else _correlation_frame(corr),
        "notes": notes,
    }


# ------------------------------------------------------------------------------------------------------ ablate


def ablate_study(study: str, *, device: str = "cpu", runtime: str | None = None, warmup: int | None = None,
                 runs: int | None = None, threads: int | None = None, precision: str | None = None,
                 results: str | Path = DEFAULT_RESULTS, models_dir: str | Path = DEFAULT_MODELS_DIR,
                 force: bool = False, protocol: str | None = None, rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None, extra_time: float | None = None, memory_budget: float | None = None,
                 wait_quiet: float | None = None, ort_spinning: bool | None = None,
                 formats: str | Sequence[str] = "onnx,coreml", destination: str | None = None,
                 compute_units: str = "all", from_reports: Sequence[str] = (), progress: bool = False) -> Any:
    """:func:`ablate`, returning ``(rows, job, formats)`` (what the CLI renders)."""
    _args.check(locals(), results=_args.ONE_FOLDER)
    from mobileone_bench.reference import paper_table
    from mobileone_bench.errors import UsageError
    from mobileone_bench.formats import check_format_available, parse_formats
    from mobileone_bench.formats._base import ExportOptions, ensure_writable
    from mobileone_bench.store.records import ResultsStore

    if study not in ("activations", "blocks"):
        raise UsageError(f"unknown study {study!r}; choose from activations, blocks")
    apple = device in ("iphone", "mac")
    if (from_reports or destination) and not apple:
        raise UsageError("--from-report and --destination apply to --device iphone or mac")
    job = _run_job(device, runtime, warmup, runs, threads, precision, models_dir,
                   compute_units=compute_units if apple else None, protocol=protocol, rounds=rounds, seed=seed, max_extra_rounds=max_extra_rounds, extra_time=extra_time, memory_budget=memory_budget,
                   ort_spinning=ort_spinning, what="ablate")
    specs = select((), "ablation-activations" if study == "activations" else "ablation-blocks")
    fmts = parse_formats(formats)
    for f in fmts:
        check_format_available(f)
    fmts = [f for f in fmts if f.name != "tensorrt"]
    out = ensure_writable(Path(models_dir))
    exports = export_artifacts(specs, fmts, out, ExportOptions(), weights=None, input_size=None, reparameterize=True,
                               force=force)
    store = ResultsStore(results)
    if apple:
        rows = _apple_rows(specs, job, store, from_reports, destination, force)
    else:
        _wait_quiet(wait_quiet, progress)
        rows = _sweep(specs, job, store, force, f"ablate {study}", progress)
    paper = {r["model"]: r for r in paper_table("table2" if study == "activations" else "table3")["rows"]}
    base = next((r["latency"].get("latency_ms") for r in rows if r["model"] == "ablation30-relu"), None)
    paper_base = paper.get("ablation30-relu", {}).get("latency_ms")
    out_rows = []
    for r in rows:
        lat = r["latency"]
        p = paper.get(r["model"], {})
        ours = lat.get("latency_ms") if lat.get("status") == "ok" else None
        ex = {e.format: e for e in exports if e.model == r["model"]}
        out_rows.append({
            "variant": p.get("paper_name") or r["model"].replace("ablation30-", ""),
            "model": r["model"],
            "flops_m": r["profile"].get("flops_m"),
            "latency_ms": ours,
            "ratio": (ours / base) if ours and base else None,
            "paper_iphone_ms": p.get("latency_ms"),
            "paper_ratio": (p["latency_ms"] / paper_base) if p.get("latency_ms") and paper_base else None,
            **{f"export_{k}": ("ok" if v.ok else f"{v.status}: {v.error}") for k, v in ex.items()},
            "status": "ok" if lat.get("status") == "ok" else f"failed: {lat.get('error')}",
        })
    return out_rows, job, fmts


def _apple_rows(specs: list[Any], job: Any, store: Any, reports: Sequence[str], destination: str | None,
                force: bool) -> list[dict[str, Any]]:
    """Rows like :func:`pipeline.run_models`' for the iPhone/Mac: profiles here, latencies from the Core ML harness."""
    from mobileone_bench import pipeline
    from mobileone_bench.devices import apple

    if reports:
        records = apple.import_reports(list(reports), store, job=job, models=specs, force=force)
    else:
        records = apple.measure(specs, job, store, destination=destination, force=force)
    by_model = {r.get("model"): r for r in records}
    rows = []
    for spec in specs:
        prof, _ = pipeline.profile_record(spec, store)
        lat = by_model.get(spec.name) or {"status": "failed", "error": "not in the harness report"}
        rows.append({"model": spec.name, "profile": prof, "latency": lat,
                     "skipped": {"profile": True, "latency": False}})
    return rows


def ablate(study: str, *, as_frame: bool = True, **options: Any) -> Any:
    """The Section 3.2 bottleneck studies, as ``mobileone-bench ablate``: the 30-layer network with seven
    activations (``study="activations"``, Table 2) or with Squeeze-Excite / skip connections (``"blocks"``,
    Table 3), exported and measured, with the latency ratio to the ReLU baseline beside the paper's.

    Options are :func:`run`'s measurement options plus ``formats``, ``destination``, ``compute_units`` and
    ``from_reports`` (iPhone/Mac).

    Returns:
        One row per variant: variant, model, flops_m, latency_ms, ratio (to ReLU), paper_iphone_ms, paper_ratio,
        export_<format>, status.
    """
    _args.check(locals(), options_of=ablate_study, results=_args.ONE_FOLDER)
    rows, _, _ = ablate_study(study, **options)
    return _out(rows, as_frame, ("variant", "model", "flops_m", "latency_ms", "ratio", "paper_iphone_ms",
                                 "paper_ratio", "status"))


# ------------------------------------------------------------------------------------------------------ analysis


def load_results(results: Results = DEFAULT_RESULTS, kind: str | None = "latency", *, latest: bool = True,
                 as_frame: bool = True) -> Any:
    """The stored records, one row per record.

    Args:
        results: The results folder (written by ``run``, ``latency``, ``profile``), or a list of folders read as
            one (a record in two of them counts once).
        kind: ``latency``, ``profile``, ``peak``, or ``None`` for every kind.
        latest: Only the newest record per key (what the analysis uses); ``False`` for the whole history.
        as_frame: A DataFrame (default) or a list of record dicts.

    Example:
        >>> import mobileone_bench as mb
        >>> mb.load_results("results")[["model", "runtime", "latency_ms", "cv"]]   # doctest: +SKIP
    """
    _args.check(locals())
    from mobileone_bench.store.frames import open_store

    store = open_store(results)
    rows = store.latest(kind) if latest else store.records(kind)
    return _out(rows, as_frame, ("record_id", "kind", "model"), results=str(store.records_path))


def _correlation_frame(result: dict[str, Any]) -> "pd.DataFrame":
    return _frame(result["rows"], [c[0] for c in result["columns"]], title=result.get("title"),
                  notes=list(result.get("notes") or []), source=result.get("source"),
                  headers=[list(c) for c in result["columns"]])


def correlation(results: Results = DEFAULT_RESULTS, *, devices: str | Sequence[str] | None = None,
                against: str | Sequence[str] = "flops,params", models: str | Sequence[str] | None = None,
                exclude: str | Sequence[str] | None = None, zoo: str | None = None, runtime: str | None = None,
                threads: int | None = None, precision: str | None = None, reference: str | None = None,
                include_contended: bool = False) -> dict[str, Any]:
    """:func:`correlate` as the analysis module's dict (``rows``, ``columns``, ``title``, ``notes``, ``source``)."""
    _args.check(locals())
    from mobileone_bench.models import registry
    from mobileone_bench.store.frames import open_store, parse_devices, parse_list
    from mobileone_bench.analysis.correlate import correlate_records, correlate_reference, parse_against
    from mobileone_bench.errors import AnalysisError, UsageError

    device_list = parse_devices(devices)
    against_list = parse_against(against)
    if reference is not None:
        if str(reference).lower() != "paper":
            raise UsageError(f"unknown reference {reference!r}; choose from paper")
        reference = "paper"
    names = parse_list(_names(models)) + (registry.zoo_models(zoo) if zoo else [])
    exclude_list = parse_list(_names(exclude))
    store = open_store(results)
    filters = dict(models=names, exclude=exclude_list, device=device_list, runtime=runtime, threads=threads,
                   precision=precision, against=against_list, include_contended=include_contended)
    if reference is None:
        return correlate_records(store, **filters)
    result = correlate_reference(device=[d for d in device_list if d != "mac"], models=names, exclude=exclude_list,
                                 against=against_list)
    if store.latest("latency"):
        try:
            ours = correlate_records(store, **filters)
            result["rows"] = ours["rows"] + result["rows"]
            result["notes"] = ours["notes"] + result["notes"]
            result["source"] = f"{ours['source']} and {result['source']}"
            result["title"] = "Spearman rank correlation of latency with FLOPs and params: ours and the paper's"
        except AnalysisError as exc:
            result["notes"].insert(0, f"ours: {exc}")
    return result


def correlate(results: Results = DEFAULT_RESULTS, *, as_frame: bool = True, **options: Any) -> Any:
    """Spearman rank correlation of latency with FLOPs and params per device and runtime (the paper's Table 1),
    as ``mobileone-bench correlate``.

    Args:
        results: The results folder, or a list of folders read as one (one row per device and runtime, whichever
            host measured it).
        as_frame: A DataFrame (default) or the dict (``rows``, ``columns``, ``title``, ``notes``, ``source``).
        **options: ``devices``, ``against``, ``models``, ``exclude``, ``zoo``, ``runtime``, ``threads``,
            ``precision``, ``reference="paper"`` (rows from the paper's own Table 9, beside its published Table 1;
            works without records), ``include_contended``.

    Returns:
        One row per device/runtime: rho, p-value and n against each proxy (``flops_rho``, ``flops_p``, ``n``...);
        ``attrs`` has ``title``, ``notes``, ``source`` and ``headers`` (``[column, header]`` pairs).

    Example:
        >>> import mobileone_bench as mb
        >>> frame = mb.correlate(reference="paper", devices="cpu")
        >>> int(frame["n"].iloc[-1]) > 10
        True
    """
    _args.check(locals(), options_of=correlation)
    result = correlation(results, **options)
    return _correlation_frame(result) if as_frame else result


def build_paper_table(layout: str = "table9", *, models: str | Sequence[str] | None = None, zoo: str | None = None,
                      compare: bool = False, all_rows: bool = False, runtimes: str | Sequence[str] = (),
                      threads: int | None = None, precision: str | None = None,
                      results: Results = DEFAULT_RESULTS, include_contended: bool = False,
                      ci: bool = False) -> dict[str, Any]:
    """:func:`table` as the analysis module's dict (groups, columns, footnotes, agreement)."""
    _args.check(locals())
    from mobileone_bench.models import registry
    from mobileone_bench.store.frames import open_store
    from mobileone_bench.analysis.tables import build_table

    names = [s.name for s in registry.expand(_names(models), zoo=zoo)] if (models or zoo) else None
    return build_table(open_store(results), layout, models=names, all_rows=all_rows, compare=compare,
                       runtimes=[p.strip() for r in _names(runtimes) for p in r.split(",") if p.strip()],
                       threads=threads, precision=precision,
                       include_contended=include_contended, ci=ci)


def table(layout: str = "table9", *, as_frame: bool = True, **options: Any) -> Any:
    """The paper's Table 9 or Table 14 filled with the stored measurements, as ``mobileone-bench table``.

    Args:
        layout: ``table9`` or ``table14``.
        as_frame: A DataFrame (default) or the table dict (``groups``, ``columns``, ``footnotes``, ``agreement``),
            which :func:`mobileone_bench.analysis.tables.render` turns into Markdown, CSV or LaTeX.
        **options: ``models``, ``zoo``, ``compare`` (the paper's figure beside ours, and the rank agreement),
            ``all_rows``, ``runtimes``, ``threads``, ``precision``, ``results`` (a folder or a list of folders read as
            one), ``include_contended``, ``ci``
            (latencies shown with their 95% interval by the renderers; the bounds are columns either way).

    Returns:
        One row per model (the group, Transformer or Convolutional, in a column); ``attrs`` has ``title``,
        ``footnotes`` and ``agreement``.
    """
    _args.check(locals(), options_of=build_paper_table)
    from mobileone_bench.analysis.tables import flat_rows

    built = build_paper_table(layout, **options)
    if not as_frame:
        return built
    return _frame(flat_rows(built), (), title=built.get("title"), footnotes=list(built.get("footnotes") or []),
                  agreement=built.get("agreement"))


def plot_panels(figures: str | Sequence[str] | None = None, *, results: Results = DEFAULT_RESULTS,
                devices: str | Sequence[str] | None = None, runtime: str | None = None,
                models: str | Sequence[str] | None = None, exclude: str | Sequence[str] | None = None,
                zoo: str | None = None, reference: str | None = None, include_contended: bool = False,
                out: str | Path | None = None) -> list[dict[str, Any]]:
    """:func:`plot` with what was drawn: one dict per figure (``figure``, ``device``, ``runtime``, ``points``,
    ``reference_points``, ``notes``, ``fig`` the matplotlib Figure, and ``png`` / ``svg`` when ``out`` is given)."""
    _args.check(locals())
    from mobileone_bench.models import registry
    from mobileone_bench.store.frames import open_store, parse_devices, parse_list
    from mobileone_bench.analysis.plots import draw, figure_panels, parse_figures, save
    from mobileone_bench.errors import UsageError

    if reference is not None:
        if str(reference).lower() != "paper":
            raise UsageError(f"unknown reference {reference!r}; choose from paper")
        reference = "paper"
    names = parse_list(_names(models)) + (registry.zoo_models(zoo) if zoo else [])
    drawn = []
    for panel in figure_panels(open_store(results), parse_figures(_names(figures)), devices=parse_devices(devices),
                               runtime=runtime, models=names, exclude=parse_list(_names(exclude)),
                               reference=reference, include_contended=include_contended):
        fig = draw(panel)
        stem = f"{panel['figure']}_{panel['device']}" + (f"-{panel['runtime']}" if panel["runtime"] else "-paper")
        entry = {"figure": panel["figure"], "device": panel["device"], "runtime": panel["runtime"] or "paper",
                 "name": stem, "points": len(panel["points"]), "reference_points": len(panel["reference_points"]),
                 "notes": panel["notes"], "fig": fig}
        if out is not None:
            entry["png"], entry["svg"] = save(fig, out, stem)
        drawn.append(entry)
    return drawn


def plot(figures: str | Sequence[str] | None = None, *, out: str | Path | None = None,
         **options: Any) -> dict[str, Any]:
    """The paper's Figure 2 (latency vs FLOPs, latency vs params) and Figure 1 (top-1 vs latency) from the stored
    records, as ``mobileone-bench plot``, one figure per device and runtime.

    Args:
        figures: ``latency-vs-flops``, ``latency-vs-params``, ``accuracy-vs-latency`` (default: all three).
        out: Also write ``<name>.png`` and ``<name>.svg`` to this folder (nothing is written otherwise).
        **options: ``results`` (a folder or a list of folders read as one), ``devices``, ``runtime``, ``models``,
            ``exclude``, ``zoo``, ``reference="paper"``
            (overlay the paper's points), ``include_contended``.

    Returns:
        ``{name: matplotlib.figure.Figure}``, the name as ``latency-vs-flops_cpu-onnxruntime`` (the file stem).

    Example:
        >>> import mobileone_bench as mb
        >>> figs = mb.plot("latency-vs-flops", reference="paper", devices="iphone")
        >>> sorted(figs)
        ['latency-vs-flops_iphone-paper']
    """
    _args.check(locals(), options_of=plot_panels)
    return {p["name"]: p["fig"] for p in plot_panels(figures, out=out, **options)}


def roofline_report(results: Results = DEFAULT_RESULTS, *, models: str | Sequence[str] | None = None,
                    exclude: str | Sequence[str] | None = None, zoo: str | None = None, runtime: str | None = None,
                    threads: int | None = None, remeasure: bool = False, peak_gflops: float | None = None,
                    include_contended: bool = False, announce: Callable[[int], None] | None = None) -> dict[str, Any]:
    """:func:`roofline` as the analysis module's dict (``rows``, ``columns``, ``peaks``, ``notes``)."""
    _args.check(locals())
    from mobileone_bench.models import registry
    from mobileone_bench.store.frames import open_store, parse_list
    from mobileone_bench.analysis.roofline import roofline as roofline_rows
    from mobileone_bench.errors import AnalysisError

    store = open_store(results)
    if not store.latest("latency"):
        raise AnalysisError(f"no latency measurements in {store.root}: run `mobileone-bench run` (or "
                            f"`mobileone-bench latency --device cpu MODEL...`) first")
    names = parse_list(_names(models)) + (registry.zoo_models(zoo) if zoo else [])
    return roofline_rows(store, models=names, exclude=parse_list(_names(exclude)), runtime=runtime, threads=threads,
                         remeasure=remeasure, peak_override=peak_gflops, announce=announce,
                         include_contended=include_contended)


def roofline(results: Results = DEFAULT_RESULTS, *, as_frame: bool = True, **options: Any) -> Any:
    """Achieved GFLOP/s of every CPU latency record and its fraction of this CPU's measured float32 peak, as
    ``mobileone-bench roofline`` (the peak is measured once, a few seconds, and stored).

    Options: ``models``, ``exclude``, ``zoo``, ``runtime``, ``threads``, ``remeasure``, ``peak_gflops``,
    ``include_contended``. ``attrs`` has ``peaks`` and ``notes``. With several ``results`` folders, each machine's
    records use the peak stored for that machine in any of them; a peak measured now is stored in the first.
    """
    _args.check(locals(), options_of=roofline_report)
    result = roofline_report(results, **options)
    if not as_frame:
        return result
    return _frame(result["rows"], [c[0] for c in result["columns"]], peaks=result["peaks"], notes=result["notes"])


# ------------------------------------------------------------------------------------------------------ many hosts


def merge(sources: str | Path | Sequence[str | Path], into: str | Path, *, dry_run: bool = False,
          as_frame: bool = True) -> Any:
    """Copy the records of results folders (from other hosts, say) into one, as ``mobileone-bench merge SRC...
    --into DIR``: each new record once, verbatim (``record_id``, ``key`` and every field), after its samples file;
    nothing in ``into`` is rewritten or dropped, and merging again copies nothing.

    A record whose ``record_id`` is already in ``into`` with the same content is "already present"; with different
    content it is a conflict: ``into``'s is kept and the conflict is reported (the CLI exits with status 1). The
    merge holds the destination's append lock throughout, so concurrent merges and measurements are safe. See
    :mod:`mobileone_bench.store.merging` for how records from different hosts stay distinct.

    Args:
        sources: One results folder or a list of them.
        into: The destination (created if needed; an existing folder must be a results folder or empty).
        dry_run: Say what would be copied, write nothing.
        as_frame: A DataFrame (one row per source) or the whole report dict.

    Returns:
        One row per source: source, records, copied, already_present, conflicting, skipped, unreadable_lines,
        samples_copied, missing_samples, hosts; ``attrs`` has ``into``, ``dry_run``, ``conflicts`` (record_id,
        kind, model, source, what, fields), ``skipped_records`` and the totals. ``as_frame=False`` gives
        :func:`mobileone_bench.store.merging.merge`'s dict.

    Raises:
        UsageError: A source that is not a results folder, or a destination that cannot be one.
    """
    _args.check(locals())
    from mobileone_bench.store import merging

    report = merging.merge(sources, into, dry_run=dry_run)
    if not as_frame:
        return report
    attrs = {k: v for k, v in report.items() if k != "sources"}
    return _frame(report["sources"], merging.MERGE_COLUMNS, **attrs)


def export_results(results: Results = DEFAULT_RESULTS, *, format: str = "csv",  # noqa: A002 - the CLI's name
                   out: str | Path | None = None, kinds: str | Sequence[str] | None = None,
                   latest: bool = False) -> dict[str, Any]:
    """The results store in a form dashboards read, as ``mobileone-bench export-results``: a flat CSV or Parquet
    table (one row per record, every field a column) or the PyTorch OSS benchmark database's JSON (one entry per
    latency record and statistic; :mod:`mobileone_bench.store.export` documents the mapping).

    Args:
        results: A results folder, or a list of folders exported as one (a record in two counts once).
        format: ``csv``, ``parquet`` (needs pyarrow and ``out``) or ``pytorch-benchmark``.
        out: The file to write; ``None`` returns the text (CSV and JSON).
        kinds: Only these kinds of record (``latency``, ``profile``, ``peak``; default all).
        latest: Only the newest successful record per key instead of the whole history.

    Returns:
        ``{"format", "out", "records", "rows", "text"}``: how many records were exported, how many rows (or
        benchmark entries) were written, and the text when ``out`` is ``None``.

    Raises:
        UsageError: An unknown format or kind, Parquet without ``out``, a file that cannot be written.
        MissingDependencyError: Parquet without pyarrow (``pip install pyarrow``).
        AnalysisError: Nothing to export.
    """
    _args.check(locals())
    from mobileone_bench.store.frames import open_store
    from mobileone_bench.store.export import export_store

    return export_store(open_store(results), format, out, kinds=_names(kinds), latest=latest)
