"""The Python API: every step of the study as a function that returns plain values and pandas DataFrames (the
README's "From Python" shows them at work).

The ``mobileone-bench`` command is a thin adapter over these functions (it calls them, then renders what they
return), so a notebook and the command line never disagree. They are the package's top level, imported lazily
(``import mobileone_bench`` does not import torch). Conventions:

* Options have the CLI's names and defaults (``--runs`` is ``runs=``, ``--no-reparam`` is ``reparameterize=False``);
  models are a name, a wildcard or a list of them, and/or a ``zoo``. Arguments are checked first, by the rules of
  :mod:`mobileone_bench._args`: a wrong type, a value out of range or an unknown option is a one-line
  :class:`~mobileone_bench.errors.UsageError` naming it, before anything is built. The measurement options become
  one :class:`~mobileone_bench.pipeline.LatencyJob` (:func:`~mobileone_bench._args.latency_job`), and the pipeline
  runs the steps (:mod:`mobileone_bench.pipeline.study`); the analysis reads the records (:mod:`mobileone_bench.analysis`).
* Results are DataFrames (one row per model or record, the CLI's CSV/JSON columns first) unless ``as_frame=False``
  (the same rows as dicts). What the CLI prints beside a table (notes, footnotes, the rank agreement) is in the
  ``attrs`` of the frame, of the rows as dicts, and of the dicts ``run`` and ``plot`` return.
* The analysis functions take ``results`` as one folder or a list of folders read as one.
* Errors are typed (:mod:`mobileone_bench.errors`); nothing exits or prints but the progress bar
  (``progress=True``). In a sweep a failing model is a row with its status and error, and the others go on.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence, Union

from mobileone_bench import _args
from mobileone_bench._args import DEFAULT_MODELS_DIR, DEFAULT_RESULTS, as_names, select
from mobileone_bench._args import latency_job  # noqa: F401 - the job of a measurement, for notebooks and tests
from mobileone_bench.analysis.results import Result, correlation_frame, frame
from mobileone_bench.analysis.results import rows_or_frame as _out
from mobileone_bench.analysis.summary import RECORD_COLUMNS
from mobileone_bench.analysis.summary import SUMMARY_COLUMNS  # noqa: F401 - run's "models" columns
from mobileone_bench.api.evaluate import evaluate
from mobileone_bench.api.explain import explain
from mobileone_bench.api.report import report

if TYPE_CHECKING:  # pragma: no cover - names for type hints only; nothing heavy is imported at run time
    from torch import nn

__all__ = ["list_models", "list_zoos", "create_model", "reparam", "profile", "export", "latency", "run", "ablate",
           "load_results", "correlate", "table", "plot", "roofline", "merge", "export_results", "report",
           "evaluate", "explain"]

#: What the analysis functions read: one results folder, or several read as one (:mod:`mobileone_bench.store.merging`).
Results = Union[str, Path, Sequence[Union[str, Path]]]

#: The options and their defaults of each function that takes ``**options`` (:func:`mobileone_bench._args.check`).
OPTIONS: dict[str, dict[str, Any]] = {}


def _patterns(args: Mapping[str, Any]) -> list[str]:
    """The analysis functions' ``models`` (names or wildcards) and the members of their ``zoo``."""
    from mobileone_bench.models import registry
    from mobileone_bench.store.frames import parse_list

    return parse_list(as_names(args["models"])) + (registry.zoo_models(args["zoo"]) if args["zoo"] else [])


def _reference(value: str | None) -> str | None:
    from mobileone_bench.errors import UsageError

    if value is not None and str(value).lower() != "paper":
        raise UsageError(f"unknown reference {value!r}; choose from paper")
    return None if value is None else "paper"


# ------------------------------------------------------------------------------------------------------ models

MODEL_COLUMNS = ("name", "source", "target", "input", "branches", "paper_name", "notes")


