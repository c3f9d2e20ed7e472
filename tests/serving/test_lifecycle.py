"""The service follows the alias (by polling and by /reload) without failing a request, survives a
version that cannot be loaded, and keeps predicting while its database is away."""

from __future__ import annotations

import json
import os
import tempfile
import uuid

import pytest
import sqlalchemy as sa

from tests.model_factory import train_and_register
from tests.serving.conftest import EXAMPLE, TOKEN, RequestLoop, Service, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _versions_seen(loop: RequestLoop) -> list[str | None]:
    return [version for _, version in loop.results]


def test_a_promotion_is_picked_up_by_polling_with_no_failed_request(serving: Service):
    before = serving.post("/predict", EXAMPLE).json()
    second = train_and_register(serving.tracking_uri, model_name=serving.model_name, batches=(3,), trials=1,
                                promote=False)  # fmt: skip
    with RequestLoop(serving) as loop:
        wait_until(lambda: len(loop.results) > 20, 60, "requests flowing")
        serving.registry().promote(second.version, "serving test: poll")
        wait_until(lambda: serving.all_workers_serve(second.version), 60, "every worker serves the new version")
        wait_until(lambda: _versions_seen(loop)[-10:] == [second.version] * 10, 30, "answers from the new version")
    assert loop.results and all(status == 200 for status, _ in loop.results), set(loop.results)
    assert set(_versions_seen(loop)) == {before["model_version"], second.version}
    after = serving.post("/predict", EXAMPLE).json()
    assert after["model_version"] == second.version and after["price"] != before["price"]
    assert serving.get("/model").json()["model_version"] == second.version


def test_reload_switches_every_worker_before_it_answers(serving: Service):
    third = serving.register_copy(serving.first.version)
    with RequestLoop(serving) as loop:
        serving.registry().promote(str(third), "serving test: reload")
        response = serving.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["new_version"] == str(third) and body["all_workers_synced"], body
        assert set(body["workers"].values()) == {str(third)}
        answers = [serving.post("/predict", EXAMPLE).json()["model_version"] for _ in range(20)]
    assert answers == [str(third)] * 20
    assert all(status == 200 for status, _ in loop.results), set(loop.results)


def test_a_version_that_cannot_load_leaves_the_old_one_serving(serving: Service):
    """A version stored as pickle is refused (the service never unpickles); the champion keeps serving."""
    import mlflow

    serving_now = serving.get("/model").json()["model_version"]
    failed_before = serving.metric("model_reloads_total", outcome="failed")
    mlflow.set_tracking_uri(serving.tracking_uri)
    with tempfile.TemporaryDirectory() as directory, mlflow.start_run() as run:
        model_dir = os.path.join(directory, "model")
        os.makedirs(model_dir)
        with open(os.path.join(model_dir, "MLmodel"), "w") as f:
            f.write("flavors:\n  xgboost:\n    data: model.pkl\n    model_format: pkl\n")
        with open(os.path.join(model_dir, "model.pkl"), "wb") as f:
            f.write(b"not loaded, ever")
        mlflow.log_artifacts(model_dir, "model")
    client = serving.registry().client
    source = f"{client.get_run(run.info.run_id).info.artifact_uri}/model"
    broken = str(client.create_model_version(serving.model_name, source, run_id=run.info.run_id).version)
    try:
        with RequestLoop(serving) as loop:
            serving.registry().promote(broken, "serving test: a broken version")
            wait_until(lambda: serving.metric("model_reloads_total", outcome="failed") >= failed_before + 2, 60,
                       "both workers report the failed load")  # fmt: skip
            refused = serving.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
        assert refused.status_code == 503 and refused.json()["detail"]["serving_version"] == serving_now
        assert "pkl" in refused.json()["detail"]["reason"]
        health = serving.get("/health").json()
        assert health["status"] == "degraded" and health["model_version"] == serving_now
        assert any(f"version {broken}" in p for p in health["problems"])
        assert all(status == 200 for status, _ in loop.results) and set(_versions_seen(loop)) == {serving_now}
    finally:
        serving.registry().promote(serving_now, "serving test: back to a loadable version")
    wait_until(lambda: serving.get("/health").json()["status"] == "healthy", 30, "healthy again")


