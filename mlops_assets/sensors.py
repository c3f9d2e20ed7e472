"""Sensors: the ingestion loop, and the drift gate in front of training."""

from __future__ import annotations

import json
import os
import time

from dagster import (
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRunStatus,
    DefaultSensorStatus,
    RunRecord,
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
#: The tag that ties a training run to the drift report it answers.
REPORT_TAG = "mlops/drift_report_id"
#: Which try of a batch's ingestion a run is (1 = the first request).
ATTEMPT_TAG = "mlops/attempt"
#: The run config that makes raw_listings ask the source again instead of replaying its stored copy.
REFETCH = {"ops": {"raw_listings": {"config": {"refetch": True}}}}


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


def _latest_run(instance: DagsterInstance, job_name: str, key: str) -> RunRecord | None:
    """The newest run of a job for a batch, as a record: its end time paces the retries."""
    records = instance.get_run_records(RunsFilter(job_name=job_name, tags={"dagster/partition": key}), limit=1)
    return records[0] if records else None


def ingest_retries() -> int:
    """How many times a batch that failed for another reason than its checks is asked for again
    (MLOPS_INGEST_RETRIES): a source outage outlasts the client's few seconds of backoff."""
    return int(os.environ.get("MLOPS_INGEST_RETRIES", "3"))


def retry_pause(attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` before the next: MLOPS_INGEST_RETRY_SECONDS
    (60), doubled each time, so three retries span about 7 minutes of outage."""
    return float(os.environ.get("MLOPS_INGEST_RETRY_SECONDS", "60")) * 2 ** (attempt - 1)


def _root_message(error) -> str:
    """The first line of the innermost cause: the source's error, not Dagster's wrapper."""
    while error.cause is not None:
        error = error.cause
    text = error.message.strip()
    if not text:
        return error.cls_name or "error"
    first = text.splitlines()[0]
    name, _, rest = first.partition(": ")
    return f"{name.rsplit('.', 1)[-1]}: {rest}" if rest and "." in name and " " not in name else first


def failed_checks(instance: DagsterInstance, run_id: str) -> list[str]:
    """The checks a run failed, each with its reasons: a batch with any is bad data, which
    asking again cannot fix, unlike a source failure. One read of the run's check events."""
    events = instance.all_logs(run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION)
    evaluations = [e.dagster_event.event_specific_data for e in events if e.dagster_event]
    return [f"{c.check_name}: {c.description or 'failed'}" for c in evaluations if not c.passed]


def _run_error(instance: DagsterInstance, run_id: str) -> str:
    """Why a run failed, from its first step failure (the run may also have died without one)."""
    for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        data = event.dagster_event.step_failure_data if event.dagster_event else None
        if data is not None and data.error is not None:
            return f"{event.dagster_event.step_key}: {_root_message(data.error)}"
    return "no step failed (the run itself did)"


def launch_command(key: str, run_config: dict | None = None) -> str:
    """The command that re-runs ingest_job for a batch (the daemon of `make dev` starts it)."""
    tags = json.dumps({"dagster/partition": key})
    command = f".venv/bin/dagster job launch -w workspace.yaml -j ingest_job --tags '{tags}'"
    return command + (f" --config-json '{json.dumps(run_config)}'" if run_config else "")


def bad_batch_action(key: str) -> str:
    """The one action that recovers a batch that failed its checks: a plain re-run replays the
    stored bad copy, so the batch must be fetched again, once the source serves it right."""
    return (
        f"once the source serves a good batch {key}, re-run ingest_job for partition {key} with run config "
        f"{json.dumps(REFETCH)} (a plain re-run replays the stored bad copy): {launch_command(key, REFETCH)}"
    )


def _ingest(key: str, add_partition: bool, attempt: int = 1) -> SensorResult:
    """Ask for a batch; a retry gets its own run_key, or the daemon would take it for a duplicate."""
    return SensorResult(
        run_requests=[
            RunRequest(
                partition_key=key,
                run_key=f"ingest-{key}" if attempt == 1 else f"ingest-{key}-attempt-{attempt}",
                tags={"mlops/trigger": "ingestion_sensor", ATTEMPT_TAG: str(attempt)},
            )
        ],
        dynamic_partitions_requests=[batch_partitions.build_add_request([key])] if add_partition else [],
    )


def _after_failed_ingest(instance: DagsterInstance, key: str, record: RunRecord) -> SensorResult | SkipReason:
    """A batch whose last ingestion did not get it in: bad data waits for a person (with the one
    action that fixes it); anything else - the source down, a crashed run - is asked for again
    after a growing pause, a bounded number of times."""
    run = record.dagster_run
    not_in = f"batch {key} is not in (run {run.run_id} ended {run.status.value}"
    if run.status != DagsterRunStatus.FAILURE:
        return SkipReason(
            f"{not_in}): re-run ingest_job for it ({launch_command(key)}); ingestion continues once it is in"
        )
    checks = failed_checks(instance, run.run_id)
    if checks:
        return SkipReason(
            f"{not_in}: it failed its checks - {'; '.join(checks)}). The data is bad, so it is not retried: "
            f"{bad_batch_action(key)}; ingestion continues once it is in"
        )
    error = _run_error(instance, run.run_id)
    attempt = int(run.tags.get(ATTEMPT_TAG, "1"))
    if attempt > ingest_retries():
        return SkipReason(
            f"{not_in}: {error}); gave up after {attempt} attempts. Once the source is back, re-run ingest_job "
            f"for partition {key} ({launch_command(key)}); the sensor retries again if that run fails the same way"
        )
    ended = record.end_time or record.update_timestamp.timestamp()
    wait = retry_pause(attempt) - (time.time() - ended)
    if wait > 0:
        return SkipReason(f"{not_in}: {error}); retry {attempt} of {ingest_retries()} in {wait:.0f}s")
    return _ingest(key, add_partition=False, attempt=attempt + 1)


@sensor(job=ingest_job, minimum_interval_seconds=INTERVAL, default_status=DefaultSensorStatus.RUNNING)
def ingestion_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Requests the next batch once the previous one is in and, if its drift report asked for
    training, trained - so each batch is judged against the champion the batches before it made.
    A batch that failed for a transient reason is asked for again; one that failed its checks
    waits for a fixed source and a re-fetch. Stops once the source says it has no more data
    (reset this sensor's cursor after restarting the source to read again)."""
    state = json.loads(context.cursor) if context.cursor else {}
    if "exhausted_after" in state:
        return SkipReason(f"the source is exhausted (last batch {state['exhausted_after']}); not asking again")
    instance = context.instance
    keys = sorted(instance.get_dynamic_partitions(batch_partitions.name))
    if not keys:
        return _ingest(batch_key(1), add_partition=True)
    last = keys[-1]
    ingest = _latest_run(instance, ingest_job.name, last)
    if ingest is not None and not ingest.dagster_run.is_finished:
        return SkipReason(f"batch {last} is still being ingested (run {ingest.dagster_run.run_id})")
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
        return _after_failed_ingest(instance, last, ingest)
    if str(drift["decision"]).startswith("train") and not drift.get("trains_in_same_run"):
        train = _latest_run(instance, train_job.name, last)
        if train is None or not train.dagster_run.is_finished:
            return SkipReason(f"waiting for the training that batch {last}'s drift report asked for")
    return _ingest(batch_key(batch_number(last) + 1), add_partition=True)


def _answered(instance: DagsterInstance, report_ids: list[str]) -> dict[str, str]:
    """Report id -> the run that already answered it: any run tagged with the report id, in any
    state. A sensor starting without a cursor (a new daemon after `make demo`, a reset) sees the
    whole history again and must not train it twice. One query for the whole tick."""
    if not report_ids:
        return {}
    runs = instance.get_runs(RunsFilter(tags={REPORT_TAG: report_ids}))
    return {run.tags[REPORT_TAG]: run.run_id for run in runs}


@sensor(job=train_job, minimum_interval_seconds=INTERVAL, default_status=DefaultSensorStatus.RUNNING)
def drift_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """One training run per drift report that asks for one (drift detected, or no champion yet)
    and that no run has answered yet; a report without drift is skipped and costs nothing.
    Reports made inside mlops_pipeline runs are left alone: those runs train (or not) themselves."""
    after = int(context.cursor) if context.cursor else None
    records = context.instance.fetch_materializations(
        AssetRecordsFilter(asset_key=DRIFT_REPORT, after_storage_id=after), limit=100, ascending=True
    ).records
    if not records:
        return SkipReason("no new drift reports")
    reports = [(r.partition_key, {k: v.value for k, v in r.asset_materialization.metadata.items()}) for r in records]
    asking = [(batch, meta) for batch, meta in reports if not meta.get("trains_in_same_run")]
    answered = _answered(
        context.instance, [str(m["report_id"]) for _, m in asking if str(m["decision"]).startswith("train")]
    )
    requests = []
    for batch, meta in asking:
        report_id = str(meta["report_id"])
        if not str(meta["decision"]).startswith("train"):
            context.log.info(f"batch {batch}: skipped: no drift - {meta['why']}")
        elif report_id in answered:
            context.log.info(
                f"batch {batch}: drift report {report_id} was already answered by run {answered[report_id]} "
                f"({REPORT_TAG}={report_id}); not training it again"
            )
        else:
            requests.append(
                RunRequest(
                    partition_key=batch,
                    run_key=f"train-{report_id}",
                    tags={
                        "mlops/trigger": "drift_sensor",
                        REPORT_TAG: report_id,
                        "mlops/decision": str(meta["decision"]),
                    },
                )
            )
            context.log.info(f"batch {batch}: training requested - {meta['decision']}: {meta['why']}")
    cursor = str(records[-1].storage_id)
    if not requests:
        done = f" ({len(answered)} already trained)" if answered else ""
        return SensorResult(skip_reason=f"new drift reports, none asking for training{done}", cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)