def list_models(pattern: str | None = None, zoo: str | None = None, *, as_frame: bool = True) -> Any:
    """Every model the tool can build, as ``mobileone-bench list``.

    ``pattern``: a name or wildcard (``'mobileone*'``; ``'timm:mobilenet*'`` or ``'torchvision:*'`` list the outside
    zoos); ``zoo``: only its members (:func:`list_zoos`). One row per model: name, source, target, input, branches
    (re-parameterizable: yes / no / ?), paper_name, notes (why unavailable, or what the tool patches), available.

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

    ``name`` is a registry name (``mobileone_s0``, ``timm:resnet18``...); ``weights`` a local checkpoint (never
    downloaded); ``input_size`` the ``(H, W)`` of the check; ``rtol`` is relative to the largest absolute output.

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

    Returns model, input, params_train, params_infer, what re-parameterization did (modules fused, BatchNorms
    folded, any left), and with ``check`` max_abs_err, max_rel_err and check ("passed"; a failure raises
    :class:`~mobileone_bench.errors.ReparamMismatchError`); ``saved`` when ``save`` names a file for the
    inference-time state dict.
    """
    _args.check(locals())
    from mobileone_bench.pipeline import study

    return study.reparam_row(name, weights=weights, input_size=input_size, check=check, atol=atol, rtol=rtol,
                             save=save)


PROFILE_COLUMNS = ("model", "input", "params_m", "flops_m", "activations_m", "memory_mb_fp32", "memory_mb_fp16", "depth",
                   "paper_params_m", "paper_flops_m", "status", "error")


def profile(models: str | Sequence[str] | None = None, *, zoo: str | None = None,
            input_size: tuple[int, int] | None = None, weights: str | None = None, progress: bool = False,
            as_frame: bool = True, yes: bool = False, results: str | Path | None = None) -> Any:
    """Params and FLOPs of the inference-time model (1 FLOP = 1 multiply-add, BatchNorm folded), as
    ``mobileone-bench profile``, with the paper's figures beside them where it has the row. With ``results`` (a
    results folder) each model's profile is also stored there as a ``profile`` record (``record_id`` in its row), as
    ``run`` stores it: what ``correlate``, ``table`` and ``roofline`` read the FLOPs and params from.

    A model that fails is a row with ``status == "failed"`` and its error, and the others are still profiled;
    only a bad argument raises. The bar (``progress``) names each model's phase. A wildcard or zoo that selects more
    than 50 models needs ``yes=True`` (``--yes``). One row per model: model, input, params_m, flops_m, the other
    proxies, paper_params_m, paper_flops_m, status, error, and the exact params, flops, flops_by_op.

    Example:
        >>> import mobileone_bench as mb
        >>> row = mb.profile("mobileone_tiny", input_size=(64, 64)).iloc[0]
        >>> row["status"], bool(row["flops"] > 0)
        ('ok', True)
    """
    _args.check(locals(), results=_args.ONE_FOLDER_OR_NONE)
    from mobileone_bench.pipeline import study

    store = None
    if results is not None:
        from mobileone_bench.store.records import ResultsStore

        store = ResultsStore(results)
    rows = study.profile_rows(select(models, zoo, yes=yes), weights=weights, input_size=input_size,
                              progress=progress, store=store)
    return _out(rows, as_frame, PROFILE_COLUMNS)


EXPORT_COLUMNS = ("model", "format", "precision", "status", "parity", "size_mb", "seconds", "error")


