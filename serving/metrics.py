"""Prometheus metrics of the service, merged by BentoML into its own `/metrics`.

`bentoml serve` gives every worker PROMETHEUS_MULTIPROC_DIR, so these module-level objects write to
shared files and `/metrics` sums them over workers. Gauges say how they combine across workers
(`livemin`: 1 only when every live worker has a model). Label values come from fixed sets or from
the registry (model versions), never from request text.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
from prometheus_client import Counter, Gauge, Histogram

ENDPOINTS = ("predict", "batch_predict", "explain")
OUTCOMES = ("ok", "invalid", "unavailable", "busy", "error")

PREDICTIONS = Counter(
    "predictions_total",
    "Predictions served, by model version, endpoint and outcome (batch items count one each)",
    ["model_version", "endpoint", "outcome"],
)
LATENCY = Histogram(
    "prediction_latency_seconds",
    "Time inside the endpoint (validation, features, model, response), seconds",
    ["endpoint"],
    buckets=(0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)
PRICE = Histogram(
    "prediction_price_dollars",
    "Predicted prices, US dollars",
    buckets=(50e3, 100e3, 150e3, 200e3, 300e3, 400e3, 500e3, 750e3, 1e6, 1.5e6, 2e6, 3e6, 5e6, 1e7, 5e7),
)
MODEL_LOADED = Gauge("model_loaded", "1 when every live worker serves a model", multiprocess_mode="livemin")
EXPLAINER_LOADED = Gauge(
    "explainer_loaded", "1 when every live worker can explain (TreeSHAP checked at load)", multiprocess_mode="livemin"
)
MODEL_INFO = Gauge(
    "model_info", "1 for the model version a worker serves", ["name", "version", "alias"], multiprocess_mode="livemax"
)
MODEL_RELOADS = Counter("model_reloads_total", "Model loads by outcome (success, failed)", ["outcome"])
LOG_DROPPED = Counter(
    "inference_log_dropped_total",
    "Inference log rows not written: queue_full (database slow or down) or rejected (the database refused them)",
    ["reason"],
)
LOG_WRITTEN = Counter("inference_log_written_total", "Inference log rows written to the database")


_children: dict[tuple[str, str, str], tuple] = {}


def observe(endpoint: str, version: str, outcome: str, seconds: float, count: int = 1) -> None:
    """Count `count` predictions and time the request (label children cached: `labels()` takes a lock)."""
    key = (endpoint, version, outcome)
    children = _children.get(key)
    if children is None:
        children = _children.setdefault(key, (PREDICTIONS.labels(version, endpoint, outcome), LATENCY.labels(endpoint)))
    children[0].inc(count)
    children[1].observe(seconds)


def observe_prices(prices: Sequence[float] | np.ndarray) -> None:
    """`PRICE.observe` for many prices at once.

    In multiprocess mode one observe costs ~4 µs (10,000 of them: 40 ms, a third of a batch's
    budget), so a batch adds its bucket counts in one step, exactly as `observe` would have.
    """
    prices = np.asarray(prices, dtype="float64")
    if len(prices) <= 16:
        for price in prices.tolist():
            PRICE.observe(price)
        return
    bounds = PRICE._upper_bounds  # the histogram's own bounds, +Inf last
    counts = np.bincount(np.searchsorted(bounds, prices, side="left"), minlength=len(bounds))
    PRICE._sum.inc(float(prices.sum()))
    for bucket, count in zip(PRICE._buckets, counts.tolist(), strict=True):
        if count:
            bucket.inc(count)


def mark_process_dead(pid: int) -> None:
    """Withdraw a dead worker's live gauges (model_info, model_loaded) from the multiprocess directory."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)
