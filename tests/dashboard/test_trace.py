"""A prediction made through real serving traced back through the real pipeline's history - the model version,
its MLflow and Dagster runs, the batches it was trained on, the drift report behind it, its verdict - through
serving's lineage endpoints and the "Trace a prediction" page; and a batch forward to its models and their
predictions. The platform: v1 promoted, batch 2 skipped, v2 promoted on drift, v3 rejected; serving answers with v2."""

from __future__ import annotations

import pytest
import requests
import sqlalchemy as sa

from mlops_assets.core.contracts import DriftDecision
from mlops_assets.core.splits import is_holdout
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.storage import lineage, queries
from mlops_assets.storage.warehouse import Warehouse, clean_listings, drift_reports, inference_log
from tests.dashboard.conftest import DAGSTER_UI, MLFLOW_UI, READ_TOKEN, Platform, clean, eventually, open_page, texts

pytestmark = pytest.mark.slow

HOUSE = {"bed": 3.0, "bath": 2.0, "acre_lot": 0.3, "house_size": 2000.0, "state": "Texas", "status": "for_sale"}
READ = {"Authorization": f"Bearer {READ_TOKEN}"}


def get(platform: Platform, path: str, **kwargs) -> requests.Response:
    return requests.get(platform.serving.url + path, timeout=60, **kwargs)


def traced(platform: Platform, request_id: str) -> dict:
    """The lineage of a prediction, once the inference log has it."""
    answers: list[dict] = []

    def logged() -> bool:
        response = get(platform, f"/predictions/{request_id}/lineage", headers=READ)
        if response.status_code == 200:
            answers.append(response.json())
        return bool(answers)

    eventually(logged, "the prediction is logged")
    return answers[0]


def served_per_version(db: Warehouse) -> dict[str, int]:
    query = sa.select(inference_log.c.model_version, sa.func.count()).group_by(inference_log.c.model_version)
    with db.engine.connect() as connection:
        return dict(connection.execute(query).all())


def test_a_prediction_traces_back_to_its_model_runs_batches_and_drift_report(platform: Platform):
    answer = platform.serving.post("/predict", HOUSE)
    trace = traced(platform, answer["request_id"])
    settings = platform.settings
    db = Warehouse(settings.database_url)

    assert trace["prediction"]["model_version"] == "2" and trace["prediction"]["price"] == pytest.approx(
        answer["price"]
    )
    assert trace["problems"] == []
    # the model version -> its MLflow run and its Dagster run, as the registry recorded them
    model = trace["model"]
    registered = ModelRegistry(settings.mlflow_tracking_uri, settings.model_name).client.get_model_version(
        settings.model_name, "2"
    )
    assert model["model_version"] == 2 and model["through_batch"] == "00003" and model["trigger"] == "drift_sensor"
    assert model["mlflow_run_id"] == registered.run_id
    assert model["dagster_run_id"] == registered.tags["dagster_run_id"]
    assert model["links"] == {
        "mlflow_run": f"{MLFLOW_UI}/#/runs/{registered.run_id}",
        "mlflow_model_version": f"{MLFLOW_UI}/#/models/{settings.model_name}/versions/2",
        "dagster_run": f"{DAGSTER_UI}/runs/{model['dagster_run_id']}",
        "dagster_partition": f"{DAGSTER_UI}/assets/candidate_model?view=partitions&partition=00003",
    }

    # -> the batches it was trained on: every batch up to 00003, counted as candidate_model took its rows
    frame = queries.clean_through(db, "00003", ["batch_id", "listing_id"])
    held = is_holdout(frame["listing_id"], lineage.HOLDOUT_FRACTION)
    training, holdout = frame[~held]["batch_id"].value_counts(), frame[held]["batch_id"].value_counts()
    batches = trace["training_batches"]
    assert [b["batch_id"] for b in batches] == ["00001", "00002", "00003"]
    for batch in batches:
        key = batch["batch_id"]
        assert (batch["training_rows"], batch["holdout_rows"]) == (training[key], holdout[key]), key
        assert batch["clean_rows"] == db.count(clean_listings, key) and batch["loaded_at"]
        assert batch["links"] == {
            "dagster_partition": f"{DAGSTER_UI}/assets/clean_listings?view=partitions&partition={key}"
        }
    recorded = queries.model_row(db, settings.model_name, 2)
    assert trace["training_totals"] == {
        "training_rows": recorded["training_rows"],
        "holdout_rows": recorded["holdout_rows"],
        "recorded_training_rows": recorded["training_rows"],
        "recorded_holdout_rows": recorded["holdout_rows"],
        "matches_record": True,
    }

    # -> the drift report that triggered its training, and its why
    report = trace["drift_report"]
    with db.engine.connect() as connection:
        stored = connection.execute(drift_reports.select().where(drift_reports.c.report_id == "00003-vs-v1")).one()
    assert report["report_id"] == model["drift_report_id"] == "00003-vs-v1"
    assert report["decision"] == DriftDecision.DRIFT and report["why"] == stored.why and "state mix:" in report["why"]
    assert report["reference_model_version"] == "1" and report["dagster_run_id"] == stored.dagster_run_id
    assert report["links"]["dagster_run"] == f"{DAGSTER_UI}/runs/{stored.dagster_run_id}"

    # -> its verdict, and the champion it replaced
    verdict = trace["verdict"]
    assert (
        verdict["verdict"] == "promoted"
        and verdict["reason"] == recorded["reason"]
        and "vs champion v1" in verdict["reason"]
    )
    assert verdict["replaced_version"] == 1 and verdict["champion_version"] == 1
    assert verdict["links"] == {"mlflow_replaced_version": f"{MLFLOW_UI}/#/models/{settings.model_name}/versions/1"}


