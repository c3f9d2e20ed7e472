"""The IAAO ratio study against hand-computed values, and the standard's definitions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.ratio_study import by_state, cod, median_ratio, prb, prd, ratio_study

# ratios 0.8, 0.9, 1.0, 1.1, 1.5 on sales of 100k..500k
SOLD = np.array([100_000, 200_000, 300_000, 400_000, 500_000], dtype=float)
PREDICTED = SOLD * np.array([0.8, 0.9, 1.0, 1.1, 1.5])


def test_median_ratio_and_cod_around_the_median():
    assert median_ratio(PREDICTED, SOLD) == pytest.approx(1.0)
    # |0.8-1| + |0.9-1| + 0 + |1.1-1| + |1.5-1| = 0.9; mean 0.18; / median 1.0; in percent
    assert cod(PREDICTED, SOLD) == pytest.approx(18.0)


def test_prd_is_mean_ratio_over_the_sale_weighted_mean_ratio():
    mean_ratio = (0.8 + 0.9 + 1.0 + 1.1 + 1.5) / 5  # 1.06
    weighted = (80_000 + 180_000 + 300_000 + 440_000 + 750_000) / 1_500_000  # 1.1666...
    assert prd(PREDICTED, SOLD) == pytest.approx(mean_ratio / weighted)
    assert prd(SOLD * 1.2, SOLD) == pytest.approx(1.0)  # a uniform level: no regressivity


def test_prb_is_the_slope_of_the_relative_ratio_on_log2_value():
    median = 1.0
    value = 0.5 * PREDICTED / median + 0.5 * SOLD
    x = np.log2(value)
    y = (PREDICTED / SOLD - median) / median
    slope = np.polyfit(x, y, 1)[0]
    assert prb(PREDICTED, SOLD) == pytest.approx(slope)
    assert prb(PREDICTED, SOLD) > 0  # dearer houses get higher ratios: progressive
    assert prb(SOLD * 0.95, SOLD) == pytest.approx(0.0, abs=1e-12)
    assert prb(PREDICTED[:2], SOLD[:2]) is None  # too few sales for a slope


def test_a_regressive_model_shows_prd_above_one_and_negative_prb():
    sold = np.geomspace(100_000, 2_000_000, 200)
    predicted = 400_000 * (sold / 400_000) ** 0.8  # cheap houses over-valued, dear ones under-valued
    study = ratio_study(predicted, sold)
    assert study.prd > 1.03 and study.prb < -0.05
    assert any(line.startswith("PRD") for line in study.outside_standards())


def test_by_state_keeps_only_states_with_enough_sales():
    frame = pd.DataFrame(
        {"state": ["Ohio"] * 30 + ["Utah"] * 29, "predicted": np.full(59, 110.0), "sold": np.full(59, 100.0)}
    )
    states = by_state(frame)
    assert list(states) == ["Ohio"]
    assert states["Ohio"]["sales"] == 30 and states["Ohio"]["median_ratio"] == pytest.approx(1.1)
    assert states["Ohio"]["cod"] == pytest.approx(0.0)


def test_pairs_without_a_positive_sale_are_left_out_and_none_is_an_error():
    study = ratio_study(np.array([100.0, 50.0, 200.0]), np.array([100.0, 0.0, 200.0]))
    assert study.sales == 2 and study.median_ratio == pytest.approx(1.0)
    with pytest.raises(ValueError, match="at least one sale"):
        ratio_study(np.array([1.0]), np.array([np.nan]))
