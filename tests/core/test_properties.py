"""The property key, and the generator's later sales of earlier listings."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.core.cleaning import clean_listings
from mlops_assets.core.properties import property_keys
from mlops_assets.core.schema import coerce_raw
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
