"""Every page against a real serving process and a warehouse with real model and drift history."""

from __future__ import annotations

import pandas as pd
import pytest
import requests
from streamlit import dataframe_util

from dashboard.ui import money
from mlops_assets.core.contracts import DriftDecision
from mlops_assets.core.live_quality import live_errors
from mlops_assets.storage.object_store import ObjectStore
from mlops_assets.storage.warehouse import Warehouse, live_performance, model_diffs, model_history, sale_outcomes
from tests.dashboard.conftest import READ_TOKEN, TOKEN, Platform, clean, eventually, open_page, texts
from tests.dashboard.pipeline_history import UI_URLS

pytestmark = pytest.mark.slow

HOUSE = {"bed": 4.0, "bath": 3.0, "acre_lot": 0.5, "house_size": 2400.0, "state": "Texas", "status": "for_sale"}


@pytest.fixture
def on_platform(platform: Platform, dashboard_env) -> Platform:
    dashboard_env(platform, MLOPS_GRAFANA_URL="http://grafana.example:3000", MLOPS_DAGSTER_URL="http://dagster:3001")
    return platform


def predict_house(at=None):
    at = open_page("predict", at)
    for field in ("bed", "bath", "acre_lot", "house_size"):
        at.number_input(key=f"predict_{field}").set_value(HOUSE[field])
    at.selectbox(key="predict_state").select(HOUSE["state"])
    at.selectbox(key="predict_status").select(HOUSE["status"])
    return at.button(key="predict_submit").click().run()


def metrics(at) -> dict[str, str]:
    return {m.label: m.value for m in at.metric}


def chart_data(at, index: int = 0) -> pd.DataFrame:
    """The rows an Altair chart on the page was drawn from."""
    [frame] = chart_frames(at, index)
    return frame


def chart_frames(at, index: int) -> list[pd.DataFrame]:
    """Every dataset of a chart on the page (a layered chart may draw its layers from several)."""
    datasets = at.get("vega_lite_chart")[index].proto.datasets
    return [dataframe_util.convert_arrow_bytes_to_pandas_df(d.data.data) for d in datasets]


def test_a_prediction_shows_the_price_and_the_model_version_that_answered(on_platform):
    at = predict_house()
    assert clean(at)
    expected = on_platform.serving.post("/predict", HOUSE)
    shown = metrics(at)
    assert shown["Predicted price"] == money(expected["price"])
    assert shown["Price per sq ft"] == money(expected["price"] / HOUSE["house_size"])
    assert shown["Model"] == "v2"
    assert "Answered by **house-price v2** (alias `champion`)" in at.markdown[0].value
    assert "in Texas (for sale)" in at.markdown[0].value


def test_the_explanation_adds_up_from_the_base_price_to_the_price(on_platform):
    at = open_page("explain", predict_house())
    assert clean(at)
    served = on_platform.serving.post("/explain", HOUSE)
    base, price = served["base_price"], served["price"]
    shown = metrics(at)
    assert shown["Base price (the model's average)"] == money(base)
    assert shown["Price"] == money(price)

    tabs = ["By what you entered", f"By the model's {len(served['feature_names'])} features"]
    assert [t.label for t in at.tabs] == tabs

    # by default, by what was entered: every feature's dollars go to the inputs it is computed from
    steps = chart_data(at, 0)
    assert steps["step"].iloc[0] == "base price" and steps["step"].iloc[-1] == "price"
    inputs = steps[steps["kind"].isin(["raises", "lowers"])]
    assert set(inputs["step"]) <= {"bedrooms = 4", "bathrooms = 3", "lot (acres) = 0.5", "living space (sq ft) = 2,400",
                                   "state = Texas", "status = for sale", "ZIP code = not given"}  # fmt: skip
    assert {"state = Texas", "living space (sq ft) = 2,400"} <= set(inputs["step"])  # no city: its level is the state's
    cents = round((price - base) * 100)
    assert round(inputs["amount"].mul(100).round().sum()) == cents  # exact, to the cent
    assert steps["end"].iloc[-2] == pytest.approx(price, abs=0.01)
    by_input = at.dataframe[0].value
    assert round(by_input["contribution"].mul(100).round().sum()) == cents
    assert by_input["shap"].sum() == pytest.approx(sum(served["shap_values"]), abs=1e-9)
    assert any("split equally among those you gave" in c for c in texts(at.caption))

    # one tab away, the model's engineered features
    steps = chart_data(at, 1)
    assert steps["step"].iloc[0] == "base price" and steps["step"].iloc[-1] == "price"
    features = steps[steps["kind"].isin(["raises", "lowers"])]
    assert len(features) == len(served["feature_names"])
    assert features["amount"].sum() == pytest.approx(price - base, abs=0.01)
    assert steps["end"].iloc[-2] == pytest.approx(price, abs=0.01)  # the last step lands on the price
    assert all((a >= 0) == (k == "raises") for a, k in zip(features["amount"], features["kind"], strict=True))

    table = at.dataframe[1].value
    assert table["contribution"].sum() == pytest.approx(price - base, abs=0.01)
    assert set(table["feature"]) == set(served["feature_names"])
    assert table["shap"].sum() == pytest.approx(sum(served["shap_values"]), abs=1e-9)


