"""Serving configuration: the serving part of the platform's one settings object (mlops_assets.settings).

Read from the environment once per process; `@bentoml.service` takes workers and threads from here
at import time, so they are set before `bentoml serve` starts (BentoML's config overrides cannot
change `threads`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from mlops_assets.settings import Settings

#: The largest /batch_predict body, in properties.
MAX_BATCH_ITEMS = 10_000


@dataclass(frozen=True)
class ServingConfig:
    """The part of `Settings` the service reads (every variable is declared and checked there)."""

    settings: Settings

    @property
    def poll_seconds(self) -> float:
        return self.settings.serving_poll_seconds

    @property
    def workers(self) -> int:
        return self.settings.serving_workers

    @property
    def threads(self) -> int:
        return self.settings.serving_threads

    @property
    def access_log(self) -> bool:
        return self.settings.serving_access_log

    @property
    def tracing(self) -> bool:
        return self.settings.serving_tracing

    @property
    def inference_log(self) -> bool:
        return self.settings.inference_log

    @property
    def log_queue_rows(self) -> int:
        return self.settings.inference_log_queue_rows

    @property
    def log_batch_rows(self) -> int:
        return self.settings.inference_log_batch_rows

    @property
    def log_flush_seconds(self) -> float:
        return self.settings.inference_log_flush_seconds

    @property
    def log_wait_seconds(self) -> float:
        return self.settings.inference_log_wait_seconds

    @property
    def load_wait_seconds(self) -> float:
        return self.settings.serving_load_wait_seconds

    @property
    def run_dir(self) -> str | None:
        return self.settings.serving_run_dir

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingConfig:
        return cls(Settings.from_env(env))
