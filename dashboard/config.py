"""The dashboard's configuration: the viewer's part of the platform's one settings object.

Read from the environment on every rerun (cheap), so a test or a deployment changes the URLs
without restarting Streamlit. Serving defaults to `bentoml serve`'s own default port.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlops_assets.core.links import Links
from mlops_assets.settings import Settings

DEFAULT_SERVING_URL = "http://127.0.0.1:3000"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3001"
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class DashboardConfig:
    """The part of `Settings` the viewer reads, with its defaults for the UIs it links to."""

    settings: Settings
    serving_url: str
    dagster_url: str
    mlflow_url: str
    grafana_url: str | None
    api_docs_url: str
    timeout_s: float
    """How long one call to serving may take before the page says it did not answer."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DashboardConfig:
        serving = settings.serving_url or DEFAULT_SERVING_URL
        tracking = settings.mlflow_tracking_uri
        mlflow_ui = tracking.rstrip("/") if tracking.startswith(("http://", "https://")) else DEFAULT_MLFLOW_URL
        return cls(
            settings=settings,
            serving_url=serving,
            dagster_url=settings.dagster_url or DEFAULT_DAGSTER_URL,  # MLOPS_DAGSTER_URL, as serving reads it
            mlflow_url=settings.mlflow_url or mlflow_ui,  # MLOPS_MLFLOW_URL
            grafana_url=settings.grafana_url,
            api_docs_url=settings.api_docs_url or f"{serving}/",
            timeout_s=settings.dashboard_timeout_seconds,
        )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        return cls.from_settings(Settings.from_env(env))

    @property
    def links(self) -> Links:
        """Links into Dagster and MLflow (and the viewer's own pages), from the same URLs as the buttons."""
        return Links.of(self.dagster_url, self.mlflow_url, self.settings.viewer_url)
