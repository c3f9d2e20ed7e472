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

import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv
import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

metadata = sa.MetaData()


def _listing_columns() -> list[sa.Column]:
    return [
        sa.Column("brokered_by", sa.Float),
        sa.Column("status", sa.String(32)),
        sa.Column("price", sa.Float),
        sa.Column("bed", sa.Float),
        sa.Column("bath", sa.Float),
        sa.Column("acre_lot", sa.Float),
        sa.Column("street", sa.Float),
        sa.Column("city", sa.String(128)),
        sa.Column("state", sa.String(64)),
        sa.Column("house_size", sa.Float),
        sa.Column("prev_sold_date", sa.String(32)),
    ]


raw_listings = sa.Table(
    "raw_listings",
    metadata,
    sa.Column("batch_id", sa.String(32), nullable=False, index=True),
    sa.Column("source", sa.String(32), nullable=False),
    sa.Column("ingested_at", sa.DateTime(timezone=True), nullable=False),
    *_listing_columns(),
    sa.Column("zip_code", sa.Float),
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
)


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
        metadata.create_all(self.engine)

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
    """PostgreSQL COPY ... FROM STDIN (CSV written by Arrow), on the transaction's own connection."""
    buffer = io.BytesIO()
    pa_csv.write_csv(
        pa.Table.from_pandas(frame, preserve_index=False),
        buffer,
        pa_csv.WriteOptions(include_header=False, quoting_style="needed"),
    )
    buffer.seek(0)
    quoted = ", ".join(f'"{c}"' for c in frame.columns)
    cursor = connection.connection.driver_connection.cursor()
    try:
        cursor.copy_expert(f'COPY "{table_name}" ({quoted}) FROM STDIN WITH (FORMAT csv)', buffer)
    finally:
        cursor.close()
