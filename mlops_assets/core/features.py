"""Feature engineering shared by training and serving: one set of formulas, one fitted state.

House prices vary most by location, and within a state far more by zip code and city than between
states. The fitted state therefore holds, per state, city and zip code, the count of training
listings and their sums of log price and of log price per square foot. Levels are smoothed
hierarchically, each towards its parent: zip -> city -> state -> global, so a zip with two
listings leans on its city, an unseen zip (or none given) *is* its city's level, and so on up.

The state is learned from training rows only and travels with the model as JSON, so serving
computes exactly what training computed. Training rows get their location levels out of fold
(`fit_transform_training`): a row's own price never feeds its own encoding, which would otherwise
teach the model to trust small zips far more than they deserve.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from mlops_assets.core import schema
from mlops_assets.core.schema import STATUSES

SQFT_PER_ACRE = 43_560.0

#: The location features: which of FEATURE_NAMES come from the fitted price levels.
LOCATION_FEATURES: list[str] = [
    "state_price_level", "city_price_level", "zip_price_level", "zip_price_per_sqft_level",
    "ppsf_price_estimate", "zip_listings",
]  # fmt: skip

FEATURE_NAMES: list[str] = [
    "bed", "bath", "acre_lot", "house_size", "bed_bath_interaction", "size_per_bed",
    "size_per_bath", "total_rooms", "lot_to_house_ratio", "acre_lot_missing",
    *(f"status_{s}" for s in STATUSES), *LOCATION_FEATURES,
]  # fmt: skip

#: The raw listing columns each feature is computed from. The location levels are keyed by place
#: (a city within its state, a zip within its city: the fallback runs zip -> city -> state), and
#: `ppsf_price_estimate` also reads house_size. price is the target: no feature reads it at prediction.
FEATURE_SOURCES: dict[str, tuple[str, ...]] = {
    "bed": ("bed",),
    "bath": ("bath",),
    "acre_lot": ("acre_lot",),
    "house_size": ("house_size",),
    "bed_bath_interaction": ("bed", "bath"),
    "size_per_bed": ("house_size", "bed"),
    "size_per_bath": ("house_size", "bath"),
    "total_rooms": ("bed", "bath"),
    "lot_to_house_ratio": ("acre_lot", "house_size"),
    "acre_lot_missing": ("acre_lot",),
    **{f"status_{s}": ("status",) for s in STATUSES},
    "state_price_level": ("state",),
    "city_price_level": ("state", "city"),
    "zip_price_level": ("state", "city", "zip_code"),
    "zip_price_per_sqft_level": ("state", "city", "zip_code"),
    "ppsf_price_estimate": ("state", "city", "zip_code", "house_size"),
    "zip_listings": ("zip_code",),
}


def column_reliance(importance: Mapping[str, float], columns: list[str] | tuple[str, ...]) -> dict[str, float]:
    """Per raw column, the share of the model's importance (mean |SHAP| per feature) carried by the
    features derived, in whole or in part, from it. A feature counts for every column it reads, so
    the shares of several columns may add up to more than 1; a column no feature reads gets 0."""
    total = sum(abs(v) for v in importance.values())
    if total <= 0:
        return dict.fromkeys(columns, 0.0)
    return {
        column: sum(abs(v) for f, v in importance.items() if column in FEATURE_SOURCES.get(f, ())) / total
        for column in columns
    }


#: What a caller must supply per listing; state and status may be missing. city and zip_code are
#: optional: without them a listing is priced at its state's level (and says so in warnings).
INPUT_COLUMNS = schema.INPUT_COLUMNS
LOCATION_COLUMNS = schema.LOCATION_COLUMNS

#: The numeric inputs whose training range the state records, and the quantiles that bound it (not min/max:
#: a few listings at the edges would otherwise stretch it).
RANGE_COLUMNS = schema.MEASURE_COLUMNS
RANGE_QUANTILES = (0.001, 0.999)

_NONE = (0, 0.0, 0.0)  # (listings, sum of log price, sum of log price per sqft) of an unseen place


def to_target(price: np.ndarray | pd.Series) -> np.ndarray:
    """Prices are heavy-tailed: the model learns log1p(price)."""
    return np.log1p(np.asarray(price, dtype="float64"))


def from_target(values: np.ndarray) -> np.ndarray:
    """Back from model space to dollars."""
    return np.expm1(np.asarray(values, dtype="float64"))


def city_key(state: object, city: object) -> str | None:
    """City names repeat across states (Portland, Springfield): a city is keyed within its state."""
    if not isinstance(state, str) or not isinstance(city, str) or not city.strip():
        return None
    return f"{state}|{' '.join(city.split()).lower()}"


@dataclass(frozen=True)
class LocationLevels:
    """Per row: the smoothed location levels (log dollars), and how much data stood behind them."""

    state: np.ndarray
    city: np.ndarray
    zip: np.ndarray
    zip_ppsf: np.ndarray
    zip_listings: np.ndarray
    known_state: np.ndarray
    known_city: np.ndarray
    known_zip: np.ndarray


@dataclass
class FeatureState:
    """Everything the features learn from training rows; JSON-serialisable."""

    acre_lot_median: float
    global_log_price: float
    global_log_ppsf: float
    smoothing: float
    """Pseudo-listings pulling a state towards the global level."""
    local_smoothing: float
    """Pseudo-listings pulling a zip towards its city and a city towards its state."""
    state_log_price: dict[str, float]
    state_counts: dict[str, int]
    state_mean_price: dict[str, float]
    global_mean_price: float
    state_stats: dict[str, list[float]] = field(default_factory=dict)
    city_stats: dict[str, list[float]] = field(default_factory=dict)
    zip_stats: dict[str, list[float]] = field(default_factory=dict)
    """Per place: [listings, sum of log1p(price), sum of log(price per sqft)]."""
    feature_names: list[str] = field(default_factory=lambda: list(FEATURE_NAMES))
    schema_version: int = 2
    ranges: dict[str, list[float]] = field(default_factory=dict)
    """Per numeric input (RANGE_COLUMNS): [low, high], the RANGE_QUANTILES of the training rows; serving warns
    outside them. Empty in a state fitted before it was recorded."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> FeatureState:
        data = json.loads(text)
        if data.get("feature_names") != FEATURE_NAMES:
            raise ValueError(f"feature state lists {data.get('feature_names')}, this code computes {FEATURE_NAMES}")
        return cls(**data)

    def levels(self, states: np.ndarray, cities: np.ndarray, zips: np.ndarray) -> LocationLevels:
        """The hierarchical levels for each row (zip -> city -> state -> global)."""
        state_n, state_lp, state_pp = _lookup(self.state_stats, states)
        city_n, city_lp, city_pp = _lookup(
            self.city_stats, [city_key(s, c) for s, c in zip(states, cities, strict=True)]
        )
        zip_n, zip_lp, zip_pp = _lookup(self.zip_stats, zips)
        m, k = self.smoothing, self.local_smoothing
        state_level = (state_lp + m * self.global_log_price) / (state_n + m)
        state_ppsf = (state_pp + m * self.global_log_ppsf) / (state_n + m)
        city_level = (city_lp + k * state_level) / (city_n + k)
        city_ppsf = (city_pp + k * state_ppsf) / (city_n + k)
        return LocationLevels(
            state=state_level,
            city=city_level,
            zip=(zip_lp + k * city_level) / (zip_n + k),
            zip_ppsf=(zip_pp + k * city_ppsf) / (zip_n + k),
            zip_listings=zip_n,
            known_state=state_n > 0,
            known_city=city_n > 0,
            known_zip=zip_n > 0,
        )