def export(models: str | Sequence[str] | None = None, *, zoo: str | None = None, formats: str | Sequence[str] = "onnx",
           out: str | Path = DEFAULT_MODELS_DIR, precision: str | None = None, weights: str | None = None,
           input_size: tuple[int, int] | None = None, reparameterize: bool = True, force: bool = False,
           dynamic_batch: bool = False, opset: int = 18, coreml_type: str = "mlprogram",
           deployment_target: str | None = None, coreml_input: str = "tensor", trt_workspace_mb: int = 1024,
           tf32: bool = False, calibration_images: str | Path | None = None, calibration_samples: int = 16,
           progress: bool = False, as_frame: bool = True, yes: bool = False) -> Any:
    """Export models to ONNX, Core ML, TensorRT and/or ExecuTorch with a parity check and a manifest each, as
    ``mobileone-bench export``; matching artifacts are reused unless ``force``.

    ExecuTorch int8 calibrates on ``calibration_samples`` random inputs, or images of ``calibration_images``. One row
    per model and format: model, format, precision, status (exported, cached, failed, parity failed, unavailable),
    parity (max errors against PyTorch), size_mb, seconds, error, path.

    Example:
        >>> import mobileone_bench as mb
        >>> mb.export("mobileone_tiny", formats="onnx", out="models", input_size=(64, 64))[["format", "status"]]
        ... # doctest: +SKIP
    """
    _args.check(locals(), out=_args.ONE_FOLDER)
    from mobileone_bench.formats._base import ExportOptions, ensure_writable
    from mobileone_bench.pipeline import study

    options = ExportOptions(precision=precision, opset=opset, dynamic_batch=dynamic_batch, coreml_type=coreml_type,
                            coreml_target=deployment_target, coreml_input=coreml_input,
                            trt_workspace_mb=trt_workspace_mb, tf32=tf32,
                            calibration_images=None if calibration_images is None else str(calibration_images),
                            calibration_samples=calibration_samples)
    fmts = study.export_formats_checked(formats, options)
    specs = select(models, zoo, yes=yes)
    root = ensure_writable(Path(out))
    results = study.export_models(specs, fmts, root, options, weights=weights, input_size=input_size,
                                  reparameterize=reparameterize, force=force, progress=progress)
    return _out([r.as_row() for r in results], as_frame, EXPORT_COLUMNS, out=str(root))


# ------------------------------------------------------------------------------------------------------ latency


def latency(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
            runtime: str | None = None, warmup: int | None = None, runs: int | None = None,
            threads: int | None = None, precision: str | None = None, report: str | None = None,
            results: str | Path = DEFAULT_RESULTS, models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False,
            protocol: str | None = None, rounds: int | None = None, seed: int = 0,
            max_extra_rounds: int | None = None, extra_time: float | None = None,
            memory_budget: float | None = None, progress: bool = False, as_frame: bool = True,
            **options: Any) -> Any:
    """Measure latency with the paper's protocol and store every record, as ``mobileone-bench latency``.

    Several models are measured in interleaved rounds (``protocol="blocked"``: one block each); an identical
    measurement already stored is reused unless ``force``. The CLI's other options are keywords (``OPTIONS``):
    ``ort_opt``, ``cuda_graphs``, ``tf32`` (GPU), ``destination`` (iPhone: a name or UDID, a list, or ``"all"``),
    ``sequential``, ``compute_units``, ``from_reports``, ``team``, ``bundle_id``, ``harness``, ``weights``, ``input_size``,
    ``reparameterize``, ``wait_quiet``, ``ort_spinning``, ``on_warning``, ``yes`` (more than 50 models). More
    ``threads`` than logical cores is a :class:`~mobileone_bench.errors.BenchWarning` (the record keeps both).

    Returns:
        One row per model: the full stored record (statistics, protocol, contention readings, environment);
        ``attrs``: ``reused`` (record ids taken from the store), ``results`` (the records file), ``phones``.

    Example:
        >>> import mobileone_bench as mb
        >>> frame = mb.latency("mobileone_tiny", runs=5, warmup=1, threads=1, input_size=(64, 64),
        ...                    results="results")                          # doctest: +SKIP
        >>> frame[["model", "runtime", "n", "median_ms", "cv"]]            # doctest: +SKIP
    """
    args = _args.check(locals(), options=OPTIONS["latency"], results=_args.ONE_FOLDER)
    from mobileone_bench.errors import UsageError
    from mobileone_bench.pipeline import study
    from mobileone_bench.store.records import ResultsStore

    apple, reports = device in ("iphone", "mac"), args["from_reports"]
    if not apple and (reports or args["destination"]):
        raise UsageError("--from-report and --destination apply to --device iphone or mac")
    if args["sequential"] and (device != "iphone" or reports):
        raise UsageError("--sequential applies to measuring on --device iphone (several --destination)")
    job = _args.job(args)
    store = ResultsStore(results)
    if apple:
        specs = select(models, zoo, yes=args["yes"]) if (models or zoo or not reports) else None
        done = study.measure_apple(specs, job, store, reports=reports, force=force, progress=progress,
                                   on_warning=args["on_warning"], harness_dir=args["harness"],
                                   **{k: args[k] for k in ("destination", "sequential", "team", "bundle_id")})
    else:
        done = study.measure(select(models, zoo, yes=args["yes"]), job, store, force=force, progress=progress,
                             quiet=args["wait_quiet"])
    return _out(done.records, as_frame, RECORD_COLUMNS, reused=sorted(done.reused), results=str(store.records_path), phones=done.phones)


