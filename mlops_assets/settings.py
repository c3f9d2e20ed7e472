"""One settings object for every part (pipeline, sensors, serving, viewer), read from the environment.

Every external system is a URL with an embedded default under MLOPS_HOME (`.mlops/`): a SQLite
warehouse, local files, a local MLflow store and the in-process simulator. Pointing the URLs at
PostgreSQL, S3 and an MLflow server changes nothing else.

Built with pydantic-settings: each field names its environment variable, its type and what it is
for; a bad value fails with the variable's name and the reason. `python -m mlops_assets.settings`
prints the table of every variable (the README's configuration table is that output).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, EnvSettingsSource, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings.sources.utils import parse_env_vars

#: The environment `Settings.from_env(env)` reads instead of os.environ (tests, explicit mappings).
_ENV: ContextVar[Mapping[str, str] | None] = ContextVar("mlops_settings_env", default=None)

PIPELINE, SENSORS, SERVING, VIEWER, ALL = "pipeline", "sensors", "serving", "viewer", "all"


def _var(name: str, default: Any, used_by: str, description: str, *more: str, **constraints: Any) -> Any:
    """A field read from environment variable `name` (or `more`, in order), documented for the table."""
    alias = AliasChoices(name, *more) if more else name
    return Field(
        default,
        validation_alias=alias,
        description=description,
        json_schema_extra={"env": [name, *more], "used_by": used_by},
        **constraints,
    )


class _MappingEnvSource(EnvSettingsSource):
    """os.environ, unless `Settings.from_env` was given a mapping: then only that mapping."""

    def _load_env_vars(self) -> Mapping[str, str | None]:
        env = _ENV.get()
        if env is None:
            return super()._load_env_vars()
        return parse_env_vars(env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)


class Settings(BaseSettings):
    """The platform's configuration. Blank variables count as unset."""

    model_config = SettingsConfigDict(frozen=True, extra="ignore", env_ignore_empty=True, case_sensitive=True)

    # --- where things are (every part) ---
    home: Path = _var("MLOPS_HOME", Path(".mlops"), ALL, "root of the embedded defaults")
    database_url: str = _var(
        "MLOPS_DATABASE_URL", None, ALL, "the warehouse: `postgresql://user:pass@host:5432/db` for PostgreSQL",
    )  # fmt: skip
    storage_url: str = _var(
        "MLOPS_STORAGE_URL", None, ALL, "raw copies, Evidently reports: `s3://bucket/prefix` for S3"
    )
    s3_endpoint_url: str | None = _var(
        "AWS_ENDPOINT_URL", None, ALL, "the S3 endpoint (SeaweedFS, MinIO) for `s3://` URLs; AWS credentials as usual",
        "MLFLOW_S3_ENDPOINT_URL",
    )  # fmt: skip
    mlflow_tracking_uri: str = _var(
        "MLFLOW_TRACKING_URI", None, ALL, "tracking and registry: an MLflow server URL in a deployment"
    )
    mlflow_artifact_location: str | None = _var(
        "MLOPS_MLFLOW_ARTIFACTS", None, PIPELINE, "where new experiments keep artifacts (local stores: under home)"
    )
    model_name: str = _var("MLOPS_MODEL_NAME", "house-price", ALL, "the registered model")
    model_alias: str = _var("MLOPS_MODEL_ALIAS", "champion", ALL, "the registry alias serving follows")

    # --- the data source (pipeline) ---
    source_url: str | None = _var(
        "MLOPS_SOURCE_URL", None, PIPELINE, "the batch data API; unset: the in-process simulator"
    )
    source_group: int = _var("MLOPS_SOURCE_GROUP", 1, PIPELINE, "the batch data API's group")
    source_day: str = _var("MLOPS_SOURCE_DAY", "Tuesday", PIPELINE, "the batch data API's day")
    simulator_seed: int = _var("MLOPS_SIM_SEED", 42, PIPELINE, "the in-process simulator's seed")
    simulator_batches: int = _var("MLOPS_SIM_BATCHES", 8, PIPELINE, "its number of batches", ge=1)
    simulator_min_rows: int = _var("MLOPS_SIM_MIN_ROWS", 4_000, PIPELINE, "its smallest batch", ge=1)
    simulator_max_rows: int = _var("MLOPS_SIM_MAX_ROWS", 30_000, PIPELINE, "its largest batch", ge=1)

    # --- training and promotion (pipeline) ---
    train_trials: int = _var("MLOPS_TRAIN_TRIALS", 15, PIPELINE, "Optuna trials per training", ge=1)
    train_window_rows: int = _var(
        "MLOPS_TRAIN_WINDOW_ROWS",
        1_000_000,
        PIPELINE,
        "a training reads the most recent batches holding at most this many clean rows (its cost stays bounded)",
        ge=1,
    )
    gate_mode: Literal["relative", "absolute"] = _var(
        "MLOPS_PROMOTION_GATE", "relative", PIPELINE, "`absolute`: the original R2 / RMSE thresholds"
    )
    rollback_policy: Literal["alert", "off", "auto"] = _var(
        "MLOPS_ROLLBACK_POLICY", "alert", PIPELINE, "what a failed live-quality check does: `off`, `alert`, `auto`"
    )

    # --- the sensors (the Dagster daemon) ---
    sensor_interval_seconds: int = _var(
        "MLOPS_SENSOR_INTERVAL_SECONDS", 30, SENSORS, "how often the daemon evaluates the sensors", ge=1
    )
    ingest_retries: int = _var(
        "MLOPS_INGEST_RETRIES", 3, SENSORS, "times a batch that failed for a reason other than its checks is retried",
        ge=0,
    )  # fmt: skip
    ingest_retry_seconds: float = _var(
        "MLOPS_INGEST_RETRY_SECONDS", 60.0, SENSORS, "pause before the first retry, doubled each time", ge=0
    )

    # --- links between the tools (pipeline, serving, viewer) ---
    serving_url: str | None = _var(
        "MLOPS_SERVING_URL", None, ALL, "serving: told to reload after a promotion; the viewer calls it "
        "(default there `http://127.0.0.1:3000`)",
    )  # fmt: skip
    admin_token: str | None = _var(
        "MLOPS_ADMIN_TOKEN", None, ALL, "bearer token of serving's `/reload`; unset: off", repr=False
    )
    read_token: str | None = _var(
        "MLOPS_READ_TOKEN",
        None,
        ALL,
        "bearer token of serving's history and lineage (the admin token works too)",
        repr=False,
    )
    dagster_url: str | None = _var(
        "MLOPS_DAGSTER_URL",
        None,
        ALL,
        "the Dagster UI as a browser reaches it (links default to `http://127.0.0.1:3001`; serving: no links)",
    )
    mlflow_url: str | None = _var(
        "MLOPS_MLFLOW_URL", None, ALL, "the MLflow UI as a browser reaches it (links default to the tracking "
        "server or `http://127.0.0.1:5000`; serving: no links)",
    )  # fmt: skip
    viewer_url: str | None = _var(
        "MLOPS_VIEWER_URL", None, ALL, "the viewer (dashboard) as a browser reaches it; Dagster and MLflow link "
        "to its pages (default `http://127.0.0.1:8501`)",
    )  # fmt: skip

    # --- serving ---
    serving_poll_seconds: float = _var(
        "MLOPS_SERVING_POLL_SECONDS", 10.0, SERVING, "how often serving asks the registry", ge=0.1
    )
    serving_workers: int = _var("MLOPS_SERVING_WORKERS", 2, SERVING, "processes (one per core)", ge=1)
    serving_threads: int = _var("MLOPS_SERVING_THREADS", 2, SERVING, "threads for the synchronous routes", ge=1)
    serving_access_log: bool = _var("MLOPS_SERVING_ACCESS_LOG", False, SERVING, "BentoML's access log")
    serving_tracing: bool = _var("MLOPS_SERVING_TRACING", False, SERVING, "OpenTelemetry spans for every route")
    inference_log: bool = _var("MLOPS_INFERENCE_LOG", True, SERVING, "log every prediction to the warehouse")
    inference_log_queue_rows: int = _var(
        "MLOPS_INFERENCE_LOG_QUEUE_ROWS", 50_000, SERVING, "rows waiting for the writer before 503", ge=1
    )
    inference_log_batch_rows: int = _var("MLOPS_INFERENCE_LOG_BATCH_ROWS", 2_000, SERVING, "rows per insert", ge=1)
    inference_log_flush_seconds: float = _var(
        "MLOPS_INFERENCE_LOG_FLUSH_SECONDS", 1.0, SERVING, "the longest a row waits to be written", ge=0.01
    )
    inference_log_wait_seconds: float = _var(
        "MLOPS_INFERENCE_LOG_WAIT_SECONDS", 10.0, SERVING, "how long a request waits for room in the queue", ge=0
    )
    serving_load_wait_seconds: float = _var(
        "MLOPS_SERVING_LOAD_WAIT_SECONDS", 60.0, SERVING, "how long a starting worker holds a request for its model",
        ge=0,
    )  # fmt: skip
    serving_run_dir: str | None = _var(
        "MLOPS_SERVING_RUN_DIR", None, SERVING, "the workers' shared state (set by the service when unset)"
    )

    # --- the viewer ---
    grafana_url: str | None = _var("MLOPS_GRAFANA_URL", None, VIEWER, "Grafana as a browser reaches it; unset: no link")
    api_docs_url: str | None = _var(
        "MLOPS_API_DOCS_URL", None, VIEWER, "the API docs link (default: serving's Swagger UI)"
    )
    dashboard_timeout_seconds: float = _var(
        "MLOPS_DASHBOARD_TIMEOUT", 20.0, VIEWER, "how long one call to serving may take", gt=0
    )

    @model_validator(mode="before")
    @classmethod
    def _embedded_defaults(cls, data: Any) -> Any:
        """The URLs left unset point under MLOPS_HOME: SQLite, local files, a local MLflow store."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        home = Path(data.get("MLOPS_HOME") or data.get("home") or ".mlops").expanduser().resolve()
        data["MLOPS_HOME"] = home
        data.setdefault("MLOPS_DATABASE_URL", f"sqlite:///{home / 'warehouse.db'}")
        data.setdefault("MLOPS_STORAGE_URL", (home / "storage").as_uri())
        tracking = data.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{home / 'mlflow.db'}")
        local = str(tracking).startswith(("sqlite:", "file:")) or "://" not in str(tracking)
        if local:
            data.setdefault("MLOPS_MLFLOW_ARTIFACTS", (home / "mlartifacts").as_uri())
        for choice in ("MLOPS_PROMOTION_GATE", "MLOPS_ROLLBACK_POLICY"):
            if isinstance(data.get(choice), str):
                data[choice] = data[choice].strip().lower()
        return data

    @field_validator("storage_url", "source_url", "serving_url", "dagster_url", "mlflow_url", "viewer_url",
                     "grafana_url", "api_docs_url")  # fmt: skip
    @classmethod
    def _no_trailing_slash(cls, value: str | None) -> str | None:
        return (value.strip().rstrip("/") or None) if value else None

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, _MappingEnvSource(settings_cls)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from `env` (default: the process environment)."""
        with _reading(env):
            return cls()


@contextmanager
def _reading(env: Mapping[str, str] | None) -> Iterator[None]:
    token = _ENV.set(env)
    try:
        yield
    finally:
        _ENV.reset(token)


def variables_table() -> str:
    """Markdown: every environment variable, its default, which part reads it and what it is for."""
    defaults = Settings.from_env({"MLOPS_HOME": ".mlops"})
    lines = ["| variable | default | used by | what for |", "|---|---|---|---|"]
    for name, field in Settings.model_fields.items():
        extra = field.json_schema_extra if isinstance(field.json_schema_extra, dict) else {}
        env = " or ".join(f"`{v}`" for v in extra.get("env") or [])  # type: ignore[union-attr]
        default = getattr(defaults, name)
        if name in ("home", "database_url", "storage_url", "mlflow_tracking_uri", "mlflow_artifact_location"):
            default = str(default).replace(str(Path(".mlops").resolve()), ".mlops")
        shown = "unset" if default is None else f"`{str(default).lower() if isinstance(default, bool) else default}`"
        lines.append(f"| {env} | {shown} | {extra['used_by']} | {field.description} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.stdout.write(variables_table() + "\n")
