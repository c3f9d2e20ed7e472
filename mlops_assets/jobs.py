"""Asset jobs: what runs together for one batch."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from mlops_assets.partitions import batch_partitions

ingest_job = define_asset_job(
    "ingest_job",
    selection=AssetSelection.assets("raw_listings", "clean_listings"),
    partitions_def=batch_partitions,
    description="Fetch one batch from the source, load RAW DATA and CLEAN DATA. Never trains.",
)