OPTIONS["latency"] = {**_args.job_options(without=inspect.signature(latency).parameters), "destination": None,
                      "sequential": False, "from_reports": (), "team": None, "bundle_id": None, "harness": None,
                      "wait_quiet": None, "on_warning": None, "yes": False}


# ------------------------------------------------------------------------------------------------------ run


def run(models: str | Sequence[str] | None = None, *, zoo: str | None = None, device: str = "cpu",
        runtime: str | None = None, warmup: int | None = None, runs: int | None = None, threads: int | None = None,
        precision: str | None = None, results: str | Path = DEFAULT_RESULTS,
        models_dir: str | Path = DEFAULT_MODELS_DIR, force: bool = False, protocol: str | None = None,
        rounds: int | None = None, seed: int = 0, max_extra_rounds: int | None = None,
        extra_time: float | None = None, memory_budget: float | None = None, wait_quiet: float | None = None,
        ort_spinning: bool | None = None, input_size: tuple[int, int] | None = None,
        remeasure_flagged: bool = False, progress: bool = False, as_frame: bool = True, cluster: str | None = None,
        on: str | Sequence[str] = (), retries: int = 0, yes: bool = False) -> dict[str, Any]:
    """The main job, as ``mobileone-bench run``: profile, export and measure every model (the ``quick`` zoo when
    none is named), storing each step; then the Table 9 layout and the Spearman correlations.

    A failing model is a row with its error and the rest go on; stored steps are reused unless ``force``. With
    ``cluster`` (a Ray address or ``"auto"``; the ``cluster`` extra), every model is measured on a node of each label
    in ``on`` and the records come back into ``results`` (:mod:`mobileone_bench.pipeline.cluster`; ``retries``: a
    job whose node died is sent again); the ``models`` rows then have an ``on`` column.

    Returns:
        A dict: ``models`` (model, params_m, flops_m, latency_ms, cv, paper_latency_ms, status), ``records``,
        ``table`` (Table 9 rows, the paper's figures beside ours, or ``None``), ``agreement``, ``correlation``
        (Table 1 rows), ``notes``; DataFrames unless ``as_frame=False``. ``attrs``: ``job``, ``results`` (the
        records file), ``built_table``, ``table_note``, ``correlation_note``, ``remeasure_notes``.

    Example:
        >>> import mobileone_bench as mb
        >>> out = mb.run(["mobileone_s0", "mobilenetv2-x1.0"], runs=20, results="results")   # doctest: +SKIP
        >>> out["models"][["model", "flops_m", "latency_ms"]]                                 # doctest: +SKIP
    """
    args = _args.check(locals(), results=_args.ONE_FOLDER)
    from dataclasses import replace

    from mobileone_bench.analysis.summary import run_report
    from mobileone_bench.pipeline import study
    from mobileone_bench.store.records import ResultsStore

    labels = study.run_labels(device, cluster, on, retries, wait_quiet)
    # on a cluster the runtime need not be installed here, only on the nodes, and threads stay the user's (None:
    # each node's cores)
    job = _args.job(args, check_available=cluster is None)
    job = job if cluster is None else replace(job, threads=threads if device == "cpu" else None)
    specs = select(models, zoo, default_zoo="quick", yes=yes)
    store = ResultsStore(results)
    rows, notes = study.run(specs, job, store, force=force, remeasure_flagged=remeasure_flagged, progress=progress,
                            quiet=wait_quiet, cluster=cluster, labels=labels, retries=retries)
    return run_report(store, [s.name for s in specs], study.summary_rows(rows), [r["latency"] for r in rows], notes,
                      device=job.device, runtime=job.runtime, threads=job.threads, precision=job.precision,
                      as_frame=as_frame, job=job, results=str(store.records_path))


