"""Records: flat rows that round-trip through CSV and JSON, each carrying the environment that produced it, and the
results store that keeps them safely.

Store layout (``results/`` by default)::

    records.jsonl          one JSON object per line, appended
    samples/<id>.json      the raw latency samples of a record (written before its record line)
    journal/<key>.json     the finished rounds of a measurement still in progress (see below)
    .lock                  advisory lock serialising appends from concurrent runs

Safety:

* an append takes an exclusive ``flock``, starts on a fresh line if a killed writer left a partial one, writes the
  whole line with one ``write`` and ``fsync``\\ s it: a kill leaves at worst one partial last line, which readers skip
  (with a warning) and the next append steps over;
* the samples file is written to a temporary name and renamed into place before the record that points to it;
* nothing is ever overwritten: a forced re-measurement appends a new record, and readers take the latest one per key;
* an append holds SIGINT/SIGTERM until the record and its samples are written (:mod:`mobileone_bench._interrupt`);
* the journal: while interleaved rounds run, every finished round's samples (with the round's size, position and
  contention reading) are written atomically to ``journal/<key>.json``, so a run killed by SIGKILL, the OOM killer or
  a power cut loses at most the round in progress. The next run with the same settings (the same record key and the
  same round plan) says what it found and goes on from there; the journal is removed once the record is stored.

Reading: every record carries the version of its schema (``"schema": 1``, :data:`SCHEMA_VERSION`;
``mobileone_bench/data/record.schema.json``). One reader (:func:`read_lines`, behind every read of the store and
behind :func:`mobileone_bench.store.merging.merge`) parses each line (a UTF-8 byte order mark at the start of the file is
not part of the first line) and checks the record against the schema: the fields that identify it (``key``,
``kind``, ``model`` where the kind has one) and, per kind, the types of the fields the analyses compute with
(statistics must be finite numbers). A line that is not JSON, a record that breaks the schema and a record written
by a newer mobileone-bench (a ``schema`` above this tool's) are skipped, each counted (:attr:`ResultsStore.skipped`),
with one warning per file naming the lines and why: a record the tool does not understand is never used, neither in
an analysis nor as a "cached" measurement that makes measuring again unnecessary. Records written before records
carried a schema (no ``schema`` field) are read as schema 1.

A record's ``key`` hashes what identifies a measurement (model, weights, input, runtime, device, precision, threads,
warmup and runs, runtime options, machine, library versions); a rerun skips keys that already have a successful
record unless forced.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from mobileone_bench.errors import BenchWarning, RecordsError
from mobileone_bench.store.schema import (
    RECORD_SCHEMA,
    SCHEMA_VERSION,
    Line,
    Skipped,
    check_record,
    parse_line,
    read_lines,
    skipped_warning,
)

__all__ = ["ResultsStore", "record_key", "new_record", "parse_line", "check_record", "read_lines", "skipped_warning",
           "Line", "Skipped", "flatten", "DEFAULT_RESULTS", "RECORDS_FILE", "SAVED", "SCHEMA_VERSION",
           "RECORD_SCHEMA"]

DEFAULT_RESULTS = "results"
RECORDS_FILE = "records.jsonl"
SAMPLES_DIR = "samples"
JOURNAL_DIR = "journal"


#: Room kept free beyond a run's own estimate (records, journals, the environment of each record).
WRITE_MARGIN_BYTES = 1_000_000

#: What this process stored, in order (kind, status, model, record id): what an interruption message reports.
SAVED: list[dict[str, Any]] = []


def _file_in_the_way(folder: Path) -> Path | None:
    """The first of ``folder`` and its parents that exists and is not a folder, or ``None``."""
    for path in [folder, *folder.parents]:
        if path.exists() or path.is_symlink():
            return None if path.is_dir() else path
    return None


def save_recovery(record: dict[str, Any], samples: list[float] | None) -> Path | None:
    """Write a record that could not be stored, with its samples, to ``mobileone-bench-recovery-<id>.json`` in the
    temporary folder (``TMPDIR``); ``None`` if even that fails."""
    import tempfile

    path = Path(tempfile.gettempdir()) / f"mobileone-bench-recovery-{record.get('record_id', uuid.uuid4().hex)}.json"
    try:
        _atomic_write(path, json.dumps({"record": record, "unit": "ms", "samples": samples}, default=str))
    except RecordsError:
        return None
    return path


def _atomic_write(target: Path, text: str, what: str = "") -> None:
    """Write ``text`` to ``target`` through a temporary file and a rename (readers see the old or the new file)."""
    tmp = target.with_name(f"{target.name}.tmp-{os.getpid()}")
    try:
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise RecordsError(f"cannot write {what}{target}: {exc.strerror or exc}") from None


def record_key(identity: dict[str, Any]) -> str:
    """Stable short hash of a measurement's identity fields."""
    blob = json.dumps(identity, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


def flatten(value: Any) -> Any:
    """A value as a flat cell: shapes as ``1x3x224x224``, dicts and lists as compact JSON."""
    if isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value):
        return "x".join(str(v) for v in value)
    if isinstance(value, (dict, list, tuple)):
        return json.dumps(value, sort_keys=True, default=str, separators=(",", ":"))
    return value


