"""The studies the API runs, step by step: profile and export sweeps, a latency measurement (here or on an iPhone
or a Mac), the whole pipeline over a zoo (here or on a Ray cluster) with its re-measure pass, and the Section 3.2
ablation.

The API (:mod:`mobileone_bench.api`) checks the arguments, builds the :class:`~mobileone_bench.pipeline.LatencyJob`
once, selects the models and opens the store; the functions here know the order of the steps and report progress
on a bar (``progress``). A model that fails is a row or a record with its error, and the others go on.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Sequence

from mobileone_bench._progress import Step, bar, console
from mobileone_bench.pipeline.measure import measure_models
from mobileone_bench.pipeline.preparing import prepare, profile, profile_record
from mobileone_bench.pipeline.recording import failure_message, flagged, is_unavailable
from mobileone_bench.pipeline.run import run_models

if TYPE_CHECKING:  # pragma: no cover
    from mobileone_bench.formats import FormatSpec
    from mobileone_bench.formats._base import ExportOptions, ExportResult
    from mobileone_bench.models.registry import ModelSpec
    from mobileone_bench.pipeline.job import LatencyJob
    from mobileone_bench.store.records import ResultsStore

__all__ = ["Measured", "wait_quiet", "reparam_row", "profile_rows", "export_formats_checked", "export_models", "measure",
           "measure_apple", "run", "run_labels", "summary_rows", "ABLATIONS", "ablation_formats", "ablate"]

Rows = list[dict[str, Any]]


def wait_quiet(seconds: float | None, progress: bool) -> None:
    """Wait (up to ``seconds``) until other processes leave the CPUs nearly idle; said on the console with
    ``progress``. ``None``: do not wait."""
    if seconds is None:
        return
    from mobileone_bench.devices._contention import wait_quiet as wait

    def say(text: str) -> None:
        if progress:
            console().print(text, highlight=False)

    waited = wait(seconds, on_wait=lambda t, busy: say(
        f"waiting for a quiet machine: other processes use {busy:.0%} of the CPUs ({t:.0f} s)"))
    if waited:
        say(f"quiet after {waited:.0f} s")


def _blocks_bar(progress: bool, n_models: int, job: LatencyJob, title: str) -> Any:
    """A bar over the timed blocks of a measurement (``n x rounds`` interleaved, ``n`` blocked)."""
    blocks = n_models * (int(job.rounds or 1) if job.protocol == "interleaved" else 1)
    return bar(progress, blocks, title)


def _on_block(step: Step) -> Callable[[str, str], None]:
    def on_step(model: str, what: str) -> None:
        step(f"{model}: {what}", advance=1 if what.startswith(("round ", "measure ")) else 0)

    return on_step


# ------------------------------------------------------------------------------------------------------ profile


def reparam_row(name: str | ModelSpec, *, weights: str | None = None, input_size: tuple[int, int] | None = None,
                check: bool = True, atol: float = 1e-5, rtol: float = 1e-4, save: str | None = None) -> dict[str, Any]:
    """Re-parameterize a model and say what was done (``mobileone-bench reparam``): the row of
    :func:`mobileone_bench.api.reparam`. ``save`` is checked writable before anything is built, then written whole.

    Raises:
        ReparamMismatchError: The check failed.
    """
    from mobileone_bench.complexity import count_params
    from mobileone_bench.reparameterization import check_save_path, save_state_dict

    if save:
        check_save_path(save)  # a real write and remove in its folder, before anything is built
    prepared = prepare(name, weights=weights, input_size=input_size, check=check, atol=atol, rtol=rtol)
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
        save_state_dict(prepared.model, save)  # whole or not at all, with the system's reason
        row["saved"] = str(save)
    return row


def _paper_figures(name: str) -> dict[str, Any]:
    from mobileone_bench.reference import paper_row

    for table_name in ("table9", "table13"):
        row = paper_row(name, table_name)
        if row:
            return {"paper_flops_m": row.get("flops_m"), "paper_params_m": row.get("params_m")}
    return {}


def _profile_row(spec: ModelSpec, *, weights: str | None, input_size: tuple[int, int] | None,
                 step: Step, store: ResultsStore | None = None) -> dict[str, Any]:
    """One model's profile row: its figures, or its failure as the row's status and error (a bad argument raises);
    with a ``store``, the profile record too (``record_id``), as ``run`` stores it."""
    from mobileone_bench.errors import UsageError
    from mobileone_bench.models import registry

    row: dict[str, Any] = {"model": spec.name, **_paper_figures(spec.name)}
    if not spec.available:
        row.update(status="unavailable", error=spec.reason)
        return row
    try:
        row["input"] = "x".join(str(d) for d in registry.input_shape(spec, input_size)[2:])
        step(f"{spec.name}: build + re-parameterize")
        prepared = prepare(spec, weights=weights, input_size=input_size, check=False)
        step(f"{spec.name}: count params and FLOPs")
        row.update(profile(prepared), status="ok", error=None)
        if store is not None:
            record, _ = profile_record(spec, store, input_size=input_size, weights=weights, prepared=prepared)
            row["record_id"] = record.get("record_id")
    except UsageError:
        raise
    except Exception as exc:  # noqa: BLE001 - one model's failure is data; the sweep goes on, as in run and latency
        row.update(status="failed", error=failure_message(exc))
    return row


def profile_rows(specs: list[ModelSpec], *, weights: str | None = None, input_size: tuple[int, int] | None = None,
                 progress: bool = False, store: ResultsStore | None = None) -> Rows:
    """Params, FLOPs and the other proxies of every model, beside the paper's figures (stored as profile records in
    ``store`` when one is given); the bar names each model's phase (build + re-parameterize, count)."""
    rows: Rows = []
    with bar(progress, len(specs), "profile") as step:
        for spec in specs:
            step(spec.name)
            rows.append(_profile_row(spec, weights=weights, input_size=input_size, step=step, store=store))
            step(spec.name, advance=1)
    return rows


