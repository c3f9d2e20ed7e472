"""Numbers as people read them in the UIs' metadata: markdown tables, dollars without cents, percent,
a few significant digits - never 17-digit JSON."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any


def number(value: Any, digits: int = 3) -> str:
    """A number with `digits` significant digits (integers as they are, with thousands separators)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "-" if value is None else str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if not math.isfinite(value):
        return str(value)
    if value == 0:
        return "0"
    if abs(value) >= 10 ** (digits - 1):
        return f"{value:,.0f}"
    return f"{value:.{digits}g}"


def dollars(value: float) -> str:
    return f"${value:,.0f}"


def percent(fraction: float, decimals: int = 1) -> str:
    return f"{fraction:.{decimals}%}"


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], align: str | None = None) -> str:
    """A markdown table; numbers are written with `number`. `align`: one of 'l'/'r' per column."""
    marks = [":---" if a == "l" else "---:" for a in (align or "l" + "r" * (len(headers) - 1))]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(marks) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(c if isinstance(c, str) else number(c) for c in row) + " |")
    return "\n".join(lines)


def key_values(values: Mapping[str, Any], headers: tuple[str, str] = ("parameter", "value")) -> str:
    """A two-column table of a flat mapping (nested mappings written `k v; k v`)."""
    rows = []
    for key, value in values.items():
        if isinstance(value, Mapping):
            value = "; ".join(f"{k} {v if isinstance(v, str) else number(v)}" for k, v in value.items())
        elif isinstance(value, (list, tuple)):
            value = ", ".join(str(v) for v in value)
        rows.append((key, value if isinstance(value, str) else number(value)))
    return table(headers, rows, align="lr")


def importance(values: Mapping[str, float], title: str, top: int = 15) -> str:
    """Features by importance, largest first, with each one's share of the total."""
    total = sum(values.values()) or 1.0
    ranked = sorted(values.items(), key=lambda item: item[1], reverse=True)[:top]
    return table(["feature", title, "share"], [(f, number(v), percent(v / total)) for f, v in ranked])


def drift_scores(scores: Mapping[str, Mapping[str, Any]]) -> str:
    """The drift report's per-column scores: method, score, threshold, drifted - most drifted first."""
    ordered = sorted(scores.items(), key=lambda item: -(item[1]["score"] / (item[1]["threshold"] or 1)))
    rows = [
        (column, s["method"], f"{s['score']:.3f}", f"{s['threshold']:.3f}", "**yes**" if s["drifted"] else "no")
        for column, s in ordered
    ]
    return table(["column", "method", "score", "threshold", "drifted"], rows, align="llrrl")