# ------------------------------------------------------------------------------------------------------ ablate

ABLATE_COLUMNS = ("variant", "model", "flops_m", "latency_ms", "ratio", "paper_iphone_ms", "paper_ratio", "status")


def ablate(study: str, *, as_frame: bool = True, **options: Any) -> Any:
    """The Section 3.2 bottleneck studies, as ``mobileone-bench ablate``: the 30-layer network with seven
    activations (``study="activations"``, Table 2) or with Squeeze-Excite / skip connections (``"blocks"``,
    Table 3), exported and measured, with the latency ratio to the ReLU baseline beside the paper's.

    Options are :func:`run`'s measurement options plus ``formats``, ``destination``, ``compute_units`` and
    ``from_reports`` (iPhone/Mac). One row per variant: variant, model, flops_m, latency_ms, ratio (to ReLU),
    paper_iphone_ms, paper_ratio, export_<format>, status; ``attrs``: the ``job`` and the ``formats``.
    """
    args = _args.check(locals(), options=OPTIONS["ablate"], results=_args.ONE_FOLDER)
    from mobileone_bench.errors import UsageError
    from mobileone_bench.pipeline import study as studies
    from mobileone_bench.store.records import ResultsStore

    if study not in studies.ABLATIONS:
        raise UsageError(f"unknown study {study!r}; choose from {', '.join(studies.ABLATIONS)}")
    if (args["from_reports"] or args["destination"]) and args["device"] not in ("iphone", "mac"):
        raise UsageError("--from-report and --destination apply to --device iphone or mac")
    job = _args.job(args)
    specs = select((), studies.ABLATIONS[study][0])
    fmts = studies.ablation_formats(args["formats"])
    rows = studies.ablate(study, specs, fmts, job, ResultsStore(args["results"]), force=args["force"],
                          progress=args["progress"], quiet=args["wait_quiet"], reports=args["from_reports"],
                          destination=args["destination"])
    return _out(rows, as_frame, ABLATE_COLUMNS, job=job, formats=[f.name for f in fmts])


# what the variants are made of (their input, weights, numerics) is the study's, not an option
OPTIONS["ablate"] = {**_args.job_options(without=("report", "ort_opt", "cuda_graphs", "weights", "input_size",
                                             "reparameterize")),
                     "results": DEFAULT_RESULTS, "force": False, "wait_quiet": None, "formats": "onnx,coreml",
                     "destination": None, "from_reports": (), "progress": False}


# ------------------------------------------------------------------------------------------------------ analysis


