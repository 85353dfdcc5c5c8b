"""The paper's Figure 2 (latency vs FLOPs, latency vs params: labelled scatter, log axes) and Figure 1 (top-1 vs
latency), from our records, optionally with the paper's own points overlaid.

Drawing uses matplotlib's object API on an Agg canvas (no pyplot, no display, no global state). Labels are placed
greedily: each label tries a few positions around its point and keeps the one that overlaps least with markers and
labels already placed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Sequence

from mobileone_bench.store.frames import (
    DEVICE_LABELS,
    PAPER_STATISTIC,
    measurements,
    normalize_name,
    reference_frame,
)
from mobileone_bench.errors import AnalysisError, UsageError

__all__ = ["FIGURES", "parse_figures", "figure_panels", "draw", "save", "make_plots", "OURS_GID", "PAPER_GID"]

FIGURES = {
    "latency-vs-flops": {"paper": "Figure 2, top", "x": "flops_m", "y": "latency_ms", "xlabel": "FLOPs (M, log scale)",
                         "logx": True, "logy": True, "what": "Latency vs FLOPs"},
    "latency-vs-params": {"paper": "Figure 2, bottom", "x": "params_m", "y": "latency_ms",
                          "xlabel": "Parameters (M, log scale)", "logx": True, "logy": True,
                          "what": "Latency vs parameter count"},
    "accuracy-vs-latency": {"paper": "Figure 1", "x": "latency_ms", "y": "top1", "ylabel": "ImageNet top-1 (%, paper)",
                            "logx": True, "logy": False, "what": "Top-1 accuracy vs latency"},
    # the other proxies (mobileone_bench.proxies); not in the paper
    "latency-vs-activations": {"paper": None, "x": "activations_m", "y": "latency_ms", "logx": True, "logy": True,
                               "xlabel": "Activations (M elements written, log scale)", "what": "Latency vs activations"},
    "latency-vs-memory": {"paper": None, "x": "memory_mb", "y": "latency_ms", "logx": True, "logy": True,
                          "xlabel": "Memory traffic (MB at the record's precision, log scale)",
                          "what": "Latency vs memory traffic"},
    "latency-vs-depth": {"paper": None, "x": "depth", "y": "latency_ms", "logx": False, "logy": True,
                         "xlabel": "Depth (longest chain of compute layers)", "what": "Latency vs depth"},
    # drawn from explain records (mobileone_bench.analysis.operators)
    "time-by-category": {"paper": None, "source": "explain", "what": "Share of the time per operator category"},
    "time-vs-flop-share": {"paper": None, "source": "explain", "what": "Time share vs FLOP share per category"},
}
#: The paper's figures: what `plot` draws when no figure is named.
PAPER_FIGURES = ("latency-vs-flops", "latency-vs-params", "accuracy-vs-latency")
OURS_GID = "points-ours"
PAPER_GID = "points-paper"
_COLORS = {"convolutional": "#1f77b4", "transformer": "#d62728", "other": "#2ca02c"}
_GROUP_LABEL = {"convolutional": "convolutional", "transformer": "transformer", "other": "not in Table 9"}
_PAPER_HW = {"iphone": "iPhone 12", "cpu": "Xeon Gold 5118", "gpu": "RTX-2080Ti", "pixel6": "Pixel-6"}


def parse_figures(values: str | Iterable[str] | None) -> list[str]:
    """Validated figure names (the paper's three when empty).

    Raises:
        UsageError: An unknown figure.
    """
    from mobileone_bench.store.frames import parse_choices, parse_list

    aliases = {"top1-vs-latency": "accuracy-vs-latency"}  # Figure 1 by what it plots (measured top-1 where evaluated)
    values = [aliases.get(v.lower(), v) for v in parse_list(values)]
    return parse_choices(values, FIGURES, problem="unknown figure", default=PAPER_FIGURES)


def _paper_info(model: str) -> dict[str, Any]:
    from mobileone_bench.reference import paper_row

    row = paper_row(model, "table9") or paper_row(model, "table13") or paper_row(model, "table14") or {}
    return {"label": row.get("paper_name") or model, "group": row.get("group") or ("other" if not row else
                                                                                   "convolutional"),
            "top1": row.get("top1")}


def _ylabel(figure: str, device: str) -> str:
    return FIGURES[figure].get("ylabel") or f"{DEVICE_LABELS.get(device, device)} latency (ms, log scale)"


def _xlabel(figure: str, device: str) -> str:
    return FIGURES[figure].get("xlabel") or f"{DEVICE_LABELS.get(device, device)} latency (ms, log scale)"


def figure_panels(store: Any | None, figures: Sequence[str], *, devices: Sequence[str] | None = None,
                  runtime: str | None = None, models: Iterable[str] | None = None,
                  exclude: Iterable[str] | None = None, reference: str | None = None,
                  include_contended: bool = False) -> list[dict[str, Any]]:
    """The data of every figure to draw: one panel per (figure, device, runtime) of our records.

    Args:
        store: The results store, or ``None`` to plot only the paper's points (needs ``reference``).
        figures: Names from :data:`FIGURES`.
        devices: Devices to plot (all that have records when empty; the iPhone for the paper alone).
        runtime: Keep this runtime only.
        models: Names or wildcards to keep.
        exclude: Names or wildcards to drop.
        reference: ``"paper"`` to overlay the paper's Table 9 points.
        include_contended: Keep latency records flagged contended (left out by default, with a note).

    Returns:
        Panels ``{"figure", "device", "runtime", "title", "xlabel", "ylabel", "logx", "logy", "points",
        "reference_points", "notes"}``; points are ``{"model", "label", "group", "x", "y"}``.

    Raises:
        AnalysisError: Nothing to plot (no records and no reference).
    """
    if reference not in (None, "paper"):
        raise UsageError(f"unknown reference {reference!r}; the only one is 'paper'")
    devices = list(devices or [])
    frame = None
    notes: list[str] = []
    if store is not None:
        if store.latest("latency"):
            frame, notes = measurements(store, devices=devices, runtime=runtime, models=models, exclude=exclude,
                                        include_contended=include_contended)
        elif reference is None:
            raise AnalysisError(f"no latency measurements in {store.root}: run `mobileone-bench run` (or "
                                f"`mobileone-bench latency MODEL...`) first, or add --reference paper to plot the "
                                f"paper's points alone")
    if frame is None or frame.empty:
        if reference is None:
            raise AnalysisError("no latency to plot with these filters (check --device, --runtime, --models)")
        groups = [(d, None) for d in (devices or ["iphone"])]
    else:
        groups = sorted({(str(d), str(r)) for d, r in zip(frame["device"], frame["runtime"])})
    ref = reference_frame("table9", models=models, exclude=exclude) if reference == "paper" else None
    from mobileone_bench.analysis.accuracy import accuracy_records, top1_for

    measured = accuracy_records(store) if store is not None and "accuracy-vs-latency" in figures else []
    panels = []
    for figure in figures:
        spec = FIGURES[figure]
        if spec.get("source") == "explain":  # drawn from explain records (analysis.operators.operator_plots)
            continue
        for device, rt in groups:
            points, skipped = [], []
            stat, hardware = None, None
            if rt is not None and frame is not None:
                sub = frame[(frame["device"] == device) & (frame["runtime"] == rt)]
                stats = sorted({str(s) for s in sub["statistic"]})
                stat = stats[0] if len(stats) == 1 else "mixed statistics"
                hws = sorted({str(v) for v in sub.get("env_gpu" if device == "gpu" else "env_cpu", [])
                              if v is not None and v == v}) if device in ("cpu", "gpu") else []
                hardware = hws[0] if len(hws) == 1 else None
                thr = sorted({int(t) for t in sub.get("threads", []) if t is not None and t == t})
                if device == "cpu" and thr:
                    hardware = f"{hardware or 'CPU'}, {'/'.join(map(str, thr))} thread(s)"
                for _, r in sub.iterrows():
                    info = _paper_info(str(r["model"]))
                    top1, top1_source = top1_for(measured, str(r["model"]), device, rt, r.get("precision"),
                                                 info["top1"])
                    values = {"latency_ms": r.get("latency_ms"), "flops_m": r.get("flops_m"),
                              "params_m": r.get("params_m"), "top1": top1,
                              **{k: r.get(k) for k in ("activations_m", "memory_mb", "depth")}}
                    x, y = values[spec["x"]], values[spec["y"]]
                    if not _positive(x) or not _positive(y):
                        skipped.append(str(r["model"]))
                        continue
                    marked = figure == "accuracy-vs-latency" and measured and top1_source == "paper"
                    points.append({"model": str(r["model"]), "label": info["label"] + (" †" if marked else ""),
                                   "group": info["group"], "x": float(x), "y": float(y),
                                   **({"top1_source": top1_source} if figure == "accuracy-vs-latency" else {})})
            ref_points = []
            if ref is not None:
                for _, r in ref[ref["device"] == device].iterrows():
                    values = {"latency_ms": r["latency_ms"], "flops_m": r["flops_m"], "params_m": r["params_m"],
                              "top1": r["top1"]}
                    x, y = values.get(spec["x"]), values.get(spec["y"])
                    if _positive(x) and _positive(y):
                        ref_points.append({"model": r["model"], "label": r["paper_name"], "group": r["group"],
                                           "x": float(x), "y": float(y)})
            prefix = f"{DEVICE_LABELS.get(device, device)} {rt}:"
            panel_notes = [n for n in notes if n.startswith(prefix)]
            if skipped:
                why = "no top-1 in the paper" if figure == "accuracy-vs-latency" else "no profile record"
                panel_notes.append(f"{len(skipped)} model(s) not plotted ({why}): {', '.join(sorted(skipped)[:6])}"
                                   f"{' ...' if len(skipped) > 6 else ''}")
            ylabel = _ylabel(figure, device)
            if figure == "accuracy-vs-latency" and measured:
                ours = sum(1 for p in points if p.get("top1_source") != "paper")
                panel_notes.append(f"top-1 measured by `evaluate` for {ours} model(s) (the artifact's own where it "
                                   f"was evaluated, else the PyTorch model's); the paper's ImageNet top-1 for "
                                   f"{len(points) - ours} (marked †)")
                ylabel = "Top-1 (%): measured by evaluate; † the paper's ImageNet top-1"
            if reference == "paper" and not ref_points:
                panel_notes.append(f"the paper has no {DEVICE_LABELS.get(device, device)} figures to overlay")
            if not points and not ref_points:
                panel_notes.append("nothing to plot")
            title = f"{spec['what']}: {DEVICE_LABELS.get(device, device)}"
            if rt is not None:
                title += f" {rt}, latency = {stat} runs"
            sub_title = []
            if hardware:
                sub_title.append(f"ours: {hardware}")
            if ref_points:
                cf = f"; cf. its {spec['paper']}" if spec["paper"] else ""
                sub_title.append(f"paper (Table 9 figures{cf}): {_PAPER_HW.get(device, device)}, "
                                 f"{PAPER_STATISTIC.get(device, '?')}")
            panels.append({"figure": figure, "device": device, "runtime": rt, "statistic": stat,
                           "title": title, "subtitle": "; ".join(sub_title), "xlabel": _xlabel(figure, device),
                           "ylabel": ylabel, "logx": spec["logx"], "logy": spec["logy"],
                           "points": points, "reference_points": ref_points, "notes": panel_notes})
    return panels


def _positive(v: Any) -> bool:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return False
    return f == f and f > 0 and f != float("inf")


_OFFSETS = [(5, 4), (5, -9), (-5, 4), (-5, -9), (0, 8), (0, -13), (9, -2), (-9, -2), (12, 10), (-12, 10),
            (12, -15), (-12, -15)]


def _overlap(a: Any, b: Any) -> float:
    w = min(a.x1, b.x1) - max(a.x0, b.x0)
    h = min(a.y1, b.y1) - max(a.y0, b.y0)
    return w * h if w > 0 and h > 0 else 0.0


def _marker_boxes(ax: Any, points: list[dict[str, Any]], half: float = 4.0) -> list[Any]:
    from matplotlib.transforms import Bbox

    boxes = []
    for p in points:
        x, y = ax.transData.transform((p["x"], p["y"]))
        boxes.append(Bbox([[x - half, y - half], [x + half, y + half]]))
    return boxes


def _place_labels(fig: Any, ax: Any, points: list[dict[str, Any]], color_of: Any, *, fontsize: float = 7.0,
                  style: str = "normal", avoid: list[Any] | None = None) -> list[Any]:
    """Label ``points``; ``avoid`` holds boxes (display pixels) already taken. Returns ``avoid`` plus the labels."""
    renderer = fig.canvas.get_renderer()
    axbox = ax.get_window_extent(renderer)
    placed: list[Any] = list(avoid or [])
    texts = []
    # crowded points first get the best spots
    order = sorted(points, key=lambda p: (p["y"], p["x"]))
    for p in order:
        best, best_cost = None, None
        for dx, dy in _OFFSETS:
            ha = "left" if dx > 0 else "right" if dx < 0 else "center"
            t = ax.annotate(p["label"], (p["x"], p["y"]), xytext=(dx, dy), textcoords="offset points",
                            fontsize=fontsize, color=color_of(p), ha=ha, style=style)
            bb = t.get_window_extent(renderer)
            cost = sum(_overlap(bb, o) for o in placed)
            outside = max(0.0, axbox.x0 - bb.x0) + max(0.0, bb.x1 - axbox.x1) + max(0.0, axbox.y0 - bb.y0) + \
                max(0.0, bb.y1 - axbox.y1)
            cost += outside * 50
            if best_cost is None or cost < best_cost:
                if best is not None:
                    best[0].remove()
                best, best_cost = (t, bb), cost
            else:
                t.remove()
            if cost == 0:
                break
        placed.append(best[1])
        texts.append(best[0])
    return placed


def draw(panel: dict[str, Any]) -> Any:
    """A matplotlib Figure of one panel (ours: filled circles, the paper: open diamonds; colour = family)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D

    fig = Figure(figsize=(9, 6.5), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ours, theirs = panel["points"], panel["reference_points"]
    handles = []
    groups_present = []
    for pts in (ours, theirs):
        for p in pts:
            if p["group"] not in groups_present:
                groups_present.append(p["group"])

    def color_of(p: dict[str, Any]) -> str:
        return _COLORS.get(p["group"], _COLORS["other"])

    if ours:
        sc = ax.scatter([p["x"] for p in ours], [p["y"] for p in ours], s=36, c=[color_of(p) for p in ours],
                        marker="o", edgecolors="black", linewidths=0.5, zorder=3)
        sc.set_gid(OURS_GID)
    if theirs:
        sc = ax.scatter([p["x"] for p in theirs], [p["y"] for p in theirs], s=40, marker="D",
                        facecolors="none", edgecolors=[color_of(p) for p in theirs], linewidths=1.1, zorder=2)
        sc.set_gid(PAPER_GID)
    theirs_by = {normalize_name(p["model"]): p for p in theirs}
    for p in ours:  # a faint link from each of our points to the paper's point of the same model
        q = theirs_by.get(normalize_name(p["model"]))
        if q is not None:
            line, = ax.plot([p["x"], q["x"]], [p["y"], q["y"]], ls=":", lw=0.8, color="0.55", zorder=1)
            line.set_gid("link")
    for axis, log in ((ax.xaxis, panel["logx"]), (ax.yaxis, panel["logy"])):
        if log:
            _log_axis(ax, axis)
    _pad_limits(ax, ours + theirs, panel["logx"], panel["logy"])
    ax.set_xlabel(panel["xlabel"])
    ax.set_ylabel(panel["ylabel"])
    ax.grid(True, which="major", alpha=0.3)
    ax.grid(True, which="minor", alpha=0.1)
    title = panel["title"] + (f"\n{panel['subtitle']}" if panel.get("subtitle") else "")
    ax.set_title(title, fontsize=10)
    for g in [g for g in ("convolutional", "transformer", "other") if g in groups_present]:
        if ours and any(p["group"] == g for p in ours):
            handles.append(Line2D([], [], marker="o", ls="", color=_COLORS[g], markeredgecolor="black",
                                  label=f"ours: {_GROUP_LABEL[g]}"))
        if theirs and any(p["group"] == g for p in theirs):
            handles.append(Line2D([], [], marker="D", ls="", markerfacecolor="none", markeredgecolor=_COLORS[g],
                                  label=f"paper: {_GROUP_LABEL[g]}"))
    if handles:
        ax.legend(handles=handles, fontsize=8, loc="best", framealpha=0.85)
    if not ours and not theirs:
        ax.text(0.5, 0.5, "nothing to plot", transform=ax.transAxes, ha="center")
    fig.canvas.draw()
    fig.set_layout_engine("none")  # freeze the layout: labels are placed against these positions
    legend = ax.get_legend()
    avoid = [legend.get_window_extent(fig.canvas.get_renderer())] if legend is not None else []
    avoid += _marker_boxes(ax, ours + theirs)
    placed = _place_labels(fig, ax, ours, color_of, fontsize=7.0, avoid=avoid)
    ours_keys = {normalize_name(p["model"]) for p in ours}
    # the paper's points get a label only where we have no point of the same model (else they would say it twice)
    _place_labels(fig, ax, [p for p in theirs if normalize_name(p["model"]) not in ours_keys], color_of,
                  fontsize=6.5, style="italic", avoid=placed)
    return fig


def _log_axis(ax: Any, axis: Any) -> None:
    """Log scale with readable ticks (0.5, 1, 2, 5, 10...) instead of bare powers of ten."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    (ax.set_xscale if axis is ax.xaxis else ax.set_yscale)("log")
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _pad_limits(ax: Any, pts: list[dict[str, Any]], logx: bool, logy: bool) -> None:
    if not pts:
        return
    for axis, log, key in (("x", logx, "x"), ("y", logy, "y")):
        lo, hi = min(p[key] for p in pts), max(p[key] for p in pts)
        if log:
            lo, hi = lo / 1.35, hi * 1.35
        else:
            span = (hi - lo) or max(abs(hi), 1.0)
            lo, hi = lo - 0.08 * span, hi + 0.08 * span
        (ax.set_xlim if axis == "x" else ax.set_ylim)(lo, hi)


def save(fig: Any, out_dir: str | Path, stem: str) -> list[str]:
    """Write ``<stem>.png`` and ``<stem>.svg`` under ``out_dir``; returns the paths."""
    out = Path(out_dir)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create {out}: {exc.strerror or exc}") from None
    import matplotlib

    paths = []
    # SVG text stays text (searchable, small) rather than one path per glyph
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "mobileone-bench"}):
        for ext in ("png", "svg"):
            path = out / f"{stem}.{ext}"
            try:
                fig.savefig(path, format=ext, dpi=150 if ext == "png" else None, metadata=_metadata(ext))
            except OSError as exc:
                raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
            paths.append(str(path))
    return paths


def _metadata(ext: str) -> dict[str, Any]:
    # no timestamps in the files: re-plotting the same records gives the same SVG
    return {"Date": None} if ext == "svg" else {"Software": "mobileone-bench"}


def make_plots(store: Any | None, out_dir: str | Path | None = None, *, figures: Sequence[str] | None = None,
               devices: Sequence[str] | None = None, runtime: str | None = None,
               models: Iterable[str] | None = None, exclude: Iterable[str] | None = None,
               reference: str | None = None, include_contended: bool = False) -> list[dict[str, Any]]:
    """Draw every panel (:func:`figure_panels`), and save each as PNG and SVG when ``out_dir`` is given.

    Returns:
        One entry per figure: ``{"figure", "device", "runtime", "name", "points", "reference_points", "notes",
        "fig"}`` (``name`` the file stem, ``latency-vs-flops_cpu-onnxruntime``; the counts of points drawn; ``fig``
        the matplotlib Figure), and ``png`` / ``svg``, the files written, with ``out_dir``.
    """
    out = []
    wanted = parse_figures(figures)
    from_explain = [f for f in wanted if FIGURES[f].get("source") == "explain"]
    if from_explain:
        from mobileone_bench.analysis.operators import operator_plots

        out += operator_plots(store, out_dir, figures=from_explain, devices=devices, runtime=runtime, models=models,
                              exclude=exclude, save=save)
        wanted = [f for f in wanted if f not in from_explain]
        if not wanted:
            return out
    for panel in figure_panels(store, wanted, devices=devices, runtime=runtime, models=models,
                               exclude=exclude, reference=reference, include_contended=include_contended):
        fig = draw(panel)
        stem = f"{panel['figure']}_{panel['device']}" + (f"-{panel['runtime']}" if panel["runtime"] else "-paper")
        entry = {"figure": panel["figure"], "device": panel["device"], "runtime": panel["runtime"] or "paper",
                 "name": stem, "points": len(panel["points"]), "reference_points": len(panel["reference_points"]),
                 "notes": panel["notes"], "fig": fig}
        if out_dir is not None:
            entry["png"], entry["svg"] = save(fig, out_dir, stem)
        out.append(entry)
    return out
