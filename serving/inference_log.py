"""Every prediction into `inference_log` and into RAW DATA (`raw_listings`, source `inference`), off the request path.

Requests hand over one `LogBatch` per request (a single row or a whole /batch_predict) and return
at once. A writer thread turns them into frames and inserts them in batches with the warehouse's
`bulk_insert` (COPY on PostgreSQL), one transaction for both tables. The buffer is bounded in rows:
- while the database is up, /batch_predict first reserves room for its rows (`reserve`), waiting for
  the writer to make some: the load the service accepts is the load it can log (backpressure), and a
  request that cannot get room in time is refused with 503 before any work is done;
- while the database is slow or down, the rows already held wait and are retried with backoff, and
  what does not fit is dropped and counted (`inference_log_dropped_total{reason="queue_full"}`):
  predictions never wait for a database that is away;
- rows the database refuses (it should not happen: requests are validated) are split off by halving the
  transaction until only the refused rows are left, so one bad row never costs the others.
`recently_dropped()` tells /health to say "degraded" while rows are being lost.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pydantic_core
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mlops_assets.core.properties import property_keys
from mlops_assets.storage.warehouse import Warehouse, add_missing_columns, inference_log, model_history, raw_listings
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


def _as_is(value: Any) -> Any:
    return value


def _json_text(value: Any) -> str:
    """JSON text for COPY: pydantic-core's encoder, ~5x faster than `json.dumps` on a property (the inputs are
    validated finite numbers and strings, so both write the same values)."""
    return pydantic_core.to_json(value).decode()


def frames(batches: Sequence[LogBatch], json_as_text: bool) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(inference_log rows, raw_listings rows) as frames, built column by column (no dict per row).

    `json_as_text`: PostgreSQL's COPY takes the JSON columns as text; SQLAlchemy's executemany
    (SQLite) serialises them itself.
    """
    encode: Callable[[Any], Any] = _json_text if json_as_text else _as_is
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
        raw["zip_code"] += [float(zip_code) if (zip_code := p.get("zip_code")) else None for p in props]
        raw["brokered_by"] += [p.get("brokered_by") for p in props]
        raw["street"] += [p.get("street") for p in props]
    # raw_listings.price stays NULL: unknown until the house sells
    raw_frame = pd.DataFrame(raw)
    keys = named_properties(raw_frame)
    raw_frame["property_key"] = keys
    log["property_key"] = list(keys)
    return pd.DataFrame(log), raw_frame


def named_properties(raw: pd.DataFrame) -> pd.Series:
    """The property key (core/properties.py) of requests that name the property - brokered_by and street
    given - so its later sale can be matched to the prediction; None for the others, which could only match
    a sold listing by its size and place."""
    if raw.empty:
        return pd.Series([], dtype="object")
    named = raw["brokered_by"].notna() & raw["street"].notna()
    keys = pd.Series([None] * len(raw), index=raw.index, dtype="object")
    if named.any():
        keys[named] = property_keys(raw[named])
    return keys


def open_warehouse(url: str) -> Warehouse:
    """The platform's warehouse, giving up quickly when PostgreSQL is away (a logger must not hang)."""
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "postgresql" and "connect_timeout" not in parsed.query:
        url = parsed.update_query_dict({"connect_timeout": "3"}).render_as_string(hide_password=False)
    return Warehouse(url)


