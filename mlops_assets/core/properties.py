"""The property key: one house across its listings, through changes of status and price.

`listing_id` hashes all 12 fields, so a house listed `for_sale` and later `sold` (new status, new price,
maybe a new sale date) gets a new listing id. The property key hashes only what describes the property and
its listing agent: brokered_by, street, city, state, zip_code, bed, bath, house_size and acre_lot - after the
same normalisation cleaning applies (state spelled out, zip as five digits, city with single spaces, any
case), so a raw row and its clean copy have the same key.

What it can tell apart: two houses on different streets, in different zips or cities, or of different sizes.
What it cannot:
- two units with identical fields (same building, street id, beds, baths and size) are one property;
- a renovated house (new size, beds or baths) or a listing moved to another broker is a new property;
- missing fields are part of the key: two listings of one house where one lacks `bed` do not match, and
  two different houses missing the same fields match only if everything else is equal;
- `street` is an encoded id in the realtor file, not an address: the key is only as good as that id.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.core.states import normalize_state

#: The fields that identify a property, in the order hashed.
PROPERTY_FIELDS = ("brokered_by", "street", "city", "state", "zip_code", "bed", "bath", "house_size", "acre_lot")
NUMERIC_FIELDS = ("brokered_by", "street", "bed", "bath", "house_size", "acre_lot")


def normalize_zip(values: pd.Series) -> pd.Series:
    """601.0, '601' and '00601' alike -> '00601'; missing or impossible codes -> None (cleaning uses it too)."""
    numbers = pd.to_numeric(values, errors="coerce")
    valid = numbers.notna() & (numbers >= 0) & (numbers <= 99_999) & (numbers % 1 == 0)
    out = pd.Series([None] * len(values), index=values.index, dtype="object")
    out[valid] = numbers[valid].astype("int64").map("{:05d}".format)
    return out


def _city(value: object) -> str | None:
    return " ".join(value.split()).lower() if isinstance(value, str) and value.strip() else None


def property_keys(frame: pd.DataFrame) -> pd.Series:
    """A 16-hex-digit key per row from PROPERTY_FIELDS (raw or clean rows; missing fields allowed)."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype="object")
    parts = pd.DataFrame(index=frame.index)
    for field in PROPERTY_FIELDS:
        values = frame[field] if field in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        if field in NUMERIC_FIELDS:
            parts[field] = pd.to_numeric(values, errors="coerce").astype("float64").round(4)
        elif field == "state":
            parts[field] = values.map(normalize_state).astype("object")
        elif field == "zip_code":
            parts[field] = normalize_zip(values)
        else:
            parts[field] = values.map(_city).astype("object")
    parts = parts.astype({f: "object" for f in ("state", "zip_code", "city")}).where(parts.notna(), None)
    hashed = pd.util.hash_pandas_object(parts, index=False)
    return pd.Series(np.asarray(hashed).astype("uint64"), index=frame.index).map("{:016x}".format).astype("object")