def test_with_the_database_away_predictions_go_on_and_drops_are_counted(serving: Service):
    marker = f"outage-{uuid.uuid4().hex[:8]}"
    dropped_before = serving.metric("inference_log_dropped_total")
    serving.set_database_connections(False)
    try:
        held = [serving.post("/predict", {**EXAMPLE, "city": marker}) for _ in range(10)]
        assert all(r.status_code == 200 for r in held)
        overflow = serving.post("/batch_predict", [{**EXAMPLE, "city": "overflow"}] * 4000)  # > the 3,000-row buffer
        assert overflow.status_code == 200 and overflow.json()["failed"] == 0
        assert serving.metric("inference_log_dropped_total", reason="queue_full") >= dropped_before + 4000
        wait_until(lambda: serving.get("/health").json()["status"] == "degraded", 30, "health reports the database")
        assert serving.get("/predictions/history", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 503
        assert serving.get("/metrics/summary").status_code == 503
        for path in (f"/predictions/{uuid.uuid4().hex}/lineage", "/batches/00001/lineage"):
            away = serving.get(path, headers={"Authorization": f"Bearer {TOKEN}"})
            assert away.status_code == 503 and away.json()["error"] == "the inference log database is unavailable"
    finally:
        serving.set_database_connections(True)

    after = f"after-{uuid.uuid4().hex[:8]}"
    assert serving.post("/predict", {**EXAMPLE, "city": after}).status_code == 200
    engine = sa.create_engine(serving.database_url)
    try:

        def count(city: str) -> int:
            with engine.connect() as c:
                return c.execute(sa.text("SELECT count(*) FROM raw_listings WHERE city = :c"), {"c": city}).scalar()

        # the rows held during the outage are written once it ends, and logging goes on
        wait_until(lambda: count(marker) == 10 and count(after) == 1, 60, "logging resumed")
    finally:
        engine.dispose()
    history = serving.get("/predictions/history", params={"limit": 1}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert json.loads(history.text)["count"] == 1


def test_a_withdrawn_alias_is_reported_and_the_last_version_keeps_serving(serving: Service):
    serving_now = serving.get("/model").json()["model_version"]
    serving.registry().client.delete_registered_model_alias(serving.model_name, "champion")
    try:
        wait_until(lambda: all("alias withdrawn" in " ".join(serving.get("/health").json()["problems"])
                               for _ in range(6)), 30, "every worker reports the withdrawn alias")  # fmt: skip
        health = serving.get("/health").json()
        assert health["status"] == "degraded" and health["model_version"] == serving_now
        answer = serving.post("/predict", EXAMPLE)
        assert answer.status_code == 200 and answer.json()["model_version"] == serving_now
    finally:
        serving.registry().promote(serving_now, "serving test: the alias back")
    wait_until(lambda: not any("alias withdrawn" in " ".join(serving.get("/health").json()["problems"])
                               for _ in range(6)), 30, "no worker reports it any more")  # fmt: skip


def test_concurrent_batches_are_all_logged_while_the_database_is_up(serving: Service):
    """The buffer holds 3,000 rows; 8 concurrent batches of 1,500 are 12,000. Once, the writer fell behind and
    the rows that did not fit were dropped with health "healthy"; now a batch waits for room (or is refused
    with 503 before any work) and every answered row is logged."""
    from concurrent.futures import ThreadPoolExecutor

    marker = f"load-{uuid.uuid4().hex[:8]}"
    dropped_before = serving.metric("inference_log_dropped_total")

    def batch(_: int):
        return serving.post("/batch_predict", [{**EXAMPLE, "city": marker}] * 1_500)

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(batch, range(8)))
    assert {a.status_code for a in answers} <= {200, 503}
    answered = sum(a.json()["count"] for a in answers if a.status_code == 200)
    assert answered >= 1_500
    assert all(a.headers.get("retry-after") for a in answers if a.status_code == 503)
    engine = sa.create_engine(serving.database_url)
    try:

        def rows() -> int:
            with engine.connect() as c:
                return c.execute(sa.text("SELECT count(*) FROM raw_listings WHERE city = :c"), {"c": marker}).scalar()

        wait_until(lambda: rows() == answered, 60, f"all {answered:,} answered rows logged")
    finally:
        engine.dispose()
    assert serving.metric("inference_log_dropped_total") == dropped_before


def test_a_worker_killed_under_load_is_replaced_without_a_503(serving: Service):
    """Once, a respawned worker took requests before its model was in and answered 119 of them with 503, and
    /readyz said ready while one worker was. Now a starting worker holds requests until its model is in, and
    /readyz waits for every worker."""
    import signal

    victim = serving.get("/health").json()["worker_pid"]
    with RequestLoop(serving) as loop:
        wait_until(lambda: len(loop.results) > 20, 60, "requests flowing")
        os.kill(victim, signal.SIGKILL)
        wait_until(lambda: victim not in {serving.get("/health").json()["worker_pid"] for _ in range(6)}, 60,
                   "a new worker answers")  # fmt: skip
        wait_until(lambda: serving.get("/readyz").status_code == 200, 60, "ready again: every worker serves")
        seen = len(loop.results)
        wait_until(lambda: len(loop.results) > seen + 20, 60, "requests flowing after")
    statuses = [status for status, _ in loop.results]
    assert 503 not in statuses, statuses.count(503)
    # only what was in flight in the killed worker can fail (the loop sends one request at a time)
    assert sum(status != 200 for status in statuses) <= 1, [r for r in loop.results if r[0] != 200]
    # every worker serves again: awaited, not read once (one CI run read false once right after the loop, with
    # /readyz already 200; the cause was not found)
    wait_until(lambda: serving.get("/health").json()["all_workers_serve"], 30, "every worker serves, per /health")
    # the killed worker's live gauges are withdrawn by its replacement: model_info names one version again
    wait_until(lambda: serving.all_workers_serve(serving.get("/model").json()["model_version"]), 30, "model_info")


def test_an_alias_moved_outside_the_gate_is_not_followed(serving: Service):
    """Anyone who can reach MLflow could move the alias by hand (the UI, a script), bypassing the gate and the admin
    token: serving follows only versions that carry a promotion verdict."""
    serving_now = serving.get("/model").json()["model_version"]
    unjudged = serving.register_copy(serving_now)
    client = serving.registry().client
    client.set_registered_model_alias(serving.model_name, "champion", unjudged)
    try:
        wait_until(lambda: all("without a promotion verdict" in " ".join(serving.get("/health").json()["problems"])
                               for _ in range(6)), 30, "every worker refuses it")  # fmt: skip
        assert serving.get("/health").json()["status"] == "degraded"
        answers = [serving.post("/predict", EXAMPLE) for _ in range(10)]
        versions = {a.json()["model_version"] for a in answers if a.status_code == 200}
        # the old version keeps answering; never the unjudged one (once, under a heavily loaded machine, one
        # answer here was not a 200: its body is shown if that happens again)
        assert versions == {serving_now}, [(a.status_code, a.text[:300]) for a in answers]
        serving.registry().promote(unjudged, "serving test: now through the gate")  # a verdict: followed
        wait_until(lambda: serving.all_workers_serve(unjudged), 60, "every worker serves it once it has a verdict")
    finally:
        serving.registry().promote(serving_now, "serving test: back")
    wait_until(lambda: serving.all_workers_serve(serving_now), 60, "back to the previous version")
