"""drift_sensor against an instance holding drift-report materializations."""

from __future__ import annotations

import pytest
from dagster import AssetMaterialization, DagsterRunStatus, RunsFilter, SkipReason, build_sensor_context
from dagster._core.test_utils import create_run_for_test

from mlops_assets.core.contracts import DriftDecision, Meta
from mlops_assets.demo import Loop
from mlops_assets.sensors import drift_sensor, ingestion_sensor
from mlops_assets.settings import Settings


def report(instance, batch: str, decision: DriftDecision, same_run: bool = False) -> None:
    instance.add_dynamic_partitions("batches", [batch])
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key="drift_report",
            partition=batch,
            metadata={
                Meta.REPORT_ID: f"{batch}-vs-v1",
                Meta.DECISION: decision.value,
                Meta.WHY: "median price +30%" if decision.trains else "no column moved",
                Meta.TRAINS_IN_SAME_RUN: same_run,
            },
        )
    )


def tick(instance, cursor):
    return drift_sensor(build_sensor_context(instance=instance, cursor=cursor))


def test_one_run_per_report_that_asks_for_training_and_none_otherwise(instance):
    report(instance, "00001", DriftDecision.BASELINE)
    report(instance, "00002", DriftDecision.NO_DRIFT)
    report(instance, "00003", DriftDecision.DRIFT)
    report(instance, "00004", DriftDecision.DRIFT, same_run=True)  # an mlops_pipeline run trains itself

    result = tick(instance, None)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        ("00001", "train-00001-vs-v1"),
        ("00003", "train-00003-vs-v1"),
    ]
    assert result.run_requests[1].tags == {
        "mlops/trigger": "drift_sensor",
        "mlops/drift_report_id": "00003-vs-v1",
        "mlops/decision": DriftDecision.DRIFT,
    }

    # the cursor moved past these reports: nothing is requested twice
    again = tick(instance, result.cursor)
    assert isinstance(again, SkipReason) and again.skip_message == "no new drift reports"

    report(instance, "00005", DriftDecision.NO_DRIFT)
    quiet = tick(instance, result.cursor)
    assert quiet.run_requests == [] and "none asking for training" in quiet.skip_reason.skip_message

    report(instance, "00006", DriftDecision.DRIFT)
    later = tick(instance, quiet.cursor)
    assert [r.partition_key for r in later.run_requests] == ["00006"]


def test_a_report_already_answered_by_a_run_is_not_trained_again(instance):
    report(instance, "00001", DriftDecision.BASELINE)
    report(instance, "00002", DriftDecision.DRIFT)
    # a training already ran for batch 1's report (by the demo, or by an earlier daemon), even one that failed
    create_run_for_test(
        instance,
        job_name="train_job",
        tags={"mlops/drift_report_id": "00001-vs-v1", "dagster/partition": "00001"},
        status=DagsterRunStatus.FAILURE,
    )
    result = tick(instance, None)  # a fresh cursor, as a new daemon starts
    assert [r.partition_key for r in result.run_requests] == ["00002"]


@pytest.mark.slow  # ingests and trains three batches
def test_a_fresh_daemon_after_the_demo_trains_nothing_again(instance, settings_env):
    """`make dev` after `make demo`: the daemon's drift_sensor starts without a cursor and sees every
    drift report of the demo; all that asked for training were trained, so it requests nothing."""
    settings = Settings.from_env(
        {
            **settings_env,
            "MLOPS_SIM_BATCHES": "3",
            "MLOPS_TRAIN_TRIALS": "1",
            "MLOPS_SIM_MIN_ROWS": "3000",
            "MLOPS_SIM_MAX_ROWS": "4000",
        }
    )
    loop = Loop(instance, settings)
    trained = 0
    for _ in range(10):  # the demo's loop, to the end of the source
        ingests, skip = loop.tick(ingestion_sensor)
        if not ingests:
            break
        assert loop.execute("ingest_job", ingests[0]).success
        trains, _ = loop.tick(drift_sensor)
        for request in trains:
            assert loop.execute("train_job", request).success
        trained += len(trains)
    assert "exhausted after batch 00003" in skip
    assert trained == 2  # baseline on batch 1, drift on batch 3
    # the sensor's delete request for the batch the source does not have was applied, not re-added
    assert sorted(instance.get_dynamic_partitions("batches")) == ["00001", "00002", "00003"]

    fresh = tick(instance, None)
    assert fresh.run_requests == [], [r.run_key for r in fresh.run_requests]
    assert "none asking for training (2 already trained)" in fresh.skip_reason.skip_message

    # the demo's runs are what they are: sensor-launched, with the requests' tags and run keys
    trains = instance.get_runs(RunsFilter(job_name="train_job"))
    assert {r.tags["dagster/sensor_name"] for r in trains} == {"drift_sensor"}
    assert {r.tags["mlops/trigger"] for r in trains} == {"drift_sensor"}
    assert {r.tags["dagster/run_key"] for r in trains} == {f"train-{r.tags['mlops/drift_report_id']}" for r in trains}
    ingests = instance.get_runs(RunsFilter(job_name="ingest_job"))
    assert {r.tags["dagster/sensor_name"] for r in ingests} == {"ingestion_sensor"}
