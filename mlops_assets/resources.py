"""Dagster resources: thin, configurable handles on the platform's systems and policies.

Each wraps a plain class from `storage/`, `sources/` or `ml/`, so the same code runs outside Dagster
(serving, the dashboard, tests). Sources come in a local and a remote implementation; the warehouse,
object store and MLflow are chosen by URL.

MLflow: dagster-mlflow's `mlflow_tracking` is a legacy function resource built on MLflow's global
state, whose runs stay open without its job hook. `MlflowResource` is a small ConfigurableResource
instead: typed config, one `with mlflow.start_run()` per training, the registry through MlflowClient.
"""

from __future__ import annotations

from functools import cache

import requests
from dagster import ConfigurableResource

from mlops_assets.core.links import Links
from mlops_assets.core.live_quality import LiveQualityRule
from mlops_assets.core.promotion import Gate
from mlops_assets.ml.drift import DriftRule
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.ml.training import TuningConfig, training_seed
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
    endpoint_url: str | None = None
    """The S3 endpoint of a non-AWS store (SeaweedFS, MinIO); None: AWS, or the environment's."""

    def get(self) -> ObjectStore:
        return ObjectStore(self.url, self.endpoint_url)


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


class MlflowResource(ConfigurableResource):
    """MLflow tracking and registry: a local SQLite store by default, or an MLflow server URL."""

    tracking_uri: str
    experiment: str = "house-price"
    artifact_location: str | None = None
    model_name: str = "house-price"
    alias: str = "champion"

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.tracking_uri, self.model_name, self.alias)

    ui_url: str | None = None
    dagster_url: str | None = None
    viewer_url: str | None = None

    def links(self) -> Links:
        """Links into the MLflow UI, the Dagster UI and the viewer (MLOPS_MLFLOW_URL, MLOPS_DAGSTER_URL,
        MLOPS_VIEWER_URL; unset: the tracking server when it is one, else the local defaults)."""
        server = self.tracking_uri if self.tracking_uri.startswith("http") else None
        return Links.of(self.dagster_url, self.ui_url or server, self.viewer_url)


class DriftRuleResource(ConfigurableResource):
    """The drift rule's statistics and thresholds (see `mlops_assets.ml.drift`).

    `require_importance` (off by default): a drifted column counts only when the features derived from it
    carry at least `min_importance_share` of the champion's mean |SHAP|; the report shows its decision either way."""

    numeric_method: str = DriftRule.numeric_method
    numeric_threshold: float = DriftRule.numeric_threshold
    categorical_method: str = DriftRule.categorical_method
    categorical_threshold: float = DriftRule.categorical_threshold
    min_drifted_columns: int = DriftRule.min_drifted_columns
    min_category_share: float = DriftRule.min_category_share
    sample_rows: int = DriftRule.sample_rows
    require_importance: bool = DriftRule.require_importance
    min_importance_share: float = DriftRule.min_importance_share

    def rule(self) -> DriftRule:
        return DriftRule(**self.model_dump())


class TrainingResource(ConfigurableResource):
    """How candidates are tuned: Optuna trials, CV folds, the holdout share, the training window, threads.

    `seed` is the base seed: each training searches with `training_seed(seed, batch_id)` - the same batch the
    same search, another batch other configurations."""

    n_trials: int = TuningConfig.n_trials
    cv_folds: int = TuningConfig.cv_folds
    holdout_fraction: float = 0.2
    #: a training reads the most recent batches with at most this many clean rows (`queries.window_start`)
    window_rows: int = 1_000_000
    seed: int = TuningConfig.seed
    nthread: int = TuningConfig.nthread

    def tuning(self, n_trials: int | None = None, batch_id: str | None = None) -> TuningConfig:
        return TuningConfig(
            n_trials=n_trials or self.n_trials,
            cv_folds=self.cv_folds,
            seed=training_seed(self.seed, batch_id) if batch_id else self.seed,
            nthread=self.nthread,
        )


class PromotionGateResource(ConfigurableResource):
    """When a candidate may become the champion (see `mlops_assets.core.promotion`).

    mode 'relative' (default): beat the naive baseline by `min_gain_over_baseline` on `metric` and
    do not be worse than the champion; mode 'absolute': the original R2 / RMSE thresholds."""

    mode: str = Gate.mode
    metric: str = Gate.metric
    min_gain_over_baseline: float = Gate.min_gain_over_baseline
    max_increase: float = Gate.max_increase
    min_r2: float = Gate.min_r2
    max_rmse: float = Gate.max_rmse
    max_cod: float | None = None
    min_prd: float | None = None
    max_prd: float | None = None
    max_abs_prb: float | None = None

    def gate(self) -> Gate:
        return Gate(**self.model_dump())


class LiveQualityResource(ConfigurableResource):
    """When the champion's live error on matched sales is clearly worse than its holdout error or its
    predecessor's, and what to do then (see `mlops_assets.core.live_quality` for the defaults' reasons).

    policy 'off': figures only; 'alert' (default): the check `champion_live_quality` fails; 'auto': it fails
    and the alias moves back to the previous champion."""

    policy: str = LiveQualityRule.policy
    metric: str = LiveQualityRule.metric
    min_sales: int = LiveQualityRule.min_sales
    max_increase_over_holdout: float = LiveQualityRule.max_increase_over_holdout
    max_increase_over_previous: float = LiveQualityRule.max_increase_over_previous

    def rule(self) -> LiveQualityRule:
        return LiveQualityRule(**self.model_dump())


class ServingResource(ConfigurableResource):
    """The serving API, told to reload after a promotion (it also follows the alias by itself)."""

    url: str | None = None
    admin_token: str | None = None
    timeout_seconds: float = 10.0

    def notify_reload(self) -> str:
        """POST /reload; raises with a readable message when it does not answer 200."""
        if not self.url:
            raise RuntimeError("no serving URL configured (MLOPS_SERVING_URL)")
        headers = {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}
        response = requests.post(f"{self.url}/reload", headers=headers, timeout=self.timeout_seconds)
        if response.status_code != 200:
            raise RuntimeError(f"POST {self.url}/reload answered {response.status_code}: {response.text[:200]}")
        return response.text


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
        "object_store": ObjectStoreResource(url=settings.storage_url, endpoint_url=settings.s3_endpoint_url),
        "mlflow": MlflowResource(
            tracking_uri=settings.mlflow_tracking_uri,
            artifact_location=settings.mlflow_artifact_location,
            model_name=settings.model_name,
            alias=settings.model_alias,
            ui_url=settings.mlflow_url,
            dagster_url=settings.dagster_url,
            viewer_url=settings.viewer_url,
        ),
        "drift_rule": DriftRuleResource(),
        "training": TrainingResource(n_trials=settings.train_trials, window_rows=settings.train_window_rows),
        "promotion_gate": PromotionGateResource(mode=settings.gate_mode),
        "live_quality": LiveQualityResource(policy=settings.rollback_policy),
        "serving": ServingResource(url=settings.serving_url, admin_token=settings.admin_token),
    }
