"""Monitoring: what serving answered recently (from its own summary and log) and where the other UIs are."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, traffic, ui
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
request_count = summary.get("requests")
count_col, requests_col, latency_col, price_col, versions_col = st.columns(5)
count_col.metric("Predictions", f"{summary['count']:,}", help="logged rows: a batch's items count one each")
requests_col.metric("Requests", "-" if request_count is None else f"{request_count:,}", help="a batch is one request")
latency = summary.get("mean_latency_ms")
latency_col.metric(
    "Mean latency per request" if request_count is not None else "Mean latency per row",
    "-" if latency is None else f"{latency:,.1f} ms",
)
price_col.metric("Mean price", ui.money(summary.get("mean_price")))
versions = summary.get("versions_used") or {}
versions_col.metric("Model versions used", ", ".join(f"v{v}" for v in versions) or "-")
if versions:
    st.caption("Predictions per version: " + ", ".join(f"v{v}: {n:,}" for v, n in versions.items()))

endpoints = traffic.endpoint_latency(summary)
if endpoints is None:
    st.info("This serving version reports its latency per logged row only (no per-request or per-endpoint figures).")
else:
    st.dataframe(
        endpoints,
        hide_index=True,
        key="endpoint_latency",
        column_config={
            "requests": st.column_config.NumberColumn("requests", format="localized"),
            "predictions": st.column_config.NumberColumn("predictions", format="localized"),
            **{
                column: st.column_config.NumberColumn(label, format="%.1f")
                for column, label in traffic.LATENCY_COLUMNS.items()
            },
        },
    )
    st.caption(
        "Answered requests and their latency per request, from serving's inference log (`/metrics/summary`): "
        "each request is timed once, so a 10,000-row batch weighs as much as one prediction. Refused and failed "
        "requests are not logged: they are counted below."
    )

outcomes = traffic.outcome_table(summary)
if outcomes is not None:
    st.subheader("Refused and failed requests")
    invalid_col, failed_col, _ = st.columns(3)
    invalid_col.metric("Invalid (422)", f"{int(outcomes['invalid (422)'].sum()):,}")
    failed_col.metric("Failed (5xx)", f"{int(outcomes['failed (5xx)'].sum()):,}")
    st.dataframe(outcomes, hide_index=True, key="endpoint_outcomes")
    st.caption(
        "Since serving started, from its Prometheus counters (`predictions_total`, summed over its workers and "
        "model versions; Grafana graphs them over time). Failed = no model (503) + busy (503: the inference log "
        "was full) + error (500). A request refused whole counts once; a /batch_predict item counts one each, "
        "answered or invalid."
    )

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
st.altair_chart(charts.latency(traffic.per_request(rows)), key="latency")
st.caption("One point per request (a batch's rows share its request and its latency); the table lists every row.")
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
