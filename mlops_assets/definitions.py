"""The Dagster code location: assets, checks, jobs, sensors and resources, wired from settings."""

from __future__ import annotations

from dagster import Definitions, load_assets_from_modules

from mlops_assets.assets import listings
from mlops_assets.jobs import ingest_job
from mlops_assets.resources import build_resources
from mlops_assets.sensors import ingestion_sensor
from mlops_assets.settings import Settings

defs = Definitions(
    assets=load_assets_from_modules([listings]),
    jobs=[ingest_job],
    sensors=[ingestion_sensor],
    resources=build_resources(Settings.from_env()),
)
