"""Two loaded model versions on the same holdout rows -> `core.model_diff`'s diff.

Used by champion_model (every candidate against the champion it was judged against) and by the
dashboard's "Compare models" page (any two versions, on demand). Each model prices the rows through
its own feature state; the mean |SHAP| of both is taken on the same rows (the first `shap_rows`).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlops_assets.core.features import transform
from mlops_assets.core.model_diff import model_diff
from mlops_assets.ml import explain
from mlops_assets.ml.predict import predict_price
from mlops_assets.ml.registry import LoadedModel

#: Rows the mean |SHAP| is taken on (as for the importance recorded at training).
SHAP_ROWS = 2_000
#: The markdown and JSON artifacts of a diff, in the newer model's MLflow run.
ARTIFACT_DIR = "model_diff"


def artifact_paths(new_version: str | int, old_version: str | int) -> tuple[str, str]:
    """(json, markdown) artifact paths of the diff of v`new_version` against v`old_version`."""
    stem = f"{ARTIFACT_DIR}/v{new_version}-vs-v{old_version}"
    return f"{stem}.json", f"{stem}.md"


def prices(model: LoadedModel, rows: pd.DataFrame) -> np.ndarray:
    """The model's prices (dollars) for clean listing rows, through its own feature state."""
    return predict_price(model.booster, transform(rows, model.feature_state).to_numpy())


def importance(model: LoadedModel, rows: pd.DataFrame, shap_rows: int = SHAP_ROWS) -> dict[str, float]:
    """Mean |SHAP| per feature on the first `shap_rows` rows."""
    sample = rows.iloc[:shap_rows]
    return explain.mean_abs_shap(model.booster, transform(sample, model.feature_state).to_numpy())


def diff_models(
    new: LoadedModel,
    old: LoadedModel,
    holdout: pd.DataFrame,
    drift: dict | None = None,
    metric: str = "rmse_log",
    new_price: np.ndarray | None = None,
    old_price: np.ndarray | None = None,
    shap_rows: int = SHAP_ROWS,
) -> dict:
    """The diff of `new` against `old` on `holdout`; pass prices already computed to reuse them."""
    diff = model_diff(
        holdout,
        prices(new, holdout) if new_price is None else new_price,
        prices(old, holdout) if old_price is None else old_price,
        importance(new, holdout, shap_rows),
        importance(old, holdout, shap_rows),
        drift,
        new_version=new.version,
        old_version=old.version,
        metric=metric,
    )
    diff["shap_rows"] = min(shap_rows, len(holdout))
    return diff
