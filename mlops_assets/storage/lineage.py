"""Lineage in the warehouse: a prediction back to what made it, and a batch forward to what it fed.

A prediction (`inference_log`) -> the model version that answered (`model_history`) -> its MLflow run
and its Dagster run -> the batches it was trained on (`clean_listings`) -> the drift report that
triggered its training (`drift_reports`) -> its verdict and the champion it replaced. And a batch ->
the models trained on it -> how many predictions each of them served.

A model trained for batch K was trained on the clean rows of its window, the batches F..K
(`model_history.from_batch`; NULL: every batch <= K), a listing seen in several of them once (its
latest copy, as `queries.clean_through` reads them), less the holdout (`core.splits.is_holdout`:
a bucket of the listing id's hash). The counts per batch are GROUP BYs in the database - the holdout
bucket is computed in SQL from the id's hex digits - so no listing row leaves it. Every function takes
an open connection (serving's engine or the dashboard's read-only one) and returns JSON-ready dicts;
`add_links` adds links into the Dagster and MLflow UIs.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from mlops_assets.core.links import (
    dagster_partition_url,
    dagster_run_url,
    mlflow_run_url,
    mlflow_version_url,
)
from mlops_assets.core.metrics import METRIC_NAMES
from mlops_assets.storage.warehouse import (
    batch_window,
    clean_listings,
    drift_reports,
    inference_log,
    model_history,
    raw_listings,
)

#: The training holdout's share (`TrainingResource.holdout_fraction`'s default; the pipeline does not change it).
HOLDOUT_FRACTION = 0.2
#: `core.splits.is_holdout`'s buckets.
BUCKETS = 10_000
#: A /predict or /explain request id (uuid4 hex), or a /batch_predict item's (`<hex>-<index>`).
REQUEST_ID = re.compile(r"[0-9a-f]{32}(-[0-9]{1,6})?")
#: A warehouse batch id: a partition key (`00001`) or serving's `inference-YYYYMMDD`.
BATCH_ID = re.compile(r"[0-9A-Za-z][0-9A-Za-z_.-]{0,31}")

_HEX = "0123456789abcdef"
_PREDICTION_COLUMNS = ("request_id", "created_at", "endpoint", "model_name", "model_version", "price", "latency_ms",
                       "state", "status", "bed", "bath", "acre_lot", "house_size", "inputs", "warnings")  # fmt: skip
_DRIFT_COLUMNS = ("report_id", "batch_id", "created_at", "reference_model_version", "rows_reference", "rows_current",
                  "drift_detected", "share_drifted", "drifted_columns", "decision", "why", "report_uri",
                  "dagster_run_id")  # fmt: skip


def _iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC (SQLite hands back naive datetimes; they were written in UTC)."""
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()


def _plain(row: sa.RowMapping, columns: tuple[str, ...]) -> dict[str, Any]:
    return {name: _iso(row[name]) if isinstance(row[name], datetime) else row[name] for name in columns}


def _tables(connection: Connection) -> set[str]:
    """The warehouse tables present: serving's own database may hold the inference log and nothing else."""
    return set(sa.inspect(connection).get_table_names())


def holdout_bucket(listing_id: sa.ColumnElement, dialect: str) -> sa.ColumnElement:
    """`core.splits.is_holdout`'s bucket in SQL: the id's last 8 hex digits as a number, modulo 10,000.

    Listing ids are 16 lowercase hex digits (`core.cleaning.listing_ids`); each digit's value is its
    position in "0123456789abcdef" less one (`instr` on SQLite and MySQL, `strpos` on PostgreSQL)."""
    find = sa.func.instr if dialect in ("sqlite", "mysql", "mariadb") else sa.func.strpos
    digits = [
        sa.cast(find(sa.literal(_HEX), sa.func.substr(listing_id, position, 1)) - 1, sa.BigInteger)
        for position in range(9, 17)
    ]
    value: sa.ColumnElement[int] = digits[0]
    for digit in digits[1:]:
        value = value * 16 + digit
    return value % BUCKETS


def _held_out(bucket: sa.ColumnElement, fraction: float) -> sa.ColumnElement:
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    return sa.case((bucket < round(fraction * BUCKETS), 1), else_=0)