def load_results(results: Results = DEFAULT_RESULTS, kind: str | None = "latency", *, latest: bool = True,
                 as_frame: bool = True) -> Any:
    """The stored records, one row per record.

    ``kind``: ``latency``, ``profile``, ``peak``, ``accuracy`` (:func:`evaluate`'s), or ``None`` for every kind;
    ``latest``: only the newest record per key (what the analysis uses), ``False`` for the whole history.

    Example:
        >>> import mobileone_bench as mb
        >>> mb.load_results("results")[["model", "runtime", "latency_ms", "cv"]]   # doctest: +SKIP
    """
    _args.check(locals())
    from mobileone_bench.store.frames import open_store

    store = open_store(results)
    rows = store.latest(kind) if latest else store.records(kind)
    return _out(rows, as_frame, ("record_id", "kind", "model"), results=str(store.records_path))


def correlate(results: Results = DEFAULT_RESULTS, *, as_frame: bool = True, **options: Any) -> Any:
    """Spearman rank correlation of latency with FLOPs and params per device and runtime (the paper's Table 1),
    as ``mobileone-bench correlate``.

    Options: ``devices``, ``against``, ``models``, ``exclude``, ``zoo``, ``runtime``, ``threads``, ``precision``,
    ``reference="paper"`` (rows from the paper's own Table 9 beside its published Table 1; works without records),
    ``include_contended``.

    Returns:
        One row per device/runtime: rho, p-value and n against each proxy (``flops_rho``, ``flops_p``, ``n``...);
        ``attrs``: ``title``, ``notes``, ``source``, ``headers``. ``as_frame=False``: the analysis' dict.

    Example:
        >>> import mobileone_bench as mb
        >>> frame = mb.correlate(reference="paper", devices="cpu")
        >>> int(frame["n"].iloc[-1]) > 10
        True
    """
    args = _args.check(locals(), options=OPTIONS["correlate"])
    from mobileone_bench.analysis import correlate as analysis
    from mobileone_bench.store.frames import open_store, parse_devices, parse_list

    devices, against = parse_devices(args["devices"]), analysis.parse_against(args["against"])
    reference = _reference(args["reference"])
    names, exclude = _patterns(args), parse_list(as_names(args["exclude"]))
    result = analysis.correlate(open_store(results), devices=devices, against=against, models=names, exclude=exclude,
                                runtime=args["runtime"], threads=args["threads"], precision=args["precision"],
                                reference=reference is not None, include_contended=args["include_contended"])
    return correlation_frame(result) if as_frame else result


OPTIONS["correlate"] = {"devices": None, "against": "flops,params", "models": None, "exclude": None, "zoo": None,
                        "runtime": None, "threads": None, "precision": None, "reference": None,
                        "include_contended": False}


def table(layout: str = "table9", *, as_frame: bool = True, **options: Any) -> Any:
    """The paper's Table 9 or Table 14 filled with the stored measurements, as ``mobileone-bench table``.

    Options: ``models``, ``zoo``, ``compare`` (the paper's figure beside ours, and the rank agreement), ``all_rows``,
    ``runtimes``, ``threads``, ``precision``, ``results``, ``include_contended``, ``ci`` (latencies shown with their
    95% interval by the renderers; the bounds are columns either way).

    Returns:
        One row per model of ``layout`` (``table9`` or ``table14``), its group in a column; ``attrs``: ``title``,
        ``footnotes``, ``agreement``. ``as_frame=False``: the table dict, which
        :func:`mobileone_bench.analysis.tables.render` turns into Markdown, CSV or LaTeX.
    """
    args = _args.check(locals(), options=OPTIONS["table"])
    from mobileone_bench.analysis.tables import build_table, flat_rows
    from mobileone_bench.models import registry
    from mobileone_bench.store.frames import open_store

    models, zoo = args["models"], args["zoo"]
    names = [s.name for s in registry.expand(as_names(models), zoo=zoo)] if (models or zoo) else None
    built = build_table(open_store(args["results"]), layout, models=names, all_rows=args["all_rows"],
                        compare=args["compare"],
                        runtimes=[p.strip() for r in as_names(args["runtimes"]) for p in r.split(",") if p.strip()],
                        threads=args["threads"], precision=args["precision"],
                        include_contended=args["include_contended"], ci=args["ci"])
    if not as_frame:
        return built
    return frame(flat_rows(built), (), title=built.get("title"), footnotes=list(built.get("footnotes") or []),
                 agreement=built.get("agreement"))


