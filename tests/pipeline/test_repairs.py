"""A failure between two writes (MLflow, the warehouse, the registry's verdict, the alias) leaves a state the next
run repairs: each fault is injected at its step (a database or MLflow server cannot be made to fail at one exact
call otherwise), then the next run, with nothing failing, must leave MLflow and the warehouse in agreement."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from dagster import DagsterInstance
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.settings import Settings
from mlops_assets.storage.warehouse import Warehouse, model_history
from tests.pipeline.helpers import run_batch

pytestmark = pytest.mark.slow  # trains two models through the asset graph

INGEST = [raw_listings, clean_listings, drift_report]


@pytest.fixture
def settings(tmp_path) -> Settings:
    env = {"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_SIM_MIN_ROWS": "3000", "MLOPS_SIM_MAX_ROWS": "4000",
           "MLOPS_TRAIN_TRIALS": "1"}  # fmt: skip
    return Settings.from_env(env)


def _history(settings: Settings) -> dict[int, dict]:
    frame = Warehouse(settings.database_url).read(model_history.select())
    return {int(r["model_version"]): r for r in frame.to_dict("records")}


def _lost(*_args, **_kwargs):
    raise sa.exc.OperationalError("statement", {}, Exception("server closed the connection unexpectedly"))


def _mlflow_down(*_args, **_kwargs):
    raise MlflowException("API request failed: Connection refused")


def _metadata(result, node: str) -> dict:
    [event] = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in event.metadata.items()}


def test_every_half_written_state_is_repaired_by_the_next_run(
    instance: DagsterInstance, settings: Settings, monkeypatch: pytest.MonkeyPatch
):
    registry = ModelRegistry(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias)
    assert run_batch(instance, settings, INGEST, "00001").success

    # 1. the warehouse is lost right after the version was registered
    with monkeypatch.context() as fault:
        real_upsert = Warehouse.upsert
        fault.setattr(
            Warehouse, "upsert", lambda self, t, row: _lost() if t is model_history else real_upsert(self, t, row)
        )
        assert not run_batch(instance, settings, [candidate_model], "00001", raise_on_error=False).success
    assert [str(v.version) for v in registry.versions()] == ["1"] and _history(settings) == {}

    # 2. the next training records v1; then the warehouse is lost as champion_model records v2's verdict
    with monkeypatch.context() as fault:
        fault.setattr(Warehouse, "update", _lost)
        second = run_batch(instance, settings, [candidate_model, champion_model], "00001", raise_on_error=False)
    assert not second.success
    repaired = _metadata(second, "candidate_model")["repaired"]
    assert "v1 had no model_history row" in repaired
    rows = _history(settings)
    assert rows[1]["verdict"] == "pending" and "recorded late" in rows[1]["reason"] and rows[1]["training_rows"] > 0
    assert rows[2]["verdict"] == "pending"
    assert (
        registry.alias_version() is None and "verdict" not in registry.client.get_model_version("house-price", "2").tags
    )

    # 3. MLflow fails the verdict tag after the warehouse recorded the verdict: nothing is served
    with monkeypatch.context() as fault:
        fault.setattr(ModelRegistry, "set_verdict", _mlflow_down)
        assert not run_batch(instance, settings, [champion_model], "00001", raise_on_error=False).success
    assert _history(settings)[2]["verdict"] == "promoted" and registry.alias_version() is None

    # 4. the next run undoes the verdict the registry lacks, decides again, and MLflow fails to move the alias
    with monkeypatch.context() as fault:
        fault.setattr(MlflowClient, "set_registered_model_alias", _mlflow_down)
        fourth = run_batch(instance, settings, [champion_model], "00001", raise_on_error=False)
    assert not fourth.success
    assert registry.client.get_model_version("house-price", "2").tags["verdict"] == "promoted"
    assert registry.alias_version() is None  # the old state (no champion) keeps serving

    # 5. a training process killed mid-run left its MLflow run RUNNING
    experiment = registry.client.get_experiment_by_name(settings.model_name).experiment_id
    abandoned = registry.client.create_run(experiment, tags={"dagster_run_id": fourth.run_id}).info.run_id

    # the next run, with nothing failing, repairs all of it
    fifth = run_batch(instance, settings, [champion_model], "00001")
    assert f"MLflow run {abandoned} was left RUNNING" in _metadata(fifth, "champion_model")["repaired"]
    assert registry.client.get_run(abandoned).info.status == "FAILED"
    assert registry.alias_version() == "2"
    rows = _history(settings)
    assert rows[2]["verdict"] == "promoted" and "vs naive baseline" in rows[2]["reason"]
    assert "already holds" not in rows[2]["reason"]  # the real comparison, not the re-run's
    tags = registry.client.get_model_version("house-price", "2").tags
    assert tags["verdict"] == "promoted" and tags["verdict_reason"] == rows[2]["reason"]
    # and nothing is left to repair
    quiet = run_batch(instance, settings, [champion_model], "00001")
    assert "repaired" not in _metadata(quiet, "champion_model")
