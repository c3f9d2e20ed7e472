"""The BentoML service: prices and SHAP explanations from whatever model holds the `champion` alias.

    bentoml serve serving.service:HousePriceService --port 3000      (or: make serve)

Each worker loads `models:/{MLOPS_MODEL_NAME}@{MLOPS_MODEL_ALIAS}` in the background (XGBoost's own
format plus the feature-state JSON, no pickle), follows the alias, and logs every prediction off the
request path. Features come from the pure `mlops_assets.core`, exactly as in training; nothing here
imports Dagster. POST endpoints are BentoML APIs; GET routes and /reload are in `serving.app`.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid

# MLflow's HTTP client otherwise retries a dead server for minutes; a poll should fail fast.
os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "20")
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import bentoml
from starlette.responses import JSONResponse

from mlops_assets.core.features import FEATURE_NAMES
from mlops_assets.storage.outcomes import live_summary
from serving import metrics
from serving.app import app
from serving.bodies import BatchBody, PropertyBody
from serving.body_limit import BodyLimit
from serving.config import ServingConfig
from serving.inference_log import InferenceLogger, LogBatch, open_warehouse, utcnow
from serving.model_holder import ModelHolder, WorkerSync
from serving.openapi import DocumentedService
from serving.predictor import Champion, Rows
from serving.schemas import (
    MAX_BODY_BYTES,
    BatchOut,
    ExplanationOut,
    InputError,
    PredictionOut,
    error_body,
    parse_batch,
    parse_property,
)

logger = logging.getLogger("bentoml.serving")
#: How long /model reuses the champion's live figures before reading them again (seconds).
LIVE_CACHE_SECONDS = 60.0
CONFIG = ServingConfig.from_env()

UNITS = {
    "price": "US dollars",
    "base_price": "US dollars",
    "contributions_usd": "US dollars (sum = price - base_price)",
    "base_value": "log1p(US dollars)",
    "shap_values": "log1p(US dollars) (base_value + sum = log1p(price))",
    "feature_values": "the model's inputs (feature_names)",
}


def _json(payload: dict, status: int = 200) -> JSONResponse:
    return JSONResponse(payload, status_code=status)


#: BentoML wraps every request in an OpenTelemetry span, sampled or not: a fifth of a prediction's CPU
#: (profiled). Without a tracing exporter nothing is collected, so the prediction routes skip it unless
#: MLOPS_SERVING_TRACING=1 (then configure BentoML's `tracing` as usual).
UNTRACED = {} if CONFIG.tracing else {"tracing": {"excluded_urls": ["/predict$", "/batch_predict$", "/explain$"]}}


@bentoml.asgi_app(app, path="/")
@bentoml.service(
    workers=CONFIG.workers,
    threads=CONFIG.threads,
    traffic={"timeout": 60},
    logging={"access": {"enabled": CONFIG.access_log}},
    service_class=DocumentedService,  # the OpenAPI document: the project's title and version, errors, examples
    **UNTRACED,
)
class HousePriceService:
    def __init__(self) -> None:
        self.config = config = ServingConfig.from_env()  # after the deployment hook set the run dir
        self.started_at = time.time()
        settings = config.settings

        def registry():
            from mlops_assets.ml.registry import ModelRegistry

            return ModelRegistry(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias)

        sync = WorkerSync(config.run_dir) if config.run_dir else None
        self.holder = ModelHolder(registry, settings.model_alias, config.poll_seconds, sync)
        self.warehouse = open_warehouse(settings.database_url)
        self.engine = self.warehouse.engine  # the read endpoints' queries
        self._live_cache: dict[str, tuple[float, dict | None]] = {}
        self.inference_log: InferenceLogger | None = None
        if config.inference_log:
            self.inference_log = InferenceLogger(
                self.warehouse, config.log_queue_rows, config.log_batch_rows, config.log_flush_seconds
            )
            self.inference_log.start()
        self.holder.start()  # loads in the background: /health answers during the load

    @bentoml.on_deployment
    def _shared_run_dir() -> None:
        """Once per `bentoml serve`, before the workers start: the directory they coordinate /reload through."""
        os.environ.setdefault("MLOPS_SERVING_RUN_DIR", tempfile.mkdtemp(prefix="mlops-serving-"))

    @bentoml.on_shutdown
    def _stop(self) -> None:
        self.holder.stop()
        if self.inference_log is not None:
            self.inference_log.stop()
        self.warehouse.dispose()

    def __is_ready__(self) -> bool:
        """`/readyz`: ready once every worker serves a model - whichever worker answers, and a respawned
        worker counts as not serving until its model is in; while there is no champion, a 503 that says why
        (the best candidate and the rule it failed)."""
        if self.holder.current is None and self.holder.no_champion is not None:
            from starlette.exceptions import HTTPException

            raise HTTPException(status_code=503, detail=self.holder.no_champion["message"])
        return self.holder.current is not None and self.all_workers_serve()

    def live_quality(self, version: str) -> dict | None:
        """The champion's live figures on matched sales (storage/outcomes.py), None when none are known;
        read at most once a minute per version (a slow or absent warehouse must not slow /model down)."""
        cached = self._live_cache.get(version)
        if cached is not None and time.monotonic() - cached[0] < LIVE_CACHE_SECONDS:
            return cached[1]
        try:
            figures = live_summary(self.warehouse, self.config.settings.model_name, version)
        except Exception as error:  # no outcome tables yet, or the database is away: nothing known
            logger.info("live figures of v%s not read: %s", version, error)
            figures = None
        self._live_cache[version] = (time.monotonic(), figures)
        return figures

    def all_workers_serve(self) -> bool:
        """Every live worker has published a model, and as many workers as configured have."""
        sync = self.holder.sync
        if sync is None:
            return True
        versions = list(sync.versions().values())
        return len(versions) >= self.config.workers and all(v is not None for v in versions)

    # --- helpers ---

    def _unavailable(self, endpoint: str, started: float) -> JSONResponse:
        metrics.observe(endpoint, "none", "unavailable", time.perf_counter() - started)
        return _json({"error": "no model loaded yet", "detail": self.holder.last_error}, 503)

    def _invalid(self, endpoint: str, champion: Champion | None, error: InputError, started: float) -> JSONResponse:
        metrics.observe(endpoint, champion.version if champion else "none", "invalid", time.perf_counter() - started)
        return _json(error_body(error.errors), 422)

    def _busy(self, champion: Champion, started: float, rows: int) -> JSONResponse:
        """503 before any work: the inference log cannot take `rows` more now and the database is up."""
        metrics.observe("batch_predict", champion.version, "busy", time.perf_counter() - started)
        log = self.inference_log
        detail = (
            f"the inference log holds {log.pending_rows:,} of {log.max_rows:,} rows and could not make room for "
            f"{rows:,} within {CONFIG.log_wait_seconds:g}s; retry shortly"
            if log
            else None
        )
        response = _json(
            {"error": "busy: predictions are answered only when they can be logged", "detail": detail}, 503
        )
        response.headers["Retry-After"] = "1"
        return response

    def _give_back(self, rows: int) -> None:
        if rows > 0 and self.inference_log is not None:
            self.inference_log.cancel(rows)

    def _failed(self, endpoint: str, champion: Champion, started: float, request_id: str) -> JSONResponse:
        logger.exception("%s failed (request %s)", endpoint, request_id)
        metrics.observe(endpoint, champion.version, "error", time.perf_counter() - started)
        return _json({"error": f"{endpoint} failed; see the server log", "request_id": request_id}, 500)

    def _log(
        self,
        endpoint: str,
        champion: Champion,
        started: float,
        ids: list[str],
        props: list,
        rows: Rows,
        prices: list,
        reserved: bool = False,
    ) -> None:
        """Hand the rows to the inference log's queue; never waits for the database."""
        if self.inference_log is not None:
            latency_ms = (time.perf_counter() - started) * 1000.0
            batch = LogBatch(
                endpoint,
                champion.model.name,
                champion.version,
                utcnow(),
                latency_ms,
                ids,
                props,
                rows.states,
                prices,
                rows.warnings,
            )
            self.inference_log.submit(batch, reserved=reserved)

    # --- endpoints ---

    @bentoml.api(route="/predict", input_spec=PropertyBody, output_spec=PredictionOut)
    async def predict(self, body: PropertyBody, /) -> JSONResponse:
        """The price of one property, in US dollars."""
        started = time.perf_counter()
        champion = await self.holder.model_for_request(CONFIG.load_wait_seconds)
        try:
            prop = parse_property(body.data)
        except InputError as error:
            return self._invalid("predict", champion, error, started)
        if champion is None:
            return self._unavailable("predict", started)
        request_id = uuid.uuid4().hex
        try:
            rows = champion.rows([prop])
            if rows.unusable:
                return self._invalid("predict", champion, InputError(rows.problem(0)), started)
            [price] = champion.prices(rows.x)
        except Exception:
            return self._failed("predict", champion, started, request_id)
        self._log("predict", champion, started, [request_id], [prop], rows, [price])
        metrics.observe("predict", champion.version, "ok", time.perf_counter() - started)
        metrics.PRICE.observe(price)
        return _json(
            {
                "price": price,
                "model_name": champion.model.name,
                "model_version": champion.version,
                "model_alias": champion.alias,
                "request_id": request_id,
                "features_used": dict(zip(FEATURE_NAMES, rows.x[0].tolist(), strict=True)),
                "warnings": rows.warnings[0],
            }
        )

    @bentoml.api(route="/batch_predict", input_spec=BatchBody, output_spec=BatchOut)
    def batch_predict(self, body: BatchBody, /) -> JSONResponse:
        """Prices for a list of up to 10,000 properties, in order; an invalid item gets an error entry.

        Synchronous on purpose: BentoML runs it in a worker thread, so a large batch does not hold
        the event loop that single predictions are answered on.
        """
        started = time.perf_counter()
        champion = self.holder.model_for_request_sync(CONFIG.load_wait_seconds)
        try:
            items = parse_batch(body.data)
        except InputError as error:
            return self._invalid("batch_predict", champion, error, started)
        if champion is None:
            return self._unavailable("batch_predict", started)
        # backpressure: room in the inference log first, so that what is answered is also logged
        room = self.inference_log.reserve(len(items), CONFIG.log_wait_seconds) if self.inference_log else None
        if room is False:
            return self._busy(champion, started, len(items))
        reserved = len(items) if room else 0
        batch_id = uuid.uuid4().hex
        try:
            priced = champion.price_batch(items, batch_id)
        except Exception:
            self._give_back(reserved)
            return self._failed("batch_predict", champion, started, batch_id)
        self._give_back(reserved - len(priced.prices))  # invalid items are not logged
        if priced.prices and priced.rows is not None:  # rows: None only when no item was valid
            self._log(
                "batch_predict",
                champion,
                started,
                priced.request_ids,
                priced.properties,
                priced.rows,
                priced.prices,
                reserved=bool(reserved),
            )
            metrics.observe_prices(priced.prices)
        failed = len(items) - len(priced.prices)
        if failed:
            metrics.PREDICTIONS.labels(champion.version, "batch_predict", "invalid").inc(failed)
        elapsed = time.perf_counter() - started
        metrics.observe("batch_predict", champion.version, "ok", elapsed, count=len(priced.prices))
        return _json(
            {
                "predictions": priced.entries,
                "model_name": champion.model.name,
                "model_version": champion.version,
                "count": len(items),
                "failed": failed,
            }
        )

    @bentoml.api(route="/explain", input_spec=PropertyBody, output_spec=ExplanationOut)
    async def explain(self, body: PropertyBody, /) -> JSONResponse:
        """The price and its TreeSHAP explanation; see `units` in the response for each field's unit."""
        started = time.perf_counter()
        champion = await self.holder.model_for_request(CONFIG.load_wait_seconds)
        try:
            prop = parse_property(body.data)
        except InputError as error:
            return self._invalid("explain", champion, error, started)
        if champion is None:
            return self._unavailable("explain", started)
        request_id = uuid.uuid4().hex
        try:
            rows = champion.rows([prop])
            if rows.unusable:
                return self._invalid("explain", champion, InputError(rows.problem(0)), started)
            explanation = champion.explain(rows.x)
        except Exception:
            return self._failed("explain", champion, started, request_id)
        price = explanation["price"]
        self._log("explain", champion, started, [request_id], [prop], rows, [price])
        metrics.observe("explain", champion.version, "ok", time.perf_counter() - started)
        metrics.PRICE.observe(price)
        return _json(
            {
                **explanation,
                "model_name": champion.model.name,
                "model_version": champion.version,
                "request_id": request_id,
                "warnings": rows.warnings[0],
                "units": UNITS,
            }
        )


# A body over the limit is refused by its Content-Length, or once that many bytes arrived, before it is held whole.
# (BentoML's type hints keep the decorated class's type; it is a bentoml.Service at runtime.)
HousePriceService.add_asgi_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)  # type: ignore[attr-defined]
