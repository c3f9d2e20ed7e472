"""What serving answered, shaped for the Monitoring page: serving's own figures, regrouped, never recomputed.

Latency is per request: every row of a /batch_predict answer shares its request's id (`<request>-<item>`)
and its one latency, so averaging rows would let one 10,000-row batch outweigh thousands of predictions.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

REQUEST_KEY = 32
"""A logged row's request is the first 32 characters of its request id (a batch item's is <request>-<item>)."""
LATENCY_COLUMNS = {"p50_latency_ms": "p50 (ms)", "p95_latency_ms": "p95 (ms)", "mean_latency_ms": "mean (ms)",
                   "max_latency_ms": "max (ms)"}  # fmt: skip
"""The latency figures per endpoint, per request (nearest-rank percentiles), and their labels."""
FAILED = {"unavailable": "no model (503)", "busy": "busy (503)", "error": "error (500)"}
"""The outcomes that are serving's failures, with what the client got."""


def endpoint_latency(summary: dict[str, Any]) -> pd.DataFrame | None:
    """Per endpoint: answered requests, their predictions (rows) and latency per request (ms), as
    /metrics/summary reports them for the last 24 hours; None from a serving that reports none."""
    endpoints = summary.get("endpoints")
    if not isinstance(endpoints, dict):
        return None
    columns = ["endpoint", "requests", "predictions", *LATENCY_COLUMNS]
    rows = [{"endpoint": name, **{c: figures.get(c) for c in columns[1:]}} for name, figures in endpoints.items()]
    return pd.DataFrame(rows, columns=columns)


def outcome_table(summary: dict[str, Any]) -> pd.DataFrame | None:
    """Per endpoint: answered, invalid (422) and failed (5xx: no model, busy, error) since serving started, from
    its counters as /metrics/summary reports them; None from a serving that reports none."""
    outcomes = summary.get("outcomes")
    if not isinstance(outcomes, dict):
        return None
    rows = []
    for endpoint, counts in outcomes.items():
        failed = {label: int(counts.get(outcome, 0)) for outcome, label in FAILED.items()}
        rows.append(
            {
                "endpoint": endpoint,
                "answered": int(counts.get("ok", 0)),
                "invalid (422)": int(counts.get("invalid", 0)),
                "failed (5xx)": sum(failed.values()),
                **failed,
            }
        )
    columns = ["endpoint", "answered", "invalid (422)", "failed (5xx)", *FAILED.values()]
    return pd.DataFrame(rows, columns=columns)


def per_request(rows: pd.DataFrame) -> pd.DataFrame:
    """Logged rows (as /predictions/history returns them) -> one row per request: created_at, endpoint,
    model_version, latency_ms and `predictions`, its rows among those given; newest first."""
    requests = rows.assign(request=rows["request_id"].astype(str).str.slice(0, REQUEST_KEY))
    grouped = requests.groupby("request", sort=False).agg(
        created_at=("created_at", "min"),
        endpoint=("endpoint", "first"),
        model_version=("model_version", "first"),
        latency_ms=("latency_ms", "max"),
        predictions=("request_id", "size"),
    )
    return grouped.reset_index().sort_values("created_at", ascending=False, ignore_index=True)
