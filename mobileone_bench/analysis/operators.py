"""Where the time goes: views of the ``explain`` records (reads records only).

* :func:`where_time_goes`: one row per model and runtime, each category's share of the operators' time beside the
  profile's coverage and overhead, and the top operators (the "where the time goes" table of ``explain``).
* :func:`category_rows`: the long form (model, runtime, category, time, share, FLOPs, FLOP share), what the figures
  draw: ``plot --figure time-by-category`` (stacked bars, one per model) and ``time-vs-flop-share`` (each
  category's share of the time against its share of the FLOPs: a point above the diagonal costs more time than
  its FLOPs say).
* :func:`section32_table`: ``table --layout section32``, the ablation networks of the paper's Tables 2 and 3 read
  through their profiles: how much of each variant's time its activation (or gate, or dynamic activation) and its
  branch merges take, against the ReLU baseline.
"""

from __future__ import annotations

import fnmatch
from typing import Any, Iterable, Sequence

from mobileone_bench.errors import AnalysisError
from mobileone_bench.store.operators import CATEGORIES, KIND, category_totals, operator_rows

__all__ = ["explain_records", "where_time_goes", "top_operators", "category_rows", "WHERE_COLUMNS",
           "OPERATOR_FIGURES", "operator_plots", "section32_table", "SECTION32_GROUPS"]

#: The columns of the "where the time goes" table (then one ``share_<category>`` column per category present).
WHERE_COLUMNS = ("model", "device", "runtime", "threads", "e2e_ms", "total_op_ms", "coverage", "coverage_ok",
                 "profiler_overhead", "flops_m", "n_operators", "top_category", "top_operators")

#: The figures of ``plot`` drawn from explain records.
OPERATOR_FIGURES = ("time-by-category", "time-vs-flop-share")