# ------------------------------------------------------------------------------------------------------ export


def export_formats_checked(formats: str | Sequence[str], options: ExportOptions) -> list[FormatSpec]:
    """The formats of an export, with everything that would stop it checked before any work (one line each): the
    options, the precision each format can carry, its library installed, a GPU where it needs one."""
    from mobileone_bench.formats import check_format_available, parse_formats

    fmts = parse_formats(formats)
    options.validate()
    for fmt in fmts:
        options.precision_for(fmt)  # unsupported precision: one line, before any work
        check_format_available(fmt)
        if fmt.needs_gpu:
            from mobileone_bench.formats.tensorrt import require_gpu

            require_gpu()
    return fmts


def export_models(specs: list[ModelSpec], formats: Sequence[FormatSpec], out: Path, options: ExportOptions, *,
                  weights: str | None = None, input_size: tuple[int, int] | None = None,
                  reparameterize: bool = True, force: bool = False, progress: bool = False) -> list[ExportResult]:
    """Export every model to every format (a format built from another gets that one's artifact first: see
    :func:`mobileone_bench.pipeline.artifacts.export_formats`); a model's failure is a result per format, the sweep
    goes on."""
    from mobileone_bench.errors import UsageError, one_line
    from mobileone_bench.formats._base import FAILED, UNAVAILABLE, ExportResult
    from mobileone_bench.pipeline.artifacts import export_formats

    results: list[ExportResult] = []
    with bar(progress, len(specs), "export") as step:
        for i, spec in enumerate(specs):
            step(spec.name, advance=1 if i else 0)
            if not spec.available:
                results += [ExportResult(spec.name, f.name, options.precision_for(f), UNAVAILABLE, error=spec.reason)
                            for f in formats]
                continue
            try:
                prepared = prepare(spec, weights=weights, input_size=input_size, reparameterize=reparameterize,
                                   check=reparameterize)
            except UsageError:
                raise
            except Exception as exc:  # noqa: BLE001 - recorded per format, the sweep goes on
                error = f"model: {one_line(exc, limit=393)}"
                results += [ExportResult(spec.name, f.name, options.precision_for(f), FAILED, error=error)
                            for f in formats]
                continue
            results += export_formats(prepared, formats, out, options, force=force)
    return results


# ------------------------------------------------------------------------------------------------------ latency


@dataclass
class Measured:
    """What a latency measurement did: the records (one per model, in order; per model and phone on several
    iPhones), the ids of those reused from the store, and one summary per iPhone measured."""

    records: Rows
    reused: set[str]
    phones: Rows = field(default_factory=list)


def measure(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *, force: bool = False,
            progress: bool = False, quiet: float | None = None) -> Measured:
    """Measure the models' latency on this host (interleaved rounds for several unless the job says ``blocked``),
    after waiting up to ``quiet`` seconds for a quiet machine."""
    wait_quiet(quiet, progress)
    job = job.for_models(len(specs))
    with _blocks_bar(progress, len(specs), job, "latency") as step:
        done = measure_models(specs, job, store, force=force, on_step=_on_block(step))
    return Measured([rec for rec, _ in done], {rec["record_id"] for rec, reused in done if reused})


