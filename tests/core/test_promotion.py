"""The promotion gate: each rule, and the reason naming what failed and by how much."""

from __future__ import annotations

from mlops_assets.core.promotion import Gate, decide

GOOD = {"r2": 0.62, "rmse": 230_000.0}


def test_first_model_passing_the_thresholds_is_promoted():
    verdict = decide(GOOD, None)
    assert verdict.promoted
    assert "no champion yet" in verdict.reason and "R2 0.620 >= 0.35" in verdict.reason


def test_below_the_r2_threshold_is_rejected_with_the_shortfall():
    verdict = decide({"r2": 0.31, "rmse": 230_000.0}, None)
    assert not verdict.promoted
    assert verdict.reason == "R2 0.310 < 0.35 (short by 0.040)"


def test_above_the_rmse_threshold_is_rejected_with_the_excess():
    verdict = decide({"r2": 0.5, "rmse": 812_000.0}, None)
    assert not verdict.promoted
    assert verdict.reason == "RMSE $812,000 > $700,000 (over by $112,000)"


def test_both_rules_failing_are_both_named():
    verdict = decide({"r2": 0.1, "rmse": 900_000.0}, None)
    assert "R2 0.100 < 0.35" in verdict.reason and "RMSE $900,000 > $700,000" in verdict.reason


def test_worse_than_the_champion_on_the_same_rows_is_rejected():
    verdict = decide(GOOD, {"r2": 0.65, "rmse": 220_000.0}, champion_version="3", holdout_rows=9_443)
    assert not verdict.promoted
    assert verdict.reason == (
        "worse than the champion: RMSE $230,000 vs champion v3 $220,000 on the same 9,443 holdout rows (+4.5%)"
    )


def test_better_than_the_champion_is_promoted():
    verdict = decide(GOOD, {"r2": 0.6, "rmse": 240_000.0}, champion_version="3", holdout_rows=100)
    assert verdict.promoted and "(-4.2%)" in verdict.reason


def test_equal_to_the_champion_is_not_worse():
    assert decide(GOOD, dict(GOOD), champion_version="1").promoted


def test_thresholds_and_tolerance_are_configurable():
    gate = Gate(min_r2=0.7, max_rmse=1_000_000.0, max_rmse_increase=0.05)
    assert not decide(GOOD, None, gate).promoted
    lenient = Gate(min_r2=0.5, max_rmse_increase=0.05)
    assert decide(GOOD, {"r2": 0.65, "rmse": 220_000.0}, lenient, "2").promoted  # +4.5% within 5%
