"""A results store in forms dashboards read: a flat CSV, Parquet, and the JSON of the PyTorch OSS benchmark
database (``mobileone-bench export-results``).

**CSV and Parquet** hold one row per record, every field a column, exactly as stored: ``record_id``, ``kind``,
``key``, ``created``, ``status``, ``model``, ``device``, ``runtime``, ``precision``... first, then every other field
in the order the records first have it (``env_*`` included). Lists and dicts are compact JSON, shapes ``1x3x224x224``
(:func:`mobileone_bench.store.records.flatten`); a field a record lacks is empty. In Parquet a column whose values are all
numbers is numeric, all booleans boolean, anything else text. Parquet needs ``pyarrow``.

A file's suffix says what it holds (:func:`export_format`): ``.csv``, ``.parquet`` / ``.pq``, ``.json`` (the PyTorch
format below) pick the format when none is given and must agree with it when one is; any other suffix
(``results.xlsx``) is refused rather than filled with CSV. A name without a suffix gets the format asked for, or CSV.

**PyTorch OSS benchmark format** (the records uploaded to the ``benchmark.oss_ci_benchmark_v3`` table of the PyTorch
HUD, schema in ``pytorch/test-infra``: ``clickhouse_db_schema/oss_ci_benchmark_v3/schema.sql``; the upload format is
described on the pytorch/pytorch wiki page "PyTorch OSS benchmark infra"): a JSON list with one entry per
(successful latency record, metric). The fields the uploader fills from CI (``repo``, ``head_branch``,
``head_sha``, ``workflow_id``, ``job_id``, ``timestamp``) are not written. The mapping:

* ``benchmark.name``: ``"mobileone-bench"``; ``benchmark.mode``: ``"inference"``; ``benchmark.dtype``: the
  record's ``precision`` (``fp32``, ``fp16``);
* ``benchmark.extra_info``: ``device`` (cpu, gpu, iphone, mac), ``statistic`` (``median of 100``), ``threads``,
  ``warmup``, ``runs``, ``protocol``, ``rounds``, ``contended``, ``noise_warning``, ``record_id``, ``key``,
  ``created``, ``tool`` (the tool's version);
* ``model.name``: ``model`` (the registry name, ``mobileone_s0``); ``model.type``: ``"vision-backbone"``;
  ``model.backend``: ``runtime`` (onnxruntime, torch, tensorrt, torch-cuda, coreml...); ``model.origins``: where
  the architecture comes from, ``timm``, ``torchvision`` or ``mobileone-bench`` (the tool's own builds);
* ``model.extra_info``: ``paper_name``, ``target``, ``weights_sha256``, ``reparameterized``, ``input_shape``, and
  ``flops_m`` / ``params_m`` from the newest profile of the same model and input, where there is one;
* ``inputs``: ``{"input": {"dtype": precision, "extra_info": {"shape": input_shape}}}``;
* ``dependencies``: ``{library: {"version": ...}}`` for the libraries recorded (torch, onnxruntime, onnx,
  coremltools, tensorrt, executorch...);
* ``runners[0]``: ``name`` the hardware (the CPU model on cpu, the GPU name on gpu, the model identifier on an
  iPhone or Mac), ``type`` the device (cpu, gpu, iphone, mac), ``cpu_info`` / ``cpu_count`` (``env_cpu`` /
  ``env_cores_logical``), ``gpu_info`` / ``gpu_count`` (``env_gpu`` / 1 on the GPU, else 0), ``extra_info``
  ``machine`` (the fingerprint in the record's key), ``hostname``, ``os``;
* ``metric.name``: ``latency_ms`` (the record's reported statistic), then ``latency_min_ms``,
  ``latency_median_ms``, ``latency_mean_ms``, ``latency_p90_ms``, ``latency_p99_ms``, one entry each;
  ``metric.benchmark_values``: ``[value]`` in milliseconds (the statistic, never the raw samples, which stay in
  ``samples/``); ``metric.extra_info``: ``unit`` (``ms``), ``statistic``, ``n``, ``cv``, and for ``latency_ms``
  its 95% interval ``ci_low_ms`` / ``ci_high_ms``.

Every ``extra_info`` is a map of strings (the schema's ``Map(String, String)``): numbers and booleans are written
as text, missing values are left out. ``metric.target_value`` is left out (there is no target).
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import os
import uuid
from pathlib import Path
from typing import Any, Iterable, Sequence

from mobileone_bench.errors import UsageError, require_modules
from mobileone_bench.store.records import flatten
from mobileone_bench.stats import finite_or_none

__all__ = ["FORMATS", "SUFFIX_FORMATS", "flat_rows", "to_csv", "write_parquet", "pytorch_benchmark_entries",
           "export_store", "export_format", "LEAD_COLUMNS"]

FORMATS = ("csv", "parquet", "pytorch-benchmark")
SUFFIX_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "pytorch-benchmark"}
KINDS = ("latency", "profile", "peak")
LEAD_COLUMNS = ("record_id", "kind", "key", "created", "status", "error", "model", "device", "runtime", "precision",
                "threads", "input_shape", "latency_ms", "report", "runs", "flops_m", "params_m", "machine",
                "env_hostname")

BENCHMARK_NAME = "mobileone-bench"
METRICS = (("latency_ms", "latency_ms"), ("latency_min_ms", "min_ms"), ("latency_median_ms", "median_ms"),
           ("latency_mean_ms", "mean_ms"), ("latency_p90_ms", "p90_ms"), ("latency_p99_ms", "p99_ms"))
DEPENDENCIES = ("torch", "onnxruntime", "onnx", "coremltools", "tensorrt", "executorch", "torchao", "timm",
                "torchvision")


def _records(store: Any, kinds: Sequence[str], latest: bool) -> list[dict[str, Any]]:
    if latest:
        out = store.latest(None)
    else:
        out = store.records(None)
    return [r for r in out if not kinds or r.get("kind") in kinds]


def _cell(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (list, tuple, dict)):
        return flatten(value)
    return value


def flat_rows(store: Any, *, kinds: Sequence[str] = (), latest: bool = False) -> tuple[list[dict[str, Any]],
                                                                                      list[str]]:
    """Every record (or the newest successful one per key) as a flat row, and the columns in order.

    Args:
        store: A :class:`~mobileone_bench.store.records.ResultsStore` or :class:`~mobileone_bench.store.merging.StoreUnion`.
        kinds: Keep these kinds of record (all when empty).
        latest: Only the newest successful record per key (what the analyses use) instead of the whole history.
    """
    records = _records(store, kinds, latest)
    seen: dict[str, None] = {}
    for r in records:
        for k in r:
            seen.setdefault(k, None)
    columns = [c for c in LEAD_COLUMNS if c in seen] + [c for c in seen if c not in LEAD_COLUMNS]
    rows = [{c: _cell(r.get(c)) for c in columns} for r in records]
    return rows, columns


def to_csv(rows: list[dict[str, Any]], columns: Sequence[str]) -> str:
    """The rows as CSV text (a header line, then one line per row; a missing value is an empty cell)."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for r in rows:
        writer.writerow({c: "" if r.get(c) is None else r.get(c) for c in columns})
    return buf.getvalue()


