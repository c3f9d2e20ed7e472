"""Model history: every trained model, its verdict and reason, and why the champion changed."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import charts, diffs, ui
from dashboard.history import HistoryError, gain_over_champion

METRICS = {"r2": "R2", "rmse": "RMSE", "mae": "MAE", "mape": "MAPE", "r2_log": "R2 (log price)",
           "rmse_log": "RMSE (log price)", "median_ape": "median APE"}  # fmt: skip
GAIN_HELP = (
    "{metric} against the champion this model was judged against, both on this model's holdout rows: "
    "below 0 it was better (the gate's comparison; blank: no champion then)"
)


def metric_text(name: str, value: float | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    if name in ("r2", "r2_log", "rmse_log"):
        return f"{value:.3f}"
    return f"{value:.1%}" if name in ("mape", "median_ape") else ui.money(value)


st.title("Model history")
models = ui.models_or_none()
if models is None:
    st.stop()
cfg = ui.config()
champion, source = ui.champion_version(models)
if champion is None:
    st.info(f"No current champion: {source}")
elif source == "serving":
    st.success(f"Current champion: **{cfg.settings.model_name} v{champion}** (as serving reports it)")
else:
    st.warning(f"Champion shown: **v{champion}**, from {source}")

models = models.assign(
    champion=models["model_version"].astype(str) == str(champion),
    rmse_vs_champion=100 * gain_over_champion(models, "rmse"),
    rmse_log_vs_champion=100 * gain_over_champion(models, "rmse_log"),
)
st.dataframe(
    models[["champion", "model_version", "verdict", "reason", "trained_at", "batch_id", "training_rows", "r2_log",
            "median_ape", "baseline_median_ape", "r2", "rmse", "rmse_vs_champion", "rmse_log_vs_champion", "mae",
            "mape", "trigger"]],
    hide_index=True,
    key="models_table",
    column_config={
        "champion": st.column_config.CheckboxColumn("champion", help="the model serving answers with"),
        "model_version": "version",
        "trained_at": st.column_config.DatetimeColumn("trained (UTC)", format="YYYY-MM-DD HH:mm"),
        "batch_id": "through batch",
        "training_rows": st.column_config.NumberColumn("training rows", format="localized"),
        "r2_log": st.column_config.NumberColumn("R2 (log)", format="%.3f", help="R2 of log price"),
        "median_ape": st.column_config.NumberColumn("median APE", format="percent"),
        "baseline_median_ape": st.column_config.NumberColumn(
            "baseline median APE", format="percent", help="the naive baseline (zip / city / state median price)"
        ),
        "r2": st.column_config.NumberColumn("R2", format="%.3f"),
        "rmse": st.column_config.NumberColumn("RMSE", format="dollar", help="on this model's own holdout rows"),
        "rmse_vs_champion": st.column_config.NumberColumn(
            "RMSE vs champion", format="%+.1f%%", help=GAIN_HELP.format(metric="RMSE")
        ),
        "rmse_log_vs_champion": st.column_config.NumberColumn(
            "RMSE(log) vs champion", format="%+.1f%%", help=GAIN_HELP.format(metric="RMSE of log price")
        ),
        "mae": st.column_config.NumberColumn("MAE", format="dollar"),
        "mape": st.column_config.NumberColumn("MAPE", format="percent"),
        "reason": st.column_config.TextColumn("reason", width="large"),
    },
)  # fmt: skip

st.subheader("Metrics across versions")
st.caption(
    "Each model's own figures (left) are on its own holdout rows, and the holdout grows and changes with the data "
    "(drift brings new places and price levels): they are not comparable across versions, and an error that rises "
    "from one version to the next does not mean a worse model. Each model against the champion it was judged "
    "against, on the same rows (right), is the comparison the promotion gate makes (by default on the RMSE of log "
    "price). Colour = verdict."
)
errors_col, gain_col = st.columns(2)
errors_col.altair_chart(
    charts.metric_trend(models, ["rmse", "mae"], "US dollars, each on its own holdout", "$,.0f"), key="trend_errors"
)
gains = pd.concat(
    [
        models[["model_version", "verdict", "champion_version"]].assign(
            metric=label, change=gain_over_champion(models, metric)
        )
        for metric, label in (("rmse", "RMSE"), ("rmse_log", "RMSE (log price)"))
    ],
    ignore_index=True,
)
gain_col.altair_chart(charts.champion_gain(gains, [int(v) for v in models["model_version"]]), key="gain_over_champion")
fit_col, _ = st.columns(2)
fit_col.altair_chart(
    charts.metric_trend(models, ["r2_log", "median_ape"], "R2 (log price) and median APE", ".2f"), key="trend_fit"
)

st.subheader("Why did the model change?")
versions = [int(v) for v in models["model_version"]]
asked = st.query_params.get("version")  # a link from MLflow's run or version description: /models?version=<n>
default = versions.index(int(champion)) if champion is not None and int(champion) in versions else len(versions) - 1
if asked is not None:
    if asked.isdigit() and int(asked) in versions:
        default = versions.index(int(asked))
    else:
        st.warning(f"No model version '{asked}' in the history: showing v{versions[default]}")
version = st.selectbox("Model", versions, index=default, format_func=lambda v: f"v{v}", key="model_version")
row = models[models["model_version"] == version].iloc[0]
verdict = f"**v{version} was {row['verdict']}**: {row['reason'] or 'no reason recorded'}"
(st.success if row["verdict"] == "promoted" else st.error if row["verdict"] == "rejected" else st.info)(verdict)
st.markdown(f"**Trigger:** {row['trigger'] or 'unknown'} · **why it was trained:** {row['why'] or 'not recorded'}")
links = cfg.links
model_links = {
    "MLflow: model version": links.mlflow_version(cfg.settings.model_name, version),
    "MLflow: training run": links.mlflow_run(row["mlflow_run_id"]),
    **({"Dagster: training run": links.dagster_run(row["dagster_run_id"])} if row.get("dagster_run_id") else {}),
    "Dagster: candidate_model partition": links.dagster_partition("candidate_model", row["batch_id"]),
}
for column, (label, url) in zip(st.columns(len(model_links)), model_links.items(), strict=True):
    column.link_button(label, url, key=f"model_link_{label}")

previous = row.get("champion_version")
if previous is None or pd.isna(previous):
    st.info(f"v{version} was judged with no champion in place (a baseline): there is nothing to compare it with.")
else:
    previous = int(previous)
    st.markdown(
        f"Against **v{previous}**, the champion when v{version} was decided, scored on the same "
        f"{int(row['holdout_rows']):,} holdout rows:"
    )
    side = pd.DataFrame(
        {
            "metric": list(METRICS.values()),
            f"v{version}": [metric_text(m, row[m]) for m in METRICS],
            f"v{previous} (champion then)": [metric_text(m, row.get(f"champion_{m}")) for m in METRICS],
            "naive baseline": [metric_text(m, row.get(f"baseline_{m}")) for m in METRICS],
        }
    )
    st.dataframe(side, hide_index=True, key="side_by_side")

    # what changed: the pipeline's stored diff of this pair (the same one the Compare models page shows)
    st.markdown(f"**What changed from v{previous} to v{version}**")
    try:
        diff = diffs.stored(cfg.settings.database_url, cfg.settings.model_name, version, previous)
    except HistoryError as error:
        ui.show_problem(error)
    else:
        if diff is None:
            st.info(
                f"No diff is stored for v{version} against v{previous} (decided before diffs were recorded): "
                "the Compare models page computes it."
            )
        else:
            diffs.show_summary(diff, key="model_diff")
    st.page_link(
        "views/model_diff.py",
        label=f"Compare v{version} with v{previous}: segments, value changes, largest movers",
        icon=":material/compare_arrows:",
        query_params={"new": str(version), "old": str(previous)},
    )

report_id = row.get("drift_report_id")
if report_id:
    try:
        reports = ui.drift_history(cfg.settings.database_url)
    except HistoryError as error:
        ui.show_problem(error)
    else:
        match = reports[reports["report_id"] == report_id]
        if not match.empty:
            report = match.iloc[-1]
            drifted = ", ".join(report["drifted_columns"] or []) or "none"
            st.markdown(
                f"**The data change behind it** (drift report `{report_id}`, batch {report['batch_id']}): "
                f"{report['decision']}. Drifted columns: {drifted}. {report['why']}"
            )
            if isinstance(report.get("importance_rule"), str):
                st.caption(f"Importance-weighted: {report['importance_rule']}")
            st.page_link(
                "views/drift.py",
                label="See the drift report",
                icon=":material/ssid_chart:",
                query_params={"report": report_id},
            )
