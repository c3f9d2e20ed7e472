"""Training recorded in a real MLflow server (PostgreSQL backend, artifacts on S3) and loaded back."""

from __future__ import annotations

import os
import tempfile

import numpy as np
import pytest
import xgboost as xgb

from mlops_assets.ml.predict import predict_price
from mlops_assets.ml.registry import ModelRegistry
from tests.model_factory import train_and_register

pytestmark = [pytest.mark.postgres, pytest.mark.slow]  # a real mlflow server


def test_a_registered_champion_loads_back_by_alias_with_identical_predictions(mlflow_server):
    import mlflow

    trained = train_and_register(mlflow_server, model_name="house-price-registry-test")
    registry = ModelRegistry(mlflow_server, "house-price-registry-test")
    assert registry.alias_version() == trained.version

    loaded = registry.load_alias()
    assert loaded.version == trained.version and loaded.run_id
    np.testing.assert_array_equal(
        predict_price(loaded.booster, trained.holdout_x), predict_price(trained.model.booster, trained.holdout_x)
    )
    assert loaded.feature_state == trained.state
    assert {"rmse", "mae", "r2", "mape", "cv_r2_mean", "cv_r2_std"} <= set(loaded.metrics)
    assert loaded.tags["verdict"] == "promoted"

    # the plain MLflow way: models:/name@champion, XGBoost's own format, no pickle anywhere
    with tempfile.TemporaryDirectory() as directory:
        path = mlflow.artifacts.download_artifacts("models:/house-price-registry-test@champion", dst_path=directory)
        files = set(os.listdir(path))
        assert "model.ubj" in files and not [f for f in files if f.endswith((".pkl", ".pickle"))]
        booster = xgb.Booster()
        booster.load_model(os.path.join(path, "model.ubj"))
    np.testing.assert_array_equal(
        predict_price(booster, trained.holdout_x), predict_price(trained.model.booster, trained.holdout_x)
    )

    # the run holds what a person compares versions by
    client = mlflow.MlflowClient(mlflow_server)
    artifacts = {a.path for a in client.list_artifacts(loaded.run_id)}
    assert {"feature_state.json", "holdout.json", "shap", "optuna", "feature_importance.png"} <= artifacts
    shap_files = {a.path for a in client.list_artifacts(loaded.run_id, "shap")}
    assert {"shap/mean_abs_shap.json", "shap/summary.png"} <= shap_files


def test_no_alias_yet_means_no_champion(mlflow_server):
    registry = ModelRegistry(mlflow_server, "house-price-never-trained")
    assert registry.alias_version() is None and registry.load_alias() is None