def training_batches(
    connection: Connection,
    through_batch: str,
    holdout_fraction: float = HOLDOUT_FRACTION,
    from_batch: str | None = None,
) -> list[dict[str, Any]]:
    """What a model trained on batches `from_batch` (None: the first) to `through_batch` was trained on, batch
    by batch (oldest first): `clean_rows`
    (the batch's clean rows now), `training_rows` and `holdout_rows` (its latest copies of listings, by the
    holdout rule), `superseded_rows` (listings seen again in a later batch <= `through_batch`, counted there)
    and `loaded_at` (when the batch was cleaned)."""
    table = clean_listings
    upto = batch_window(table.c.batch_id, through_batch, from_batch)
    loaded = (
        sa.select(table.c.batch_id, sa.func.count().label("rows"), sa.func.max(table.c.cleaned_at).label("loaded_at"))
        .where(upto)
        .group_by(table.c.batch_id)
        .order_by(table.c.batch_id)
    )
    latest = (
        sa.select(table.c.listing_id, sa.func.max(table.c.batch_id).label("batch_id"))
        .where(upto)
        .group_by(table.c.listing_id)
        .subquery("latest")
    )
    held_out = _held_out(holdout_bucket(latest.c.listing_id, connection.dialect.name), holdout_fraction)
    per_batch = [latest.c.batch_id, sa.func.count().label("kept"), sa.func.sum(held_out).label("holdout")]
    kept = sa.select(*per_batch).group_by(latest.c.batch_id)
    counts = {row.batch_id: (int(row.kept), int(row.holdout or 0)) for row in connection.execute(kept)}
    batches = []
    for row in connection.execute(loaded):
        kept_rows, holdout_rows = counts.get(row.batch_id, (0, 0))
        batches.append(
            {
                "batch_id": row.batch_id,
                "loaded_at": _iso(row.loaded_at),
                "clean_rows": int(row.rows),
                "training_rows": kept_rows - holdout_rows,
                "holdout_rows": holdout_rows,
                "superseded_rows": int(row.rows) - kept_rows,
            }
        )
    return batches


def batch_rows_by_next_sighting(
    connection: Connection, batch_id: str, holdout_fraction: float = HOLDOUT_FRACTION
) -> list[tuple[str | None, int, int]]:
    """The clean rows of `batch_id` grouped by the next batch that has the same listing again (None: none
    has): `(next_batch, rows, holdout_rows)`. A model trained for batch K >= `batch_id` used the rows whose
    next sighting is None or after K (a later copy within K replaces them: see `queries.clean_through`)."""
    table, later = clean_listings, clean_listings.alias("later")
    next_batch = (
        sa.select(sa.func.min(later.c.batch_id))
        .where(later.c.listing_id == table.c.listing_id, later.c.batch_id > table.c.batch_id)
        .scalar_subquery()
    )
    rows = (
        sa.select(next_batch.label("next_batch"), table.c.listing_id)
        .where(table.c.batch_id == batch_id)
        .subquery("rows")
    )
    held_out = _held_out(holdout_bucket(rows.c.listing_id, connection.dialect.name), holdout_fraction)
    query = sa.select(rows.c.next_batch, sa.func.count(), sa.func.sum(held_out)).group_by(rows.c.next_batch)
    return [(next_seen, int(n), int(held or 0)) for next_seen, n, held in connection.execute(query)]