def _typed_frame(rows: list[dict[str, Any]], columns: Sequence[str]) -> Any:
    """A DataFrame whose every column has one type (numbers, booleans or text), as Parquet needs."""
    import pandas as pd

    data: dict[str, Any] = {}
    for c in columns:
        values = [r.get(c) for r in rows]
        present = [v for v in values if v is not None]
        if present and all(isinstance(v, bool) for v in present):
            data[c] = pd.array(values, dtype="boolean")
        elif present and all(isinstance(v, int) and not isinstance(v, bool) for v in present):
            data[c] = pd.array(values, dtype="Int64")
        elif present and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in present):
            data[c] = pd.array([None if v is None else float(v) for v in values], dtype="Float64")
        else:
            data[c] = pd.array([None if v is None else str(v) for v in values], dtype="string")
    return pd.DataFrame(data, columns=list(columns))


def require_parquet() -> None:
    """Raise :class:`~mobileone_bench.errors.MissingDependencyError` (one line naming the ``parquet`` extra) when
    pyarrow is not importable."""
    require_modules(("pyarrow",), "Parquet export", "pip install 'mobileone-bench[parquet]' (pyarrow), or use --format csv")


def write_parquet(rows: list[dict[str, Any]], columns: Sequence[str], path: str | Path) -> None:
    """Write the rows to a Parquet file (through pyarrow).

    Raises:
        MissingDependencyError: pyarrow is not installed.
    """
    require_parquet()
    frame = _typed_frame(rows, columns)
    _atomic_write(Path(path), lambda tmp: frame.to_parquet(tmp, engine="pyarrow", index=False))


def _text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, dict)):
        return str(flatten(value))
    return str(value)


