"""The one settings object: every variable declared once, documented in the README, checked on read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from dashboard.config import DashboardConfig
from mlops_assets.settings import Settings, variables_table
from serving.config import ServingConfig

ROOT = Path(__file__).resolve().parents[2]
PRODUCT = ("mlops_assets", "serving", "dashboard")


def declared() -> set[str]:
    return {name for field in Settings.model_fields.values() for name in field.json_schema_extra["env"]}


def test_the_readme_table_is_the_settings_class():
    readme = (ROOT / "README.md").read_text()
    table = readme.split("<!-- settings-table:start -->\n", 1)[1].split("\n<!-- settings-table:end -->", 1)[0]
    assert table == variables_table()


def test_every_variable_the_product_names_is_declared_in_the_settings():
    named = set()
    for package in PRODUCT:
        for path in (ROOT / package).rglob("*.py"):
            named |= set(re.findall(r"\bMLOPS_[A-Z_]+[A-Z]\b", path.read_text()))
    assert named and named <= declared(), sorted(named - declared())


def test_an_explicit_mapping_is_read_alone(monkeypatch, tmp_path):
    monkeypatch.setenv("MLOPS_MODEL_NAME", "from-the-process")
    assert Settings.from_env({}).model_name == "house-price"
    assert Settings.from_env().model_name == "from-the-process"
    settings = Settings.from_env({"MLOPS_HOME": str(tmp_path), "MLOPS_STORAGE_URL": "s3://bucket/prefix/"})
    assert settings.database_url == f"sqlite:///{tmp_path / 'warehouse.db'}"
    assert settings.storage_url == "s3://bucket/prefix"
    assert settings.mlflow_artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert Settings.from_env({"MLFLOW_TRACKING_URI": "http://mlflow:5000"}).mlflow_artifact_location is None


@pytest.mark.parametrize(
    ("variable", "value", "reason"),
    [
        ("MLOPS_TRAIN_TRIALS", "ten", "valid integer"),
        ("MLOPS_TRAIN_TRIALS", "0", "greater than or equal to 1"),
        ("MLOPS_PROMOTION_GATE", "lenient", "'relative' or 'absolute'"),
        ("MLOPS_SERVING_POLL_SECONDS", "0.01", "greater than or equal to 0.1"),
        ("MLOPS_INFERENCE_LOG", "maybe", "valid boolean"),
    ],
)
def test_a_bad_value_names_the_variable_and_the_reason(variable, value, reason):
    with pytest.raises(ValidationError) as error:
        Settings.from_env({variable: value})
    assert variable in str(error.value) and reason in str(error.value)


def test_choices_and_flags_read_as_people_write_them():
    settings = Settings.from_env({"MLOPS_PROMOTION_GATE": " Absolute ", "MLOPS_SERVING_ACCESS_LOG": "yes"})
    assert settings.gate_mode == "absolute" and settings.serving_access_log is True
    assert Settings.from_env({"MLOPS_TRAIN_TRIALS": ""}).train_trials == 15  # blank is unset


def test_tokens_stay_out_of_the_settings_repr():
    settings = Settings.from_env({"MLOPS_ADMIN_TOKEN": "s3cret-admin", "MLOPS_READ_TOKEN": "s3cret-read"})
    assert settings.admin_token == "s3cret-admin" and "s3cret" not in repr(settings)


def test_serving_and_the_viewer_take_their_part():
    env = {"MLOPS_SERVING_WORKERS": "3", "MLOPS_SERVING_URL": "http://serving:3000/", "MLOPS_DASHBOARD_TIMEOUT": "5"}
    serving, viewer = ServingConfig.from_env(env), DashboardConfig.from_env(env)
    assert serving.workers == 3 and serving.settings == viewer.settings
    assert viewer.serving_url == "http://serving:3000" and viewer.api_docs_url == "http://serving:3000/"
    assert viewer.timeout_s == 5.0
