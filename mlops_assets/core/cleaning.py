"""Cleaning of raw listings: one function, rule by rule, counting what each rule drops.

Ranges are fixed and plausible, not percentiles of the batch at hand: percentiles move with
drift and would quietly hide it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from pandas.api.types import infer_dtype

from mlops_assets.core.properties import hex_keys, map_distinct, normalize_zip, property_keys
from mlops_assets.core.schema import RANGE_CHECKED_COLUMNS, RAW_COLUMNS, REQUIRED_COLUMNS, STATUSES
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
    """Keep dates as YYYY-MM-DD strings; anything unparseable becomes None.

    Text-only columns are parsed once per distinct date (a batch repeats a few thousand dates); anything else
    (numbers, datetimes) as a whole column, since pandas groups 1, 1.0 and True as one distinct value."""
    if values.dtype == object and infer_dtype(values.to_numpy(), skipna=True) in ("string", "empty"):
        codes, distinct = pd.factorize(values.to_numpy(), sort=False)
        dates = np.append(_dates(pd.Series(distinct, dtype=object)).to_numpy(), np.array([None]))
        return pd.Series(dates[codes], index=values.index, dtype=object)
    return _dates(values)


def _dates(values: pd.Series) -> pd.Series:
    parsed = pd.to_datetime(values, errors="coerce", format="%Y-%m-%d")
    out = parsed.dt.strftime("%Y-%m-%d").astype("object")
    return out.where(parsed.notna(), None)


def _hashes(frame: pd.DataFrame) -> np.ndarray:
    """The uint64 behind each listing id (duplicates are found on these: faster than on the hex text)."""
    return pd.util.hash_pandas_object(frame[list(RAW_COLUMNS)], index=False).to_numpy()


def listing_ids(frame: pd.DataFrame) -> pd.Series:
    """A stable id per listing: a hash of its 12 raw fields, the same on every machine and run."""
    return pd.Series(hex_keys(_hashes(frame)), index=frame.index, dtype=object)


def _values(column: pd.Series) -> np.ndarray | pd.api.extensions.ExtensionArray:
    """A column's values without its index, dtype kept (an object column as its plain array: cheaper to frame)."""
    return column.to_numpy() if column.dtype == object else column.array


def _single_spaced(value: object) -> str | None:
    return " ".join(value.split()) if isinstance(value, str) else None


def clean_listings(raw: pd.DataFrame, ranges: Ranges = DEFAULT_RANGES) -> CleaningResult:
    """Apply the cleaning rules in order; each drop is counted under the rule's name.

    A rule only marks rows: it counts those of its rows still kept (masks over every row), and the kept rows
    are taken once at the end - copying the frame after each rule cost more than the rules themselves.
    """
    frame = pd.DataFrame(  # numbered 0..n-1: the output is renumbered anyway
        {
            column: pd.to_numeric(raw[column], errors="coerce").astype("float64").to_numpy()
            if kind == "number"
            else _values(raw[column])
            for column, kind in RAW_COLUMNS.items()
        },
        copy=False,
    )
    result = CleaningResult(frame=frame, rows_in=len(frame))
    keep = np.ones(len(frame), dtype=bool)

    def drop(rule: str, mask: pd.Series | np.ndarray) -> None:
        nonlocal keep
        dropped = keep & np.asarray(mask, dtype=bool)
        result.dropped[rule] = int(dropped.sum())
        keep &= ~dropped

    hashes = _hashes(frame)
    drop("missing_required", frame[list(REQUIRED)].isna().any(axis=1))
    state = map_distinct(frame["state"], normalize_state)
    drop("unknown_state", state.isna())
    status = map_distinct(frame["status"], normalize_status)
    drop("unknown_status", status.isna())
    for column in REQUIRED:  # missing already dropped: every value is checked
        low, high = getattr(ranges, column)
        drop(f"{column}_out_of_range", ~frame[column].between(low, high))
    low, high = ranges.acre_lot
    drop("acre_lot_out_of_range", frame["acre_lot"].notna() & ~frame["acre_lot"].between(low, high))
    kept = np.flatnonzero(keep)
    duplicate = np.zeros(len(frame), dtype=bool)
    duplicate[kept] = pd.Series(hashes[kept]).duplicated(keep="first").to_numpy()  # same hash, same listing id
    drop("duplicate", duplicate)

    kept = np.flatnonzero(keep)
    rows = frame.take(kept)
    rows.index = pd.RangeIndex(len(rows))
    rows["state"] = state.take(kept).reset_index(drop=True)
    # the key normalises zip and city as cleaning does (and states again): keyed before or after, one key
    property_key = property_keys(rows)
    clean = {
        "listing_id": hex_keys(hashes[kept]),
        "property_key": property_key,
        "status": status.take(kept).reset_index(drop=True),
        "acre_lot_missing": rows["acre_lot"].isna(),
        "zip_code": normalize_zip(rows["zip_code"]),
        "prev_sold_date": normalize_date(rows["prev_sold_date"]),
        "city": map_distinct(rows["city"], _single_spaced),
    }
    result.flagged["acre_lot_missing"] = int(clean["acre_lot_missing"].sum())
    result.frame = pd.DataFrame({c: clean[c] if c in clean else rows[c] for c in CLEAN_COLUMNS}, copy=False)
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
