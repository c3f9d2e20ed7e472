"""Monitoring: what serving answered recently (from its own summary and log) and where the other UIs are."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard.client import ServingError

st.title("Monitoring")
cfg = ui.config()

st.subheader("The other tools")
links = st.columns(4)
links[0].link_button("Dagster UI: runs, assets, sensors", cfg.dagster_url)
links[1].link_button("MLflow: experiments, registry", cfg.mlflow_url)
if cfg.grafana_url:
    links[2].link_button("Grafana: serving dashboards", cfg.grafana_url)
else:
    links[2].caption("Grafana: set MLOPS_GRAFANA_URL to link it here.")
links[3].link_button("Serving API docs", cfg.api_docs_url)

client = ui.client()
st.subheader("Last 24 hours")
try:
    summary = client.summary()
except ServingError as error:
    ui.show_problem(error)
    st.stop()
count_col, price_col, latency_col, versions_col = st.columns(4)
count_col.metric("Predictions", f"{summary['count']:,}")
price_col.metric("Mean price", ui.money(summary.get("mean_price")))
latency = summary.get("mean_latency_ms")
latency_col.metric("Mean latency", "-" if latency is None else f"{latency:,.1f} ms")
versions = summary.get("versions_used") or {}
versions_col.metric("Model versions used", ", ".join(f"v{v}" for v in versions) or "-")
if versions:
    st.caption("Predictions per version: " + ", ".join(f"v{v}: {n:,}" for v, n in versions.items()))

st.subheader("Recent predictions")
limit = st.slider("How many", 10, 1000, 100, step=10, key="history_limit")
try:
    recent = client.predictions(limit=limit)
except ServingError as error:
    if error.status in (401, 403):  # the history shows every client's requests: it takes a token
        st.info(f"The prediction history needs serving's read token: set MLOPS_READ_TOKEN for the dashboard. ({error})")
    else:
        ui.show_problem(error)
    st.stop()
rows = pd.DataFrame(recent["predictions"])
if rows.empty:
    st.info("No prediction logged yet: price a property on the Predict page.")
    st.stop()
rows["created_at"] = pd.to_datetime(rows["created_at"], utc=True)
st.altair_chart(charts.latency(rows), key="latency")
st.dataframe(
    rows.drop(columns=["request_id"]),
    hide_index=True,
    key="predictions_table",
    column_config={
        "created_at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm:ss"),
        "price": st.column_config.NumberColumn("price", format="dollar"),
        "latency_ms": st.column_config.NumberColumn("latency (ms)", format="%.1f"),
    },
)
