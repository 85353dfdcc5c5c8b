"""Spearman rank correlation of latency with FLOPs and with parameter count (the paper's Table 1), and the rank
agreement of our latencies with the paper's.

Spearman's rho is Pearson's correlation of the ranks (ties get their average rank); its p-value is scipy's
two-sided test of rho = 0 (a t-distribution with n - 2 degrees of freedom), as :func:`scipy.stats.spearmanr`
computes it. Fewer than :data:`MIN_N` models, or a column whose values are all equal, give no coefficient: the
row says why instead of showing NaN.

Uncertainty: every rho has a 95% bootstrap interval over models (paired resampling of the models with replacement,
:data:`RESAMPLES` resamples from ``numpy.random.default_rng(SEED)``, drawn as one ``integers(0, n, (RESAMPLES, n))``
array; resamples in which a column is constant are dropped; percentile interval), and Kendall's tau-b with its
p-value (:func:`scipy.stats.kendalltau`) is given beside it. With n = 20 the interval is wide: that is the point.

Proxies (``--against``): ``flops``, ``params`` (Table 1's), ``activations``, ``memory`` (memory traffic, fp16 for
fp16 records, fp32 otherwise) and ``depth`` (:mod:`mobileone_bench.proxies`). :func:`proxy_ranking` ranks every proxy
by |rho| per device and runtime: which one predicts latency on this target.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Sequence

from mobileone_bench.store.frames import (
    DEVICE_LABELS,
    PAPER_DEVICE_LABELS,
    measurements,
    parse_choices,
    reference_frame,
)
from mobileone_bench.errors import AnalysisError

__all__ = [
    "MIN_N",
    "AGAINST",
    "spearman",
    "parse_against",
    "correlation_rows",
    "correlate",
    "correlate_records",
    "correlate_reference",
    "rank_agreement",
    "correlation_columns",
    "proxy_ranking",
    "rank_stats",
    "PROXIES",
    "PROXY_COLUMN",
    "RANKING_COLUMNS",
    "fisher_interval",
]

MIN_N = 5
AGAINST = ("flops", "params")
PROXIES = ("flops", "params", "activations", "memory", "depth")
#: The column of the long frame each proxy is read from.
PROXY_COLUMN = {"flops": "flops_m", "params": "params_m", "activations": "activations_m", "memory": "memory_mb",
                "depth": "depth"}
_AGAINST_LABEL = {"flops": "FLOPs", "params": "Params", "activations": "Activations", "memory": "Memory",
                  "depth": "Depth"}
LEVEL = 0.95
RESAMPLES = 2000
SEED = 0


#: Models behind the paper's Table 1 ("about 20": its text does not give the number; 20 is the Table 9 rows other
#: than RepVGG and MobileOne, the subset that comes closest).
PUBLISHED_N = 20


def fisher_interval(rho: float | None, n: int, *, level: float = LEVEL) -> tuple[float | None, float | None]:
    """An approximate interval for a published Spearman rho without its data: Fisher's z with the Fieller, Hartley
    and Pearson (1957) standard error for Spearman, ``sqrt(1.06 / (n - 3))``."""
    if rho is None or n <= 3 or abs(rho) >= 1:
        return None, None
    from scipy.stats import norm

    z, half = math.atanh(rho), float(norm.ppf(0.5 + level / 2)) * math.sqrt(1.06 / (n - 3))
    return math.tanh(z - half), math.tanh(z + half)


def rank_stats(x: Sequence[float], y: Sequence[float], *, level: float = LEVEL, resamples: int = RESAMPLES,
               seed: int = SEED) -> dict[str, Any]:
    """Spearman's rho with a bootstrap interval over the pairs, and Kendall's tau-b (see the module docstring).

    Returns:
        ``{"rho_low", "rho_high", "tau", "tau_p", "ci_level", "ci_method", "ci_resamples"}`` (``None`` bounds when
        fewer than 10 resamples are usable).
    """
    import numpy as np
    from scipy.stats import kendalltau, rankdata

    xs, ys = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = xs.size
    idx = np.random.default_rng(seed).integers(0, n, size=(resamples, n))
    rx, ry = rankdata(xs[idx], axis=1), rankdata(ys[idx], axis=1)
    rx -= rx.mean(axis=1, keepdims=True)
    ry -= ry.mean(axis=1, keepdims=True)
    den = np.sqrt((rx * rx).sum(axis=1) * (ry * ry).sum(axis=1))
    usable = den > 0
    rhos = (rx * ry).sum(axis=1)[usable] / den[usable]
    tail = 100 * (1 - level) / 2
    low, high = (float(v) for v in np.percentile(rhos, [tail, 100 - tail])) if rhos.size >= 10 else (None, None)
    tau = kendalltau(xs, ys)
    return {"rho_low": low, "rho_high": high, "tau": float(tau.statistic), "tau_p": float(tau.pvalue),
            "ci_level": level, "ci_method": f"percentile bootstrap over models, {int(usable.sum())} of {resamples} "
                                             f"resamples usable, seed {seed}", "ci_resamples": resamples}


def spearman(x: Sequence[float], y: Sequence[float], *, min_n: int = MIN_N) -> dict[str, Any]:
    """Spearman's rho and its two-sided p-value.

    Args:
        x: One value per model.
        y: The other value, same order.
        min_n: Fewest pairs accepted.

    Returns:
        ``{"rho": float, "p_value": float, "n": int}`` and :func:`rank_stats`' interval and Kendall's tau.

    Raises:
        AnalysisError: Different lengths, fewer than ``min_n`` pairs, a missing value or a constant column.
    """
    from scipy.stats import spearmanr

    xs, ys = [float(v) for v in x], [float(v) for v in y]
    if len(xs) != len(ys):
        raise AnalysisError(f"cannot correlate {len(xs)} values with {len(ys)}")
    n = len(xs)
    if n < min_n:
        raise AnalysisError(f"only {n} model(s) with both values: a rank correlation needs at least {min_n}")
    if any(math.isnan(v) for v in xs + ys):
        raise AnalysisError("missing values: drop them before correlating")
    if len(set(xs)) == 1 or len(set(ys)) == 1:
        raise AnalysisError(f"a column is constant over the {n} models: ranks carry no information")
    result = spearmanr(xs, ys)
    return {"rho": float(result.statistic), "p_value": float(result.pvalue), "n": n, **rank_stats(xs, ys)}


def parse_against(against: str | Iterable[str] | None) -> list[str]:
    """Validated ``--against`` values (default: flops and params; ``all``: every proxy).

    Raises:
        UsageError: Anything but the :data:`PROXIES`.
    """
    if isinstance(against, str) and against.strip().lower() == "all":
        return list(PROXIES)
    return parse_choices(against, PROXIES, problem="cannot correlate latency against", default=AGAINST)


def _interval(low: Any, high: Any) -> str | None:
    return None if low is None or high is None else f"{low:.2f} to {high:.2f}"


def _finite(v: Any) -> bool:
    try:
        return v is not None and math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def correlation_rows(frame: Any, against: Sequence[str] = AGAINST, *, labels: dict[str, str] | None = None,
                     device_order: Sequence[str] = ("iphone", "mac", "cpu", "gpu", "pixel6")) -> list[dict[str, Any]]:
    """One Table 1 row per (device, runtime) of a long frame (:func:`mobileone_bench.store.frames.measurements`).

    Each row has ``type`` ("CPU Latency"), ``device``, ``runtime``, ``statistic``, ``n`` (models with a latency and
    every ``against`` value), ``<a>_rho`` / ``<a>_p`` per ``against`` (``None`` when not computable), ``models``, and
    ``note`` (why a coefficient is missing, which models lack FLOPs/params) or ``None``.
    """
    labels = labels or DEVICE_LABELS
    rows: list[dict[str, Any]] = []
    if frame is None or len(frame) == 0:
        return rows
    order = {d: i for i, d in enumerate(device_order)}
    groups = sorted(frame.groupby(["device", "runtime"], sort=False),
                    key=lambda g: (order.get(g[0][0], 99), str(g[0][0]), str(g[0][1])))
    for (device, runtime), group in groups:
        cols = PROXY_COLUMN
        ok = group[[all(_finite(r.get(cols[a])) for a in against) and _finite(r["latency_ms"])
                    for _, r in group.iterrows()]]
        missing = sorted(set(group["model"]) - set(ok["model"]))
        stats = sorted({str(s) for s in group["statistic"] if s is not None})
        row: dict[str, Any] = {
            "type": f"{labels.get(device, device)} Latency",
            "device": device,
            "runtime": runtime,
            "statistic": stats[0] if len(stats) == 1 else "mixed: " + ", ".join(stats),
            "n": int(len(ok)),
            "models": sorted(ok["model"]),
        }
        notes = []
        if missing:
            notes.append(f"{len(missing)} model(s) without {'/'.join(_AGAINST_LABEL[a] for a in against)} left out "
                         f"({', '.join(missing[:4])}{' ...' if len(missing) > 4 else ''}): run `mobileone-bench "
                         f"profile` on them")
        for a in against:
            try:
                s = spearman(ok["latency_ms"].astype(float), ok[cols[a]].astype(float))
                row.update({f"{a}_rho": s["rho"], f"{a}_p": s["p_value"], f"{a}_rho_low": s["rho_low"],
                            f"{a}_rho_high": s["rho_high"], f"{a}_ci": _interval(s["rho_low"], s["rho_high"]),
                            f"{a}_tau": s["tau"], f"{a}_tau_p": s["tau_p"]})
            except AnalysisError as exc:
                row.update({f"{a}_{k}": None for k in ("rho", "p", "rho_low", "rho_high", "ci", "tau", "tau_p")})
                msg = str(exc)
                if msg not in notes:
                    notes.append(f"{msg}" if "constant" not in msg else f"{_AGAINST_LABEL[a]}: {msg}")
        row["note"] = "; ".join(notes) or None
        rows.append(row)
    return rows


def correlation_columns(against: Sequence[str] = AGAINST, *, paper: bool = False) -> list[tuple[str, str]]:
    """(key, header) pairs of the Table 1 layout (plus the paper's published figures when ``paper``)."""
    cols = [("type", "Type"), ("runtime", "Runtime"), ("statistic", "Statistic")]
    for a in against:
        cols += [(f"{a}_rho", f"{_AGAINST_LABEL[a]} corr."), (f"{a}_rho_low", "CI low"), (f"{a}_rho_high", "CI high"),
                 (f"{a}_p", f"{_AGAINST_LABEL[a]} p-value"), (f"{a}_tau", f"{_AGAINST_LABEL[a]} Kendall tau")]
    if paper:
        for a in against:
            cols += [(f"paper_{a}_rho", f"Table 1 {_AGAINST_LABEL[a]} corr."), (f"paper_{a}_rho_low", "CI low"),
                     (f"paper_{a}_rho_high", "CI high"), (f"paper_{a}_p", f"Table 1 {_AGAINST_LABEL[a]} p-value")]
    cols += [("n", "n"), ("note", "Note")]
    return cols


def proxy_ranking(frame: Any, proxies: Sequence[str] = PROXIES, *,
                  labels: dict[str, str] | None = None) -> list[dict[str, Any]]:
    """Per (device, runtime), every proxy with values for at least :data:`MIN_N` models, ranked by |rho| (each
    proxy over the models that have it).

    Returns:
        Rows ``{"type", "device", "runtime", "rank", "proxy", "rho", "rho_low", "rho_high", "ci", "p", "tau",
        "tau_p", "n"}``, best first within each group.
    """
    out: list[dict[str, Any]] = []
    if frame is None or len(frame) == 0:
        return out
    labels = labels or DEVICE_LABELS
    for (device, runtime), group in frame.groupby(["device", "runtime"], sort=True):
        ranked = []
        for a in proxies:
            col = PROXY_COLUMN[a]
            if col not in group:
                continue
            ok = group[[_finite(v) and _finite(lat) for v, lat in zip(group[col], group["latency_ms"])]]
            try:
                s = spearman(ok["latency_ms"].astype(float), ok[col].astype(float))
            except AnalysisError:
                continue
            ranked.append({"type": f"{labels.get(device, device)} Latency", "device": device, "runtime": runtime,
                           "proxy": a, "rho": s["rho"], "rho_low": s["rho_low"], "rho_high": s["rho_high"],
                           "ci": _interval(s["rho_low"], s["rho_high"]), "p": s["p_value"], "tau": s["tau"],
                           "tau_p": s["tau_p"], "n": s["n"]})
        ranked.sort(key=lambda r: -abs(r["rho"]))
        for i, r in enumerate(ranked, 1):
            r["rank"] = i
        out += ranked
    return out


RANKING_COLUMNS = [("type", "Type"), ("runtime", "Runtime"), ("rank", "#"), ("proxy", "Proxy"), ("rho", "rho"),
                   ("rho_low", "CI low"), ("rho_high", "CI high"), ("p", "p-value"), ("tau", "Kendall tau"),
                   ("n", "n")]


def _finish(rows: list[dict[str, Any]], against: Sequence[str], title: str, notes: list[str], source: str,
            paper: bool = False) -> dict[str, Any]:
    if not rows:
        raise AnalysisError("no latency to correlate with the filters given (check --device, --runtime, --models)")
    if not any(r.get(f"{a}_rho") is not None for r in rows for a in against):
        reasons = "; ".join(f"{r['type']} ({r['runtime']}): {r['note']}" for r in rows)
        raise AnalysisError(f"no correlation could be computed: {reasons}")
    return {"title": title, "source": source, "against": list(against),
            "columns": correlation_columns(against, paper=paper), "rows": rows, "notes": notes}


def correlate_records(store: Any, *, models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                      device: str | Sequence[str] | None = None, runtime: str | None = None,
                      threads: int | None = None, precision: str | None = None,
                      against: Sequence[str] = AGAINST, include_contended: bool = False) -> dict[str, Any]:
    """Table 1 from our records: Spearman of latency vs FLOPs and vs params per device/runtime.

    Args:
        store: The results store.
        models: Names or wildcards to keep (all when empty).
        exclude: Names or wildcards to drop.
        device: One device or several (all present when empty).
        runtime: Keep this runtime only.
        threads: Keep CPU records with this many threads.
        precision: Keep this precision only.
        against: ``flops`` and/or ``params``.
        include_contended: Keep latency records flagged contended (left out by default, with a note).

    Returns:
        ``{"title", "source", "against", "columns", "rows", "notes"}`` (rows: :func:`correlation_rows`).

    Raises:
        AnalysisError: No latency record, or no coefficient computable in any group.
    """
    devices = [device] if isinstance(device, str) else list(device or [])
    frame, notes = measurements(store, devices=devices, runtime=runtime, threads=threads, precision=precision,
                                models=models, exclude=exclude, include_contended=include_contended)
    rows = correlation_rows(frame, against)
    ranking = proxy_ranking(frame)
    for r in rows:
        cpus = sorted({str(v) for v in frame[(frame["device"] == r["device"]) & (frame["runtime"] == r["runtime"])]
                       .get("env_cpu", []) if v is not None and v == v})
        r["hardware"] = cpus[0] if len(cpus) == 1 else (", ".join(cpus) or None)
    result = _finish(rows, against, "Spearman rank correlation of latency with FLOPs and params (Table 1 layout)",
                     notes, f"records in {store.root}")
    result["ranking"] = ranking
    return result


def correlate_reference(*, table: str = "table9", device: str | Sequence[str] | None = None,
                        models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                        against: Sequence[str] = AGAINST) -> dict[str, Any]:
    """Table 1 computed from the paper's own table (Table 9 by default), beside the published Table 1.

    The paper does not say which models its Table 1 used; see the project notes for which subsets come close. Rows:
    ``Mobile`` (the iPhone 12 column), ``CPU``, ``GPU`` (where the table has figures).

    Returns:
        As :func:`correlate_records`, each row with ``paper_<a>_rho`` / ``paper_<a>_p`` (the published Table 1
        figures, ``None`` for devices Table 1 does not have).
    """
    from mobileone_bench.reference import paper_table

    devices = [device] if isinstance(device, str) else list(device or [])
    frame = reference_frame(table, devices=devices, models=models, exclude=exclude)
    rows = correlation_rows(frame, against, labels=PAPER_DEVICE_LABELS)
    published = {(r["device"], r["against"]): r for r in paper_table("table1")["rows"]}
    for r in rows:
        for a in against:
            p = published.get((r["device"], a)) or {}
            r[f"paper_{a}_rho"], r[f"paper_{a}_p"] = p.get("rho"), p.get("p_value")
            r[f"paper_{a}_rho_low"], r[f"paper_{a}_rho_high"] = fisher_interval(p.get("rho"), PUBLISHED_N)
        r["hardware"] = {"iphone": "iPhone 12", "cpu": "Intel Xeon Gold 5118", "gpu": "RTX-2080Ti"}.get(r["device"])
    notes = [f"computed from the paper's {table.replace('table', 'Table ')} figures (mobile = the iPhone 12 column); "
             "Table 1 does not say which models it used",
             "intervals: ours by bootstrap over the models; the published Table 1 figures', which come without their "
             f"data, by Fisher's z for n = {PUBLISHED_N} (standard error sqrt(1.06 / (n - 3)))"]
    result = _finish(rows, against, f"Spearman rank correlation on the paper's {table.replace('table', 'Table ')} "
                                    "numbers, beside its Table 1", notes, f"paper {table}", paper=True)
    result["ranking"] = proxy_ranking(frame, labels=PAPER_DEVICE_LABELS)
    return result


def correlate(store: Any, *, devices: Sequence[str] = (), against: Sequence[str] = AGAINST,
              models: Iterable[str] | None = None, exclude: Iterable[str] | None = None, runtime: str | None = None,
              threads: int | None = None, precision: str | None = None, reference: bool = False,
              include_contended: bool = False) -> dict[str, Any]:
    """Table 1 from our records (:func:`correlate_records`) or, with ``reference``, from the paper's own Table 9
    beside its published Table 1 (:func:`correlate_reference`), our rows first when the store has latencies (a
    reason why ours cannot be computed becomes the first note instead).

    Raises:
        AnalysisError: Without ``reference``: no latency record, or no coefficient computable in any group.
    """
    filters = dict(models=models, exclude=exclude, device=list(devices), runtime=runtime, threads=threads,
                   precision=precision, against=against, include_contended=include_contended)
    if not reference:
        return correlate_records(store, **filters)
    result = correlate_reference(device=[d for d in devices if d != "mac"], models=models, exclude=exclude,
                                 against=against)
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


def rank_agreement(frame: Any, table: str = "table9") -> list[dict[str, Any]]:
    """Spearman between our latencies and the paper's column, per (device, runtime), over the models both have.

    Args:
        frame: Our long frame (:func:`~mobileone_bench.store.frames.measurements`).
        table: The paper's table to compare with.

    Returns:
        Rows ``{"device", "runtime", "paper_column", "n", "rho", "p_value", "rho_low", "rho_high", "tau", "tau_p",
        "models", "note"}``; ``rho`` is
        ``None`` (with a note) when fewer than :data:`MIN_N` models are shared or the paper has no such column.
    """
    from mobileone_bench.store.frames import normalize_name

    ref = reference_frame(table)
    rows: list[dict[str, Any]] = []
    if frame is None or len(frame) == 0:
        return rows
    for (device, runtime), group in frame.groupby(["device", "runtime"], sort=True):
        theirs = {normalize_name(m): v for m, v in zip(ref[ref["device"] == device]["model"],
                                                      ref[ref["device"] == device]["latency_ms"])}
        has_column = device in set(ref["device"])
        row: dict[str, Any] = {"device": device, "runtime": runtime,
                               "paper_column": PAPER_DEVICE_LABELS.get(device) if has_column else None,
                               "rho": None, "p_value": None, "rho_low": None, "rho_high": None, "tau": None,
                               "tau_p": None, "note": None}
        pairs = [(float(lat), theirs[normalize_name(m)]) for m, lat in zip(group["model"], group["latency_ms"])
                 if normalize_name(m) in theirs and _finite(lat)]
        row["n"] = len(pairs)
        row["models"] = sorted(m for m in group["model"] if normalize_name(m) in theirs)
        if row["paper_column"] is None:
            row["note"] = f"the paper's {table} has no {DEVICE_LABELS.get(device, device)} column"
        else:
            try:
                s = spearman([p[0] for p in pairs], [p[1] for p in pairs])
                row.update(rho=s["rho"], p_value=s["p_value"], rho_low=s["rho_low"], rho_high=s["rho_high"],
                           tau=s["tau"], tau_p=s["tau_p"])
            except AnalysisError as exc:
                row["note"] = str(exc)
        rows.append(row)
    return rows
