"""Live quality: how each model's predictions did once the sale prices came in (assets/outcomes.py).

Matched sales per batch, live error per model version against its holdout error, the IAAO ratio study
(median ratio, COD, PRD, PRB) against the standard's ranges, predicted against sold, and every rollback.
"""

from __future__ import annotations

from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import ui
from dashboard.history import HistoryError
from mlops_assets.core.live_quality import live_errors
from mlops_assets.core.ratio_study import MIN_SALES_PER_STATE, STANDARDS

st.title("Live quality")
st.caption(
    "A listing priced while for sale (by batch scoring, or by serving when the request named the property) "
    "is matched to its sale in a later batch. Per sale, each model version counts its latest earlier prediction."
)
cfg = ui.config()
try:
    performance, outcomes, rollbacks = ui.live_history(cfg.settings.database_url, cfg.settings.model_name)
except HistoryError as error:
    ui.show_problem(error)
    st.stop()

models = ui.models_or_none()
overall = performance[performance["scope"] == "all"].copy()
overall["version"] = "v" + overall["model_version"].astype(str)

left, right = st.columns(2)
with left:
    st.subheader("Matched sales per batch")
    st.altair_chart(
        alt.Chart(overall)
        .mark_bar()
        .encode(
            x=alt.X("batch_id:O", title="sale batch"),
            y=alt.Y("sales:Q", title="matched sales"),
            color=alt.Color("version:N", title="priced by"),
            tooltip=["batch_id", "version", alt.Tooltip("sales:Q", format=",")],
        )
        .properties(height=260),
        key="matched_sales",
    )
with right:
    st.subheader("Live MAPE by model version")
    lines = (
        alt.Chart(overall)
        .mark_line(point=True)
        .encode(
            x=alt.X("batch_id:O", title="sale batch"),
            y=alt.Y("mape:Q", title="MAPE", axis=alt.Axis(format="%")),
            color=alt.Color("version:N", title="model"),
            tooltip=["batch_id", "version", alt.Tooltip("mape:Q", format=".1%"), alt.Tooltip("sales:Q", format=",")],
        )
    )
    chart = lines
    if models is not None:
        holdout = models[["model_version", "mape"]].dropna()
        holdout = holdout[holdout["model_version"].astype(str).isin(overall["model_version"].astype(str))]
        holdout = holdout.assign(version="v" + holdout["model_version"].astype(int).astype(str))
        chart = lines + alt.Chart(holdout).mark_rule(strokeDash=[4, 4]).encode(
            y="mape:Q",
            color="version:N",
            tooltip=["version", alt.Tooltip("mape:Q", format=".1%", title="holdout MAPE")],
        )
    st.altair_chart(chart.properties(height=260), key="live_mape")
    st.caption("Lines: live MAPE on each batch's matched sales. Dashed: the model's holdout MAPE at training.")


def within(name: str, value: float | None) -> str:
    if value is None or pd.isna(value):
        return "-"
    low, high = STANDARDS[name]
    return "yes" if low <= value <= high else "no"


def study_rows(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    rows = []
    for key, part in frame.groupby(by, sort=True):
        if "state" in by and len(part) < MIN_SALES_PER_STATE:
            continue
        figures = live_errors(part["predicted_price"].to_numpy(), part["sold_price"].to_numpy())
        keys = dict(zip(by, key if isinstance(key, tuple) else (key,), strict=True))
        rows.append({**keys, **figures, **{f"{n} ok": within(n, figures[n]) for n in STANDARDS}})
    frame = pd.DataFrame(rows)
    if not frame.empty:  # dollars to the dollar, as everywhere in the viewer
        frame["mae"] = frame["mae"].map(ui.money)
    return frame


st.subheader("Ratio study (IAAO) over all matched sales")
ranges = ", ".join(f"{n.replace('_', ' ')} {low}-{high}" for n, (low, high) in STANDARDS.items())
st.caption(f"Ratio = predicted / sold. IAAO ranges for residential property: {ranges} (COD in percent).")
columns: dict[str, Any] = {
    "model_version": "model",
    "sales": st.column_config.NumberColumn("sales", format="localized"),
    "mae": "MAE",
    "median_ratio ok": "ratio in range",
    "cod ok": "COD in range",
    "prd ok": "PRD in range",
    "prb ok": "PRB in range",
    "mape": st.column_config.NumberColumn("MAPE", format="percent"),
    "median_ape": st.column_config.NumberColumn("median APE", format="percent"),
    "median_ratio": st.column_config.NumberColumn("median ratio", format="%.3f"),
    "cod": st.column_config.NumberColumn("COD", format="%.1f"),
    "prd": st.column_config.NumberColumn("PRD", format="%.3f"),
    "prb": st.column_config.NumberColumn("PRB", format="%+.3f"),
}
by_version = study_rows(outcomes, ["model_version"])
st.dataframe(by_version, hide_index=True, key="study_versions", column_config=columns)
by_state = study_rows(outcomes, ["model_version", "state"])
with st.expander(f"By state (states with at least {MIN_SALES_PER_STATE} matched sales)"):
    if by_state.empty:
        st.info(f"No state has {MIN_SALES_PER_STATE} matched sales for one model version yet.")
    else:
        st.dataframe(by_state, hide_index=True, key="study_states", column_config=columns)

st.subheader("Predicted against sold")
sample = outcomes.sample(min(len(outcomes), 3_000), random_state=0) if len(outcomes) else outcomes
sample = sample.assign(version="v" + sample["model_version"].astype(str))
low, high = float(outcomes[["sold_price", "predicted_price"]].min().min()), float(outcomes["sold_price"].max())
diagonal = pd.DataFrame({"sold_price": [low, high], "predicted_price": [low, high]})
st.altair_chart(
    (
        alt.Chart(sample)
        .mark_circle(opacity=0.35, size=14)
        .encode(
            x=alt.X("sold_price:Q", title="sold price", scale=alt.Scale(type="log"), axis=alt.Axis(format="$,.0s")),
            y=alt.Y("predicted_price:Q", title="predicted", scale=alt.Scale(type="log"), axis=alt.Axis(format="$,.0s")),
            color=alt.Color("version:N", title="model"),
            tooltip=["batch_id", "state", "version", alt.Tooltip("sold_price:Q", format="$,.0f"),
                     alt.Tooltip("predicted_price:Q", format="$,.0f")],
        )
        + alt.Chart(diagonal).mark_line(color="#888", strokeDash=[4, 4]).encode(x="sold_price:Q", y="predicted_price:Q")
    ).properties(height=380),
    key="predicted_vs_sold",
)  # fmt: skip
st.caption(f"A sample of {len(sample):,} of {len(outcomes):,} matched (sale, model) pairs; dashed: predicted = sold.")

st.subheader("Rollbacks")
if rollbacks.empty:
    st.info("No rollback: no champion has done clearly worse on real sales than it should.")
else:
    st.dataframe(
        rollbacks[["decided_at", "batch_id", "from_version", "to_version", "reason"]],
        hide_index=True,
        key="rollbacks",
        column_config={
            "decided_at": st.column_config.DatetimeColumn("when (UTC)", format="YYYY-MM-DD HH:mm"),
            "batch_id": "at batch",
            "from_version": "rolled back",
            "to_version": "restored",
            "reason": st.column_config.TextColumn("why", width="large"),
        },
    )
