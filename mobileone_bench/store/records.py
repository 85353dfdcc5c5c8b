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
import functools
import hashlib
import json
import math
import os
import re
import uuid
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

from mobileone_bench.errors import BenchWarning, MissingDependencyError, RecordsError

__all__ = ["ResultsStore", "record_key", "new_record", "parse_line", "check_record", "read_lines", "skipped_warning",
           "Line", "Skipped", "flatten", "DEFAULT_RESULTS", "RECORDS_FILE", "SAVED", "SCHEMA_VERSION",
           "RECORD_SCHEMA"]

DEFAULT_RESULTS = "results"
RECORDS_FILE = "records.jsonl"
SAMPLES_DIR = "samples"
JOURNAL_DIR = "journal"

#: The version of the record schema this tool writes and reads (``"schema"`` in every record it makes).
SCHEMA_VERSION = 1
#: The schema of a record, in the package (``mobileone_bench/data/record.schema.json``).
RECORD_SCHEMA = "data/record.schema.json"

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


def parse_line(line: str) -> dict[str, Any] | None:
    """One line of ``records.jsonl`` as a JSON object, or ``None`` when it is not one (corrupt, or a partial line a
    killed writer left). A leading UTF-8 byte order mark is ignored. Whether the object is a record this tool can
    use is :func:`check_record`'s question."""
    try:
        rec = json.loads(line.lstrip("\ufeff"))
    except ValueError:
        return None
    return rec if isinstance(rec, dict) else None


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    """The record schema's validator: JSON Schema draft 2020-12 plus this tool's ``finite`` keyword."""
    try:
        import jsonschema
        from jsonschema.exceptions import ValidationError
    except ImportError:  # pragma: no cover - a dependency of the package
        raise MissingDependencyError("the record reader (Python module 'jsonschema')", "pip install jsonschema") \
            from None
    from importlib import resources

    def finite(validator: Any, wanted: Any, instance: Any, schema: dict[str, Any]) -> Iterator[Any]:
        if wanted and isinstance(instance, float) and not math.isfinite(instance):
            yield ValidationError(f"{instance!r} is not a finite number")

    schema = json.loads(resources.files("mobileone_bench").joinpath(RECORD_SCHEMA).read_text("utf-8"))
    cls = jsonschema.validators.extend(jsonschema.Draft202012Validator, {"finite": finite})
    return cls(schema)


_TYPE_NAMES = {"string": "a string", "number": "a number", "integer": "an integer", "boolean": "true or false",
               "array": "a list", "object": "an object", "null": "null"}


def _what(value: Any) -> str:
    """A field's value in a few words: ``"0.068 ms" (a string)``, ``a list``, ``NaN``."""
    if isinstance(value, float) and not math.isfinite(value):
        return json.dumps(value)
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "a list"
    text = json.dumps(value, default=str)
    text = text if len(text) <= 30 else text[:27] + "..."
    kind = {str: "a string", bool: "a boolean", int: "an integer", float: "a number"}.get(type(value))
    return f"{text} ({kind})" if kind else text


def _describe(error: Any) -> str:
    """One jsonschema error as a few words naming the field: ``latency_ms is "0.068 ms" (a string), not a
    number``, ``no model``."""
    field = ".".join(str(p) for p in error.absolute_path) or "the record"
    wanted, value = error.validator_value, error.instance
    if error.validator == "required":
        missing = [name for name in wanted if isinstance(value, dict) and name not in value]
        return f"no {', '.join(missing) or wanted}"
    if error.validator == "type":
        names = [wanted] if isinstance(wanted, str) else list(wanted)
        return f"{field} is {_what(value)}, not {' or '.join(_TYPE_NAMES.get(n, n) for n in names)}"
    if error.validator == "finite":
        return f"{field} is {_what(value)}, not a finite number"
    if error.validator == "minLength":
        return f"{field} is empty"
    if error.validator == "minimum":
        return f"{field} is {_what(value)}, below {wanted}"
    return f"{field}: {' '.join(str(error.message).split())[:80]}"


def check_record(record: Any) -> tuple[str, str] | None:
    """Why this tool cannot use a parsed record, or ``None`` when it can.

    Returns:
        ``None``, or ``(why, reason)``: ``why`` is ``"newer"`` (written by a newer mobileone-bench: a ``schema``
        above :data:`SCHEMA_VERSION`) or ``"invalid"`` (breaks the record schema: a required field missing, a field
        of the wrong type, a statistic that is not a finite number); ``reason`` says it in a few words, naming the
        field.
    """
    if not isinstance(record, dict):
        return "invalid", f"not a JSON object but {_what(record)}"
    version = record.get("schema")
    if isinstance(version, int) and not isinstance(version, bool) and version > SCHEMA_VERSION:
        return "newer", f"written by a newer mobileone-bench (schema {version})"
    errors = list(_validator().iter_errors(record))
    if not errors:
        return None
    # what identifies the record first, then missing fields, then the rest in field order
    errors.sort(key=lambda e: (list(e.absolute_path)[:1] not in (["key"], ["kind"], ["schema"]),
                               e.validator != "required", [str(p) for p in e.absolute_path], str(e.validator)))
    reason = _describe(errors[0])
    first = ".".join(str(p) for p in errors[0].absolute_path)
    others = list(dict.fromkeys(_describe(e) if e.validator == "required" else ".".join(str(p) for p in e.absolute_path)
                                for e in errors[1:]))
    others = [f for f in others if f != first]
    if others:
        reason += f" (also wrong: {', '.join(others[:3])}{' and more' if len(others) > 3 else ''})"
    return "invalid", reason