def test_explain_without_a_prediction_says_what_to_do(on_platform):
    at = open_page("explain")
    assert clean(at)
    assert texts(at.main.info) == ["Nothing to explain yet: price a property on the Predict page first."]


def test_compare_prices_one_property_in_each_chosen_state(on_platform):
    at = open_page("compare")
    at.multiselect(key="compare_states").set_value(["Texas", "California", "New York"])
    at.number_input(key="compare_house_size").set_value(HOUSE["house_size"])
    at = at.button(key="compare_submit").click().run()
    assert clean(at)
    states = ("Texas", "California", "New York")
    asked = {**at.session_state["property"], "city": None, "zip_code": None}  # each state at its own level
    served = on_platform.serving.post("/batch_predict", [{**asked, "state": s} for s in states])
    expected = dict(zip(states, (p["price"] for p in served["predictions"]), strict=True))
    table = at.dataframe[0].value
    assert dict(zip(table["state"], table["price"], strict=True)) == pytest.approx(expected)
    assert list(table["price"]) == sorted(table["price"], reverse=True)
    assert list(chart_data(at)["state"]) == list(table["state"])
    assert any(c.startswith("priced by house-price v2 at each state's price level") for c in texts(at.caption))


def test_model_history_lists_promoted_and_rejected_models_with_their_reasons(on_platform):
    at = open_page("models")
    assert clean(at)
    assert "Current champion: **house-price v2** (as serving reports it)" in texts(at.main.success)
    models = at.dataframe[0].value
    assert list(models["model_version"]) == [1, 2, 3]
    # beside each model's own RMSE, its gain over the champion it was judged against, on the same rows
    recorded = Warehouse(on_platform.settings.database_url).read(model_history.select()).set_index("model_version")
    assert pd.isna(models["rmse_vs_champion"].iloc[0])  # v1: no champion then
    for version, gain in zip(models["model_version"][1:], models["rmse_vs_champion"][1:], strict=True):
        row = recorded.loc[version]
        assert gain == pytest.approx(100 * (row["rmse"] / row["champion_rmse"] - 1))
    gains = chart_frames(at, 1)[0]
    assert set(gains["metric"]) == {"RMSE", "RMSE (log price)"} and set(gains["model_version"]) == {2, 3}
    rmse_log = gains[gains["metric"] == "RMSE (log price)"].set_index("model_version")["change"]
    assert rmse_log[3] == pytest.approx(recorded.loc[3, "rmse_log"] / recorded.loc[3, "champion_rmse_log"] - 1)
    assert any("not comparable across versions" in c for c in texts(at.caption))
    assert list(models["verdict"]) == ["promoted", "promoted", "rejected"]
    assert list(models["champion"]) == [False, True, False]
    reasons = list(models["reason"])
    assert "no champion yet" in reasons[0]
    assert "vs champion v1" in reasons[1] and "on the same" in reasons[1]
    assert reasons[2].startswith("not enough better than the naive baseline: RMSE(log) 0.") and "99%" in reasons[2]

    # why the champion changed: v2 against v1 on the same rows, what it relies on, the drift behind it
    assert texts(at.main.success)[1].startswith("**v2 was promoted**: ")
    side = at.dataframe[1].value
    assert list(side.columns) == ["metric", "v2", "v1 (champion then)", "naive baseline"]
    assert list(side["metric"]) == [
        "R2", "RMSE", "MAE", "MAPE", "R2 (log price)", "RMSE (log price)", "median APE"
    ]  # fmt: skip
    assert "-" not in set(side["naive baseline"]) and side["v2"].iloc[6].endswith("%")
    # what changed: the diff the pipeline stored for v2 against v1 (the Compare models page shows all of it)
    [stored] = [d for d in stored_diffs(on_platform) if (d["new_version"], d["old_version"]) == (2, 1)]
    assert f"**{stored['headline']}**" in texts(at.markdown)
    assert any(c.startswith("Stored by the pipeline when v2 was judged against v1") for c in texts(at.caption))
    importance = at.dataframe[2].value
    assert {"house_size", "state_price_level"} <= set(importance["feature"])
    assert importance["change"].tolist() == pytest.approx((importance["v2"] - importance["v1"]).tolist(), abs=1e-5)
    [link] = [p for p in at.get("page_link") if p.proto.label.startswith("Compare v2 with v1")]
    assert link.proto.query_string == "new=2&old=1"
    drift = [m for m in texts(at.markdown) if m.startswith("**The data change behind it**")]
    assert drift and "`00003-vs-v1`" in drift[0] and "state mix:" in drift[0]

    at = at.selectbox(key="model_version").select(3).run()
    assert texts(at.main.error) == [f"**v3 was rejected**: {reasons[2]}"]


