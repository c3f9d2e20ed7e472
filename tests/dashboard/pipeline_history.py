"""A platform with real history, built once: the pipeline run in process over three simulator batches.

Batches 1-3 give a baseline model (v1, promoted), a skipped batch (no drift) and a drift-triggered
retraining (v2, promoted over v1); a forced retraining under an impossible gate adds v3, rejected.
That is every row kind the dashboard shows, from the real assets rather than hand-written rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from dagster import instance_for_test

from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.demo import QUIET, Loop
from mlops_assets.resources import PromotionGateResource
from mlops_assets.sensors import drift_sensor, ingestion_sensor
from mlops_assets.settings import Settings
from tests.conftest import free_port
from tests.pipeline.helpers import run_batch

#: Where this test session's Dagster UI, MLflow UI and viewer listen (test_browser.py starts them on these
#: ports): the pipeline records its links with these bases, so a browser can follow every link to a real page.
UI_URLS = {name: f"http://127.0.0.1:{free_port()}" for name in ("dagster", "mlflow", "viewer")}


def platform_env(home: Path) -> dict[str, str]:
    """The environment every part (pipeline, serving, dashboard) reads for this platform."""
    return {
        "MLOPS_HOME": str(home),
        "MLOPS_SIM_MIN_ROWS": "3000",
        "MLOPS_SIM_MAX_ROWS": "4000",
        "MLOPS_TRAIN_TRIALS": "1",
        "MLOPS_DAGSTER_URL": UI_URLS["dagster"],
        "MLOPS_MLFLOW_URL": UI_URLS["mlflow"],
        "MLOPS_VIEWER_URL": UI_URLS["viewer"],
    }


def dagster_home(home: Path) -> Path:
    """The platform's Dagster instance (kept after the build: the Dagster UI of test_browser.py reads it)."""
    return home.parent / "dagster_home"


def build_platform(home: Path, champion_ready: Callable[[], None] = lambda: None) -> Settings:
    """Run the loop over 3 batches plus one rejected retraining; returns the platform's settings.

    `champion_ready` is called once v2 holds the alias, before the rejected retraining (which never
    moves it): a caller can start serving then, so its boot overlaps the last training.
    """
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    settings = Settings.from_env(platform_env(home))
    dagster_home(home).mkdir(parents=True, exist_ok=True)
    with instance_for_test(temp_dir=str(dagster_home(home))) as instance:
        loop = Loop(instance, settings)
        for _ in range(3):
            [ingest], _ = loop.tick(ingestion_sensor)
            if not loop.execute("ingest_job", ingest).success:
                raise RuntimeError(f"ingest of {ingest.partition_key} failed")
            trains, _ = loop.tick(drift_sensor)
            for request in trains:
                if not loop.execute("train_job", request).success:
                    raise RuntimeError(f"training on {request.partition_key} failed")
        champion_ready()
        strict = {"promotion_gate": PromotionGateResource(min_gain_over_baseline=0.99)}  # nothing beats it by 99%
        run_batch(instance, settings, [candidate_model, champion_model], "00003", resources=strict, run_config=QUIET)
    return settings


if __name__ == "__main__":  # a scratch platform to look at: python -m tests.dashboard.pipeline_history DIR
    import sys

    print(build_platform(Path(sys.argv[1]).resolve()))