def prediction_lineage(
    connection: Connection, request_id: str, holdout_fraction: float = HOLDOUT_FRACTION
) -> dict[str, Any] | None:
    """Where a logged prediction comes from, as far as the warehouse knows; None for an unknown request id.

    `prediction` (the inference log's row), `model` (its model_history row: runs, training batch, rows,
    metrics, trigger and why), `training_batches` (see `training_batches`) with `training_totals` against
    what the model recorded, `drift_report` (the one behind its training, with its why), `verdict` (the
    gate's, and `replaced_version`: the champion it took over from), and `problems`: what could not be traced."""
    tables = _tables(connection)
    if inference_log.name not in tables:
        return None
    found = (
        connection.execute(
            sa.select(*(inference_log.c[name] for name in _PREDICTION_COLUMNS)).where(
                inference_log.c.request_id == request_id
            )
        )
        .mappings()
        .first()
    )
    if found is None:
        return None
    prediction = _plain(found, _PREDICTION_COLUMNS)
    answer: dict[str, Any] = {
        "request_id": request_id,
        "prediction": prediction,
        "model": None,
        "training_batches": [],
        "training_totals": None,
        "drift_report": None,
        "verdict": None,
        "problems": [],
    }
    problems: list[str] = answer["problems"]
    name, version = prediction["model_name"], str(prediction["model_version"])
    if not version.isdigit():
        problems.append(f"model version {version!r} is not a registry version number")
        return answer
    if model_history.name not in tables:
        problems.append("this warehouse has no model history: the pipeline recorded no model here")
        return answer
    model = (
        connection.execute(
            sa.select(model_history).where(
                model_history.c.model_name == name, model_history.c.model_version == int(version)
            )
        )
        .mappings()
        .first()
    )
    if model is None:
        problems.append(f"{name} v{version} has no model history row: it was not trained by this platform's pipeline")
        return answer
    answer["model"] = {
        "model_name": model["model_name"],
        "model_version": int(model["model_version"]),
        "mlflow_run_id": model["mlflow_run_id"],
        "dagster_run_id": model["dagster_run_id"],
        "from_batch": model["from_batch"],
        "through_batch": model["batch_id"],
        "trained_at": _iso(model["trained_at"]),
        "training_rows": model["training_rows"],
        "holdout_rows": model["holdout_rows"],
        "holdout_digest": model["holdout_digest"],
        "metrics": {metric: model[metric] for metric in METRIC_NAMES},
        "trigger": model["trigger"],
        "why": model["why"],
        "drift_report_id": model["drift_report_id"],
    }
    promoted = model["verdict"] == "promoted"
    answer["verdict"] = {
        "verdict": model["verdict"],
        "reason": model["reason"],
        "decided_at": _iso(model["decided_at"]),
        "gate_mode": model["gate_mode"],
        "champion_version": model["champion_version"],
        "replaced_version": model["champion_version"] if promoted else None,
        "manual_by": model["manual_by"],
        "manual_reason": model["manual_reason"],
    }
    if clean_listings.name in tables:
        batches = training_batches(connection, model["batch_id"], holdout_fraction, model["from_batch"])
        answer["training_batches"] = batches
        totals = {
            "training_rows": sum(b["training_rows"] for b in batches),
            "holdout_rows": sum(b["holdout_rows"] for b in batches),
            "recorded_training_rows": model["training_rows"],
            "recorded_holdout_rows": model["holdout_rows"],
        }
        totals["matches_record"] = (totals["training_rows"], totals["holdout_rows"]) == (
            model["training_rows"],
            model["holdout_rows"],
        )
        answer["training_totals"] = totals
        if not totals["matches_record"]:
            problems.append(
                f"the clean rows of batches {model['from_batch'] or 'from the first'} to {model['batch_id']} now "
                f"give {totals['training_rows']:,} training and "
                f"{totals['holdout_rows']:,} holdout rows, where v{version} recorded {model['training_rows']:,} and "
                f"{model['holdout_rows']:,}: a batch was loaded again after it was trained"
            )
    else:
        problems.append("this warehouse has no clean listings: the training batches cannot be counted")
    report_id = model["drift_report_id"]
    if not report_id:
        problems.append(f"v{version} records no drift report (trained before any batch was judged)")
    elif drift_reports.name in tables:
        report = (
            connection.execute(
                sa.select(*(drift_reports.c[c] for c in _DRIFT_COLUMNS)).where(drift_reports.c.report_id == report_id)
            )
            .mappings()
            .first()
        )
        if report is None:
            problems.append(f"drift report {report_id} is recorded with v{version} but is not in the warehouse")
        else:
            answer["drift_report"] = _plain(report, _DRIFT_COLUMNS)
    return answer


