"""Metrics, the holdout split, the dollar allocation of SHAP values, and the change phrases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.data_changes import describe_changes, mix_change, numeric_change
from mlops_assets.core.explanations import allocate_dollars
from mlops_assets.core.metrics import regression_metrics
from mlops_assets.core.splits import digest, is_holdout


def test_regression_metrics_in_dollars():
    m = regression_metrics(np.array([100.0, 200.0, 300.0]), np.array([110.0, 190.0, 330.0]))
    assert m["rmse"] == pytest.approx(np.sqrt((100 + 100 + 900) / 3))
    assert m["mae"] == pytest.approx(50 / 3)
    assert m["r2"] == pytest.approx(1 - 1100 / 20_000)
    assert m["mape"] == pytest.approx((0.1 + 0.05 + 0.1) / 3)


def test_regression_metrics_on_the_log_scale():
    y_true = np.array([100_000.0, 200_000.0, 10_000_000.0])
    y_pred = np.array([110_000.0, 180_000.0, 5_000_000.0])
    m = regression_metrics(y_true, y_pred)
    log_true, log_pred = np.log1p(y_true), np.log1p(y_pred)
    assert m["rmse_log"] == pytest.approx(np.sqrt(np.mean((log_pred - log_true) ** 2)))
    total = np.sum((log_true - log_true.mean()) ** 2)
    assert m["r2_log"] == pytest.approx(1 - np.sum((log_pred - log_true) ** 2) / total)
    assert m["median_ape"] == pytest.approx(0.1)  # of 10%, 10% and 50%
    # one luxury listing halves the dollar R2 but barely moves the log-scale one
    assert m["r2"] < 0.8 < m["r2_log"]


def test_holdout_is_stable_per_listing_and_near_the_fraction():
    ids = pd.Series([f"{i:016x}" for i in np.random.default_rng(0).integers(0, 2**62, 20_000)])
    mask = is_holdout(ids, 0.2)
    assert 0.18 < mask.mean() < 0.22
    # the same listing is in the holdout whatever else is in the data set, and in any order
    np.testing.assert_array_equal(is_holdout(ids[:500], 0.2), mask[:500])
    np.testing.assert_array_equal(is_holdout(ids[::-1], 0.2), mask[::-1])
    with pytest.raises(ValueError):
        is_holdout(ids, 1.5)


def test_digest_ignores_order_and_sees_membership():
    assert digest(["a", "b"]) == digest(["b", "a"]) != digest(["a", "c"])


@pytest.mark.parametrize("shap", [[0.3, -0.1, 0.05], [0.0, 0.0, 0.0], [0.2, -0.2, 0.0], [-1.2, 0.4, 0.1]])
def test_dollar_contributions_sum_exactly_to_price_minus_base(shap):
    base_value = np.log1p(400_000.0)
    base_price, price, usd = allocate_dollars(base_value, np.array(shap))
    assert base_price == pytest.approx(400_000.0)
    assert price == pytest.approx(np.expm1(base_value + sum(shap)))
    assert usd.sum() == pytest.approx(price - base_price, abs=1e-6)
    # each feature's dollars have the sign of its log-space push
    assert all(np.sign(u) == np.sign(s) or s == 0 for u, s in zip(usd, shap, strict=True))


def test_numeric_change_uses_the_median_for_sizes_and_the_mean_for_counts():
    assert numeric_change(pd.Series([1000.0, 2000.0, 3000.0]), pd.Series([2400.0, 2440.0, 2500.0]), "house_size") == (
        "median house_size +22% (2,000 -> 2,440)"
    )
    assert (
        numeric_change(pd.Series([3.0, 3.0, 4.0]), pd.Series([3.0, 4.0, 4.0]), "bed") == "mean bed +10% (3.33 -> 3.67)"
    )


def test_mix_change_names_the_categories_that_moved_most():
    before = pd.Series(["New York"] * 8 + ["Texas"] * 0 + ["Ohio"] * 2)
    after = pd.Series(["Texas"] * 4 + ["New York"] * 4 + ["Ohio"] * 2)
    assert mix_change(before, after, "state", top=2) == "state mix: New York 80% -> 40%, Texas 0% -> 40%"


def test_describe_changes_gives_one_phrase_per_column():
    frame = pd.DataFrame({"price": [1.0, 2.0], "state": ["Ohio", "Utah"]})
    assert len(describe_changes(frame, frame, ["price"], ["state"])) == 2