def _lookup(stats: Mapping[str, list[float]], keys) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    table = np.array([stats.get(key, _NONE) if key is not None else _NONE for key in keys], dtype="float64")
    table = table.reshape(-1, 3)
    return table[:, 0], table[:, 1], table[:, 2]


def _group_stats(keys: pd.Series, log_price: pd.Series, log_ppsf: pd.Series) -> dict[str, list[float]]:
    frame = pd.DataFrame({"key": keys, "lp": log_price, "pp": log_ppsf}).dropna(subset=["key"])
    grouped = frame.groupby("key", sort=True).agg(n=("lp", "size"), lp=("lp", "sum"), pp=("pp", "sum"))
    return {str(k): [float(n), float(lp), float(pp)] for k, n, lp, pp in grouped.itertuples()}


def _column(frame: pd.DataFrame, name: str) -> np.ndarray:
    """An optional location column (None where absent), so frames without city or zip still work."""
    if name in frame.columns:
        return frame[name].to_numpy(dtype=object)
    return np.full(len(frame), None, dtype=object)


def _ranges(clean: pd.DataFrame) -> dict[str, list[float]]:
    ranges: dict[str, list[float]] = {}
    for column in (c for c in RANGE_COLUMNS if c in clean.columns):
        values = clean[column].to_numpy(dtype="float64", na_value=np.nan)
        values = values[np.isfinite(values)]
        if len(values):
            low, high = np.quantile(values, RANGE_QUANTILES)
            ranges[column] = [float(low), float(high)]
    return ranges


