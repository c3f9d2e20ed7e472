"""Rows/s of a raw batch load (the replace-batch path of raw_listings) into SQLite and PostgreSQL.

python benchmarks/bench_warehouse_load.py [--rows 200000] [--postgres postgresql://...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from datetime import UTC, datetime

import sqlalchemy as sa

from mlops_assets.core.schema import coerce_raw
from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.storage import warehouse as tables
from mlops_assets.storage.warehouse import Warehouse


def raw_batch(rows: int):
    frame = coerce_raw(ListingGenerator(seed=1, batches=1, min_rows=rows, max_rows=rows).batch(1))
    frame.insert(0, "batch_id", "00001")
    frame.insert(1, "source", "bench")
    frame.insert(2, "ingested_at", datetime.now(UTC))
    return frame


def measure(url: str, frame, repeats: int = 3) -> float:
    db = Warehouse(url)
    db.create_tables()
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        db.replace_batch(tables.raw_listings, "00001", frame)
        best = min(best, time.perf_counter() - started)
    loaded = db.count(tables.raw_listings)
    if loaded != len(frame):  # a benchmark of a load that lost rows measures nothing
        raise RuntimeError(f"loaded {loaded:,} rows of {len(frame):,}")
    db.dispose()
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    frame = raw_batch(args.rows)
    with tempfile.TemporaryDirectory() as tmp:
        seconds = measure(f"sqlite:///{tmp}/bench.db", frame)
    print(f"sqlite     {len(frame):>7} rows  {seconds:6.2f} s  {len(frame) / seconds:>9,.0f} rows/s")
    name = f"bench_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(args.postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    try:
        seconds = measure(args.postgres.rsplit("/", 1)[0] + f"/{name}", frame)
        print(f"postgresql {len(frame):>7} rows  {seconds:6.2f} s  {len(frame) / seconds:>9,.0f} rows/s")
    finally:
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE "{name}"'))


if __name__ == "__main__":
    main()
