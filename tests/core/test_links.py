"""The one builder of links between the tools, and the readable-number helpers of the metadata."""

from __future__ import annotations

import math

from mlops_assets.assets.checks import candidate_quality
from mlops_assets.core import display
from mlops_assets.core.links import Links
from mlops_assets.resources import MlflowResource
from mlops_assets.settings import Settings


def test_links_use_the_settings_or_the_local_defaults():
    local = Links.from_settings(Settings.from_env({}))
    assert (local.dagster, local.mlflow, local.viewer) == (
        "http://127.0.0.1:3001",
        "http://127.0.0.1:5000",
        "http://127.0.0.1:8501",
    )
    links = Links.from_settings(
        Settings.from_env(
            {
                "MLOPS_DAGSTER_URL": "https://d.example/",
                "MLOPS_MLFLOW_URL": "https://m.example",
                "MLOPS_VIEWER_URL": "https://v.example/",
            }
        )
    )
    assert links.dagster_run("abc") == "https://d.example/runs/abc"
    assert links.dagster_partition("drift_report", "00003") == (
        "https://d.example/assets/drift_report?view=partitions&partition=00003"
    )
    assert links.mlflow_run("r1") == "https://m.example/#/runs/r1"
    assert links.mlflow_version("house price", 6) == "https://m.example/#/models/house%20price/versions/6"
    assert links.drift_report("00007-vs-v6") == "https://v.example/drift?report=00007-vs-v6"
    assert links.model_diff(7, 6) == "https://v.example/model_diff?new=7&old=6"


def test_the_mlflow_resource_links_to_the_tracking_server_when_no_ui_url_is_set():
    server = MlflowResource(tracking_uri="http://mlflow:5000/")
    assert server.links().mlflow_run("r") == "http://mlflow:5000/#/runs/r"
    local = MlflowResource(tracking_uri="sqlite:///x.db", ui_url="http://ui:5000")
    assert local.links().mlflow_run("r") == "http://ui:5000/#/runs/r"


def test_metadata_numbers_are_rounded_tables():
    assert display.number(0.123456789) == "0.123" and display.number(1234.5678) == "1,235" and display.number(7) == "7"
    params = display.key_values({"learning_rate": 0.0312345678901, "max_depth": 6, "space": {"a": 0.5}})
    assert "| learning_rate | 0.0312 |" in params and "| max_depth | 6 |" in params and "a 0.5" in params
    shap = display.importance({"state_price_level": 0.3, "bed": 0.1}, "mean |SHAP| (log price)")
    assert shap.splitlines()[2] == "| state_price_level | 0.3 | 75.0% |"
    scores = display.drift_scores(
        {
            "price": {"score": 0.0412345, "threshold": 0.1, "method": "wasserstein", "drifted": False},
            "state": {"score": 0.31, "threshold": 0.1, "method": "jensenshannon", "drifted": True},
        }
    )
    assert scores.splitlines()[2] == "| state | jensenshannon | 0.310 | 0.100 | **yes** |"
    assert "| price | wasserstein | 0.041 | 0.100 | no |" in scores


def test_candidate_quality_passes_a_real_model_and_fails_a_broken_one():
    assert candidate_quality({"r2_log": 0.8, "rmse": 1e5}).passed
    constant = candidate_quality({"r2_log": -0.01, "rmse": 3e5})
    assert not constant.passed and "no better than the mean" in (constant.description or "")
    broken = candidate_quality({"r2_log": math.nan, "rmse": math.inf})
    assert not broken.passed and "RMSE is inf" in (broken.description or "")
