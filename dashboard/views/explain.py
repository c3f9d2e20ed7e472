"""Explain: the last prediction's SHAP contributions in dollars, from base price to price: by what the person
entered (the default), and by the model's engineered features one tab away."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, contributions, ui
from dashboard.client import ServingError

st.title("Why this price?")
prop = st.session_state.get("property")
if not prop:
    st.info("Nothing to explain yet: price a property on the Predict page first.")
    st.page_link("views/predict.py", label="Go to Predict", icon=":material/sell:")
    st.stop()

try:
    explanation = ui.client().explain(prop)
except ServingError as error:
    ui.show_problem(error)
    st.stop()

base, price = explanation["base_price"], explanation["price"]
features = pd.DataFrame(
    {
        "feature": explanation["feature_names"],
        "value": explanation["feature_values"],
        "contribution": explanation["contributions_usd"],
        "shap": explanation["shap_values"],
    }
)
inputs = contributions.by_input(
    explanation["feature_names"], explanation["contributions_usd"], explanation["shap_values"], prop
)
base_col, price_col, change_col = st.columns(3)
base_col.metric("Base price (the model's average)", ui.money(base))
price_col.metric("Price", ui.money(price))
change_col.metric("What you entered moved it by", ui.money(price - base), delta=f"{(price - base) / base:+.0%}")

predicted = st.session_state.get("prediction") or {}
if predicted.get("model_version") and predicted["model_version"] != explanation["model_version"]:
    st.warning(
        f"The model changed since the prediction (v{predicted['model_version']} -> v{explanation['model_version']}): "
        "this explanation is v" + explanation["model_version"] + "'s."
    )
st.caption(
    f"{explanation['model_name']} v{explanation['model_version']} · {prop['bed']:g} bed, {prop['bath']:g} bath, "
    f"{prop['house_size']:,.0f} sq ft in {prop['state']}. Green raises the price, red lowers it; the bars add up "
    "from the base price to the price."
)
for warning in explanation.get("warnings") or []:
    st.warning(warning)

by_input, by_feature = st.tabs(["By what you entered", f"By the model's {len(features)} features"])
with by_input:
    steps = charts.waterfall_steps(base, price, inputs.rename(columns={"label": "feature"}))
    st.altair_chart(charts.waterfall(steps), key="waterfall_inputs")
    st.caption(
        "Each input gets the contributions of the features computed from it: SHAP values add up, so the inputs add "
        "up exactly to the price. A feature computed from several inputs (size_per_bed: living space and bedrooms) "
        "is split equally among those you gave; a place left empty is priced at the next level up (no city: the "
        "state's), so its feature goes to what you did give. The model's own features are on the next tab."
    )
    st.dataframe(
        inputs[["label", "value", "contribution", "shap", "features"]],
        hide_index=True,
        key="contributions_inputs",
        column_config={
            "label": "input",
            "value": st.column_config.TextColumn("you entered"),
            "contribution": st.column_config.NumberColumn("contribution (US dollars)", format="dollar"),
            "shap": st.column_config.NumberColumn("contribution (log price)", format="%+.4f"),
            "features": st.column_config.TextColumn("from the features", width="large"),
        },
    )
with by_feature:
    st.altair_chart(charts.waterfall(charts.waterfall_steps(base, price, features)), key="waterfall")
    st.caption(
        "The model's inputs, engineered from what you entered (location levels are log prices). TreeSHAP values "
        "are exact in log price; serving splits price - base price over the features in proportion to them, so "
        "the bars add up to the price."
    )
    table = features.reindex(features["contribution"].abs().sort_values(ascending=False).index)
    st.dataframe(
        table,
        hide_index=True,
        key="contributions",
        column_config={
            "feature": "feature",
            "value": st.column_config.NumberColumn("value (the model's input)"),
            "contribution": st.column_config.NumberColumn("contribution (US dollars)", format="dollar"),
            "shap": st.column_config.NumberColumn("contribution (log price)", format="%+.4f"),
        },
    )
