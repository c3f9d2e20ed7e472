"""`make demo`: the unattended loop, driven tick by tick in one process on the embedded default.

Each batch goes the way `dagster dev` with its daemon would take it: the ingestion sensor asks for
the next batch, the ingest job runs for that partition - on the same Dagster instance
(DAGSTER_HOME), so the runs are there to browse in `make dev` afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import time
from pathlib import Path

from dagster import DagsterInstance, SensorResult, build_sensor_context

from mlops_assets.definitions import defs
from mlops_assets.sensors import ingestion_sensor
from mlops_assets.settings import Settings


def fresh_start(settings: Settings) -> None:
    """Forget earlier demo runs: the platform's data and the instance's runs (not its config)."""
    shutil.rmtree(settings.home, ignore_errors=True)
    home = Path(os.environ["DAGSTER_HOME"])
    for child in home.iterdir() if home.exists() else []:
        if child.name != "dagster.yaml":
            shutil.rmtree(child) if child.is_dir() else child.unlink()


def run(max_batches: int) -> None:
    instance = DagsterInstance.get()
    ingest = defs.resolve_job_def("ingest_job")
    cursor: str | None = None
    print(f"source: {defs.resources['source'].get_source().describe()}")
    for _ in range(max_batches):
        result = ingestion_sensor(build_sensor_context(instance=instance, cursor=cursor))
        if not isinstance(result, SensorResult) or not result.run_requests:
            message = result.skip_reason.skip_message if isinstance(result, SensorResult) else result.skip_message
            print(f"ingestion sensor: {message}")
            break
        for request in result.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        cursor = result.cursor or cursor
        key = result.run_requests[0].partition_key
        started = time.monotonic()
        outcome = ingest.execute_in_process(
            partition_key=key, instance=instance, tags=result.run_requests[0].tags, raise_on_error=False
        )
        seconds = time.monotonic() - started
        if not outcome.success:
            print(f"batch {key}: ingest failed - see run {outcome.run_id} in the Dagster UI")
            break
        clean = outcome.asset_materializations_for_node("clean_listings")[0].metadata
        print(f"batch {key}: {clean['rows_in'].value:>6} rows in, {clean['rows_out'].value:>6} clean ({seconds:.1f}s)")
    print("\nOpen the asset graph and these runs:  make dev   (http://127.0.0.1:3001)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--batches", type=int, default=5, help="at most this many batches")
    parser.add_argument("--fresh", action="store_true", help="start from an empty platform")
    args = parser.parse_args()
    os.environ.setdefault("DAGSTER_HOME", str(Path(".dagster_home").resolve()))
    Path(os.environ["DAGSTER_HOME"]).mkdir(parents=True, exist_ok=True)
    if args.fresh:
        fresh_start(Settings.from_env())
    run(args.batches)


if __name__ == "__main__":
    main()
