"""Results from many hosts, one study: read several results folders as one (:class:`StoreUnion`, what the analysis
commands do with ``--results`` given more than once), or copy them into one (:func:`merge`, ``mobileone-bench
merge SRC... --into DIR``).

Identity. Every record has a ``record_id`` (random, made once, when the record is made) and a ``key`` (a hash of
what was measured, :func:`~mobileone_bench.store.records.record_key`). The key of a latency record includes the machine
(``machine``: :func:`~mobileone_bench.environment.machine_fingerprint` of the host, a hash of its hostname, CPU
model, logical cores, OS and architecture; the model identifier for an iPhone or Mac), and so does the key of a
``peak`` record: the same model measured with the same settings on two hosts has two keys, and both records are
kept and shown. Profile records (params, FLOPs) have no machine in their key because they do not depend on it.

Merging and reading several folders go by ``record_id``:

* same ``record_id``, same content: one record (copied before, or the same folder given twice): kept once;
* same ``record_id``, different content: a **conflict**. Nothing is overwritten: the destination's record (or, when
  reading several folders, the first folder's) is kept and the conflict is reported;
* different ``record_id`` with the same ``key``: two measurements of the same thing on the same machine (as after
  ``latency --force``): both are kept and the analyses use the newest.

"Content" is the record's JSON, compared canonically (key order and spacing do not matter), and, for a record with
raw samples, its samples file.

A merge copies each new record's line verbatim (its ``record_id``, ``key`` and every field stay as they are) after
its samples file, holds the destination's append lock (:meth:`~mobileone_bench.store.records.ResultsStore.lock`) from the
moment it reads what the destination has until its last line is written, and appends all new lines in one write:
two merges (or a merge and a measurement) into the same folder at once cannot duplicate or lose a record, a killed
merge leaves at most a partial last line (skipped by readers, stepped over by the next write) and samples files
whose record line is missing (the next merge finds them identical and writes the line), and running the same merge
again copies nothing.

A merge reads its sources with the store's one reader (:func:`~mobileone_bench.store.records.read_lines`): a record that
breaks the record schema (a ``key`` that is not a string, no ``model``, a statistic that is not a finite number...)
or that a newer mobileone-bench wrote is not copied; it is counted as skipped, with its line and the reason, like a
record whose samples path points outside its folder. A line that is not JSON is counted as unreadable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Iterable, Sequence

from mobileone_bench.errors import BenchWarning, RecordsError, UsageError
from mobileone_bench.store.records import RECORDS_FILE, SAMPLES_DIR, ResultsStore, Skipped, read_lines, skipped_warning

__all__ = ["StoreUnion", "open_results", "merge", "record_identity", "results_folder", "MERGE_COLUMNS"]

MERGE_COLUMNS = ("source", "records", "copied", "already_present", "conflicting", "skipped", "unreadable_lines",
                 "samples_copied", "missing_samples", "hosts")


def _canonical(record: dict[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, separators=(",", ":"), default=str)


def record_identity(record: dict[str, Any]) -> str:
    """What identifies a stored record across folders: its ``record_id`` (a content hash for a record without
    one, so identical such records are still kept once)."""
    rid = record.get("record_id")
    if isinstance(rid, str) and rid:
        return rid
    return "sha256:" + hashlib.sha256(_canonical(record).encode("utf-8")).hexdigest()[:16]


def results_folder(path: str | Path, what: str = "--results") -> Path:
    """``path`` as a results folder that exists and has a ``records.jsonl``.

    Raises:
        UsageError: One line: the folder does not exist, is a file, or is not a results folder.
    """
    p = Path(path)
    if not p.exists():
        raise UsageError(f"{what} {path}: no such folder")
    if not p.is_dir():
        raise UsageError(f"{what} {path}: not a folder")
    if not (p / RECORDS_FILE).is_file():
        raise UsageError(f"{what} {path}: not a results folder (no {RECORDS_FILE})")
    return p


def _unique(paths: Iterable[Path]) -> list[Path]:
    out: list[Path] = []
    seen: set[Path] = set()
    for p in paths:
        real = p.resolve()
        if real not in seen:
            seen.add(real)
            out.append(p)
    return out


def _as_paths(results: str | Path | Iterable[str | Path] | None, default: str) -> list[Path]:
    if results is None:
        return [Path(default)]
    if isinstance(results, (str, os.PathLike)):
        return [Path(results)]
    paths = [Path(r) for r in results]
    return paths or [Path(default)]


def open_results(results: str | Path | Iterable[str | Path] | None, default: str = "results") -> Any:
    """The store(s) the analyses read: a :class:`~mobileone_bench.store.records.ResultsStore` for one folder (as before:
    a folder that does not exist is an empty store), a :class:`StoreUnion` for several (each must be a results
    folder; the same folder given twice counts once).

    Raises:
        UsageError: One of several folders does not exist or is not a results folder.
    """
    paths = _as_paths(results, default)
    if len(paths) == 1:
        return ResultsStore(paths[0])
    paths = _unique(results_folder(p) for p in paths)
    return ResultsStore(paths[0]) if len(paths) == 1 else StoreUnion(paths)


# ------------------------------------------------------------------------------------------------------ reading


@dataclass
class _Line:
    raw: str
    record: dict[str, Any]
    canonical: str
    rid: str
    number: int


def _read_lines(root: Path) -> tuple[list[_Line], list[Skipped]]:
    """The usable record lines of a folder, verbatim and parsed, and the lines the store's reader skipped (see
    :func:`~mobileone_bench.store.records.read_lines`)."""
    lines, skipped = read_lines(root / RECORDS_FILE)
    return [_Line(ln.raw, ln.record, _canonical(ln.record), record_identity(ln.record), ln.number)
            for ln in lines], skipped


def _samples_rel(record: dict[str, Any]) -> str | None:
    """The record's samples file (``samples/<name>.json``); ``None`` when it has none.

    Raises:
        ValueError: A samples path that points outside the folder's ``samples/``.
    """
    rel = record.get("samples_file")
    if rel in (None, ""):
        return None
    text = str(rel)
    parts = PurePosixPath(text).parts
    if "\\" in text or len(parts) != 2 or parts[0] != SAMPLES_DIR or parts[1] in (".", ".."):
        raise ValueError(f"samples_file {text!r} is not under {SAMPLES_DIR}/")
    return text


def _read_bytes(path: Path) -> bytes | None:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise RecordsError(f"cannot read {path}: {exc.strerror or exc}") from None


def _same_samples(a: bytes, b: bytes) -> bool:
    if a == b:
        return True
    try:
        return _canonical(json.loads(a)) == _canonical(json.loads(b))
    except ValueError:
        return False


def _differing(a: dict[str, Any], b: dict[str, Any], limit: int = 6) -> list[str]:
    names = sorted(k for k in set(a) | set(b)
                   if k not in a or k not in b or _canonical({"v": a[k]}) != _canonical({"v": b[k]}))
    return names[:limit] + ([f"and {len(names) - limit} more"] if len(names) > limit else [])


def _host(record: dict[str, Any]) -> str | None:
    value = record.get("env_hostname") or record.get("machine") or record.get("env_machine")
    return None if value in (None, "") else str(value)


# ------------------------------------------------------------------------------------------------------ union


class StoreUnion:
    """Several results folders read as one, nothing copied: what the analyses get for ``--results A --results B``.

    It reads like a :class:`~mobileone_bench.store.records.ResultsStore` (``read``, ``records``, ``latest``, ``find``,
    ``has``, ``keys``, ``samples``, ``frame``, ``skipped``; ``root`` is the folders' names for messages). A record
    present in several folders (same ``record_id``) counts once; one whose content differs between folders is a
    conflict: the first folder's is used and a warning says so. ``append`` (the ``roofline`` peak cache) writes to
    the first folder.

    Args:
        roots: The folders, in order of precedence.
    """

    def __init__(self, roots: Sequence[str | Path]):
        if not roots:
            raise UsageError("no results folder given")
        self.stores = [ResultsStore(r) for r in roots]
        self.root = " + ".join(str(s.root) for s in self.stores)
        self._owner: dict[str, int] = {}

    @property
    def records_path(self) -> str:
        return " + ".join(str(s.records_path) for s in self.stores)

    @property
    def skipped(self) -> list[Skipped]:
        """The lines the last read of each folder skipped (see :attr:`ResultsStore.skipped`)."""
        return [s for store in self.stores for s in store.skipped]

    def read(self, kind: str | None = None) -> tuple[list[dict[str, Any]], list[Skipped]]:
        """Every usable record of every folder (optionally of one kind), each once, and every line skipped; no
        warning (:meth:`records` warns)."""
        out, _ = self._read(kind, warn=False)
        return out, self.skipped

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every usable record of every folder (optionally of one kind), each once, folder by folder in file
        order; one warning per folder for the lines its reader skipped, one for conflicting records."""
        out, conflicts = self._read(kind, warn=True)
        if conflicts:
            warnings.warn(f"{len(conflicts)} record(s) have the same record_id but different content in two results "
                          f"folders; the first folder's is used: {', '.join(conflicts[:3])}"
                          f"{' and more' if len(conflicts) > 3 else ''}", BenchWarning, stacklevel=2)
        return out

    def _read(self, kind: str | None, *, warn: bool) -> tuple[list[dict[str, Any]], list[str]]:
        out: list[dict[str, Any]] = []
        seen: dict[str, tuple[str, int]] = {}
        conflicts: list[str] = []
        for i, store in enumerate(self.stores):
            records, skipped = store.read(kind)
            message = skipped_warning(store.records_path, skipped) if warn else None
            if message:
                warnings.warn(message, BenchWarning, stacklevel=3)
            for rec in records:
                rid = record_identity(rec)
                canonical = _canonical(rec)
                if rid in seen:
                    if seen[rid][0] != canonical:
                        conflicts.append(f"{rid} ({store.root} vs {self.stores[seen[rid][1]].root})")
                    continue
                seen[rid] = (canonical, i)
                self._owner[rid] = i
                out.append(rec)
        return out, conflicts

    def latest(self, kind: str | None = None, *, ok_only: bool = True) -> list[dict[str, Any]]:
        """The newest record of each key (successful ones only, by default): newest by ``created``, then by position
        (folder order, then file order)."""
        records = self.records(kind)
        order = sorted(range(len(records)), key=lambda i: (str(records[i].get("created") or ""), i))
        newest: dict[str, dict[str, Any]] = {}
        for i in order:
            rec = records[i]
            if ok_only and rec.get("status") != "ok":
                continue
            newest[rec["key"]] = rec
        return list(newest.values())

    def find(self, key: str, kind: str | None = None) -> dict[str, Any] | None:
        """The newest successful record with this key, or ``None``."""
        for rec in self.latest(kind):
            if rec.get("key") == key:
                return rec
        return None

    def has(self, key: str) -> bool:
        """Whether a successful record with this key exists in any folder."""
        return any(s.has(key) for s in self.stores)

    def keys(self, kind: str | None = None) -> set[str]:
        """Keys that have a successful record in any folder."""
        return set().union(*(s.keys(kind) for s in self.stores))

    def samples(self, record: dict[str, Any]) -> list[float]:
        """The raw samples of a record, from the folder it was read from (else the first folder that has them).

        Raises:
            RecordsError: No folder has them.
        """
        rid = record_identity(record)
        if rid not in self._owner:
            self.records()
        owner = self._owner.get(rid)
        order = ([owner] if owner is not None else []) + [i for i in range(len(self.stores)) if i != owner]
        error: RecordsError | None = None
        for i in order:
            try:
                return self.stores[i].samples(record)
            except RecordsError as exc:
                error = error or exc
        raise error or RecordsError(f"record {record.get('record_id')} has no samples file")

    def frame(self, kind: str | None = None, *, latest: bool = True) -> Any:
        """Records as a pandas DataFrame (one row per record; the latest per key by default)."""
        import pandas as pd

        return pd.DataFrame(self.latest(kind) if latest else self.records(kind))

    def append(self, record: dict[str, Any], samples: list[float] | None = None) -> dict[str, Any]:
        """Store a record in the first folder (reading several folders never writes to the others)."""
        return self.stores[0].append(record, samples)


# ------------------------------------------------------------------------------------------------------ merge


def _copy_new(src: Path, dest: Path) -> None:
    """Copy a file to a path that must not exist, atomically: never overwrites, never leaves a partial file."""
    data = _read_bytes(src)
    if data is None:
        raise RecordsError(f"cannot read {src}: it disappeared during the merge")
    tmp = dest.with_name(f".{dest.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        with open(tmp, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        try:
            os.link(tmp, dest)  # fails if dest exists: no overwrite, whoever else writes there
        except FileExistsError:
            raise
        except OSError:  # a filesystem without hard links: the merge holds the lock, so check-then-rename will do
            if dest.exists():
                raise FileExistsError(dest) from None
            os.replace(tmp, dest)
    except FileExistsError:
        raise RecordsError(f"{dest} appeared during the merge; run the merge again") from None
    except OSError as exc:
        raise RecordsError(f"cannot write {dest}: {exc.strerror or exc}") from None
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def _place_samples(src: Path, dest: Path, rel: str, dry_run: bool) -> str:
    """Put ``src/rel`` at ``dest/rel``: ``copied``, ``same`` (an identical file is there), ``differ`` (another file
    of that name is there: left alone) or ``missing`` (the source has no such file)."""
    ours = _read_bytes(src / rel)
    if ours is None:
        return "missing"
    theirs = _read_bytes(dest / rel)
    if theirs is not None:
        return "same" if _same_samples(theirs, ours) else "differ"
    if not dry_run:
        (dest / SAMPLES_DIR).mkdir(parents=True, exist_ok=True)
        _copy_new(src / rel, dest / rel)
    return "copied"


def _check_into(into: str | Path, sources: list[Path]) -> Path:
    dest = Path(into)
    if dest.exists():
        if not dest.is_dir():
            raise UsageError(f"--into {into}: not a folder")
        # a store in the making (another merge or a measurement has just created it) has only these
        others = [e for e in dest.iterdir() if e.name not in (RECORDS_FILE, SAMPLES_DIR, ".lock")]
        if not (dest / RECORDS_FILE).is_file() and others:
            raise UsageError(f"--into {into}: not a results folder (no {RECORDS_FILE}) and not empty; name a results "
                             f"folder, an empty folder or a new one")
        real = dest.resolve()
        for src in sources:
            if src.resolve() == real:
                raise UsageError(f"--into {into} is also a source: merging a folder into itself changes nothing")
    return dest


def merge(sources: str | Path | Sequence[str | Path], into: str | Path, *, dry_run: bool = False) -> dict[str, Any]:
    """Copy the records and samples of ``sources`` into ``into``: each new record once, with its samples file,
    verbatim; nothing in ``into`` is rewritten or dropped.

    Args:
        sources: Results folders to copy from (in order: when two hold the same ``record_id`` with different content,
            the first one copied wins and the other is a conflict).
        into: The destination folder (created if needed; an existing one must be a results folder or empty).
        dry_run: Only say what would be copied: nothing is written, no folder is created.

    Returns:
        ``{"into", "dry_run", "sources": [one dict per source: MERGE_COLUMNS], "copied", "already_present",
        "conflicting", "skipped", "missing_samples", "conflicts": [{"record_id", "kind", "model", "source", "what",
        "fields"}], "skipped_records": [{"record_id", "kind", "model", "source", "line", "reason"}],
        "records_before", "records_after"}``. ``what`` is ``record`` (same record_id, different fields: ``fields``
        names them) or ``samples`` (same record, different samples file). A source's ``records`` counts its lines
        that are records (``copied + already_present + conflicting + skipped``); ``skipped`` counts those not
        copied because the reader cannot use them (they break the record schema, or a newer mobileone-bench wrote
        them) or their samples path points outside the folder; ``unreadable_lines`` counts lines that are not JSON;
        ``missing_samples`` counts records copied without their samples file (the source lacks it too).

    Raises:
        UsageError: No source; a source that is not a results folder; ``into`` is a file, a non-empty folder that
            is not a results folder, or one of the sources.
        RecordsError: A file cannot be read or written.
    """
    if sources is None or (isinstance(sources, str) and not sources):
        paths: list[Path] = []
    else:
        paths = [Path(sources)] if isinstance(sources, (str, os.PathLike)) else [Path(p) for p in sources]
    if not paths:
        raise UsageError("name at least one results folder to merge (SRC...)")
    srcs = _unique(results_folder(p, "merge source") for p in paths)
    dest = _check_into(into, srcs)
    store = ResultsStore(dest)
    conflicts: list[dict[str, Any]] = []
    skipped: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    lock = contextlib.nullcontext() if dry_run else store.lock()
    with lock:
        existing, _ = _read_lines(dest)  # the destination's lines it cannot use stay as they are, unused
        # record id -> (its line, the folder that holds its samples): the destination's records, then each one
        # planned for copying (in a dry run its samples stay in its source)
        present: dict[str, tuple[_Line, Path]] = {}
        for line in existing:
            present.setdefault(line.rid, (line, dest))
        new_lines: list[str] = []
        for src in srcs:
            lines, unusable = _read_lines(src)
            unreadable = [s for s in unusable if s.why == "unreadable"]
            refused = [s for s in unusable if s.why != "unreadable"]
            row: dict[str, Any] = {"source": str(src), "records": len(lines) + len(refused), "copied": 0,
                                   "already_present": 0, "conflicting": 0, "skipped": len(refused),
                                   "unreadable_lines": len(unreadable), "samples_copied": 0, "missing_samples": 0}
            for s in refused:  # what the reader cannot use is not copied
                skipped.append({"record_id": s.record_id, "kind": None, "model": None, "source": str(src),
                                "line": s.line, "reason": s.reason})
            hosts = sorted({h for h in (_host(line.record) for line in lines) if h})
            for line in lines:
                rec = line.record
                what = {"record_id": line.rid, "kind": rec.get("kind"), "model": rec.get("model"), "source": str(src)}
                try:
                    rel = _samples_rel(rec)
                except ValueError as exc:
                    skipped.append({**what, "line": line.number, "reason": str(exc)})
                    row["skipped"] += 1
                    continue
                held = present.get(line.rid)
                if held is not None:  # the same record_id is there already: the same record, or a conflict
                    other, holder = held
                    if other.canonical != line.canonical:
                        conflicts.append({**what, "what": "record", "fields": _differing(other.record, rec)})
                        row["conflicting"] += 1
                        continue
                    if rel is not None and (src / rel).exists():
                        theirs = _read_bytes(holder / rel)
                        if theirs is not None:
                            placed = "same" if _same_samples(theirs, _read_bytes(src / rel) or b"") else "differ"
                        else:  # the record is there but its samples are not: bring them
                            placed = _place_samples(src, dest, rel, dry_run)
                            if placed == "copied":
                                row["samples_copied"] += 1
                                present[line.rid] = (other, src if dry_run else dest)
                        if placed == "differ":
                            conflicts.append({**what, "what": "samples", "fields": ["samples_file"]})
                            row["conflicting"] += 1
                            continue
                    row["already_present"] += 1
                    continue
                if rel is not None:
                    placed = _place_samples(src, dest, rel, dry_run)
                    if placed == "differ":  # a file of that name that is not this record's: left alone
                        conflicts.append({**what, "what": "samples", "fields": ["samples_file"]})
                        row["conflicting"] += 1
                        continue
                    if placed == "missing":  # the source lacks them too: the record is copied as it is
                        row["missing_samples"] += 1
                    elif placed == "copied":
                        row["samples_copied"] += 1
                    # "same": identical samples already there (an interrupted merge): only the line was missing
                present[line.rid] = (line, src if dry_run else dest)
                new_lines.append(line.raw)
                row["copied"] += 1
            row["hosts"] = ", ".join(hosts)
            rows.append(row)
        if not dry_run:
            store.append_lines_locked(new_lines)
    total = {k: sum(r[k] for r in rows) for k in ("copied", "already_present", "conflicting", "skipped",
                                                  "missing_samples")}
    return {"into": str(dest), "dry_run": dry_run, "sources": rows, **total, "conflicts": conflicts,
            "skipped_records": skipped, "records_before": len(existing),
            "records_after": len(existing) + (0 if dry_run else total["copied"])}
