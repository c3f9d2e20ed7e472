"""The ingestion sensor walks the batches one at a time - each judged, and trained if it asked to be,
before the next - and stops once the source is exhausted."""

from __future__ import annotations

import json

import pytest
from dagster import DagsterRunStatus, SkipReason, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from mlops_assets.definitions import build_definitions
from mlops_assets.sensors import ingestion_sensor
from mlops_assets.settings import Settings

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

    create_run_for_test(instance, job_name="ingest_job", tags=tags, status=DagsterRunStatus.FAILURE)
    halted = tick(instance)
    assert isinstance(halted, SkipReason) and "batch 00001 is not in" in halted.skip_message
    assert "ended FAILURE" in halted.skip_message
