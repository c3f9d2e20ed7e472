"""The full loop on the platform as containers (docker-compose.yml), from the outside: `make test-system`.

The daemon's sensors ingest the simulator's 3 batches over HTTP; batch 1 trains a baseline (no champion),
batch 2 (the same market) is judged undrifted and not trained on, batch 3 (another market) drifts and
is trained on; each training runs in a process of its own, registers a version in the MLflow server
(artifacts on S3) and moves the alias; serving follows it without a restart; a prediction is logged
to the warehouse; Prometheus scrapes it and loads the alert rules; the dashboard's pages render and
open a drift report from S3. Only HTTP, SQL, `docker logs`, `docker inspect` and `docker exec`.

The tests run in file order and share the one stack (tests/system/conftest.py). Opt-in: they need
MLOPS_SYSTEM_TEST=1 (make test-system sets it), since they build images and start 11 containers.
"""

from __future__ import annotations

import json
import os
import re
import time

import boto3
import pytest
import requests
import yaml

from mlops_assets.core.contracts import DriftDecision
from tests.system.conftest import LOOP_TIMEOUT, PORTS, ROOT, Stack, eventually

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("MLOPS_SYSTEM_TEST") != "1",
        reason="the system test builds images and starts the platform in containers: run it with make test-system",
    ),
]

BATCHES = ["00001", "00002", "00003"]
LOOP_STARTED = time.monotonic()


def finished(runs: list[dict], job: str, partition: str) -> dict | None:
    for run in runs:
        same = run["jobName"] == job and run["tags"].get("dagster/partition") == partition
        if same and run["status"] in ("SUCCESS", "FAILURE", "CANCELED"):
            return run
    return None


@pytest.mark.containers("postgres", "s3", "mlflow", "dagster-webserver", "serving", "dashboard", "prometheus")
def test_every_service_answers(platform: Stack):
    checks = {
        "SIMULATOR": "/health",
        "MLFLOW": "/health",
        "DAGSTER": "/server_info",
        "SERVING": "/livez",
        "DASHBOARD": "/_stcore/health",
        "PROMETHEUS": "/-/ready",
    }
    for service, path in checks.items():
        response = requests.get(platform.url(service) + path, timeout=10)
        assert response.status_code == 200, f"{service} {path}: {response.status_code} {response.text[:300]}"
    assert platform.sql("SELECT 1 AS one") == [{"one": 1}]
    global LOOP_STARTED
    LOOP_STARTED = time.monotonic()


@pytest.mark.containers("dagster-daemon", "dagster-code", "simulator")
def test_the_sensors_ingest_the_batches_from_the_simulator_api(platform: Stack):
    def ingested():
        runs = platform.runs()
        done = [finished(runs, "ingest_job", key) for key in BATCHES]
        return done if all(done) else None

    done = eventually(ingested, LOOP_TIMEOUT, "ingest_job runs for batches 00001-00003", interval=5)
    platform.durations["ingest 3 batches"] = time.monotonic() - LOOP_STARTED
    for run in done:
        assert run["status"] == "SUCCESS", run
        assert run["tags"]["mlops/trigger"] == "ingestion_sensor"
        assert run["tags"]["dagster/sensor_name"] == "ingestion_sensor"
    rows = platform.sql(
        "SELECT batch_id, source, count(*) AS n FROM raw_listings WHERE batch_id NOT LIKE 'inference%' "
        "GROUP BY batch_id, source ORDER BY batch_id"
    )
    assert [r["batch_id"] for r in rows] == BATCHES
    assert all(r["n"] >= 2500 for r in rows), rows
    assert all("simulator" in r["source"] or "http" in r["source"] or r["source"] for r in rows), rows


