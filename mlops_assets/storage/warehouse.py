"""The warehouse: RAW DATA and CLEAN DATA tables (and the platform's history tables) on SQLAlchemy.

One code path for SQLite (the embedded default) and PostgreSQL. Loading a batch replaces it in
one transaction - delete its rows, bulk insert the new ones - so a re-run never duplicates and a
failed load leaves the previous state. PostgreSQL loads use COPY; others chunked executemany.
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from mlops_assets.core.metrics import METRIC_NAMES
from mlops_assets.core.schema import LISTING_COLUMNS

metadata = sa.MetaData()


def _listing_columns() -> list[sa.Column]:
    """The listing fields of core.schema.LISTING_COLUMNS (text widths included: its validation refuses longer
    text) but zip_code, which each table declares: a number as it arrives, five digits once clean."""
    return [
        sa.Column(c.name, sa.String(c.width) if c.kind == "text" else sa.Float)
        for c in LISTING_COLUMNS
        if c.name != "zip_code"
    ]


def _metric_columns(prefix: str) -> list[sa.Column]:
    """One column per metric of `core.metrics` (the model's, the champion's and the baseline's on the same rows)."""
    return [sa.Column(f"{prefix}{name}", sa.Float) for name in METRIC_NAMES]


def metric_values(prefix: str, metrics: dict[str, float] | None) -> dict[str, float | None]:
    """`metrics` as model_history column values: every metric column named, nothing else."""
    return {f"{prefix}{name}": (metrics or {}).get(name) for name in METRIC_NAMES}


raw_listings = sa.Table(
    "raw_listings",
    metadata,
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    *_listing_columns(),
    sa.Column("zip_code", sa.Float),
    sa.Column("property_key", sa.String(16), index=True),
)

clean_listings = sa.Table(
    "clean_listings",
    metadata,
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("listing_id", sa.String(16), nullable=False, index=True),
    sa.Column("cleaned_at", sa.DateTime(timezone=True), nullable=False),
    *_listing_columns(),
    sa.Column("zip_code", sa.String(5)),
    sa.Column("acre_lot_missing", sa.Boolean, nullable=False),
    # the same house across listings (core/properties.py): a later `sold` row finds its earlier scores by it
    sa.Column("property_key", sa.String(16), index=True),
)

drift_reports = sa.Table(
    "drift_reports",
    metadata,
    sa.Column("report_id", sa.String(64), primary_key=True),
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reference_model_version", sa.String(32)),
    sa.Column("reference_batches", sa.Text),
    sa.Column("rows_reference", sa.Integer, nullable=False),
    sa.Column("rows_current", sa.Integer, nullable=False),
    sa.Column("drift_detected", sa.Boolean),
    sa.Column("share_drifted", sa.Float),
    sa.Column("drifted_columns", sa.JSON),
    sa.Column("column_scores", sa.JSON),
    sa.Column("decision", sa.String(64), nullable=False),
    sa.Column("why", sa.Text, nullable=False),
    sa.Column("report_uri", sa.Text),
    sa.Column("dagster_run_id", sa.String(64)),
    # importance-weighted drift (ml/drift.py): columns ranked by drift x the champion's reliance on them,
    # and what the importance option decides (applied or not: `importance_rule` says which)
    sa.Column("importance_ranking", sa.JSON),
    sa.Column("importance_decision", sa.String(64)),
    sa.Column("importance_rule", sa.Text),
)

model_history = sa.Table(
    "model_history",
    metadata,
    sa.Column("model_name", sa.String(128), primary_key=True),
    sa.Column("model_version", sa.Integer, primary_key=True),
    sa.Column("mlflow_run_id", sa.String(64), nullable=False),
    sa.Column("dagster_run_id", sa.String(64)),
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    # the training window's first batch (`queries.window_start`); NULL: from the first batch (older rows)
    sa.Column("from_batch", sa.String(32)),
    sa.Column("trained_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("training_rows", sa.Integer, nullable=False),
    sa.Column("holdout_rows", sa.Integer, nullable=False),
    sa.Column("holdout_digest", sa.String(32), nullable=False),
    *_metric_columns(""),
    sa.Column("cv_r2_mean", sa.Float),
    sa.Column("cv_r2_std", sa.Float),
    sa.Column("champion_version", sa.Integer),
    *_metric_columns("champion_"),
    *_metric_columns("baseline_"),
    sa.Column("gate_mode", sa.String(16)),
    sa.Column("verdict", sa.String(16), nullable=False),
    sa.Column("reason", sa.Text),
    sa.Column("decided_at", sa.DateTime(timezone=True)),
    sa.Column("manual_by", sa.String(128)),
    sa.Column("manual_reason", sa.Text),
    sa.Column("trigger", sa.String(64)),
    sa.Column("drift_report_id", sa.String(64)),
    sa.Column("why", sa.Text),
    sa.Column("params", sa.JSON),
    sa.Column("shap_importance", sa.JSON),
    # the IAAO ratio study of the holdout predictions (core/ratio_study.py), overall and by state
    sa.Column("ratio_median", sa.Float),
    sa.Column("ratio_cod", sa.Float),
    sa.Column("ratio_prd", sa.Float),
    sa.Column("ratio_prb", sa.Float),
    sa.Column("ratio_by_state", sa.JSON),
)


#: One row per model diff (core/model_diff.py): a candidate against the champion it was judged against,
#: on the same holdout rows. Headline columns for queries; the whole diff in `diff`.
model_diffs = sa.Table(
    "model_diffs",
    metadata,
    sa.Column("model_name", sa.String(128), primary_key=True),
    sa.Column("new_version", sa.Integer, primary_key=True),
    sa.Column("old_version", sa.Integer, primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("batch_id", sa.String(32)),
    sa.Column("holdout_rows", sa.Integer, nullable=False),
    sa.Column("holdout_digest", sa.String(32)),
    sa.Column("metric", sa.String(16), nullable=False),
    sa.Column("old_metric", sa.Float),
    sa.Column("new_metric", sa.Float),
    sa.Column("metric_change", sa.Float),
    sa.Column("share_moved_5", sa.Float),
    sa.Column("share_moved_10", sa.Float),
    sa.Column("share_moved_20", sa.Float),
    sa.Column("median_value_change", sa.Float),
    sa.Column("most_moved_state", sa.String(64)),
    sa.Column("headline", sa.Text, nullable=False),
    sa.Column("drift_report_id", sa.String(64)),
    sa.Column("mlflow_run_id", sa.String(64)),
    sa.Column("dagster_run_id", sa.String(64)),
    sa.Column("diff", sa.JSON, nullable=False),
)


def model_diff_row(model_name: str, diff: dict, **extra: object) -> dict:
    """A model_diffs row from a diff (`core.model_diff`): its headline figures and the whole JSON."""
    moved = diff["value_changes"]["share_moved"]
    where = diff["value_changes"]["moved_by_state"]
    metric = diff["metric"]
    return {
        "model_name": model_name,
        "new_version": int(diff["new_version"]),
        "old_version": int(diff["old_version"]),
        "holdout_rows": diff["rows"],
        "metric": metric,
        "old_metric": diff["overall"]["old"][metric],
        "new_metric": diff["overall"]["new"][metric],
        "metric_change": diff["overall"]["relative"][metric],
        "share_moved_5": moved.get("5%"),
        "share_moved_10": moved.get("10%"),
        "share_moved_20": moved.get("20%"),
        "median_value_change": diff["value_changes"]["median"],
        "most_moved_state": where[0]["state"] if where else None,
        "headline": diff["headline"],
        "drift_report_id": (diff.get("drift") or {}).get("report_id"),
        "diff": diff,
        **extra,
    }


#: One row per served prediction (serving writes it off the request path; see serving/inference_log.py).
inference_log = sa.Table(
    "inference_log",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("endpoint", sa.String(32), nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False, index=True),
    sa.Column("price", sa.Float, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("state", sa.String(64)),
    sa.Column("status", sa.String(32)),
    sa.Column("bed", sa.Float),
    sa.Column("bath", sa.Float),
    sa.Column("acre_lot", sa.Float),
    sa.Column("house_size", sa.Float),
    sa.Column("inputs", sa.JSON),
    sa.Column("warnings", sa.JSON),
    # set when the request named the property (brokered_by, street, city, zip_code...): its sale can be matched
    sa.Column("property_key", sa.String(16), index=True),
)


#: Batch scoring (assets/outcomes.py): every listing of a batch that is not sold, priced by the champion of
#: that moment. One row per listing; re-scoring a batch replaces its rows.
listing_scores = sa.Table(
    "listing_scores",
    metadata,
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("listing_id", sa.String(16), nullable=False),
    sa.Column("property_key", sa.String(16), nullable=False, index=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("status", sa.String(32)),
    sa.Column("state", sa.String(64)),
    sa.Column("list_price", sa.Float),
    sa.Column("predicted_price", sa.Float, nullable=False),
    sa.Column("scored_at", sa.DateTime(timezone=True), nullable=False),
)

#: A batch's sales joined to the earlier scores of the same property: per sale, one row per model version
#: (its latest score before the sale), from batch scoring or from serving's log. Re-running replaces the batch.
sale_outcomes = sa.Table(
    "sale_outcomes",
    metadata,
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("sold_listing_id", sa.String(16), nullable=False),
    sa.Column("property_key", sa.String(16), nullable=False),
    sa.Column("state", sa.String(64)),
    sa.Column("sold_price", sa.Float, nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False, index=True),
    sa.Column("predicted_price", sa.Float, nullable=False),
    sa.Column("score_source", sa.String(16), nullable=False),
    sa.Column("scored_batch_id", sa.String(32)),
    sa.Column("score_request_id", sa.String(64)),
    sa.Column("scored_at", sa.DateTime(timezone=True)),
    sa.Column("matched_at", sa.DateTime(timezone=True), nullable=False),
)

#: Live quality per batch and model version, over the batch's matched sales: overall (scope 'all') and per
#: state with enough sales (scope = the state). A time series: one set of rows per sale batch.
live_performance = sa.Table(
    "live_performance",
    metadata,
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("scope", sa.String(64), nullable=False),
    sa.Column("sales", sa.Integer, nullable=False),
    sa.Column("mae", sa.Float),
    sa.Column("mape", sa.Float),
    sa.Column("median_ape", sa.Float),
    sa.Column("median_ratio", sa.Float),
    sa.Column("cod", sa.Float),
    sa.Column("prd", sa.Float),
    sa.Column("prb", sa.Float),
    sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
)

#: Every rollback: the champion whose live quality failed, the version put back, why, with the figures.
rollbacks = sa.Table(
    "rollbacks",
    metadata,
    sa.Column("model_name", sa.String(128), primary_key=True),
    sa.Column("from_version", sa.Integer, primary_key=True),
    sa.Column("to_version", sa.Integer, nullable=False),
    sa.Column("batch_id", sa.String(32), nullable=False),
    sa.Column("decided_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("reason", sa.Text, nullable=False),
    sa.Column("figures", sa.JSON),
    sa.Column("dagster_run_id", sa.String(64)),
)


def batch_window(batch_id: sa.ColumnElement, through: str, since: str | None = None) -> sa.ColumnElement:
    """The batches `since` (None: the first) to `through`, both included: what a model trained for `through`
    with its training window starting at `since` read (`model_history.from_batch`)."""
    window = batch_id <= through
    return window if since is None else window & (batch_id >= since)


def add_missing_columns(engine: Engine, tables: list[sa.Table]) -> None:
    """Add the nullable columns a newer release introduced to existing `tables` (their rows are kept)."""
    inspector = sa.inspect(engine)
    with engine.begin() as connection:
        for table in tables:
            present = {c["name"] for c in inspector.get_columns(table.name)}
            for column in table.columns:
                if column.name not in present and column.nullable:
                    kind = column.type.compile(dialect=engine.dialect)
                    # names and types come from this module's metadata, never from input
                    connection.execute(sa.text(f'ALTER TABLE "{table.name}" ADD COLUMN "{column.name}" {kind}'))


class Warehouse:
    """Tables plus the few operations the platform needs, on one engine."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///"):
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
            self.engine: Engine = sa.create_engine(url, connect_args={"timeout": 60})
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)

    @property
    def is_postgres(self) -> bool:
        return self.engine.dialect.name == "postgresql"

    def create_tables(self) -> None:
        """Create missing tables, and add the nullable columns a newer release introduced to
        existing ones (a warehouse from an earlier version keeps its rows)."""
        metadata.create_all(self.engine)
        add_missing_columns(self.engine, metadata.sorted_tables)

    @contextmanager
    def begin(self) -> Iterator[Connection]:
        with self.engine.begin() as connection:
            yield connection

    def replace_batch(self, table: sa.Table, batch_id: str, frame: pd.DataFrame) -> int:
        """Make `table` hold exactly `frame` for `batch_id`; returns the rows written."""
        with self.begin() as connection:
            connection.execute(table.delete().where(table.c.batch_id == batch_id))
            return self.bulk_insert(connection, table, frame)

    def bulk_insert(self, connection: Connection, table: sa.Table, frame: pd.DataFrame) -> int:
        """Insert all rows inside the caller's transaction; never row by row."""
        columns = [c.name for c in table.columns if c.name in frame.columns]
        if frame.empty:
            return 0
        if self.is_postgres:
            _copy_into(connection, table.name, frame[columns])
        else:
            for chunk in _record_chunks(frame[columns], 20_000):
                connection.execute(table.insert(), chunk)
        return len(frame)

    def upsert(self, table: sa.Table, row: dict) -> None:
        """Insert `row`, replacing the row with the same primary key (re-runs never duplicate)."""
        key = sa.and_(*(column == row[column.name] for column in table.primary_key.columns))
        with self.begin() as connection:
            connection.execute(table.delete().where(key))
            connection.execute(table.insert().values(**row))

    def update(self, table: sa.Table, key: dict, values: dict) -> int:
        condition = sa.and_(*(table.c[name] == value for name, value in key.items()))
        with self.begin() as connection:
            return connection.execute(table.update().where(condition).values(**values)).rowcount

    def read(self, statement: sa.Select | str, **params: object) -> pd.DataFrame:
        query = sa.text(statement) if isinstance(statement, str) else statement
        with self.engine.connect() as connection:
            return pd.read_sql(query, connection, params=params or None)

    def count(self, table: sa.Table, batch_id: str | None = None) -> int:
        query = sa.select(sa.func.count()).select_from(table)
        if batch_id is not None:
            query = query.where(table.c.batch_id == batch_id)
        with self.engine.connect() as connection:
            return int(connection.execute(query).scalar_one())

    def batch_ids(self, table: sa.Table) -> list[str]:
        query = sa.select(table.c.batch_id).distinct().order_by(table.c.batch_id)
        with self.engine.connect() as connection:
            return [row[0] for row in connection.execute(query)]

    def dispose(self) -> None:
        self.engine.dispose()


def _record_chunks(frame: pd.DataFrame, size: int) -> Iterator[list[dict]]:
    """Rows as dicts with None for missing values (what DBAPI drivers bind as NULL)."""
    columns = list(frame.columns)
    arrays = []
    for column in columns:
        values = frame[column].to_numpy(dtype=object)
        missing = frame[column].isna().to_numpy()
        if missing.any():
            values[missing] = None
        arrays.append(values)
    rows = zip(*arrays, strict=True)
    while chunk := [dict(zip(columns, row, strict=True)) for _, row in zip(range(size), rows, strict=False)]:
        yield chunk


def _copy_into(connection: Connection, table_name: str, frame: pd.DataFrame) -> None:
    """PostgreSQL COPY ... FROM STDIN on the transaction's own connection: in COPY's binary format when every
    column's values are of the type the table stores (floats, text, JSON text, booleans, integers, UTC timestamps)
    or all NULL, else as CSV written by Arrow. Binary spares the server parsing text (most of a load's time) and
    the client formatting it; both load the same values."""
    driver = connection.connection.driver_connection
    if driver is None:
        raise RuntimeError("COPY needs an open PostgreSQL connection")
    cursor = driver.cursor()
    try:
        # the table's column types as the database has them (an older warehouse may differ from this metadata)
        cursor.execute(
            "SELECT attname, format_type(atttypid, NULL) FROM pg_attribute "
            "WHERE attrelid = to_regclass(%s) AND attnum > 0 AND NOT attisdropped",
            (f'"{table_name}"',),
        )
        stored = dict(cursor.fetchall())
        quoted = ", ".join(f'"{c}"' for c in frame.columns)
        payload = _binary_copy(frame, [stored.get(c, "") for c in frame.columns])
        if payload is not None:
            cursor.copy_expert(f'COPY "{table_name}" ({quoted}) FROM STDIN WITH (FORMAT binary)', payload, _CHUNK)
        else:
            cursor.copy_expert(f'COPY "{table_name}" ({quoted}) FROM STDIN WITH (FORMAT csv)', _csv(frame), _CHUNK)
    finally:
        cursor.close()


_CHUNK = 1 << 20
"""Bytes handed to the driver per read of the COPY data (its default, 8 KiB, costs a Python call per 8 KiB)."""


def _csv(frame: pd.DataFrame) -> io.BytesIO:
    buffer = io.BytesIO()
    pa_csv.write_csv(
        pa.Table.from_pandas(frame, preserve_index=False),
        buffer,
        pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    buffer.seek(0)
    return buffer


_BINARY_HEADER = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # signature, flags, header extension length
_POSTGRES_EPOCH_US = 946_684_800_000_000  # 2000-01-01 UTC in Unix microseconds: binary timestamps count from it


def _binary_field(values: pd.Series, stored: str) -> tuple[np.ndarray, np.ndarray] | None:
    """One column in COPY binary form: each row's value length in bytes (-1: NULL) and the non-NULL values'
    bytes in row order; None when the values are not exactly of the stored type (the CSV path takes them)."""
    missing = values.isna().to_numpy()
    dtype = values.dtype
    if missing.all():  # NULL is NULL whatever the stored type (e.g. the brokers requests do not name)
        return np.full(len(values), -1), np.empty(0, np.uint8)
    if stored == "double precision" and dtype == np.float64:
        data = values.to_numpy()[~missing].astype(">f8")
    elif stored == "boolean" and dtype == np.bool_:
        data = values.to_numpy().astype(np.uint8)
    elif (
        stored == "integer"
        and pd.api.types.is_integer_dtype(dtype)
        and not isinstance(dtype, pd.api.extensions.ExtensionDtype)
    ):
        numbers = values.to_numpy()
        if len(numbers) and (numbers.min() < -(2**31) or numbers.max() >= 2**31):
            return None
        data = numbers.astype(">i4")
    elif stored == "timestamp with time zone" and isinstance(dtype, pd.DatetimeTZDtype):
        nanoseconds = values[~missing].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[ns]").view("i8")
        if (nanoseconds % 1000).any():  # finer than PostgreSQL keeps: its own rounding (CSV) decides
            return None
        data = (nanoseconds // 1000 - _POSTGRES_EPOCH_US).astype(">i8")
    elif (stored in ("text", "json") or stored.startswith("character varying")) and pd.api.types.is_object_dtype(dtype):
        # json's binary form is its text (the server checks it parses), so JSON text columns load as text do
        try:
            text = pa.array(values.to_numpy(), type=pa.large_string(), from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # not all text
            return None
        offsets = np.frombuffer(text.buffers()[1], dtype=np.int64)[: len(text) + 1]
        lengths = np.diff(offsets)
        lengths[missing] = -1
        body = text.buffers()[2]
        return lengths, np.frombuffer(body, dtype=np.uint8)[: offsets[-1]] if body is not None else np.empty(
            0, np.uint8
        )
    else:
        return None
    width = data.dtype.itemsize
    lengths = np.where(missing, -1, width) if missing.any() else np.full(len(values), width)
    return lengths, data.view(np.uint8).reshape(-1)


def _binary_copy(frame: pd.DataFrame, stored: list[str]) -> io.BytesIO | None:
    """The rows in PostgreSQL's COPY binary format (a 2-byte field count per row, then per field a 4-byte
    length and the value's bytes), assembled column by column with numpy; None if a column cannot be."""
    fields = []
    for column, kind in zip(frame.columns, stored, strict=True):
        field = _binary_field(frame[column], kind)
        if field is None:
            return None
        fields.append(field)
    rows = len(frame)
    sizes = [4 + np.maximum(lengths, 0) for lengths, _ in fields]
    row_sizes = 2 + np.sum(sizes, axis=0) if sizes else np.full(rows, 2)
    out = np.empty(len(_BINARY_HEADER) + int(row_sizes.sum()) + 2, dtype=np.uint8)
    out[: len(_BINARY_HEADER)] = np.frombuffer(_BINARY_HEADER, dtype=np.uint8)
    out[-2:] = 0xFF  # trailer: field count -1
    position = len(_BINARY_HEADER) + np.concatenate(([0], np.cumsum(row_sizes)[:-1])).astype(np.int64)
    _scatter(out, position, np.full(rows, len(fields), dtype=">i2").view(np.uint8), 2)
    position += 2
    for (lengths, data), size in zip(fields, sizes, strict=True):
        _scatter(out, position, lengths.astype(">i4").view(np.uint8), 4)
        present = lengths > 0
        counts = lengths[present]
        starts = np.concatenate(([0], np.cumsum(counts)[:-1])).astype(np.int64)
        out[np.repeat(position[present] + 4 - starts, counts) + np.arange(len(data))] = data
        position += size
    return io.BytesIO(out.data)


def _scatter(out: np.ndarray, positions: np.ndarray, data: np.ndarray, width: int) -> None:
    """Write `width` bytes of `data` per row at each of `positions`."""
    out[positions[:, None] + np.arange(width)] = data.reshape(-1, width)
