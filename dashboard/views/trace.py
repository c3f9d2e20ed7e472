"""Trace a prediction: the request -> the model version that answered -> its MLflow and Dagster runs -> the
batches it was trained on -> the drift report that triggered its training -> its verdict and the model it
replaced. And the other way: a batch -> the models trained on it -> the predictions they served.

Everything comes from serving's lineage endpoints (with the read token); the links go to the Dagster and
MLflow UIs of this dashboard's configuration (MLOPS_DAGSTER_URL, MLOPS_MLFLOW_URL)."""

from __future__ import annotations

import contextlib
from typing import Any

import pandas as pd
import streamlit as st

from dashboard import ui
from dashboard.client import ServingClient, ServingError
from dashboard.history import HistoryError
from mlops_assets.storage.lineage import add_links

READ_ACCESS = "Tracing needs serving's read token: set MLOPS_READ_TOKEN for the dashboard."
MODEL_LINKS = {"mlflow_run": "MLflow run", "mlflow_model_version": "MLflow model version",
               "dagster_run": "Dagster run", "dagster_partition": "Dagster: candidate_model partition"}  # fmt: skip
REPORT_LINKS = {"dagster_partition": "Dagster: drift_report partition", "dagster_run": "Dagster run (drift report)"}


def _window(model: dict) -> str:
    """The batches a model was trained on, in words (`from_batch` None: rows from before windows existed)."""
    start = model.get("from_batch")
    return f"batches {start} to {model['through_batch']}" if start else f"every batch up to {model['through_batch']}"


def when(iso: str | None) -> str:
    return "-" if not iso else pd.Timestamp(iso).tz_convert("UTC").strftime("%Y-%m-%d %H:%M:%S UTC")


def number(value: Any, pattern: str = "{:g}") -> str:
    return "-" if value is None or pd.isna(value) else pattern.format(value)


def problem(error: ServingError) -> None:
    if error.status in (401, 403):  # the lineage shows other clients' requests: it takes a token
        st.info(f"{READ_ACCESS} ({error})")
    elif error.status in (404, 422):
        st.warning(str(error))
    else:
        ui.show_problem(error)


def link_buttons(links: dict[str, str], labels: dict[str, str], key: str) -> None:
    shown = [(name, labels[name], links[name]) for name in labels if links.get(name)]
    for column, (name, label, url) in zip(st.columns(max(len(shown), 1)), shown, strict=False):
        column.link_button(label, url, key=f"{key}_{name}")


def pick_request(client: ServingClient) -> str | None:
    """The request id to trace: one typed in, else one picked from the most recent (the session's own first)."""
    try:
        recent = client.predictions(limit=20)["predictions"]
    except ServingError as error:
        problem(error)
        st.stop()
        raise  # unreachable: st.stop() ends the run
    labels = {
        p["request_id"]: f"{when(p['created_at'])} · v{p['model_version']} · {ui.money(p['price'])} · "
        f"{p.get('state') or '-'} · {p['request_id'][:8]}"
        for p in recent
    }
    own = (st.session_state.get("prediction") or {}).get("request_id")
    if own and own not in labels:
        labels = {own: f"your last prediction · {own[:8]}", **labels}
    ids = list(labels)
    pick_col, enter_col = st.columns(2)
    picked = None
    if ids:
        default = ids.index(own) if own in ids else 0
        picked = pick_col.selectbox(
            "A recent prediction", ids, index=default, format_func=lambda i: labels.get(i, i), key="trace_pick"
        )
    entered = enter_col.text_input(
        "Or a request id", key="trace_request_id", max_chars=80, placeholder="as /predict answers it"
    )
    return entered.strip() or picked


