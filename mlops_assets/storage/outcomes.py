"""Sales joined to earlier predictions: the warehouse side of live quality (see assets/outcomes.py).

A batch's `sold` rows are matched by property key (core/properties.py) to every earlier score of the same
property - batch scores of earlier batches (`listing_scores`) and serving's predictions logged before the
batch arrived (`inference_log` rows whose request named the property). Per sale and model version only the
latest score counts, so a property scored several times counts once per model version.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import numpy as np
import pandas as pd
import sqlalchemy as sa

from mlops_assets.core.live_quality import VersionFigures, live_errors
from mlops_assets.core.ratio_study import MIN_SALES_PER_STATE
from mlops_assets.storage.warehouse import (
    Warehouse,
    clean_listings,
    inference_log,
    listing_scores,
    model_history,
    raw_listings,
    sale_outcomes,
)

#: Property keys per IN (...) list: well under SQLite's and PostgreSQL's bound-parameter limits.
_CHUNK = 5_000

OUTCOME_COLUMNS = [c.name for c in sale_outcomes.columns if c.name != "matched_at"]


def _chunks(values: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def sold_rows(db: Warehouse, batch_id: str) -> pd.DataFrame:
    query = sa.select(
        clean_listings.c.listing_id, clean_listings.c.property_key, clean_listings.c.state, clean_listings.c.price
    ).where(clean_listings.c.batch_id == batch_id, clean_listings.c.status == "sold")
    return db.read(query)


def arrival_time(db: Warehouse, batch_id: str) -> datetime | None:
    """When the batch's raw rows were loaded: serving's predictions before it count as earlier scores."""
    with db.engine.connect() as connection:
        value = connection.execute(
            sa.select(sa.func.min(raw_listings.c.ingested_at)).where(raw_listings.c.batch_id == batch_id)
        ).scalar_one_or_none()
    if isinstance(value, str):  # SQLite returns text from an aggregate
        value = pd.Timestamp(value).to_pydatetime()
    return value


def earlier_scores(db: Warehouse, batch_id: str, model_name: str, keys: list[str]) -> pd.DataFrame:
    """Every score of these properties made before batch `batch_id`: batch scores of earlier batches and
    serving's logged predictions before the batch arrived. Columns: property_key, model_version,
    predicted_price, score_source, scored_batch_id, score_request_id, scored_at."""
    frames = []
    arrived = arrival_time(db, batch_id)
    for chunk in _chunks(keys):
        batch = sa.select(
            listing_scores.c.property_key,
            listing_scores.c.model_version,
            listing_scores.c.predicted_price,
            sa.literal("batch").label("score_source"),
            listing_scores.c.batch_id.label("scored_batch_id"),
            sa.null().label("score_request_id"),
            listing_scores.c.scored_at,
        ).where(
            listing_scores.c.property_key.in_(chunk),
            listing_scores.c.batch_id < batch_id,
            listing_scores.c.model_name == model_name,
        )
        frames.append(db.read(batch))
        if arrived is not None:
            served = sa.select(
                inference_log.c.property_key,
                inference_log.c.model_version,
                inference_log.c.price.label("predicted_price"),
                sa.literal("serving").label("score_source"),
                sa.null().label("scored_batch_id"),
                inference_log.c.request_id.label("score_request_id"),
                inference_log.c.created_at.label("scored_at"),
            ).where(
                inference_log.c.property_key.in_(chunk),
                inference_log.c.created_at < arrived,
                inference_log.c.model_name == model_name,
            )
            frames.append(db.read(served))
    frames = [f for f in frames if not f.empty]
    if not frames:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    scores = pd.concat(frames, ignore_index=True)
    scores["scored_at"] = pd.to_datetime(scores["scored_at"], utc=True, format="mixed")
    scores["model_version"] = scores["model_version"].astype(str)
    return scores


def match_sales(db: Warehouse, batch_id: str, model_name: str, sold: pd.DataFrame | None = None) -> pd.DataFrame:
    """The batch's sales (`sold`, when already read) joined to the latest earlier score of the same property
    by each model version."""
    sold = sold_rows(db, batch_id) if sold is None else sold
    sold = sold[sold["property_key"].notna()]
    if sold.empty:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    scores = earlier_scores(db, batch_id, model_name, sorted(set(sold["property_key"])))
    if scores.empty:
        return pd.DataFrame(columns=OUTCOME_COLUMNS)
    matched = sold.rename(columns={"listing_id": "sold_listing_id", "price": "sold_price"}).merge(
        scores, on="property_key"
    )
    matched = matched.sort_values(["sold_listing_id", "model_version", "scored_at", "score_source"])
    matched = matched.drop_duplicates(["sold_listing_id", "model_version"], keep="last")
    matched.insert(0, "batch_id", batch_id)
    matched["model_name"] = model_name
    return matched[OUTCOME_COLUMNS].reset_index(drop=True)


def performance_rows(outcomes: pd.DataFrame, min_state_sales: int = MIN_SALES_PER_STATE) -> pd.DataFrame:
    """Per model version: its figures over all matched sales (scope 'all') and per state with enough."""
    rows = []
    for version, group in outcomes.groupby("model_version", sort=True):
        scopes = [("all", group)] + [
            (str(state), part) for state, part in group.groupby("state", sort=True) if len(part) >= min_state_sales
        ]
        for scope, part in scopes:
            figures = live_errors(part["predicted_price"].to_numpy(), part["sold_price"].to_numpy())
            rows.append({"model_version": str(version), "scope": scope, **figures})
    columns = ["model_version", "scope", "sales", "mae", "mape", "median_ape", "median_ratio", "cod", "prd", "prb"]
    return pd.DataFrame(rows, columns=columns)


def version_outcomes(
    db: Warehouse, model_name: str, version: str, through: str | None = None, batches: list[str] | None = None
) -> pd.DataFrame:
    """A version's matched sales in sale batches up to `through` (all, when None; only `batches`, when given)."""
    query = sa.select(sale_outcomes.c.batch_id, sale_outcomes.c.predicted_price, sale_outcomes.c.sold_price).where(
        sale_outcomes.c.model_name == model_name, sale_outcomes.c.model_version == str(version)
    )
    if through is not None:
        query = query.where(sale_outcomes.c.batch_id <= through)
    if batches is not None:
        query = query.where(sale_outcomes.c.batch_id.in_(batches))
    return db.read(query)


