"""One loaded champion, ready to answer: features from the shared core, prices, TreeSHAP.

A `Champion` never changes after `prepare`; the holder swaps whole objects, so a request that took
one keeps a consistent model, feature state and version to the end.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
import xgboost as xgb

from mlops_assets.core.explanations import allocate_dollars
from mlops_assets.core.features import FEATURE_NAMES, build_features, city_key, from_target
from mlops_assets.core.states import normalize_state
from mlops_assets.ml.registry import LoadedModel
from serving.schemas import Property, field_error

#: Spellings are few and bounded in length; caching keeps normalisation off the per-row cost.
canonical_state = lru_cache(maxsize=4096)(normalize_state)

_PROBE: Property = {"bed": 3.0, "bath": 2.0, "acre_lot": 0.25, "house_size": 1800.0, "state": "California",
                    "city": "Los Angeles", "zip_code": "90001"}  # fmt: skip


@dataclass(frozen=True)
class Rows:
    """Validated properties as the model sees them, with a warning list per row.

    `unusable` lists the rows whose features are not finite: inputs inside the validated ranges
    can still overflow a derived feature (a house_size of 1e-40 sqft makes lot_to_house_ratio
    infinite), and such a row gets a 422, not a guess.
    """

    x: np.ndarray
    states: list[str | None]
    warnings: list[list[str]]
    unusable: list[int]

    def take(self, keep: list[int]) -> Rows:
        return Rows(self.x[keep], [self.states[i] for i in keep], [self.warnings[i] for i in keep], [])

    def problem(self, index: int, batch_index: int | None = None) -> list[dict]:
        names = [n for n, v in zip(FEATURE_NAMES, self.x[index], strict=True) if not np.isfinite(v)]
        return [
            field_error(
                ("house_size",), f"too small for the model: {', '.join(names)} overflows", "value_error", batch_index
            )
        ]


def _warnings(fs, raw_state, state, status, city, zip_code) -> list[str]:
    """What the model could not use for this row, in words (the price is still given)."""
    notes = []
    if state is None:
        notes.append(f"unknown state {raw_state!r}: priced at the global mean price level")
    elif state not in fs.state_log_price:
        notes.append(f"no training data for state {state!r}: priced at the global mean price level")
    if status is None:
        notes.append("no status given: priced without a listing status")
    known_city = city_key(state, city) in fs.city_stats
    if zip_code is not None and zip_code not in fs.zip_stats:
        level = "its city's" if known_city else "the state's"
        notes.append(f"no training data for zip code {zip_code!r}: priced at {level} price level")
    elif zip_code is None and not known_city:
        notes.append("no known zip code or city given: priced at the state's price level (less precise)")
    return notes


@dataclass(frozen=True)
class PricedBatch:
    entries: list[dict]
    properties: list[Property]  # the priced ones, in order
    rows: Rows | None
    prices: list[float]
    request_ids: list[str]


@dataclass(frozen=True)
class Champion:
    model: LoadedModel
    alias: str
    loaded_at: float = field(default_factory=time.time)

    @property
    def version(self) -> str:
        return self.model.version

    @classmethod
    def prepare(cls, model: LoadedModel, alias: str) -> Champion:
        """Make `model` servable and prove it: a probe row must price and explain to finite numbers.

        nthread=1: the service runs one worker per core, so XGBoost threads would only contend.
        """
        model.booster.set_param({"nthread": 1})
        champion = cls(model, alias)
        rows = champion.rows([_PROBE])
        price = champion.predict(rows.x)
        base, shap_values = champion.contributions(rows.x)
        if not (np.isfinite(price).all() and np.isfinite(shap_values).all() and np.isfinite(base)):
            raise ValueError(f"version {model.version} gives non-finite output on a probe row")
        return champion

    def rows(self, properties: Sequence[Property]) -> Rows:
        n = len(properties)
        state = self.model.feature_state
        raw_states = [p["state"] for p in properties]
        states = [canonical_state(s) for s in raw_states]
        statuses = [p.get("status") for p in properties]
        cities = [p.get("city") for p in properties]
        zips = [p.get("zip_code") for p in properties]
        with np.errstate(over="ignore"):  # overflow is caught below, per row (`unusable`)
            x = build_features(
                {
                    "bed": np.fromiter((p["bed"] for p in properties), "float64", n),
                    "bath": np.fromiter((p["bath"] for p in properties), "float64", n),
                    "acre_lot": np.fromiter((p["acre_lot"] for p in properties), "float64", n),
                    "house_size": np.fromiter((p["house_size"] for p in properties), "float64", n),
                    "state": np.array(states, dtype=object),
                    "status": np.array(statuses, dtype=object),
                    "city": np.array(cities, dtype=object),
                    "zip_code": np.array(zips, dtype=object),
                },
                state,
            )
        warnings = [
            _warnings(state, raw, canonical, status, city, zip_code)
            for raw, canonical, status, city, zip_code in zip(raw_states, states, statuses, cities, zips, strict=True)
        ]
        unusable = np.flatnonzero(~np.isfinite(x).all(axis=1)).tolist()
        return Rows(x, states, warnings, unusable)

    def price_batch(self, items: Sequence[Property | list[dict]], batch_id: str) -> PricedBatch:
        """Entries for /batch_predict, in order: a price for each valid item, the errors for the others."""
        entries: list[dict] = [{"index": i, "error": "invalid input", "detail": item} for i, item in enumerate(items)]
        valid = [i for i, item in enumerate(items) if isinstance(item, dict)]
        if not valid:
            return PricedBatch(entries, [], None, [], [])
        rows = self.rows([items[i] for i in valid])
        if rows.unusable:
            for k in rows.unusable:
                entries[valid[k]]["detail"] = rows.problem(k, valid[k])
            keep = sorted(set(range(len(valid))) - set(rows.unusable))
            valid, rows = [valid[k] for k in keep], rows.take(keep)
        prices = self.predict(rows.x).tolist() if valid else []
        request_ids = [f"{batch_id}-{i}" for i in valid]
        for k, i in enumerate(valid):
            entries[i] = {
                "index": i,
                "price": round(prices[k], 2),
                "request_id": request_ids[k],
                "warnings": rows.warnings[k],
            }
        return PricedBatch(entries, [items[i] for i in valid], rows, prices, request_ids)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """US dollars per row (the model predicts log1p(price))."""
        return from_target(self.model.booster.inplace_predict(x))

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(base value per row, SHAP values rows x features), in log1p(dollars): XGBoost's TreeSHAP."""
        matrix = xgb.DMatrix(x, feature_names=FEATURE_NAMES, nthread=1)
        contribs = self.model.booster.predict(matrix, pred_contribs=True)
        return contribs[:, -1], contribs[:, :-1]

    def explain(self, x: np.ndarray) -> dict:
        """One row's explanation, additive in log space and, via `allocate_dollars`, in dollars."""
        base, shap_values = self.contributions(x[:1])
        base_value = float(base[0])
        values = shap_values[0].astype("float64")
        base_price, price, dollars = allocate_dollars(base_value, values)
        return {
            "price": price,
            "base_value": base_value,
            "base_price": base_price,
            "shap_values": values.tolist(),
            "feature_names": list(FEATURE_NAMES),
            "feature_values": x[0].astype("float64").tolist(),
            "contributions_usd": dollars.tolist(),
        }
