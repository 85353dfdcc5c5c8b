"""How results are handed out: a pandas DataFrame whose ``attrs`` hold what is shown beside the table (notes,
footnotes, the rank agreement...), or the same rows as plain dicts that carry the same ``attrs`` (:class:`Rows`),
and dict results that carry them too (:class:`Result`). pandas is imported only when a frame is made."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Mapping, Sequence

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

__all__ = ["Rows", "Result", "frame", "rows_or_frame", "correlation_frame"]


class Rows(list):  # type: ignore[type-arg]
    """Rows as plain dicts (``as_frame=False``), carrying the ``attrs`` their DataFrame would carry."""

    def __init__(self, rows: Iterable[dict[str, Any]] = (), **attrs: Any) -> None:
        super().__init__(rows)
        self.attrs: dict[str, Any] = attrs


class Result(dict):  # type: ignore[type-arg]
    """A dict result (``run``'s, ``plot``'s) carrying ``attrs``: what is shown beside it."""

    def __init__(self, values: Mapping[str, Any], **attrs: Any) -> None:
        super().__init__(values)
        self.attrs: dict[str, Any] = attrs


def frame(rows: list[dict[str, Any]], columns: Sequence[str] = (), **attrs: Any) -> pd.DataFrame:
    """Rows as a DataFrame: ``columns`` first (always present, even with no rows), then every other key."""
    import pandas as pd

    order = list(dict.fromkeys([*columns, *(k for r in rows for k in r)]))
    out = pd.DataFrame(rows, columns=order)
    out.attrs.update(attrs)
    return out


def rows_or_frame(rows: list[dict[str, Any]], as_frame: bool, columns: Sequence[str] = (), **attrs: Any) -> Any:
    """:func:`frame` or :class:`Rows`, with the same ``attrs``."""
    return frame(rows, columns, **attrs) if as_frame else Rows(rows, **attrs)


def correlation_frame(result: dict[str, Any]) -> pd.DataFrame:
    """A correlation result (:func:`mobileone_bench.analysis.correlate.correlate`) as a frame in its columns' order;
    ``attrs``: ``title``, ``notes``, ``source``, ``headers`` (``[column, header]`` pairs)."""
    return frame(result["rows"], [c[0] for c in result["columns"]], title=result.get("title"),
                 notes=list(result.get("notes") or []), source=result.get("source"),
                 headers=[list(c) for c in result["columns"]])