OPTIONS["table"] = {"models": None, "zoo": None, "compare": False, "all_rows": False, "runtimes": (), "threads": None,
                    "precision": None, "results": DEFAULT_RESULTS, "include_contended": False, "ci": False}


def plot(figures: str | Sequence[str] | None = None, *, out: str | Path | None = None,
         **options: Any) -> dict[str, Any]:
    """The paper's Figure 2 (latency vs FLOPs, latency vs params) and Figure 1 (top-1 vs latency) from the stored
    records, as ``mobileone-bench plot``, one figure per device and runtime.

    ``figures``: ``latency-vs-flops``, ``latency-vs-params``, ``accuracy-vs-latency`` (default: all three); ``out``:
    also write ``<name>.png`` and ``<name>.svg`` there. Options: ``results``, ``devices``, ``runtime``, ``models``,
    ``exclude``, ``zoo``, ``reference="paper"`` (overlay the paper's points), ``include_contended``.

    Returns:
        ``{name: matplotlib Figure}``, the name as ``latency-vs-flops_cpu-onnxruntime`` (the file stem);
        ``attrs["panels"]``: what each shows (figure, device, runtime, points, reference_points, notes, png, svg).

    Example:
        >>> import mobileone_bench as mb
        >>> figs = mb.plot("latency-vs-flops", reference="paper", devices="iphone")
        >>> sorted(figs)
        ['latency-vs-flops_iphone-paper']
    """
    args = _args.check(locals(), options=OPTIONS["plot"])
    from mobileone_bench.analysis.plots import make_plots, parse_figures
    from mobileone_bench.store.frames import open_store, parse_devices, parse_list

    reference = _reference(args["reference"])
    names = _patterns(args)
    store, wanted = open_store(args["results"]), parse_figures(as_names(figures))
    drawn = make_plots(store, out, figures=wanted, devices=parse_devices(args["devices"]), runtime=args["runtime"],
                       models=names, exclude=parse_list(as_names(args["exclude"])), reference=reference,
                       include_contended=args["include_contended"])
    return Result({d["name"]: d["fig"] for d in drawn},
                  panels=[{k: v for k, v in d.items() if k not in ("fig", "name")} for d in drawn])


OPTIONS["plot"] = {"results": DEFAULT_RESULTS, "devices": None, "runtime": None, "models": None, "exclude": None,
                   "zoo": None, "reference": None, "include_contended": False}


def roofline(results: Results = DEFAULT_RESULTS, *, as_frame: bool = True, **options: Any) -> Any:
    """Achieved GFLOP/s of every CPU latency record and its fraction of this CPU's measured float32 peak, as
    ``mobileone-bench roofline`` (the peak is measured once, a few seconds, and stored: see
    :mod:`mobileone_bench.pipeline.peak`).

    Options: ``models``, ``exclude``, ``zoo``, ``runtime``, ``threads``, ``remeasure``, ``peak_gflops``,
    ``include_contended``, ``announce`` (called with the thread count before a peak is measured). ``attrs``: ``peaks``,
    ``notes`` (``as_frame=False``: the dict). Each machine's records use the peak stored for it in any ``results``
    folder; a peak measured now is stored in the first.
    """
    args = _args.check(locals(), options=OPTIONS["roofline"])
    from mobileone_bench.analysis import roofline as analysis
    from mobileone_bench.errors import AnalysisError
    from mobileone_bench.pipeline import peak
    from mobileone_bench.store.frames import open_store, parse_list

    store = open_store(results)
    if not store.latest("latency"):
        raise AnalysisError(f"no latency measurements in {store.root}: run `mobileone-bench run` (or "
                            f"`mobileone-bench latency --device cpu MODEL...`) first")
    latencies, notes = analysis.cpu_latencies(store, models=_patterns(args), runtime=args["runtime"],
                                              exclude=parse_list(as_names(args["exclude"])), threads=args["threads"],
                                              include_contended=args["include_contended"])
    peaks = peak.peaks(store, analysis.machines_and_threads(latencies), remeasure=args["remeasure"],
                       given=args["peak_gflops"], announce=args["announce"])
    result = analysis.report(latencies, peaks, notes)
    if not as_frame:
        return result
    return frame(result["rows"], [c[0] for c in result["columns"]], peaks=result["peaks"], notes=result["notes"])


