"""The ingestion sensor walks the batches one at a time - each judged, and trained if it asked to be,
before the next - and stops once the source is exhausted. A source failure is asked for again after
a pause, a bounded number of times; a batch that failed its checks is not, and the sensor names the
re-fetch that recovers it."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pandas as pd
import pytest
from dagster import DagsterRunStatus, RunRequest, SkipReason, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from mlops_assets.definitions import build_definitions
from mlops_assets.resources import BatchApiSourceResource
from mlops_assets.sensors import ingestion_sensor
from mlops_assets.settings import Settings
from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.sources.simulator import make_server
from tests.conftest import ServerThread

pytestmark = pytest.mark.slow  # ingests and trains batches


def tick(instance, cursor=None):
    return ingestion_sensor(build_sensor_context(instance=instance, cursor=cursor))


def execute(instance, settings, job: str, key: str) -> None:
    job_def = build_definitions(settings).resolve_job_def(job)
    assert job_def.execute_in_process(partition_key=key, instance=instance).success


def test_walks_batches_in_order_waits_for_training_and_stops_when_exhausted(instance, settings_env):
    settings = Settings.from_env(
        {
            **settings_env,
            "MLOPS_SIM_BATCHES": "2",
            "MLOPS_TRAIN_TRIALS": "1",
            "MLOPS_SIM_MIN_ROWS": "3000",
            "MLOPS_SIM_MAX_ROWS": "4000",
        }
    )
    result = tick(instance)
    [request] = result.run_requests
    assert request.partition_key == "00001" and request.run_key == "ingest-00001"
    assert list(result.dynamic_partitions_requests[0].partition_keys) == ["00001"]
    instance.add_dynamic_partitions("batches", ["00001"])
    # nothing ran for the new batch yet: the sensor asks again for the same batch only
    again = tick(instance)
    assert again.run_requests[0].run_key == "ingest-00001" and not again.dynamic_partitions_requests

    execute(instance, settings, "ingest_job", "00001")
    # batch 1's drift report asks for a baseline training: the next batch waits for it
    waiting = tick(instance)
    assert isinstance(waiting, SkipReason) and "waiting for the training" in waiting.skip_message
    execute(instance, settings, "train_job", "00001")

    result = tick(instance)
    assert result.run_requests[0].partition_key == "00002"
    instance.add_dynamic_partitions("batches", ["00002"])
    execute(instance, settings, "ingest_job", "00002")  # no drift: no training to wait for

    result = tick(instance)
    assert result.run_requests[0].partition_key == "00003"
    instance.add_dynamic_partitions("batches", ["00003"])
    execute(instance, settings, "ingest_job", "00003")  # the source has no batch 3

    result = tick(instance)
    assert "exhausted after batch 00002" in result.skip_reason.skip_message
    [delete] = result.dynamic_partitions_requests
    assert list(delete.partition_keys) == ["00003"]
    assert json.loads(result.cursor) == {"exhausted_after": "00002"}
    stopped = tick(instance, result.cursor)
    assert isinstance(stopped, SkipReason) and "not asking again" in stopped.skip_message


def test_waits_for_a_running_batch_and_halts_on_a_failed_one(instance):
    instance.add_dynamic_partitions("batches", ["00001"])
    tags = {"dagster/partition": "00001"}
    create_run_for_test(instance, job_name="ingest_job", tags=tags, status=DagsterRunStatus.STARTED)
    waiting = tick(instance)
    assert isinstance(waiting, SkipReason) and "still being ingested" in waiting.skip_message

    # a run that died without a failed check is taken for a transient failure: retried after a pause
    create_run_for_test(instance, job_name="ingest_job", tags=tags, status=DagsterRunStatus.FAILURE)
    halted = tick(instance)
    assert isinstance(halted, SkipReason) and "batch 00001 is not in" in halted.skip_message
    assert "ended FAILURE" in halted.skip_message and "retry 1 of 3 in " in halted.skip_message

    # a cancelled run was stopped on purpose: not retried
    create_run_for_test(instance, job_name="ingest_job", tags=tags, status=DagsterRunStatus.CANCELED)
    cancelled = tick(instance)
    assert isinstance(cancelled, SkipReason) and "ended CANCELED" in cancelled.skip_message
    assert "re-run ingest_job" in cancelled.skip_message


REFETCH = {"ops": {"raw_listings": {"config": {"refetch": True}}}}


class FaultySource:
    """The simulator over real HTTP, with faults switched on and off by the test: an outage (every
    batch request answered HTTP 500, so the client gives up) or a bad batch (a non-numeric price)."""

    def __init__(self, settings: Settings) -> None:
        self.generator = ListingGenerator(
            settings.simulator_seed, 2, settings.simulator_min_rows, settings.simulator_max_rows
        )
        self.down = False
        self.bad: set[int] = set()
        self.server = ServerThread(make_server(self.batch))

    def batch(self, number: int) -> pd.DataFrame | None:
        if self.down:
            raise ConnectionError("the data store behind the API is down")
        frame = self.generator.batch(number)
        if frame is not None and number in self.bad:
            frame = frame.assign(price=frame["price"].astype(object))
            frame.loc[5, "price"] = "call for price"
        return frame

    def resources(self) -> dict:
        # no client-side retries: the outage outlasts them at once, and the test stays fast
        return {"source": BatchApiSourceResource(url=self.server.url, retries=0)}


@pytest.fixture
def source(settings) -> Iterator[FaultySource]:
    faulty = FaultySource(settings)
    yield faulty
    faulty.server.close()


def ingest(instance, settings, source: FaultySource, request: RunRequest, run_config: dict | None = None) -> bool:
    """Runs an ingest request as the daemon would: its partition, its tags."""
    job_def = build_definitions(settings).resolve_job_def("ingest_job")
    return job_def.execute_in_process(
        partition_key=request.partition_key,
        instance=instance,
        tags=request.tags,
        run_config=run_config,
        resources=source.resources(),
        raise_on_error=False,
    ).success


def first_batch_requested(instance) -> RunRequest:
    [request] = tick(instance).run_requests
    instance.add_dynamic_partitions("batches", [request.partition_key])
    return request


def test_a_source_outage_is_retried_after_a_pause_until_the_batch_is_in(instance, settings, source, monkeypatch):
    source.down = True
    assert not ingest(instance, settings, source, first_batch_requested(instance))

    waiting = tick(instance)
    assert isinstance(waiting, SkipReason) and "batch 00001 is not in" in waiting.skip_message
    assert "SourceError: GET " in waiting.skip_message and "HTTP 500" in waiting.skip_message
    assert "retry 1 of 3 in " in waiting.skip_message  # the pause (60 s) is not over yet

    monkeypatch.setenv("MLOPS_INGEST_RETRY_SECONDS", "0")  # the pause is over
    [retry] = tick(instance).run_requests
    assert retry.partition_key == "00001" and retry.run_key == "ingest-00001-attempt-2"
    assert retry.tags["mlops/attempt"] == "2"
    source.down = False  # the source is back before the retry runs
    assert ingest(instance, settings, source, retry)
    after = tick(instance)
    assert isinstance(after, SkipReason) and "waiting for the training" in after.skip_message


def test_a_source_outage_is_retried_a_bounded_number_of_times(instance, settings, source, monkeypatch):
    monkeypatch.setenv("MLOPS_INGEST_RETRIES", "2")
    monkeypatch.setenv("MLOPS_INGEST_RETRY_SECONDS", "0")
    source.down = True
    assert not ingest(instance, settings, source, first_batch_requested(instance))
    run_keys = []
    for _ in range(2):
        [retry] = tick(instance).run_requests
        run_keys.append(retry.run_key)
        assert not ingest(instance, settings, source, retry)
    assert run_keys == ["ingest-00001-attempt-2", "ingest-00001-attempt-3"]

    gave_up = tick(instance)
    assert isinstance(gave_up, SkipReason) and "gave up after 3 attempts" in gave_up.skip_message
    assert "HTTP 500" in gave_up.skip_message
    assert "dagster job launch -w workspace.yaml -j ingest_job --tags" in gave_up.skip_message
    assert isinstance(tick(instance), SkipReason)  # and stays given up

    # the action it names, once the source is back: a plain re-run of ingest_job for the batch
    source.down = False
    assert ingest(instance, settings, source, RunRequest(partition_key="00001"))
    assert "waiting for the training" in tick(instance).skip_message


def test_a_batch_that_failed_its_checks_is_not_retried_and_the_sensor_names_the_refetch(
    instance, settings, source, monkeypatch
):
    monkeypatch.setenv("MLOPS_INGEST_RETRY_SECONDS", "0")  # no pause: only the bad data holds it back
    source.bad = {1}
    assert not ingest(instance, settings, source, first_batch_requested(instance))

    halted = tick(instance)
    assert isinstance(halted, SkipReason), "a bad batch must not be asked for again"
    message = halted.skip_message
    assert "batch 00001 is not in" in message and "failed its checks" in message and "not retried" in message
    assert "schema_and_types: price: 1 non-numeric value(s), e.g. 'call for price'" in message
    assert json.dumps(REFETCH) in message and "replays the stored bad copy" in message
    assert f"--config-json '{json.dumps(REFETCH)}'" in message

    source.bad = set()  # the source is fixed
    # a plain re-run replays the stored bad copy: still bad, still halted
    assert not ingest(instance, settings, source, RunRequest(partition_key="00001"))
    assert "failed its checks" in tick(instance).skip_message
    # the action the sensor names: ingest_job with the refetch run config
    assert ingest(instance, settings, source, RunRequest(partition_key="00001"), run_config=REFETCH)
    assert "waiting for the training" in tick(instance).skip_message
