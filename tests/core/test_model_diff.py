"""The model diff on constructed predictions with known differences, and the feature -> column mapping."""

from __future__ import annotations

import json
import re

import numpy as np
import pandas as pd
import pytest

from mlops_assets.core.contracts import DriftDecision
from mlops_assets.core.features import FEATURE_NAMES, FEATURE_SOURCES, column_reliance
from mlops_assets.core.metrics import regression_metrics
from mlops_assets.core.model_diff import model_diff, summary_markdown, to_markdown

OHIO, TEXAS = 300, 100


@pytest.fixture(scope="module")
def holdout() -> pd.DataFrame:
    """400 listings, prices and sizes rising together; the 100 most expensive (and largest) are in Texas."""
    rng = np.random.default_rng(0)
    price = np.sort(np.exp(rng.normal(12.5, 0.5, OHIO + TEXAS)))
    return pd.DataFrame(
        {
            "listing_id": [f"{i:016x}" for i in range(OHIO + TEXAS)],
            "price": price,
            "state": ["Ohio"] * OHIO + ["Texas"] * TEXAS,
            "city": "Springfield",
            "zip_code": "45501",
            "status": "for_sale",
            "bed": 3.0,
            "bath": 2.0,
            "house_size": np.linspace(800, 4000, OHIO + TEXAS),
            "acre_lot": 0.25,
        }
    )


@pytest.fixture(scope="module")
def predictions(holdout) -> tuple[np.ndarray, np.ndarray]:
    """The old model prices everything 10% high; the new one is exact in Ohio and 30% high in Texas."""
    price = holdout["price"].to_numpy()
    old = price * 1.10
    new = np.where(holdout["state"] == "Texas", price * 1.30, price)
    return new, old


OLD_SHAP = {"house_size": 0.20, "state_price_level": 0.10, "bed": 0.05}
NEW_SHAP = {"house_size": 0.10, "state_price_level": 0.40, "bed": 0.05, "zip_price_level": 0.06}


@pytest.fixture(scope="module")
def diff(holdout, predictions) -> dict:
    new, old = predictions
    drift = {
        "report_id": "00003-vs-v6",
        "batch_id": "00003",
        "decision": DriftDecision.DRIFT,
        "why": "state mix: Texas 1% -> 22%",
        "drifted_columns": ["state"],
        "column_scores": json.dumps(
            {"state": {"score": 0.31, "threshold": 0.1, "method": "jensenshannon", "drifted": True}}
        ),
    }
    return model_diff(holdout, new, old, NEW_SHAP, OLD_SHAP, drift, new_version=7, old_version=6, movers=5)


def by_segment(diff: dict, name: str) -> dict[str, dict]:
    return {e["segment"]: e for e in diff["segments"][name]}


def test_overall_metrics_come_from_the_gate_metric_code(diff, holdout, predictions):
    new, old = predictions
    expected_new, expected_old = regression_metrics(holdout["price"], new), regression_metrics(holdout["price"], old)
    assert diff["rows"] == OHIO + TEXAS
    for metric in ("rmse_log", "median_ape", "rmse"):
        assert diff["overall"]["new"][metric] == pytest.approx(expected_new[metric], rel=1e-5)
        assert diff["overall"]["old"][metric] == pytest.approx(expected_old[metric], rel=1e-5)
    relative = expected_new["rmse_log"] / expected_old["rmse_log"] - 1
    assert diff["overall"]["relative"]["rmse_log"] == pytest.approx(relative, rel=1e-5)


def test_segment_deltas_are_as_constructed(diff):
    states = by_segment(diff, "state")
    assert [e["segment"] for e in diff["segments"]["state"]] == ["Ohio", "Texas"]  # the largest first
    assert states["Ohio"]["rows"] == OHIO and states["Texas"]["rows"] == TEXAS
    assert states["Ohio"]["new"]["median_ape"] == pytest.approx(0.0, abs=1e-9)
    assert states["Texas"]["new"]["median_ape"] == pytest.approx(0.30)
    assert states["Ohio"]["old"]["median_ape"] == states["Texas"]["old"]["median_ape"] == pytest.approx(0.10)
    assert states["Ohio"]["change"]["median_ape"] == pytest.approx(-0.10)
    assert states["Texas"]["change"]["median_ape"] == pytest.approx(0.20)
    assert states["Texas"]["change"]["rmse_log"] > 0 > states["Ohio"]["change"]["rmse_log"]
    assert states["Texas"]["share_moved"] == 1.0 and states["Ohio"]["share_moved"] == 0.0

    # price and size bands are quartiles: the top quartile of each is exactly the Texas rows
    for name, unit in (("price_band", "$"), ("size_band", "sq ft")):
        bands = diff["segments"][name]
        assert [e["segment"][:2] for e in bands] == ["Q1", "Q2", "Q3", "Q4"] and unit in bands[0]["segment"]
        assert [e["rows"] for e in bands] == [100, 100, 100, 100]
        assert bands[3]["new"]["median_ape"] == pytest.approx(0.30)
        assert all(e["new"]["median_ape"] == pytest.approx(0.0, abs=1e-9) for e in bands[:3])
        assert [e["share_moved"] for e in bands] == [0.0, 0.0, 0.0, 1.0]