#: Verdicts of :func:`check_record` by a digest of the line (the same line read again is not validated again).
_VERDICTS: dict[bytes, tuple[str, str] | None] = {}
_VERDICTS_MAX = 200_000


def _verdict(raw: str, record: dict[str, Any]) -> tuple[str, str] | None:
    digest = hashlib.blake2b(raw.encode("utf-8", "surrogatepass"), digest_size=16).digest()
    try:
        return _VERDICTS[digest]
    except KeyError:
        pass
    verdict = check_record(record)
    if len(_VERDICTS) >= _VERDICTS_MAX:
        _VERDICTS.clear()
    _VERDICTS[digest] = verdict
    return verdict


@dataclass(frozen=True)
class Line:
    """A usable record line: its number in the file (from 1), its text (verbatim, stripped) and the record."""

    number: int
    raw: str
    record: dict[str, Any]


@dataclass(frozen=True)
class Skipped:
    """A line the reader did not use.

    Attributes:
        path: The file.
        line: Its line number (from 1).
        why: ``"unreadable"`` (not a JSON object: an interrupted write, a corrupt line), ``"invalid"`` (breaks the
            record schema) or ``"newer"`` (written by a newer mobileone-bench).
        reason: In a few words, naming the field (``latency_ms is NaN, not a finite number``).
        record_id: The record's ``record_id`` when it has a readable one.
    """

    path: str
    line: int
    why: str
    reason: str
    record_id: str | None = None


def read_lines(path: str | Path) -> tuple[list[Line], list[Skipped]]:
    """The one reader of a ``records.jsonl``: every line this tool can use, and every line it skipped and why.

    A UTF-8 byte order mark at the start of the file is not part of the first line; blank lines are ignored; a line
    that is not a JSON object, a record that breaks the record schema and one written by a newer mobileone-bench
    are skipped (see :func:`check_record`). Nothing is warned here: :func:`skipped_warning` makes the one warning.

    Returns:
        ``(lines, skipped)``, in file order; both empty when the file does not exist.

    Raises:
        RecordsError: The file exists but cannot be read.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except FileNotFoundError:
        return [], []
    except OSError as exc:
        raise RecordsError(f"cannot read {path}: {exc.strerror or exc}") from None
    lines: list[Line] = []
    skipped: list[Skipped] = []
    for number, line in enumerate(text.split("\n"), start=1):
        raw = line.strip().lstrip("\ufeff")
        if not raw:
            continue
        rec = parse_line(raw)
        if rec is None:
            skipped.append(Skipped(str(path), number, "unreadable", "not a JSON object"))
            continue
        verdict = _verdict(raw, rec)
        if verdict is not None:
            rid = rec.get("record_id")
            skipped.append(Skipped(str(path), number, verdict[0], verdict[1],
                                   rid if isinstance(rid, str) and rid else None))
            continue
        lines.append(Line(number, raw, rec))
    return lines, skipped


def _lines_text(items: list[Skipped], with_reason: bool, limit: int = 3) -> str:
    shown = [f"line {s.line}" + (f" ({s.reason})" if with_reason else "") for s in items[:limit]]
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return ", ".join(shown) + more


def skipped_warning(path: str | Path, skipped: list[Skipped]) -> str | None:
    """The one warning line for the lines a reader skipped in one file (``None`` when none were): how many, which
    lines (the first few) and why."""
    if not skipped:
        return None
    unreadable = [s for s in skipped if s.why == "unreadable"]
    invalid = [s for s in skipped if s.why == "invalid"]
    newer = [s for s in skipped if s.why == "newer"]
    parts = []
    if unreadable:
        parts.append(f"skipped {len(unreadable)} unreadable line(s) (an interrupted write?): "
                     f"{_lines_text(unreadable, False)}")
    if invalid:
        parts.append(f"skipped {len(invalid)} record(s) this tool cannot use: {_lines_text(invalid, True)}")
    if newer:
        versions = sorted({m.group(1) for s in newer for m in [re.search(r"schema (\d+)", s.reason)] if m}, key=int)
        parts.append(f"skipped {len(newer)} record(s) written by a newer mobileone-bench (schema "
                     f"{', '.join(versions)}): {_lines_text(newer, False)}; this one reads schema {SCHEMA_VERSION}: "
                     f"upgrade mobileone-bench to use them")
    return f"{path}: {'; '.join(parts)}"


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