def _info(**values: Any) -> dict[str, str]:
    """A ``Map(String, String)``: values as text, missing ones left out."""
    return {k: t for k, v in values.items() if (t := _text(v)) is not None and t != ""}


def _origin(record: dict[str, Any]) -> str:
    for name in (str(record.get("target") or ""), str(record.get("model") or "")):
        prefix, sep, _ = name.partition(":")
        if sep and prefix in ("timm", "torchvision"):
            return prefix
    return BENCHMARK_NAME


def _runner(record: dict[str, Any]) -> dict[str, Any]:
    device = str(record.get("device") or "")
    if device == "gpu":
        hardware = record.get("env_gpu") or record.get("gpu")
    elif device in ("iphone", "mac"):
        hardware = record.get("machine") or record.get("env_machine")
    else:
        hardware = record.get("env_cpu")
    runner: dict[str, Any] = {"name": _text(hardware) or _text(record.get("machine")) or "unknown", "type": device}
    if record.get("env_cpu"):
        runner["cpu_info"] = str(record["env_cpu"])
    cores = finite_or_none(record.get("env_cores_logical"))
    if cores is not None:
        runner["cpu_count"] = int(cores)
    gpu = record.get("env_gpu")
    if gpu:
        runner["gpu_info"] = str(gpu)
    runner["gpu_count"] = 1 if device == "gpu" else 0
    runner["extra_info"] = _info(machine=record.get("machine") or record.get("env_machine"),
                                 hostname=record.get("env_hostname"), os=record.get("env_os"))
    return runner


def pytorch_benchmark_entries(store: Any, *, latest: bool = False) -> tuple[list[dict[str, Any]], int]:
    """The store's successful latency records in the PyTorch OSS benchmark format (the module docstring gives the
    mapping): one entry per (record, metric). Returns ``(entries, records used)``."""
    from mobileone_bench.store.frames import statistic_label

    profiles: dict[tuple[str, str], dict[str, Any]] = {}
    for p in sorted(store.latest("profile"), key=lambda r: str(r.get("created") or "")):
        profiles[(str(p.get("model")), str(p.get("input_shape")))] = p
    records = [r for r in _records(store, ("latency",), latest) if r.get("status") == "ok"
               and finite_or_none(r.get("latency_ms")) is not None]
    entries: list[dict[str, Any]] = []
    for r in records:
        profile = profiles.get((str(r.get("model")), str(r.get("input_shape")))) or {}
        statistic = statistic_label(r.get("report"), r.get("runs"))
        precision = _text(r.get("precision")) or ""
        benchmark = {"name": BENCHMARK_NAME, "mode": "inference", "dtype": precision,
                     "extra_info": _info(device=r.get("device"), statistic=statistic, threads=r.get("threads"),
                                         warmup=r.get("warmup"), runs=r.get("runs"), protocol=r.get("protocol"),
                                         rounds=r.get("rounds"), contended=r.get("contended"),
                                         noise_warning=r.get("noise_warning"), record_id=r.get("record_id"),
                                         key=r.get("key"), created=r.get("created"), tool=r.get("env_tool"))}
        model = {"name": str(r.get("model")), "type": "vision-backbone", "backend": _text(r.get("runtime")) or "",
                 "origins": [_origin(r)],
                 "extra_info": _info(paper_name=r.get("paper_name"), target=r.get("target"),
                                     weights_sha256=r.get("weights_sha256"), reparameterized=r.get("reparameterized"),
                                     input_shape=r.get("input_shape"), flops_m=profile.get("flops_m"),
                                     params_m=profile.get("params_m"))}
        inputs = {"input": {"dtype": precision, "extra_info": _info(shape=r.get("input_shape"))}}
        dependencies = {lib: {"version": str(r[f"env_{lib}"])} for lib in DEPENDENCIES if r.get(f"env_{lib}")}
        runner = _runner(r)
        for name, field in METRICS:
            value = finite_or_none(r.get(field))
            if value is None:
                continue
            extra = _info(unit="ms", statistic=statistic if field == "latency_ms" else field[:-3], n=r.get("n"),
                          cv=r.get("cv"))
            if field == "latency_ms":
                extra.update(_info(ci_low_ms=r.get("ci_low_ms"), ci_high_ms=r.get("ci_high_ms")))
            entries.append(copy.deepcopy({"benchmark": benchmark, "model": model, "inputs": inputs,
                                          "dependencies": dependencies, "runners": [runner]})
                           | {"metric": {"name": name, "benchmark_values": [value], "extra_info": extra}})
    return entries, len(records)


