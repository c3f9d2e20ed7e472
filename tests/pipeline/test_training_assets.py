"""drift_report -> candidate_model -> champion_model in process, on the embedded default."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from dagster import DagsterInstance

from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.demo import Loop
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.resources import PromotionGateResource, ServingResource
from mlops_assets.sensors import drift_sensor, ingestion_sensor
from mlops_assets.settings import Settings
from mlops_assets.storage.warehouse import Warehouse, drift_reports, model_history
from tests.conftest import ServerThread
from tests.pipeline.helpers import run_batch

pytestmark = pytest.mark.slow  # trains several models through the asset graph

INGEST = [raw_listings, clean_listings, drift_report]
TRAIN = [candidate_model, champion_model]


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            "MLOPS_HOME": str(tmp_path / "mlops"),
            "MLOPS_SIM_MIN_ROWS": "3000",
            "MLOPS_SIM_MAX_ROWS": "4000",
            "MLOPS_TRAIN_TRIALS": "1",
        }
    )


def history(settings: Settings) -> list[dict]:
    frame = Warehouse(settings.database_url).read(model_history.select().order_by(model_history.c.model_version))
    return frame.to_dict("records")


def reports(settings: Settings) -> list[dict]:
    frame = Warehouse(settings.database_url).read(drift_reports.select().order_by(drift_reports.c.batch_id))
    return frame.to_dict("records")


def registry(settings: Settings) -> ModelRegistry:
    return ModelRegistry(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias)


def materialized(result, node: str) -> dict:
    events = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in events[0].metadata.items()} if events else {}


def test_the_loop_trains_on_drift_skips_without_and_keeps_every_model(instance: DagsterInstance, settings):
    loop = Loop(instance, settings)
    outcomes = []
    for _ in range(3):
        [ingest], _ = loop.tick(ingestion_sensor)
        assert loop.execute("ingest_job", ingest).success
        trains, _ = loop.tick(drift_sensor)
        for request in trains:
            assert loop.execute("train_job", request).success
        outcomes.append(len(trains))
    assert outcomes == [1, 0, 1]  # baseline, no drift, drift

    decided = reports(settings)
    assert [r["decision"] for r in decided] == [
        "train: baseline (no champion yet)",
        "skip: no drift",
        "train: drift detected",
    ]
    assert decided[1]["drift_detected"] is False or decided[1]["drift_detected"] == 0
    assert "state" in decided[2]["drifted_columns"] and "state mix:" in decided[2]["why"]
    assert decided[2]["reference_model_version"] == "1" and decided[2]["report_uri"].endswith(".html")

    models = history(settings)
    assert [m["model_version"] for m in models] == [1, 2]
    first, second = models
    assert first["verdict"] == "promoted" and "no champion yet" in first["reason"]
    assert first["trigger"] == "drift_sensor" and first["batch_id"] == "00001"
    # v2 learned the southern states v1 never saw: better on the same holdout rows
    assert second["verdict"] == "promoted" and second["batch_id"] == "00003"
    assert second["champion_version"] == 1 and second["champion_rmse_log"] > second["rmse_log"]
    assert (
        f"vs champion v1 {second['champion_rmse_log']:.3f} on the same {second['holdout_rows']:,}" in second["reason"]
    )
    # the default gate: both beat the naive baseline (zip / city / state median) on the same rows
    assert first["gate_mode"] == second["gate_mode"] == "relative"
    assert second["rmse_log"] < 0.9 * second["baseline_rmse_log"] and "vs naive baseline" in second["reason"]
    assert {"r2_log", "median_ape", "baseline_median_ape", "champion_r2_log"} <= {k for k, v in second.items() if v}
    assert second["drift_report_id"] == "00003-vs-v1" and "state mix:" in second["why"]
    assert second["training_rows"] > first["training_rows"]
    assert set(
        json.loads(second["shap_importance"])
        if isinstance(second["shap_importance"], str)
        else second["shap_importance"]
    ) >= {"house_size"}
    assert registry(settings).alias_version() == "2"
    assert registry(settings).client.get_model_version(settings.model_name, "2").tags["verdict"] == "promoted"


def test_every_verdict_is_recorded_with_its_reason(instance, settings):
    assert run_batch(instance, settings, INGEST + TRAIN, "00001").success
    assert registry(settings).alias_version() == "1"

    # the original absolute thresholds stay available
    strict = run_batch(
        instance,
        settings,
        TRAIN,
        "00001",
        resources={"promotion_gate": PromotionGateResource(mode="absolute", min_r2=0.99)},
    )
    verdict = materialized(strict, "champion_model")
    assert verdict["verdict"] == "rejected" and verdict["reason"].startswith("R2 0.")
    assert "< 0.99 (short by" in verdict["reason"]

    # a candidate must not be worse than the champion: here "worse" = not 50% better
    demanding = PromotionGateResource(max_increase=-0.5)
    worse = materialized(
        run_batch(instance, settings, TRAIN, "00001", resources={"promotion_gate": demanding}), "champion_model"
    )
    assert worse["verdict"] == "rejected" and "worse than the champion: RMSE(log) " in worse["reason"]
    assert registry(settings).alias_version() == "1"

    lenient = PromotionGateResource(max_increase=0.5)
    moved = materialized(
        run_batch(instance, settings, TRAIN, "00001", resources={"promotion_gate": lenient}), "champion_model"
    )
    assert moved["verdict"] == "promoted" and registry(settings).alias_version() == "4"

    rows = {m["model_version"]: m for m in history(settings)}
    assert [rows[v]["verdict"] for v in (1, 2, 3, 4)] == ["promoted", "rejected", "rejected", "promoted"]
    assert rows[3]["champion_version"] == 1 and rows[3]["champion_rmse"] is not None
    assert rows[2]["reason"] == verdict["reason"] and rows[3]["reason"] == worse["reason"]
    assert all(rows[v]["trigger"] == "manual" and "forced retrain" in rows[v]["why"] for v in (2, 3, 4))
    # re-deciding the current champion keeps it
    again = materialized(run_batch(instance, settings, [champion_model], "00001"), "champion_model")
    assert again["verdict"] == "promoted" and "already holds the alias" in again["reason"]


def test_mlops_pipeline_skips_training_in_the_run_when_nothing_drifted(instance, settings):
    loop = Loop(instance, settings)
    for key in ("00001", "00002"):
        instance.add_dynamic_partitions("batches", [key])
    first = loop.defs.resolve_job_def("mlops_pipeline").execute_in_process(partition_key="00001", instance=instance)
    assert first.success and materialized(first, "champion_model")["verdict"] == "promoted"

    second = loop.defs.resolve_job_def("mlops_pipeline").execute_in_process(partition_key="00002", instance=instance)
    assert second.success
    assert materialized(second, "drift_report")["decision"] == "skip: no drift"
    assert materialized(second, "drift_report")["trains_in_same_run"] is True
    assert second.asset_materializations_for_node("candidate_model") == []
    assert second.asset_materializations_for_node("champion_model") == []
    skipped = [e for e in second.all_events if e.event_type_value == "STEP_SKIPPED"]
    assert [e.step_key for e in skipped] == ["champion_model"]
    # the drift sensor leaves reports of pipeline runs alone: no second training
    requests, _ = loop.tick(drift_sensor)
    assert requests == []
    # materializing the training assets by hand always trains, and says so
    forced = run_batch(instance, settings, TRAIN, "00002")
    trained = materialized(forced, "candidate_model")
    assert trained["trigger"] == "manual" and "forced retrain" in trained["why"] and "skip: no drift" in trained["why"]


class ReloadRecorder:
    """A real HTTP endpoint standing in for serving's POST /reload."""

    def __init__(self, status: int) -> None:
        self.calls: list[dict] = []
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                recorder.calls.append({"path": self.path, "authorization": self.headers.get("Authorization")})
                body = b'{"old_version": "1", "new_version": "2"}'
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ServerThread(ThreadingHTTPServer(("127.0.0.1", 0), Handler))


@pytest.mark.parametrize("status", [200, 503])
def test_a_promotion_tells_serving_to_reload_and_a_failed_notify_is_only_a_warning(instance, settings, status):
    recorder = ReloadRecorder(status)
    serving = ServingResource(url=recorder.server.url, admin_token="s3cret")
    try:
        result = run_batch(instance, settings, INGEST + TRAIN, "00001", resources={"serving": serving})
    finally:
        recorder.server.close()
    assert result.success
    assert recorder.calls == [{"path": "/reload", "authorization": "Bearer s3cret"}]
    outcome = materialized(result, "champion_model")["serving_reload"]
    assert outcome == "reloaded" if status == 200 else outcome.startswith("failed: POST")
