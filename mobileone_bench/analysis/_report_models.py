"""The report's header (what, where, when, with which versions, under which conditions) and its per-model part
(private to :mod:`mobileone_bench.analysis.report`).

Per model: each latency record with the histogram of its samples (the samples themselves are not in the page: a
histogram of :data:`HISTOGRAM_BINS` bins is what is kept of them), its per-round values, the reported statistic
and interval, the environment and the artifact hashes; its profile record; and its per-operator breakdowns
(``explain`` records, :mod:`mobileone_bench.store.operators`) summed per category, the :data:`TOP_OPERATORS`
costliest operators, and for a Core ML compute plan where each operation was placed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping, Sequence

from mobileone_bench.analysis._report_svg import distribution
from mobileone_bench.analysis._report_tables import anchor, cell
from mobileone_bench.errors import RecordsError
from mobileone_bench.store.frames import DEVICE_LABELS
from mobileone_bench.store.operators import COVERAGE_RANGE, category_totals, operator_rows

__all__ = ["HISTOGRAM_BINS", "TOP_OPERATORS", "header", "model_sections", "flag_reason"]

#: What the page keeps of a record's samples: a histogram of this many bins.
HISTOGRAM_BINS = 30
#: Operators listed per breakdown (the costliest); the categories sum all of them.
TOP_OPERATORS = 12

_STATS = (("latency_ms", "latency"), ("min_ms", "min"), ("median_ms", "median"), ("mean_ms", "mean"),
          ("p90_ms", "p90"), ("p99_ms", "p99"), ("max_ms", "max"), ("std_ms", "std"), ("cv", "CV"))


def _list(value: Any) -> list[Any]:
    from mobileone_bench.store.records import as_list

    return as_list(value)


def _dict(value: Any) -> dict[str, Any]:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, str) and value.startswith("{"):
        try:
            out = json.loads(value)
        except ValueError:
            return {}
        return out if isinstance(out, dict) else {}
    return {}


def flag_reason(record: Mapping[str, Any]) -> str | None:
    """Why a successful latency record is flagged (the rule of ``run --remeasure-flagged``): contended, or unstable
    by its spread with enough runs to judge; ``None`` when it is not."""
    from mobileone_bench.stats import MIN_RUNS_TO_JUDGE

    if record.get("status") != "ok":
        return None
    if record.get("contended"):
        share = record.get("contended_share")
        return "contended" + (f" ({float(share):.0%} of the runs)" if isinstance(share, (int, float)) else "")
    if record.get("noise_warning") and int(record.get("n") or 0) >= MIN_RUNS_TO_JUDGE:
        return str(record["noise_warning"])
    return None


def _distinct(records: Sequence[Mapping[str, Any]], field: str) -> list[str]:
    return sorted({str(r[field]) for r in records if r.get(field) not in (None, "")})


def header(store: Any, records: Sequence[Mapping[str, Any]], notes: Sequence[str],
           include_contended: bool) -> dict[str, Any]:
    """What was measured, on which devices and runtimes, when, with which versions, and the conditions."""
    latency = [r for r in records if r.get("kind") == "latency"]
    ok = [r for r in latency if r.get("status") == "ok"]
    kinds: dict[str, int] = {}
    for r in records:
        kinds[str(r.get("kind"))] = kinds.get(str(r.get("kind")), 0) + 1
    created = sorted(str(r["created"]) for r in records if r.get("created"))
    targets = sorted({(str(r.get("device")), str(r.get("runtime")), str(r.get("precision"))) for r in ok})
    versions: dict[str, set[str]] = {}
    for r in records:
        for k, v in r.items():
            if k.startswith("env_") and k not in ("env_machine", "env_hostname", "env_cpu_flags", "env_cpu", "env_os",
                                                                     "env_gpu") and v not in (
                    None, "") and not isinstance(v, (int, float)):
                versions.setdefault(k[4:], set()).add(str(v))
    machines = sorted({f"{r.get('env_cpu') or '?'} ({r.get('env_os') or '?'}), machine {r.get('machine')}"
                       for r in ok})
    flagged = [{"record": anchor(r.get("record_id")), "record_id": r.get("record_id"), "model": r.get("model"),
                "target": f"{DEVICE_LABELS.get(str(r.get('device')), r.get('device'))} {r.get('runtime')}",
                "why": flag_reason(r)} for r in ok if flag_reason(r)]
    failed = [{"record": anchor(r.get("record_id")), "record_id": r.get("record_id"), "model": r.get("model"),
               "kind": r.get("kind"), "why": " ".join(str(r.get("error") or r.get("status")).split())[:200]}
              for r in store.latest(None, ok_only=False) if r.get("status") not in (None, "ok")]
    replaced = sum(int(r.get("rounds_replaced") or 0) for r in ok)
    contended = [r for r in ok if r.get("contended") is True]
    conditions = [
        f"{len(contended)} of {len(ok)} successful latency record(s) flagged contended (measured while other "
        f"processes used the CPU): " + ("included (include_contended)." if include_contended else
                                        "left out of the tables and figures, an older quiet record used where "
                                        "there is one."),
        f"{replaced} contended round(s) replaced by a new round (interleaved protocol); the replaced rounds are "
        f"shown per record but do not count.",
    ]
    judged = [r for r in ok if r.get("contention_source")]
    if judged:
        conditions.append("contention read from: " + ", ".join(_distinct(judged, "contention_source")))
    return {"records": len(records), "kinds": kinds, "models": len({r.get("model") for r in records
                                                                    if r.get("model")}),
            "first": created[0] if created else None, "last": created[-1] if created else None,
            "targets": [{"device": DEVICE_LABELS.get(d, d), "runtime": rt, "precision": p} for d, rt, p in targets],
            "statistics": sorted({f"{r.get('report')} of {r.get('runs')}" for r in ok}),
            "versions": sorted((k, ", ".join(sorted(v))) for k, v in versions.items()),
            "machines": machines, "conditions": conditions, "flagged": flagged, "failed": failed,
            "notes": list(dict.fromkeys(notes)), "skipped": len(getattr(store, "skipped", []) or [])}


def _latency_entry(store: Any, r: Mapping[str, Any]) -> dict[str, Any]:
    samples: list[float] = []
    why = None
    if r.get("samples_file"):
        try:
            samples = [float(v) for v in store.samples(dict(r))]
        except RecordsError as exc:
            why = str(exc)
    rounds = [None if v is None else float(v) for v in _list(r.get("round_values_ms"))]
    used = [bool(v) for v in _list(r.get("round_used"))]
    figure = None
    if samples:
        figure = distribution(samples, statistic=r.get("latency_ms"), report=r.get("report"), low=r.get("ci_low_ms"),
                              high=r.get("ci_high_ms"), rounds=rounds, used=used, bins=HISTOGRAM_BINS)
        figure["label"] = f"{r.get('model')}: latency distribution of record {r.get('record_id')}"
    stats = [(label, cell(r.get(k), digits=4 if k == "cv" else 3)["text"]) for k, label in _STATS]
    contended = _list(r.get("round_contended"))
    round_rows = [{"round": i + 1, "value": "-" if v is None else f"{v:.3f}",
                   "counts": "yes" if (used[i] if i < len(used) else True) else "no (replaced)",
                   "contended": {True: "yes", False: "no"}.get(contended[i] if i < len(contended) else None, "-")}
                  for i, v in enumerate(rounds)]
    env = [(k[4:], str(v)) for k, v in r.items() if k.startswith("env_") and v not in (None, "")]
    identity = [(k, str(r.get(k))) for k in ("record_id", "key", "created", "device", "runtime", "precision",
                                             "threads", "warmup", "runs", "protocol", "rounds", "input_shape",
                                             "machine", "status") if r.get(k) not in (None, "")]
    artifact = [(k, str(r.get(k))) for k in ("artifact_format", "artifact_sha256", "weights_sha256")
                if r.get(k) not in (None, "")]
    if r.get("artifact_path"):
        artifact.append(("artifact", Path(str(r["artifact_path"])).name))
    for field in ("versions", "runtime_options", "runtime_settings"):
        for k, v in _dict(r.get(field)).items():
            (env if field == "versions" else identity).append((f"{field}.{k}", str(v)))
    ci = (f"{r['ci_low_ms']:.3f}-{r['ci_high_ms']:.3f} ms ({r.get('ci_method') or 'interval'})"
          if isinstance(r.get("ci_low_ms"), (int, float)) and isinstance(r.get("ci_high_ms"), (int, float)) else None)
    return {"record_id": r.get("record_id"), "anchor": f"rec-{r.get('record_id')}",
            "target": f"{DEVICE_LABELS.get(str(r.get('device')), r.get('device'))} {r.get('runtime')} "
                      f"{r.get('precision') or ''}".strip(),
            "status": r.get("status"), "error": r.get("error"), "statistic": f"{r.get('report')} of {r.get('runs')}",
            "latency": cell(r.get("latency_ms"), digits=3)["text"], "ci": ci, "flag": flag_reason(r),
            "stats": stats, "figure": figure, "samples_note": why, "n_samples": len(samples), "rounds": round_rows,
            "identity": identity, "artifact": artifact, "env": env}


def _explain_entry(r: Mapping[str, Any]) -> dict[str, Any]:
    rows = operator_rows(r)
    totals = category_totals(rows)
    timed = bool(rows) and all(isinstance(x.get("time_ms"), (int, float)) for x in rows)
    weight = "time_ms" if timed else "cost"
    top = sorted(rows, key=lambda x: -(x.get(weight) or 0.0) if isinstance(x.get(weight), (int, float)) else 0.0)
    placement: dict[str, dict[str, float]] = {}
    for x in rows:
        device = str(x.get("device") or "unknown")
        p = placement.setdefault(device, {"count": 0, "share": 0.0})
        p["count"] += 1
        p["share"] += float(x.get("share") or 0.0)
    coverage = r.get("coverage")
    low, high = COVERAGE_RANGE
    coverage_note = None
    if isinstance(coverage, (int, float)):
        coverage_note = f"coverage {coverage:.0%} (operator times / unprofiled end-to-end median)"
        if not low <= coverage <= high:
            coverage_note += f": outside {low:.0%}-{high:.0%}, read the shares with care"
    return {"record_id": r.get("record_id"), "anchor": f"rec-{r.get('record_id')}",
            "target": f"{DEVICE_LABELS.get(str(r.get('device')), r.get('device'))} {r.get('runtime')} "
                      f"{r.get('precision') or ''}".strip(),
            "source": r.get("source"), "timed": timed, "operators": len(rows),
            "categories": [{"category": c, "count": t["count"], "share": t["share"],
                            "share_text": "-" if t["share"] is None else f"{t['share']:.1%}",
                            "value": t["time_ms"] if timed else t["cost"], "flop_share": t["flop_share"]}
                           for c, t in totals.items()],
            "top": [{"name": x.get("name"), "op_type": x.get("op_type"), "category": x.get("category"),
                     "value": x.get(weight), "share": x.get("share"), "device": x.get("device")}
                    for x in top[:TOP_OPERATORS]],
            "placement": [{"device": d, "count": int(p["count"]), "share": p["share"]}
                          for d, p in sorted(placement.items(), key=lambda kv: -kv[1]["share"])]
            if any(x.get("device") for x in rows) else [],
            "coverage": coverage_note, "e2e_ms": r.get("e2e_ms"), "total_op_ms": r.get("total_op_ms"),
            "artifact_sha256": r.get("artifact_sha256")}


def model_sections(store: Any, latency: Sequence[Mapping[str, Any]], profiles: Sequence[Mapping[str, Any]],
                   explains: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """One section per model: its latency records, profile and per-operator breakdowns."""
    names = sorted({str(r.get("model")) for r in [*latency, *profiles, *explains] if r.get("model")})
    out = []
    for name in names:
        entries = []
        for r in sorted((r for r in latency if r.get("model") == name),
                        key=lambda r: (str(r.get("device")), str(r.get("runtime")), str(r.get("created")))):
            entries.append(_latency_entry(store, r))
        prof = [r for r in profiles if r.get("model") == name]
        profile = None
        if prof:
            p = prof[-1]
            profile = {"record_id": p.get("record_id"), "anchor": f"rec-{p.get('record_id')}", "fields": [
                (label, cell(p.get(k), digits=2)["text"]) for k, label in (
                    ("input_shape", "input"), ("params_m", "params (M)"), ("flops_m", "FLOPs (M)"),
                    ("activations_m", "activations (M)"), ("memory_mb_fp32", "memory fp32 (MB)"),
                    ("depth", "depth"), ("counter", "counter")) if p.get(k) is not None]}
        out.append({"name": name, "anchor": f"model-{name}", "latency": entries, "profile": profile,
                    "explain": [_explain_entry(r) for r in explains if r.get("model") == name]})
    return out
