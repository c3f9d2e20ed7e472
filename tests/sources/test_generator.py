"""The built-in generator looks like the realtor file where the pipeline cares."""

from __future__ import annotations

import pandas as pd
import pytest

from mlops_assets.core.cleaning import clean_listings
from mlops_assets.core.schema import RAW_COLUMNS, coerce_raw, validate_raw
from mlops_assets.core.states import STATE_NAMES
from mlops_assets.sources.generator import ListingGenerator


@pytest.fixture(scope="module")
def generator() -> ListingGenerator:
    return ListingGenerator(seed=7, batches=8, min_rows=20_000, max_rows=20_000)


@pytest.fixture(scope="module")
def first(generator) -> pd.DataFrame:
    return generator.batch(1)


def test_batches_are_deterministic_and_distinct(generator, first):
    pd.testing.assert_frame_equal(first, generator.batch(1))
    assert not first.equals(generator.batch(2))


def test_columns_and_real_types(first):
    assert list(first.columns) == list(RAW_COLUMNS)
    assert validate_raw(first) == []
    for column in ("brokered_by", "street", "zip_code", "price", "bed", "bath", "house_size", "acre_lot"):
        assert first[column].dtype == "float64", column
    assert first["prev_sold_date"].dropna().str.fullmatch(r"\d{4}-\d{2}-\d{2}").all()
    assert set(first["status"]) <= {"for_sale", "ready_to_build", "sold"}
    assert set(first["state"]) <= set(STATE_NAMES)


def test_missing_values_near_the_real_rates(first):
    rates = first.isna().mean()
    expected = {"bed": 0.22, "bath": 0.23, "house_size": 0.26, "acre_lot": 0.15}
    for column, rate in expected.items():
        assert abs(rates[column] - rate) < 0.025, (column, rates[column])
    assert rates["prev_sold_date"] > 0.5
    assert 0 < rates["price"] < 0.001 * 3


def test_prices_are_heavy_tailed_with_absurd_values(generator):
    prices = pd.concat([generator.batch(k) for k in (1, 2, 3)])["price"].dropna()
    assert 150_000 < prices.median() < 900_000
    assert prices.quantile(0.99) > 1_500_000
    assert prices.min() < 100 and prices.max() >= 100_000_000


def test_sizes_are_correlated_with_rooms(first):
    rows = first.dropna(subset=["bed", "house_size"])
    assert rows["bed"].corr(rows["house_size"]) > 0.5


def test_exact_duplicates_are_present(first):
    assert first.duplicated().sum() > 0


def test_zip_codes_are_numeric_with_leading_zeros_lost(generator):
    frames = pd.concat([generator.batch(k) for k in (1, 2)])
    pr = frames[frames["state"] == "Puerto Rico"]["zip_code"].dropna()
    assert (pr < 1000).all() and len(pr) > 0


def test_the_sequence_drifts_with_at_least_one_quiet_step(generator):
    clean = [clean_listings(coerce_raw(generator.batch(k))).frame for k in range(1, 6)]
    top_state = [c["state"].value_counts(normalize=True).idxmax() for c in clean]
    median_size = [c["house_size"].median() for c in clean]
    # batches 1 and 2 come from the same market
    assert top_state[0] == top_state[1]
    assert abs(median_size[1] / median_size[0] - 1) < 0.03
    # later batches move to other regions with larger houses and higher prices
    assert top_state[2] != top_state[0]
    assert median_size[2] / median_size[0] > 1.1
    assert clean[4]["price"].median() > 1.3 * clean[0]["price"].median()


def test_the_sequence_ends(generator):
    assert generator.batch(8) is not None
    assert generator.batch(9) is None and generator.batch(0) is None


def test_location_matters_within_a_state_like_in_the_real_file(generator):
    clean = pd.concat([clean_listings(coerce_raw(generator.batch(k))).frame for k in (1, 2)])
    new_york = clean[clean["state"] == "New York"]
    zip_medians = new_york.groupby("zip_code")["price"].median()
    zip_medians = zip_medians[new_york.groupby("zip_code").size() >= 30]
    # zips of one state differ by far more than sampling noise: a factor of 2+ between the 10th and 90th
    assert zip_medians.quantile(0.9) / zip_medians.quantile(0.1) > 2.0
    # a zip code is one place: always the same city, in every batch
    assert (clean.groupby("zip_code")["city"].nunique() <= 1).all()
    # the luxury tail sits in a few zips: the top 1% of prices come from a small share of the zips
    top = clean[clean["price"] >= clean["price"].quantile(0.99)]
    top_zips = top["zip_code"].value_counts(normalize=True)
    assert top_zips.head(max(1, int(0.05 * clean["zip_code"].nunique()))).sum() > 0.4


def test_city_names_recur_across_states(generator):
    clean = clean_listings(coerce_raw(generator.batch(6))).frame  # the national mix
    states_per_city = clean.groupby("city")["state"].nunique()
    assert (states_per_city > 1).any()
