"""Every prediction into `inference_log` and into RAW DATA (`raw_listings`, source `inference`), off the request path.

Requests hand over one `LogBatch` per request (a single row or a whole /batch_predict) and return
at once. A writer thread turns them into frames and inserts them in batches with the warehouse's
`bulk_insert` (COPY on PostgreSQL), one transaction for both tables. The buffer is bounded in rows:
while the database is slow or down, the rows already held wait and are retried with backoff; what
does not fit is dropped and counted (`inference_log_dropped_total{reason="queue_full"}`).
Predictions never wait for the database.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlops_assets.storage.warehouse import Warehouse, inference_log, raw_listings
from serving import metrics
from serving.schemas import Property

logger = logging.getLogger("bentoml.serving.inference_log")

#: Errors that mean "the database is not reachable now": keep the rows and try again.
_TRANSIENT = (sa.exc.OperationalError, sa.exc.InterfaceError, sa.exc.TimeoutError)


@dataclass(frozen=True)
class LogBatch:
    endpoint: str
    model_name: str
    model_version: str
    created_at: datetime
    latency_ms: float
    request_ids: Sequence[str]
    properties: Sequence[Property]
    states: Sequence[str | None]
    prices: Sequence[float]
    warnings: Sequence[list[str]]

    def __len__(self) -> int:
        return len(self.request_ids)


def frames(batches: Sequence[LogBatch], json_as_text: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inference_log rows, raw_listings rows) as frames, built column by column (no dict per row).

    `json_as_text`: PostgreSQL's COPY takes the JSON columns as text; SQLAlchemy's executemany
    (SQLite) serialises them itself.
    """
    encode = json.dumps if json_as_text else (lambda value: value)
    log: dict[str, list] = defaultdict(list)
    raw: dict[str, list] = defaultdict(list)
    for batch in batches:
        n, props = len(batch), batch.properties
        stamp, status = [batch.created_at] * n, [p.get("status") for p in props]
        log["request_id"] += batch.request_ids
        log["created_at"] += stamp
        log["endpoint"] += [batch.endpoint] * n
        log["model_name"] += [batch.model_name] * n
        log["model_version"] += [batch.model_version] * n
        log["price"] += [float(price) for price in batch.prices]
        log["latency_ms"] += [batch.latency_ms] * n
        log["state"] += [state or p["state"] for state, p in zip(batch.states, props, strict=True)]
        log["status"] += status
        for column in ("bed", "bath", "acre_lot", "house_size"):
            values = [p[column] for p in props]
            log[column] += values
            raw[column] += values
        log["inputs"] += [encode(dict(p)) for p in props]
        log["warnings"] += ["[]" if json_as_text and not notes else encode(list(notes)) for notes in batch.warnings]
        raw["batch_id"] += [f"inference-{batch.created_at:%Y%m%d}"] * n
        raw["source"] += ["inference"] * n
        raw["ingested_at"] += stamp
        raw["status"] += status
        raw["city"] += [p.get("city") for p in props]
        raw["state"] += [p["state"] for p in props]  # as sent: RAW DATA; cleaning normalises it later
        raw["zip_code"] += [float(p["zip_code"]) if p.get("zip_code") else None for p in props]
    # raw_listings.price stays NULL: unknown until the house sells
    return pd.DataFrame(log), pd.DataFrame(raw)


