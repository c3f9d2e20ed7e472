"""Predict: one property's price, its price per square foot, and the model version that answered."""

from __future__ import annotations

import streamlit as st

from dashboard import ui
from dashboard.client import ServingError

st.title("Predict a price")
states = [s["state"] for s in ui.states_or_stop()]

with st.form("predict"):
    prop = ui.property_inputs(states, "predict")
    submitted = st.form_submit_button("Predict", type="primary", key="predict_submit")

if submitted:
    try:
        response = ui.client().predict(prop)
    except ServingError as error:
        ui.show_problem(error)
    else:
        st.session_state["property"] = prop
        st.session_state["prediction"] = response

answer = st.session_state.get("prediction")
if answer:
    asked = st.session_state["property"]
    price, sqft = answer["price"], asked["house_size"]
    price_col, sqft_col, model_col = st.columns(3)
    price_col.metric("Predicted price", ui.money(price))
    sqft_col.metric("Price per sq ft", ui.money(price / sqft))
    model_col.metric("Model", f"v{answer['model_version']}")
    st.markdown(
        f"Answered by **{answer['model_name']} v{answer['model_version']}** (alias `{answer['model_alias']}`) "
        f"for {asked['bed']:g} bed, {asked['bath']:g} bath, {asked['house_size']:,.0f} sq ft on "
        f"{asked['acre_lot']:g} acres in "
        f"{', '.join(p for p in (asked.get('city'), asked.get('zip_code'), asked['state']) if p)} "
        f"({ui.STATUS_LABELS[asked['status']]})."
    )
    for warning in answer.get("warnings") or []:
        st.warning(warning)
    st.caption(f"request {answer['request_id']}")
    st.page_link("views/explain.py", label="Why this price? See the Explain page", icon=":material/waterfall_chart:")