def _bench_warning(message: str) -> None:
    from mobileone_bench.errors import BenchWarning

    warnings.warn(message, BenchWarning, stacklevel=4)


def measure_apple(specs: list[ModelSpec] | None, job: LatencyJob, store: ResultsStore, *,
                  reports: Sequence[str] = (), force: bool = False, progress: bool = False,
                  on_warning: Callable[[str], None] | None = None, **harness: Any) -> Measured:
    """Latency on iPhones or this Mac (:mod:`mobileone_bench.pipeline.phone`): harness ``reports`` imported (only
    the ``specs`` when given), or the models measured with the harness (``harness``: ``destination``,
    ``sequential``, ``harness_dir``, ``team``, ``bundle_id``). Warnings go to ``on_warning`` (default: Python's
    ``warnings`` as :class:`~mobileone_bench.errors.BenchWarning`)."""
    from mobileone_bench.pipeline import phone

    warn = on_warning or _bench_warning
    before = {r.get("record_id") for r in store.records("latency")}
    if reports:
        records = phone.import_reports(list(reports), store, job=job, models=specs, force=force, on_warning=warn)
    else:
        specs = list(specs or [])
        phones = max(1, len(phone.destination_names(harness.get("destination"))))
        with bar(progress, len(specs) * phones, job.device) as step:
            records = phone.measure(specs, job, store, force=force, on_warning=warn,
                                    on_progress=lambda text, finished: step(text, advance=int(finished)), **harness)
    return Measured(records, {r["record_id"] for r in records if r.get("record_id") in before},
                    phone.phone_summaries(records))


# ------------------------------------------------------------------------------------------------------ run


def _sweep(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *, force: bool, title: str,
           progress: bool, force_latency: bool = False) -> Rows:
    job = job.for_models(len(specs))
    with _blocks_bar(progress, len(specs), job, title) as step:
        return run_models(specs, job, store, force=force, force_latency=force_latency, on_step=_on_block(step))


def _remeasure(rows: Rows, specs: list[ModelSpec], again: Callable[[list[ModelSpec]], Rows], notes: list[str]) -> Rows:
    """One more pass over the models whose latency record is flagged (contended, or noisy by its CV): the new
    records are appended (readers take the newest per key) and replace the flagged ones in ``rows`` (a row is a
    model, or a model on a cluster label)."""
    names = list(dict.fromkeys(r["model"] for r in rows if flagged(r["latency"])))
    if not names:
        notes.append("--remeasure-flagged: no latency record is flagged")
        return rows
    notes.append(f"--remeasure-flagged: measured {len(names)} flagged model(s) again: {', '.join(names)}")

    def where(row: dict[str, Any]) -> tuple[str, Any]:
        return row["model"], row.get("on")

    new = {where(r): r for r in again([s for s in specs if s.name in names])}
    out = [new.get(where(r), r) if flagged(r["latency"]) else r for r in rows]
    still = list(dict.fromkeys(r["model"] for r, old in zip(out, rows) if r is not old and flagged(r["latency"])))
    if still:
        notes.append(f"--remeasure-flagged: still flagged: {', '.join(still)}")
    return out


def run_labels(device: str, cluster: str | None, on: str | Sequence[str], retries: int,
               quiet: float | None) -> list[str]:
    """Where a run measures, checked before anything is built: the cluster labels (``on``), or none for this machine.

    Raises:
        UsageError: An iPhone or Mac (``run`` measures on cpu or gpu); ``--on``/``--retries`` without ``--cluster``,
            no label, a device a node cannot be, or ``--wait-quiet`` (this machine's quiet says nothing of a node's).
    """
    from mobileone_bench.errors import UsageError

    labels = [on] if isinstance(on, str) else list(on)
    if cluster is None and not on and not retries:
        if device in ("iphone", "mac"):
            raise UsageError(f"`run` measures on cpu or gpu; for {device}, export with `export --format coreml`, "
                             f"then `latency --device {device}` (or import the app's report with --from-report)")
        return []
    if cluster is None:
        raise UsageError("--on and --retries need --cluster ADDRESS (or auto)")
    if not labels:
        raise UsageError("--cluster needs at least one --on LABEL (the hosts to measure on, e.g. --on cpu-x86)")
    if retries < 0:
        raise UsageError("--retries must be >= 0")
    if device not in ("cpu", "gpu"):
        raise UsageError(f"--cluster measures on cpu or gpu nodes, not {device}")
    if quiet is not None:
        raise UsageError("--wait-quiet applies to a run on this machine, not to --cluster")
    return labels