@pytest.mark.containers("dagster-daemon", "dagster-code", "mlflow")
def test_the_drift_sensor_trains_on_the_drifted_batch_and_not_on_the_undrifted_one(platform: Stack):
    def trained():
        runs = platform.runs()
        return runs if finished(runs, "train_job", "00003") else None

    runs = eventually(trained, LOOP_TIMEOUT, "the training for the drifted batch 00003", interval=5)
    platform.durations["loop to 2nd training"] = time.monotonic() - LOOP_STARTED
    decisions = {
        r["batch_id"]: r["decision"]
        for r in platform.sql("SELECT batch_id, decision FROM drift_reports ORDER BY batch_id")
    }
    assert decisions["00001"] == DriftDecision.BASELINE, decisions  # no champion yet
    assert decisions["00002"] == DriftDecision.NO_DRIFT, decisions  # seen, judged, not trained on
    assert decisions["00003"] == DriftDecision.DRIFT, decisions
    trainings = sorted((r["tags"]["dagster/partition"], r["status"]) for r in runs if r["jobName"] == "train_job")
    assert trainings == [("00001", "SUCCESS"), ("00003", "SUCCESS")], trainings
    for run in runs:
        if run["jobName"] == "train_job":
            assert run["tags"]["mlops/trigger"] == "drift_sensor"
            assert run["tags"]["dagster/sensor_name"] == "drift_sensor"


