"""Dagster resources: thin, configurable handles on the warehouse, object store and batch source.

Each wraps a plain class from `storage/` or `sources/`, so the same code runs outside Dagster
(serving, the dashboard, tests). Sources come in a local and a remote implementation.
"""

from __future__ import annotations

from functools import cache

from dagster import ConfigurableResource

from mlops_assets.settings import Settings
from mlops_assets.sources.batch_source import BatchSource, HttpBatchSource, SimulatorSource
from mlops_assets.sources.client import BatchApiClient
from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.storage.object_store import ObjectStore
from mlops_assets.storage.warehouse import Warehouse


@cache
def _warehouse(url: str) -> Warehouse:
    warehouse = Warehouse(url)
    warehouse.create_tables()
    return warehouse


class WarehouseResource(ConfigurableResource):
    """The SQL warehouse: `sqlite:///...` (default) or `postgresql://...`."""

    url: str

    def get(self) -> Warehouse:
        return _warehouse(self.url)


class ObjectStoreResource(ConfigurableResource):
    """Parquet copies and reports: `file:///...` (default) or `s3://bucket/prefix`."""

    url: str

    def get(self) -> ObjectStore:
        return ObjectStore(self.url)


class BatchSourceResource(ConfigurableResource):
    """Where raw batches come from; see the local and remote implementations below."""

    def get_source(self) -> BatchSource:
        raise NotImplementedError

    @property
    def source_name(self) -> str:
        raise NotImplementedError


class SimulatorSourceResource(BatchSourceResource):
    """Local: the built-in listings generator, in process (no server needed)."""

    seed: int = 42
    batches: int = 8
    min_rows: int = 4_000
    max_rows: int = 30_000

    def get_source(self) -> BatchSource:
        return SimulatorSource(ListingGenerator(self.seed, self.batches, self.min_rows, self.max_rows))

    @property
    def source_name(self) -> str:
        return "simulator"


class BatchApiSourceResource(BatchSourceResource):
    """Remote: the batch data API over HTTP (the original system's, or the simulator's)."""

    url: str
    group_number: int = 1
    day: str = "Tuesday"
    read_timeout_seconds: float = 120.0
    retries: int = 4

    def get_source(self) -> BatchSource:
        client = BatchApiClient(
            self.url,
            self.group_number,
            self.day,
            read_timeout=self.read_timeout_seconds,
            retries=self.retries,
        )
        return HttpBatchSource(client)

    @property
    def source_name(self) -> str:
        return "api"


def build_resources(settings: Settings) -> dict[str, ConfigurableResource]:
    """The resources for a deployment, chosen by the settings' URLs."""
    if settings.source_url:
        source: BatchSourceResource = BatchApiSourceResource(
            url=settings.source_url, group_number=settings.source_group, day=settings.source_day
        )
    else:
        source = SimulatorSourceResource(
            seed=settings.simulator_seed,
            batches=settings.simulator_batches,
            min_rows=settings.simulator_min_rows,
            max_rows=settings.simulator_max_rows,
        )
    return {
        "source": source,
        "warehouse": WarehouseResource(url=settings.database_url),
        "object_store": ObjectStoreResource(url=settings.storage_url),
    }