def test_drift_shows_every_batch_decision_and_one_report_with_its_why(on_platform):
    at = open_page("drift")
    assert clean(at)
    reports = at.dataframe[0].value
    assert list(reports["decision"]) == [DriftDecision.BASELINE, DriftDecision.NO_DRIFT, DriftDecision.DRIFT]
    assert list(reports["models"]) == ["v1 promoted", "", "v2 promoted, v3 rejected"]
    assert list(chart_data(at)["outcome"]) == ["trained", "skipped", "trained"]

    # the latest report by default: its why, its per-column scores, its Evidently HTML
    [decided] = texts(at.main.warning)
    assert decided.startswith("**train: drift detected**: ") and "state mix:" in decided
    scores = at.dataframe[1].value.set_index("column")
    assert bool(scores.loc["state", "drifted"]) and scores.loc["state", "score"] >= scores.loc["state", "threshold"]
    at = at.toggle(key="show_report").set_value(True).run()
    [frame] = at.get("iframe")
    key = "reports/drift/00003-vs-v1.html"
    report_uri = f"{on_platform.settings.storage_url}/{key}"
    assert frame.proto.srcdoc == ObjectStore(on_platform.settings.storage_url).read_text(key)
    assert f"Evidently report: `{report_uri}`" in texts(at.caption)

    at = at.selectbox(key="report_id").select("00002-vs-v1").run()
    assert texts(at.main.success)[-1].startswith("**skip: no drift**: no column moved past its threshold")
    at = at.selectbox(key="report_id").select("00001-vs-v0").run()
    assert "A baseline report" in texts(at.main.info)[0]


def test_monitoring_shows_recent_predictions_and_links_to_the_other_tools(on_platform):
    on_platform.serving.post("/predict", HOUSE)
    on_platform.serving.post("/batch_predict", [HOUSE] * 5)
    refused = requests.post(f"{on_platform.serving.url}/predict", json={**HOUSE, "bed": -1}, timeout=60)
    assert refused.status_code == 422
    history = f"{on_platform.serving.url}/predictions/history"
    auth = {"Authorization": f"Bearer {READ_TOKEN}"}

    def batch_logged() -> bool:
        rows = requests.get(history, headers=auth, timeout=10).json()["predictions"]
        return any(p["endpoint"] == "batch_predict" for p in rows)

    eventually(batch_logged, "the batch is logged")
    at = open_page("monitoring")
    assert clean(at)
    summary = requests.get(f"{on_platform.serving.url}/metrics/summary", timeout=10).json()
    shown = metrics(at)
    assert int(shown["Predictions"].replace(",", "")) == summary["count"] >= 6
    assert int(shown["Requests"].replace(",", "")) == summary["requests"] < summary["count"]  # a batch is one
    assert shown["Mean latency per request"] == f"{summary['mean_latency_ms']:,.1f} ms"
    assert shown["Model versions used"].startswith("v2")

    # per endpoint: answered requests and their latency per request (the log), refused and failed (the counters)
    latency = at.dataframe[0].value.set_index("endpoint")
    batches = latency.loc["batch_predict"]
    assert batches["requests"] == summary["endpoints"]["batch_predict"]["requests"] >= 1
    assert batches["predictions"] >= 5 + batches["requests"] - 1
    predict = latency.loc["predict"]
    assert 0 < predict["p50_latency_ms"] <= predict["p95_latency_ms"] <= predict["max_latency_ms"]
    outcomes = at.dataframe[1].value.set_index("endpoint")
    assert outcomes.loc["predict", "invalid (422)"] == summary["outcomes"]["predict"]["invalid"] >= 1
    assert outcomes.loc["predict", "answered"] >= 1 and int(shown["Invalid (422)"].replace(",", "")) >= 1
    assert shown["Failed (5xx)"] == "0"
    assert any(c.startswith("Since serving started, from its Prometheus counters") for c in texts(at.caption))

    # the recent rows, and one point per request in the chart (the batch's five rows are one point)
    recent = at.dataframe[2].value
    assert len(recent) >= 6 and set(recent["model_version"]) == {"2"}
    points = chart_data(at)
    assert len(points) < len(recent) and 5 in set(points[points["endpoint"] == "batch_predict"]["predictions"])
    links = {b.label: b.url for b in at.get("link_button")}
    assert links == {
        "Dagster UI: runs, assets, sensors": "http://dagster:3001",
        "MLflow: experiments, registry": UI_URLS["mlflow"],  # the platform's MLOPS_MLFLOW_URL
        "Grafana: serving dashboards": "http://grafana.example:3000",
        "Serving API docs": f"{on_platform.serving.url}/",
    }


