"""Sensors: the ingestion loop, and the drift gate in front of training.

The ingestion sensor looks at the newest batch partition and acts on its state, one row of this
table per tick (`BatchState`, `ingestion_sensor`):

| state of the newest batch | how the sensor tells | what it does |
|---|---|---|
| `NONE` | no batch partition yet | adds partition 00001 and asks for it |
| `INGESTING` | its latest `ingest_job` run is not finished | waits |
| `EXHAUSTED` | not loaded; `raw_listings` observed `source_exhausted` | drops the empty partition, stops (cursor) |
| `NOT_ASKED` | its partition exists, no `ingest_job` run | asks for it |
| `FAILED` | its latest `ingest_job` run ended without a drift report | see below |
| `AWAITING_TRAINING` | its drift report asks for training no finished `train_job` run answered (1) | waits |
| `DONE` | its drift report is in and answered | adds the next partition and asks for it |

`FAILED`: a batch that failed its checks waits for a fixed source and a re-fetch (retrying cannot fix
bad data); any other failure is retried after a growing pause, `MLOPS_INGEST_RETRIES` times; a run
that was canceled waits for a person. (1) A report made by a run that trains itself (`mlops_pipeline`,
`Meta.TRAINS_IN_SAME_RUN`) is answered by that run.
"""

from __future__ import annotations

import json
import time
from enum import Enum

from dagster import (
    AssetKey,
    AssetMaterialization,
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

from mlops_assets.core.contracts import DriftDecision, Meta, Tag, Trigger
from mlops_assets.jobs import ingest_job, train_job
from mlops_assets.partitions import batch_key, batch_number, batch_partitions
from mlops_assets.settings import Settings

#: How often the daemon evaluates the sensors (seconds): MLOPS_SENSOR_INTERVAL_SECONDS, read at import.
INTERVAL = Settings.from_env().sensor_interval_seconds
RAW = AssetKey("raw_listings")
DRIFT_REPORT = AssetKey("drift_report")
#: The run config that makes raw_listings ask the source again instead of replaying its stored copy.
REFETCH = {"ops": {"raw_listings": {"config": {"refetch": True}}}}


def _source_exhausted(instance: DagsterInstance, key: str) -> bool:
    records = instance.fetch_observations(AssetRecordsFilter(asset_key=RAW, asset_partitions=[key]), limit=1).records
    observation = records[0].asset_observation if records else None
    return observation is not None and bool(observation.metadata.get(Meta.SOURCE_EXHAUSTED))


def _drift_metadata(instance: DagsterInstance, key: str) -> dict | None:
    """The latest drift report of a batch: ingest_job's last step, so the batch is in."""
    records = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=DRIFT_REPORT, asset_partitions=[key]), limit=1
    ).records
    materialization = records[0].asset_materialization if records else None
    if materialization is None:
        return None
    return {k: v.value for k, v in materialization.metadata.items()}


def _latest_run(instance: DagsterInstance, job_name: str, key: str) -> RunRecord | None:
    """The newest run of a job for a batch, as a record: its end time paces the retries."""
    records = instance.get_run_records(RunsFilter(job_name=job_name, tags={Tag.PARTITION: key}), limit=1)
    return records[0] if records else None


def retry_pause(settings: Settings, attempt: int) -> float:
    """Seconds to wait after failed attempt `attempt` before the next: MLOPS_INGEST_RETRY_SECONDS
    (60), doubled each time, so three retries span about 7 minutes of outage (a source outage
    outlasts the client's few seconds of backoff)."""
    return settings.ingest_retry_seconds * 2 ** (attempt - 1)


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
    evaluations = [e.dagster_event.asset_check_evaluation_data for e in events if e.dagster_event]
    return [f"{c.check_name}: {c.description or 'failed'}" for c in evaluations if not c.passed]


