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

from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa

from mlops_assets.core.states import normalize_state

#: The fields that identify a property, in the order hashed.
PROPERTY_FIELDS = ("brokered_by", "street", "city", "state", "zip_code", "bed", "bath", "house_size", "acre_lot")
NUMERIC_FIELDS = ("brokered_by", "street", "bed", "bath", "house_size", "acre_lot")

# A batch of a million listings holds a few dozen states, thousands of cities and zips: the normalisations
# below run once per distinct value and are spread to the rows by code, since a Python call per row cost more
# than all the rest of cleaning. They return pandas Categoricals where a hash follows: pandas hashes an
# object column by factorising it into a Categorical first, so hashing ours gives the same keys.


def _categorical(values: pd.Series, normalize: Callable[[object], str | None]) -> pd.Categorical:
    """`values.map(normalize)` as a Categorical (None: missing), `normalize` called once per distinct value.

    `normalize` must give None for anything but text: missing values (None, NaN) are not passed to it."""
    if values.dtype != object:  # categories, pandas strings, all-missing floats: mapped as pandas maps them
        return pd.Categorical(values.map(normalize).astype("object"))
    codes, distinct = pd.factorize(values.to_numpy(), sort=False)  # missing -> -1
    # the trailing None takes code -1 (missing) to -1 again; spellings normalised alike share one category
    new_codes, categories = pd.factorize(np.array([normalize(v) for v in distinct] + [None], dtype=object))
    return pd.Categorical.from_codes(new_codes[codes], categories=categories)


def _objects(categorical: pd.Categorical, index: pd.Index) -> pd.Series:
    """A Categorical as an object Series with None for missing values (what a per-value map gives)."""
    values = np.append(categorical.categories.to_numpy(dtype=object), np.array([None]))
    return pd.Series(values[categorical.codes], index=index, dtype=object)


def map_distinct(values: pd.Series, normalize: Callable[[object], str | None]) -> pd.Series:
    """`values.map(normalize)`, with `normalize` called once per distinct value (None for anything but text)."""
    if values.dtype != object:
        return values.map(normalize)
    return _objects(_categorical(values, normalize), values.index)


def _zip_categorical(values: pd.Series) -> pd.Categorical:
    numbers = pd.to_numeric(values, errors="coerce")
    valid = (numbers.notna() & (numbers >= 0) & (numbers <= 99_999) & (numbers % 1 == 0)).to_numpy(dtype=bool)
    codes = np.full(len(values), -1, dtype=np.intp)
    codes[valid], distinct = pd.factorize(numbers.iloc[np.flatnonzero(valid)].astype("int64").to_numpy())
    return pd.Categorical.from_codes(codes, categories=np.array([f"{z:05d}" for z in distinct], dtype=object))


def normalize_zip(values: pd.Series) -> pd.Series:
    """601.0, '601' and '00601' alike -> '00601'; missing or impossible codes -> None (cleaning uses it too)."""
    return _objects(_zip_categorical(values), values.index)


def _city(value: object) -> str | None:
    return " ".join(value.split()).lower() if isinstance(value, str) and value.strip() else None


_HEX_PAIRS = np.array([f"{byte:02x}" for byte in range(256)], dtype="S2")


def hex_keys(hashes: np.ndarray) -> np.ndarray:
    """`"{:016x}".format` of each uint64, as an object array of str.

    The digits come from a table (one byte, two digits) into one buffer; Arrow makes the str objects from it
    in about half the time numpy takes (formatting one by one took longer than hashing the rows)."""
    digits = _HEX_PAIRS[np.asarray(hashes, dtype=">u8").view(np.uint8).reshape(-1, 8)]
    offsets = np.arange(0, 16 * len(digits) + 1, 16, dtype=np.int64)  # 16 digits per key
    text = pa.Array.from_buffers(pa.large_string(), len(digits), [None, pa.py_buffer(offsets), pa.py_buffer(digits)])
    return text.to_numpy(zero_copy_only=False)


def property_keys(frame: pd.DataFrame) -> pd.Series:
    """A 16-hex-digit key per row from PROPERTY_FIELDS (raw or clean rows; missing fields allowed)."""
    if frame.empty:
        return pd.Series([], index=frame.index, dtype="object")
    parts: dict[str, pd.Series | pd.Categorical] = {}
    for field in PROPERTY_FIELDS:
        values = frame[field] if field in frame.columns else pd.Series([None] * len(frame), index=frame.index)
        if field in NUMERIC_FIELDS:
            parts[field] = pd.to_numeric(values, errors="coerce").astype("float64").round(4).to_numpy()
        elif field == "state":
            parts[field] = _categorical(values, normalize_state)
        elif field == "zip_code":
            parts[field] = _zip_categorical(values)
        else:
            parts[field] = _categorical(values, _city)
    hashed = pd.util.hash_pandas_object(pd.DataFrame(parts), index=False)
    return pd.Series(hex_keys(hashed.to_numpy()), index=frame.index, dtype=object)
