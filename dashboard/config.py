"""The dashboard's configuration: the platform's settings plus the URLs of the UIs it links to.

Read from the environment on every rerun (cheap), so a test or a deployment changes the URLs
without restarting Streamlit. Serving defaults to `bentoml serve`'s own default port.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_assets.settings import Settings

DEFAULT_SERVING_URL = "http://127.0.0.1:3000"
DEFAULT_DAGSTER_URL = "http://127.0.0.1:3001"
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"


def _url(env: Mapping[str, str], name: str) -> str | None:
    return (env.get(name) or "").strip().rstrip("/") or None


def _seconds(env: Mapping[str, str], name: str, default: float) -> float:
    raw = (env.get(name) or "").strip()
    try:
        return float(raw) if raw else default
    except ValueError:
        raise ValueError(f"{name} must be a number of seconds, got {raw!r}") from None


@dataclass(frozen=True)
class DashboardConfig:
    settings: Settings
    serving_url: str
    dagster_url: str
    mlflow_url: str
    grafana_url: str | None
    api_docs_url: str
    timeout_s: float
    """How long one call to serving may take before the page says it did not answer."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> DashboardConfig:
        env = os.environ if env is None else env
        settings = Settings.from_env(env)
        serving = settings.serving_url or DEFAULT_SERVING_URL
        tracking = settings.mlflow_tracking_uri
        mlflow_ui = tracking.rstrip("/") if tracking.startswith(("http://", "https://")) else DEFAULT_MLFLOW_URL
        return cls(
            settings=settings,
            serving_url=serving,
            dagster_url=settings.dagster_url or DEFAULT_DAGSTER_URL,  # MLOPS_DAGSTER_URL, as serving reads it
            mlflow_url=settings.mlflow_url or mlflow_ui,  # MLOPS_MLFLOW_URL
            grafana_url=_url(env, "MLOPS_GRAFANA_URL"),
            api_docs_url=_url(env, "MLOPS_API_DOCS_URL") or f"{serving}/",
            timeout_s=_seconds(env, "MLOPS_DASHBOARD_TIMEOUT", 20.0),
        )
