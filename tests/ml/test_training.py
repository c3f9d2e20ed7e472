"""Optuna + XGBoost on a small real data set."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_assets.core.baseline import MedianPriceBaseline
from mlops_assets.core.features import fit_feature_state, fit_transform_training, to_target, transform
from mlops_assets.core.metrics import regression_metrics
from mlops_assets.core.splits import is_holdout
from mlops_assets.ml.explain import mean_abs_shap, shap_values
from mlops_assets.ml.training import TuningConfig, predict_price, tune_and_fit
from tests.model_factory import clean_rows

pytestmark = pytest.mark.slow  # Optuna searches


def test_tuning_searches_the_space_and_the_model_learns():
    data = clean_rows((1, 2), rows=4_000)
    mask = is_holdout(data["listing_id"])
    train, holdout = data[~mask], data[mask]
    state, train_x = fit_transform_training(train)
    model = tune_and_fit(train_x.to_numpy(), to_target(train["price"]), TuningConfig(n_trials=6))
    assert len(model.trials) == 6
    assert {"n_estimators", "max_depth", "learning_rate", "subsample", "colsample_bytree", "min_child_weight",
            "reg_alpha", "reg_lambda"} == set(model.params)  # fmt: skip
    assert 100 <= model.params["n_estimators"] <= 500 and 3 <= model.params["max_depth"] <= 9
    assert 0 < model.cv_r2_mean < 1 and model.cv_r2_std >= 0
    metrics = regression_metrics(holdout["price"], predict_price(model.booster, transform(holdout, state).to_numpy()))
    assert metrics["r2"] > 0.35 and metrics["rmse"] < 700_000
    # it learned more than where the listing is: well ahead of the zip / city / state median price
    baseline = regression_metrics(holdout["price"], MedianPriceBaseline.fit(train).predict(holdout))
    assert metrics["rmse_log"] < 0.8 * baseline["rmse_log"] and metrics["r2_log"] > 0.6


def test_shap_values_are_additive_in_log_space():
    data = clean_rows((1,), rows=2_000)
    state = fit_feature_state(data)
    x = transform(data, state).to_numpy()
    model = tune_and_fit(x, to_target(data["price"]), TuningConfig(n_trials=1))
    values, base = shap_values(model.booster, x[:50])
    margin = model.booster.predict(__import__("xgboost").DMatrix(x[:50], feature_names=state.feature_names))
    np.testing.assert_allclose(base + values.sum(axis=1), margin, rtol=1e-5)
    importance = mean_abs_shap(model.booster, x[:200])
    # what drives a price: the place (its price levels) and the size
    assert max(importance, key=importance.get) in {
        "house_size", "size_per_bed", "state_price_level", "city_price_level", "zip_price_level",
        "zip_price_per_sqft_level", "ppsf_price_estimate",
    }  # fmt: skip
