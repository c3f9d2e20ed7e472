from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.cleaning import Ranges, clean_listings
from mlops_assets.core.schema import (
    FINITE_REQUIRED_COLUMNS,
    NUMERIC_COLUMNS,
    RANGE_CHECKED_COLUMNS,
    RAW_COLUMNS,
    TEXT_COLUMNS,
    TEXT_WIDTHS,
    coerce_raw,
    validate_raw,
)
from mlops_assets.storage import warehouse
from tests.core.test_cleaning import listing


def test_a_valid_batch_has_no_problems_even_with_missing_values():
    batch = pd.DataFrame([listing(), listing(bed=np.nan, prev_sold_date=None)])
    assert validate_raw(batch) == []


def test_missing_columns_and_wrong_types_are_named():
    batch = pd.DataFrame([listing(price="cheap"), listing(price="12.5")]).drop(columns=["zip_code"])
    problems = [str(p) for p in validate_raw(batch)]
    assert "zip_code: column is missing" in problems
    assert any(p.startswith("price: 1 non-numeric value(s), e.g. 'cheap'") for p in problems)


def test_an_empty_batch_is_a_problem():
    assert [p.column for p in validate_raw(pd.DataFrame(columns=list(RAW_COLUMNS)))] == ["<batch>"]


def test_coerce_gives_float_numbers_and_none_for_blank_text():
    raw = coerce_raw(pd.DataFrame([listing(bed="3", city="  ", prev_sold_date=np.nan)]))
    assert list(raw.columns) == list(RAW_COLUMNS)
    assert raw["bed"].dtype == "float64" and raw.loc[0, "bed"] == 3.0
    assert raw.loc[0, "city"] is None and raw.loc[0, "prev_sold_date"] is None


def problems_of(*rows: dict) -> list[str]:
    return [str(p) for p in validate_raw(pd.DataFrame(list(rows)))]


def test_text_longer_than_its_warehouse_column_is_refused_with_column_count_and_example():
    long_status = "for_sale_" * 4  # 36 characters
    problems = problems_of(listing(status=long_status), listing(status=long_status), listing(city="x" * 129))
    assert f"status: 2 value(s) longer than 32 characters, e.g. {long_status[:40]!r}" in problems
    assert any(p.startswith("city: 1 value(s) longer than 128 characters, e.g. 'xxxx") for p in problems)
    assert any("(129 characters)" in p for p in problems)


def test_widths_count_characters_not_bytes_and_the_limit_itself_fits():
    at_limit = {column: "é" * width for column, width in TEXT_WIDTHS.items()}
    assert validate_raw(pd.DataFrame([listing(**at_limit)])) == []


@pytest.mark.parametrize("column", TEXT_COLUMNS)
@pytest.mark.parametrize("bad", ["Bos\x00ton", "a\x07b", "two\nlines", "a\x85b", "\ud800"])
def test_nul_and_control_characters_are_refused_in_every_text_column(column, bad):
    problems = problems_of(listing(), listing(**{column: bad}))
    assert problems == [
        f"{column}: 1 value(s) with control characters (NUL, line breaks...) or invalid Unicode, e.g. {bad!r}"
    ]


@pytest.mark.parametrize("column", ["brokered_by", "street", "zip_code"])
@pytest.mark.parametrize("bad", [np.inf, -np.inf, "Infinity", "-Infinity", "inf"])
def test_non_finite_identifiers_are_refused(column, bad):
    problems = problems_of(listing(), listing(**{column: bad}))
    assert problems == [f"{column}: 1 infinite value(s), e.g. {bad!r}"]


@pytest.mark.parametrize("column", RANGE_CHECKED_COLUMNS)
def test_non_finite_measurements_pass_the_schema_and_cleaning_drops_them_by_range(column):
    batch = pd.DataFrame([listing(), listing(**{column: np.inf}), listing(**{column: "-Infinity"})])
    assert validate_raw(batch) == []
    result = clean_listings(coerce_raw(batch))
    assert result.rows_out == 1
    assert result.dropped[f"{column}_out_of_range"] == 2


def test_every_numeric_column_is_either_range_checked_by_cleaning_or_must_be_finite():
    assert set(RANGE_CHECKED_COLUMNS) == {f.name for f in fields(Ranges)}
    assert sorted(RANGE_CHECKED_COLUMNS + FINITE_REQUIRED_COLUMNS) == sorted(NUMERIC_COLUMNS)


def test_the_warehouse_declares_the_widths_the_schema_checks():
    for table in (warehouse.raw_listings, warehouse.clean_listings):
        assert {c: table.c[c].type.length for c in TEXT_WIDTHS} == TEXT_WIDTHS


def test_one_declaration_gives_every_part_its_columns():
    """The warehouse tables, cleaning, the features, drift and serving's request all read LISTING_COLUMNS."""
    from typing import get_type_hints

    from pydantic import TypeAdapter

    from mlops_assets.core import cleaning, features, schema
    from mlops_assets.ml import drift
    from mlops_assets.storage.warehouse import clean_listings, raw_listings
    from serving.schemas import Property

    names = [c.name for c in schema.LISTING_COLUMNS]
    assert names == list(schema.RAW_COLUMNS) and len(names) == 12
    for table in (raw_listings, clean_listings):
        for column in schema.LISTING_COLUMNS:
            stored = table.c[column.name].type
            if column.kind == "text":
                assert stored.length == column.width, (table.name, column.name)
    assert cleaning.REQUIRED == schema.REQUIRED_COLUMNS == ("price", "bed", "bath", "house_size")
    assert set(features.INPUT_COLUMNS) == {"bed", "bath", "acre_lot", "house_size", "state", "status"}
    assert features.RANGE_COLUMNS == schema.MEASURE_COLUMNS
    assert (tuple(drift.NUMERIC), tuple(drift.CATEGORICAL)) == (schema.MONITORED_NUMERIC, schema.MONITORED_CATEGORICAL)
    request = set(get_type_hints(Property))
    assert request == set(schema.INPUT_COLUMNS + schema.LOCATION_COLUMNS + schema.IDENTITY_COLUMNS)
    required = TypeAdapter(Property).json_schema()["required"]
    assert set(required) == set(schema.MEASURE_COLUMNS) | {"state"}
