"""The raw -> clean layer: one materialization per source batch, with blocking checks.

Nothing from a bad batch reaches the warehouse: schema and range checks run on the frame before
any write, and a failed check fails the step with the reasons. What arrived is still kept as a
parquet copy in object storage, so nothing is lost and a re-run replays it without a new fetch.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetObservation,
    AssetSpec,
    Config,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
    multi_asset,
)

from mlops_assets.core.cleaning import check_clean_ranges
from mlops_assets.core.cleaning import clean_listings as clean
from mlops_assets.core.contracts import Meta
from mlops_assets.core.properties import property_keys
from mlops_assets.core.schema import coerce_raw, validate_raw
from mlops_assets.partitions import batch_number, batch_partitions
from mlops_assets.resources import BatchSourceResource, ObjectStoreResource, WarehouseResource
from mlops_assets.storage import warehouse as tables

RAW_CHECKS = ("schema_and_types", "non_empty")
CHECK_DESCRIPTIONS = {
    "schema_and_types": "Every expected column is present and its values parse as its type (e.g. a numeric price). "
    "Blocking: a bad batch is kept in object storage but never written to the warehouse.",
    "non_empty": "The batch has at least one row. Blocking.",
    "value_ranges": "After cleaning, every row lies within the fixed ranges (price, bed, bath, house size, lot), "
    "has its required values, a unique listing id and a normalised state. "
    "Blocking: nothing out of range reaches the warehouse.",
}


def raw_copy_key(batch_id: str) -> str:
    return f"raw/batch_id={batch_id}.parquet"


def clean_copy_key(batch_id: str) -> str:
    return f"clean/batch_id={batch_id}.parquet"


class RawListingsConfig(Config):
    refetch: bool = False
    """Ask the source again even though a copy of this batch is stored (normally a re-run
    replays the stored copy, so it loads exactly the same rows)."""


def _raw_check_failures(frame: pd.DataFrame) -> dict[str, str]:
    """The failing raw checks, each with its reasons."""
    problems = validate_raw(frame)
    found = {
        "schema_and_types": [p for p in problems if p.column != "<batch>"],
        "non_empty": [p for p in problems if p.column == "<batch>"],
    }
    return {check: "; ".join(map(str, reasons)) for check, reasons in found.items() if reasons}


def _failed_checks(asset_key: str, failures: dict[str, str]) -> Iterator[AssetCheckResult]:
    for name, description in failures.items():
        yield AssetCheckResult(
            asset_key=asset_key,
            check_name=name,
            passed=False,
            severity=AssetCheckSeverity.ERROR,
            description=description,
        )


# A multi_asset of one spec so that, once the source is exhausted, the step can end without a
# materialization and without check results (can_subset makes all of its outputs optional).
@multi_asset(
    specs=[
        AssetSpec(
            "raw_listings",
            description="RAW DATA: one source batch as it arrived.",
            kinds={"sql", "parquet"},
            skippable=True,
        )
    ],
    check_specs=[
        AssetCheckSpec(n, asset="raw_listings", blocking=True, description=CHECK_DESCRIPTIONS[n]) for n in RAW_CHECKS
    ],
    partitions_def=batch_partitions,
    group_name="ingestion",
    can_subset=True,
)
def raw_listings(
    context: AssetExecutionContext,
    config: RawListingsConfig,
    source: BatchSourceResource,
    warehouse: WarehouseResource,
    object_store: ObjectStoreResource,
) -> Iterator:
    """RAW DATA: one source batch as it arrived, loaded into `raw_listings` (replacing any
    earlier load of the same batch). Materializes nothing once the source is exhausted."""
    batch_id = context.partition_key
    store = object_store.get()
    key = raw_copy_key(batch_id)
    if store.exists(key) and not config.refetch:
        frame = store.read_parquet(key)
        origin = "stored copy (re-run, no new fetch)"
    else:
        frame = source.get_source().fetch(batch_number(batch_id), rewind=config.refetch)
        if frame is None:
            context.log.info(f"source exhausted: it has no batch {batch_id}; nothing to load")
            yield AssetObservation(
                asset_key="raw_listings",
                partition=batch_id,
                metadata={Meta.SOURCE_EXHAUSTED: True},
            )
            return
        store.write_parquet(key, frame)
        origin = source.source_name

    failures = _raw_check_failures(frame)
    if failures:
        yield from _failed_checks("raw_listings", failures)
        raise Failure(
            description=f"batch {batch_id} was not loaded: " + "; ".join(failures.values()),
            metadata={"stored_copy": store.uri(key)},
        )

    raw = coerce_raw(frame)
    raw["property_key"] = property_keys(raw)
    raw.insert(0, "batch_id", batch_id)
    raw.insert(1, "source", source.source_name)
    raw.insert(2, "ingested_at", datetime.now(UTC))
    rows = warehouse.get().replace_batch(tables.raw_listings, batch_id, raw)
    missing = {c: int(v) for c, v in frame.isna().sum().items()}
    yield MaterializeResult(
        metadata={
            "batch_number": batch_number(batch_id),
            "rows": rows,
            "origin": origin,
            "missing_values": MetadataValue.json(missing),
            "stored_copy": MetadataValue.path(store.uri(key)),
            "dagster/row_count": rows,
        },
        check_results=[
            AssetCheckResult(check_name="schema_and_types", passed=True, description="12 columns, types ok"),
            AssetCheckResult(check_name="non_empty", passed=True, metadata={"rows": rows}),
        ],
    )


@asset(
    partitions_def=batch_partitions,
    group_name="ingestion",
    kinds={"sql", "parquet"},
    deps=[raw_listings],
    check_specs=[
        AssetCheckSpec(
            "value_ranges", asset="clean_listings", blocking=True, description=CHECK_DESCRIPTIONS["value_ranges"]
        )
    ],
)
def clean_listings(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    object_store: ObjectStoreResource,
) -> Iterator:
    """CLEAN DATA: the batch after the cleaning rules of `core.cleaning`, in `clean_listings`.

    The parquet copy is written before the warehouse rows: if object storage fails, the
    warehouse is left as it was; if the load fails after it, a re-run overwrites the copy."""
    batch_id = context.partition_key
    db = warehouse.get()
    raw = db.read(tables.raw_listings.select().where(tables.raw_listings.c.batch_id == batch_id))
    if raw.empty:
        raise Failure(description=f"batch {batch_id} has no raw rows: materialize raw_listings first")
    result = clean(raw)
    problems = check_clean_ranges(result.frame)
    if problems:
        yield from _failed_checks("clean_listings", {"value_ranges": "; ".join(problems)})
        raise Failure(description=f"cleaned batch {batch_id} breaks the contract: {'; '.join(problems)}")
    out = result.frame.copy()
    out.insert(0, "batch_id", batch_id)
    out.insert(2, "cleaned_at", datetime.now(UTC))
    uri = object_store.get().write_parquet(clean_copy_key(batch_id), out)
    rows = db.replace_batch(tables.clean_listings, batch_id, out)
    dropped = pd.DataFrame({"rule": list(result.dropped), "rows dropped": list(result.dropped.values())})
    context.log.info(f"batch {batch_id}: {result.rows_in} rows in, {rows} out; dropped {result.dropped}")
    yield MaterializeResult(
        metadata={
            "rows_in": result.rows_in,
            "rows_out": rows,
            "rows_dropped": result.rows_in - rows,
            "dropped_by_rule": MetadataValue.md(dropped.to_markdown(index=False)),
            "acre_lot_imputed_later": result.flagged["acre_lot_missing"],
            "stored_copy": MetadataValue.path(uri),
            "dagster/row_count": rows,
        },
        check_results=[
            AssetCheckResult(check_name="value_ranges", passed=True, description="all rows within the fixed ranges")
        ],
    )