@pytest.mark.containers("dagster-code", "mlflow", "s3")
def test_each_model_is_trained_in_its_own_process_registered_on_s3_and_promoted(platform: Stack):
    [train] = [r for r in platform.runs() if r["jobName"] == "train_job" and r["tags"]["dagster/partition"] == "00003"]
    events = platform.graphql(
        "query($id: ID!) { logsForRun(runId: $id) { ... on EventConnection { events { ... on MessageEvent "
        "{ message } } } } }",
        id=train["runId"],
    )["logsForRun"]["events"]
    messages = [e.get("message", "") for e in events]
    assert any(re.search(r"Started process for run \(pid: \d+\)", m) for m in messages), messages[:20]

    models = platform.sql("SELECT model_version, verdict, champion_version, batch_id FROM model_history ORDER BY 1")
    assert [(m["model_version"], m["batch_id"], m["verdict"]) for m in models] == [
        (1, "00001", "promoted"),
        (2, "00003", "promoted"),
    ], models
    assert models[1]["champion_version"] == 1  # judged against v1, then took the alias from it

    mlflow = platform.url("MLFLOW")
    champion = {"name": "house-price", "alias": "champion"}
    alias = requests.get(f"{mlflow}/api/2.0/mlflow/registered-models/alias", params=champion, timeout=10)
    assert alias.status_code == 200, alias.text
    version = alias.json()["model_version"]
    assert version["version"] == "2"
    tags = {t["key"]: t["value"] for t in version.get("tags", [])}
    assert "promoted" in json.dumps(tags), tags
    v1 = requests.get(
        f"{mlflow}/api/2.0/mlflow/model-versions/get", params={"name": "house-price", "version": "1"}, timeout=10
    ).json()["model_version"]
    assert "champion" not in v1.get("aliases", []), v1  # the alias moved

    s3 = boto3.client(
        "s3",
        endpoint_url=platform.url("S3"),
        aws_access_key_id=platform.secrets["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=platform.secrets["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket="mlflow")
    keys = [o["Key"] for page in pages for o in page.get("Contents", [])]
    assert sum(k.endswith("/MLmodel") for k in keys) >= 2, keys[:50]


@pytest.mark.containers("serving", "mlflow")
def test_serving_follows_the_new_champion_without_a_restart(platform: Stack):
    def on_v2():
        body = requests.get(f"{platform.serving}/model", timeout=10).json()
        return body if str(body.get("model_version")) == "2" else None

    eventually(on_v2, 120, "serving's /model on version 2", interval=2)
    platform.durations["loop to serving v2"] = time.monotonic() - LOOP_STARTED
    seen = platform.model_versions_seen
    assert "1" in seen and seen.index("1") < seen.index("2"), seen  # it served v1, then v2
    assert platform.inspect("serving", "{{.State.StartedAt}}") == platform.started_at, "serving was restarted"
    assert platform.inspect("serving", "{{.RestartCount}}") == "0"
    assert requests.get(f"{platform.serving}/readyz", timeout=10).status_code == 200


@pytest.mark.containers("serving", "postgres")
def test_a_prediction_lands_in_the_inference_log_and_in_raw_listings(platform: Stack):
    state = requests.get(f"{platform.serving}/states", timeout=10).json()
    states = state.get("states", state) if isinstance(state, dict) else state
    name = states[0]["state"] if isinstance(states[0], dict) else states[0]
    house = {"bed": 3, "bath": 2, "acre_lot": 0.25, "house_size": 1800, "state": name, "status": "for_sale"}
    response = requests.post(f"{platform.serving}/predict", json=house, timeout=30)
    assert response.status_code == 200, response.text
    answer = response.json()
    assert str(answer["model_version"]) == "2" and answer["price"] > 0, answer
    logged = eventually(
        lambda: platform.sql("SELECT model_version FROM inference_log WHERE request_id = :id", id=answer["request_id"]),
        60,
        f"inference_log row for {answer['request_id']}",
        interval=1,
    )
    assert logged == [{"model_version": "2"}]
    rows = platform.sql(
        "SELECT count(*) AS n FROM raw_listings WHERE source = 'inference' AND batch_id LIKE 'inference-%'"
    )
    assert rows[0]["n"] >= 1, rows


@pytest.mark.containers("prometheus", "serving")
def test_prometheus_scrapes_the_new_version_and_loads_the_alert_rules(platform: Stack):
    prometheus = platform.url("PROMETHEUS")

    def scraped():
        query = {"query": 'predictions_total{job="serving",model_version="2"}'}
        body = requests.get(f"{prometheus}/api/v1/query", params=query, timeout=10).json()
        return body["data"]["result"]

    result = eventually(scraped, 90, 'predictions_total{model_version="2"} in Prometheus', interval=3)
    assert sum(float(r["value"][1]) for r in result) >= 1, result
    groups = requests.get(f"{prometheus}/api/v1/rules", timeout=10).json()["data"]["groups"]
    loaded = {rule["name"]: rule.get("health") for group in groups for rule in group["rules"]}
    spec = yaml.safe_load((ROOT / "k8s/base/monitoring/prometheusrule.yaml").read_text())["spec"]
    expected = {rule.get("alert") or rule.get("record") for group in spec["groups"] for rule in group["rules"]}
    assert set(loaded) == expected, loaded
    assert "err" not in loaded.values(), loaded


# Runs in the dashboard's container: every page through Streamlit's AppTest (the pages are rendered
# client-side, so an HTTP 200 says little), and the Drift page opening the Evidently report from S3.
PAGES_SCRIPT = """
import json
from streamlit.testing.v1 import AppTest
from dashboard.history import read_report
out = {}
for page in %s:
    at = AppTest.from_file("dashboard/app.py", default_timeout=120).switch_page(f"views/{page}.py").run()
    if page == "drift":
        at.toggle(key="show_report").set_value(True).run()
        out["drift_download"] = len(at.get("download_button"))
    out[page] = [str(e.value)[:300] for e in at.exception] + [
        e.value[:300] for e in at.error if "failed unexpectedly" in e.value]
out["report_chars"] = len(read_report(%r))
print(json.dumps(out))
"""
PAGES = ["predict", "explain", "compare", "models", "model_diff", "drift", "monitoring", "trace"]


@pytest.mark.containers("dashboard", "serving", "s3")
def test_the_dashboard_pages_load_and_the_drift_page_opens_its_report_from_s3(platform: Stack):
    dashboard = platform.url("DASHBOARD")
    assert requests.get(f"{dashboard}/_stcore/health", timeout=10).text == "ok"
    for path in ["/", *[f"/{page}" for page in PAGES]]:
        response = requests.get(dashboard + path, timeout=10)
        assert response.status_code == 200 and "<html" in response.text.lower(), path
    [report] = platform.sql("SELECT report_uri FROM drift_reports WHERE batch_id = '00003'")
    assert report["report_uri"].startswith("s3://mlops/"), report
    result = platform.exec("dashboard", "python", "-c", PAGES_SCRIPT % (PAGES, report["report_uri"]), timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["report_chars"] > 1000, out
    assert out["drift_download"] >= 1, out  # the report was read and offered
    assert all(out[page] == [] for page in PAGES), out
    platform.durations["whole loop"] = time.monotonic() - LOOP_STARTED


def test_the_test_stack_kept_to_its_own_ports(platform: Stack):
    project = platform.env["MLOPS_COMPOSE_PROJECT"]
    label = f"label=com.docker.compose.project={project}"
    published = platform.docker("ps", "--filter", label, "--format", "{{.Ports}}")
    ports = {int(p) for p in re.findall(r"127\.0\.0\.1:(\d+)->", published.stdout)}
    assert ports <= set(PORTS.values()), ports
