"""Serving configuration: the platform's settings plus the knobs only the service has.

Read from the environment once per process; `@bentoml.service` takes workers and threads from here
at import time, so they are set before `bentoml serve` starts (BentoML's config overrides cannot
change `threads`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from mlops_assets.settings import Settings

#: The largest /batch_predict body, in properties.
MAX_BATCH_ITEMS = 10_000


def _number(env: Mapping[str, str], name: str, default: float, minimum: float) -> float:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {raw!r}")
    return value


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    raw = env.get(name, "").strip().lower()
    return default if not raw else raw in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class ServingConfig:
    settings: Settings
    poll_seconds: float
    workers: int
    threads: int
    access_log: bool
    tracing: bool
    inference_log: bool
    log_queue_rows: int
    log_batch_rows: int
    log_flush_seconds: float
    log_wait_seconds: float
    load_wait_seconds: float
    run_dir: str | None

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServingConfig:
        env = os.environ if env is None else env
        return cls(
            settings=Settings.from_env(env),
            poll_seconds=_number(env, "MLOPS_SERVING_POLL_SECONDS", 10.0, 0.1),
            workers=int(_number(env, "MLOPS_SERVING_WORKERS", 2, 1)),
            threads=int(_number(env, "MLOPS_SERVING_THREADS", 2, 1)),
            access_log=_flag(env, "MLOPS_SERVING_ACCESS_LOG", False),
            tracing=_flag(env, "MLOPS_SERVING_TRACING", False),
            inference_log=_flag(env, "MLOPS_INFERENCE_LOG", True),
            log_queue_rows=int(_number(env, "MLOPS_INFERENCE_LOG_QUEUE_ROWS", 50_000, 1)),
            log_batch_rows=int(_number(env, "MLOPS_INFERENCE_LOG_BATCH_ROWS", 2_000, 1)),
            log_flush_seconds=_number(env, "MLOPS_INFERENCE_LOG_FLUSH_SECONDS", 1.0, 0.01),
            log_wait_seconds=_number(env, "MLOPS_INFERENCE_LOG_WAIT_SECONDS", 10.0, 0.0),
            load_wait_seconds=_number(env, "MLOPS_SERVING_LOAD_WAIT_SECONDS", 60.0, 0.0),
            run_dir=env.get("MLOPS_SERVING_RUN_DIR") or None,
        )