_COLORS = dict(zip(CATEGORIES, ("#1f77b4", "#aec7e8", "#ff7f0e", "#ffbb78", "#2ca02c", "#98df8a", "#d62728",
                                "#ff9896", "#9467bd", "#c5b0d5", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22")))


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if f == f else None


def _categories(record: dict[str, Any]) -> dict[str, dict[str, Any]]:
    rows = operator_rows(record)
    return category_totals(rows) if rows else {}


def explain_records(store: Any, *, models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                    runtime: str | None = None, devices: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """The newest successful ``explain`` record of each model, device and runtime (matching the filters).

    Raises:
        AnalysisError: None.
    """
    keep = [m for m in (models or []) if m]
    drop = [m for m in (exclude or []) if m]
    newest: dict[tuple[str, str, str, Any], dict[str, Any]] = {}
    for rec in store.latest(KIND):
        model = str(rec.get("model"))
        if keep and not any(fnmatch.fnmatch(model, p) for p in keep):
            continue
        if any(fnmatch.fnmatch(model, p) for p in drop):
            continue
        if runtime and rec.get("runtime") != runtime:
            continue
        if devices and rec.get("device") not in devices:
            continue
        key = (model, str(rec.get("device")), str(rec.get("runtime")), rec.get("threads"))
        if key not in newest or str(rec.get("created")) >= str(newest[key].get("created")):
            newest[key] = rec
    if not newest:
        raise AnalysisError(f"no explain records in {getattr(store, 'root', 'the results')} with these filters: run "
                            f"`mobileone-bench explain MODEL...` first")
    return list(newest.values())


def top_operators(record: dict[str, Any], n: int = 5) -> list[dict[str, Any]]:
    """The ``n`` operators with the largest share of a record's time (or cost)."""
    rows = [r for r in operator_rows(record) if _num(r.get("share")) is not None]
    rows.sort(key=lambda r: -float(r["share"]))
    return rows[:n]


def where_time_goes(records: Iterable[dict[str, Any]], *, top: int = 3) -> list[dict[str, Any]]:
    """One row per record: the profile's honesty (coverage, overhead) and each category's share of the time.

    Args:
        records: ``explain`` records (:func:`explain_records`).
        top: How many of the largest operators to name in ``top_operators``.
    """
    out = []
    for rec in records:
        cats = _categories(rec)
        flops = _num(rec.get("flops"))
        row: dict[str, Any] = {"model": rec.get("model"), "device": rec.get("device"), "runtime": rec.get("runtime"),
                               "threads": rec.get("threads"), "e2e_ms": _num(rec.get("e2e_ms")),
                               "total_op_ms": _num(rec.get("total_op_ms")), "coverage": _num(rec.get("coverage")),
                               "coverage_ok": rec.get("coverage_ok"),
                               "profiler_overhead": _num(rec.get("profiler_overhead")),
                               "flops_m": flops / 1e6 if flops is not None else None,
                               "n_operators": rec.get("n_operators"),
                               "top_category": max(cats, key=lambda c: cats[c]["share"] or 0) if cats else None,
                               "top_operators": "; ".join(
                                   f"{r['name']} ({r['category']}, {100 * float(r['share']):.1f}%)"
                                   for r in top_operators(rec, top))}
        for cat in CATEGORIES:
            if cat in cats:
                row[f"share_{cat}"] = cats[cat]["share"]
        out.append(row)
    out.sort(key=lambda r: (str(r["device"]), str(r["runtime"]), -(r["e2e_ms"] or 0)))
    return out


def category_rows(records: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The long form: ``model, device, runtime, category, count, time_ms, share, flops, flop_share`` per record and
    category."""
    out = []
    for rec in records:
        for cat, v in _categories(rec).items():
            out.append({"model": rec.get("model"), "device": rec.get("device"), "runtime": rec.get("runtime"),
                        "category": cat, **v})
    return out


# ------------------------------------------------------------------------------------------------ figures

def _draw_stacked(title: str, records: list[dict[str, Any]]) -> Any:
    import matplotlib.pyplot as plt

    rows = where_time_goes(records)
    models = [str(r["model"]) for r in rows]
    fig, ax = plt.subplots(figsize=(max(6.0, 0.55 * len(models) + 3), 4.8))
    bottom = [0.0] * len(rows)
    for cat in CATEGORIES:
        values = [100 * (r.get(f"share_{cat}") or 0.0) for r in rows]
        if not any(values):
            continue
        ax.bar(models, values, bottom=bottom, label=cat, color=_COLORS[cat], gid=f"category-{cat}")
        bottom = [b + v for b, v in zip(bottom, values)]
    ax.set_ylabel("share of the operators' time (%)")
    ax.set_ylim(0, 100)
    ax.set_title(title)
    ax.tick_params(axis="x", rotation=60)
    for label in ax.get_xticklabels():
        label.set_ha("right")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def _draw_share(title: str, records: list[dict[str, Any]]) -> Any:
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    for cat in CATEGORIES:
        pts = [(100 * (r["flop_share"] or 0), 100 * (r["share"] or 0)) for r in category_rows(records)
               if r["category"] == cat and r["share"] is not None]
        if pts:
            ax.scatter([p[0] for p in pts], [p[1] for p in pts], label=cat, color=_COLORS[cat], s=22,
                       gid=f"category-{cat}")
    ax.plot([0, 100], [0, 100], color="#999999", linewidth=0.8, linestyle="--")
    ax.set_xlabel("share of the FLOPs (%)")
    ax.set_ylabel("share of the time (%)")
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    ax.set_title(title)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    return fig


def operator_plots(store: Any, out_dir: Any = None, *, figures: Sequence[str] = OPERATOR_FIGURES,
                   devices: Sequence[str] | None = None, runtime: str | None = None,
                   models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
                   save: Any = None) -> list[dict[str, Any]]:
    """Draw the explain figures, one per figure, device and runtime (as
    :func:`mobileone_bench.analysis.plots.make_plots` returns them: ``{"figure", "device", "runtime", "name", "points", "reference_points", "notes", "fig"}``, and
    ``png`` / ``svg`` with ``out_dir``; ``save(fig, out_dir, stem)`` writes them)."""
    records = explain_records(store, models=models, exclude=exclude, runtime=runtime, devices=devices)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for rec in records:
        groups.setdefault((str(rec.get("device")), str(rec.get("runtime"))), []).append(rec)
    out = []
    for figure in figures:
        for (device, rt), recs in sorted(groups.items()):
            if figure == "time-by-category":
                fig = _draw_stacked(f"Where the time goes: {device} {rt}", recs)
            else:
                fig = _draw_share(f"Time share vs FLOP share per category: {device} {rt}", recs)
            low = [str(r.get("model")) for r in recs if r.get("coverage_ok") is False]
            notes = [f"coverage outside the documented range for: {', '.join(low)}"] if low else []
            stem = f"{figure}_{device}-{rt}"
            entry = {"figure": figure, "device": device, "runtime": rt, "name": stem, "points": len(recs),
                     "reference_points": 0, "notes": notes, "fig": fig}
            if out_dir is not None and save is not None:
                entry["png"], entry["svg"] = save(fig, out_dir, stem)
            out.append(entry)
    return out


# ------------------------------------------------------------------------------------------------ section 3.2

#: The groups of ``table --layout section32``: the registry names of Table 2's and Table 3's networks.
SECTION32_GROUPS = (
    ("Table 2: activation functions", ("ablation30-relu", "ablation30-gelu", "ablation30-se-relu", "ablation30-silu",
                                       "ablation30-dyshiftmax", "ablation30-dyrelu-a", "ablation30-dyrelu-b")),
    ("Table 3: architectural blocks", ("ablation30-relu", "ablation30-se", "ablation30-skip", "ablation30-se-skip")),
)

_SECTION32_COLUMNS = [
    {"key": "variant", "header": "Variant", "paper": False},
    {"key": "runtime", "header": "Runtime", "paper": False},
    {"key": "e2e_ms", "header": "Latency (ms, unprofiled)", "paper": False},
    {"key": "vs_baseline_ms", "header": "vs ReLU baseline (ms)", "paper": False},
    {"key": "activation_share", "header": "Activation (%)", "paper": False},
    {"key": "gating_share", "header": "Gating / SE (%)", "paper": False},
    {"key": "dynamic_share", "header": "Dynamic activation (%)", "paper": False},
    {"key": "branch_share", "header": "Branch merges (%)", "paper": False},
    {"key": "conv_share", "header": "Convolutions (%)", "paper": False},
    {"key": "coverage", "header": "Coverage", "paper": False},
]


def _pct(v: Any) -> float | None:
    return None if v is None else round(100.0 * float(v), 1)


def section32_table(store: Any, *, models: Sequence[str] | None = None, runtimes: Iterable[str] | None = None,
                    threads: int | None = None) -> dict[str, Any]:
    """Tables 2 and 3's ablation networks read through their ``explain`` records, as a table dict like
    :func:`mobileone_bench.analysis.tables.build_table`'s (the renderers print it).

    Args:
        store: The results store.
        models: Keep these variants only.
        runtimes: Keep records of these runtimes (default: every runtime with an ablation profile).
        threads: Keep CPU records measured with this many threads.

    Raises:
        AnalysisError: No explain record of an ablation network.
    """
    from mobileone_bench.models.archs.ablation import VARIANTS

    wanted = set(runtimes or [])
    try:
        records = explain_records(store, models=list(models or ["ablation30-*"]))
    except AnalysisError:
        raise AnalysisError("no explain records of the ablation networks: run `mobileone-bench explain "
                            "'ablation30-*'` first") from None
    records = [r for r in records if (not wanted or r.get("runtime") in wanted)
               and (threads is None or r.get("threads") == threads)]
    by = {(str(r["model"]), str(r["runtime"])): r for r in records}
    rts = sorted({rt for _, rt in by})
    groups = []
    for title, names in SECTION32_GROUPS:
        rows = []
        for rt in rts:
            base = by.get(("ablation30-relu", rt))
            base_ms = _num(base.get("e2e_ms")) if base else None
            for name in names:
                rec = by.get((name, rt))
                if rec is None:
                    continue
                cats = _categories(rec)

                def share(*keys: str, cats: dict[str, Any] = cats) -> float | None:
                    found = [cats[k]["share"] for k in keys if k in cats and cats[k]["share"] is not None]
                    return sum(found) if found else 0.0

                e2e = _num(rec.get("e2e_ms"))
                variant = VARIANTS.get(name)
                rows.append({"model": name, "name": (variant.paper_name if variant and variant.paper_name else name),
                             "variant": (variant.paper_name if variant and variant.paper_name else name),
                             "runtime": rt, "e2e_ms": e2e,
                             "vs_baseline_ms": (e2e - base_ms) if (e2e is not None and base_ms is not None) else None,
                             "activation_share": _pct(share("activation")),
                             "gating_share": _pct(share("gating")),
                             "dynamic_share": _pct(share("dynamic-activation")),
                             "branch_share": _pct(share("elementwise")),
                             "conv_share": _pct(share("dense-conv", "depthwise-conv", "pointwise-conv",
                                                      "grouped-conv")),
                             "coverage": _num(rec.get("coverage"))})
        if rows:
            groups.append({"name": title, "rows": rows})
    if not groups:
        raise AnalysisError("no explain records of Tables 2 and 3's networks with these filters")
    footnotes = ["Shares are of the summed operator times of each profile (the runtime's own profiler); the latency "
                 "is the unprofiled end-to-end median measured in the same process.",
                 "Activation: element-wise activations; Gating: squeeze-excite (pool, bottleneck, sigmoid, multiply); "
                 "Dynamic activation: DY-ReLU / Dynamic Shift-Max including their hyper-functions; Branch merges: "
                 "element-wise adds and multiplies (skip connections)."]
    low = sorted({r["model"] for r in records if r.get("coverage_ok") is False})
    if low:
        footnotes.append(f"coverage outside the documented range for: {', '.join(low)}")
    return {"layout": "section32", "title": "Section 3.2 (Tables 2 and 3): where each ablation network's time goes",
            "columns": _SECTION32_COLUMNS, "groups": groups, "footnotes": footnotes, "agreement": None,
            "sort": None}
