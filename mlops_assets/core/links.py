"""Every link between the tools, built in one place from the public URLs in the settings.

Each UI has one base URL as a browser reaches it (MLOPS_DAGSTER_URL, MLOPS_MLFLOW_URL, MLOPS_VIEWER_URL,
MLOPS_SERVING_URL); when one is unset, `Links.from_settings` uses the local development default
(`make dev`'s ports). Pure string building: no I/O, no imports of the tools themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

if TYPE_CHECKING:
    from mlops_assets.settings import Settings

DEFAULT_DAGSTER_URL = "http://127.0.0.1:3001"
DEFAULT_MLFLOW_URL = "http://127.0.0.1:5000"
DEFAULT_VIEWER_URL = "http://127.0.0.1:8501"
DEFAULT_SERVING_URL = "http://127.0.0.1:3000"


def _base(url: str | None) -> str | None:
    return (url or "").strip().rstrip("/") or None


def dagster_run_url(base: str, run_id: str) -> str:
    """The run's page in the Dagster UI."""
    return f"{base}/runs/{quote(run_id, safe='')}"


def dagster_partition_url(base: str, asset: str, partition: str) -> str:
    """The asset's page in the Dagster UI, on its Partitions tab with `partition` selected."""
    return f"{base}/assets/{quote(asset, safe='')}?view=partitions&partition={quote(partition, safe='')}"


def mlflow_run_url(base: str, run_id: str) -> str:
    """The MLflow UI's run page (its direct route finds the experiment by itself)."""
    return f"{base}/#/runs/{quote(run_id, safe='')}"


def mlflow_version_url(base: str, model_name: str, version: int | str) -> str:
    """A registered model version's page in the MLflow UI."""
    return f"{base}/#/models/{quote(model_name, safe='')}/versions/{quote(str(version), safe='')}"


def viewer_page_url(base: str, page: str, **params: str | int) -> str:
    """A page of the viewer (Streamlit: every page at its own path, e.g. /drift, /model_diff?new=7&old=6)."""
    query = urlencode({k: str(v) for k, v in params.items()})
    return f"{base}/{quote(page, safe='')}" + (f"?{query}" if query else "")


@dataclass(frozen=True)
class Links:
    """The base URLs of the UIs, and every link into them."""

    dagster: str = DEFAULT_DAGSTER_URL
    mlflow: str = DEFAULT_MLFLOW_URL
    viewer: str = DEFAULT_VIEWER_URL

    @classmethod
    def of(cls, dagster: str | None = None, mlflow: str | None = None, viewer: str | None = None) -> Links:
        """The links for the base URLs given; an unset one is the local default."""
        return cls(
            dagster=_base(dagster) or DEFAULT_DAGSTER_URL,
            mlflow=_base(mlflow) or DEFAULT_MLFLOW_URL,
            viewer=_base(viewer) or DEFAULT_VIEWER_URL,
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Links:
        return cls.of(settings.dagster_url, settings.mlflow_url, settings.viewer_url)

    def dagster_run(self, run_id: str) -> str:
        return dagster_run_url(self.dagster, run_id)

    def dagster_partition(self, asset: str, partition: str) -> str:
        return dagster_partition_url(self.dagster, asset, partition)

    def mlflow_run(self, run_id: str) -> str:
        return mlflow_run_url(self.mlflow, run_id)

    def mlflow_version(self, model_name: str, version: int | str) -> str:
        return mlflow_version_url(self.mlflow, model_name, version)

    def viewer_page(self, page: str, **params: str | int) -> str:
        return viewer_page_url(self.viewer, page, **params)

    def drift_report(self, report_id: str) -> str:
        """The viewer's Drift page, on one report (its Evidently HTML is shown there)."""
        return self.viewer_page("drift", report=report_id)

    def model_diff(self, new: int | str, old: int | str) -> str:
        """The viewer's Compare models page for two versions."""
        return self.viewer_page("model_diff", new=new, old=old)
