"""`make demo`: the unattended loop, driven tick by tick in one process on the embedded default.

Each batch goes the way `dagster dev` with its daemon takes it: the ingestion sensor asks for the
next batch and `ingest_job` loads, cleans and judges it; the drift sensor reads the drift report
and requests `train_job` only when the data changed (or there is no champion yet). Everything runs
on the Dagster instance in DAGSTER_HOME, so the runs are there to browse in `make dev` afterwards.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sys
import time
from pathlib import Path

# Quiet MLflow before it is imported: the demo prints its own one line per batch.
os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

from dagster import (
    DagsterInstance,
    DagsterRun,
    DeleteDynamicPartitionsRequest,
    RunRequest,
    SensorDefinition,
    SensorResult,
    SkipReason,
    build_sensor_context,
)

from mlops_assets.core.contracts import DriftDecision, Meta
from mlops_assets.settings import Settings

#: The tag the daemon puts the RunRequest's run_key in (dagster._core.storage.tags.RUN_KEY_TAG).
RUN_KEY_TAG = "dagster/run_key"
QUIET = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def fresh_start(settings: Settings) -> None:
    """Forget earlier demo runs: the platform's data and the instance's runs (not its config)."""
    shutil.rmtree(settings.home, ignore_errors=True)
    home = Path(os.environ["DAGSTER_HOME"])
    for child in home.iterdir() if home.exists() else []:
        if child.name != "dagster.yaml":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


class Loop:
    """Evaluates sensors and executes the runs they request, in process."""

    def __init__(self, instance: DagsterInstance, settings: Settings) -> None:
        from mlops_assets.definitions import build_definitions

        self.defs = build_definitions(settings)
        self.instance = instance
        self.cursors: dict[str, str | None] = {}

    def tick(self, sensor: SensorDefinition) -> tuple[list[RunRequest], str]:
        """One evaluation; its requests come back tagged as the daemon tags the runs it launches."""
        result = sensor(build_sensor_context(instance=self.instance, cursor=self.cursors.get(sensor.name)))
        if isinstance(result, SkipReason):
            return [], result.skip_message or ""
        if not isinstance(result, SensorResult):
            raise DemoError(f"{sensor.name} returned {type(result).__name__}; the loop expects a SensorResult")
        for request in result.dynamic_partitions_requests or []:
            if isinstance(request, DeleteDynamicPartitionsRequest):
                for key in request.partition_keys:
                    self.instance.delete_dynamic_partition(request.partitions_def_name, key)
            else:
                self.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        self.cursors[sensor.name] = result.cursor or self.cursors.get(sensor.name)
        skip = (result.skip_reason.skip_message or "") if result.skip_reason else ""
        return [_as_launched_by(sensor, r) for r in result.run_requests or []], skip

    def execute(self, job_name: str, request: RunRequest):
        """Runs a request in process with its tags and run config, as the daemon would launch it."""
        job = self.defs.resolve_job_def(job_name)
        return job.execute_in_process(
            partition_key=request.partition_key,
            instance=self.instance,
            tags=request.tags,
            run_config={**QUIET, **(request.run_config or {})},
            raise_on_error=False,
        )


def _as_launched_by(sensor: SensorDefinition, request: RunRequest) -> RunRequest:
    """The request with the tags the daemon adds to the runs it launches (sensor name, run key):
    the demo's runs are the sensors' runs, so the UI shows who started them and the daemon of
    `make dev` recognises their run keys instead of launching them a second time."""
    tags = {**request.tags, **DagsterRun.tags_for_sensor(sensor)}
    if request.run_key:
        tags[RUN_KEY_TAG] = request.run_key
    return request.with_replaced_attrs(tags=tags)


def _meta(result, node: str) -> dict:
    events = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in events[0].metadata.items()} if events else {}


class DemoError(Exception):
    """A step of the loop failed; the message says which and why."""


def failure_reason(result) -> str:
    """The reason a run failed, from its step failures: the Failure's description, else the error."""
    reasons = []
    for event in result.all_events:
        if not event.is_step_failure:
            continue
        data = event.step_failure_data
        user = data.user_failure_data
        text = (
            user.description
            if user is not None and user.description
            else (data.error.message.strip() if data.error else "")
        )
        reasons.append(f"{event.step_key}: {text.splitlines()[0] if text else 'failed'}")
    return "; ".join(reasons) or f"run {result.run_id} failed"


def _ingest_failure(instance: DagsterInstance, key: str, result) -> str:
    """Why a batch is not in and, when it failed its checks, the one action that recovers it
    (the same the ingestion sensor names under `make dev`)."""
    from mlops_assets.sensors import bad_batch_action, failed_checks

    reason = f"batch {key} could not be ingested (run {result.run_id}): {failure_reason(result)}"
    if failed_checks(instance, result.run_id):
        reason += f"\nThe data is bad; with `make dev` running, {bad_batch_action(key)}"
    return reason