def show_trace(trace: dict[str, Any]) -> None:
    p, model = trace["prediction"], trace["model"]
    st.subheader("1. The request")
    st.markdown(
        f"Request `{trace['request_id']}` at {when(p['created_at'])}: `{p['endpoint']}` priced "
        f"**{ui.money(p['price'])}** for {number(p['bed'])} bed, {number(p['bath'])} bath, "
        f"{number(p['house_size'], '{:,.0f}')} sq ft on {number(p['acre_lot'])} acres in {p['state'] or '-'}, "
        f"answered by **{p['model_name']} v{p['model_version']}**."
    )
    st.subheader("2. The model that answered")
    if model is None:
        for line in trace["problems"]:
            st.warning(line)
        return
    metrics = model["metrics"]
    st.markdown(
        f"**{model['model_name']} v{model['model_version']}**, trained {when(model['trained_at'])} for batch "
        f"**{model['through_batch']}**: {model['training_rows']:,} training rows, {model['holdout_rows']:,} "
        f"holdout rows; R2 (log) {number(metrics.get('r2_log'), '{:.3f}')}, median APE "
        f"{number(metrics.get('median_ape'), '{:.1%}')} on its holdout."
    )
    st.markdown(f"MLflow run `{model['mlflow_run_id']}` · Dagster run `{model['dagster_run_id'] or '-'}`")
    link_buttons(model["links"], MODEL_LINKS, "trace_model")

    st.subheader("3. The data it was trained on")
    st.caption(
        f"A model trained for batch {model['through_batch']} learns from the clean rows of its training window, "
        f"{_window(model)} (a listing seen in several batches once, in its latest), less the holdout (the same "
        "listings for every model)."
    )
    batches = pd.DataFrame(trace["training_batches"])
    if batches.empty:
        st.info("No clean rows of these batches are in the warehouse.")
    else:
        batches["dagster"] = [b.get("dagster_partition") for b in batches["links"]]
        batches["loaded_at"] = pd.to_datetime(batches["loaded_at"], utc=True)
        st.dataframe(
            batches[["batch_id", "loaded_at", "clean_rows", "training_rows", "holdout_rows", "superseded_rows",
                     "dagster"]],
            hide_index=True,
            key="trace_batches",
            column_config={
                "batch_id": "batch",
                "loaded_at": st.column_config.DatetimeColumn("loaded (UTC)", format="YYYY-MM-DD HH:mm"),
                "clean_rows": st.column_config.NumberColumn("clean rows", format="localized"),
                "training_rows": st.column_config.NumberColumn("training rows", format="localized"),
                "holdout_rows": st.column_config.NumberColumn("holdout rows", format="localized"),
                "superseded_rows": st.column_config.NumberColumn(
                    "seen again later", format="localized", help="listings counted in a later batch's copy"
                ),
                "dagster": st.column_config.LinkColumn("Dagster", display_text="partition"),
            },
        )  # fmt: skip
    totals = trace["training_totals"]
    if totals and totals["matches_record"]:
        st.caption(
            f"{totals['training_rows']:,} training and {totals['holdout_rows']:,} holdout rows in all: what "
            f"v{model['model_version']} recorded when it was trained."
        )

    st.subheader("4. The drift report that triggered its training")
    st.markdown(f"**Trigger:** {model['trigger'] or 'unknown'} · **why it was trained:** {model['why'] or '-'}")
    report = trace["drift_report"]
    if report:
        drifted = ", ".join(report["drifted_columns"] or []) or "none"
        against = report["reference_model_version"]
        st.markdown(
            f"Drift report `{report['report_id']}` (batch {report['batch_id']}, against "
            f"{'v' + str(against) if against and against != '0' else 'no champion'}, {when(report['created_at'])}): "
            f"**{report['decision']}**. Drifted columns: {drifted}. {report['why']}"
        )
        link_buttons(report["links"], REPORT_LINKS, "trace_report")
        st.page_link("views/drift.py", label="See the drift report", icon=":material/ssid_chart:")

    st.subheader("5. Its verdict")
    verdict = trace["verdict"]
    decided = f"**v{model['model_version']} was {verdict['verdict']}**: {verdict['reason'] or 'no reason recorded'}"
    outcome = verdict["verdict"]
    (st.success if outcome == "promoted" else st.error if outcome == "rejected" else st.info)(decided)
    if verdict["manual_by"]:
        st.markdown(f"Promoted by hand by **{verdict['manual_by']}**: {verdict['manual_reason']}")
    replaced, champion = verdict["replaced_version"], verdict["champion_version"]
    if outcome == "promoted":
        st.markdown(
            f"It replaced **v{replaced}** as the champion."
            if replaced is not None
            else "It replaced no champion: none was in place to judge it against."
        )
    elif champion is not None:
        st.markdown(f"**v{champion}** stayed the champion.")
    for line in trace["problems"]:
        st.warning(line)


