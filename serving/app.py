"""The service's GET routes and /reload, as a FastAPI app mounted on the BentoML service.

`@bentoml.api` routes are POST-only, so the read endpoints live here; each handler reaches the
worker's service instance through `bentoml.get_current_service()`. Database reads go through
SQLAlchemy Core (bound parameters only) and answer 503 when the database is away.
"""

from __future__ import annotations

import hmac
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import bentoml
import sqlalchemy as sa
from fastapi import FastAPI, Header, Query
from fastapi.responses import JSONResponse

from mlops_assets.core.features import FEATURE_NAMES
from mlops_assets.settings import Settings
from mlops_assets.storage import lineage
from mlops_assets.storage.warehouse import inference_log
from serving.predictor import canonical_state

# BentoML documents every route, these included, at / (Swagger UI) and /docs.json: no second, partial doc.
app = FastAPI(title="House price service: read endpoints", docs_url=None, redoc_url=None, openapi_url=None)

HISTORY_MAX = 1_000
HISTORY_COLUMNS = ("request_id", "created_at", "endpoint", "model_version", "price", "latency_ms", "state", "status",
                   "bed", "bath", "acre_lot", "house_size", "warnings")  # fmt: skip
REQUEST_ID_FORM = "32 hex digits as /predict answers it, followed by -<item> for a /batch_predict item"
UNKNOWN_REQUEST = "an id from another service, or one not logged yet (the log is written within seconds)"
BATCH_ID_FORM = "a partition key such as 00001: letters, digits, '-', '_' and '.', at most 32"


def _service():
    return bentoml.get_current_service()


