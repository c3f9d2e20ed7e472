"""The service's GET routes and /reload, as a FastAPI app mounted on the BentoML service.

`@bentoml.api` routes are POST-only, so the read endpoints live here; each handler reaches the
worker's service instance through `bentoml.get_current_service()`. Database reads go through
SQLAlchemy Core (bound parameters only) and answer 503 when the database is away.
"""

from __future__ import annotations

import hmac
import math
import os
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

import bentoml
import sqlalchemy as sa
from fastapi import FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from prometheus_client.multiprocess import MultiProcessCollector

from mlops_assets.core.features import FEATURE_NAMES
from mlops_assets.settings import Settings
from mlops_assets.storage import lineage
from mlops_assets.storage.warehouse import inference_log
from serving.metrics import ENDPOINTS, OUTCOMES, PREDICTIONS
from serving.predictor import canonical_state
from serving.schemas import error_body, field_error

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


@app.exception_handler(RequestValidationError)
async def _invalid_parameters(request: Request, error: RequestValidationError) -> JSONResponse:
    """A bad query or path parameter: the 422 every endpoint answers (an InvalidInput), not FastAPI's own."""
    problems = []
    for problem in error.errors():
        where, *loc = problem.get("loc") or ("query",)
        problems.append(field_error(loc, problem.get("msg", ""), problem.get("type", "value_error"), where=where))
    return JSONResponse(error_body(problems), status_code=422)


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
        "predictor": champion.predictor,
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
    key: tuple[str, str],
    valid: re.Pattern,
    malformed: tuple[str, str],
    lookup: Callable[[Any, Settings], dict | None],
    unknown: tuple[str, str],
) -> Any:
    """One lineage route: the read (or admin) token first - another client's request is theirs - then the
    id's form (422: `malformed` is the error and the form it must have), the warehouse (503 when away), an
    unknown id (404), links when the UI URLs are set. `key` is the path parameter's name and value."""
    settings = _service().config.settings
    refused = _check_bearer(authorization, settings.read_token, settings.admin_token)
    if refused is not None:
        return refused
    name, value = key
    if not valid.fullmatch(value):
        error, form = malformed
        detail = [field_error((name,), f"{error}: {form}", "string_pattern_mismatch", where="path")]
        return JSONResponse(error_body(detail, error), status_code=422)
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
        ("request_id", request_id),
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
        ("batch_id", batch_id),
        lineage.BATCH_ID,
        ("invalid batch id", BATCH_ID_FORM),
        lambda connection, settings: lineage.batch_lineage(connection, batch_id, settings.model_name),
        (f"no batch {batch_id} in the warehouse", "no raw or clean rows and no drift report"),
    )


REQUEST_KEY = 32
"""A request's own id is its first 32 characters: a /batch_predict item's is <the batch's id>-<item>."""


def request_latencies(connection: sa.Connection, since: datetime) -> dict[str, dict[str, Any]]:
    """Per endpoint, the logged requests since `since` and their latency (ms) per request, not per row: a
    batch's rows share its request id and its one latency, so a 10,000-row batch is one request.
    p50/p95 are nearest-rank percentiles, worked out in the database (no row is loaded)."""
    table = inference_log
    request = sa.func.substr(table.c.request_id, 1, REQUEST_KEY)
    per_request = (
        sa.select(
            table.c.endpoint,
            sa.func.max(table.c.latency_ms).label("latency_ms"),
            sa.func.count().label("rows"),
        )
        .where(table.c.created_at >= since)
        .group_by(table.c.endpoint, request)
        .subquery()
    )
    totals = sa.select(
        per_request.c.endpoint,
        sa.func.count(),
        sa.func.sum(per_request.c.rows),
        sa.func.avg(per_request.c.latency_ms),
        sa.func.max(per_request.c.latency_ms),
    ).group_by(per_request.c.endpoint)

    def percentile(endpoint: str, requests: int, share: float) -> float:
        ranked = (
            sa.select(per_request.c.latency_ms)
            .where(per_request.c.endpoint == endpoint)
            .order_by(per_request.c.latency_ms)
            .offset(max(math.ceil(share * requests) - 1, 0))
            .limit(1)
        )
        return float(connection.execute(ranked).scalar_one())

    figures: dict[str, dict[str, Any]] = {
        endpoint: {"requests": 0, "predictions": 0, "mean_latency_ms": None, "p50_latency_ms": None,
                   "p95_latency_ms": None, "max_latency_ms": None}
        for endpoint in ENDPOINTS
    }  # fmt: skip
    for endpoint, requests, rows, mean, high in connection.execute(totals).all():
        figures[endpoint] = {
            "requests": int(requests),
            "predictions": int(rows),
            "mean_latency_ms": float(mean),
            "p50_latency_ms": percentile(endpoint, requests, 0.50),
            "p95_latency_ms": percentile(endpoint, requests, 0.95),
            "max_latency_ms": float(high),
        }
    return figures


def outcome_counts() -> dict[str, dict[str, int]]:
    """`predictions_total` by endpoint and outcome since this serving process started (its Prometheus counters,
    summed over its workers and model versions, as its /metrics exports them). A request refused whole counts
    once; a /batch_predict item counts one each, answered or refused."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:  # under `bentoml serve`: every worker's counters, from their shared files
        registry = CollectorRegistry(auto_describe=False)
        MultiProcessCollector(registry, path=directory)
        families = registry.collect()
    else:
        families = PREDICTIONS.collect()
    counts = {endpoint: dict.fromkeys(OUTCOMES, 0) for endpoint in ENDPOINTS}
    for family in families:
        for sample in family.samples:
            if sample.name == "predictions_total":
                endpoint, outcome = sample.labels.get("endpoint"), sample.labels.get("outcome")
                if endpoint in counts and outcome in counts[endpoint]:
                    counts[endpoint][outcome] += int(sample.value)
    return counts


@app.get("/metrics/summary")
def summary() -> Any:
    """The last 24 hours of logged predictions: `count` (rows), `requests`, price (US dollars), latency (ms) per
    request overall and per endpoint (`endpoints`: requests, predictions, mean, p50, p95, max), versions; and
    `outcomes`: per endpoint, ok / invalid (422) / unavailable, busy (503) / error (500) since serving started
    (only answered requests are logged: the refused ones are in these counters)."""
    table = inference_log
    since = datetime.now(UTC) - timedelta(hours=24)
    totals = sa.select(
        sa.func.count(),
        sa.func.avg(table.c.price),
        sa.func.min(table.c.price),
        sa.func.max(table.c.price),
    ).where(table.c.created_at >= since)
    versions = (
        sa.select(table.c.model_version, sa.func.count())
        .where(table.c.created_at >= since)
        .group_by(table.c.model_version)
        .order_by(table.c.model_version)
    )
    try:
        with _service().engine.connect() as connection:
            count, mean, low, high = connection.execute(totals).one()
            used = {version: n for version, n in connection.execute(versions)}
            endpoints = request_latencies(connection, since)
    except sa.exc.SQLAlchemyError as error:
        return _database_down(error)
    requests = sum(e["requests"] for e in endpoints.values())
    latency = sum(e["mean_latency_ms"] * e["requests"] for e in endpoints.values() if e["requests"])
    return {
        "window_hours": 24,
        "since": since.isoformat(),
        "count": int(count),
        "requests": requests,
        "mean_price": mean,
        "min_price": low,
        "max_price": high,
        "mean_latency_ms": latency / requests if requests else None,
        "versions_used": used,
        "endpoints": endpoints,
        "outcomes": outcome_counts(),
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
