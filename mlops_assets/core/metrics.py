"""Regression metrics on the dollar scale and on the log scale.

Dollar metrics (RMSE, MAE, R2) are what a person reading the history asks first, but across markets
where a few listings cost tens of millions they are decided by a handful of rows. The log-scale
metrics (R2 and RMSE of log1p(price), the median absolute percentage error) weigh a $150k house
in Ohio like a $15M one in Malibu, so they say whether the model prices *listings* well.
"""

from __future__ import annotations

import numpy as np

#: Every metric `regression_metrics` returns, in order.
METRIC_NAMES = ("rmse", "mae", "r2", "mape", "r2_log", "rmse_log", "median_ape")
#: Lower is better for these; the promotion gate compares candidates on one of them.
LOWER_IS_BETTER = ("rmse", "mae", "mape", "rmse_log", "median_ape")


def _r2(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    total = np.sum((y_true - y_true.mean()) ** 2)
    return float(1.0 - np.sum((y_pred - y_true) ** 2) / total) if total > 0 else float("nan")


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """rmse, mae (dollars), r2 and mape (a fraction: 0.18 means 18%) on the dollar scale; r2_log
    and rmse_log on log1p(price); median_ape (a fraction)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    error = y_pred - y_true
    ape = np.abs(error) / np.abs(y_true)
    log_true, log_pred = np.log1p(y_true), np.log1p(np.maximum(y_pred, 0.0))
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": _r2(y_true, y_pred),
        "mape": float(np.mean(ape)),
        "r2_log": _r2(log_true, log_pred),
        "rmse_log": float(np.sqrt(np.mean((log_pred - log_true) ** 2))),
        "median_ape": float(np.median(ape)),
    }