def run(specs: list[ModelSpec], job: LatencyJob, store: ResultsStore, *, force: bool = False,
        remeasure_flagged: bool = False, progress: bool = False, quiet: float | None = None,
        cluster: str | None = None, labels: Sequence[str] = (), retries: int = 0) -> tuple[Rows, list[str]]:
    """Profile and measure every model, each step stored (a stored step is reused unless ``force``), then with
    ``remeasure_flagged`` one more pass over the flagged latencies.

    On this host the models are measured together (:func:`mobileone_bench.pipeline.run_models`), after waiting up
    to ``quiet`` seconds for a quiet machine; with ``cluster`` (a Ray address, :mod:`mobileone_bench.pipeline.cluster`)
    every model is measured on a node of each of ``labels`` and the rows have an ``on`` column.

    Returns:
        The rows (``{"model", "profile", "latency", "skipped"}``, one per model, or per model and label) and the
        notes of the re-measure pass.
    """
    notes: list[str] = []
    if cluster is None:
        wait_quiet(quiet, progress)
        rows = _sweep(specs, job, store, force=force, title="run", progress=progress)
        if remeasure_flagged:
            rows = _remeasure(rows, specs, lambda todo: _sweep(todo, job, store, force=False, title="remeasure",
                                                               progress=progress, force_latency=True), notes)
        return rows, notes
    from mobileone_bench.pipeline import cluster as ray

    labels = list(labels)
    with ray.connect(cluster) as executor:

        def sweep(todo: list[ModelSpec], force_latency: bool, title: str) -> Rows:
            with bar(progress, len(todo) * len(labels), title) as step:
                return ray.drive(todo, labels, job, store, executor, force=force, force_latency=force_latency,
                                 retries=retries, on_step=lambda m, s: step(
                                     f"{m}: {s}", advance=1 if s.startswith("measure ") else 0))

        rows = sweep(specs, False, "run")
        if remeasure_flagged:
            rows = _remeasure(rows, specs, lambda todo: sweep(todo, True, "remeasure"), notes)
    return rows, notes


def summary_rows(rows: Rows) -> Rows:
    """One line per row of :func:`run`: params, FLOPs, latency and its CV beside the paper's latency on the device,
    and a status (``ok``, ``ok (stored)``, ``failed: ...``, the reason a model cannot be built; contended or noisy)."""
    from mobileone_bench.reference import paper_row

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


# ------------------------------------------------------------------------------------------------------ ablate

ABLATIONS = {"activations": ("ablation-activations", "table2"), "blocks": ("ablation-blocks", "table3")}


def ablation_formats(formats: str | Sequence[str]) -> list[FormatSpec]:
    """The formats the ablation variants are exported to, checked available (TensorRT left out: it needs a GPU
    and says nothing more about the variants than ONNX)."""
    from mobileone_bench.formats import check_format_available, parse_formats

    fmts = parse_formats(formats)
    for f in fmts:
        check_format_available(f)
    return [f for f in fmts if f.name != "tensorrt"]


def ablate(study: str, specs: list[ModelSpec], formats: Sequence[FormatSpec], job: LatencyJob,
           store: ResultsStore, *, force: bool = False, progress: bool = False, quiet: float | None = None,
           reports: Sequence[str] = (), destination: str | None = None) -> Rows:
    """The Section 3.2 study ``activations`` (Table 2) or ``blocks`` (Table 3): the variants exported to
    ``formats``, then measured here (:func:`run`'s sweep) or on an iPhone or Mac (measured with the harness, or
    imported from ``reports``), with the latency ratio to the ReLU baseline beside the paper's.

    Returns:
        One row per variant: variant, model, flops_m, latency_ms, ratio, paper_iphone_ms, paper_ratio,
        ``export_<format>`` (ok, or the status and error), status.
    """
    from mobileone_bench.formats._base import ExportOptions, ensure_writable
    from mobileone_bench.reference import paper_table

    out = ensure_writable(Path(job.models_dir))
    exports = export_models(specs, formats, out, ExportOptions(), force=force)
    if job.device in ("iphone", "mac"):
        from mobileone_bench.pipeline import phone

        rows = phone.rows(specs, job, store, reports, destination, force)
    else:
        wait_quiet(quiet, progress)
        rows = _sweep(specs, job, store, force=force, title=f"ablate {study}", progress=progress)
    paper = {r["model"]: r for r in paper_table(ABLATIONS[study][1])["rows"]}
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
    return out_rows
