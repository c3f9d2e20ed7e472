"""Regression metrics in dollars - what a person reading the model history cares about."""

from __future__ import annotations

import numpy as np


def regression_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE (dollars), R2 and MAPE (a fraction: 0.18 means 18%)."""
    y_true = np.asarray(y_true, dtype="float64")
    y_pred = np.asarray(y_pred, dtype="float64")
    error = y_pred - y_true
    total = np.sum((y_true - y_true.mean()) ** 2)
    return {
        "rmse": float(np.sqrt(np.mean(error**2))),
        "mae": float(np.mean(np.abs(error))),
        "r2": float(1.0 - np.sum(error**2) / total) if total > 0 else float("nan"),
        "mape": float(np.mean(np.abs(error) / np.abs(y_true))),
    }
