"""Model diffs on the dashboard: the one the pipeline stored for a pair, else one computed on demand,
and one way to show either (the "Compare models" page shows all of it, "Model history" a summary).

A stored diff comes from the warehouse's `model_diffs` (champion_model writes one for every candidate
against the champion it was judged against). Any other pair is computed here with the pipeline's
own code (`mlops_assets.ml.model_diff`): both versions loaded from the MLflow registry, scored on
the holdout rows of the newer one's training window (clean_listings of its batches, then the
listing-id hash split, as champion_model does). That needs MLflow and XGBoost, which the slim
dashboard image leaves out: there, only stored diffs are shown, and the page says so.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import altair as alt
import pandas as pd
import streamlit as st

from dashboard import charts, ui
from dashboard.history import HistoryError, NoHistoryError
from mlops_assets.core.model_diff import MOVER_INPUTS, SEGMENTS, change_text, input_text, overall_rows, to_markdown
from mlops_assets.core.promotion import label
from mlops_assets.core.splits import digest, is_holdout
from mlops_assets.storage import queries

logger = logging.getLogger("dashboard")

HOLDOUT_FRACTION = 0.2
"""The pipeline's default holdout share (TrainingResource.holdout_fraction); checked by the holdout digest."""


class DiffUnavailableError(Exception):
    """A diff cannot be computed here; `str()` is the message for the page."""