OPTIONS["roofline"] = {"models": None, "exclude": None, "zoo": None, "runtime": None, "threads": None,
                       "remeasure": False, "peak_gflops": None, "include_contended": False, "announce": None}


# ------------------------------------------------------------------------------------------------------ many hosts


def merge(sources: str | Path | Sequence[str | Path], into: str | Path, *, dry_run: bool = False,
          as_frame: bool = True) -> Any:
    """Copy the records of results folders (from other hosts, say) into one, as ``mobileone-bench merge SRC...
    --into DIR``: each new record once, verbatim (``record_id``, ``key`` and every field), after its samples file;
    nothing in ``into`` is rewritten or dropped, and merging again copies nothing.

    A record whose ``record_id`` is already in ``into`` with the same content is "already present"; with different
    content it is a conflict: ``into``'s is kept and the conflict reported (the CLI exits with status 1). The merge
    holds the destination's lock throughout (:mod:`mobileone_bench.store.merging`). ``sources``: one folder or a list;
    ``into`` is created if needed; ``dry_run`` writes nothing.

    Returns one row per source (records, copied, already_present, conflicting, skipped, ...); ``attrs``: ``into``,
    ``dry_run``, ``conflicts``, ``skipped_records``, the totals (``as_frame=False``: the merge's report dict). A
    source that is not a results folder, or a destination that cannot be one, is a ``UsageError``.
    """
    _args.check(locals())
    from mobileone_bench.store import merging

    report = merging.merge(sources, into, dry_run=dry_run)
    if not as_frame:
        return report
    attrs = {k: v for k, v in report.items() if k != "sources"}
    return frame(report["sources"], merging.MERGE_COLUMNS, **attrs)


def export_results(results: Results = DEFAULT_RESULTS, *, format: str = "csv",  # noqa: A002 - the CLI's name
                   out: str | Path | None = None, kinds: str | Sequence[str] | None = None,
                   latest: bool = False) -> dict[str, Any]:
    """The results store in a form dashboards read, as ``mobileone-bench export-results``: a flat CSV or Parquet
    table (one row per record, every field a column) or the PyTorch OSS benchmark database's JSON (one entry per
    latency record and statistic; :mod:`mobileone_bench.store.export` documents the mapping).

    ``format`` is ``csv``, ``parquet`` (needs pyarrow and ``out``) or ``pytorch-benchmark``; ``out`` the file (``None``:
    the text is returned); ``kinds`` the kinds of record (default all); ``latest`` only the newest successful record
    per key.

    Returns ``{"format", "out", "records", "rows", "text"}``: records exported, rows (or benchmark entries) written,
    and the text when ``out`` is ``None``.

    Raises:
        UsageError: An unknown format or kind, Parquet without ``out``, a file that cannot be written.
        MissingDependencyError: Parquet without pyarrow. AnalysisError: Nothing to export.
    """
    _args.check(locals())
    from mobileone_bench.store.frames import open_store
    from mobileone_bench.store.export import export_store

    return export_store(open_store(results), format, out, kinds=as_names(kinds), latest=latest)
