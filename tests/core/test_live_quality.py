"""When the champion's live error is clearly worse: against its holdout and against its predecessor."""

from __future__ import annotations

import numpy as np
import pytest

from mlops_assets.core.live_quality import LiveQualityRule, VersionFigures, judge, live_errors

RULE = LiveQualityRule(min_sales=50, max_increase_over_holdout=0.5, max_increase_over_previous=0.2)


def test_too_few_sales_are_not_judged():
    verdict = judge(VersionFigures("2", 49, 0.9), 0.1, VersionFigures("1", 500, 0.1), RULE)
    assert not verdict.worse and "fewer than 50: not judged yet" in verdict.summary


def test_clearly_worse_than_its_own_holdout_error():
    verdict = judge(VersionFigures("2", 60, 0.31), 0.2, None, RULE)
    assert verdict.worse and "vs its holdout 20.0% (limit 30.0%)" in verdict.summary
    assert not judge(VersionFigures("2", 60, 0.29), 0.2, None, RULE).worse


def test_clearly_worse_than_the_previous_champion_on_the_same_batches():
    verdict = judge(VersionFigures("2", 80, 0.25), 0.2, VersionFigures("1", 70, 0.2), RULE)
    assert verdict.worse and verdict.reasons == [
        "v2 live MAPE 25.0% over 80 sales vs previous champion v1 20.0% over 70 sales of the same batches (limit 24.0%)"
    ]
    assert verdict.figures["previous_version"] == "1" and verdict.figures["champion_live"] == 0.25
    # the predecessor with too few sales is not compared
    assert not judge(VersionFigures("2", 80, 0.25), 0.2, VersionFigures("1", 10, 0.1), RULE).worse


def test_the_policy_must_be_one_of_three():
    with pytest.raises(ValueError, match="off, alert, auto"):
        LiveQualityRule(policy="sometimes")


def test_live_errors_count_mae_mape_and_the_ratio_study():
    sold = np.array([100.0, 200.0, 400.0])
    errors = live_errors(sold * 1.1, sold)
    assert errors["sales"] == 3 and errors["mape"] == pytest.approx(0.1)
    assert errors["mae"] == pytest.approx(70 / 3) and errors["median_ratio"] == pytest.approx(1.1)
    assert errors["cod"] == pytest.approx(0.0) and errors["prd"] == pytest.approx(1.0)
