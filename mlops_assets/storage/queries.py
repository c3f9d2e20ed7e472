"""The warehouse reads the pipeline needs, in one place (SQLAlchemy expressions: parameterised)."""

from __future__ import annotations

from typing import Protocol

import pandas as pd
import sqlalchemy as sa

from mlops_assets.storage.warehouse import batch_window, clean_listings, drift_reports, model_history


class Reader(Protocol):
    """Anything that reads a SELECT into a DataFrame: the warehouse, or the viewer's read-only history."""

    engine: sa.Engine

    def read(self, statement: sa.Select) -> pd.DataFrame: ...


def clean_batch(db: Reader, batch_id: str) -> pd.DataFrame:
    return db.read(clean_listings.select().where(clean_listings.c.batch_id == batch_id))


def clean_through(
    db: Reader, batch_id: str, columns: list[str] | None = None, since: str | None = None
) -> pd.DataFrame:
    """All clean rows of batches from `since` (None: the first) up to and including `batch_id`; a listing
    seen in several of them counts once (its latest copy)."""
    selected: list[sa.ColumnElement | sa.Table] = (
        [clean_listings.c[c] for c in columns] if columns else [clean_listings]
    )
    window = batch_window(clean_listings.c.batch_id, batch_id, since)
    frame = db.read(sa.select(*selected).where(window).order_by(clean_listings.c.batch_id))
    if "listing_id" in frame.columns:
        frame = frame.drop_duplicates(subset=["listing_id"], keep="last").reset_index(drop=True)
    return frame


def window_start(db: Reader, batch_id: str, max_rows: int) -> str:
    """The first batch of the training window that ends at `batch_id`: the most recent batches whose clean
    rows add up to at most `max_rows` (always `batch_id` itself), so a training's cost stops growing with
    history. One GROUP BY over the batch index; no listing row leaves the database."""
    counts = (
        sa.select(clean_listings.c.batch_id, sa.func.count().label("rows"))
        .where(clean_listings.c.batch_id <= batch_id)
        .group_by(clean_listings.c.batch_id)
        .order_by(clean_listings.c.batch_id.desc())
    )
    with db.engine.connect() as connection:
        batches = connection.execute(counts).all()
    start, total = batch_id, 0
    for batch, rows in batches:
        total += int(rows)
        if total > max_rows and batch != batch_id:
            break
        start = batch
    return start


def latest_drift_report(db: Reader, batch_id: str) -> dict | None:
    query = (
        sa.select(drift_reports)
        .where(drift_reports.c.batch_id == batch_id)
        .order_by(drift_reports.c.created_at.desc())
        .limit(1)
    )
    with db.engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def model_row(db: Reader, model_name: str, version: str | int) -> dict | None:
    query = sa.select(model_history).where(
        model_history.c.model_name == model_name, model_history.c.model_version == int(version)
    )
    with db.engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def candidate_for(db: Reader, model_name: str, batch_id: str, dagster_run_id: str) -> dict | None:
    """The candidate trained in this run, else the newest one trained for this batch."""
    query = (
        sa.select(model_history)
        .where(model_history.c.model_name == model_name, model_history.c.batch_id == batch_id)
        .order_by((model_history.c.dagster_run_id == dagster_run_id).desc(), model_history.c.model_version.desc())
        .limit(1)
    )
    with db.engine.connect() as connection:
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None
