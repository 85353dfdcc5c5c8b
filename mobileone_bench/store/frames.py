"""Records into the frames the analyses need: the latest latency per model/device/runtime joined with the latest
profile (FLOPs, params) of the same model and input, and the paper's reference rows in the same long layout.

Selection rules (every analysis uses these, so a table and a correlation never disagree about which number is "the"
latency of a model):

* latency: successful ``latency`` records, filtered by device / runtime / threads / precision / models, then the
  newest per (model, device, runtime). When a model has records with several settings (threads, precision, input,
  machine) the newest wins and a note says so;
* records flagged ``contended`` (measured while other processes used the CPU, see
  :mod:`mobileone_bench.devices._contention`) are left out unless ``include_contended``; an older uncontended record
  of the same model is then used, and a note names the models whose newest record was set aside;
* FLOPs and params: the newest successful ``profile`` record of the same model *and input shape* (FLOPs depend on
  the input size, so a 256x256 latency is never paired with a 224x224 FLOP count);
* the paper: ``latency_ms`` of the rows of a reference table, one long row per (model, device) with a figure.
"""

from __future__ import annotations

import fnmatch
from pathlib import Path
from typing import Any, Iterable, Sequence

from mobileone_bench.errors import AnalysisError, UsageError

__all__ = [
    "DEVICES",
    "DEVICE_LABELS",
    "PAPER_DEVICE_LABELS",
    "open_store",
    "require_records",
    "normalize_name",
    "parse_list",
    "parse_choices",
    "parse_devices",
    "model_filter",
    "latency_frame",
    "profile_frame",
    "measurements",
    "reference_frame",
    "statistic_label",
    "LONG_COLUMNS",
]

DEVICES = ("cpu", "gpu", "iphone", "mac")
DEVICE_LABELS = {"cpu": "CPU", "gpu": "GPU", "iphone": "iPhone", "mac": "Mac", "pixel6": "Pixel-6"}
PAPER_DEVICE_LABELS = {"cpu": "CPU", "gpu": "GPU", "iphone": "Mobile", "pixel6": "Pixel-6"}
PAPER_STATISTIC = {"cpu": "median of 100", "gpu": "median of 100", "iphone": "min of 1000",
                   "pixel6": "statistic not stated"}

LONG_COLUMNS = ["model", "paper_name", "device", "runtime", "latency_ms", "flops_m", "params_m", "statistic",
                "threads", "precision", "input_shape", "machine", "created", "record_id", "env_cpu"]

#: Proxy fields of profile records (besides params and FLOPs), see :mod:`mobileone_bench.proxies`.
PROFILE_PROXIES = ("activations_m", "memory_mb_fp32", "memory_mb_fp16", "depth")

_SETTINGS = ("threads", "precision", "input_shape", "machine", "report", "runs")


def open_store(results: str | Path | Iterable[str | Path]) -> Any:
    """The results store at ``results`` (no error when it does not exist: it is then empty), or, for several
    folders, their union read as one store (:class:`mobileone_bench.store.merging.StoreUnion`: nothing is copied, a record
    in two folders counts once, the machine that measured a record is part of its key).

    Raises:
        UsageError: One of several folders does not exist or is not a results folder.
    """
    from mobileone_bench.store.merging import open_results

    return open_results(results)


def require_records(store: Any, kind: str = "latency") -> list[dict[str, Any]]:
    """The successful newest-per-key records of ``kind``, or a clear error saying how to make some.

    Raises:
        AnalysisError: The store has no successful record of that kind.
    """
    records = store.latest(kind)
    if not records:
        what = {"latency": "latency measurements", "profile": "profile records (FLOPs, params)"}.get(kind, kind)
        raise AnalysisError(f"no {what} in {store.root}: run `mobileone-bench run` (or `mobileone-bench latency "
                            f"MODEL...`) first, or point --results at a folder that has some")
    return records


def normalize_name(name: str) -> str:
    """Comparison key of a model name: case-insensitive, ``-`` and ``_`` interchangeable (as the registry)."""
    return str(name).strip().lower().replace("_", "-")


def parse_list(values: str | Iterable[str] | None) -> list[str]:
    """``"a,b" ("c",)`` -> ``["a", "b", "c"]`` (comma-separated and/or repeated options; blanks dropped)."""
    if values is None:
        return []
    if isinstance(values, str):
        values = [values]
    out: list[str] = []
    for v in values:
        out.extend(p.strip() for p in str(v).split(",") if p.strip())
    return out


def parse_choices(values: str | Iterable[str] | None, allowed: Sequence[str], *, problem: str,
                  default: Sequence[str] = ()) -> list[str]:
    """Validated, de-duplicated choices of a list option (``default`` when none is given).

    Raises:
        UsageError: ``"<problem> 'x'; choose from ..."`` for a value not in ``allowed``.
    """
    out: list[str] = []
    for v in parse_list(values) or list(default):
        key = v.lower()
        if key not in allowed:
            raise UsageError(f"{problem} {v!r}; choose from {', '.join(allowed)}")
        if key not in out:
            out.append(key)
    return out