def _run_error(instance: DagsterInstance, run_id: str) -> str:
    """Why a run failed, from its first step failure (the run may also have died without one)."""
    for event in instance.all_logs(run_id, of_type=DagsterEventType.STEP_FAILURE):
        dagster_event = event.dagster_event
        data = dagster_event.step_failure_data if dagster_event else None
        if dagster_event is not None and data is not None and data.error is not None:
            return f"{dagster_event.step_key}: {_root_message(data.error)}"
    return "no step failed (the run itself did)"


def launch_command(key: str, run_config: dict | None = None) -> str:
    """The command that re-runs ingest_job for a batch (the daemon of `make dev` starts it)."""
    tags = json.dumps({Tag.PARTITION: key})
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
                tags={Tag.TRIGGER: Trigger.INGESTION_SENSOR.value, Tag.ATTEMPT: str(attempt)},
            )
        ],
        dynamic_partitions_requests=[batch_partitions.build_add_request([key])] if add_partition else [],
    )


def _after_failed_ingest(
    instance: DagsterInstance, settings: Settings, key: str, record: RunRecord
) -> SensorResult | SkipReason:
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
    attempt = int(run.tags.get(Tag.ATTEMPT, "1"))
    if attempt > settings.ingest_retries:
        return SkipReason(
            f"{not_in}: {error}); gave up after {attempt} attempts. Once the source is back, re-run ingest_job "
            f"for partition {key} ({launch_command(key)}); the sensor retries again if that run fails the same way"
        )
    ended = record.end_time or record.update_timestamp.timestamp()
    wait = retry_pause(settings, attempt) - (time.time() - ended)
    if wait > 0:
        return SkipReason(f"{not_in}: {error}); retry {attempt} of {settings.ingest_retries} in {wait:.0f}s")
    return _ingest(key, add_partition=False, attempt=attempt + 1)


class BatchState(Enum):
    """The newest batch's state, as the table in this module's docstring defines it."""

    NONE = "no batch yet"
    INGESTING = "being ingested"
    EXHAUSTED = "the source has no such batch"
    NOT_ASKED = "not asked for yet"
    FAILED = "ingestion ended without it"
    AWAITING_TRAINING = "waiting for the training its drift report asked for"
    DONE = "in, and answered"


def _drift_report_answered(instance: DagsterInstance, key: str, drift: dict) -> bool:
    """A report that asks for training is answered once a train_job run for the batch has finished,
    unless the run that made it decides training itself (mlops_pipeline)."""
    if not DriftDecision.parse(drift[Meta.DECISION]).trains or drift.get(Meta.TRAINS_IN_SAME_RUN):
        return True
    train = _latest_run(instance, train_job.name, key)
    return train is not None and train.dagster_run.is_finished


def batch_state(instance: DagsterInstance, key: str | None, ingest: RunRecord | None) -> BatchState:
    """Which row of the table the newest batch `key` is in (`ingest`: its latest ingest_job run)."""
    if key is None:
        return BatchState.NONE
    if ingest is not None and not ingest.dagster_run.is_finished:
        return BatchState.INGESTING
    drift = _drift_metadata(instance, key)
    if drift is not None:
        return BatchState.DONE if _drift_report_answered(instance, key, drift) else BatchState.AWAITING_TRAINING
    if key not in instance.get_materialized_partitions(RAW) and _source_exhausted(instance, key):
        return BatchState.EXHAUSTED
    return BatchState.NOT_ASKED if ingest is None else BatchState.FAILED