def parsed(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def stored(url: str, model_name: str, new_version: int, old_version: int) -> dict | None:
    """The diff the pipeline stored for (new, old), or None. Raises HistoryError when the warehouse cannot be read."""
    try:
        rows = ui.stored_diffs(url, model_name)
    except NoHistoryError:  # no diff stored yet (or a warehouse from before diffs were recorded)
        return None
    match = rows[(rows["new_version"] == int(new_version)) & (rows["old_version"] == int(old_version))]
    if match.empty:
        return None
    row = match.iloc[-1]
    return {**parsed(row["diff"]), "stored_at": row["created_at"], "source": "stored"}


@st.cache_data(ttl=300, show_spinner=False)
def _holdout(url: str, batch_id: str, from_batch: str | None, fraction: float) -> pd.DataFrame:
    rows = queries.clean_through(ui.history(url), batch_id, since=from_batch)
    return rows[is_holdout(rows["listing_id"], fraction)].reset_index(drop=True)


@st.cache_data(ttl=600, show_spinner=False)
def _computed(
    tracking_uri: str,
    url: str,
    model_name: str,
    new_version: int,
    old_version: int,
    batch_id: str,
    from_batch: str | None,
    drift_id: str,
) -> dict:
    try:
        from mlops_assets.ml.model_diff import diff_models
        from mlops_assets.ml.registry import ModelRegistry
    except ImportError as error:
        raise DiffUnavailableError(
            f"This dashboard cannot compute a diff ({error.name} is not installed here): only the diffs the "
            "pipeline stored (each candidate against the champion it was judged against) can be shown."
        ) from None
    holdout = _holdout(url, batch_id, from_batch, HOLDOUT_FRACTION)
    if holdout.empty:
        raise DiffUnavailableError(f"No holdout rows in batches {from_batch or '00001'}..{batch_id} in the warehouse.")
    drift = None
    if drift_id:
        reports = ui.drift_history(url)
        match = reports[reports["report_id"] == drift_id]
        drift = match.iloc[-1].to_dict() if not match.empty else None
    registry = ModelRegistry(tracking_uri, model_name)
    try:
        new, old = registry.load(str(new_version)), registry.load(str(old_version))
    except Exception as error:  # MLflow raises many kinds (missing version, store down, another feature set)
        reason = str(error).splitlines()[0][:300] if str(error) else type(error).__name__
        raise DiffUnavailableError(f"The models cannot be loaded from MLflow ({tracking_uri}): {reason}") from None
    diff = diff_models(new, old, holdout, drift)
    return {**diff, "source": "computed", "holdout_digest": digest(holdout["listing_id"])}


def compute(models: pd.DataFrame, new_version: int, old_version: int) -> dict:
    """The diff of two versions computed now, on the holdout rows of the newer one's batch.

    Raises DiffUnavailableError (or HistoryError) with the message for the page."""
    cfg = ui.config()
    by_version = models.set_index("model_version")
    newer = by_version.loc[max(int(new_version), int(old_version))]
    subject = by_version.loc[int(new_version)]
    diff = _computed(
        cfg.settings.mlflow_tracking_uri,
        cfg.settings.database_url,
        cfg.settings.model_name,
        int(new_version),
        int(old_version),
        str(newer["batch_id"]),
        str(newer["from_batch"]) if pd.notna(newer.get("from_batch")) else None,
        str(subject["drift_report_id"]) if pd.notna(subject.get("drift_report_id")) else "",
    )
    diff = dict(diff)
    diff["holdout_matches"] = diff["holdout_digest"] == newer["holdout_digest"]
    diff["holdout_of"] = int(newer.name)
    return diff


# --- showing a diff -------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:+.1%}"


def _share(value: float | None) -> str:
    return "-" if value is None or pd.isna(value) else f"{value:.0%}"


def overall_table(diff: dict) -> pd.DataFrame:
    new, old = diff["new_version"], diff["old_version"]
    return pd.DataFrame(overall_rows(diff), columns=["metric", f"v{old}", f"v{new}", "change"])


def importance_table(diff: dict) -> pd.DataFrame:
    """feature, v{new}, v{old}, change (mean |SHAP| on the same rows, log-price units)."""
    new, old = diff["new_version"], diff["old_version"]
    features = diff["importance"]["features"]
    return pd.DataFrame(
        {
            "feature": [e["feature"] for e in features],
            f"v{new}": [e["new"] for e in features],
            f"v{old}": [e["old"] for e in features],
            "change": [e["change"] for e in features],
        }
    )


def show_importance(diff: dict, key: str) -> None:
    table = importance_table(diff)
    if table.empty:
        st.info(diff["importance"].get("note", "No mean |SHAP| recorded for these models."))
        return
    new, old = f"v{diff['new_version']}", f"v{diff['old_version']}"
    long = pd.concat([table.assign(model=new, importance=table[new]), table.assign(model=old, importance=table[old])])[
        ["feature", "model", "importance"]
    ]
    chart_col, table_col = st.columns([3, 2])
    chart_col.altair_chart(charts.importance_comparison(long), key=f"{key}_importance_chart")
    table_col.dataframe(
        table,
        hide_index=True,
        key=f"{key}_importance",
        column_config={"change": st.column_config.NumberColumn("change", format="%+.4f")},
    )
    st.caption("Changed most: " + ", ".join(diff["importance"]["most_changed"]))


def _source_caption(diff: dict) -> str:
    rows = f"both on the same {diff['rows']:,} holdout rows"
    if diff.get("source") == "stored":
        when = pd.Timestamp(diff["stored_at"]).strftime("%Y-%m-%d %H:%M") if diff.get("stored_at") else "?"
        pair = f"v{diff['new_version']} was judged against v{diff['old_version']}"
        return f"Stored by the pipeline when {pair} ({when} UTC); {rows}."
    return (
        f"Computed now (no stored diff for this pair), {rows} of v{diff.get('holdout_of')}'s batch; "
        f"mean |SHAP| on the first {diff.get('shap_rows', 0):,} of them."
    )


def show_summary(diff: dict, key: str) -> None:
    """The headline, what each model relies on, the value changes: for the Model history page."""
    st.markdown(f"**{diff['headline']}**")
    st.caption(_source_caption(diff))
    changes = diff["value_changes"]
    moved = ", ".join(f"{_share(s)} more than {k}" for k, s in changes["share_moved"].items())
    st.markdown(f"Per-property value change (new - old) / old: median {_pct(changes['median'])}; moved {moved}.")
    st.markdown(
        f"What v{diff['new_version']} relies on, against v{diff['old_version']}: mean |SHAP| per feature on the "
        "same rows (log-price units; 0.1 moves a price by about 10%)."
    )
    show_importance(diff, key)


def _segment_frame(diff: dict, name: str) -> pd.DataFrame:
    m, new, old = diff["metric"], diff["new_version"], diff["old_version"]
    return pd.DataFrame(
        [
            {
                "segment": e["segment"],
                "rows": e["rows"],
                f"{label(m)} v{old}": e["old"][m],
                f"{label(m)} v{new}": e["new"][m],
                "change": change_text(m, e["old"][m], e["new"][m]),
                "median APE change": change_text("median_ape", e["old"]["median_ape"], e["new"]["median_ape"]),
                "median value change": _pct(e["median_value_change"]),
                "moved > 10%": e["share_moved"],
            }
            for e in diff["segments"][name]
        ]
    )


def _movers_frame(diff: dict) -> pd.DataFrame:
    movers = diff["value_changes"]["largest_movers"]
    new, old = diff["new_version"], diff["old_version"]
    inputs = [c for c in MOVER_INPUTS if movers and c in movers[0]]
    return pd.DataFrame(
        [
            {
                **{c: input_text(c, e[c]) for c in inputs},
                "price": ui.money(e["price"]),
                f"v{old}": ui.money(e["old_prediction"]),
                f"v{new}": ui.money(e["new_prediction"]),
                "change": _pct(e["change"]),
            }
            for e in movers
        ]
    )


def _histogram(diff: dict) -> alt.Chart:
    bins = pd.DataFrame(diff["value_changes"]["histogram"])
    bins["order"] = range(len(bins))
    return (
        alt.Chart(bins)
        .mark_bar(color=charts.TOTAL)
        .encode(
            x=alt.X(
                "bin:N", sort=alt.EncodingSortField("order"), title="(new - old) / old", axis=alt.Axis(labelAngle=0)
            ),
            y=alt.Y("share:Q", title="share of properties", axis=alt.Axis(format="%")),
            tooltip=["bin", "count", alt.Tooltip("share:Q", format=".1%")],
        )
    )


def show(diff: dict, key: str) -> None:
    """The whole diff: metrics, segments, value changes and movers, importance, the drift before it."""
    new, old = diff["new_version"], diff["old_version"]
    st.markdown(f"### {diff['headline']}")
    st.caption(_source_caption(diff))
    if diff.get("source") == "computed" and not diff.get("holdout_matches", True):
        st.warning(
            f"These holdout rows differ from those v{diff['holdout_of']} was scored on (a batch was re-loaded since, "
            "or the pipeline uses another holdout share): the figures are not its recorded ones."
        )
    st.dataframe(overall_table(diff), hide_index=True, key=f"{key}_overall")

    st.subheader("Value changes per property")
    changes = diff["value_changes"]
    columns = st.columns(len(changes["share_moved"]) + 1)
    columns[0].metric("Median change", _pct(changes["median"]))
    for column, (threshold, share) in zip(columns[1:], changes["share_moved"].items(), strict=True):
        column.metric(f"Moved more than {threshold}", _share(share))
    st.altair_chart(_histogram(diff), key=f"{key}_histogram")
    if changes["moved_by_state"]:
        st.caption(
            "Properties that moved more than 10%, by state: "
            + ", ".join(
                f"{e['state']} {e['count']:,} ({_share(e['share_of_state'])} of its rows)"
                for e in changes["moved_by_state"][:8]
            )
        )
    st.markdown("**Largest movers** (with their inputs)")
    st.dataframe(_movers_frame(diff), hide_index=True, key=f"{key}_movers")

    st.subheader("By segment")
    m = diff["metric"]
    tabs = st.tabs([f"By {title}" for title in SEGMENTS.values()])
    for tab, name in zip(tabs, SEGMENTS, strict=True):
        tab.dataframe(
            _segment_frame(diff, name),
            hide_index=True,
            key=f"{key}_segments_{name}",
            column_config={
                f"{label(m)} v{old}": st.column_config.NumberColumn(format="%.3f"),
                f"{label(m)} v{new}": st.column_config.NumberColumn(format="%.3f"),
                "moved > 10%": st.column_config.NumberColumn(format="percent"),
            },
        )

    st.subheader("What the models rely on")
    show_importance(diff, key)

    st.subheader("The data change before it")
    drift = diff.get("drift")
    if not drift:
        st.info(f"No drift report is recorded for v{new} (a forced retrain, or trained before reports).")
    else:
        drifted = ", ".join(drift["drifted_columns"]) or "none"
        st.markdown(
            f"Drift report `{drift['report_id']}` (batch {drift['batch_id']}): {drift['decision']}. "
            f"Drifted columns: {drifted}. {drift['why']}"
        )
        scores = drift.get("column_scores") or {}
        if scores:
            st.dataframe(
                pd.DataFrame([{"column": c, **v} for c, v in scores.items()]),
                hide_index=True,
                key=f"{key}_drift_scores",
                column_config={"score": st.column_config.NumberColumn("score", format="%.3f")},
            )

    left, right = st.columns(2)
    plain = {k: v for k, v in diff.items() if k not in ("stored_at", "source", "holdout_matches", "holdout_of")}
    left.download_button(
        "Download the diff (JSON)",
        json.dumps(plain, indent=2, default=str),
        file_name=f"v{new}-vs-v{old}.json",
        mime="application/json",
        key=f"{key}_json",
    )
    right.download_button(
        "Download the diff (markdown)", to_markdown(plain), file_name=f"v{new}-vs-v{old}.md", key=f"{key}_md"
    )


def show_problem(error: Exception, new_version: int, old_version: int) -> None:
    """Why a diff cannot be shown: the message, never a traceback."""
    if isinstance(error, HistoryError):
        ui.show_problem(error)
    elif isinstance(error, DiffUnavailableError) and "cannot compute" in str(error):
        st.info(str(error))
    elif isinstance(error, DiffUnavailableError):
        st.error(str(error))
    else:
        logger.exception("dashboard: the diff of v%s against v%s failed", new_version, old_version)
        st.error(
            f"The diff of v{new_version} against v{old_version} could not be computed ({type(error).__name__}: "
            f"{str(error)[:200]}); the details are in the dashboard's log."
        )
