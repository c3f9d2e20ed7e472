"""The MLflow model registry: which version holds the alias, loading a version, moving the alias.

Loading never unpickles: the booster is read from XGBoost's own UBJ file and the feature state
from the JSON metadata in the model's MLmodel file. Only MLflow's client API is used, so serving
(mlflow-skinny) imports this too.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field

import xgboost as xgb

from mlops_assets.core.features import FeatureState

FEATURE_STATE_KEY = "feature_state"


@dataclass
class LoadedModel:
    name: str
    version: str
    run_id: str | None
    booster: xgb.Booster = field(repr=False)
    feature_state: FeatureState = field(repr=False)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    created_at_ms: int | None = None


def configure_tracking(tracking_uri: str) -> None:
    """One tracking URI per process, also used as the registry URI."""
    import mlflow

    if mlflow.get_tracking_uri() != tracking_uri:
        mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(tracking_uri)


class ModelRegistry:
    def __init__(self, tracking_uri: str, model_name: str, alias: str = "champion") -> None:
        from mlflow import MlflowClient

        configure_tracking(tracking_uri)
        self.tracking_uri = tracking_uri
        self.model_name = model_name
        self.alias = alias
        self.client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)

    def alias_version(self) -> str | None:
        """The version holding the alias; None if the model or the alias does not exist yet."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_model_version_by_alias(self.model_name, self.alias).version)
        except MlflowException as error:
            if error.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
                return None
            raise

    def load(self, version: str) -> LoadedModel:
        """Download version `version` and read its booster and feature state."""
        import mlflow
        from mlflow.models import Model

        model_version = self.client.get_model_version(self.model_name, str(version))
        with tempfile.TemporaryDirectory() as directory:
            path = mlflow.artifacts.download_artifacts(
                artifact_uri=f"models:/{self.model_name}/{version}", dst_path=directory
            )
            model = Model.load(path)
            flavor = model.flavors["xgboost"]
            if flavor.get("model_format") not in ("ubj", "json"):
                raise ValueError(f"version {version} is stored as {flavor.get('model_format')!r}, not UBJ/JSON")
            booster = xgb.Booster()
            booster.load_model(os.path.join(path, flavor["data"]))
            state = FeatureState.from_json(json.dumps((model.metadata or {})[FEATURE_STATE_KEY]))
        metrics = self.client.get_run(model_version.run_id).data.metrics if model_version.run_id else {}
        return LoadedModel(
            name=self.model_name,
            version=str(model_version.version),
            run_id=model_version.run_id,
            booster=booster,
            feature_state=state,
            metrics=dict(metrics),
            tags=dict(model_version.tags),
            created_at_ms=model_version.creation_timestamp,
        )

    def load_alias(self) -> LoadedModel | None:
        version = self.alias_version()
        return self.load(version) if version is not None else None

    def promote(self, version: str, reason: str, verdict: str = "promoted", extra_tags: dict | None = None) -> None:
        """Record the verdict on `version`, then move the alias to it: a version never holds the
        alias without saying why."""
        for key, value in (extra_tags or {}).items():
            self.client.set_model_version_tag(self.model_name, str(version), key, str(value)[:5000])
        self.set_verdict(version, verdict, reason)
        self.client.set_registered_model_alias(self.model_name, self.alias, str(version))

    def verdict(self, version: str) -> str | None:
        """The verdict tag of `version` (promoted, promoted_manually, rejected), None when it has none."""
        return self.client.get_model_version(self.model_name, str(version)).tags.get("verdict")

    def set_verdict(self, version: str, verdict: str, reason: str) -> None:
        """The reason first: whoever sees a verdict finds its reason beside it."""
        self.client.set_model_version_tag(self.model_name, str(version), "verdict_reason", reason[:5000])
        self.client.set_model_version_tag(self.model_name, str(version), "verdict", verdict)
        tags = self.client.get_model_version(self.model_name, str(version)).tags
        description = version_description(verdict, reason, tags)
        self.client.update_model_version(self.model_name, str(version), description=description)

    def versions(self, newest: int = 50) -> list:
        """The newest registered versions (MLflow ModelVersion objects, with their tags), newest first."""
        return list(
            self.client.search_model_versions(
                f"name='{_quoted(self.model_name)}'", max_results=newest, order_by=["version_number DESC"]
            )
        )

    def best_candidate(self, metric: str = "rmse_log", newest: int = 50) -> dict | None:
        """When no version holds the alias: the best of the newest registered versions by `metric`
        (lower is better), with its figures and its verdict - what an operator needs to decide on a
        manual promotion. None when nothing was registered."""
        versions = self.versions(newest)
        best: dict | None = None
        for model_version in versions:
            metrics = self.client.get_run(model_version.run_id).data.metrics if model_version.run_id else {}
            score = metrics.get(metric, metrics.get("rmse"))
            if score is None:
                continue
            if best is None or score < best["score"]:
                best = {
                    "version": str(model_version.version),
                    "score": score,
                    "metric": metric if metric in metrics else "rmse",
                    "metrics": {k: v for k, v in metrics.items() if not k.startswith("baseline_")},
                    "baseline_metrics": {
                        k.removeprefix("baseline_"): v for k, v in metrics.items() if k.startswith("baseline_")
                    },
                    "verdict": model_version.tags.get("verdict", "pending"),
                    "verdict_reason": model_version.tags.get("verdict_reason"),
                }
        if best is not None:
            best["candidates"] = len(versions)
        return best


#: Tags that hold a link, and the words its link shows. The MLflow UI shows tags as plain text but renders
#: descriptions as markdown: the links to the other UIs go in the run's and the version's descriptions.
LINK_TAGS = {
    "dagster_run_url": "Dagster run",
    "dagster_partition_url": "Dagster: candidate_model partition",
    "viewer_model_url": "Viewer: model history",
}


def lineage_markdown(tags: Mapping[str, str]) -> str:
    """Markdown links to the pages the tags point at (Dagster run and partition, the viewer), in one line."""
    return " · ".join(f"[{label}]({tags[key]})" for key, label in LINK_TAGS.items() if tags.get(key))


def version_description(verdict: str, reason: str, tags: Mapping[str, str] | None = None) -> str:
    """A registered version's description in the MLflow UI: its verdict, the reason, and links to its lineage."""
    text = f"{verdict.replace('_', ' ')}: {reason}"[:4000]
    links = lineage_markdown(tags or {})
    return f"{text}\n\n{links}" if links else text


def _quoted(name: str) -> str:
    """A model name inside MLflow's filter string (single quotes doubled)."""
    return name.replace("'", "''")
