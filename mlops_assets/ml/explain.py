"""Global importance from SHAP values (`ml.predict.shap_contributions`, XGBoost TreeSHAP), and the MLflow plots."""

from __future__ import annotations

import numpy as np
import xgboost as xgb

from mlops_assets.core.features import FEATURE_NAMES
from mlops_assets.ml.predict import shap_contributions


def mean_abs_shap(booster: xgb.Booster, x: np.ndarray) -> dict[str, float]:
    """Global importance: the mean |SHAP| per feature - what the model relies on, comparable across versions."""
    values, _ = shap_contributions(booster, x)
    return importance_of(values)


def importance_of(values: np.ndarray) -> dict[str, float]:
    """The mean |SHAP| per feature of SHAP values already computed."""
    return {name: float(v) for name, v in zip(FEATURE_NAMES, np.abs(values).mean(axis=0), strict=True)}


def summary_plot(values: np.ndarray, x: np.ndarray):
    """The SHAP beeswarm summary of `values` (the SHAP values of the rows `x`) as a matplotlib figure."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import shap

    shap.summary_plot(values, x, feature_names=FEATURE_NAMES, show=False)
    figure = plt.gcf()
    figure.set_size_inches(9, 6)
    figure.tight_layout()
    return figure


def importance_plot(importance: dict[str, float], title: str):
    """A sorted horizontal bar chart of a per-feature importance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(importance, key=lambda name: importance[name])
    figure, axis = plt.subplots(figsize=(8, 5))
    axis.barh(names, [importance[n] for n in names], color="#3b7dd8")
    axis.set_title(title)
    figure.tight_layout()
    return figure
