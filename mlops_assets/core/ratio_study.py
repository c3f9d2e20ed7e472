"""The IAAO ratio study: how appraisals (here, predicted prices) compare with sale prices.

Assessors are judged by these (IAAO Standard on Ratio Studies, 2013, and its appendix on PRB):
- ratio = predicted / sold, per sale; the **median ratio** is the level (1.0: right on average);
- **COD**, the coefficient of dispersion: the mean absolute deviation of the ratios from the median ratio,
  as a percentage of it (uniformity: lower is better);
- **PRD**, the price-related differential: the mean ratio over the sale-weighted mean ratio
  (sum predicted / sum sold); above 1 means cheap houses are over-valued relative to dear ones (regressivity);
- **PRB**, the price-related bias: the slope of (ratio - median) / median regressed on log2 of a value
  proxy, half the predicted price over the median ratio and half the sale price; the percentage by which
  ratios change when value doubles (0: no bias).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd

#: IAAO's acceptable ranges (single-family residential): level, uniformity, vertical equity.
STANDARDS: dict[str, tuple[float, float]] = {
    "median_ratio": (0.90, 1.10),
    "cod": (0.0, 15.0),
    "prd": (0.98, 1.03),
    "prb": (-0.05, 0.05),
}
#: Fewer sales than this and a state's study is not reported (its figures would be noise).
MIN_SALES_PER_STATE = 30


@dataclass(frozen=True)
class RatioStudy:
    sales: int
    median_ratio: float
    cod: float
    prd: float
    prb: float | None
    """None with fewer than 3 sales or no spread of value (no slope to fit)."""

    def as_dict(self) -> dict:
        return asdict(self)

    def outside_standards(self) -> list[str]:
        """The figures outside IAAO's ranges, in words; empty when all meet them."""
        out = []
        for name, (low, high) in STANDARDS.items():
            value = getattr(self, name)
            if value is not None and not low <= value <= high:
                out.append(f"{name.upper() if name != 'median_ratio' else 'median ratio'} {value:.3f} "
                           f"outside [{low}, {high}]")  # fmt: skip
        return out


def median_ratio(predicted: np.ndarray, sold: np.ndarray) -> float:
    return float(np.median(np.asarray(predicted, float) / np.asarray(sold, float)))


def cod(predicted: np.ndarray, sold: np.ndarray) -> float:
    """Coefficient of dispersion, in percent, around the median ratio."""
    ratios = np.asarray(predicted, float) / np.asarray(sold, float)
    median = np.median(ratios)
    return float(100.0 * np.mean(np.abs(ratios - median)) / median)


def prd(predicted: np.ndarray, sold: np.ndarray) -> float:
    """Price-related differential: mean ratio / weighted mean ratio (sum predicted / sum sold)."""
    predicted, sold = np.asarray(predicted, float), np.asarray(sold, float)
    return float(np.mean(predicted / sold) / (predicted.sum() / sold.sum()))


def prb(predicted: np.ndarray, sold: np.ndarray) -> float | None:
    """Price-related bias: the OLS slope of (ratio - median) / median on log2(value proxy)."""
    predicted, sold = np.asarray(predicted, float), np.asarray(sold, float)
    if len(sold) < 3:
        return None
    ratios = predicted / sold
    median = np.median(ratios)
    value = 0.5 * predicted / median + 0.5 * sold
    x = np.log(value) / np.log(2.0)
    y = (ratios - median) / median
    spread = np.sum((x - x.mean()) ** 2)
    if spread <= 0:
        return None
    return float(np.sum((x - x.mean()) * (y - y.mean())) / spread)


def ratio_study(predicted: np.ndarray, sold: np.ndarray) -> RatioStudy:
    """The four figures over matched (predicted, sold) pairs; at least one pair with a positive sale."""
    predicted, sold = np.asarray(predicted, float), np.asarray(sold, float)
    keep = np.isfinite(predicted) & np.isfinite(sold) & (sold > 0) & (predicted > 0)
    predicted, sold = predicted[keep], sold[keep]
    if len(sold) == 0:
        raise ValueError("a ratio study needs at least one sale with a positive price and prediction")
    return RatioStudy(len(sold), median_ratio(predicted, sold), cod(predicted, sold), prd(predicted, sold),
                      prb(predicted, sold))  # fmt: skip


def by_state(frame: pd.DataFrame, min_sales: int = MIN_SALES_PER_STATE) -> dict[str, dict]:
    """Per state with at least `min_sales` rows: its study. `frame` has state, predicted and sold columns."""
    out = {}
    for state, rows in frame.groupby("state", sort=True):
        if len(rows) >= min_sales:
            out[str(state)] = ratio_study(rows["predicted"].to_numpy(), rows["sold"].to_numpy()).as_dict()
    return out
