"""Explain: the last prediction's SHAP contributions in dollars, from base price to price."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, ui
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
contributions = pd.DataFrame(
    {
        "feature": explanation["feature_names"],
        "value": explanation["feature_values"],
        "contribution": explanation["contributions_usd"],
    }
)
base_col, price_col, change_col = st.columns(3)
base_col.metric("Base price (the model's average)", ui.money(base))
price_col.metric("Price", ui.money(price))
change_col.metric("Features moved it by", ui.money(price - base), delta=f"{(price - base) / base:+.0%}")

predicted = st.session_state.get("prediction") or {}
if predicted.get("model_version") and predicted["model_version"] != explanation["model_version"]:
    st.warning(
        f"The model changed since the prediction (v{predicted['model_version']} -> v{explanation['model_version']}): "
        "this explanation is v" + explanation["model_version"] + "'s."
    )
st.caption(
    f"{explanation['model_name']} v{explanation['model_version']} · {prop['bed']:g} bed, {prop['bath']:g} bath, "
    f"{prop['house_size']:,.0f} sq ft in {prop['state']}. TreeSHAP values are exact in log-price; serving "
    "splits price - base price over the features in proportion to them, so the bars add up to the price."
)
for warning in explanation.get("warnings") or []:
    st.warning(warning)
st.altair_chart(charts.waterfall(charts.waterfall_steps(base, price, contributions)), key="waterfall")

table = contributions.reindex(contributions["contribution"].abs().sort_values(ascending=False).index)
st.dataframe(
    table,
    hide_index=True,
    key="contributions",
    column_config={
        "feature": "feature",
        "value": st.column_config.NumberColumn("value (the model's input)"),
        "contribution": st.column_config.NumberColumn("contribution (US dollars)", format="dollar"),
    },
)
