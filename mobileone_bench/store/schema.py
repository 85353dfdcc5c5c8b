"""The record schema and the one reader of ``records.jsonl``: every line parsed, checked, and used or skipped with
a reason (see :mod:`mobileone_bench.store.records` for the store this reads).

Every record carries the version of its schema (``"schema": 1``, :data:`SCHEMA_VERSION`;
``mobileone_bench/data/record.schema.json``). :func:`read_lines` parses each line (a UTF-8 byte order mark at the
start of the file is not part of the first line) and checks the record against the schema; a line that is not JSON,
a record that breaks the schema and a record written by a newer mobileone-bench are skipped, each with its reason.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from mobileone_bench.errors import MissingDependencyError, RecordsError

__all__ = ["SCHEMA_VERSION", "RECORD_SCHEMA", "parse_line", "check_record", "read_lines", "skipped_warning", "Line",
           "Skipped"]

#: The version of the record schema this tool writes and reads (``"schema"`` in every record it makes).
SCHEMA_VERSION = 1
#: The schema of a record, in the package (``mobileone_bench/data/record.schema.json``).
RECORD_SCHEMA = "data/record.schema.json"


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
    if error.validator == "maximum":
        return f"{field} is {_what(value)}, above {wanted}"
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
