"""Measured accuracy (``accuracy`` records, made by ``evaluate``) for the analysis: the top-1 a latency point is
plotted at (:func:`top1_for`: measured where a record exists, the paper's otherwise, and which one it is), and
``table --layout accuracy`` (:func:`accuracy_table`: top-1 per artifact and precision next to its latency).

An accuracy record and a latency record meet when they are of the same model, run by the same runtime (PyTorch's
accuracy belongs to the ``torch`` and ``torch-cuda`` latencies, ONNX's to onnxruntime's...) at the same precision;
the newest of each is used.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

__all__ = ["KIND", "artifact_of", "accuracy_records", "top1_for", "accuracy_table", "ACCURACY_LAYOUT"]

KIND = "accuracy"
ACCURACY_LAYOUT = "accuracy"


def artifact_of(device: str, runtime: str) -> str:
    """What a latency record's runtime runs: its format's name, or ``pytorch``."""
    from mobileone_bench.devices import RUNTIMES

    spec = RUNTIMES.get((str(device), str(runtime)))
    return (spec.artifact if spec is not None else None) or "pytorch"


def accuracy_records(store: Any, models: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """The newest successful accuracy record per key, oldest first (of ``models`` only, when given)."""
    from mobileone_bench.store.frames import normalize_name

    wanted = {normalize_name(m) for m in models} if models else None
    return [r for r in store.latest(KIND) if r.get("top1") is not None
            and (wanted is None or normalize_name(str(r.get("model"))) in wanted)]


def top1_for(records: Sequence[dict[str, Any]], model: str, device: str, runtime: str,
             precision: str | None, paper: float | None) -> tuple[float | None, str]:
    """The top-1 (%) of a latency point, and where it comes from: ``measured`` (this artifact and precision was
    evaluated), ``measured (pytorch)`` (only the PyTorch model was), or ``paper``."""
    from mobileone_bench.store.frames import normalize_name

    key = normalize_name(model)
    mine = [r for r in records if normalize_name(str(r.get("model"))) == key]
    artifact = artifact_of(device, runtime)
    exact = [r for r in mine
             if r.get("artifact") == artifact and (precision is None or r.get("precision") == precision)]
    if exact:
        return float(exact[-1]["top1"]), "measured"
    torch = [r for r in mine if r.get("artifact") == "pytorch"]
    if torch:
        return float(torch[-1]["top1"]), "measured (pytorch)"
    return paper, "paper"


def _latency_of(latencies: list[dict[str, Any]], rec: dict[str, Any]) -> dict[str, Any] | None:
    from mobileone_bench.store.frames import normalize_name

    key = normalize_name(str(rec.get("model")))
    found = [r for r in latencies if normalize_name(str(r.get("model"))) == key
             and artifact_of(str(r.get("device")), str(r.get("runtime"))) == rec.get("artifact")
             and r.get("precision") == rec.get("precision")]
    same_device = [r for r in found if r.get("device") == rec.get("device")]
    chosen = same_device or found
    return chosen[-1] if chosen else None


def accuracy_table(store: Any, *, models: Sequence[str] | None = None, precision: str | None = None,
                   ci: bool = False) -> dict[str, Any]:
    """``table --layout accuracy``: one row per evaluated (model, artifact, precision): images, top-1 with its 95%
    interval, top-5, agreement with PyTorch, the paper's top-1, and the latency of the same artifact where a
    latency record exists (its runtime and statistic in the row).

    Raises:
        AnalysisError: No accuracy record (of these models).
    """
    from mobileone_bench.errors import AnalysisError

    records = [r for r in accuracy_records(store, models) if precision is None or r.get("precision") == precision]
    if not records:
        raise AnalysisError(f"no accuracy records in {store.root}{' for these models' if models else ''}: run "
                            f"`mobileone-bench evaluate MODEL --data DIR` first")
    latencies = store.latest("latency")
    rows = []
    for rec in records:
        lat = _latency_of(latencies, rec)
        low, high = rec.get("top1_ci_low"), rec.get("top1_ci_high")
        rows.append({"model": rec.get("model"), "artifact": rec.get("artifact"), "precision": rec.get("precision"),
                     "runtime": rec.get("runtime"), "images": str(rec.get("n")), "top1": rec.get("top1"),
                     "top1_interval": f"{low:.1f}-{high:.1f}" if low is not None and high is not None else None,
                     "top5": rec.get("top5"), "agreement_pct": rec.get("agreement"),
                     "paper_top1": rec.get("paper_top1"),
                     "latency_ms": None if lat is None else lat.get("latency_ms"),
                     "latency_ci_low_ms": None if lat is None else lat.get("ci_low_ms"),
                     "latency_ci_high_ms": None if lat is None else lat.get("ci_high_ms"),
                     "latency_of": None if lat is None else f"{lat.get('device')} {lat.get('runtime')}",
                     "data_sha256": str(rec.get("data_sha256"))[:12]})
    rows.sort(key=lambda r: (str(r["model"]), str(r["artifact"]), str(r["precision"])))
    columns = [{"key": "model", "header": "Model", "paper": False},
               {"key": "artifact", "header": "Artifact", "paper": False},
               {"key": "precision", "header": "Precision", "paper": False},
               {"key": "images", "header": "Images", "paper": False},
               {"key": "top1", "header": "Top-1 (%)", "paper": False},
               {"key": "top1_interval", "header": "Top-1 95% CI", "paper": False},
               {"key": "top5", "header": "Top-5 (%)", "paper": False},
               {"key": "agreement_pct", "header": "Agrees with PyTorch (%)", "paper": False},
               {"key": "latency_ms", "header": "Latency (ms)", "paper": False},
               {"key": "latency_of", "header": "Latency of", "paper": False},
               {"key": "paper_top1", "header": "Paper top-1 (%)", "paper": True}]
    datasets = sorted({r["data_sha256"] for r in rows})
    footnotes = ["Top-1 and top-5 measured by `evaluate` on the images of the data folder (fingerprint "
                 f"{', '.join(datasets)}); intervals: Wilson score, 95%. Agreement: share of the images whose top-1 "
                 "class is the PyTorch model's.",
                 "Latency: the newest latency record of the same model, runtime and precision ('-' where none)."]
    if len(datasets) > 1:
        footnotes.append("The rows come from different image folders: compare accuracies only within one.")
    return {"layout": ACCURACY_LAYOUT, "title": "Accuracy per artifact, next to its latency", "columns": columns,
            "groups": [{"name": None, "rows": rows}], "footnotes": footnotes, "agreement": None, "sort": None,
            "ci": ci}
