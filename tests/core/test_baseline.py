"""The naive baseline: the training median price of the most specific place with enough listings."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.baseline import MedianPriceBaseline


def rows() -> pd.DataFrame:
    zip_a = [100_000.0, 110_000.0, 120_000.0]  # three listings in 43004
    other_city = [500_000.0, 700_000.0]
    return pd.DataFrame(
        {
            "price": [*zip_a, 300_000.0, *other_city, 2_000_000.0],
            "state": ["Ohio"] * 6 + ["California"],
            "city": ["Columbus"] * 4 + ["Dayton"] * 2 + ["Malibu"],
            "zip_code": ["43004"] * 3 + ["43005", "45402", "45403", "90265"],
        }
    )


def test_the_most_specific_place_with_enough_listings_answers():
    baseline = MedianPriceBaseline.fit(rows(), min_listings=2)
    query = pd.DataFrame(
        {
            "state": ["Ohio", "Ohio", "Ohio", "California", "Texas"],
            "city": ["Columbus", "Columbus", "Springfield", "Malibu", None],
            "zip_code": ["43004", "43005", None, "90265", None],
        }
    )
    predicted = baseline.predict(query)
    assert predicted[0] == 110_000.0  # its zip's median
    assert predicted[1] == np.median([100_000.0, 110_000.0, 120_000.0, 300_000.0])  # 43005 has 1: its city
    assert predicted[2] == np.median([100_000, 110_000, 120_000, 300_000, 500_000, 700_000])  # the state
    assert predicted[3] == rows()["price"].median()  # Malibu has 1 listing, California 1: everywhere
    assert predicted[4] == rows()["price"].median()


def test_the_baseline_is_fitted_on_the_rows_given_only():
    train = rows()
    baseline = MedianPriceBaseline.fit(train, min_listings=2)
    assert baseline.zip_median == {"43004": pytest.approx(110_000.0)}
    assert "California" not in baseline.state_median