def batch_lineage(
    connection: Connection, batch_id: str, model_name: str, holdout_fraction: float = HOLDOUT_FRACTION
) -> dict[str, Any] | None:
    """What a batch fed, as far as the warehouse knows; None for a batch it has never seen.

    `batch` (raw and clean rows, when it was cleaned), `drift_reports` (its judgements), `models` (every
    `model_name` version trained on it - trained for this batch or a later one - with the batch's rows
    in its training and the predictions it served) and `totals`."""
    tables = _tables(connection)
    raw_rows = clean_rows = 0
    loaded_at = None
    if raw_listings.name in tables:
        raw_rows = connection.execute(
            sa.select(sa.func.count()).select_from(raw_listings).where(raw_listings.c.batch_id == batch_id)
        ).scalar_one()
    if clean_listings.name in tables:
        clean_rows, loaded_at = connection.execute(
            sa.select(sa.func.count(), sa.func.max(clean_listings.c.cleaned_at)).where(
                clean_listings.c.batch_id == batch_id
            )
        ).one()
    reports = []
    if drift_reports.name in tables:
        query = (
            sa.select(*(drift_reports.c[c] for c in _DRIFT_COLUMNS))
            .where(drift_reports.c.batch_id == batch_id)
            .order_by(drift_reports.c.created_at)
        )
        reports = [_plain(row, _DRIFT_COLUMNS) for row in connection.execute(query).mappings()]
    if not (raw_rows or clean_rows or reports):
        return None
    models: list[dict[str, Any]] = []
    if clean_rows and model_history.name in tables:
        query = (
            sa.select(model_history)
            .where(
                model_history.c.model_name == model_name,
                model_history.c.batch_id >= batch_id,
                sa.or_(model_history.c.from_batch.is_(None), model_history.c.from_batch <= batch_id),
            )
            .order_by(model_history.c.model_version)
        )
        trained = list(connection.execute(query).mappings())
        sightings = batch_rows_by_next_sighting(connection, batch_id, holdout_fraction) if trained else []
        served: dict[str, tuple[int, Any, Any]] = {}
        if trained and inference_log.name in tables:
            log = inference_log
            counts = (
                sa.select(log.c.model_version, sa.func.count(), sa.func.min(log.c.created_at),
                          sa.func.max(log.c.created_at))
                .where(log.c.model_name == model_name,
                       log.c.model_version.in_([str(row["model_version"]) for row in trained]))
                .group_by(log.c.model_version)
            )  # fmt: skip
            served = {version: (int(n), first, last) for version, n, first, last in connection.execute(counts)}
        for row in trained:
            through = row["batch_id"]
            used = [(n, held) for next_seen, n, held in sightings if next_seen is None or next_seen > through]
            predictions, first, last = served.get(str(row["model_version"]), (0, None, None))
            models.append(
                {
                    "model_name": row["model_name"],
                    "model_version": int(row["model_version"]),
                    "from_batch": row["from_batch"],
                    "through_batch": through,
                    "trained_at": _iso(row["trained_at"]),
                    "mlflow_run_id": row["mlflow_run_id"],
                    "dagster_run_id": row["dagster_run_id"],
                    "verdict": row["verdict"],
                    "training_rows": row["training_rows"],
                    "training_rows_from_batch": sum(n - held for n, held in used),
                    "holdout_rows_from_batch": sum(held for _, held in used),
                    "predictions": predictions,
                    "first_prediction_at": _iso(first),
                    "last_prediction_at": _iso(last),
                }
            )
    return {
        "batch_id": batch_id,
        "batch": {"raw_rows": int(raw_rows), "clean_rows": int(clean_rows), "loaded_at": _iso(loaded_at)},
        "drift_reports": reports,
        "models": models,
        "totals": {"models": len(models), "predictions": sum(m["predictions"] for m in models)},
    }


def add_links(lineage: dict[str, Any], dagster_url: str | None, mlflow_url: str | None) -> dict[str, Any]:
    """A copy of a `prediction_lineage` or `batch_lineage` answer whose parts carry `links` into the UIs
    whose base URLs are given (MLOPS_DAGSTER_URL, MLOPS_MLFLOW_URL); a UI without a URL gets no link."""
    out = copy.deepcopy(lineage)
    dagster = (dagster_url or "").rstrip("/") or None
    mlflow = (mlflow_url or "").rstrip("/") or None

    def model_links(model: dict[str, Any]) -> dict[str, str]:
        links = {}
        if mlflow:
            links["mlflow_run"] = mlflow_run_url(mlflow, model["mlflow_run_id"])
            links["mlflow_model_version"] = mlflow_version_url(mlflow, model["model_name"], model["model_version"])
        if dagster:
            if model.get("dagster_run_id"):
                links["dagster_run"] = dagster_run_url(dagster, model["dagster_run_id"])
            links["dagster_partition"] = dagster_partition_url(dagster, "candidate_model", model["through_batch"])
        return links

    def batch_links(batch_id: str) -> dict[str, str]:
        return {"dagster_partition": dagster_partition_url(dagster, "clean_listings", batch_id)} if dagster else {}

    def report_links(report: dict[str, Any]) -> dict[str, str]:
        if not dagster:
            return {}
        links = {"dagster_partition": dagster_partition_url(dagster, "drift_report", report["batch_id"])}
        if report.get("dagster_run_id"):
            links["dagster_run"] = dagster_run_url(dagster, report["dagster_run_id"])
        return links

    if "prediction" in out:
        if out.get("model"):
            out["model"]["links"] = model_links(out["model"])
        for batch in out.get("training_batches") or []:
            batch["links"] = batch_links(batch["batch_id"])
        if out.get("drift_report"):
            out["drift_report"]["links"] = report_links(out["drift_report"])
        verdict, model = out.get("verdict"), out.get("model")
        if verdict and model:
            replaced = verdict.get("replaced_version")
            verdict["links"] = (
                {"mlflow_replaced_version": mlflow_version_url(mlflow, model["model_name"], replaced)}
                if mlflow and replaced is not None
                else {}
            )
    else:
        out["batch"]["links"] = batch_links(out["batch_id"])
        for report in out.get("drift_reports") or []:
            report["links"] = report_links(report)
        for model in out.get("models") or []:
            model["links"] = model_links(model)
    return out
