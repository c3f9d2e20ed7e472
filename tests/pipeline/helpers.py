"""Running the asset graph in process against a real Dagster instance."""

from __future__ import annotations

from collections.abc import Sequence

from dagster import AssetsDefinition, DagsterInstance, ExecuteInProcessResult, materialize

from mlops_assets.partitions import batch_partitions
from mlops_assets.resources import build_resources
from mlops_assets.settings import Settings


def run_batch(
    instance: DagsterInstance,
    settings: Settings,
    assets: Sequence[AssetsDefinition],
    key: str,
    raise_on_error: bool = True,
    run_config: dict | None = None,
    tags: dict | None = None,
    resources: dict | None = None,
) -> ExecuteInProcessResult:
    if not instance.has_dynamic_partition(batch_partitions.name, key):
        instance.add_dynamic_partitions(batch_partitions.name, [key])
    return materialize(
        assets,
        partition_key=key,
        instance=instance,
        resources={**build_resources(settings), **(resources or {})},
        raise_on_error=raise_on_error,
        run_config=run_config,
        tags=tags,
    )
