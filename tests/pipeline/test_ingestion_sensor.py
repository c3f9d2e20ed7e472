"""The ingestion sensor walks the batches one at a time and stops once the source is exhausted."""

from __future__ import annotations

import json

from dagster import DagsterRunStatus, SensorResult, SkipReason, build_sensor_context

from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.sensors import ingestion_sensor
from mlops_assets.settings import Settings
from tests.pipeline.helpers import run_batch


def tick(instance, cursor=None):
    return ingestion_sensor(build_sensor_context(instance=instance, cursor=cursor))


def test_walks_batches_in_order_and_stops_when_exhausted(instance, settings_env):
    settings = Settings.from_env({**settings_env, "MLOPS_SIM_BATCHES": "2"})
    cursor = None
    for expected in ("00001", "00002", "00003"):
        result = tick(instance, cursor)
        assert isinstance(result, SensorResult)
        [request] = result.run_requests
        assert request.partition_key == expected and request.run_key == f"ingest-{expected}"
        [add] = result.dynamic_partitions_requests
        assert list(add.partition_keys) == [expected]
        instance.add_dynamic_partitions("batches", [expected])
        # while nothing ran for the new batch, the sensor asks again for the same batch only
        again = tick(instance, cursor)
        assert again.run_requests[0].run_key == f"ingest-{expected}" and not again.dynamic_partitions_requests
        run_batch(instance, settings, [raw_listings, clean_listings], expected, tags={"dagster/partition": expected})

    # batch 3 does not exist: the sensor removes the empty partition and stops asking
    result = tick(instance, cursor)
    assert "exhausted after batch 00002" in result.skip_reason.skip_message
    [delete] = result.dynamic_partitions_requests
    assert list(delete.partition_keys) == ["00003"]
    assert json.loads(result.cursor) == {"exhausted_after": "00002"}
    stopped = tick(instance, result.cursor)
    assert isinstance(stopped, SkipReason) and "not asking again" in stopped.skip_message


def test_waits_for_a_running_batch_and_halts_on_a_failed_one(instance):
    instance.add_dynamic_partitions("batches", ["00001"])
    from dagster._core.test_utils import create_run_for_test

    create_run_for_test(
        instance, job_name="ingest_job", tags={"dagster/partition": "00001"}, status=DagsterRunStatus.STARTED
    )
    waiting = tick(instance)
    assert isinstance(waiting, SkipReason) and "still being ingested" in waiting.skip_message

    create_run_for_test(
        instance, job_name="ingest_job", tags={"dagster/partition": "00001"}, status=DagsterRunStatus.FAILURE
    )
    halted = tick(instance)
    assert isinstance(halted, SkipReason) and "batch 00001 failed" in halted.skip_message
