"""Asset jobs. One run handles one batch partition."""

from __future__ import annotations

from dagster import AssetSelection, define_asset_job

from mlops_assets.core.contracts import Tag, Trigger

#: Ingest a batch: load and clean it, score it with the champion, join its sales to earlier scores and judge
#: the champion on them (outcomes), then judge its drift.
INGEST = AssetSelection.assets(
    "raw_listings", "clean_listings", "listing_scores", "sale_outcomes", "live_performance", "drift_report"
)
TRAIN = AssetSelection.assets("candidate_model", "champion_model")

ingest_job = define_asset_job(
    "ingest_job",
    selection=INGEST,
    description="Fetch one batch, load RAW DATA and CLEAN DATA, score it with the champion, match its sales to earlier "
    "scores (live quality, rollback), and judge its drift. Never trains: "
    "the drift sensor decides that from the drift report.",
)

train_job = define_asset_job(
    "train_job",
    selection=TRAIN,
    description=(
        "Train a candidate on the clean data of the training window ending at the batch and decide its promotion. "
        "Always trains."
    ),
)

mlops_pipeline = define_asset_job(
    "mlops_pipeline",
    selection=INGEST | TRAIN,
    description="The whole loop for one batch, like the original Airflow DAG: ingest -> drift check -> "
    "(drift) train -> (promoted) reload -> end. Without drift, training is skipped in the run.",
    config={"ops": {"candidate_model": {"config": {"mode": "if_drift"}}}},
    # every run of this job says so: its drift report is answered in the run, not by the drift sensor
    tags={Tag.TRIGGER: Trigger.PIPELINE.value},
)
