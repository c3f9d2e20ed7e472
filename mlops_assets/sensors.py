"""Sensors: the ingestion loop, and the drift gate in front of training."""

from __future__ import annotations

import json
import os

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterInstance,
    DagsterRun,
    DefaultSensorStatus,
    RunRequest,
    RunsFilter,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    sensor,
)

from mlops_assets.jobs import ingest_job, train_job
from mlops_assets.partitions import batch_key, batch_number, batch_partitions

#: How often the daemon evaluates the sensors (seconds).
INTERVAL = int(os.environ.get("MLOPS_SENSOR_INTERVAL_SECONDS", "30"))
RAW = AssetKey("raw_listings")
DRIFT_REPORT = AssetKey("drift_report")


def _source_exhausted(instance: DagsterInstance, key: str) -> bool:
    records = instance.fetch_observations(AssetRecordsFilter(asset_key=RAW, asset_partitions=[key]), limit=1).records
    return bool(records) and bool(records[0].asset_observation.metadata.get("source_exhausted"))


def _drift_metadata(instance: DagsterInstance, key: str) -> dict | None:
    """The latest drift report of a batch: ingest_job's last step, so the batch is in."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=DRIFT_REPORT, asset_partitions=[key]), limit=1
    ).records
    if not records:
        return None
    return {k: v.value for k, v in records[0].asset_materialization.metadata.items()}


def _latest_run(instance: DagsterInstance, job_name: str, key: str) -> DagsterRun | None:
    runs = instance.get_runs(RunsFilter(job_name=job_name, tags={"dagster/partition": key}), limit=1)
    return runs[0] if runs else None


def _ingest(key: str, add_partition: bool) -> SensorResult:
    return SensorResult(
        run_requests=[
            RunRequest(
                partition_key=key,
                run_key=f"ingest-{key}",
                tags={"mlops/trigger": "ingestion_sensor"},
            )
        ],
        dynamic_partitions_requests=[batch_partitions.build_add_request([key])] if add_partition else [],
    )


@sensor(job=ingest_job, minimum_interval_seconds=INTERVAL, default_status=DefaultSensorStatus.RUNNING)
def ingestion_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Requests the next batch once the previous one is in and, if its drift report asked for
    training, trained - so each batch is judged against the champion the batches before it made.
    Stops once the source says it has no more data (reset this sensor's cursor after restarting
    the source to read again)."""
    state = json.loads(context.cursor) if context.cursor else {}
    if "exhausted_after" in state:
        return SkipReason(f"the source is exhausted (last batch {state['exhausted_after']}); not asking again")
    instance = context.instance
    keys = sorted(instance.get_dynamic_partitions(batch_partitions.name))
    if not keys:
        return _ingest(batch_key(1), add_partition=True)
    last = keys[-1]
    ingest = _latest_run(instance, ingest_job.name, last)
    if ingest is not None and not ingest.is_finished:
        return SkipReason(f"batch {last} is still being ingested (run {ingest.run_id})")
    drift = _drift_metadata(instance, last)
    if drift is None:
        if last not in instance.get_materialized_partitions(RAW) and _source_exhausted(instance, last):
            done = batch_key(batch_number(last) - 1)
            return SensorResult(
                skip_reason=f"the source has no batch {last}: exhausted after batch {done}",
                dynamic_partitions_requests=[batch_partitions.build_delete_request([last])],
                cursor=json.dumps({"exhausted_after": done}),
            )
        if ingest is None:
            return _ingest(last, add_partition=False)
        return SkipReason(
            f"batch {last} is not in (run {ingest.run_id} ended {ingest.status.value}): fix the cause and "
            "re-materialize it; ingestion continues once it is in"
        )
    if str(drift["decision"]).startswith("train") and not drift.get("trains_in_same_run"):
        train = _latest_run(instance, train_job.name, last)
        if train is None or not train.is_finished:
            return SkipReason(f"waiting for the training that batch {last}'s drift report asked for")
    return _ingest(batch_key(batch_number(last) + 1), add_partition=True)


@sensor(job=train_job, minimum_interval_seconds=INTERVAL, default_status=DefaultSensorStatus.RUNNING)
def drift_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """One training run per drift report that asks for one (drift detected, or no champion yet);
    a report without drift is skipped and costs nothing. Reports made inside mlops_pipeline runs
    are left alone: those runs train (or not) themselves."""
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=DRIFT_REPORT, after_storage_id=after), limit=100, ascending=True
    ).records
    if not records:
        return SkipReason("no new drift reports")
    requests = []
    for record in records:
        meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
        batch = record.partition_key
        if meta.get("trains_in_same_run"):
            continue
        if str(meta["decision"]).startswith("train"):
            requests.append(
                RunRequest(
                    partition_key=batch,
                    run_key=f"train-{meta['report_id']}",
                    tags={
                        "mlops/trigger": "drift_sensor",
                        "mlops/drift_report_id": str(meta["report_id"]),
                        "mlops/decision": str(meta["decision"]),
                    },
                )
            )
            context.log.info(f"batch {batch}: training requested - {meta['decision']}: {meta['why']}")
        else:
            context.log.info(f"batch {batch}: skipped: no drift - {meta['why']}")
    cursor = str(records[-1].storage_id)
    if not requests:
        return SensorResult(skip_reason="new drift reports, none asking for training", cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)