def _error(status: int, message: str, detail: Any = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": message} if detail is None else {"error": message, "detail": detail}
    return JSONResponse(body, status_code=status, headers=headers)


def _no_model(service) -> JSONResponse:
    return _error(503, "no model loaded yet", service.holder.last_error)


def _iso_ms(ms: int | None) -> str | None:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat() if ms else None


@app.get("/health")
def health() -> dict[str, Any]:
    """Liveness and a summary of what this worker knows, without touching the database."""
    service = _service()
    champion = service.holder.current
    log = service.inference_log
    problems = []
    if champion is None:
        problems.append("no model loaded")
    if service.holder.last_error:
        problems.append(service.holder.last_error)
    if log is not None and log.database_ok is False:
        problems.append("inference log database unavailable")
    if log is not None and log.recently_dropped():
        problems.append(
            f"inference log rows are being dropped ({log.dropped:,} so far): see inference_log_dropped_total"
        )
    no_champion = service.holder.no_champion if champion is None else None
    return {
        "status": "no_champion" if no_champion else "degraded" if problems else "healthy",
        "model_loaded": champion is not None,
        "no_champion": no_champion,
        "explainer_loaded": champion is not None,
        "model_name": service.config.settings.model_name,
        "model_version": champion.version if champion else None,
        "model_alias": service.holder.alias,
        "problems": problems,
        "inference_log": None
        if log is None
        else {
            "database_ok": log.database_ok,
            "pending_rows": log.pending_rows,
            "dropped_rows": log.dropped,
            "written_rows": log.written,
            "last_rejection": log.last_rejection,
        },
        "all_workers_serve": service.all_workers_serve(),
        "worker_pid": os.getpid(),
        "uptime_seconds": round(time.time() - service.started_at, 1),
    }


@app.get("/model")
def model() -> Any:
    service = _service()
    champion = service.holder.current
    if champion is None:
        return _no_model(service)
    loaded = champion.model
    return {
        "model_name": loaded.name,
        "model_version": loaded.version,
        "model_alias": champion.alias,
        "run_id": loaded.run_id,
        "metrics": loaded.metrics,
        "trained_at": _iso_ms(loaded.created_at_ms),
        "loaded_at": datetime.fromtimestamp(champion.loaded_at, UTC).isoformat(),
        "feature_names": list(FEATURE_NAMES),
        "tags": {k: v for k, v in loaded.tags.items() if k in ("verdict", "verdict_reason", "batch_id", "trigger")},
        # over the sales matched to this version's earlier predictions (MAPE a fraction, COD in percent); null until
        # a sale of a property it priced has come in
        "live_quality": service.live_quality(loaded.version),
    }


@app.get("/states")
def states() -> Any:
    """The states the champion was trained on, with their mean training price (US dollars)."""
    service = _service()
    champion = service.holder.current
    if champion is None:
        return _no_model(service)
    fs = champion.model.feature_state
    return {
        "model_version": champion.version,
        "global_mean_price": fs.global_mean_price,
        "states": [
            {"state": name, "mean_price": fs.state_mean_price[name], "training_rows": fs.state_counts.get(name, 0)}
            for name in sorted(fs.state_mean_price)
        ],
    }


@app.get("/predictions/history")
def history(
    limit: Annotated[int, Query(ge=1, le=HISTORY_MAX, description=f"rows, 1-{HISTORY_MAX}")] = 50,
    state: Annotated[
        str | None, Query(max_length=64, pattern=r"^[^\x00-\x1f\x7f]*$", description="state name or postal code")
    ] = None,
    authorization: Annotated[str | None, Header()] = None,
) -> Any:
    """The most recent logged predictions of every client, newest first: what others asked is theirs, so it
    needs `Authorization: Bearer` with MLOPS_READ_TOKEN or MLOPS_ADMIN_TOKEN."""
    settings = _service().config.settings
    refused = _check_bearer(authorization, settings.read_token, settings.admin_token)
    if refused is not None:
        return refused
    table = inference_log
    columns = [table.c[name] for name in HISTORY_COLUMNS]
    query = sa.select(*columns).order_by(table.c.created_at.desc(), table.c.request_id).limit(limit)
    if state is not None:
        query = query.where(table.c.state == (canonical_state(state) or state.strip()))
    try:
        with _service().engine.connect() as connection:
            rows = [dict(row._mapping) for row in connection.execute(query)]
    except (sa.exc.SQLAlchemyError, ValueError) as error:  # ValueError: what a driver refuses before sending
        return _database_down(error)
    for row in rows:  # SQLite hands back naive datetimes; they were written in UTC
        created = row["created_at"]
        row["created_at"] = (created if created.tzinfo else created.replace(tzinfo=UTC)).isoformat()
    return {"count": len(rows), "limit": limit, "state": state, "predictions": rows}


def _lineage(
    authorization: str | None,
    key: str,
    valid: re.Pattern,
    malformed: tuple[str, str],
    lookup: Callable[[Any, Settings], dict | None],
    unknown: tuple[str, str],
) -> Any:
    """One lineage route: the read (or admin) token first - another client's request is theirs - then the
    id's form (422), the warehouse (503 when away), an unknown id (404), links when the UI URLs are set."""
    settings = _service().config.settings
    refused = _check_bearer(authorization, settings.read_token, settings.admin_token)
    if refused is not None:
        return refused
    if not valid.fullmatch(key):
        return _error(422, *malformed)
    try:
        with _service().engine.connect() as connection:
            found = lookup(connection, settings)
    except (sa.exc.SQLAlchemyError, ValueError) as error:
        return _database_down(error)
    if found is None:
        return _error(404, *unknown)
    return lineage.add_links(found, settings.dagster_url, settings.mlflow_url)


@app.get("/predictions/{request_id}/lineage")
def prediction_lineage(request_id: str, authorization: Annotated[str | None, Header()] = None) -> Any:
    """Where one logged prediction comes from: the model version that answered, its MLflow and Dagster runs,
    the batches it was trained on (rows per batch), the drift report behind its training and its why, its
    verdict and the champion it replaced; links into the Dagster and MLflow UIs when MLOPS_DAGSTER_URL /
    MLOPS_MLFLOW_URL are set. Needs the read (or admin) token."""
    return _lineage(
        authorization,
        request_id,
        lineage.REQUEST_ID,
        ("invalid request id", REQUEST_ID_FORM),
        lambda connection, _: lineage.prediction_lineage(connection, request_id),
        (f"no logged prediction has request id {request_id}", UNKNOWN_REQUEST),
    )


@app.get("/batches/{batch_id}/lineage")
def batch_lineage(batch_id: str, authorization: Annotated[str | None, Header()] = None) -> Any:
    """What one batch fed: the models trained on it (for it or a later batch), its rows in each one's training,
    and how many predictions each served. Needs the read (or admin) token, like the prediction history."""
    return _lineage(
        authorization,
        batch_id,
        lineage.BATCH_ID,
        ("invalid batch id", BATCH_ID_FORM),
        lambda connection, settings: lineage.batch_lineage(connection, batch_id, settings.model_name),
        (f"no batch {batch_id} in the warehouse", "no raw or clean rows and no drift report"),
    )


@app.get("/metrics/summary")
def summary() -> Any:
    """The last 24 hours of logged predictions: count, price (US dollars), latency (ms), versions."""
    table = inference_log
    since = datetime.now(UTC) - timedelta(hours=24)
    totals = sa.select(
        sa.func.count(),
        sa.func.avg(table.c.price),
        sa.func.min(table.c.price),
        sa.func.max(table.c.price),
        sa.func.avg(table.c.latency_ms),
    ).where(table.c.created_at >= since)
    versions = (
        sa.select(table.c.model_version, sa.func.count())
        .where(table.c.created_at >= since)
        .group_by(table.c.model_version)
        .order_by(table.c.model_version)
    )
    try:
        with _service().engine.connect() as connection:
            count, mean, low, high, latency = connection.execute(totals).one()
            used = {version: n for version, n in connection.execute(versions)}
    except sa.exc.SQLAlchemyError as error:
        return _database_down(error)
    return {
        "window_hours": 24,
        "since": since.isoformat(),
        "count": int(count),
        "mean_price": mean,
        "min_price": low,
        "max_price": high,
        "mean_latency_ms": latency,
        "versions_used": used,
    }


def _check_bearer(authorization: str | None, *tokens: str | None) -> JSONResponse | None:
    """None when `authorization` is `Bearer <one of tokens>`; else the 401/403 to answer. Constant-time
    comparison against every configured token, so the answer's timing says nothing about which matched."""
    configured = [t for t in tokens if t]
    if not configured:
        return _error(403, "disabled: no token is configured (MLOPS_READ_TOKEN or MLOPS_ADMIN_TOKEN)")
    scheme, _, given = (authorization or "").partition(" ")
    if scheme.lower() != "bearer" or not given:
        return _error(401, "send Authorization: Bearer <token>", headers={"WWW-Authenticate": "Bearer"})
    matches = [hmac.compare_digest(given.strip().encode(), t.encode()) for t in configured]
    return None if any(matches) else _error(403, "invalid token")


def _database_down(error: Exception) -> JSONResponse:
    return _error(503, "the inference log database is unavailable", f"{type(error).__name__}")


@app.post("/reload")
def reload(authorization: Annotated[str | None, Header()] = None) -> Any:
    """Serve the version holding the alias now, in every worker. Needs `Authorization: Bearer $MLOPS_ADMIN_TOKEN`."""
    service = _service()
    token = service.config.settings.admin_token
    if not token:
        return _error(403, "reload is disabled: MLOPS_ADMIN_TOKEN is not set")
    refused = _check_bearer(authorization, token)
    if refused is not None:
        return refused
    try:
        return service.holder.reload_everywhere()
    except Exception as error:
        current = service.holder.current
        return _error(
            503,
            "reload failed; the previous model keeps serving",
            {
                "reason": service.holder.last_error or f"{type(error).__name__}: {error}"[:500],
                "serving_version": current.version if current else None,
            },
        )
