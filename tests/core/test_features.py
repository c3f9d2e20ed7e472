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
    rows = training_rows()
    state = fit_feature_state(rows)
    asked = rows.iloc[:3].assign(state=["Ohio", "Atlantis", None], city=None, zip_code=None)
    levels = transform(asked, state)["state_price_level"].tolist()
    assert levels[0] == pytest.approx(state.state_log_price["Ohio"])
    assert levels[1] == levels[2] == pytest.approx(state.global_log_price)


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


# --- location: zip -> city -> state -> global, fitted on training rows only ---


def located_rows() -> pd.DataFrame:
    """Two Ohio cities (one zip each, plus a second zip in Columbus), one California listing."""
    rows = training_rows()
    rows["city"] = ["Columbus", "Columbus", "Los Angeles", "Dayton"]
    rows["state"] = ["Ohio", "Ohio", "California", "Ohio"]
    rows["zip_code"] = ["43004", "43005", "90001", "45402"]
    return rows


def test_location_levels_are_smoothed_towards_their_parent():
    rows = located_rows()
    m, k = 2.0, 1.0
    state = fit_feature_state(rows, smoothing=m, local_smoothing=k)
    logs = np.log1p(rows["price"].to_numpy())
    ohio = (logs[[0, 1, 3]].sum() + m * logs.mean()) / (3 + m)
    columbus = (logs[[0, 1]].sum() + k * ohio) / (2 + k)
    zip_43004 = (logs[0] + k * columbus) / (1 + k)
    x = transform(rows, state)
    assert x.loc[0, "state_price_level"] == pytest.approx(ohio, rel=1e-6)
    assert x.loc[0, "city_price_level"] == pytest.approx(columbus, rel=1e-6)
    assert x.loc[0, "zip_price_level"] == pytest.approx(zip_43004, rel=1e-6)
    assert x.loc[0, "zip_listings"] == pytest.approx(np.log1p(1))
    ppsf = np.log(rows["price"].to_numpy() / rows["house_size"].to_numpy())
    assert x.loc[0, "ppsf_price_estimate"] == pytest.approx(x.loc[0, "zip_price_per_sqft_level"] + np.log(1000.0))
    assert state.global_log_ppsf == pytest.approx(ppsf.mean())


def test_unknown_places_fall_back_one_level_at_a_time():
    state = fit_feature_state(located_rows())
    query = pd.DataFrame(
        {
            "bed": [3.0] * 4, "bath": [2.0] * 4, "acre_lot": [0.2] * 4, "house_size": [1500.0] * 4,
            "status": ["for_sale"] * 4,
            "state": ["Ohio", "Ohio", "Ohio", "Atlantis"],
            "city": ["Columbus", "Columbus", "Nowhere", None],
            "zip_code": ["43004", "99999", None, None],
        }
    )  # fmt: skip
    x = transform(query, state)
    # an unseen zip is its city's level; an unseen city is its state's; an unknown state is global
    assert x.loc[1, "zip_price_level"] == pytest.approx(x.loc[1, "city_price_level"])
    assert x.loc[0, "city_price_level"] == x.loc[1, "city_price_level"] != x.loc[0, "zip_price_level"]
    assert x.loc[2, "zip_price_level"] == pytest.approx(x.loc[2, "state_price_level"])
    assert x.loc[3, "zip_price_level"] == pytest.approx(state.global_log_price)
    assert x.loc[1, "zip_listings"] == 0.0


def test_city_names_are_keyed_within_their_state_and_spelling_does_not_matter():
    rows = located_rows()
    rows.loc[2, "city"] = "Columbus"  # a Columbus in California is another place
    state = fit_feature_state(rows)
    assert {"Ohio|columbus", "California|columbus"} <= set(state.city_stats)
    query = rows.iloc[[0]].assign(city="  COLUMBUS ", zip_code=None)
    assert transform(query, state).iloc[0]["city_price_level"] == pytest.approx(
        transform(rows.iloc[[0]].assign(zip_code=None), state).iloc[0]["city_price_level"]
    )


def test_holdout_encodings_come_from_training_rows_only():
    """Changing the holdout's prices changes nothing in its features: nothing leaks from them."""
    from mlops_assets.core.features import fit_transform_training

    rows = pd.concat([located_rows()] * 6, ignore_index=True)
    train, holdout = rows.iloc[:16], rows.iloc[16:]
    state, _ = fit_transform_training(train, folds=4)
    before = transform(holdout, state)
    state_again, _ = fit_transform_training(train, folds=4)
    altered = holdout.assign(price=holdout["price"] * 50)
    pd.testing.assert_frame_equal(before, transform(altered, state_again))
    # the check can fail: a state that had seen the holdout's prices encodes them differently
    leaky = fit_feature_state(pd.concat([train, altered]))
    assert not transform(altered, leaky).equals(before)


def test_training_rows_are_encoded_out_of_fold():
    """A training row's own price never feeds its own location levels."""
    from mlops_assets.core.features import fit_transform_training

    rng = np.random.default_rng(3)
    n = 200
    rows = pd.DataFrame(
        {
            "price": rng.uniform(1e5, 1e6, n), "bed": 3.0, "bath": 2.0, "acre_lot": 0.2,
            "house_size": rng.uniform(800, 3000, n), "status": "for_sale", "state": "Ohio",
            "city": rng.choice(["Columbus", "Dayton"], n), "zip_code": [f"{43000 + i % 40}" for i in range(n)],
        }
    )  # fmt: skip
    _, x = fit_transform_training(rows, folds=5, seed=1)
    changed = rows.copy()
    changed.loc[7, "price"] = 40_000_000.0  # one row's price moves a lot
    _, x_changed = fit_transform_training(changed, folds=5, seed=1)
    location = ["state_price_level", "city_price_level", "zip_price_level", "zip_price_per_sqft_level"]
    assert x.loc[7, location].tolist() == x_changed.loc[7, location].tolist()
    # ... while rows of other folds in the same zip do see it
    moved = (x[location] != x_changed[location]).any(axis=1)
    assert moved.any() and not moved[7]


def test_frames_without_city_or_zip_are_priced_at_the_state_level():
    rows = training_rows()  # no city, no zip_code columns
    x = transform(rows, fit_feature_state(located_rows()))
    assert (x["zip_price_level"] == x["city_price_level"]).all()
    assert (x["city_price_level"] == x["state_price_level"]).all()