def batch_section(client: ServingClient, trace: dict[str, Any] | None) -> None:
    st.subheader("A batch: the models trained on it and the predictions they served")
    cfg = ui.config()
    options = {b["batch_id"] for b in (trace or {}).get("training_batches") or []}
    with contextlib.suppress(HistoryError):  # the traced batches are enough without the drift history
        options |= set(ui.drift_history(cfg.settings.database_url)["batch_id"])
    if not options:
        st.info("No batch to show: the warehouse has no drift report yet.")
        return
    ordered = sorted(options)
    through = ((trace or {}).get("model") or {}).get("through_batch")
    default = ordered.index(through) if through in ordered else len(ordered) - 1
    batch_id = st.selectbox("Batch", ordered, index=default, key="trace_batch")
    try:
        answer = add_links(client.batch_lineage(batch_id), cfg.dagster_url, cfg.mlflow_url)
    except ServingError as error:
        problem(error)
        return
    batch, totals = answer["batch"], answer["totals"]
    rows_col, models_col, predictions_col = st.columns(3)
    rows_col.metric("Clean rows", f"{batch['clean_rows']:,}")
    models_col.metric("Models trained on it", f"{totals['models']:,}")
    predictions_col.metric("Predictions they served", f"{totals['predictions']:,}")
    decisions = "; ".join(f"{r['report_id']}: {r['decision']}" for r in answer["drift_reports"]) or "none"
    st.caption(f"Batch {batch_id}, loaded {when(batch['loaded_at'])}; drift reports: {decisions}.")
    link_buttons(batch["links"], {"dagster_partition": "Dagster: clean_listings partition"}, "trace_batch")
    models = pd.DataFrame(answer["models"])
    if models.empty:
        st.info(f"No model has been trained on batch {batch_id} yet.")
        return
    models["mlflow"] = [m.get("mlflow_run") for m in models["links"]]
    for column in ("trained_at", "last_prediction_at"):
        models[column] = pd.to_datetime(models[column], utc=True)
    st.dataframe(
        models[["model_version", "through_batch", "verdict", "trained_at", "training_rows_from_batch", "training_rows",
                "predictions", "last_prediction_at", "mlflow"]],
        hide_index=True,
        key="trace_batch_models",
        column_config={
            "model_version": "version",
            "through_batch": "trained for batch",
            "trained_at": st.column_config.DatetimeColumn("trained (UTC)", format="YYYY-MM-DD HH:mm"),
            "training_rows_from_batch": st.column_config.NumberColumn(
                "its rows from this batch", format="localized", help="training rows (the holdout left out)"
            ),
            "training_rows": st.column_config.NumberColumn("training rows in all", format="localized"),
            "predictions": st.column_config.NumberColumn("predictions served", format="localized"),
            "last_prediction_at": st.column_config.DatetimeColumn("last prediction (UTC)", format="YYYY-MM-DD HH:mm"),
            "mlflow": st.column_config.LinkColumn("MLflow", display_text="run"),
        },
    )  # fmt: skip


st.title("Trace a prediction")
cfg = ui.config()
client = ui.client()
request_id = pick_request(client)
trace = None
if request_id is None:
    st.info("No prediction logged yet: price a property on the Predict page, then trace it here.")
else:
    try:
        trace = add_links(client.lineage(request_id), cfg.dagster_url, cfg.mlflow_url)
    except ServingError as error:
        problem(error)
    else:
        show_trace(trace)
batch_section(client, trace)
