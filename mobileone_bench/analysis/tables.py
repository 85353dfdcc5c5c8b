"""The paper's Table 9 and Table 14 layouts, filled from our records (profile + latency per device) and the paper's
top-1, with the paper's figures beside ours on request; writers for Markdown, CSV, LaTeX (booktabs) and JSON.

:func:`build_table` returns a plain dict (columns, groups of rows, footnotes, rank agreement); :func:`render`
turns it into text. Missing values are ``None`` in the dict and ``-`` in text, as in the paper.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from mobileone_bench.store.frames import (
    DEVICE_LABELS,
    PAPER_DEVICE_LABELS,
    PAPER_STATISTIC,
    _few,
    latency_frame,
    model_filter,
    normalize_name,
    profile_frame,
)
from mobileone_bench.errors import AnalysisError, UsageError
from mobileone_bench.analysis.table_text import (  # noqa: F401 - the writers, re-exported
    FORMATS,
    _clean,
    _isnum,
    flat_rows,
    format_cell,
    format_p,
    render,
    table_cell,
)

__all__ = ["LAYOUTS", "FORMATS", "build_table", "render", "flat_rows", "format_cell", "table_cell", "format_p", "layout_models"]

LAYOUTS: dict[str, dict[str, Any]] = {
    "table9": {
        "title": "Table 9: top-1, FLOPs, params and latency, grouped by family and sorted by mobile latency",
        "devices": ("cpu", "gpu", "iphone"),
        "profile": True,
        "groups": (("transformer", "Transformer Architectures"), ("convolutional", "Convolutional Architectures")),
        "sort_by": "iphone",
    },
    "table14": {
        "title": "Table 14: latency on CPU, iPhone 12, RTX-2080Ti (TensorRT) and Pixel-6 TPU",
        "devices": ("cpu", "iphone", "gpu", "pixel6"),
        "profile": True,  # not in the paper's Table 14; its reference figures come from Table 9 (and RepVGG's paper)
        "groups": (),
        "sort_by": None,
    },
}
OTHER_GROUP = "Other models"
_PAPER_HARDWARE = {"cpu": "Xeon Gold 5118", "gpu": "RTX-2080Ti TensorRT fp16", "iphone": "iPhone 12",
                   "pixel6": "Pixel-6 TPU int8"}


def layout_models(layout: str) -> list[str]:
    """The registry names of a layout's rows, in the paper's order."""
    from mobileone_bench.reference import paper_table

    _check_layout(layout)
    return [r["model"] for r in paper_table(layout)["rows"]]


def _check_layout(layout: str) -> str:
    key = str(layout).lower().replace("-", "").replace("_", "")
    if key not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}; choose from {', '.join([*LAYOUTS, 'section32', 'accuracy'])}")
    return key


def _choose_runtimes(lat: Any, devices: Sequence[str], runtimes: Sequence[str]) -> dict[str, str]:
    """Per device, the runtime whose records fill the column: a requested one, else the one covering most models
    (ties: the device's default runtime)."""
    from mobileone_bench.devices import default_runtime

    out: dict[str, str] = {}
    if lat.empty:
        return out
    for device in devices:
        sub = lat[lat["device"] == device]
        if sub.empty:
            continue
        present = list(dict.fromkeys(sub["runtime"]))
        asked = [r for r in runtimes if r in present]
        if asked:
            out[device] = asked[0]
            continue
        try:
            default = default_runtime(device)
        except UsageError:
            default = None
        counts = {rt: sub[sub["runtime"] == rt]["model"].nunique() for rt in present}
        out[device] = max(present, key=lambda rt: (counts[rt], rt == default))
    return out


def _extra_runtimes(lat: Any, chosen: dict[str, str], runtimes: Sequence[str]) -> dict[str, list[str]]:
    """Per device, the runtimes that get a column of their own beside the chosen one: the other requested runtimes
    that have records on that device (``all``: every runtime it has), in the order asked (``all``: by name)."""
    out: dict[str, list[str]] = {}
    if lat.empty:
        return out
    for device, main in chosen.items():
        present = set(lat[lat["device"] == device]["runtime"])
        wanted = sorted(present) if "all" in runtimes else list(dict.fromkeys(runtimes))
        out[device] = [rt for rt in wanted if rt in present and rt != main]
    return out


def _why_no_rows(store: Any, names: Sequence[str], *, threads: int | None, precision: str | None,
                 include_contended: bool) -> str | None:
    """Why ``names`` have no row although the store may hold latency records of them: every usable one is flagged
    contended, they were measured with other settings than ``threads`` / ``precision``, or every measurement of
    them failed. ``None`` when the store holds no latency record of them at all (they were never measured)."""
    accept = model_filter(names)
    mine = [r for r in store.records("latency") if accept(str(r.get("model")))]
    ok = [r for r in mine if r.get("status") == "ok" and r.get("latency_ms") is not None]
    matching = [r for r in ok if (threads is None or r.get("device") != "cpu" or r.get("threads") == threads)
                and (not precision or r.get("precision") == precision)]
    if matching and not include_contended and all(r.get("contended") is True for r in matching):
        models = {str(r.get("model")) for r in matching}
        return (f"every latency record of {_few(models)} that matches is flagged contended ({len(matching)}, "
                f"measured while other processes used the CPU): --include-contended uses them, "
                f"`run --remeasure-flagged` measures them again")
    if ok and not matching:
        asked = " ".join(part for part in (f"--threads {threads}" if threads is not None else "",
                                           f"--precision {precision}" if precision else "") if part)
        stored = []
        if threads is not None:
            counts = sorted({str(r.get("threads")) for r in ok if r.get("device") == "cpu"})
            stored.append(f"threads {', '.join(counts)}" if counts else "no CPU records")
        if precision:
            stored.append(f"precision {', '.join(sorted({str(r.get('precision')) for r in ok}))}")
        return f"their {len(ok)} latency record(s) do not match {asked} (stored: {'; '.join(stored)})"
    failed = [r for r in mine if r.get("status") != "ok"]
    if failed and not ok:
        newest = max(failed, key=lambda r: str(r.get("created") or ""))
        error = " ".join(str(newest.get("error") or newest.get("status") or "?").split())
        return (f"every latency measurement of them failed ({len(failed)} record(s); the newest says: "
                f"{error[:160]}{'...' if len(error) > 160 else ''})")
    return None


def build_table(store: Any, layout: str = "table9", *, models: Sequence[str] | None = None, all_rows: bool = False,
                compare: bool = False, runtimes: Iterable[str] | None = None, threads: int | None = None,
                precision: str | None = None, include_contended: bool = False, ci: bool = False) -> dict[str, Any]:
    """A paper layout filled from our records.

    Args:
        store: The results store.
        layout: ``table9`` or ``table14``.
        models: Registry names to show, in this order (models outside the layout go to an "Other models" group).
            Default: the layout's rows that have at least one record, or all of them with ``all_rows``.
        all_rows: Show every row of the layout, measured or not.
        compare: Put the paper's figure beside ours for each numeric column, and compute the rank agreement.
        runtimes: Runtimes to prefer per device (default: the one covering most models). The first one a device
            has fills its column (the one rows are sorted and compared by); every other one it has gets a column of
            its own beside it (``<device>_<runtime>_ms``); ``all``: every runtime a device has.
        threads: Keep CPU records measured with this many threads.
        precision: Keep records of this precision.
        include_contended: Keep latency records flagged contended (left out by default, with a footnote).
        ci: Show each latency with its 95% bootstrap interval, ``2.43 (2.39-2.47)`` (the bounds are in the rows,
            ``<device>_ci_low_ms`` / ``<device>_ci_high_ms``, either way; a record stored before intervals existed
            gets one computed from its samples when ``ci`` is asked for).

    Returns:
        ``{"layout", "title", "columns": [{"key", "header", "paper"}], "groups": [{"name", "rows"}], "footnotes",
        "agreement" (list or None), "sort"}``. Row keys: ``model``, ``name``, ``family`` (Table 9's
        transformer/convolutional, or ``None``), ``top1``, ``flops_m``,
        ``params_m``, ``<device>_ms`` and, with ``compare``, ``paper_<key>``; missing values are ``None``.

    Raises:
        UsageError: Unknown layout.
        AnalysisError: No records at all, or none for the models asked for; when the store holds latency records
            of them that cannot be used, the message says why (every one contended, measured with other
            ``threads`` / ``precision``, or failed) instead of asking to measure them.
    """
    import pandas as pd

    from mobileone_bench.reference import paper_table

    if str(layout).lower().replace("-", "").replace("_", "") == "section32":  # read through explain records
        from mobileone_bench.analysis.operators import section32_table

        return section32_table(store, models=models, runtimes=runtimes, threads=threads)
    if str(layout).lower() == "accuracy":  # top-1 per artifact next to latency, from evaluate's accuracy records
        from mobileone_bench.analysis.accuracy import accuracy_table

        return accuracy_table(store, models=models, precision=precision, ci=ci)
    layout = _check_layout(layout)
    spec = LAYOUTS[layout]
    paper_rows = paper_table(layout)["rows"]
    paper_by_key = {normalize_name(r["model"]): (i, r) for i, r in enumerate(paper_rows)}
    has_latency = bool(store.latest("latency"))
    has_profile = bool(store.latest("profile"))
    if not has_latency and not has_profile:
        raise AnalysisError(f"no measurements in {store.root}: run `mobileone-bench run` (or `mobileone-bench "
                            f"latency MODEL...`) first, or point --results at a folder that has some")
    runtimes = [r for r in (runtimes or []) if r]
    notes: list[str] = []
    if has_latency:
        try:
            lat, lat_notes = latency_frame(store, threads=threads, precision=precision,
                                           include_contended=include_contended)
        except AnalysisError as exc:  # every latency set aside: FLOPs and params can still fill the layout
            lat, lat_notes = pd.DataFrame(columns=["model", "device", "runtime", "latency_ms", "input_shape"]), \
                [str(exc)]
        notes += lat_notes
    else:
        lat = pd.DataFrame(columns=["model", "device", "runtime", "latency_ms", "input_shape"])
    prof = profile_frame(store)
    recorded = {normalize_name(m) for m in list(lat["model"]) + list(prof["model"])}

    if models:
        names = list(dict.fromkeys(models))
        if not any(normalize_name(m) in recorded for m in names):
            why = _why_no_rows(store, names, threads=threads, precision=precision,
                               include_contended=include_contended)
            raise AnalysisError(f"no records for {', '.join(names[:5])}{' ...' if len(names) > 5 else ''} in "
                                f"{store.root}{' that the table can use: ' + why if why else ''}"
                                f"{'' if why else ': measure them with `mobileone-bench run MODEL...` first'}")
    else:
        names = [r["model"] for r in paper_rows if all_rows or normalize_name(r["model"]) in recorded]
        if not names:
            why = _why_no_rows(store, [r["model"] for r in paper_rows], threads=threads, precision=precision,
                               include_contended=include_contended)
            raise AnalysisError(f"none of the {layout} models has a record in {store.root}"
                                f"{' that the table can use: ' + why if why else ''} (use --all to print the layout "
                                f"anyway, or name MODEL... / --zoo)")

    extra_devices = [d for d in ("mac",) if not lat.empty and d in set(lat["device"])]
    devices = list(spec["devices"]) + extra_devices
    chosen = _choose_runtimes(lat, devices, [r for r in runtimes if r != "all"])
    extra = _extra_runtimes(lat, chosen, runtimes)
    for device, rt in chosen.items():
        others = sorted(set(lat[(lat["device"] == device) & (lat["runtime"] != rt)]["runtime"])
                        - set(extra.get(device, [])))
        if others:
            notes.append(f"{DEVICE_LABELS[device]} column: {rt} records; also stored: {', '.join(others)} "
                         f"(choose with --runtime)")

    # one row per model
    wanted = {normalize_name(n) for n in names}
    rows: list[dict[str, Any]] = []
    for name in names:
        key = normalize_name(name)
        order, paper = paper_by_key.get(key, (None, None))
        ref9 = paper if paper is not None and (layout == "table9" or paper.get("flops_m") is not None) else None
        if ref9 is None:
            from mobileone_bench.reference import paper_row

            ref9 = paper_row(name, "table9") or paper_row(name, "table13")
        row: dict[str, Any] = {
            "model": name,
            "name": (paper or {}).get("paper_name") or (ref9 or {}).get("paper_name") or name,
            "family": (paper or ref9 or {}).get("group"),
            "in_layout": paper is not None,
            "paper_order": order,
            "top1": (paper or ref9 or {}).get("top1"),
        }
        mine = lat[lat["model"].map(normalize_name) == key] if not lat.empty else lat
        shapes = [s for s in mine.get("input_shape", []) if isinstance(s, str)]
        if spec["profile"]:
            p = prof[prof["model"].map(normalize_name) == key] if not prof.empty else prof
            if shapes and not p.empty and (p["input_shape"] == shapes[0]).any():
                p = p[p["input_shape"] == shapes[0]]
            row["flops_m"] = _clean(p.iloc[0]["flops_m"]) if not p.empty else None
            row["params_m"] = _clean(p.iloc[0]["params_m"]) if not p.empty else None
            if compare:
                row["paper_flops_m"] = (ref9 or {}).get("flops_m")
                row["paper_params_m"] = (ref9 or {}).get("params_m")
                source = (ref9 or {}).get("complexity_source")
                if source and source not in ("table9", "table13"):
                    notes.append(f"{row['name']}: paper FLOPs and params from the {source}.")
        for device in devices:
            value = None
            if device in chosen:
                m = mine[(mine["device"] == device) & (mine["runtime"] == chosen[device])]
                if not m.empty:
                    value = _clean(m.iloc[0]["latency_ms"])
                    low, high = _interval_of(store, m.iloc[0], compute=ci)
                    row[f"{device}_ci_low_ms"], row[f"{device}_ci_high_ms"] = low, high
            row[f"{device}_ms"] = value
            for rt in extra.get(device, []):
                m = mine[(mine["device"] == device) & (mine["runtime"] == rt)]
                row[f"{device}_{rt}_ms"] = _clean(m.iloc[0]["latency_ms"]) if not m.empty else None
                if not m.empty:
                    low, high = _interval_of(store, m.iloc[0], compute=ci)
                    row[f"{device}_{rt}_ci_low_ms"], row[f"{device}_{rt}_ci_high_ms"] = low, high
            if compare:
                row[f"paper_{device}_ms"] = ((paper or {}).get("latency_ms") or {}).get(device)
        rows.append(row)

    # columns
    columns: list[dict[str, Any]] = [{"key": "name", "header": "Model", "paper": False},
                                     {"key": "top1", "header": "Top-1 (%, paper)", "paper": False}]
    if spec["profile"]:
        columns.append({"key": "flops_m", "header": "FLOPs (M)", "paper": False})
        if compare:
            columns.append({"key": "paper_flops_m", "header": "Paper FLOPs", "paper": True})
        columns.append({"key": "params_m", "header": "Params (M)", "paper": False})
        if compare:
            columns.append({"key": "paper_params_m", "header": "Paper params", "paper": True})
    footnotes = ["Top-1: the paper's ImageNet-1k figures (this tool measures speed; it does not train)."]
    if spec["profile"]:
        footnotes.append("FLOPs: multiply-adds of the inference-time (re-parameterized) model, as the paper counts "
                         "them; params in millions.")
    for device in devices:
        columns.append({"key": f"{device}_ms", "header": _device_header(lat, device, chosen.get(device), wanted),
                        "paper": False})
        for rt in extra.get(device, []):
            columns.append({"key": f"{device}_{rt}_ms", "header": _device_header(lat, device, rt, wanted),
                            "paper": False})
            footnotes.append(_device_footnote(lat, device, rt, wanted))
        if compare and device != "mac":
            columns.append({"key": f"paper_{device}_ms", "header": f"Paper {_paper_label(device, layout)}",
                            "paper": True})
        if device in chosen:
            footnotes.append(_device_footnote(lat, device, chosen[device], wanted))
    complexity_note = paper_table(layout).get("complexity_note") if layout in LAYOUTS else None
    if compare and spec["profile"] and complexity_note:
        footnotes.append(complexity_note)
    if compare:
        footnotes.append("Paper columns: the paper's figure for the column to their left, same unit; " +
                         "; ".join(f"{_paper_label(d, layout)} = {_PAPER_HARDWARE[d]}, {PAPER_STATISTIC[d]}"
                                   for d in devices if d in _PAPER_HARDWARE) + ".")
    footnotes.append("'-': not measured (in paper columns: no figure in the paper, as its own '-').")
    footnotes += notes

    # groups and order
    sort_dev = spec["sort_by"]
    group_defs = list(spec["groups"]) or [(None, None)]
    groups = []
    sorted_by_ours, paper_order = [], []
    for gkey, gname in group_defs + [("__other__", OTHER_GROUP)]:
        if gkey == "__other__":
            members = [r for r in rows if not r["in_layout"]]
        elif gkey is None:
            members = [r for r in rows if r["in_layout"]]
        else:
            members = [r for r in rows if r["in_layout"] and r["family"] == gkey]
        if not members:
            continue
        if sort_dev and all(_isnum(r.get(f"{sort_dev}_ms")) for r in members):
            members.sort(key=lambda r: -float(r[f"{sort_dev}_ms"]))
            sorted_by_ours.append(gname or "rows")
        elif gkey != "__other__":
            members.sort(key=lambda r: r["paper_order"])
            paper_order.append(gname or "rows")
        groups.append({"name": gname if (gkey is not None and (spec["groups"] or gkey == "__other__")) else None,
                       "rows": members})
    dev = DEVICE_LABELS.get(sort_dev or "", "")
    parts = []
    if sorted_by_ours:
        parts.append(f"{', '.join(sorted_by_ours)}: by our {dev} latency, descending (the paper sorts by mobile "
                     f"latency)")
    if paper_order:
        why = f" (not every row has an {dev} measurement of ours)" if sort_dev else ""
        parts.append(f"{', '.join(paper_order)}: in the paper's order{why}")
    sort = "; ".join(parts) or "in the order given"
    if not spec["groups"] and not sorted_by_ours:
        sort = "in the paper's order" + (", then the other models in the order given" if len(groups) > 1 else "")
    footnotes.insert(0, f"Row order: {sort}.")

    agreement = None
    if compare and not lat.empty:
        from mobileone_bench.analysis.correlate import rank_agreement

        sel = lat[lat["model"].map(normalize_name).isin(wanted)]
        sel = sel[[chosen.get(d) == rt for d, rt in zip(sel["device"], sel["runtime"])]]
        agreement = rank_agreement(sel, "table9" if layout == "table9" else layout)
    for g in groups:
        for r in g["rows"]:
            r.pop("in_layout", None)
            r.pop("paper_order", None)
    return {"layout": layout, "title": spec["title"], "columns": columns, "groups": groups,
            "footnotes": footnotes + (["Latency (low-high): 95% bootstrap interval of the statistic over the runs."]
                                      if ci else []),
            "agreement": agreement, "sort": sort, "compare": compare, "ci": ci}


def _paper_label(device: str, layout: str) -> str:
    """The paper's name of a device column: Table 9 says "Mobile", Table 14 "iPhone12"."""
    if device == "iphone" and layout == "table14":
        return "iPhone 12"
    return PAPER_DEVICE_LABELS.get(device, device)


def _stat_of(lat: Any, device: str, runtime: str | None, wanted: set[str]) -> list[str]:
    if runtime is None or lat.empty:
        return []
    sub = lat[(lat["device"] == device) & (lat["runtime"] == runtime)]
    sub = sub[sub["model"].map(normalize_name).isin(wanted)]
    return sorted({str(s) for s in sub.get("statistic", [])})


def _device_header(lat: Any, device: str, runtime: str | None, wanted: set[str]) -> str:
    label = DEVICE_LABELS.get(device, device)
    stats = _stat_of(lat, device, runtime, wanted)
    if not stats:
        return f"{label} (ms)"
    stat = stats[0] if len(stats) == 1 else "mixed statistics"
    return f"{label} {runtime} (ms, {stat})"


def _device_footnote(lat: Any, device: str, runtime: str, wanted: set[str]) -> str:
    sub = lat[(lat["device"] == device) & (lat["runtime"] == runtime)]
    sub = sub[sub["model"].map(normalize_name).isin(wanted)]
    if sub.empty:
        return f"{DEVICE_LABELS.get(device, device)}: {runtime}, no measurement of these models."

    def values(col: str) -> str:
        vals = set()
        for v in sub.get(col, []):
            v = _clean(v)
            if v is None:
                continue
            vals.add(str(int(v)) if isinstance(v, float) and v.is_integer() else str(v))
        return ", ".join(sorted(vals))

    parts = [runtime]
    if values("precision"):
        parts.append(values("precision"))
    if device == "cpu" and values("threads"):
        parts.append(f"{values('threads')} thread(s)")
    parts.append(f"latency = {values('statistic')} runs")
    hw = values("env_gpu") if device == "gpu" else values("env_cpu") if device == "cpu" else ""
    if hw:
        parts.append(hw)
    noisy = sorted(set(sub[[bool(_clean(v)) for v in sub.get("noise_warning", [None] * len(sub))]]["model"])) \
        if "noise_warning" in sub else []
    text = f"{DEVICE_LABELS.get(device, device)}: " + ", ".join(parts)
    if noisy:
        text += f"; unstable timing flagged for {', '.join(noisy[:5])}{' ...' if len(noisy) > 5 else ''}"
    return text + "."


# ------------------------------------------------------------------------------------------------------ intervals


def _interval_of(store: Any, record: Any, *, compute: bool) -> tuple[Any, Any]:
    """The stored interval of a latency record, or (``compute``) one from its samples when it has none."""
    low, high = _clean(record.get("ci_low_ms")), _clean(record.get("ci_high_ms"))
    if (low is None or high is None) and compute and record.get("samples_file"):
        from mobileone_bench.stats import interval_ci

        try:
            got = interval_ci(store.samples(dict(record)), str(record.get("report") or "median"))
            low, high = got["ci_low_ms"], got["ci_high_ms"]
        except Exception:  # noqa: BLE001 - an unreadable samples file leaves the interval out, not the table
            pass
    return low, high
