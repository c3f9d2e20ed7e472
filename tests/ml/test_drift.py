"""The drift rule on constructed frames: an unchanged batch is not flagged; a shifted one is,
naming the right columns - at batch sizes where p-values would flag everything."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import column_reliance
from mlops_assets.ml.drift import CATEGORICAL, NUMERIC, DriftRule, compare
from mlops_assets.resources import DriftRuleResource

STATES = ["California", "Texas", "Florida", "New York", "Ohio"]


def listings(n: int, seed: int, size_factor: float = 1.0, price_factor: float = 1.0, p=(0.3, 0.2, 0.2, 0.2, 0.1)):
    rng = np.random.default_rng(seed)
    size = np.exp(rng.normal(np.log(1800 * size_factor), 0.4, n))
    return pd.DataFrame(
        {
            "price": np.exp(rng.normal(np.log(400_000 * price_factor), 0.6, n)),
            "bed": np.clip(np.round(size / 600 + rng.normal(0, 0.7, n)), 1, 20),
            "bath": np.clip(np.round(size / 800 + rng.normal(0, 0.6, n)), 1, 15),
            "house_size": size,
            "acre_lot": np.where(rng.random(n) < 0.15, np.nan, np.exp(rng.normal(np.log(0.25), 1.2, n))),
            "state": rng.choice(STATES, n, p=p),
            "status": rng.choice(["for_sale", "sold"], n, p=[0.6, 0.4]),
        }
    )


@pytest.fixture(scope="module")
def reference() -> pd.DataFrame:
    return listings(40_000, seed=1)


def test_an_unchanged_batch_is_not_flagged(reference):
    result = compare(reference, listings(20_000, seed=2))
    assert result.drifted_columns == []
    assert not result.detected(DriftRule())
    assert result.why().startswith("no column moved past its threshold (closest:")
    assert all(c.score < 0.06 for c in result.columns.values())


def test_larger_houses_are_flagged_on_the_size_columns_only(reference):
    result = compare(reference, listings(20_000, seed=3, size_factor=1.25))
    assert set(result.drifted_columns) >= {"house_size"}
    assert not {"price", "state", "status", "acre_lot"} & set(result.drifted_columns)
    assert result.detected(DriftRule())
    assert "median house_size +2" in result.why()


def test_a_new_state_mix_is_flagged_on_state(reference):
    result = compare(reference, listings(20_000, seed=4, p=(0.05, 0.6, 0.15, 0.1, 0.1)))
    assert result.drifted_columns == ["state"]
    assert "state mix: Texas 20% -> 60%" in result.why()
    assert result.share_drifted == pytest.approx(1 / 7)


def test_inflation_is_flagged_on_price(reference):
    result = compare(reference, listings(20_000, seed=5, price_factor=1.3))
    assert result.drifted_columns == ["price"]
    assert result.why().startswith("median price +3")


def test_thresholds_and_the_column_count_are_configurable(reference):
    shifted = listings(20_000, seed=3, size_factor=1.25)
    assert not compare(reference, shifted, DriftRule(numeric_threshold=5.0)).drifted_columns
    assert not compare(reference, shifted).detected(DriftRule(min_drifted_columns=5))


def test_a_p_value_method_reads_the_other_way_and_evidently_gives_the_verdict(reference):
    """With K-S, a *small* p-value is drift: the verdict is Evidently's own test, and the severity is
    oriented so that the drifted side is >= 1 whichever way the method reads."""
    rule = DriftRule(numeric_method="ks", numeric_threshold=0.05)
    result = compare(reference, listings(20_000, seed=3, size_factor=1.25), rule)
    size = result.columns["house_size"]
    assert size.method == "ks" and size.drifted and size.score < 0.05
    ranked = {r.column: r for r in result.ranking({"house_size": 1.0})}
    assert ranked["house_size"].severity >= 1
    assert all(r.severity < 1 for r in ranked.values() if not r.drifted)


def test_the_report_is_evidently_html(reference):
    result = compare(reference, listings(2_000, seed=6))
    assert result.html.lstrip().lower().startswith("<!doctype html") or "<html" in result.html[:500].lower()
    assert result.scores()["house_size"]["method"] == "wasserstein"
    assert result.scores()["state"]["method"] == "jensenshannon"


def test_a_column_empty_on_one_side_is_left_out_instead_of_failing(reference):
    current = listings(2_000, seed=7)
    current["acre_lot"] = np.nan
    result = compare(reference, current)
    assert "acre_lot" not in result.columns and "price" in result.columns


# --- importance-weighted drift ---------------------------------------------------------------------

RELIES_ON_LOCATION = {"state_price_level": 0.30, "zip_price_level": 0.50, "house_size": 0.02, "bed": 0.01}
RELIES_ON_SIZE = {"state_price_level": 0.01, "house_size": 0.60, "size_per_bed": 0.20, "bed": 0.05}


@pytest.fixture(scope="module")
def moved_state_and_size(reference):
    """Larger houses and a new state mix: both state and house_size drift."""
    result = compare(reference, listings(20_000, seed=8, size_factor=1.25, p=(0.05, 0.6, 0.15, 0.1, 0.1)))
    assert {"state", "house_size"} <= set(result.drifted_columns)
    return result


def reliance_of(importance: dict[str, float]) -> dict[str, float]:
    return column_reliance(importance, NUMERIC + CATEGORICAL)


def test_a_drifted_column_the_model_relies_on_ranks_before_one_it_does_not(moved_state_and_size):
    location = [r.column for r in moved_state_and_size.ranking(reliance_of(RELIES_ON_LOCATION))]
    assert location.index("state") < location.index("house_size")
    size = [r.column for r in moved_state_and_size.ranking(reliance_of(RELIES_ON_SIZE))]
    assert size.index("house_size") < size.index("state")
    top = moved_state_and_size.ranking(reliance_of(RELIES_ON_LOCATION))[0]
    assert top.column == "state" and top.reliance == pytest.approx(0.80 / 0.83)
    assert top.weighted == pytest.approx(top.score / top.threshold * top.reliance)
    # the why leads with what the model relies on, and says how much
    assert moved_state_and_size.why(reliance_of(RELIES_ON_LOCATION)).startswith("state mix: ")
    assert "(the model's reliance: 96%)" in moved_state_and_size.why(reliance_of(RELIES_ON_LOCATION))
    assert moved_state_and_size.why(reliance_of(RELIES_ON_SIZE)).startswith("median house_size +2")


def test_the_importance_option_changes_the_decision_only_when_set(reference):
    """A new state mix, for a champion that hardly uses the state: drift by the plain rule, not under the option."""
    result = compare(reference, listings(20_000, seed=4, p=(0.05, 0.6, 0.15, 0.1, 0.1)))
    assert result.drifted_columns == ["state"]
    reliance = reliance_of(RELIES_ON_SIZE)  # state carries ~1% of the importance
    off, on = DriftRule(), DriftRule(require_importance=True, min_importance_share=0.05)
    assert result.detected(off, reliance)  # off by default: the decision is the plain rule's
    assert not result.importance_detected(off, reliance)  # ... and the report can say what the option would do
    assert not result.detected(on, reliance) and result.relied_on(on, reliance) == []
    assert result.decide(off, reliance) == (True, f"{result.changes['state']} (the model's reliance: 1%)")
    detected, why = result.decide(on, reliance)
    assert not detected and why.startswith("no drifted column carries >= 5% of the champion's importance: state mix")
    assert result.detected(on, reliance_of(RELIES_ON_LOCATION))
    assert result.detected(on, None)  # no champion importance to apply it with: the plain rule
    assert DriftRuleResource(require_importance=True, min_importance_share=0.2).rule() == DriftRule(
        require_importance=True, min_importance_share=0.2
    )