def test_value_changes_and_the_largest_movers_are_as_constructed(diff):
    changes = diff["value_changes"]
    ohio, texas = 1 / 1.1 - 1, 1.3 / 1.1 - 1  # -9.1% and +18.2%
    assert changes["share_moved"] == {"5%": 1.0, "10%": 0.25, "20%": 0.0}
    assert changes["median"] == pytest.approx(ohio, rel=1e-5)
    assert changes["share_up"] == 0.25 and changes["share_down"] == 0.75
    assert changes["moved_by_state"] == [{"state": "Texas", "count": 100, "share_of_moved": 1.0, "share_of_state": 1.0}]
    histogram = {b["bin"]: b["count"] for b in changes["histogram"]}
    assert histogram["-10% to -5%"] == OHIO and histogram["+10% to +20%"] == TEXAS and sum(histogram.values()) == 400

    movers = changes["largest_movers"]
    assert len(movers) == 5
    assert all(m["state"] == "Texas" and m["change"] == pytest.approx(texas, rel=1e-5) for m in movers)
    first = movers[0]
    assert {"listing_id", "city", "zip_code", "bed", "bath", "house_size", "acre_lot", "status"} <= set(first)
    assert first["new_prediction"] == pytest.approx(first["price"] * 1.3, rel=1e-5)
    assert first["old_prediction"] == pytest.approx(first["price"] * 1.1, rel=1e-5)


def test_importance_and_drift_are_carried_and_ranked(diff):
    importance = diff["importance"]
    assert importance["most_changed"][:3] == ["state_price_level", "house_size", "zip_price_level"]
    rows = {e["feature"]: e for e in importance["features"]}
    assert rows["zip_price_level"]["old"] == 0.0 and rows["zip_price_level"]["new"] == 0.06  # new in v7
    assert rows["house_size"]["change"] == pytest.approx(-0.10)
    assert diff["drift"]["report_id"] == "00003-vs-v6"
    assert diff["drift"]["column_scores"]["state"]["score"] == 0.31  # parsed from the stored JSON text


def test_the_headline_and_the_text_read_in_dollars_and_percent(diff):
    rmse_log = diff["overall"]["relative"]["rmse_log"]
    assert diff["headline"] == (
        f"v7 vs v6: RMSE(log) {rmse_log:+.1%}; 25% of properties moved more than 10%, mostly in Texas"
    )
    json.dumps(diff, allow_nan=False)  # plain JSON: no NaN, no numpy types
    summary = summary_markdown(diff)
    assert summary.startswith(f"**{diff['headline']}** (on the same 400 holdout rows)")
    assert "| RMSE | $" in summary and "| median APE | 10.0% | " in summary and "pts |" in summary
    assert not re.search(r"\d\.\d{5,}", summary)  # no raw floats
    document = to_markdown(diff)
    assert "## By price band" in document and "### Largest movers" in document and "state mix: Texas" in document
    assert not re.search(r"\d\.\d{5,}", document)


def test_no_movers_no_importance_and_tiny_segments_still_make_plain_json(holdout):
    price = holdout["price"].to_numpy()
    rows = holdout.assign(state=["Ohio"] * 399 + ["Alaska"])  # one row: its R2 is undefined
    diff = model_diff(rows, price * 1.01, price, None, {}, None, new_version=2, old_version=1)
    assert diff["headline"].endswith("no property moved more than 10%")
    assert diff["importance"]["features"] == [] and "no mean |SHAP|" in diff["importance"]["note"]
    assert diff["drift"] is None
    assert by_segment(diff, "state")["Alaska"]["new"]["r2"] is None
    json.dumps(diff, allow_nan=False)
    with pytest.raises(ValueError, match="400 holdout rows but 3 new"):
        model_diff(holdout, price[:3], price, None, None)


def test_every_feature_maps_to_the_raw_columns_it_derives_from():
    assert list(FEATURE_SOURCES) == FEATURE_NAMES
    assert FEATURE_SOURCES["zip_price_level"] == ("state", "city", "zip_code")
    assert not any("price" in sources for sources in FEATURE_SOURCES.values())  # the target is no input
    importance = {"state_price_level": 0.5, "city_price_level": 0.2, "size_per_bed": 0.2, "status_sold": 0.1}
    reliance = column_reliance(importance, ["state", "house_size", "bed", "status", "price"])
    assert reliance == pytest.approx({"state": 0.7, "house_size": 0.2, "bed": 0.2, "status": 0.1, "price": 0.0})
