"""drift_sensor against an instance holding drift-report materializations."""

from __future__ import annotations

from dagster import AssetMaterialization, SkipReason, build_sensor_context

from mlops_assets.sensors import drift_sensor


def report(instance, batch: str, decision: str, same_run: bool = False) -> None:
    instance.add_dynamic_partitions("batches", [batch])
    instance.report_runless_asset_event(
        AssetMaterialization(
            asset_key="drift_report",
            partition=batch,
            metadata={
                "report_id": f"{batch}-vs-v1",
                "decision": decision,
                "why": "median price +30%" if decision.startswith("train") else "no column moved",
                "trains_in_same_run": same_run,
            },
        )
    )


def tick(instance, cursor):
    return drift_sensor(build_sensor_context(instance=instance, cursor=cursor))


def test_one_run_per_report_that_asks_for_training_and_none_otherwise(instance):
    report(instance, "00001", "train: baseline (no champion yet)")
    report(instance, "00002", "skip: no drift")
    report(instance, "00003", "train: drift detected")
    report(instance, "00004", "train: drift detected", same_run=True)  # an mlops_pipeline run trains itself

    result = tick(instance, None)
    assert [(r.partition_key, r.run_key) for r in result.run_requests] == [
        ("00001", "train-00001-vs-v1"),
        ("00003", "train-00003-vs-v1"),
    ]
    assert result.run_requests[1].tags == {
        "mlops/trigger": "drift_sensor",
        "mlops/drift_report_id": "00003-vs-v1",
        "mlops/decision": "train: drift detected",
    }

    # the cursor moved past these reports: nothing is requested twice
    again = tick(instance, result.cursor)
    assert isinstance(again, SkipReason) and again.skip_message == "no new drift reports"

    report(instance, "00005", "skip: no drift")
    quiet = tick(instance, result.cursor)
    assert quiet.run_requests == [] and "none asking for training" in quiet.skip_reason.skip_message

    report(instance, "00006", "train: drift detected")
    later = tick(instance, quiet.cursor)
    assert [r.partition_key for r in later.run_requests] == ["00006"]