def figures(outcomes: pd.DataFrame, version: str, metric: str) -> VersionFigures:
    if outcomes.empty:
        return VersionFigures(str(version), 0, None)
    errors = live_errors(outcomes["predicted_price"].to_numpy(), outcomes["sold_price"].to_numpy())
    return VersionFigures(str(version), len(outcomes), float(errors[metric]))


def previous_champion(db: Warehouse, model_name: str, version: str) -> str | None:
    """The version promoted before `version` (by decision time) that still stands: not rolled back."""
    with db.engine.connect() as connection:
        current = connection.execute(
            sa.select(model_history.c.decided_at).where(
                model_history.c.model_name == model_name, model_history.c.model_version == int(version)
            )
        ).scalar_one_or_none()
        if current is None:
            return None
        earlier = connection.execute(
            sa.select(model_history.c.model_version)
            .where(
                model_history.c.model_name == model_name,
                model_history.c.verdict == "promoted",
                model_history.c.decided_at < current,
                model_history.c.model_version != int(version),
            )
            .order_by(model_history.c.decided_at.desc())
            .limit(1)
        ).scalar_one_or_none()
    return str(earlier) if earlier is not None else None


def live_summary(db: Warehouse, model_name: str, version: str) -> dict | None:
    """A version's live figures over all its matched sales so far (what serving's /model reports)."""
    outcomes = version_outcomes(db, model_name, version)
    if outcomes.empty:
        return None
    errors = live_errors(outcomes["predicted_price"].to_numpy(), outcomes["sold_price"].to_numpy())
    errors["batches"] = int(np.unique(outcomes["batch_id"]).size)
    errors["last_batch"] = str(outcomes["batch_id"].max())
    return errors
