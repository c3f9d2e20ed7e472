"""What changed between two data sets, in words a person can act on.

"median house_size +22% (1,750 -> 2,140); mean bed +12% (3.10 -> 3.47); state mix: Texas 0% -> 41%, New York 23% -> 1%"
"""

from __future__ import annotations

import pandas as pd


def _number(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:,.2f}"


def _is_count(values: pd.Series) -> bool:
    """Small whole numbers (bed, bath): their median hardly moves, their mean does."""
    values = values.dropna()
    return bool(len(values)) and bool((values % 1 == 0).all()) and values.max() <= 100


def numeric_change(reference: pd.Series, current: pd.Series, name: str) -> str:
    stat = "mean" if _is_count(reference) and _is_count(current) else "median"
    before, after = getattr(reference, stat)(), getattr(current, stat)()
    if pd.isna(before) or pd.isna(after):
        return f"{name}: no values to compare"
    if before == 0:
        return f"{stat} {name} {_number(before)} -> {_number(after)}"
    change = (after - before) / abs(before)
    return f"{stat} {name} {change:+.0%} ({_number(before)} -> {_number(after)})"


def mix_change(reference: pd.Series, current: pd.Series, name: str, top: int = 3) -> str:
    """The categories whose share moved most, largest first."""
    before = reference.value_counts(normalize=True)
    after = current.value_counts(normalize=True)
    shares = pd.concat([before, after], axis=1, keys=["before", "after"]).fillna(0.0)
    moved = (shares["after"] - shares["before"]).abs().sort_values(ascending=False).head(top)
    parts = [f"{k} {shares.at[k, 'before']:.0%} -> {shares.at[k, 'after']:.0%}" for k in moved.index]
    return f"{name} mix: " + ", ".join(parts)


def describe_changes(
    reference: pd.DataFrame, current: pd.DataFrame, numeric: list[str], categorical: list[str]
) -> list[str]:
    """One phrase per column, in the order given."""
    phrases = [numeric_change(reference[c], current[c], c) for c in numeric]
    phrases += [mix_change(reference[c], current[c], c) for c in categorical]
    return phrases
