"""drift_report -> candidate_model -> champion_model in process, on the embedded default."""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import mlflow
import pytest
from dagster import DagsterInstance

from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.core.contracts import DriftDecision
from mlops_assets.demo import Loop
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.resources import PromotionGateResource, ServingResource
from mlops_assets.sensors import drift_sensor, ingestion_sensor
from mlops_assets.settings import Settings
from mlops_assets.storage.warehouse import Warehouse, drift_reports, model_diffs, model_history
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


def as_json(value):
    return json.loads(value) if isinstance(value, str) else value


def materialized(result, node: str) -> dict:
    events = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in events[0].metadata.items()} if events else {}


def test_the_loop_trains_on_drift_skips_without_and_keeps_every_model(instance: DagsterInstance, settings):
    loop = Loop(instance, settings)
    outcomes, trained = [], []
    for _ in range(3):
        [ingest], _ = loop.tick(ingestion_sensor)
        assert loop.execute("ingest_job", ingest).success
        trains, _ = loop.tick(drift_sensor)
        for request in trains:
            trained.append(loop.execute("train_job", request))
            assert trained[-1].success
        outcomes.append(len(trains))
    assert outcomes == [1, 0, 1]  # baseline, no drift, drift

    decided = reports(settings)
    assert [r["decision"] for r in decided] == [
        DriftDecision.BASELINE,
        DriftDecision.NO_DRIFT,
        DriftDecision.DRIFT,
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

    # the diff of v2 against v1, the champion it was judged against, on the same holdout rows
    [stored] = Warehouse(settings.database_url).read(model_diffs.select()).to_dict("records")
    diff = as_json(stored["diff"])
    assert (stored["new_version"], stored["old_version"], stored["metric"]) == (2, 1, "rmse_log")
    assert stored["headline"] == diff["headline"] and diff["headline"].startswith("v2 vs v1: RMSE(log) -")
    assert f"of properties moved more than 10%, mostly in {stored['most_moved_state']}" in diff["headline"]
    assert stored["holdout_rows"] == diff["rows"] == second["holdout_rows"]
    assert stored["mlflow_run_id"] == second["mlflow_run_id"] and stored["drift_report_id"] == "00003-vs-v1"
    assert diff["overall"]["new"]["rmse_log"] == pytest.approx(second["rmse_log"], rel=1e-5)
    assert diff["overall"]["old"]["rmse_log"] == pytest.approx(second["champion_rmse_log"], rel=1e-5)
    assert stored["metric_change"] == pytest.approx(second["rmse_log"] / second["champion_rmse_log"] - 1, rel=1e-4)
    assert 0 <= stored["share_moved_20"] <= stored["share_moved_10"] <= stored["share_moved_5"] <= 1
    for segments in diff["segments"].values():  # every holdout row in exactly one segment of each kind
        assert sum(e["rows"] for e in segments) == diff["rows"]
    assert len(diff["segments"]["price_band"]) == len(diff["segments"]["size_band"]) == 4
    assert len(diff["value_changes"]["largest_movers"]) == 10
    assert {e["feature"] for e in diff["importance"]["features"]} >= {"house_size", "state_price_level"}
    assert diff["drift"]["report_id"] == "00003-vs-v1" and "state" in diff["drift"]["drifted_columns"]
    client = registry(settings).client
    artifacts = {a.path for a in client.list_artifacts(second["mlflow_run_id"], "model_diff")}
    assert artifacts == {"model_diff/v2-vs-v1.json", "model_diff/v2-vs-v1.md"}
    run_uri = f"runs:/{second['mlflow_run_id']}/model_diff"
    assert mlflow.artifacts.load_dict(f"{run_uri}/v2-vs-v1.json") == diff
    document = mlflow.artifacts.load_text(f"{run_uri}/v2-vs-v1.md")
    assert document.startswith(f"# Model diff: v2 vs v1\n\n**{diff['headline']}**")
    summary = materialized(trained[1], "champion_model")
    assert summary["model_diff_headline"] == diff["headline"]
    assert summary["model_diff"].startswith(f"**{diff['headline']}** (on the same {diff['rows']:,} holdout rows)")
    assert "| RMSE | $" in summary["model_diff"]
    assert "model_diff" not in materialized(trained[0], "champion_model")  # v1 had no champion to differ from

    # importance-weighted drift: batch 3's columns ranked by drift x v1's reliance, the option's decision shown
    assert decided[0]["importance_rule"].startswith("absent: no champion yet")
    assert decided[0]["importance_ranking"] is None
    ranking = as_json(decided[2]["importance_ranking"])
    assert {r["column"] for r in ranking} == set(as_json(decided[2]["column_scores"]))
    assert [r["weighted"] for r in ranking] == sorted((r["weighted"] for r in ranking), reverse=True)
    reliance = {r["column"]: r["reliance"] for r in ranking}
    assert reliance["price"] == 0 and reliance["state"] > 0.5  # the target is no input; location carries most
    assert decided[2]["why"].startswith("state mix: ") and "(the model's reliance: " in decided[2]["why"]
    assert decided[2]["importance_decision"] == DriftDecision.DRIFT
    assert decided[2]["importance_rule"].startswith("importance option not applied (require_importance is off)")


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
    assert materialized(second, "drift_report")["decision"] == DriftDecision.NO_DRIFT
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
    assert (
        trained["trigger"] == "manual"
        and "forced retrain" in trained["why"]
        and DriftDecision.NO_DRIFT in trained["why"]
    )


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