def test_unknown_malformed_and_unauthorised_lineage_requests(platform: Platform):
    unknown = get(platform, "/predictions/0123456789abcdef0123456789abcdef/lineage", headers=READ)
    assert unknown.status_code == 404 and "no logged prediction has request id 0123456789abcdef" in unknown.text
    assert get(platform, "/predictions/DROP TABLE/lineage", headers=READ).status_code == 422
    assert get(platform, "/predictions/0123456789abcdef0123456789abcdef/lineage").status_code == 401
    assert get(platform, "/batches/00009/lineage", headers=READ).status_code == 404
    assert get(platform, "/batches/00001/lineage", headers={"Authorization": "Bearer nope"}).status_code == 403


def test_a_batch_counts_the_models_trained_on_it_and_the_predictions_they_served(platform: Platform):
    platform.serving.post("/predict", HOUSE)
    db = Warehouse(platform.settings.database_url)

    def lineage_of(batch_id: str) -> dict:
        response = get(platform, f"/batches/{batch_id}/lineage", headers=READ)
        assert response.status_code == 200, response.text
        return response.json()

    # every prediction logged so far: the endpoint's counts are the inference log's
    eventually(
        lambda: {str(m["model_version"]): m["predictions"] for m in lineage_of("00001")["models"]}
        == {"1": 0, "3": 0, **served_per_version(db)},
        "the predictions are logged",
    )
    # rows of earlier requests may still be arriving: read the endpoint and the log until they agree
    taken: list = []

    def agree() -> bool:
        taken[:] = [served_per_version(db), lineage_of("00001")]
        return taken[1]["totals"]["predictions"] == sum(taken[0].values())

    eventually(agree, "the endpoint's count and the inference log agree")
    served, first = taken
    assert set(served) == {"2"} and served["2"] >= 1  # serving came up with v2; v1 and v3 never served
    assert [m["model_version"] for m in first["models"]] == [1, 2, 3]
    assert [m["verdict"] for m in first["models"]] == ["promoted", "promoted", "rejected"]
    assert first["totals"] == {"models": 3, "predictions": served["2"]}
    assert first["batch"]["clean_rows"] == db.count(clean_listings, "00001")
    v1 = queries.model_row(db, platform.settings.model_name, 1)
    assert first["models"][0]["training_rows_from_batch"] == v1["training_rows"]  # v1 knew batch 1 only
    v2_trace = traced(platform, platform.serving.post("/predict", HOUSE)["request_id"])
    assert first["models"][1]["training_rows_from_batch"] == v2_trace["training_batches"][0]["training_rows"]
    assert first["models"][1]["links"]["mlflow_run"] == f"{MLFLOW_UI}/#/runs/{v2_trace['model']['mlflow_run_id']}"
    assert [r["decision"] for r in first["drift_reports"]] == [DriftDecision.BASELINE]

    skipped, drifted = lineage_of("00002"), lineage_of("00003")
    assert [m["model_version"] for m in skipped["models"]] == [m["model_version"] for m in drifted["models"]] == [2, 3]
    assert [r["decision"] for r in skipped["drift_reports"]] == [DriftDecision.NO_DRIFT]
    assert drifted["batch"]["links"] == {
        "dagster_partition": f"{DAGSTER_UI}/assets/clean_listings?view=partitions&partition=00003"
    }


