"""The figures the pages regroup from serving's and the pipeline's answers, without a platform: contributions by
input, latency per request, outcome counts, each model's gain over its champion, and where chart labels go."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from dashboard import charts, contributions, traffic
from dashboard.history import gain_over_champion
from mlops_assets.core.features import FEATURE_NAMES, FEATURE_SOURCES

HOUSE = {"bed": 4.0, "bath": 3.0, "acre_lot": 0.5, "house_size": 2400.0, "state": "Texas", "status": "for_sale",
         "city": None, "zip_code": None}  # fmt: skip


def explanation(seed: int = 0) -> tuple[list[float], list[float]]:
    """Dollars to the cent (as serving sends them) and log values for every feature."""
    shap = np.random.default_rng(seed).normal(0, 0.05, len(FEATURE_NAMES))
    return np.round(shap * 317_000, 2).tolist(), shap.tolist()


@pytest.mark.parametrize("seed", range(5))
def test_the_inputs_add_up_exactly_to_the_features(seed):
    dollars, shap = explanation(seed)
    grouped = contributions.by_input(FEATURE_NAMES, dollars, shap, HOUSE)
    assert round(grouped["contribution"].mul(100).round().sum()) == round(sum(dollars) * 100)  # to the cent
    assert grouped["shap"].sum() == pytest.approx(sum(shap), abs=1e-12)
    assert (grouped["contribution"] * 100).round(6).eq((grouped["contribution"] * 100).round()).all()  # cents
    assert list(grouped["contribution"].abs()) == sorted(grouped["contribution"].abs(), reverse=True)


def test_a_feature_of_several_inputs_is_split_equally_among_those_given():
    dollars = [0.0] * len(FEATURE_NAMES)
    shap = [0.0] * len(FEATURE_NAMES)
    dollars[FEATURE_NAMES.index("size_per_bed")] = 100.01
    shap[FEATURE_NAMES.index("size_per_bed")] = 0.3
    dollars[FEATURE_NAMES.index("city_price_level")] = -50.0  # no city given: the state's level
    dollars[FEATURE_NAMES.index("zip_listings")] = 7.0  # reads only the zip code, which was left empty
    grouped = contributions.by_input(FEATURE_NAMES, dollars, shap, HOUSE).set_index("input")
    assert grouped.loc["house_size", "contribution"] + grouped.loc["bed", "contribution"] == pytest.approx(100.01)
    assert {grouped.loc["house_size", "contribution"], grouped.loc["bed", "contribution"]} == {50.01, 50.0}
    assert grouped.loc["bed", "shap"] == pytest.approx(0.15)
    assert "size_per_bed (1/2)" in grouped.loc["bed", "features"]
    assert grouped.loc["state", "contribution"] == -50.0 and "city" not in grouped.index
    assert grouped.loc["zip_code", "value"] == "not given" and grouped.loc["zip_code", "contribution"] == 7.0
    assert grouped.loc["status", "value"] == "for sale" and grouped.loc["house_size", "value"] == "2,400"

    with_place = contributions.by_input(FEATURE_NAMES, dollars, shap, {**HOUSE, "city": "Austin"}).set_index("input")
    assert with_place.loc["city", "contribution"] == -25.0 and with_place.loc["state", "contribution"] == -25.0
    assert with_place.loc["city", "value"] == "Austin"


def test_every_feature_goes_to_the_form_inputs_and_an_unknown_one_to_other():
    assert {s for sources in FEATURE_SOURCES.values() for s in sources} <= set(contributions.INPUT_LABELS)
    grouped = contributions.by_input(["bed", "from_a_newer_model"], [1.0, 2.0], [0.1, 0.2], HOUSE)
    assert list(grouped["label"]) == ["other", "bedrooms"]


def test_cents_split_exactly():
    for cents in (-7, -1, 0, 1, 10_001, -10_001):
        for parts in (1, 2, 3, 4):
            shares = contributions.split_cents(cents, parts)
            assert sum(shares) == cents and max(shares) - min(shares) <= 1


def test_latency_is_per_request_and_a_batch_is_one():
    batch = uuid.uuid4().hex
    rows = pd.DataFrame(
        [{"request_id": f"{batch}-{i}", "endpoint": "batch_predict", "latency_ms": 75.0} for i in range(1000)]
        + [{"request_id": uuid.uuid4().hex, "endpoint": "predict", "latency_ms": 3.0} for _ in range(3)]
    ).assign(created_at=pd.Timestamp("2026-01-01", tz="UTC"), model_version="2")
    requests = traffic.per_request(rows)
    assert len(requests) == 4 and requests["latency_ms"].mean() == pytest.approx((75 + 9) / 4)
    assert sorted(requests["predictions"]) == [1, 1, 1, 1000]


def test_the_summary_tables_and_an_older_serving():
    summary = {
        "endpoints": {"predict": {"requests": 3, "predictions": 3, "p50_latency_ms": 3.0, "p95_latency_ms": 4.0,
                                  "mean_latency_ms": 3.0, "max_latency_ms": 4.0}},
        "outcomes": {"predict": {"ok": 3, "invalid": 2, "unavailable": 1, "busy": 0, "error": 4}},
    }  # fmt: skip
    latency = traffic.endpoint_latency(summary)
    assert latency is not None and latency.iloc[0].to_dict()["p95_latency_ms"] == 4.0
    outcomes = traffic.outcome_table(summary)
    assert outcomes is not None
    assert outcomes.iloc[0].to_dict() == {"endpoint": "predict", "answered": 3, "invalid (422)": 2, "failed (5xx)": 5,
                                          "no model (503)": 1, "busy (503)": 0, "error (500)": 4}  # fmt: skip
    older = {"count": 7, "mean_latency_ms": 5.0}
    assert traffic.endpoint_latency(older) is None and traffic.outcome_table(older) is None


def test_the_gain_over_the_champion_is_on_the_same_rows():
    models = pd.DataFrame({"rmse": [100.0, 120.0, 140.0], "champion_rmse": [None, 125.0, 120.0]})
    gains = gain_over_champion(models, "rmse")
    assert np.isnan(gains[0]) and gains[1] == pytest.approx(-0.04) and gains[2] == pytest.approx(1 / 6)


def waterfall_places(steps: pd.DataFrame) -> dict[str, str]:
    spec = charts.waterfall(steps).to_dict()
    [frame] = spec["datasets"].values()
    return {row["step"]: row["place"] for row in frame}


def test_every_waterfall_label_sits_where_there_is_room():
    steps = charts.waterfall_steps(
        300_000.0, 490_000.0, pd.DataFrame({"feature": ["a", "b"], "value": [1.0, 2.0], "contribution": [200e3, -10e3]})
    )
    places = waterfall_places(steps)
    assert places == {"base price": "inside", "a = 1": "left", "b = 2": "left", "price": "inside"}
    small = charts.waterfall_steps(
        300_000.0, 20_000.0, pd.DataFrame({"feature": ["a"], "value": [1.0], "contribution": [-280e3]})
    )
    assert waterfall_places(small)["price"] == "right"  # a short bar: after it, where the axis is empty
    assert charts.label_width(["zip_price_per_sqft_level = 12.35"]) >= 8 * 32
    assert charts.label_width(["x" * 500]) == charts.LABEL_WIDTH_MAX
