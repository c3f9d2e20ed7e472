"""Each feature formula, the state encoding (fit on training rows only) and its JSON round trip."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.features import (
    FEATURE_NAMES,
    FeatureState,
    build_features,
    fit_feature_state,
    from_target,
    to_target,
    transform,
)


def training_rows() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "price": [100_000.0, 300_000.0, 900_000.0, 1_100_000.0],
            "state": ["Ohio", "Ohio", "California", "California"],
            "bed": [2.0, 3.0, 4.0, 0.0],
            "bath": [1.0, 2.0, 3.0, 0.0],
            "house_size": [1000.0, 1500.0, 2000.0, 2178.0],
            "acre_lot": [0.5, np.nan, 0.1, 1.0],
            "status": ["for_sale", "sold", "ready_to_build", "for_sale"],
        }
    )


def test_formulas():
    rows = training_rows()
    state = fit_feature_state(rows, smoothing=0.0)
    x = transform(rows, state)
    assert list(x.columns) == FEATURE_NAMES
    first = x.iloc[0]
    assert first["bed_bath_interaction"] == 2.0
    assert first["size_per_bed"] == 500.0
    assert first["size_per_bath"] == 1000.0
    assert first["total_rooms"] == 3.0
    assert first["lot_to_house_ratio"] == pytest.approx(0.5 * 43_560 / 1000)
    assert (first["status_for_sale"], first["status_sold"], first["status_ready_to_build"]) == (1, 0, 0)
    # bed/bath of 0 must not divide by zero
    last = x.iloc[3]
    assert last["size_per_bed"] == 2178.0 and last["size_per_bath"] == 2178.0


def test_missing_acre_lot_is_imputed_with_the_training_median_and_flagged():
    rows = training_rows()
    state = fit_feature_state(rows)
    x = transform(rows, state)
    assert state.acre_lot_median == 0.5
    assert x.loc[1, "acre_lot"] == 0.5 and x.loc[1, "acre_lot_missing"] == 1.0
    assert x.loc[0, "acre_lot_missing"] == 0.0


def test_state_encoding_is_a_smoothed_mean_of_log_price():
    rows = training_rows()
    state = fit_feature_state(rows, smoothing=2.0)
    logs = np.log1p(rows["price"])
    global_mean = logs.mean()
    ohio = (logs[:2].sum() + 2.0 * global_mean) / (2 + 2.0)
    assert state.state_log_price["Ohio"] == pytest.approx(ohio)
    assert state.global_log_price == pytest.approx(global_mean)
    assert state.state_counts == {"California": 2, "Ohio": 2}
    assert state.state_mean_price["California"] == pytest.approx(1_000_000.0)
    # smoothing pulls a state towards the global mean, never past it
    raw_ohio = logs[:2].mean()
    assert raw_ohio < state.state_log_price["Ohio"] < global_mean


def test_unknown_state_gets_the_global_mean():
    state = fit_feature_state(training_rows())
    levels, unknown = state.encode_states(np.array(["Ohio", "Atlantis", None], dtype=object))
    assert list(unknown) == [False, True, True]
    assert levels[1] == levels[2] == state.global_log_price


def test_encoding_learns_only_from_the_rows_it_is_fitted_on():
    rows = training_rows()
    state = fit_feature_state(rows.iloc[:2])
    assert set(state.state_log_price) == {"Ohio"}
    x = transform(rows, state)
    assert x.loc[2, "state_price_level"] == pytest.approx(state.global_log_price)


def test_json_round_trip_gives_identical_features():
    rows = training_rows()
    state = fit_feature_state(rows)
    again = FeatureState.from_json(state.to_json())
    assert again == state
    np.testing.assert_array_equal(transform(rows, state).to_numpy(), transform(rows, again).to_numpy())


def test_a_state_for_other_features_is_refused():
    data = fit_feature_state(training_rows())
    data.feature_names = ["bed"]
    with pytest.raises(ValueError, match="feature state lists"):
        FeatureState.from_json(data.to_json())


def test_build_features_from_plain_arrays_matches_the_frame_path():
    rows = training_rows()
    state = fit_feature_state(rows)
    arrays = {c: rows[c].to_numpy() for c in ("bed", "bath", "acre_lot", "house_size", "state", "status")}
    np.testing.assert_array_equal(build_features(arrays, state), transform(rows, state).to_numpy())


def test_target_transform_round_trips():
    prices = np.array([10_000.0, 455_000.0, 49_000_000.0])
    np.testing.assert_allclose(from_target(to_target(prices)), prices)
    assert to_target(np.array([math.e - 1]))[0] == pytest.approx(1.0)
