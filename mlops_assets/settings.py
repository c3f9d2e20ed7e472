"""One settings object for every part (pipeline, serving, dashboard), read from the environment.

Every external system is a URL with an embedded default under MLOPS_HOME (`.mlops/`): a SQLite
warehouse, local files, a local MLflow store and the in-process simulator. Pointing the URLs at
PostgreSQL, S3 and an MLflow server changes nothing else. Plain environment parsing keeps this
importable from the small serving image.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise ValueError(f"{name} must be an integer, got {raw!r}") from None


def _url(env: Mapping[str, str], name: str) -> str | None:
    """A base URL without its trailing slash; None when unset or blank."""
    return (env.get(name) or "").strip().rstrip("/") or None


def _choice(env: Mapping[str, str], name: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (the first is the default)."""
    raw = env.get(name, "").strip().lower() or choices[0]
    if raw not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


@dataclass(frozen=True)
class Settings:
    home: Path
    database_url: str
    storage_url: str
    mlflow_tracking_uri: str
    mlflow_artifact_location: str | None
    source_url: str | None
    source_group: int
    source_day: str
    simulator_seed: int
    simulator_batches: int
    simulator_min_rows: int
    simulator_max_rows: int
    train_trials: int
    model_name: str
    model_alias: str
    serving_url: str | None
    admin_token: str | None
    gate_mode: str = "relative"
    read_token: str | None = None
    """Bearer token for serving's per-request history and lineage (the admin token works too)."""
    dagster_url: str | None = None
    """The Dagster UI as a browser reaches it (MLOPS_DAGSTER_URL): serving's lineage links into it when set."""
    mlflow_url: str | None = None
    """The MLflow UI as a browser reaches it (MLOPS_MLFLOW_URL): serving's lineage links into it when set."""
    rollback_policy: str = "alert"
    """MLOPS_ROLLBACK_POLICY: off, alert (the live-quality check fails) or auto (and the alias moves back)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        home = Path(env.get("MLOPS_HOME") or ".mlops").expanduser().resolve()
        tracking = env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}"
        local_mlflow = tracking.startswith(("sqlite:", "file:")) or "://" not in tracking
        return cls(
            home=home,
            database_url=env.get("MLOPS_DATABASE_URL") or f"sqlite:///{home / 'warehouse.db'}",
            storage_url=(env.get("MLOPS_STORAGE_URL") or (home / "storage").as_uri()).rstrip("/"),
            mlflow_tracking_uri=tracking,
            mlflow_artifact_location=env.get("MLOPS_MLFLOW_ARTIFACTS")
            or ((home / "mlartifacts").as_uri() if local_mlflow else None),
            source_url=(env.get("MLOPS_SOURCE_URL") or "").rstrip("/") or None,
            source_group=_int(env, "MLOPS_SOURCE_GROUP", 1),
            source_day=env.get("MLOPS_SOURCE_DAY") or "Tuesday",
            simulator_seed=_int(env, "MLOPS_SIM_SEED", 42),
            simulator_batches=_int(env, "MLOPS_SIM_BATCHES", 8),
            simulator_min_rows=_int(env, "MLOPS_SIM_MIN_ROWS", 4_000),
            simulator_max_rows=_int(env, "MLOPS_SIM_MAX_ROWS", 30_000),
            train_trials=_int(env, "MLOPS_TRAIN_TRIALS", 10),
            model_name=env.get("MLOPS_MODEL_NAME") or "house-price",
            model_alias=env.get("MLOPS_MODEL_ALIAS") or "champion",
            serving_url=(env.get("MLOPS_SERVING_URL") or "").rstrip("/") or None,
            admin_token=env.get("MLOPS_ADMIN_TOKEN") or None,
            gate_mode=_choice(env, "MLOPS_PROMOTION_GATE", ("relative", "absolute")),
            read_token=env.get("MLOPS_READ_TOKEN") or None,
            dagster_url=_url(env, "MLOPS_DAGSTER_URL"),
            mlflow_url=_url(env, "MLOPS_MLFLOW_URL"),
            rollback_policy=_choice(env, "MLOPS_ROLLBACK_POLICY", ("alert", "off", "auto")),
        )
