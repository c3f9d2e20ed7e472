"""The replay benchmark: its arithmetic (CPU and memory between two instants, the flatness verdict) and a small
real replay through the same loop as `make demo`, on SQLite."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.bench_replay import FLAT_FACTOR, Sampler, flatness

ROOT = Path(__file__).resolve().parents[1]


def test_a_step_s_cpu_is_read_at_its_edges_and_its_memory_is_the_peak_between_them() -> None:
    sampler = Sampler(postgres=False)
    sampler.samples = [(0.0, 1.0, 100, 0.0), (1.0, 1.5, 300, 0.0), (2.0, 2.5, 200, 0.0), (3.0, 4.0, 150, 0.0)]
    window = sampler.window(0.5, 2.5)
    assert window["cpu"] == pytest.approx(4.0 - 1.0)  # the last sample at or before the start, the first after
    assert window["peak_rss"] == 300


def _batch(k: int, rows: int, seconds: float) -> dict:
    return {"batch": f"{k:05d}", "raw_rows": rows, "steps": {"raw_listings": {"wall": seconds}}}


def test_flat_is_the_cost_per_row_of_the_last_third_against_the_first() -> None:
    steady = [_batch(k, 100_000 * (1 + k % 2), 1.0 * (1 + k % 2)) for k in range(1, 11)]  # sizes vary, cost a row not
    verdict = flatness(steady, "raw_listings")
    assert verdict is not None and verdict["ratio"] == pytest.approx(1.0, abs=0.2) and verdict["flat"]
    growing = [_batch(k, 100_000, 0.5 * k) for k in range(1, 11)]
    verdict = flatness(growing, "raw_listings")
    assert verdict is not None and verdict["ratio"] > FLAT_FACTOR and not verdict["flat"]
    assert flatness(growing[:4], "raw_listings") is None  # too few batches to tell


@pytest.mark.slow  # ingests, judges and trains three small batches
def test_a_small_replay_runs_every_batch_through_the_loop_and_writes_its_section(tmp_path: Path) -> None:
    output, image = tmp_path / "benchmarks.md", tmp_path / "replay.png"
    command = [sys.executable, str(ROOT / "benchmarks" / "bench_replay.py"), "--rows", "12000", "--batches", "3",
               "--backends", "sqlite", "--work-dir", str(tmp_path / "work"), "--output", str(output),
               "--image", str(image)]  # fmt: skip
    subprocess.run(command, check=True, cwd=ROOT, timeout=600)
    [result] = json.loads((tmp_path / "work" / "result.json").read_text())["results"]
    batches = result["batches"]
    assert [b["batch"] for b in batches] == ["00001", "00002", "00003"]
    assert "exhausted after batch 00003" in result["end"]
    first = batches[0]
    assert first["decision"] == "BASELINE" and first["training"]["version"] == 1  # no champion yet: trained
    for batch in batches:
        assert {"raw_listings", "clean_listings", "drift_report"} <= set(batch["steps"])
        assert all(step["wall"] >= 0 and step["peak_rss"] > 0 for step in batch["steps"].values())
        assert batch["clean_rows"] <= batch["raw_rows"]
    trained = [b for b in batches if "training" in b]
    assert all(b["training"]["trials"] == 1 and "candidate_model" in b["steps"] for b in trained)
    text = output.read_text()
    assert "### sqlite: 3 batches" in text and f"]({'images/replay.png'})" in text
    assert image.stat().st_size > 10_000
