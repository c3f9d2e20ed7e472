"""The scale benchmark's own arithmetic: the profile summary, the phase times it reads, the extrapolation."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks.bench_scale import _phase_seconds, extrapolate, summarize_profile


def test_profile_summary_keeps_the_samples_inside_the_step(tmp_path: Path) -> None:
    raw = tmp_path / "profile.txt"
    raw.write_text(
        "<module> (x.py:1);main (x.py:5);read_parquet (pandas/io/parquet.py:9) 50\n"
        "<module> (x.py:1);clean_listings (mlops_assets/core/cleaning.py:80);listing_ids (c.py:75);"
        "map (pandas/core/series.py:4) 30\n"
        "<module> (x.py:1);clean_listings (mlops_assets/core/cleaning.py:80);normalize_date (c.py:70) 10\n"
    )
    summary = summarize_profile(raw, "clean_listings")
    assert summary["samples"] == 40  # the parquet read is outside the step
    assert summary["callees"] == [("listing_ids (c.py)", 0.75), ("normalize_date (c.py)", 0.25)]
    assert summary["own"][0] == ("map (pandas/core/series.py:4)", 0.75)  # own time: by line


def test_phase_seconds_from_the_tuning_log() -> None:
    lines = [
        "folds built: 3 folds of ~33,334 validation rows (0.4 s)",
        "search done: 10 trials (8 complete, 2 pruned) in 61.5 s; best trial 4: cv rmse(log) 0.3100, cv R2 0.7",
        "final fit: 257 boosting rounds (the best trial's folds stopped at 1, 2, 3 of at most 400) on 9 rows in 3.1 s",
    ]
    assert _phase_seconds(lines) == {"folds": 0.4, "search": 61.5, "final_fit": 3.1}


def test_extrapolation_scales_the_search_by_trial_one() -> None:
    base = {"rows": 100, "trial_seconds": [2.0, 1.0], "phases": {"search": 10.0, "final_fit": 1.0, "folds": 0.1}}
    large = {"rows": 400, "trials": 1, "trial_seconds": [8.0], "features": {"wall": 3.0}, "phases": {"folds": 1.0}}
    estimate = extrapolate([base], large, trials=10, default_trials=15)
    assert estimate is not None
    assert estimate["k"] == pytest.approx(4.0)
    assert estimate["wall"] == pytest.approx(3.0 + 1.0 + (10.0 + 1.0) * 4)
    assert estimate["wall_default"] == pytest.approx(3.0 + 1.0 + (15.0 + 1.0) * 4)
    assert extrapolate([base], large | {"trials": 10}, trials=10, default_trials=15) is None  # measured: no estimate
