"""The property key, and the generator's later sales of earlier listings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.core.cleaning import clean_listings
from mlops_assets.core.properties import (
    NUMERIC_FIELDS,
    PROPERTY_FIELDS,
    _city,
    hex_keys,
    map_distinct,
    normalize_zip,
    property_keys,
)
from mlops_assets.core.schema import coerce_raw
from mlops_assets.core.states import STATE_NAMES, normalize_state
from mlops_assets.sources.generator import MAX_SALE_LAG, ListingGenerator

HOUSE = {"brokered_by": 101.0, "status": "for_sale", "price": 500_000.0, "bed": 3.0, "bath": 2.0, "acre_lot": 0.2,
         "street": 77.0, "city": "Salem", "state": "Oregon", "zip_code": 97301.0, "house_size": 1_800.0,
         "prev_sold_date": "2015-04-01"}  # fmt: skip


def test_the_key_survives_status_price_date_and_spelling_but_not_the_property():
    listed = pd.DataFrame([HOUSE])
    sold = pd.DataFrame([HOUSE | {"status": "sold", "price": 480_000.0, "prev_sold_date": None,
                                  "state": "OR", "city": " salem ", "zip_code": "97301"}])  # fmt: skip
    bigger = pd.DataFrame([HOUSE | {"house_size": 2_400.0}])
    other_broker = pd.DataFrame([HOUSE | {"brokered_by": 102.0}])
    key = property_keys(listed)[0]
    assert property_keys(sold)[0] == key
    assert property_keys(bigger)[0] != key and property_keys(other_broker)[0] != key


def test_raw_and_clean_copies_of_a_row_have_the_same_key():
    raw = coerce_raw(ListingGenerator(seed=3, batches=1, min_rows=500, max_rows=500).batch(1))
    clean = clean_listings(raw).frame
    raw_keys = set(property_keys(raw))
    assert clean["property_key"].notna().all()
    assert set(clean["property_key"]) <= raw_keys


def test_part_of_the_listings_sell_in_a_later_batch_as_the_same_property():
    generator = ListingGenerator(seed=7, batches=8, min_rows=2_000, max_rows=3_000)
    batches = {k: generator.batch(k) for k in range(1, 9)}
    listed = {k: b[b["status"] == "for_sale"] for k, b in batches.items()}
    sold_later = 0
    for k in range(1, 9):
        keys = set(property_keys(listed[k].drop_duplicates()))
        later = [set(property_keys(batches[j][batches[j]["status"] == "sold"])) for j in range(k + 1, 9)]
        sold_later += len(keys & set().union(*later)) if later else 0
        lags = [j - k for j in range(k + 1, 9) if keys & later[j - k - 1]]
        assert all(1 <= lag <= MAX_SALE_LAG for lag in lags)
    # the first batches have the whole window to sell in: 20-40% of their listings do
    first = set(property_keys(listed[1].drop_duplicates()))
    sold_by_5 = set().union(*(set(property_keys(batches[j][batches[j]["status"] == "sold"])) for j in range(2, 6)))
    assert 0.2 <= len(first & sold_by_5) / len(first) <= 0.4
    assert sold_later > 0


def test_a_sale_keeps_the_property_and_sells_near_the_list_price():
    generator = ListingGenerator(seed=7, batches=4, min_rows=2_000, max_rows=2_000)
    first, later = generator.batch(1), pd.concat([generator.batch(k) for k in (2, 3, 4)])
    listed = first[first["status"] == "for_sale"].drop_duplicates().assign(key=lambda f: property_keys(f))
    sold = later[later["status"] == "sold"].assign(key=lambda f: property_keys(f))
    pairs = listed.merge(sold, on="key", suffixes=("_list", "_sale"))
    assert len(pairs) > 100
    for column in ("brokered_by", "street", "city", "state", "zip_code", "house_size"):
        same = (pairs[f"{column}_list"] == pairs[f"{column}_sale"]) | pairs[f"{column}_list"].isna()
        assert same.all(), column
    ratio = pairs["price_sale"] / pairs["price_list"]
    assert 0.95 < float(np.median(ratio)) < 1.02 and ratio.between(0.7, 1.3).all()


def test_batches_stay_deterministic_and_a_zero_sale_rate_adds_nothing():
    a, b = ListingGenerator(seed=5, batches=3).batch(3), ListingGenerator(seed=5, batches=3).batch(3)
    pd.testing.assert_frame_equal(a, b)
    none = ListingGenerator(seed=5, batches=3, sale_rate=0.0).batch(3)
    assert len(none) < len(a)


# --- the vectorised normalisations against a plain per-value reference ------------------------------------------

TRICKY_STATES = [" tx", "TX", "Texas ", "texas", "new  york", "NEW YORK", "Washington DC", "us virgin islands",
                 "Nowhere", "", "  ", None, np.nan, 5, True, 1.0, "dc", "N.Y.", "ny\t", "Puerto\nRico", "Guam", "gu",
                 "A\u00a0B", "Texas"]  # fmt: skip
TRICKY_ZIPS = [601.0, "601", "00601", " 601 ", "601.0", "6.01e2", -1.0, 100000.0, 99999.0, 0.0, -0.0, "0", 12.5,
               "12.5", "abc", None, np.nan, np.inf, -np.inf, "inf", 78701, "78701-1234", "", True, 1e20,
               "  "]  # fmt: skip
TRICKY_CITIES = [
    " Austin ",
    "austin",
    "new   york",
    "",
    "  ",
    None,
    np.nan,
    "San\tJose",
    42,
    "Ünïcode  CITY",
    "A\u00a0B",
]


def reference_zip(value: object) -> str | None:
    """What normalize_zip promises, one value at a time."""
    number = pd.to_numeric(pd.Series([value], dtype=object), errors="coerce").iloc[0]
    if pd.isna(number) or not 0 <= number <= 99_999 or number % 1 != 0:
        return None
    return f"{int(number):05d}"


def reference_keys(frame: pd.DataFrame) -> list[str]:
    """The property key computed row by row: each part normalised by a per-value function, hashed as one frame."""
    parts = pd.DataFrame(index=range(len(frame)))
    for field in PROPERTY_FIELDS:
        values = frame[field].tolist() if field in frame.columns else [None] * len(frame)
        if field in NUMERIC_FIELDS:
            parts[field] = pd.to_numeric(pd.Series(values, dtype=object), errors="coerce").astype("float64").round(4)
        elif field == "state":
            parts[field] = pd.Series([normalize_state(v) for v in values], dtype=object)
        elif field == "zip_code":
            parts[field] = pd.Series([reference_zip(v) for v in values], dtype=object)
        else:
            parts[field] = pd.Series([_city(v) for v in values], dtype=object)
    return [f"{h:016x}" for h in pd.util.hash_pandas_object(parts, index=False)]


def tricky_frame(rows: int = 600, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)

    def pick(values: list) -> list:
        return [values[i] for i in rng.integers(0, len(values), rows)]

    return pd.DataFrame(
        {
            "brokered_by": pick([101.0, 101.00001, np.nan, 7.0, "7", "x"]), "street": pick([77.0, 77.00004, None]),
            "city": pick(TRICKY_CITIES), "state": pick(TRICKY_STATES), "zip_code": pick(TRICKY_ZIPS),
            "bed": pick([3.0, np.nan, "3"]), "bath": pick([2.0, 2.5]), "house_size": pick([1_800.0, np.nan]),
            "acre_lot": pick([0.2, 0.123456, np.nan]),
        },
        index=rng.permutation(rows) * 3,
    )  # fmt: skip


def test_map_distinct_equals_a_per_value_map_on_tricky_spellings():
    for values, normalize in ((TRICKY_STATES, normalize_state), (TRICKY_CITIES, _city)):
        series = pd.Series(values * 3, index=np.arange(len(values) * 3)[::-1], dtype=object)
        got = map_distinct(series, normalize)
        assert got.index.equals(series.index) and got.dtype == object
        assert got.tolist() == [normalize(v) for v in series]
    assert map_distinct(pd.Series([], dtype=object), normalize_state).tolist() == []
    # every canonical name is its own normal form: keying a clean row renormalises nothing
    assert all(normalize_state(name) == name for name in STATE_NAMES)


def test_normalize_zip_equals_a_per_value_reference():
    series = pd.Series(TRICKY_ZIPS * 2, dtype=object)
    assert normalize_zip(series).tolist() == [reference_zip(v) for v in series]
    floats = pd.Series([601.0, np.nan, 99_999.0, 100_000.0, -0.0, 12.5, np.inf])
    assert normalize_zip(floats).tolist() == [reference_zip(v) for v in floats]
    assert normalize_zip(pd.Series([601, 78701])).tolist() == ["00601", "78701"]


def test_property_keys_equal_a_per_value_reference_on_tricky_rows():
    frame = tricky_frame()
    keys = property_keys(frame)
    assert keys.index.equals(frame.index) and keys.dtype == object
    assert keys.tolist() == reference_keys(frame)
    partial = frame[["street", "city", "state"]]  # missing fields hash as missing
    assert property_keys(partial).tolist() == reference_keys(partial)


def test_hex_keys_equal_python_formatting():
    hashes = np.array([0, 1, 0xABCDEF, 2**63, 2**64 - 1, 0x0123456789ABCDEF], dtype=np.uint64)
    assert hex_keys(hashes).tolist() == [f"{h:016x}" for h in hashes.tolist()]
    assert hex_keys(np.array([], dtype=np.uint64)).tolist() == []