def fit_feature_state(clean: pd.DataFrame, smoothing: float = 20.0, local_smoothing: float = 5.0) -> FeatureState:
    """Learn the location levels and imputation values from training rows only."""
    log_price = pd.Series(to_target(clean["price"]), index=clean.index)
    log_ppsf = pd.Series(np.log(clean["price"].to_numpy(dtype="float64") / clean["house_size"].to_numpy()), clean.index)
    state_stats = _group_stats(clean["state"], log_price, log_ppsf)
    cities = pd.Series(
        [city_key(s, c) for s, c in zip(clean["state"], _column(clean, "city"), strict=True)], index=clean.index
    )
    zips = pd.Series(_column(clean, "zip_code"), index=clean.index)
    global_log = float(log_price.mean())
    counts = {k: int(v[0]) for k, v in state_stats.items()}
    acre_median = clean["acre_lot"].median()
    return FeatureState(
        acre_lot_median=float(acre_median) if pd.notna(acre_median) else 0.0,
        global_log_price=global_log,
        global_log_ppsf=float(log_ppsf.mean()),
        smoothing=float(smoothing),
        local_smoothing=float(local_smoothing),
        state_log_price={k: (v[1] + smoothing * global_log) / (v[0] + smoothing) for k, v in state_stats.items()},
        state_counts=counts,
        state_mean_price={str(k): float(v) for k, v in clean.groupby("state")["price"].mean().items()},
        global_mean_price=float(clean["price"].mean()),
        state_stats=state_stats,
        city_stats=_group_stats(cities, log_price, log_ppsf),
        zip_stats=_group_stats(zips, log_price, log_ppsf),
        ranges=_ranges(clean),
    )


def build_features(inputs: Mapping[str, np.ndarray], state: FeatureState) -> np.ndarray:
    """The feature matrix (rows x FEATURE_NAMES, float32) from column arrays.

    `state` and `status` hold canonical names or None; acre_lot may hold NaN (imputed); `city` and
    `zip_code` (5-digit strings) are optional keys and may hold None.
    """
    bed = np.asarray(inputs["bed"], dtype="float64")
    bath = np.asarray(inputs["bath"], dtype="float64")
    house_size = np.asarray(inputs["house_size"], dtype="float64")
    acre_raw = np.asarray(inputs["acre_lot"], dtype="float64")
    acre_missing = np.isnan(acre_raw)
    acre_lot = np.where(acre_missing, state.acre_lot_median, acre_raw)
    status = np.asarray(inputs["status"], dtype="object")
    nothing = np.full(len(bed), None, dtype=object)
    place = state.levels(
        np.asarray(inputs["state"], dtype="object"),
        np.asarray(inputs.get("city", nothing), dtype="object"),
        np.asarray(inputs.get("zip_code", nothing), dtype="object"),
    )
    with np.errstate(divide="ignore"):
        log_size = np.log(house_size)
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
        place.state,
        place.city,
        place.zip,
        place.zip_ppsf,
        place.zip_ppsf + log_size,
        np.log1p(place.zip_listings),
    ]
    return np.column_stack(columns).astype("float32")


def _inputs(frame: pd.DataFrame) -> dict[str, np.ndarray]:
    return {c: frame[c].to_numpy() for c in INPUT_COLUMNS} | {c: _column(frame, c) for c in LOCATION_COLUMNS}


def transform(frame: pd.DataFrame, state: FeatureState) -> pd.DataFrame:
    """`build_features` for a clean DataFrame, with named columns."""
    return pd.DataFrame(build_features(_inputs(frame), state), columns=FEATURE_NAMES, index=frame.index)


def fit_transform_training(
    train: pd.DataFrame, folds: int = 5, seed: int = 0, **smoothing: float
) -> tuple[FeatureState, pd.DataFrame]:
    """The state fitted on all training rows (for holdout rows and serving), and the training
    matrix with every row's features computed from a state fitted on the *other* folds.

    Target encodings computed in sample leak: a zip with one listing would encode that listing's
    own price. Out of fold, the model sees training rows encoded the way it will see new ones.
    """
    state = fit_feature_state(train, **smoothing)
    if len(train) < 2 * folds:
        return state, transform(train, state)
    assignment = np.random.default_rng(seed).permutation(len(train)) % folds
    matrix = np.empty((len(train), len(FEATURE_NAMES)), dtype="float32")
    for fold in range(folds):
        inside = assignment == fold
        matrix[inside] = build_features(_inputs(train[inside]), fit_feature_state(train[~inside], **smoothing))
    return state, pd.DataFrame(matrix, columns=FEATURE_NAMES, index=train.index)