def _scores(metrics: dict) -> str:
    """MLflow's metrics (median APE a fraction) or candidate_model's metadata (`median_ape_pct`, in percent)."""
    median_ape = metrics["median_ape_pct"] / 100 if "median_ape_pct" in metrics else metrics["median_ape"]
    return (
        f"R2(log) {metrics['r2_log']:.3f}, median APE {median_ape:.1%}, "
        f"R2 {metrics['r2']:.3f}, RMSE ${metrics['rmse']:,.0f}"
    )


def _live(outcome: dict) -> str:
    """Matched sales of the batch and the champion's live MAPE so far (over all its matched sales)."""
    text = f"{outcome.get('matched_sales', 0):>5,} sales matched"
    if "champion_live_mape" in outcome:
        text += f", {outcome['champion']} live MAPE {outcome['champion_live_mape']:.1%}"
    elif outcome.get("champion", "none") != "none":
        text += f", {outcome['champion']}: none of its own yet"
    if "rollback" in outcome:
        text += f" ({outcome['rollback']})"
    return text


def run(max_batches: int | None) -> str | None:
    """The loop until the source is exhausted (or `max_batches`); returns the champion version.

    Raises DemoError with the reason when a batch cannot be ingested or a training fails.
    """
    from mlops_assets.sensors import drift_sensor, ingestion_sensor

    settings = Settings.from_env()
    loop = Loop(DagsterInstance.get(), settings)
    source = (loop.defs.resources or {})["source"]
    print(f"source: {source.get_source().describe()}\n")
    done = 0
    while max_batches is None or done < max_batches:
        requests, skip = loop.tick(ingestion_sensor)
        if not requests:
            print(f"ingestion sensor: {skip}")
            break
        started = time.monotonic()
        ingest = loop.execute("ingest_job", requests[0])
        key = requests[0].partition_key or ""
        if not ingest.success:
            raise DemoError(_ingest_failure(loop.instance, key, ingest))
        clean, drift = _meta(ingest, "clean_listings"), _meta(ingest, "drift_report")
        if not drift:  # nothing materialized: the source had no such batch; the sensor says so and stops
            _, skip = loop.tick(ingestion_sensor)
            if "exhausted" not in skip:
                raise DemoError(f"batch {key}: ingest_job loaded nothing and the source is not exhausted ({skip})")
            print(f"ingestion sensor: {skip}")
            break
        done += 1
        decision = DriftDecision.parse(drift[Meta.DECISION])
        detected = "-" if decision is DriftDecision.BASELINE else "yes" if drift[Meta.DRIFT_DETECTED] else "no"
        line = f"batch {key} | {clean['rows_out']:>6,} rows | {_live(_meta(ingest, 'live_performance'))} | "
        line += f"drift: {detected} ({drift[Meta.WHY]}) | "
        train_requests, _ = loop.tick(drift_sensor)
        if not train_requests:
            line += "not trained"
        else:
            train = loop.execute("train_job", train_requests[0])
            if not train.success:
                raise DemoError(f"batch {key}: training failed (run {train.run_id}): {failure_reason(train)}")
            candidate, verdict = _meta(train, "candidate_model"), _meta(train, "champion_model")
            line += f"trained v{candidate['model_version']}: {_scores(candidate)} | "
            line += "promoted" if verdict["verdict"] == "promoted" else f"rejected: {verdict['reason']}"
        print(f"{line}  ({time.monotonic() - started:.0f}s)", flush=True)

    from mlops_assets.ml.registry import ModelRegistry

    registry = ModelRegistry(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias)
    champion = registry.alias_version()
    if champion is not None:
        print(f"\nchampion: {settings.model_name} v{champion} (alias '{settings.model_alias}')")
    else:
        best = registry.best_candidate()
        if best is None:
            print("\nno champion: no model was trained")
        else:
            print(
                f"\nno champion: no candidate passed the promotion gate. Best: v{best['version']} "
                f"({_scores(best['metrics'])}), {best['verdict']}: {best['verdict_reason']}\n"
                "To serve it anyway (recorded, with your reason):\n"
                f"  .venv/bin/dagster job launch -w workspace.yaml -j promote_manually --config-json "
                f'\'{{"ops": {{"promote_version": {{"config": {{"version": {best["version"]}, '
                f'"reason": "..."}}}}}}}}\''
            )
    print(
        "\nNext (each in its own terminal):\n"
        "  make dev         the asset graph, these runs and the sensors: http://127.0.0.1:3001\n"
        "  make serve       the prediction API on the champion: http://127.0.0.1:3000 (Swagger UI)\n"
        "  make dashboard   the viewer (predict, explain, model and drift history): http://127.0.0.1:8501\n"
        f"  .venv/bin/mlflow ui --backend-store-uri {settings.mlflow_tracking_uri} --port 5000   experiments, registry"
    )
    return champion


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--batches", type=int, default=None, help="at most this many batches (default: until the source has no more)"
    )
    parser.add_argument("--fresh", action="store_true", help="start from an empty platform")
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    logging.disable(logging.WARNING)  # the run and sensor logs are in the Dagster UI; failures are raised
    if args.fresh:
        fresh_start(Settings.from_env())
    try:
        run(args.batches)
    except DemoError as failure:
        print(f"\nFAILED: {failure}", file=sys.stderr)
        raise SystemExit(1) from None


if __name__ == "__main__":
    main()