def as_list(value: Any) -> list[Any]:
    """A list field of a record back as a list (records store lists as compact JSON; ``None`` gives ``[]``)."""
    if value is None or value == "":
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    if isinstance(value, str):
        try:
            out = json.loads(value)
        except ValueError:
            return [int(v) for v in value.split("x")] if all(p.isdigit() for p in value.split("x")) else [value]
        return out if isinstance(out, list) else [out]
    return [value]


def new_record(kind: str, identity: dict[str, Any], fields: dict[str, Any], env: dict[str, Any]) -> dict[str, Any]:
    """A complete flat record: ids, timestamp, schema version (:data:`SCHEMA_VERSION`), identity, measured fields
    and ``env_*`` fields."""
    record: dict[str, Any] = {
        "record_id": uuid.uuid4().hex[:16],
        "kind": kind,
        "key": record_key(identity),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "schema": SCHEMA_VERSION,
    }
    for k, v in {**identity, **fields, **env}.items():
        record.setdefault(k, flatten(v))
    return record


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows: appends are still single writes
        yield
        return
    with open(path, "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


class ResultsStore:
    """The results folder: append records, read them back, find what is already measured.

    Args:
        root: The folder (created on first write).

    Attributes:
        skipped: The lines the last read skipped (:class:`Skipped`: unreadable, breaking the record schema, or
            written by a newer mobileone-bench), for summaries to count; ``[]`` before the first read.
    """

    def __init__(self, root: str | Path = DEFAULT_RESULTS):
        self.root = Path(root)
        self.skipped: list[Skipped] = []

    @property
    def records_path(self) -> Path:
        return self.root / RECORDS_FILE

    def _ensure(self) -> None:
        folder = self.root / SAMPLES_DIR
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            blocker = _file_in_the_way(folder)
            if blocker is not None:
                raise RecordsError(f"cannot create results folder {self.root}: {blocker} is a file, not a folder") \
                    from None
            raise RecordsError(f"cannot create results folder {self.root}: {exc.strerror or exc}") from None

    def append(self, record: dict[str, Any], samples: list[float] | None = None) -> dict[str, Any]:
        """Store one record (and its raw samples). Returns the record as stored.

        SIGINT and SIGTERM are held until both are written (a record is never half stored). When the store cannot be
        written (read-only, full, a file where a folder should be), the record and its samples are saved to a
        recovery file in the temporary folder and the error names it: a finished measurement is never lost.

        Raises:
            RecordsError: The store cannot be written (the message names the recovery file).
        """
        from mobileone_bench._interrupt import deferred

        with deferred():
            record = dict(record)
            target: Path | None = None
            try:
                self._ensure()
                if samples is not None:
                    rel = f"{SAMPLES_DIR}/{record['record_id']}.json"
                    target = self.root / rel
                    _atomic_write(target, json.dumps({"record_id": record["record_id"], "unit": "ms",
                                                      "samples": samples}), what="samples to ")
                    record["samples_file"] = rel
                line = json.dumps(record, sort_keys=False, default=str, separators=(",", ":"))
                if "\n" in line or "\r" in line:
                    raise RecordsError("a record must not contain raw newlines")
                with self.lock():
                    self.append_lines_locked([line])
            except RecordsError as exc:
                if target is not None and "samples_file" in record:  # the line failed: no orphan samples file
                    with contextlib.suppress(OSError):
                        target.unlink()
                    record.pop("samples_file", None)
                where = save_recovery(record, samples)
                if where is None:
                    raise
                raise RecordsError(f"{exc}; the record and its samples were saved to {where} (copy them in with "
                                   f"`mobileone-bench merge`, or read the JSON)") from None
            SAVED.append({"kind": record.get("kind"), "status": record.get("status"), "model": record.get("model"),
                          "record_id": record.get("record_id"), "n": len(samples) if samples else 0})
        return record

    def check_writable(self, expected_bytes: int = 0) -> None:
        """Fail now, before anything is built or measured, if records cannot be stored here: the folder, its lock
        and a samples file are created (a real write and remove), and the disk has room for ``expected_bytes``
        (plus a margin).

        Raises:
            RecordsError: One line saying what cannot be written.
        """
        import shutil

        self._ensure()
        with self.lock():
            pass
        probe = self.root / SAMPLES_DIR / f".probe-{os.getpid()}"
        _atomic_write(probe, "{}", what="to the results folder: ")
        with contextlib.suppress(OSError):
            probe.unlink()
        try:
            free = shutil.disk_usage(self.root).free
        except OSError:
            return
        need = int(expected_bytes) + WRITE_MARGIN_BYTES
        if free < need:
            raise RecordsError(f"not enough room in {self.root} for the results of this run: {free / 1e6:.1f} MB "
                               f"free, about {need / 1e6:.1f} MB needed")

    # -------------------------------------------------------------------------------------------- the journal

    def _journal_path(self, key: str) -> Path:
        if not key or not all(c.isalnum() or c in "-_" for c in key):
            raise RecordsError(f"not a record key: {key!r}")
        return self.root / JOURNAL_DIR / f"{key}.json"

    def journal_write(self, key: str, entry: dict[str, Any]) -> None:
        """Replace the journal of the measurement ``key`` (atomically: a kill leaves the previous one)."""
        path = self._journal_path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise RecordsError(f"cannot create {path.parent}: {exc.strerror or exc}") from None
        _atomic_write(path, json.dumps(entry, default=str, separators=(",", ":")))

    def journal_read(self, key: str) -> dict[str, Any] | None:
        """The journal of ``key``, or ``None`` when there is none or it cannot be read (a warning then)."""
        path = self._journal_path(key)
        if not path.exists():
            return None
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            warnings.warn(f"{path}: unreadable journal ignored ({exc})", stacklevel=2)
            return None
        return entry if isinstance(entry, dict) else None

    def journal_remove(self, key: str) -> None:
        """Remove the journal of ``key`` (its record is stored)."""
        with contextlib.suppress(OSError):
            self._journal_path(key).unlink()

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the store's append lock (the one :meth:`append` takes for each record) across several reads and
        writes that must not interleave with another writer's, e.g. a merge that reads which records are here and
        then appends the missing ones (:func:`mobileone_bench.store.merging.merge`).

        The lock is advisory and not re-entrant: do not call :meth:`append` while holding it (use
        :meth:`append_lines_locked`).

        Raises:
            RecordsError: The folder or its lock file cannot be created.
        """
        self._ensure()
        with contextlib.ExitStack() as stack:
            try:
                stack.enter_context(_locked(self.root / ".lock"))
            except IsADirectoryError:
                raise RecordsError(f"cannot lock {self.root}: {self.root / '.lock'} is a folder, not the store's "
                                   f"lock file (remove it)") from None
            except OSError as exc:
                raise RecordsError(f"cannot lock {self.root}: {exc.strerror or exc}") from None
            yield

    def append_lines_locked(self, lines: list[str]) -> None:
        """Append already serialized record lines (one JSON object each, no newline inside) in one ``write`` and
        ``fsync``, starting on a fresh line if a killed writer left a partial one. The caller holds :meth:`lock`.

        Raises:
            RecordsError: A line holds a raw newline, or the file cannot be written.
        """
        if not lines:
            return
        if any("\n" in line or "\r" in line for line in lines):
            raise RecordsError("a record must not contain raw newlines")
        data = "".join(line + "\n" for line in lines).encode("utf-8")
        try:
            fd = os.open(self.records_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                size = os.fstat(fd).st_size
                if size:
                    with open(self.records_path, "rb") as fh:
                        fh.seek(size - 1)
                        if fh.read(1) != b"\n":
                            data = b"\n" + data  # a killed writer left a partial line: start afresh
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise RecordsError(f"cannot append to {self.records_path}: {exc.strerror or exc}") from None

    def read(self, kind: str | None = None) -> tuple[list[dict[str, Any]], list[Skipped]]:
        """Every record this tool can use (optionally of one kind), oldest first, and every line skipped (whatever
        its kind), through the one reader (:func:`read_lines`); no warning. Also sets :attr:`skipped`.

        Raises:
            RecordsError: ``records.jsonl`` cannot be read.
        """
        lines, skipped = read_lines(self.records_path)
        self.skipped = skipped
        return [ln.record for ln in lines if kind is None or ln.record.get("kind") == kind], skipped

    def records(self, kind: str | None = None) -> list[dict[str, Any]]:
        """Every record this tool can use (optionally of one kind), oldest first. Lines it cannot use (corrupt,
        breaking the record schema, written by a newer version) are skipped with one warning naming the file, the
        lines and why, and counted in :attr:`skipped`."""
        out, skipped = self.read(kind)
        message = skipped_warning(self.records_path, skipped)
        if message:
            warnings.warn(message, BenchWarning, stacklevel=2)
        return out

    def latest(self, kind: str | None = None, *, ok_only: bool = True) -> list[dict[str, Any]]:
        """The newest record of each key (successful ones only, by default), in first-measured order."""
        newest: dict[str, dict[str, Any]] = {}
        for rec in self.records(kind):
            if ok_only and rec.get("status") != "ok":
                continue
            newest[rec["key"]] = rec  # later lines are newer
        return list(newest.values())

    def find(self, key: str, kind: str | None = None) -> dict[str, Any] | None:
        """The newest successful record with this key, or ``None`` (a record the reader skipped is never found:
        what the tool does not understand is measured again, not reused)."""
        for rec in reversed(self.records(kind)):
            if rec.get("key") == key and rec.get("status") == "ok":
                return rec
        return None

    def has(self, key: str) -> bool:
        """Whether a successful record with this key exists."""
        return any(r.get("key") == key and r.get("status") == "ok" for r in self.records())

    def keys(self, kind: str | None = None) -> set[str]:
        """Keys that have a successful record."""
        return {r["key"] for r in self.records(kind) if r.get("status") == "ok"}

    def samples(self, record: dict[str, Any]) -> list[float]:
        """The raw samples of a record."""
        rel = record.get("samples_file")
        if not rel:
            raise RecordsError(f"record {record.get('record_id')} has no samples file")
        try:
            return list(json.loads((self.root / rel).read_text(encoding="utf-8"))["samples"])
        except (OSError, ValueError, KeyError) as exc:
            raise RecordsError(f"cannot read samples {self.root / rel}: {exc}") from None

    def frame(self, kind: str | None = None, *, latest: bool = True) -> Any:
        """Records as a pandas DataFrame (one row per record; the latest per key by default)."""
        import pandas as pd

        rows = self.latest(kind) if latest else self.records(kind)
        return pd.DataFrame(rows)
