from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.core.schema import RAW_COLUMNS, coerce_raw, validate_raw
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
