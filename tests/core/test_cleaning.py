"""Each cleaning rule, on rows built to trip exactly that rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.cleaning import (
    CLEAN_COLUMNS,
    check_clean_ranges,
    clean_listings,
    normalize_status,
    normalize_zip,
)


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