def parse_devices(values: str | Iterable[str] | None, allowed: Sequence[str] = DEVICES) -> list[str]:
    """Validated device names (``[]`` means "every device present").

    Raises:
        UsageError: An unknown device.
    """
    return parse_choices(values, allowed, problem="unknown device")


def model_filter(models: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> Any:
    """A predicate on model names: kept when it matches one of ``models`` (names or wildcards; all when empty) and
    none of ``exclude``. Matching ignores case and treats ``-`` and ``_`` alike."""
    keep = [normalize_name(p) for p in parse_list(models)]
    drop = [normalize_name(p) for p in parse_list(exclude)]

    def accept(name: str) -> bool:
        key = normalize_name(name)
        if keep and not any(fnmatch.fnmatchcase(key, p) for p in keep):
            return False
        return not any(fnmatch.fnmatchcase(key, p) for p in drop)

    return accept


def statistic_label(report: Any, runs: Any) -> str:
    """``median of 100`` from a record's ``report`` and ``runs``."""
    if report is None:
        return "?"
    try:
        return f"{report} of {int(runs)}"
    except (TypeError, ValueError):
        return str(report)


def _newest_first(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # ``created`` is an ISO UTC timestamp (seconds); records of the same second keep file order
    indexed = list(enumerate(records))
    indexed.sort(key=lambda t: (str(t[1].get("created") or ""), t[0]), reverse=True)
    return [r for _, r in indexed]


def latency_frame(store: Any, *, devices: Sequence[str] | None = None, runtime: str | None = None,
                  threads: int | None = None, precision: str | None = None, models: Iterable[str] | None = None,
                  exclude: Iterable[str] | None = None, by_threads: bool = False,
                  include_contended: bool = False) -> tuple[Any, list[str]]:
    """The latest successful latency per (model, device, runtime), with notes on what was set aside.

    Args:
        store: A :class:`~mobileone_bench.store.records.ResultsStore`.
        devices: Keep these devices (all when empty).
        runtime: Keep this runtime only.
        threads: Keep CPU records measured with this many threads (other devices are not filtered).
        precision: Keep this precision only.
        models: Names or wildcards to keep (all when empty).
        exclude: Names or wildcards to drop.
        by_threads: Keep the newest record per thread count too (one row per (model, device, runtime, threads)).
        include_contended: Keep records flagged ``contended`` (left out by default, with a note).

    Returns:
        ``(frame, notes)``: one row per (model, device, runtime) with the record's fields plus ``statistic``
        (``median of 100``); ``notes`` are sentences for a footnote.

    Raises:
        AnalysisError: The store has no successful latency record at all, or every record that matches is contended
            (and ``include_contended`` is false).
    """
    import pandas as pd

    require_records(store, "latency")
    # every successful record, not only the newest per key: when the newest is contended, an older quiet one of the
    # same measurement is the one to use (the newest per (model, device, runtime) below still wins otherwise)
    records = [r for r in store.records("latency") if r.get("status") == "ok"]
    accept = model_filter(models, exclude)
    devices = list(devices or [])
    kept = []
    for r in records:
        if devices and r.get("device") not in devices:
            continue
        if runtime and r.get("runtime") != runtime:
            continue
        if threads is not None and r.get("device") == "cpu" and r.get("threads") != threads:
            continue
        if precision and r.get("precision") != precision:
            continue
        if not accept(str(r.get("model"))):
            continue
        if r.get("latency_ms") is None:
            continue
        kept.append(r)
    notes: list[str] = []
    chosen: dict[tuple[str, ...], dict[str, Any]] = {}
    several: dict[tuple[str, str], set[str]] = {}
    set_aside: dict[tuple[str, ...], dict[str, Any]] = {}
    for r in _newest_first(kept):
        k = (str(r.get("model")), str(r.get("device")), str(r.get("runtime")))
        if by_threads:
            k += (str(r.get("threads")),)
        if r.get("contended") is True and not include_contended:
            if k not in chosen:
                set_aside.setdefault(k, r)
            continue
        if k not in chosen:
            chosen[k] = r
        elif any(r.get(s) != chosen[k].get(s) for s in _SETTINGS):
            several.setdefault(k[1:3], set()).add(k[0])
    for (device, rt), names in sorted(several.items()):
        notes.append(f"{DEVICE_LABELS.get(device, device)} {rt}: {len(names)} model(s) ({_few(names)}) have records "
                     f"with different settings; the newest of each is used (filter with --threads / --precision / "
                     f"--runtime)")
    if set_aside:
        older = sorted({k[0] for k in set_aside if k in chosen})
        gone = sorted({k[0] for k in set_aside if k not in chosen})
        parts = []
        if gone:
            parts.append(f"{len(gone)} model(s) left out ({_few(gone)})")
        if older:
            parts.append(f"{len(older)} shown with an older uncontended record ({_few(older)})")
        notes.append(f"contended latency records (measured while other processes used the CPU) are not used: "
                     f"{'; '.join(parts)}; --include-contended keeps them, `run --remeasure-flagged` measures "
                     f"them again")
    if set_aside and not chosen:
        raise AnalysisError(f"every latency record that matches is flagged contended ({len(set_aside)}: "
                            f"{_few({k[0] for k in set_aside})}; measured while other processes used the CPU): "
                            f"--include-contended uses them, `run --remeasure-flagged` measures them again")
    rows = []
    for r in sorted(chosen.values(), key=lambda r: (str(r.get("device")), str(r.get("runtime")),
                                                    str(r.get("model")))):
        row = dict(r)
        row["statistic"] = statistic_label(r.get("report"), r.get("runs"))
        rows.append(row)
    # no row (everything filtered or set aside as contended): still the columns every caller selects on
    frame = pd.DataFrame(rows) if rows else pd.DataFrame(columns=LONG_COLUMNS + ["report", "runs", "status"])
    if not frame.empty:
        for (device, rt), group in frame.groupby(["device", "runtime"], sort=True):
            for setting, label in (("threads", "threads"), ("precision", "precisions"), ("statistic", "statistics"),
                                   ("machine", "machines"), ("input_shape", "input shapes")):
                if setting not in group or (by_threads and setting == "threads"):
                    continue
                values = sorted({str(v) for v in group[setting] if v is not None and v == v})
                if len(values) > 1:
                    notes.append(f"{DEVICE_LABELS.get(device, device)} {rt}: the models were measured with different "
                                 f"{label} ({', '.join(values)})")
    return frame, notes


def _few(names: Iterable[str], limit: int = 3) -> str:
    names = sorted(names)
    return ", ".join(names[:limit]) + (f" and {len(names) - limit} more" if len(names) > limit else "")


def profile_frame(store: Any) -> Any:
    """The newest successful profile record per (model, input shape), as a DataFrame (empty when none)."""
    import pandas as pd

    chosen: dict[tuple[str, str], dict[str, Any]] = {}
    for r in _newest_first(store.latest("profile")):
        k = (str(r.get("model")), str(r.get("input_shape")))
        chosen.setdefault(k, r)
    cols = ["model", "input_shape", "flops", "params", "flops_m", "params_m", *PROFILE_PROXIES]
    rows = [{c: r.get(c) for c in cols} for r in chosen.values()]
    return pd.DataFrame(rows, columns=cols)


def measurements(store: Any, **filters: Any) -> tuple[Any, list[str]]:
    """:func:`latency_frame` joined with :func:`profile_frame` on (model, input shape).

    Returns:
        ``(frame, notes)``; ``flops_m`` / ``params_m`` are NaN where no matching profile record exists.
    """
    import pandas as pd

    lat, notes = latency_frame(store, **filters)
    prof = profile_frame(store)
    if lat.empty:
        lat = pd.DataFrame(columns=LONG_COLUMNS)
    for c in ("flops_m", "params_m", "flops", "params", *PROFILE_PROXIES, "memory_mb"):
        if c in lat:
            lat = lat.drop(columns=c)
    if "input_shape" not in lat:
        lat["input_shape"] = None
    merged = lat.merge(prof, on=["model", "input_shape"], how="left")
    # memory traffic at the precision the latency was measured in
    fp16 = merged["precision"].astype(str).eq("fp16") if "precision" in merged else False
    merged["memory_mb"] = pd.to_numeric(merged["memory_mb_fp16"].where(fp16, merged["memory_mb_fp32"]),
                                        errors="coerce")
    for c in LONG_COLUMNS:
        if c not in merged:
            merged[c] = None
    return merged, notes


def reference_frame(table: str = "table9", *, devices: Sequence[str] | None = None,
                    models: Iterable[str] | None = None, exclude: Iterable[str] | None = None) -> Any:
    """The paper's rows in the long layout of :func:`measurements` (``runtime`` = ``paper``).

    Args:
        table: ``table9``, ``table13`` or ``table14`` (Table 14 has no FLOPs/params: they are taken from Table 9).
        devices: Keep these devices (all the table has when empty).
        models: Names or wildcards to keep.
        exclude: Names or wildcards to drop.
    """
    import pandas as pd

    from mobileone_bench.reference import paper_row, paper_table

    accept = model_filter(models, exclude)
    rows = []
    for order, r in enumerate(paper_table(table)["rows"]):
        if not accept(r["model"]):
            continue
        flops, params = r.get("flops_m"), r.get("params_m")
        if flops is None:
            t9 = paper_row(r["model"], "table9") or {}
            flops, params = t9.get("flops_m"), t9.get("params_m")
        for device, value in (r.get("latency_ms") or {}).items():
            if value is None or (devices and device not in devices):
                continue
            rows.append({"model": r["model"], "paper_name": r.get("paper_name"), "group": r.get("group"),
                         "order": order, "device": device, "runtime": "paper", "latency_ms": float(value),
                         "flops_m": flops, "params_m": params, "top1": r.get("top1"),
                         "statistic": PAPER_STATISTIC.get(device, "?")})
    return pd.DataFrame(rows, columns=["model", "paper_name", "group", "order", "device", "runtime", "latency_ms",
                                       "flops_m", "params_m", "top1", "statistic"])