@sensor(job=ingest_job, minimum_interval_seconds=INTERVAL, default_status=DefaultSensorStatus.RUNNING)
def ingestion_sensor(context: SensorEvaluationContext) -> SensorResult | SkipReason:
    """Requests the next batch once the previous one is in and, if its drift report asked for
    training, trained - so each batch is judged against the champion the batches before it made.
    A batch that failed for a transient reason is asked for again; one that failed its checks
    waits for a fixed source and a re-fetch. Stops once the source says it has no more data
    (reset this sensor's cursor after restarting the source to read again). The states and what
    the sensor does in each: the table in this module's docstring."""
    cursor = json.loads(context.cursor) if context.cursor else {}
    if "exhausted_after" in cursor:
        return SkipReason(f"the source is exhausted (last batch {cursor['exhausted_after']}); not asking again")
    instance = context.instance
    keys = sorted(instance.get_dynamic_partitions(batch_partitions.name or ""))
    last = keys[-1] if keys else None
    ingest = _latest_run(instance, ingest_job.name, last) if last else None
    state = batch_state(instance, last, ingest)
    if state is BatchState.NONE or last is None:
        return _ingest(batch_key(1), add_partition=True)
    if state is BatchState.INGESTING and ingest is not None:
        return SkipReason(f"batch {last} is still being ingested (run {ingest.dagster_run.run_id})")
    if state is BatchState.EXHAUSTED:
        done = batch_key(batch_number(last) - 1)
        return SensorResult(
            skip_reason=f"the source has no batch {last}: exhausted after batch {done}",
            dynamic_partitions_requests=[batch_partitions.build_delete_request([last])],
            cursor=json.dumps({"exhausted_after": done}),
        )
    if state is BatchState.NOT_ASKED:
        return _ingest(last, add_partition=False)
    if state is BatchState.FAILED and ingest is not None:
        return _after_failed_ingest(instance, Settings.from_env(), last, ingest)
    if state is BatchState.AWAITING_TRAINING:
        return SkipReason(f"waiting for the training that batch {last}'s drift report asked for")
    return _ingest(batch_key(batch_number(last) + 1), add_partition=True)


def _answered(instance: DagsterInstance, report_ids: list[str]) -> dict[str, str]:
    """Report id -> the run that already answered it: any run tagged with the report id, in any
    state. A sensor starting without a cursor (a new daemon after `make demo`, a reset) sees the
    whole history again and must not train it twice. One query for the whole tick."""
    if not report_ids:
        return {}
    runs = instance.get_runs(RunsFilter(tags={Tag.DRIFT_REPORT_ID: report_ids}))
    return {run.tags[Tag.DRIFT_REPORT_ID]: run.run_id for run in runs}


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
    reports = [(r.partition_key, _metadata(r.asset_materialization)) for r in records]
    asking = [(batch, meta) for batch, meta in reports if not meta.get(Meta.TRAINS_IN_SAME_RUN)]
    answered = _answered(
        context.instance,
        [str(m[Meta.REPORT_ID]) for _, m in asking if DriftDecision.parse(m[Meta.DECISION]).trains],
    )
    requests = []
    for batch, meta in asking:
        report_id = str(meta[Meta.REPORT_ID])
        decision = DriftDecision.parse(meta[Meta.DECISION])
        if not decision.trains:
            context.log.info(f"batch {batch}: skipped: {decision.reason} - {meta[Meta.WHY]}")
        elif report_id in answered:
            context.log.info(
                f"batch {batch}: drift report {report_id} was already answered by run {answered[report_id]} "
                f"({Tag.DRIFT_REPORT_ID}={report_id}); not training it again"
            )
        else:
            requests.append(
                RunRequest(
                    partition_key=batch,
                    run_key=f"train-{report_id}",
                    tags={
                        Tag.TRIGGER: Trigger.DRIFT_SENSOR.value,
                        Tag.DRIFT_REPORT_ID: report_id,
                        Tag.DECISION: decision.value,
                    },
                )
            )
            context.log.info(f"batch {batch}: training requested - {decision.value}: {meta[Meta.WHY]}")
    cursor = str(records[-1].storage_id)
    if not requests:
        done = f" ({len(answered)} already trained)" if answered else ""
        return SensorResult(skip_reason=f"new drift reports, none asking for training{done}", cursor=cursor)
    return SensorResult(run_requests=requests, cursor=cursor)


def _metadata(materialization: AssetMaterialization | None) -> dict:
    return {k: v.value for k, v in materialization.metadata.items()} if materialization else {}
