"""The code location loads the way `dagster dev` loads it."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.processes import ROOT


@pytest.mark.slow  # `dagster definitions validate` in a fresh interpreter
def test_dagster_definitions_validate_passes_on_the_workspace(tmp_path: Path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "MLOPS_HOME": str(tmp_path / "mlops")}
    (tmp_path / "dagster.yaml").write_text((ROOT / "config/dagster/sqlite.yaml").read_text())
    result = subprocess.run(
        [str(Path(os.sys.executable).parent / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_definitions_hold_the_graph_jobs_and_sensors():
    from mlops_assets.definitions import defs

    repo = defs.get_repository_def()
    assert {k.to_user_string() for k in repo.asset_graph.get_all_asset_keys()} >= {
        "raw_listings",
        "clean_listings",
    }
    assert {"ingest_job", "train_job", "mlops_pipeline", "promote_manually"} <= {j.name for j in repo.get_all_jobs()}
    # one process per run, not per step: the steps form a chain
    assert repo.get_job("ingest_job").executor_def.name == "in_process"
    assert "ingestion_sensor" in {s.name for s in repo.sensor_defs}
