"""Feature engineering shared by training and serving: one set of formulas, one fitted state.

The fitted state (acre_lot median, smoothed state price encoding) is learned from training rows
only and travels with the model as JSON, so serving computes exactly what training computed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mlops_assets.core.schema import STATUSES

SQFT_PER_ACRE = 43_560.0

FEATURE_NAMES: list[str] = [
    "bed", "bath", "acre_lot", "house_size", "bed_bath_interaction", "size_per_bed",
    "size_per_bath", "total_rooms", "lot_to_house_ratio", "acre_lot_missing",
    *(f"status_{s}" for s in STATUSES), "state_price_level",
]  # fmt: skip

#: What a caller must supply per listing; state and status may be missing.
INPUT_COLUMNS = ("bed", "bath", "acre_lot", "house_size", "state", "status")


def to_target(price: np.ndarray | pd.Series) -> np.ndarray:
    """Prices are heavy-tailed: the model learns log1p(price)."""
    return np.log1p(np.asarray(price, dtype="float64"))


def from_target(values: np.ndarray) -> np.ndarray:
    """Back from model space to dollars."""
    return np.expm1(np.asarray(values, dtype="float64"))


@dataclass
class FeatureState:
    """Everything the features learn from training rows; JSON-serialisable."""

    acre_lot_median: float
    global_log_price: float
    smoothing: float
    state_log_price: dict[str, float]
    state_counts: dict[str, int]
    state_mean_price: dict[str, float]
    global_mean_price: float
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    schema_version: int = 1

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureState:
        data = json.loads(text)
        state = cls(**data)
        if state.feature_names != FEATURE_NAMES:
            raise ValueError(f"feature state lists {state.feature_names}, this code computes {FEATURE_NAMES}")
        return state

    def encode_states(self, states: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The state price level per row, and a mask of states unseen in training."""
        levels = np.array([self.state_log_price.get(s, np.nan) for s in states], dtype="float64")
        unknown = np.isnan(levels)
        levels[unknown] = self.global_log_price
        return levels, unknown


def fit_feature_state(clean: pd.DataFrame, smoothing: float = 20.0) -> FeatureState:
    """Learn the state encoding and imputation values from training rows only.

    The state level is a smoothed mean of log1p(price): states with few rows lean towards the
    global mean, so a handful of listings cannot give a state an extreme level.
    """
    log_price = pd.Series(to_target(clean["price"]), index=clean.index)
    global_log = float(log_price.mean())
    grouped = log_price.groupby(clean["state"])
    counts = grouped.size()
    smoothed = (grouped.sum() + smoothing * global_log) / (counts + smoothing)
    mean_price = clean.groupby("state")["price"].mean()
    acre_median = clean["acre_lot"].median()
    return FeatureState(
        acre_lot_median=float(acre_median) if pd.notna(acre_median) else 0.0,
        global_log_price=global_log,
        smoothing=float(smoothing),
        state_log_price={str(k): float(v) for k, v in smoothed.items()},
        state_counts={str(k): int(v) for k, v in counts.items()},
        state_mean_price={str(k): float(v) for k, v in mean_price.items()},
        global_mean_price=float(clean["price"].mean()),
    )


def build_features(inputs: Mapping[str, np.ndarray], state: FeatureState) -> np.ndarray:
    """The feature matrix (rows x FEATURE_NAMES, float32) from column arrays.

    `state` and `status` hold canonical names or None; acre_lot may hold NaN (imputed).
    """
    bed = np.asarray(inputs["bed"], dtype="float64")
    bath = np.asarray(inputs["bath"], dtype="float64")
    house_size = np.asarray(inputs["house_size"], dtype="float64")
    acre_raw = np.asarray(inputs["acre_lot"], dtype="float64")
    acre_missing = np.isnan(acre_raw)
    acre_lot = np.where(acre_missing, state.acre_lot_median, acre_raw)
    status = np.asarray(inputs["status"], dtype="object")
    level, _ = state.encode_states(np.asarray(inputs["state"], dtype="object"))
    columns = [
        bed,
        bath,
        acre_lot,
        house_size,
        bed * bath,
        house_size / np.maximum(bed, 1.0),
        house_size / np.maximum(bath, 1.0),
        bed + bath,
        acre_lot * SQFT_PER_ACRE / house_size,
        acre_missing.astype("float64"),
        *((status == s).astype("float64") for s in STATUSES),
        level,
    ]
    return np.column_stack(columns).astype("float32")


def transform(frame: pd.DataFrame, state: FeatureState) -> pd.DataFrame:
    """`build_features` for a clean DataFrame, with named columns."""
    matrix = build_features({c: frame[c].to_numpy() for c in INPUT_COLUMNS}, state)
    return pd.DataFrame(matrix, columns=FEATURE_NAMES, index=frame.index)
