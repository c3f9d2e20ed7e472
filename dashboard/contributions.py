"""A price's SHAP contributions grouped by what a person typed in, from serving's per-feature ones.

Serving explains a price over the model's engineered features (size_per_bed, zip_price_level, ...), in
log-price (`shap_values`) and, allocated from those, in dollars to the cent (`contributions_usd`, adding
up to price - base price). SHAP values are additive, so an input's share is the sum of its features'.
A feature computed from several inputs (size_per_bed: house_size and bed) is split equally among those
of its inputs that were given: the split is a convention, the totals are exact. A place left empty is
priced at the next level up (no city: the state's level), so its feature goes to the inputs that were
given; a feature that reads only empty inputs (the ZIP code's listing count, with no ZIP code) stays
with them, as "not given".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from mlops_assets.core.features import FEATURE_SOURCES

INPUT_LABELS = {
    "bed": "bedrooms", "bath": "bathrooms", "acre_lot": "lot (acres)", "house_size": "living space (sq ft)",
    "state": "state", "status": "status", "city": "city", "zip_code": "ZIP code",
}  # fmt: skip
"""The inputs of the Predict form, in its order, as the page names them."""
NOT_GIVEN = "not given"
OTHER = "other"
"""The group of a feature this dashboard does not know the inputs of (a model newer than the dashboard)."""


def _given(value: Any) -> bool:
    return value is not None and not (isinstance(value, str) and not value.strip()) and not pd.isna(value)


def split_cents(cents: int, parts: int) -> list[int]:
    """`cents` in `parts` as equal as cents allow, the first ones a cent more; they add up to `cents` exactly."""
    share, extra = divmod(cents, parts)
    return [share + (1 if i < extra else 0) for i in range(parts)]


def inputs_of(feature: str, prop: Mapping[str, Any]) -> tuple[str, ...]:
    """The inputs a feature's contribution goes to: those it reads that were given, else all it reads."""
    sources = tuple(s for s in FEATURE_SOURCES.get(feature, ()) if s in INPUT_LABELS)
    if not sources:
        return (OTHER,)
    given = tuple(s for s in sources if _given(prop.get(s)))
    return given if given else sources


def by_input(
    feature_names: Sequence[str],
    contributions_usd: Sequence[float],
    shap_values: Sequence[float],
    prop: Mapping[str, Any],
) -> pd.DataFrame:
    """One row per input that any feature went to, largest |dollars| first: input, label, value (as typed, as
    text, or "not given"), contribution (US dollars, to the cent), shap (log price), features (which ones, and the share
    of each). The dollars add up exactly to the features' dollars, the log values to their sum."""
    cents: dict[str, int] = {}
    logs: dict[str, float] = {}
    parts: dict[str, list[str]] = {}
    for feature, dollars, log in zip(feature_names, contributions_usd, shap_values, strict=True):
        targets = inputs_of(feature, prop)
        for target, share in zip(targets, split_cents(round(dollars * 100), len(targets)), strict=True):
            cents[target] = cents.get(target, 0) + share
            logs[target] = logs.get(target, 0.0) + log / len(targets)
            parts.setdefault(target, []).append(feature if len(targets) == 1 else f"{feature} (1/{len(targets)})")
    rows = [
        {
            "input": target,
            "label": INPUT_LABELS.get(target, OTHER),
            "value": _shown(target, prop.get(target)),
            "contribution": cents[target] / 100,
            "shap": logs[target],
            "features": ", ".join(parts[target]),
        }
        for target in [*INPUT_LABELS, OTHER]
        if target in cents
    ]
    frame = pd.DataFrame(rows, columns=["input", "label", "value", "contribution", "shap", "features"])
    return frame.reindex(frame["contribution"].abs().sort_values(ascending=False, kind="stable").index)


def _shown(name: str, value: Any) -> str:
    """What was typed, as text: 4.0 -> "4", 2400.0 -> "2,400", for_sale -> "for sale"."""
    if name == OTHER:
        return ""
    if not _given(value):
        return NOT_GIVEN
    if isinstance(value, int | float):
        return f"{value:,.2f}".rstrip("0").rstrip(".")
    return str(value).replace("_", " ") if name == "status" else str(value)
