"""Compare locations: the same property priced in several states (one /batch_predict call)."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard.client import ServingError

st.title("Compare locations")
known = ui.states_or_stop()
states = [s["state"] for s in known]
mean_price = {s["state"]: s["mean_price"] for s in known}

with st.form("compare"):
    prop = ui.property_inputs(states, "compare")
    busiest = [s["state"] for s in sorted(known, key=lambda s: -s.get("training_rows", 0))]
    default = list(dict.fromkeys([prop["state"], *busiest]))[:5]
    chosen = st.multiselect("States to compare", states, default=default, key="compare_states")
    submitted = st.form_submit_button("Compare", type="primary", key="compare_submit")

if submitted:
    if not chosen:
        st.warning("Choose at least one state.")
        st.stop()
    try:
        # a city or zip code belongs to one state: each state is priced at its own level
        answer = ui.client().batch_predict(
            [{**prop, "state": state, "city": None, "zip_code": None} for state in chosen]
        )
    except ServingError as error:
        ui.show_problem(error)
        st.stop()
    priced = [(state, p) for state, p in zip(chosen, answer["predictions"], strict=True) if p.get("price") is not None]
    frame = pd.DataFrame(
        {
            "state": [state for state, _ in priced],
            "price": [p["price"] for _, p in priced],
            "per_sqft": [p["price"] / prop["house_size"] for _, p in priced],
            "state_mean_price": [mean_price.get(state) for state, _ in priced],
        }
    ).sort_values("price", ascending=False)
    for state, p in zip(chosen, answer["predictions"], strict=True):
        if p.get("price") is None:
            st.warning(f"{state}: {p.get('error')}")
    st.session_state["property"] = prop
    st.caption(
        f"priced by {answer['model_name']} v{answer['model_version']} at each state's price level "
        "(the city and ZIP code are left out: they belong to one state)"
    )
    st.altair_chart(charts.state_prices(frame), key="state_prices")
    st.dataframe(
        frame,
        hide_index=True,
        key="state_table",
        column_config={
            "price": st.column_config.NumberColumn("predicted price", format="dollar"),
            "per_sqft": st.column_config.NumberColumn("per sq ft", format="dollar"),
            "state_mean_price": st.column_config.NumberColumn("state's mean training price", format="dollar"),
        },
    )
