"""The paper's tables as text: cells (:func:`format_cell`, :func:`table_cell`, :func:`format_p`) and writers for
Markdown, CSV, LaTeX (booktabs) and JSON (:func:`render`) of a table that :func:`mobileone_bench.analysis.tables.build_table`
built (or any table of the same shape: ``title``, ``columns``, ``groups`` of ``rows``, ``footnotes``)."""

from __future__ import annotations

import csv
import io
import json
import math
from typing import Any

from mobileone_bench.errors import UsageError
from mobileone_bench.store.frames import DEVICE_LABELS

__all__ = ["FORMATS", "render", "flat_rows", "format_cell", "table_cell", "format_p"]

FORMATS = ("rich", "md", "csv", "latex", "json")
_DIGITS = {"top1": 1, "flops_m": 0, "params_m": 1}


def _isnum(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(float(v))


def _clean(v: Any) -> Any:
    """NaN and pandas' missing values as ``None``; numpy scalars as Python numbers."""
    if v is None:
        return None
    try:
        if v != v:  # NaN
            return None
    except (TypeError, ValueError):
        return v
    if hasattr(v, "item"):
        return v.item()
    return v


def table_cell(table: dict[str, Any], row: dict[str, Any], key: str) -> str:
    """A cell of ``table`` as text: :func:`format_cell`, and with the table's ``ci`` a latency as ``2.43
    (2.39-2.47)``."""
    text = format_cell(key, row.get(key))
    if table.get("ci") and key.endswith("_ms") and not key.startswith("paper_") and text != "-":
        low, high = row.get(f"{key[:-3]}_ci_low_ms"), row.get(f"{key[:-3]}_ci_high_ms")
        if _isnum(low) and _isnum(high):
            text += f" ({format_cell(key, low)}-{format_cell(key, high)})"
    return text


def format_cell(key: str, value: Any) -> str:
    """A cell as text: ``-`` for missing; top-1 with 1 decimal, FLOPs 0, params 1, latencies 2 (as the paper)."""
    value = _clean(value)
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        base = key[len("paper_"):] if key.startswith("paper_") else key
        digits = _DIGITS.get(base, 2)
        return f"{float(value):.{digits}f}"
    return str(value)


def format_p(p: Any) -> str:
    """A p-value for people: 2 decimals as the paper, 3 below 0.01, ``<0.001`` below that, ``-`` when missing."""
    p = _clean(p)
    if not _isnum(p):
        return "-" if p is None else str(p)
    if p < 0.001:
        return "<0.001"
    return f"{p:.3f}" if p < 0.01 else f"{p:.2f}"


def flat_rows(table: dict[str, Any]) -> list[dict[str, Any]]:
    """The rows of every group in order, each with its ``group`` name."""
    out = []
    for g in table["groups"]:
        for r in g["rows"]:
            out.append({"group": g["name"], **r})
    return out


def _agreement_lines(table: dict[str, Any]) -> list[str]:
    lines = []
    for a in table.get("agreement") or []:
        label = f"{DEVICE_LABELS.get(a['device'], a['device'])} {a['runtime']}"
        if a["rho"] is None:
            lines.append(f"Rank agreement with the paper, {label}: {a['note']}")
        else:
            lines.append(f"Rank agreement with the paper, {label} vs paper {a['paper_column']}: Spearman rho = "
                         f"{a['rho']:.2f} (p = {format_p(a['p_value'])}, n = {a['n']})")
    return lines


def _markdown(table: dict[str, Any]) -> str:
    cols = table["columns"]

    def esc(s: str) -> str:
        return str(s).replace("|", "\\|")

    lines = [f"**{esc(table['title'])}**", "",
             "| " + " | ".join(esc(c["header"]) for c in cols) + " |",
             "|" + "|".join(":---" if i == 0 else "---:" for i in range(len(cols))) + "|"]
    for g in table["groups"]:
        if g["name"]:
            lines.append("| " + " | ".join([f"**{esc(g['name'])}**"] + [""] * (len(cols) - 1)) + " |")
        for r in g["rows"]:
            lines.append("| " + " | ".join(esc(table_cell(table, r, c["key"])) for c in cols) + " |")
    lines.append("")
    lines += [f"- {esc(n)}" for n in table["footnotes"] + _agreement_lines(table)]
    return "\n".join(lines) + "\n"


def _csv(table: dict[str, Any]) -> str:
    cols = table["columns"]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["Group"] + [c["header"] for c in cols])
    for r in flat_rows(table):
        writer.writerow([r["group"] or ""] + [table_cell(table, r, c["key"]) for c in cols])
    return buf.getvalue()


_LATEX_SPECIAL = {"&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_", "{": r"\{", "}": r"\}",
                  "~": r"\textasciitilde{}", "^": r"\textasciicircum{}", "\\": r"\textbackslash{}"}


def _tex(s: str) -> str:
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(s)).replace("μ", r"$\mu$")


def _latex(table: dict[str, Any]) -> str:
    cols = table["columns"]
    n = len(cols)
    lines = [r"% requires \usepackage{booktabs}", r"\begin{table}[t]", r"\centering", r"\small",
             rf"\caption{{{_tex(table['title'])}}}", r"\begin{tabular}{l" + "r" * (n - 1) + "}", r"\toprule",
             " & ".join(_tex(c["header"]) for c in cols) + r" \\", r"\midrule"]
    for i, g in enumerate(table["groups"]):
        if i:
            lines.append(r"\midrule")
        if g["name"]:
            lines.append(rf"\multicolumn{{{n}}}{{l}}{{\textit{{{_tex(g['name'])}}}}} \\")
        for r in g["rows"]:
            lines.append(" & ".join(_tex(table_cell(table, r, c["key"])) for c in cols) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    lines += [f"% {line}" for line in table["footnotes"] + _agreement_lines(table)]
    return "\n".join(lines) + "\n"


def _json(table: dict[str, Any]) -> str:
    out = {k: v for k, v in table.items() if k != "groups"}
    out["rows"] = [{k: _clean(v) for k, v in r.items()} for r in flat_rows(table)]
    return json.dumps(out, indent=2, default=str) + "\n"


def render(table: dict[str, Any], fmt: str) -> str:
    """A table from :func:`build_table` as text: ``md``, ``csv``, ``latex`` or ``json``.

    Raises:
        UsageError: Another format (``rich`` is drawn by the CLI).
    """
    writers = {"md": _markdown, "markdown": _markdown, "csv": _csv, "latex": _latex, "tex": _latex, "json": _json}
    key = str(fmt).lower()
    if key not in writers:
        raise UsageError(f"unknown table format {fmt!r}; choose from {', '.join(FORMATS)}")
    return writers[key](table)
