"""Each cleaning rule, on rows built to trip exactly that rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.cleaning import (
    CLEAN_COLUMNS,
    DEFAULT_RANGES,
    REQUIRED,
    check_clean_ranges,
    clean_listings,
    normalize_date,
    normalize_status,
    normalize_zip,
)
from mlops_assets.core.properties import property_keys
from mlops_assets.core.schema import NUMERIC_COLUMNS, RAW_COLUMNS, coerce_raw
from mlops_assets.core.states import normalize_state
from mlops_assets.sources.generator import ListingGenerator


def listing(**overrides) -> dict:
    row = {
        "brokered_by": 101.0, "status": "for_sale", "price": 350_000.0, "bed": 3.0, "bath": 2.0,
        "acre_lot": 0.25, "street": 7_001.0, "city": "Austin", "state": "Texas", "zip_code": 78701.0,
        "house_size": 1_800.0, "prev_sold_date": "2015-06-01",
    }  # fmt: skip
    row.update(overrides)
    return row


def frame(*rows: dict) -> pd.DataFrame:
    return pd.DataFrame(list(rows))


def test_a_good_listing_passes_untouched():
    result = clean_listings(frame(listing()))
    assert result.rows_out == 1
    assert list(result.frame.columns) == CLEAN_COLUMNS
    row = result.frame.iloc[0]
    assert row["price"] == 350_000 and row["state"] == "Texas" and row["zip_code"] == "78701"
    assert not row["acre_lot_missing"]
    assert sum(result.dropped.values()) == 0


@pytest.mark.parametrize("column", ["price", "bed", "bath", "house_size"])
def test_rows_missing_a_required_value_are_dropped(column):
    result = clean_listings(frame(listing(), listing(**{column: np.nan}, street=2.0)))
    assert result.rows_out == 1
    assert result.dropped["missing_required"] == 1


def test_non_numeric_text_counts_as_missing():
    result = clean_listings(frame(listing(), listing(price="n/a", street=2.0)))
    assert result.dropped["missing_required"] == 1


def test_exact_duplicates_are_dropped_once():
    result = clean_listings(frame(listing(), listing(), listing(street=9.0)))
    assert result.rows_out == 2
    assert result.dropped["duplicate"] == 1


@pytest.mark.parametrize(
    ("column", "bad", "rule"),
    [
        ("price", 1.0, "price_out_of_range"),
        ("price", 100_000_000.0, "price_out_of_range"),
        ("bed", 0.0, "bed_out_of_range"),
        ("bed", 21.0, "bed_out_of_range"),
        ("bath", 16.0, "bath_out_of_range"),
        ("house_size", 99.0, "house_size_out_of_range"),
        ("house_size", 50_001.0, "house_size_out_of_range"),
        ("acre_lot", 1_000.5, "acre_lot_out_of_range"),
        ("acre_lot", -1.0, "acre_lot_out_of_range"),
    ],
)
def test_values_outside_the_fixed_ranges_are_dropped(column, bad, rule):
    result = clean_listings(frame(listing(), listing(**{column: bad}, street=2.0)))
    assert result.rows_out == 1
    assert result.dropped[rule] == 1


def test_range_bounds_are_inclusive():
    result = clean_listings(frame(listing(price=10_000.0, bed=20.0, bath=15.0, house_size=100.0, acre_lot=0.0)))
    assert result.rows_out == 1


def test_missing_acre_lot_is_kept_and_flagged_for_imputation():
    result = clean_listings(frame(listing(acre_lot=np.nan)))
    assert result.rows_out == 1
    assert bool(result.frame.loc[0, "acre_lot_missing"])
    assert result.flagged["acre_lot_missing"] == 1


def test_state_spellings_are_normalised_and_unknown_states_dropped():
    result = clean_listings(
        frame(listing(state=" tx "), listing(state="CA", street=2.0), listing(state="Atlantis", street=3.0))
    )
    assert sorted(result.frame["state"]) == ["California", "Texas"]
    assert result.dropped["unknown_state"] == 1


def test_status_spellings_are_normalised_and_unknown_dropped():
    assert normalize_status("For Sale") == "for_sale"
    assert normalize_status("ready-to-build") == "ready_to_build"
    assert normalize_status("auction") is None
    result = clean_listings(frame(listing(status="SOLD"), listing(status="auction", street=2.0)))
    assert list(result.frame["status"]) == ["sold"]
    assert result.dropped["unknown_status"] == 1


def test_zip_codes_become_five_digit_strings():
    zips = normalize_zip(pd.Series([601.0, 78701.0, np.nan, 123456.0, 12.5]))
    assert list(zips) == ["00601", "78701", None, None, None]


def test_dates_are_kept_as_iso_text_and_garbage_becomes_missing():
    result = clean_listings(
        frame(
            listing(),
            listing(prev_sold_date="yesterday", street=2.0),
            listing(prev_sold_date=None, street=3.0),
        )
    )
    assert list(result.frame["prev_sold_date"]) == ["2015-06-01", None, None]


def test_listing_id_is_stable_and_differs_per_listing():
    a = clean_listings(frame(listing(), listing(street=2.0))).frame["listing_id"]
    b = clean_listings(frame(listing(street=2.0), listing())).frame["listing_id"]
    assert a.iloc[0] == b.iloc[1] and a.iloc[1] == b.iloc[0]
    assert a.iloc[0] != a.iloc[1]


def test_dropped_counts_add_up():
    rows = [listing(street=float(i)) for i in range(10)] + [
        listing(price=np.nan),
        listing(bed=99.0),
        listing(street=0.0),
    ]
    result = clean_listings(frame(*rows))
    assert result.rows_in - result.rows_out == sum(result.dropped.values()) == 3


def test_the_contract_check_accepts_clean_data_and_names_violations():
    clean = clean_listings(frame(listing(), listing(street=2.0))).frame
    assert check_clean_ranges(clean) == []
    broken = clean.copy()
    broken.loc[0, "bed"] = 40
    broken.loc[1, "listing_id"] = broken.loc[0, "listing_id"]
    problems = check_clean_ranges(broken)
    assert any(p.startswith("bed:") for p in problems)
    assert any(p.startswith("listing_id:") for p in problems)


# --- the whole cleaning against the rule-by-rule reference it replaced ---------------------------------------------


def reference_clean(raw: pd.DataFrame, ranges=DEFAULT_RANGES) -> tuple[pd.DataFrame, dict[str, int]]:
    """Cleaning as first written: per-value maps, and a copy of the frame after every rule."""
    frame = raw[list(RAW_COLUMNS)].copy()
    dropped = {}

    def drop(rule, mask):
        nonlocal frame
        dropped[rule] = int(mask.sum())
        frame = frame.loc[~mask].copy()

    for column in NUMERIC_COLUMNS:
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    frame["listing_id"] = [f"{h:016x}" for h in pd.util.hash_pandas_object(frame[list(RAW_COLUMNS)], index=False)]
    drop("missing_required", frame[list(REQUIRED)].isna().any(axis=1))
    frame["state"] = frame["state"].map(normalize_state)
    drop("unknown_state", frame["state"].isna())
    frame["status"] = frame["status"].map(normalize_status)
    drop("unknown_status", frame["status"].isna())
    for column in REQUIRED:
        low, high = getattr(ranges, column)
        drop(f"{column}_out_of_range", ~frame[column].between(low, high))
    low, high = ranges.acre_lot
    drop("acre_lot_out_of_range", frame["acre_lot"].notna() & ~frame["acre_lot"].between(low, high))
    drop("duplicate", frame.duplicated(subset=["listing_id"], keep="first"))
    frame["acre_lot_missing"] = frame["acre_lot"].isna()
    frame["zip_code"] = [
        None if pd.isna(z) or not 0 <= z <= 99_999 or z % 1 else f"{int(z):05d}" for z in frame["zip_code"]
    ]
    parsed = pd.to_datetime(frame["prev_sold_date"], errors="coerce", format="%Y-%m-%d")
    frame["prev_sold_date"] = parsed.dt.strftime("%Y-%m-%d").astype("object").where(parsed.notna(), None)
    frame["city"] = frame["city"].map(lambda v: " ".join(v.split()) if isinstance(v, str) else None)
    frame["property_key"] = property_keys(frame)
    return frame[CLEAN_COLUMNS].reset_index(drop=True), dropped


def messy_raw(rows: int, seed: int) -> pd.DataFrame:
    """Generator rows with odd spellings, zips as text, bad numbers and dates, duplicates and a shuffled index."""
    rng = np.random.default_rng(seed)
    raw = coerce_raw(ListingGenerator(seed=seed, batches=1, min_rows=rows, max_rows=rows).batch(1)).astype(object)

    def spoil(column: str, share: float, values: list) -> None:
        hit = rng.random(len(raw)) < share
        raw.loc[hit, column] = pd.Series(
            [values[i] for i in rng.integers(0, len(values), hit.sum())], dtype=object
        ).values

    spoil("state", 0.3, [" tx", "TEXAS", "new  york", "washington dc", "Nowhere", "", None, np.nan, 5, "gu", "N.Y."])
    spoil("status", 0.2, ["For Sale", " SOLD ", "ready-to-build", "forsale", "pending", None, 3, "for  sale"])
    spoil("city", 0.2, [" Austin ", "new   york", "", "  ", None, 42, "San\tJose"])
    spoil("zip_code", 0.3, ["601", " 601 ", "601.0", -1.0, 100000.0, 12.5, "abc", None, np.inf, "", True])
    spoil("prev_sold_date", 0.1, ["2015-6-1", "not a date", None, "2020-02-30", 20150601])
    for column in ("bed", "bath", "price", "house_size", "acre_lot", "street"):
        spoil(column, 0.03, ["n/a", "3", " 4 ", None, np.inf, "", 2.5])
    raw = pd.concat([raw, raw.iloc[rng.integers(0, len(raw), len(raw) // 20)]])
    return raw.set_axis(rng.permutation(len(raw)) % (len(raw) // 2))  # shuffled, with repeated labels


@pytest.mark.parametrize("seed", [1, 2])
def test_cleaning_equals_the_rule_by_rule_reference_on_messy_rows(seed):
    raw = messy_raw(3_000, seed)
    expected, dropped = reference_clean(raw)
    result = clean_listings(raw)
    assert result.dropped == dropped and result.rows_in == len(raw)
    pd.testing.assert_frame_equal(result.frame, expected, check_exact=True)
    for column in ("status", "state", "city", "zip_code", "prev_sold_date", "listing_id", "property_key"):
        assert [type(v) for v in result.frame[column]] == [type(v) for v in expected[column]], column
    generated = coerce_raw(ListingGenerator(seed=seed, batches=1, min_rows=2_000, max_rows=2_000).batch(1))
    expected, dropped = reference_clean(generated)
    result = clean_listings(generated)
    assert result.dropped == dropped
    pd.testing.assert_frame_equal(result.frame, expected, check_exact=True)


def test_dates_parse_once_per_distinct_value_as_the_whole_column_would():
    values = pd.Series(["2015-06-01", "2015-6-1", "x", None, np.nan, "2020-02-30", "2015-06-01", ""] * 3, dtype=object)
    parsed = pd.to_datetime(values, errors="coerce", format="%Y-%m-%d")
    assert normalize_date(values).tolist() == parsed.dt.strftime("%Y-%m-%d").where(parsed.notna(), None).tolist()
    mixed = pd.Series(["2015-06-01", 20150601, True, 1, None], dtype=object)  # not text: the whole-column path
    parsed = pd.to_datetime(mixed, errors="coerce", format="%Y-%m-%d")
    assert (
        normalize_date(mixed).tolist()
        == parsed.dt.strftime("%Y-%m-%d").astype(object).where(parsed.notna(), None).tolist()
    )