def _atomic_write(path: Path, write: Any) -> None:
    """``write(tmp)`` then rename ``tmp`` to ``path``: a reader never sees half a file."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        write(tmp)
        os.replace(tmp, path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


def export_format(fmt: str | None, out: str | Path | None) -> str:
    """The format to write, from ``fmt`` (``--format``) and the suffix of ``out`` (``--out``).

    A file name says what it holds: its suffix must be one this tool writes (``.csv``; ``.parquet`` or ``.pq``;
    ``.json`` for ``pytorch-benchmark``) and, when ``fmt`` is given too, agree with it. Without ``fmt`` the suffix
    picks the format; a name without a suffix (and stdout) gets ``fmt``, or CSV.

    Raises:
        UsageError: An unknown format, a suffix this tool does not write (``results.xlsx``), or a suffix that names
            another format than ``fmt`` (``--format csv --out results.json``).
    """
    if fmt is not None:
        fmt = str(fmt).lower()
        if fmt not in FORMATS:
            raise UsageError(f"unknown export format {fmt!r}; choose from {', '.join(FORMATS)}")
    suffix = Path(out).suffix.lower() if out is not None else ""
    if not suffix:
        return fmt or "csv"
    named = SUFFIX_FORMATS.get(suffix)
    if named is None:
        known = "; ".join(f"{f}: {' or '.join(s for s, g in SUFFIX_FORMATS.items() if g == f)}" for f in FORMATS)
        raise UsageError(f"--out {out}: this tool does not write {suffix} files; name the file for what it will "
                         f"hold ({known})")
    if fmt is not None and fmt != named:
        raise UsageError(f"--out {out} names a {named} file but the format is {fmt}; use a "
                         f"{' or '.join(s for s, g in SUFFIX_FORMATS.items() if g == fmt)} name, or leave out "
                         f"--format")
    return named


def _parse_kinds(kinds: str | Iterable[str] | None) -> list[str]:
    from mobileone_bench.store.frames import parse_choices

    return parse_choices(kinds, KINDS, problem="unknown record kind")


def export_store(store: Any, fmt: str | None, out: str | Path | None = None, *,
                 kinds: str | Iterable[str] | None = None, latest: bool = False) -> dict[str, Any]:
    """Write ``store`` as ``fmt`` (``csv``, ``parquet``, ``pytorch-benchmark``; ``None``: from the suffix of
    ``out``, see :func:`export_format`) to ``out``, or return the text (CSV and JSON only) when ``out`` is ``None``.

    Returns:
        ``{"format", "out", "records" (records exported), "rows" (CSV/Parquet rows or benchmark entries), "text"}``
        (``text`` is ``None`` when a file was written).

    Raises:
        UsageError: An unknown format or kind, an ``out`` whose suffix this tool does not write or that names
            another format, Parquet without ``out``, a file that cannot be written.
        MissingDependencyError: Parquet without pyarrow.
        AnalysisError: Nothing to export.
    """
    from mobileone_bench.errors import AnalysisError

    fmt = export_format(fmt, out)
    kind_list = _parse_kinds(kinds)
    if out is not None and Path(out).is_dir():
        raise UsageError(f"--out {out}: is a folder; give a file name")
    if fmt == "parquet":
        if out is None:
            raise UsageError("--format parquet writes a file: give --out FILE.parquet")
        require_parquet()
    if fmt == "pytorch-benchmark":
        if kind_list and "latency" not in kind_list:
            raise UsageError("--format pytorch-benchmark exports latency records: leave out --kind or include latency")
        entries, used = pytorch_benchmark_entries(store, latest=latest)
        if not entries:
            raise AnalysisError(f"no successful latency record in {store.root} to export")
        text = json.dumps(entries, indent=1) + "\n"
        count = len(entries)
    else:
        rows, columns = flat_rows(store, kinds=kind_list, latest=latest)
        if not rows:
            raise AnalysisError(f"no {'/'.join(kind_list) + ' ' if kind_list else ''}records in {store.root} to export")
        used, count = len(rows), len(rows)
        if fmt == "parquet":
            write_parquet(rows, columns, out)  # type: ignore[arg-type]
            return {"format": fmt, "out": str(out), "records": used, "rows": count, "text": None}
        text = to_csv(rows, columns)
    if out is None:
        return {"format": fmt, "out": None, "records": used, "rows": count, "text": text}
    _atomic_write(Path(out), lambda tmp: Path(tmp).write_text(text, encoding="utf-8"))
    return {"format": fmt, "out": str(out), "records": used, "rows": count, "text": None}