def test_the_trace_page_shows_the_chain_with_links_and_a_batch_s_models(platform: Platform, dashboard_env):
    dashboard_env(platform, MLOPS_DAGSTER_URL="http://dagster.example:3001", MLOPS_MLFLOW_URL="http://mlflow.example")
    answer = platform.serving.post("/predict", HOUSE)
    trace = traced(platform, answer["request_id"])

    at = open_page("trace")  # the most recent prediction, picked by default
    assert clean(at)
    assert at.selectbox(key="trace_pick").value == answer["request_id"]
    shown = texts(at.markdown)
    assert any(f"Request `{answer['request_id']}`" in m and "answered by **house-price v2**" in m for m in shown)
    assert any(m.startswith("**house-price v2**, trained ") and "for batch **00003**" in m for m in shown)
    assert f"MLflow run `{trace['model']['mlflow_run_id']}` · Dagster run `{trace['model']['dagster_run_id']}`" in shown
    batches = at.dataframe[0].value
    assert list(batches["batch_id"]) == ["00001", "00002", "00003"]
    assert list(batches["training_rows"]) == [b["training_rows"] for b in trace["training_batches"]]
    assert (
        batches["dagster"].iloc[0]
        == "http://dagster.example:3001/assets/clean_listings?view=partitions&partition=00001"
    )
    links = {b.label: b.url for b in at.get("link_button")}
    assert links["MLflow run"] == f"http://mlflow.example/#/runs/{trace['model']['mlflow_run_id']}"
    assert links["Dagster run"] == f"http://dagster.example:3001/runs/{trace['model']['dagster_run_id']}"
    assert (
        links["Dagster run (drift report)"]
        == f"http://dagster.example:3001/runs/{trace['drift_report']['dagster_run_id']}"
    )
    assert any("Drift report `00003-vs-v1`" in m and "**train: drift detected**" in m for m in shown)
    assert texts(at.main.success)[0].startswith("**v2 was promoted**: ")
    assert "It replaced **v1** as the champion." in shown

    # the batch section: the traced model's last batch by default, then another
    assert at.selectbox(key="trace_batch").value == "00003"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Models trained on it"] == "2"
    at = at.selectbox(key="trace_batch").select("00001").run()
    assert clean(at)
    expected = get(platform, "/batches/00001/lineage", headers=READ).json()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Models trained on it"] == "3"
    assert metrics["Predictions they served"] == f"{expected['totals']['predictions']:,}"
    models = at.dataframe[1].value
    assert list(models["model_version"]) == [1, 2, 3]
    assert list(models["predictions"]) == [m["predictions"] for m in expected["models"]]

    # an id typed in: unknown, malformed
    at = at.text_input(key="trace_request_id").input("0123456789abcdef0123456789abcdef").run()
    assert clean(at) and texts(at.main.warning)[0].startswith("Not found: no logged prediction has request id")
    at = at.text_input(key="trace_request_id").input("not a request").run()
    warning = texts(at.main.warning)[0]
    assert clean(at) and warning.startswith("Serving refused the input: request_id: invalid request id"), warning


def test_the_trace_page_without_the_read_token_says_what_to_set(platform: Platform, dashboard_env):
    dashboard_env(platform, MLOPS_READ_TOKEN="")
    at = open_page("trace")
    assert clean(at)
    [info] = texts(at.main.info)
    assert info.startswith("Tracing needs serving's read token: set MLOPS_READ_TOKEN for the dashboard.")
    assert not at.dataframe
