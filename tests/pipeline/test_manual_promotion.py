"""No champion, then a recorded manual promotion: the operator's way to serve a model the gate refused."""

from __future__ import annotations

import pytest
from dagster import DagsterInstance

from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.demo import Loop
from mlops_assets.resources import PromotionGateResource
from mlops_assets.settings import Settings
from mlops_assets.storage import queries
from mlops_assets.storage.warehouse import Warehouse
from tests.pipeline.helpers import run_batch

pytestmark = pytest.mark.slow


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            "MLOPS_HOME": str(tmp_path / "mlops"),
            "MLOPS_SIM_MIN_ROWS": "2500",
            "MLOPS_SIM_MAX_ROWS": "2500",
            "MLOPS_TRAIN_TRIALS": "1",
        }
    )


def promote(instance, settings, version: int, reason: str):
    job = Loop(instance, settings).defs.resolve_job_def("promote_manually")
    config = {"ops": {"promote_version": {"config": {"version": version, "reason": reason, "operator": "ops-alice"}}}}
    return job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)


def failure_message(result) -> str:
    [failure] = [e for e in result.all_events if e.is_step_failure]
    return failure.step_failure_data.user_failure_data.description


def test_a_rejected_candidate_can_be_promoted_by_hand_with_a_recorded_reason(instance: DagsterInstance, settings):
    impossible = PromotionGateResource(min_gain_over_baseline=0.99)  # nothing beats the baseline by 99%
    assets = [raw_listings, clean_listings, drift_report, candidate_model, champion_model]
    assert run_batch(instance, settings, assets, "00001", resources={"promotion_gate": impossible}).success
    registry = Loop(instance, settings).defs.resources["mlflow"].registry()
    assert registry.alias_version() is None
    best = registry.best_candidate()
    assert best["version"] == "1" and best["verdict"] == "rejected"
    assert best["verdict_reason"].startswith("not enough better than the naive baseline")
    assert {"r2_log", "median_ape", "rmse_log"} <= set(best["metrics"]) and "rmse_log" in best["baseline_metrics"]

    # a reason is required; an unknown version is refused; neither moves anything
    short = promote(instance, settings, 1, "ok")
    assert not short.success and "a reason of at least 10 characters" in failure_message(short)
    missing = promote(instance, settings, 7, "a perfectly good reason")
    assert not missing.success and "has no version 7" in failure_message(missing)
    assert registry.alias_version() is None

    reason = "best we have for this market; the 99% margin is a test setting"
    assert promote(instance, settings, 1, reason).success
    assert registry.alias_version() == "1"
    tags = registry.client.get_model_version(settings.model_name, "1").tags
    assert (
        tags["verdict"] == "promoted_manually" and tags["manual_reason"] == reason and tags["manual_by"] == "ops-alice"
    )
    assert "the gate had said: not enough better than the naive baseline" in tags["verdict_reason"]
    row = queries.model_row(Warehouse(settings.database_url), settings.model_name, 1)
    assert row["verdict"] == "promoted" and row["manual_by"] == "ops-alice" and row["manual_reason"] == reason
    assert row["reason"].startswith("manual promotion by ops-alice: best we have")

    again = promote(instance, settings, 1, reason)
    assert not again.success and "already holds the alias" in failure_message(again)
