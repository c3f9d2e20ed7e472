"""Cleaning of raw listings: one function, rule by rule, counting what each rule drops.

Ranges are fixed and plausible, not percentiles of the batch at hand: percentiles move with
drift and would quietly hide it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from mlops_assets.core.properties import normalize_zip, property_keys
from mlops_assets.core.schema import NUMERIC_COLUMNS, RANGE_CHECKED_COLUMNS, RAW_COLUMNS, REQUIRED_COLUMNS, STATUSES
from mlops_assets.core.states import normalize_state


@dataclass(frozen=True)
class Ranges:
    """Inclusive bounds a clean listing must satisfy."""

    bed: tuple[float, float] = (1, 20)
    bath: tuple[float, float] = (1, 15)
    house_size: tuple[float, float] = (100, 50_000)
    acre_lot: tuple[float, float] = (0, 1_000)
    price: tuple[float, float] = (10_000, 50_000_000)


DEFAULT_RANGES = Ranges()

REQUIRED = REQUIRED_COLUMNS

CLEAN_COLUMNS = [
    "listing_id", "property_key", "status", "price", "bed", "bath", "acre_lot", "acre_lot_missing",
    "house_size", "state", "city", "zip_code", "prev_sold_date", "brokered_by", "street",
]  # fmt: skip


@dataclass
class CleaningResult:
    """The clean rows plus the number of rows each rule dropped (in the order applied)."""

    frame: pd.DataFrame
    rows_in: int
    dropped: dict[str, int] = field(default_factory=dict)
    flagged: dict[str, int] = field(default_factory=dict)

    @property
    def rows_out(self) -> int:
        return len(self.frame)


_STATUS_ALIASES = {
    "for sale": "for_sale", "forsale": "for_sale", "for-sale": "for_sale",
    "ready to build": "ready_to_build", "ready-to-build": "ready_to_build",
}  # fmt: skip


def normalize_status(value: object) -> str | None:
    """Map a status spelling onto one of STATUSES; None if it is none of them."""
    if not isinstance(value, str):
        return None
    key = " ".join(value.split()).lower()
    key = _STATUS_ALIASES.get(key, key)
    return key if key in STATUSES else None


def normalize_date(values: pd.Series) -> pd.Series:
    """Keep dates as YYYY-MM-DD strings; anything unparseable becomes None."""
    parsed = pd.to_datetime(values, errors="coerce", format="%Y-%m-%d")
    out = parsed.dt.strftime("%Y-%m-%d").astype("object")
    return out.where(parsed.notna(), None)


def listing_ids(frame: pd.DataFrame) -> pd.Series:
    """A stable id per listing: a hash of its 12 raw fields, the same on every machine and run."""
    hashed = pd.util.hash_pandas_object(frame[list(RAW_COLUMNS)], index=False)
    return hashed.map("{:016x}".format).astype("object")


def clean_listings(raw: pd.DataFrame, ranges: Ranges = DEFAULT_RANGES) -> CleaningResult:
    """Apply the cleaning rules in order; each drop is counted under the rule's name."""
    frame = raw[list(RAW_COLUMNS)].copy()
    result = CleaningResult(frame=frame, rows_in=len(frame))

    def drop(rule: str, mask: pd.Series) -> None:
        nonlocal frame
        result.dropped[rule] = int(mask.sum())
        frame = frame.loc[~mask].copy()

    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["listing_id"] = listing_ids(frame)

    drop("missing_required", frame[list(REQUIRED)].isna().any(axis=1))
    frame["state"] = frame["state"].map(normalize_state)
    drop("unknown_state", frame["state"].isna())
    frame["status"] = frame["status"].map(normalize_status)
    drop("unknown_status", frame["status"].isna())
    for column in REQUIRED:  # missing already dropped: every value is checked
        low, high = getattr(ranges, column)
        drop(f"{column}_out_of_range", ~frame[column].between(low, high))
    low, high = ranges.acre_lot
    drop("acre_lot_out_of_range", frame["acre_lot"].notna() & ~frame["acre_lot"].between(low, high))
    drop("duplicate", frame.duplicated(subset=["listing_id"], keep="first"))

    frame["acre_lot_missing"] = frame["acre_lot"].isna()
    result.flagged["acre_lot_missing"] = int(frame["acre_lot_missing"].sum())
    frame["zip_code"] = normalize_zip(frame["zip_code"])
    frame["prev_sold_date"] = normalize_date(frame["prev_sold_date"])
    frame["city"] = frame["city"].map(lambda v: " ".join(v.split()) if isinstance(v, str) else None)
    frame["property_key"] = property_keys(frame)
    result.frame = frame[CLEAN_COLUMNS].reset_index(drop=True)
    return result


def check_clean_ranges(frame: pd.DataFrame, ranges: Ranges = DEFAULT_RANGES) -> list[str]:
    """Violations of the clean-data contract; cleaning must leave this empty."""
    problems = []
    for column in RANGE_CHECKED_COLUMNS:
        low, high = getattr(ranges, column)
        values = frame[column].dropna()
        bad = ~values.between(low, high)
        if bad.any():
            problems.append(f"{column}: {int(bad.sum())} value(s) outside [{low}, {high}]")
    for column in REQUIRED:
        if frame[column].isna().any():
            problems.append(f"{column}: {int(frame[column].isna().sum())} missing value(s)")
    if frame["listing_id"].duplicated().any():
        problems.append("listing_id: duplicate listings")
    bad_state = ~frame["state"].map(lambda s: normalize_state(s) == s)
    if bad_state.any():
        problems.append(f"state: {int(bad_state.sum())} unnormalised value(s)")
    return problems
