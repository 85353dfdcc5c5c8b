"""The paper's own figures (Tables 1, 2, 3, 9, 13, 14), transcribed into ``data/paper_reference.json``.

Top-1 accuracies in our tables come from here: the tool measures speed, it does not train.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

from mobileone_bench.errors import UsageError

__all__ = ["paper_reference", "paper_table", "paper_row", "TABLES"]

TABLES = ("table1", "table2", "table3", "table9", "table13", "table14")


@functools.lru_cache(maxsize=1)
def paper_reference() -> dict[str, Any]:
    """The whole reference document (paper, devices, tables)."""
    text = resources.files("mobileone_bench").joinpath("data/paper_reference.json").read_text(encoding="utf-8")
    return json.loads(text)


def paper_table(name: str) -> dict[str, Any]:
    """One table of the paper by name (``table9``...)."""
    tables = paper_reference()["tables"]
    key = name.lower().replace("-", "").replace("_", "")
    if key not in tables:
        raise UsageError(f"the paper has no reference table {name!r}; known: {', '.join(sorted(tables))}")
    return tables[key]


def paper_row(model: str, table: str = "table9") -> dict[str, Any] | None:
    """The row of a table for a registry name, or ``None``."""
    key = model.strip().lower().replace("_", "-")
    for row in paper_table(table)["rows"]:
        if str(row.get("model", "")).lower().replace("_", "-") == key:
            return row
    return None