def ensure_tables(engine: Engine) -> None:
    """Create the two tables if missing; another worker creating them at the same time is fine. The pipeline's
    `model_history`, which the lineage routes read, gets the columns a newer release added too (an upgraded
    serving may start before the pipeline's next run migrates it)."""
    try:
        inference_log.metadata.create_all(engine, tables=[inference_log, raw_listings])
        read = [table for table in (model_history,) if sa.inspect(engine).has_table(table.name)]
        add_missing_columns(engine, [inference_log, raw_listings, *read])
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
        self.last_rejection: str | None = None
        """Why the database last refused a row (kept after later writes succeed)."""
        self._queue: deque[LogBatch] = deque()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._tables_ready = False
        self._thread: threading.Thread | None = None
        self._last_drop: float | None = None  # time.monotonic() of the last row lost

    def recently_dropped(self, window_seconds: float = 60.0) -> bool:
        """Whether rows were lost in the last `window_seconds` (for /health)."""
        return self._last_drop is not None and time.monotonic() - self._last_drop < window_seconds

    def _drop(self, rows: int, reason: str) -> None:
        self.dropped += rows
        self._last_drop = time.monotonic()
        metrics.LOG_DROPPED.labels(reason).inc(rows)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="inference-log", daemon=True)
        self._thread.start()

    def submit(self, batch: LogBatch, reserved: bool = False) -> bool:
        """Queue a request's rows; False (and counted) when the buffer is full. Never blocks on I/O.

        `reserved`: room for these rows was taken with `reserve` beforehand, so they always go in."""
        with self._cond:
            if not reserved:
                if self.pending_rows + len(batch) > self.max_rows:
                    self._drop(len(batch), "queue_full")
                    return False
                self.pending_rows += len(batch)
            self._queue.append(batch)
            if self.pending_rows >= self.batch_rows:
                self._cond.notify_all()
        return True

    def reserve(self, rows: int, timeout: float) -> bool | None:
        """Room for `rows` before the work that makes them: True once reserved (hand the rows to
        `submit(..., reserved=True)` or give the room back with `cancel`); False when none came within
        `timeout` while the database is up (refuse the request: accepting it would lose its log); None
        while the database is away (go on without a reservation: serving does not wait for it).

        A request larger than the whole buffer waits for an empty buffer and then goes in alone."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                if self.database_ok is False:
                    return None
                if self.pending_rows + rows <= self.max_rows or (self.pending_rows == 0 and rows > self.max_rows):
                    self.pending_rows += rows
                    return True
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.notify_all()  # the writer: write what is there now
                self._cond.wait(min(remaining, 0.5))

    def cancel(self, rows: int) -> None:
        """Give back a reservation whose rows were never submitted."""
        with self._cond:
            self.pending_rows -= rows
            self._cond.notify_all()

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
        held: list[tuple[pd.DataFrame, pd.DataFrame]] = []  # (inference_log rows, raw_listings rows), in order
        while True:
            if not held:
                taken = self._take()
                if taken:
                    held = [frames(taken, json_as_text=self.warehouse.is_postgres)]
            if not held:
                if self._stop.is_set():
                    return
                continue
            try:
                self._write_splitting(held)
            except Exception as error:  # only transient errors get here: keep what is left, try again
                self._unavailable(error)
                if self._stop.is_set():
                    return
                backoff = min(max(backoff * 2, 0.25), 5.0)
                self._stop.wait(backoff)
                continue
            backoff = 0.0

    def _write_splitting(self, held: list[tuple[pd.DataFrame, pd.DataFrame]]) -> None:
        """Write the held chunks front to back, removing each once written. A chunk the database refuses
        is halved and both halves go back to the front, down to the single rows it refuses, which are
        dropped and counted. Transient errors propagate with the unwritten chunks still held."""
        while held:
            log_rows, raw_rows = held[0]
            try:
                self._write(log_rows, raw_rows)
            except Exception as error:
                if self._transient(error):
                    raise
                held.pop(0)
                if len(log_rows) > 1:
                    half = len(log_rows) // 2
                    held[:0] = [
                        (log_rows.iloc[:half], raw_rows.iloc[:half]),
                        (log_rows.iloc[half:], raw_rows.iloc[half:]),
                    ]
                    continue
                self._drop(1, "rejected")
                self.last_rejection = f"{type(error).__name__}: {error}"[:500]
                logger.error("inference log row %s rejected by the database and dropped: %s",
                             log_rows["request_id"].iloc[0], self.last_rejection)  # fmt: skip
                self._release(1)
                continue
            held.pop(0)
            self._release(len(log_rows))

    def _transient(self, error: Exception) -> bool:
        """Unreachable or gone away, as SQLAlchemy says it or as the driver does (the COPY path is raw psycopg2)."""
        dbapi = self.warehouse.engine.dialect.dbapi
        driver = (dbapi.OperationalError, dbapi.InterfaceError) if dbapi is not None else ()
        return isinstance(error, _TRANSIENT + driver)

    def _release(self, rows: int) -> None:
        with self._cond:
            self.pending_rows -= rows
            self._cond.notify_all()  # requests waiting in `reserve`

    def _unavailable(self, error: Exception) -> None:
        if self.database_ok is not False:
            logger.warning("inference log database unavailable; holding rows and retrying: %s", error)
        self.database_ok = False
        self.last_error = f"{type(error).__name__}: {error}"[:500]

    def _ensure_tables(self) -> None:
        if not self._tables_ready:
            ensure_tables(self.warehouse.engine)
            self._tables_ready = True

    def _write(self, log_rows: pd.DataFrame, raw_rows: pd.DataFrame) -> None:
        self._ensure_tables()
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
