"""Drift: per batch, how much of the data moved and what the pipeline decided; per report, the why."""

from __future__ import annotations

import contextlib

import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard.history import HistoryError, read_report
from mlops_assets.core.contracts import DriftDecision

st.title("Drift")
cfg = ui.config()
try:
    reports = ui.drift_history(cfg.settings.database_url)
except HistoryError as error:
    ui.show_problem(error)
    st.stop()

models = None
with contextlib.suppress(HistoryError):  # the drift history stands on its own; "models trained" stays empty
    models = ui.model_history(cfg.settings.database_url, cfg.settings.model_name)


def trained_models(report_id: str) -> str:
    if models is None:
        return ""
    rows = models[models["drift_report_id"] == report_id]
    return ", ".join(f"v{int(r.model_version)} {r.verdict}" for r in rows.itertuples())


reports = reports.assign(
    outcome=[DriftDecision.parse(d).outcome for d in reports["decision"]],
    share=reports["share_drifted"].fillna(0.0),
    columns=[", ".join(c) if isinstance(c, list) else "" for c in reports["drifted_columns"]],
    models=[trained_models(r) for r in reports["report_id"]],
)
st.caption("One bar per batch: the share of monitored columns that drifted against the champion's training data.")
st.altair_chart(
    charts.drift_timeline(reports.assign(share_drifted=reports["share"])[["batch_id", "share_drifted", "outcome",
                                                                          "decision", "why"]]),
    key="drift_timeline",
)  # fmt: skip
st.dataframe(
    reports[["batch_id", "created_at", "reference_model_version", "rows_reference", "rows_current", "share_drifted",
             "columns", "decision", "models", "why"]],
    hide_index=True,
    key="reports_table",
    column_config={
        "batch_id": "batch",
        "created_at": st.column_config.DatetimeColumn("judged (UTC)", format="YYYY-MM-DD HH:mm"),
        "reference_model_version": "against champion",
        "rows_reference": st.column_config.NumberColumn("reference rows", format="localized"),
        "rows_current": st.column_config.NumberColumn("batch rows", format="localized"),
        "share_drifted": st.column_config.NumberColumn("drifted share", format="percent"),
        "columns": "drifted columns",
        "models": "models trained",
        "why": st.column_config.TextColumn("why", width="large"),
    },
)  # fmt: skip

st.subheader("One report")
ids = list(reports["report_id"])
asked = st.query_params.get("report")  # a link from Dagster's drift_report metadata: /drift?report=<id>
if asked and asked not in ids:
    st.warning(f"No drift report {asked!r} in the history; showing the latest.")
report_id = st.selectbox("Report", ids, index=ids.index(asked) if asked in ids else len(ids) - 1, key="report_id")
report = reports[reports["report_id"] == report_id].iloc[-1]
(st.warning if report["outcome"] == "trained" else st.success)(f"**{report['decision']}**: {report['why']}")
links = cfg.links
report_links = {"Dagster: drift_report partition": links.dagster_partition("drift_report", report["batch_id"])}
if report.get("dagster_run_id"):
    report_links["Dagster: the run that judged it"] = links.dagster_run(report["dagster_run_id"])
for column, (label, url) in zip(st.columns(len(report_links) + 1), report_links.items(), strict=False):
    column.link_button(label, url, key=f"report_link_{label}")
trained = [] if models is None else list(models[models["drift_report_id"] == report_id]["model_version"])
for version in trained:
    st.page_link("views/models.py", label=f"Model v{version}, trained on this report", icon=":material/model_training:",
                 query_params={"version": str(version)})  # fmt: skip
scores = report["column_scores"]
if not isinstance(scores, dict) or not scores:
    st.info("A baseline report: there was no champion, so nothing to compare the batch with.")
    st.stop()
table = pd.DataFrame([{"column": name, **values} for name, values in scores.items()])
chart_col, table_col = st.columns([3, 2])
chart_col.altair_chart(charts.column_scores(table), key="column_scores")
table_col.dataframe(table, hide_index=True, key="scores_table",
                    column_config={"score": st.column_config.NumberColumn("score", format="%.3f")})  # fmt: skip

uri = report["report_uri"]
if uri:
    st.caption(f"Evidently report: `{uri}`")
    if st.toggle("Show the Evidently report", key="show_report"):
        try:
            html = read_report(uri)
        except HistoryError as error:
            ui.show_problem(error)
        else:
            st.download_button("Download the report (HTML)", html, file_name=f"{report_id}.html", mime="text/html")
            st.iframe(html, height=900)