def open_warehouse(url: str) -> Warehouse:
    """The platform's warehouse, giving up quickly when PostgreSQL is away (a logger must not hang)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        url = parsed.update_query_dict({"connect_timeout": "3"}).render_as_string(hide_password=False)
    return Warehouse(url)


def ensure_tables(engine: Engine) -> None:
    """Create the two tables if missing; another worker creating them at the same time is fine."""
    try:
        inference_log.metadata.create_all(engine, tables=[inference_log, raw_listings])
    except sa.exc.DBAPIError as error:
        if isinstance(error, _TRANSIENT):
            raise
        if not sa.inspect(engine).has_table(inference_log.name):
            raise


class InferenceLogger:
    def __init__(self, warehouse: Warehouse, max_rows: int, batch_rows: int, flush_seconds: float) -> None:
        self.warehouse = warehouse
        self.max_rows = max_rows
        self.batch_rows = batch_rows
        self.flush_seconds = flush_seconds
        self.pending_rows = 0
        self.dropped = 0
        self.written = 0
        self.database_ok: bool | None = None
        self.last_error: str | None = None
        self._queue: deque[LogBatch] = deque()
        self._held: list[LogBatch] = []  # taken from the queue, not yet written
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._tables_ready = False
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def submit(self, batch: LogBatch) -> bool:
        """Queue a request's rows; False (and counted) when the buffer is full. Never blocks on I/O."""
        with self._cond:
            if self.pending_rows + len(batch) > self.max_rows:
                self.dropped += len(batch)
                metrics.LOG_DROPPED.labels("queue_full").inc(len(batch))
                return False
            self._queue.append(batch)
            self.pending_rows += len(batch)
            if self.pending_rows >= self.batch_rows:
                self._cond.notify()
        return True

    def stop(self, timeout: float = 5.0) -> None:
        """Write what is queued (for up to `timeout`), then stop."""
        self._stop.set()
        with self._cond:
            self._cond.notify()
        if self._thread is not None:
            self._thread.join(timeout)

    def _take(self) -> list[LogBatch]:
        """Wait for a full batch or the flush interval (few, large transactions), then take up to a batch."""
        deadline = time.monotonic() + self.flush_seconds
        with self._cond:
            while self.pending_rows < self.batch_rows and not self._stop.is_set():
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            taken, rows = [], 0
            while self._queue and rows < self.batch_rows:
                batch = self._queue.popleft()
                taken.append(batch)
                rows += len(batch)
            return taken

    def _run(self) -> None:
        try:  # so that the history and summary endpoints find the tables before the first prediction
            self._ensure_tables()
        except Exception as error:  # the database is away: _write tries again with the first rows
            self._unavailable(error)
        backoff = 0.0
        while True:
            if not self._held:
                self._held = self._take()
            if not self._held:
                if self._stop.is_set():
                    return
                continue
            try:
                self._write(self._held)
            except Exception as error:
                if self._transient(error):  # keep the rows, try again
                    self._unavailable(error)
                    if self._stop.is_set():
                        return
                    backoff = min(max(backoff * 2, 0.25), 5.0)
                    self._stop.wait(backoff)
                    continue
                # the database refused these rows: drop them, keep going
                rows = sum(len(b) for b in self._held)
                self.dropped += rows
                metrics.LOG_DROPPED.labels("rejected").inc(rows)
                self.last_error = f"{type(error).__name__}: {error}"[:500]
                logger.exception("inference log rows rejected and dropped (%d rows)", rows)
            else:
                backoff = 0.0
            self._release(self._held)
            self._held = []

    def _transient(self, error: Exception) -> bool:
        """Unreachable or gone away, as SQLAlchemy says it or as the driver does (the COPY path is raw psycopg2)."""
        dbapi = self.warehouse.engine.dialect.dbapi
        driver = (dbapi.OperationalError, dbapi.InterfaceError) if dbapi is not None else ()
        return isinstance(error, _TRANSIENT + driver)

    def _release(self, batches: list[LogBatch]) -> None:
        with self._cond:
            self.pending_rows -= sum(len(b) for b in batches)

    def _unavailable(self, error: Exception) -> None:
        if self.database_ok is not False:
            logger.warning("inference log database unavailable; holding rows and retrying: %s", error)
        self.database_ok = False
        self.last_error = f"{type(error).__name__}: {error}"[:500]

    def _ensure_tables(self) -> None:
        if not self._tables_ready:
            ensure_tables(self.warehouse.engine)
            self._tables_ready = True

    def _write(self, batches: list[LogBatch]) -> None:
        self._ensure_tables()
        log_rows, raw_rows = frames(batches, json_as_text=self.warehouse.is_postgres)
        with self.warehouse.begin() as connection:  # COPY on PostgreSQL, executemany elsewhere
            self.warehouse.bulk_insert(connection, inference_log, log_rows)
            self.warehouse.bulk_insert(connection, raw_listings, raw_rows)
        self.written += len(log_rows)
        metrics.LOG_WRITTEN.inc(len(log_rows))
        if self.database_ok is False:
            logger.info("inference log database is back; logging resumed")
        self.database_ok = True
        self.last_error = None


def utcnow() -> datetime:
    return datetime.now(UTC)
