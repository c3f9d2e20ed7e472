"""The Dagster code location: assets, jobs, sensors and resources, wired from the settings."""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.assets.outcomes import listing_scores, live_performance, sale_outcomes
from mlops_assets.jobs import ingest_job, mlops_pipeline, train_job
from mlops_assets.manual_promotion import promote_manually
from mlops_assets.resources import build_resources
from mlops_assets.sensors import drift_sensor, ingestion_sensor
from mlops_assets.settings import Settings


def build_definitions(settings: Settings) -> Definitions:
    return Definitions(
        assets=[
            raw_listings,
            clean_listings,
            listing_scores,
            sale_outcomes,
            live_performance,
            drift_report,
            candidate_model,
            champion_model,
        ],
        jobs=[ingest_job, train_job, mlops_pipeline, promote_manually],
        sensors=[ingestion_sensor, drift_sensor],
        resources=build_resources(settings),
        # The steps of every job depend on each other in a chain: a process per step (the default
        # multiprocess executor) only adds an interpreter start and the imports, ~15 s a step here.
        # Each run still gets its own process (its own pod under the K8sRunLauncher).
        executor=in_process_executor,
    )


defs = build_definitions(Settings.from_env())
