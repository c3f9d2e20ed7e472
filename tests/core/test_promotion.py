"""The promotion gate: each rule of both modes, and the reason naming what failed and by how much."""

from __future__ import annotations

import pytest

from mlops_assets.core.promotion import Gate, decide

ABSOLUTE = Gate(mode="absolute")
GOOD = {"r2": 0.62, "rmse": 230_000.0}


# --- absolute: the original system's thresholds, kept available ---


def test_first_model_passing_the_thresholds_is_promoted():
    verdict = decide(GOOD, None, ABSOLUTE)
    assert verdict.promoted
    assert "no champion yet" in verdict.reason and "R2 0.620 >= 0.35" in verdict.reason


def test_below_the_r2_threshold_is_rejected_with_the_shortfall():
    verdict = decide({"r2": 0.31, "rmse": 230_000.0}, None, ABSOLUTE)
    assert not verdict.promoted
    assert verdict.reason == "R2 0.310 < 0.35 (short by 0.040)"


def test_above_the_rmse_threshold_is_rejected_with_the_excess():
    verdict = decide({"r2": 0.5, "rmse": 812_000.0}, None, ABSOLUTE)
    assert not verdict.promoted
    assert verdict.reason == "RMSE $812,000 > $700,000 (over by $112,000)"


def test_both_rules_failing_are_both_named():
    verdict = decide({"r2": 0.1, "rmse": 900_000.0}, None, ABSOLUTE)
    assert "R2 0.100 < 0.35" in verdict.reason and "RMSE $900,000 > $700,000" in verdict.reason


def test_worse_than_the_champion_on_the_same_rows_is_rejected():
    verdict = decide(GOOD, {"r2": 0.65, "rmse": 220_000.0}, ABSOLUTE, champion_version="3", holdout_rows=9_443)
    assert not verdict.promoted
    assert verdict.reason == (
        "worse than the champion: RMSE $230,000 vs champion v3 $220,000 on the same 9,443 holdout rows (+4.5%)"
    )


def test_better_than_the_champion_is_promoted():
    verdict = decide(GOOD, {"r2": 0.6, "rmse": 240_000.0}, ABSOLUTE, champion_version="3", holdout_rows=100)
    assert verdict.promoted and "(-4.2%)" in verdict.reason


def test_equal_to_the_champion_is_not_worse():
    assert decide(GOOD, dict(GOOD), ABSOLUTE, champion_version="1").promoted


def test_thresholds_and_tolerance_are_configurable():
    gate = Gate(mode="absolute", min_r2=0.7, max_rmse=1_000_000.0, max_increase=0.05)
    assert not decide(GOOD, None, gate).promoted
    lenient = Gate(mode="absolute", min_r2=0.5, max_increase=0.05)
    assert decide(GOOD, {"r2": 0.65, "rmse": 220_000.0}, lenient, "2").promoted  # +4.5% within 5%


# --- relative (the default): beat the naive baseline, do not lose to the champion ---

BASELINE = {"rmse_log": 0.50, "median_ape": 0.34, "rmse": 480_000.0}


def test_the_default_gate_is_relative_on_log_rmse():
    gate = Gate()
    assert (gate.mode, gate.metric, gate.min_gain_over_baseline) == ("relative", "rmse_log", 0.10)


def test_beating_the_baseline_by_the_margin_is_promoted_without_absolute_thresholds():
    # an R2 and RMSE the absolute gate refuses (a market with a luxury tail) still passes
    candidate = {"r2": 0.31, "rmse": 1_414_000.0, "rmse_log": 0.40, "median_ape": 0.22}
    verdict = decide(candidate, None, baseline=BASELINE)
    assert verdict.promoted
    assert "RMSE(log) 0.400 vs naive baseline 0.500 (20% better; needs >= 10%)" in verdict.reason
    assert not decide(candidate, None, ABSOLUTE).promoted


def test_not_beating_the_baseline_by_the_margin_is_rejected_with_the_figures():
    verdict = decide({"rmse_log": 0.47}, None, baseline=BASELINE)
    assert not verdict.promoted
    assert verdict.reason == (
        "not enough better than the naive baseline: RMSE(log) 0.470 vs naive baseline 0.500 (6% better; needs >= 10%)"
    )


def test_relative_gate_compares_with_the_champion_on_the_same_metric():
    candidate = {"rmse_log": 0.40}
    verdict = decide(candidate, {"rmse_log": 0.38}, baseline=BASELINE, champion_version="2", holdout_rows=1_000)
    assert not verdict.promoted
    assert verdict.reason == (
        "worse than the champion: RMSE(log) 0.400 vs champion v2 0.380 on the same 1,000 holdout rows (+5.3%)"
    )
    assert decide(candidate, {"rmse_log": 0.41}, baseline=BASELINE, champion_version="2").promoted


def test_the_gate_metric_is_configurable():
    gate = Gate(metric="median_ape", min_gain_over_baseline=0.2)
    verdict = decide({"median_ape": 0.30}, None, gate, baseline=BASELINE)
    assert not verdict.promoted and "median APE 30.0% vs naive baseline 34.0%" in verdict.reason


def test_relative_gate_needs_the_baseline_and_rejects_unknown_settings():
    with pytest.raises(ValueError, match="baseline"):
        decide({"rmse_log": 0.4}, None)
    with pytest.raises(ValueError, match="mode"):
        Gate(mode="lenient")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="metric"):
        Gate(metric="r2")  # type: ignore[arg-type]


# --- the ratio study limits: off by default, each enforced once set ---


def test_ratio_study_limits_are_off_by_default_and_enforced_when_set():
    from mlops_assets.core.ratio_study import RatioStudy

    candidate = {"rmse_log": 0.40}
    uneven = RatioStudy(sales=500, median_ratio=1.0, cod=22.0, prd=1.06, prb=-0.08)
    assert decide(candidate, None, baseline=BASELINE, ratio=uneven).promoted
    strict = Gate(max_cod=15.0, min_prd=0.98, max_prd=1.03, max_abs_prb=0.05)
    verdict = decide(candidate, None, strict, baseline=BASELINE, ratio=uneven)
    assert not verdict.promoted
    assert "ratio study: COD 22.000 outside [-, 15.0]" in verdict.reason
    assert "ratio study: PRD 1.060 outside [0.98, 1.03]" in verdict.reason
    assert "ratio study: |PRB| 0.080 outside [-, 0.05]" in verdict.reason
    even = RatioStudy(sales=500, median_ratio=1.0, cod=9.0, prd=1.01, prb=0.01)
    assert decide(candidate, None, strict, baseline=BASELINE, ratio=even).promoted
    assert not decide(candidate, None, strict, baseline=BASELINE).promoted  # limits set, no study: not promoted
