"""SHAP values in log space, and their honest translation to dollars.

The model predicts log1p(price); TreeSHAP values are exactly additive there:
    base_value + sum(shap_values) = log1p(price).
They are not dollars. `allocate_dollars` splits (price - base_price) over the features in
proportion to their log-space contributions, so the dollar contributions sum to it exactly.
"""

from __future__ import annotations

import numpy as np


def allocate_dollars(base_value: float, shap_values: np.ndarray) -> tuple[float, float, np.ndarray]:
    """(base_price, price, contributions_usd) for one row.

    base_price = expm1(base_value), price = expm1(base_value + sum(shap_values)); each feature
    gets shap_i * (price - base_price) / sum(shap): its share of the log-space movement. The
    ratio is taken in a form that stays finite as sum(shap) -> 0.
    """
    shap_values = np.asarray(shap_values, dtype="float64")
    total = float(shap_values.sum())
    base_price = float(np.expm1(base_value))
    price = float(np.expm1(base_value + total))
    per_log_unit = (base_price + 1.0) * (np.expm1(total) / total if total != 0 else 1.0)
    contributions = shap_values * per_log_unit
    if len(contributions):
        # absorb floating-point residue in the largest contribution: the sum is exact
        largest = int(np.argmax(np.abs(contributions)))
        others = contributions.sum() - contributions[largest]
        contributions[largest] = (price - base_price) - others
    return base_price, price, contributions