def test_the_sidebar_shows_serving_and_reloads_only_with_the_admin_token(on_platform):
    at = open_page("predict")
    assert texts(at.sidebar.success) == ["healthy: house-price **v2** (champion)"]
    assert at.button(key="reload").disabled
    at = at.text_input(key="admin_token").input("wrong").run()
    at = at.button(key="reload").click().run()
    assert texts(at.sidebar.error) == ["Not allowed: invalid token"]
    at = at.text_input(key="admin_token").input(TOKEN).run()
    at = at.button(key="reload").click().run()
    assert texts(at.sidebar.success)[-1] == "serving v2 (unchanged)"


def stored_diffs(platform: Platform) -> list[dict]:
    return Warehouse(platform.settings.database_url).read(model_diffs.select()).to_dict("records")


def test_compare_models_shows_the_stored_diff_and_computes_any_other_pair(on_platform):
    at = open_page("model_diff")
    assert clean(at)
    stored = {(d["new_version"], d["old_version"]): d for d in stored_diffs(on_platform)}
    assert set(stored) == {(2, 1), (3, 2)}  # each candidate against the champion it was judged against
    # by default the newest candidate against its champion: v3 (rejected) against v2, as stored
    assert (at.selectbox(key="diff_new").value, at.selectbox(key="diff_old").value) == (3, 2)
    assert f"### {stored[(3, 2)]['headline']}" in texts(at.markdown)
    assert any(c.startswith("Stored by the pipeline when v3 was judged against v2") for c in texts(at.caption))
    overall = at.dataframe[0].value
    assert list(overall.columns) == ["metric", "v2", "v3", "change"]
    assert len(at.dataframe[1].value) == 10  # the largest movers, with their inputs
    assert {"state", "house_size", "zip_code", "price", "v2", "v3", "change"} <= set(at.dataframe[1].value.columns)
    by_state = at.dataframe[2].value
    assert by_state["rows"].sum() == stored[(3, 2)]["holdout_rows"]
    assert [m.label for m in at.metric] == ["Median change", "Moved more than 5%", "Moved more than 10%",
                                            "Moved more than 20%"]  # fmt: skip

    # a pair the pipeline never judged: computed now with the pipeline's code, on v3's holdout rows (batch 3),
    # the rows v2 was judged on against v1 - so v1's figures are the ones recorded for that decision
    at = at.selectbox(key="diff_old").select(1).run()
    assert clean(at)
    assert any(c.startswith("Computed now (no stored diff for this pair)") for c in texts(at.caption))
    assert texts(at.main.warning) == []  # the holdout digest matches v3's recorded one
    rows = Warehouse(on_platform.settings.database_url).read(model_history.select()).set_index("model_version")
    overall = at.dataframe[0].value.set_index("metric")
    assert overall.loc["RMSE(log)", "v1"] == f"{rows.loc[2, 'champion_rmse_log']:.3f}"
    assert overall.loc["RMSE(log)", "v3"] == f"{rows.loc[3, 'rmse_log']:.3f}"
    assert overall.loc["median APE", "v1"] == f"{rows.loc[2, 'champion_median_ape']:.1%}"
    assert [m for m in texts(at.main.markdown) if m.startswith("### v3 vs v1: RMSE(log) ")]
    assert at.query_params == {"new": "3", "old": "1"}  # the pair is in the URL, to share or come back to

    at = at.selectbox(key="diff_old").select(3).run()
    assert clean(at) and texts(at.main.info) == ["Pick two different versions."]


def test_live_quality_shows_matched_sales_the_ratio_study_and_no_rollback(on_platform):
    at = open_page("live_quality")
    assert clean(at)
    db = Warehouse(on_platform.settings.database_url)
    performance = db.read(live_performance.select().where(live_performance.c.scope == "all"))
    outcomes = db.read(sale_outcomes.select())
    assert len(outcomes) > 0, "batch 3's sales match batch 2's scores by v1"
    drawn = chart_data(at)
    assert list(drawn["batch_id"]) == list(performance["batch_id"])
    assert list(drawn["sales"]) == list(performance["sales"])
    study = at.dataframe[0].value.set_index("model_version")
    expected = live_errors(outcomes["predicted_price"].to_numpy(), outcomes["sold_price"].to_numpy())
    assert list(study.index) == ["1"] and study.loc["1", "sales"] == len(outcomes)
    assert study.loc["1", "median_ratio"] == pytest.approx(expected["median_ratio"])
    assert study.loc["1", "cod"] == pytest.approx(expected["cod"])
    assert study.loc["1", "cod ok"] == ("yes" if expected["cod"] <= 15 else "no")
    assert "No rollback" in texts(at.main.info)[-1]
