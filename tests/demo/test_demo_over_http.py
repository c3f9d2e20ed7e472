"""`make demo` against the batch data API: the simulator replaying a small realtor file over HTTP.

Real processes, as a user runs them: `python -m mlops_assets.sources.simulator --file` and
`python -m mlops_assets.demo --fresh` with MLOPS_SOURCE_URL pointing at it. The demo must run to the
end of the data, stop cleanly when the source says "no more data", and fail loudly (reason, exit
code) when a batch cannot be ingested.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from mlops_assets.core.schema import RAW_COLUMNS
from mlops_assets.sources.generator import ListingGenerator
from tests.conftest import free_port, wait_for_port
from tests.processes import ROOT, start_process, stop_process

pytestmark = pytest.mark.slow

BATCHES = 3  # fewer than the generator's 8


def write_realtor_file(path: Path, rows: int = 2_400, bad_price_in_batch: int | None = None) -> Path:
    """A realtor-shaped CSV as the published file has it: the 12 columns in order, zip codes as
    floats that lost their leading zeros, empty cells for missing values. Built from listings of
    two markets (batch 1 and 3 of the generator), so the replay drifts between its batches."""
    generator = ListingGenerator(seed=11, batches=3, min_rows=rows // 2, max_rows=rows // 2)
    frame = pd.concat([generator.batch(1), generator.batch(3)], ignore_index=True)[list(RAW_COLUMNS)]
    if bad_price_in_batch is not None:
        row = (bad_price_in_batch - 1) * len(frame) // BATCHES + 5
        frame["price"] = frame["price"].astype(object)
        frame.loc[row, "price"] = "call for price"
    frame.to_csv(path, index=False)
    return path


def start_simulator(file: Path, tmp_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    command = [sys.executable, "-m", "mlops_assets.sources.simulator", "--port", str(port)]
    process = start_process(
        [*command, "--file", str(file), "--batches", str(BATCHES)], dict(os.environ), tmp_path / "sim.log"
    )
    wait_for_port(port, 60, process)
    return process, f"http://127.0.0.1:{port}"


def run_demo(url: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "MLOPS_SOURCE_URL": url,
        "MLOPS_HOME": str(tmp_path / "mlops"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLOPS_TRAIN_TRIALS": "2",
    }
    command = [sys.executable, "-m", "mlops_assets.demo", "--fresh"]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def test_the_demo_runs_to_the_end_of_the_data_and_stops_cleanly(tmp_path):
    simulator, url = start_simulator(write_realtor_file(tmp_path / "realtor.csv"), tmp_path)
    try:
        demo = run_demo(url, tmp_path)
    finally:
        stop_process(simulator)
    assert demo.returncode == 0, demo.stdout + demo.stderr
    out = demo.stdout
    assert f"source: batch data API {url}" in out
    assert re.findall(r"^batch (\d{5}) \|", out, re.M) == ["00001", "00002", "00003"]
    assert "the source has no batch 00004: exhausted after batch 00003" in out
    assert re.search(r"^champion: house-price v\d+ \(alias 'champion'\)$", out, re.M), out
    assert "Traceback" not in demo.stderr


def test_a_batch_that_cannot_be_ingested_fails_the_demo_with_its_reason(tmp_path):
    file = write_realtor_file(tmp_path / "realtor.csv", bad_price_in_batch=2)
    simulator, url = start_simulator(file, tmp_path)
    try:
        demo = run_demo(url, tmp_path)
    finally:
        stop_process(simulator)
    assert demo.returncode == 1, demo.stdout + demo.stderr
    assert re.findall(r"^batch (\d{5}) \|", demo.stdout, re.M) == ["00001"]
    assert "FAILED: batch 00002 could not be ingested" in demo.stderr
    assert "price: 1 non-numeric value(s), e.g. 'call for price'" in demo.stderr
    # and how to recover it: a plain re-run would replay the stored bad copy
    assert """run config {"ops": {"raw_listings": {"config": {"refetch": true}}}}""" in demo.stderr
    assert "Traceback" not in demo.stderr


def test_the_simulator_refuses_a_file_it_cannot_replay_at_start(tmp_path):
    broken = tmp_path / "broken.csv"
    pd.DataFrame({"price": [1.0], "bed": [2.0]}).to_csv(broken, index=False)
    command = [
        sys.executable,
        "-m",
        "mlops_assets.sources.simulator",
        "--port",
        str(free_port()),
        "--file",
        str(broken),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "cannot replay" in result.stderr and "lacks the realtor column(s) brokered_by, status" in result.stderr
