"""The unattended loop under `dagster dev`: the daemon's sensors ingest, judge and train with nobody
driving, each run in its own process, until the source is exhausted."""

from __future__ import annotations

import os
import time

import pytest
from dagster import DagsterInstance, DagsterRunStatus

from mlops_assets.core.contracts import DriftDecision
from mlops_assets.settings import Settings
from mlops_assets.storage.warehouse import Warehouse, drift_reports, model_history
from tests.conftest import free_port
from tests.processes import ROOT, start_process, stop_process, venv_bin

pytestmark = pytest.mark.slow


def test_dagster_dev_runs_the_loop_until_the_source_is_exhausted(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text((ROOT / "config/dagster/sqlite.yaml").read_text())
    platform = {
        "MLOPS_HOME": str(tmp_path / "mlops"),
        "MLOPS_SIM_BATCHES": "2",
        "MLOPS_SIM_MIN_ROWS": "3000",
        "MLOPS_SIM_MAX_ROWS": "4000",
        "MLOPS_TRAIN_TRIALS": "1",
        "MLOPS_SENSOR_INTERVAL_SECONDS": "2",
    }
    env = {**os.environ, **platform, "DAGSTER_HOME": str(home)}
    log = tmp_path / "dagster-dev.log"
    command = [venv_bin("dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(free_port())]
    process = start_process(command, env, log)
    try:
        instance = DagsterInstance.from_config(str(home))
        deadline = time.monotonic() + 420
        while True:
            runs = instance.get_runs()
            unfinished = [r for r in runs if not r.is_finished]
            # batch 1 ingested and trained, batch 2 ingested (no drift), batch 3 found missing and dropped
            partitions = instance.get_dynamic_partitions("batches")
            if len(runs) >= 4 and not unfinished and partitions == ["00001", "00002"]:
                break
            assert process.poll() is None, log.read_text()[-3000:]
            assert time.monotonic() < deadline, f"the loop did not finish: {[(r.job_name, r.status) for r in runs]}"
            time.sleep(3)
        finished = sorted((r.tags["dagster/partition"], r.job_name, r.status) for r in runs)
        assert finished == [
            ("00001", "ingest_job", DagsterRunStatus.SUCCESS),
            ("00001", "train_job", DagsterRunStatus.SUCCESS),
            ("00002", "ingest_job", DagsterRunStatus.SUCCESS),
            ("00003", "ingest_job", DagsterRunStatus.SUCCESS),
        ]
        instance.dispose()
    finally:
        stop_process(process)
    db = Warehouse(Settings.from_env(platform).database_url)
    decisions = db.read(drift_reports.select().order_by(drift_reports.c.batch_id))["decision"].tolist()
    assert decisions == [DriftDecision.BASELINE, DriftDecision.NO_DRIFT]
    models = db.read(model_history.select())
    assert models[["model_version", "verdict", "trigger"]].values.tolist() == [[1, "promoted", "drift_sensor"]]
