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

from mlops_assets.core.explanations import allocate_dollars
from mlops_assets.core.features import FEATURE_NAMES, FeatureState, build_features, city_key, from_target
from mlops_assets.core.states import normalize_state
from mlops_assets.ml.predict import predict_price, shap_contributions
from mlops_assets.ml.registry import LoadedModel
from serving.compiled_trees import SMALL_BATCH_ROWS, CompiledTrees, compile_trees
from serving.schemas import Property, field_error

#: Spellings are few and bounded in length; caching keeps normalisation off the per-row cost.
canonical_state = lru_cache(maxsize=4096)(normalize_state)

_PROBE: Property = {"bed": 3.0, "bath": 2.0, "acre_lot": 0.25, "house_size": 1800.0, "state": "California",
                    "city": "Los Angeles", "zip_code": "90001"}  # fmt: skip


def dollars(amount: float) -> float:
    """The one rounding of an amount of money the service answers with: US dollars to the cent. /predict,
    /batch_predict and /explain all price through `Champion.prices`, then this: one property, one price."""
    return round(float(amount), 2)


#: The unit a numeric input is given in, for the out-of-range warnings.
INPUT_UNITS = {"bed": "bedrooms", "bath": "bathrooms", "acre_lot": "acres", "house_size": "sq ft"}


def _number(value: float) -> str:
    """1800 -> '1,800', 0.25 -> '0.25', 1.5 -> '1.5', 12000.4 -> '12,000'."""
    if value == int(value) or abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.3g}"


def range_warnings(fs: FeatureState, inputs: dict[str, np.ndarray]) -> dict[int, list[str]]:
    """Per row (by index), the numeric inputs outside the range the model was trained on (`FeatureState.ranges`,
    the 0.1%-99.9% quantiles of its training rows): the model never saw such a listing, so its price is an
    extrapolation and says so. A model whose state predates the ranges gives none."""
    notes: dict[int, list[str]] = {}
    for column, unit in INPUT_UNITS.items():
        bounds = fs.ranges.get(column)
        if not bounds or column not in inputs:
            continue
        low, high = bounds
        values = inputs[column]
        span = f"{_number(low)}-{_number(high)} {unit}"
        for i in np.flatnonzero((values < low) | (values > high)).tolist():
            side = "below" if values[i] < low else "above"
            notes.setdefault(i, []).append(
                f"{column} {_number(values[i])} {unit} is {side} the training range {span}: "
                "the price is an extrapolation"
            )
    return notes


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
    #: the same trees in ONNX Runtime, for requests of at most SMALL_BATCH_ROWS rows (None: XGBoost prices all)
    compiled: CompiledTrees | None = field(default=None, repr=False)

    @property
    def version(self) -> str:
        return self.model.version

    @classmethod
    def prepare(cls, model: LoadedModel, alias: str) -> Champion:
        """Make `model` servable and prove it: a probe row must price and explain to finite numbers.

        nthread=1: the service runs one worker per core, so XGBoost threads would only contend. The compiled
        trees (`serving.compiled_trees`) are used only once they price check rows exactly as XGBoost does.
        """
        model.booster.set_param({"nthread": 1})
        champion = cls(model, alias, compiled=compile_trees(model.booster))
        rows = champion.rows([_PROBE])
        price = champion.predict(rows.x)
        shap_values, base = champion.contributions(rows.x)
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
        numbers = {
            column: np.fromiter((p[column] for p in properties), "float64", n)  # type: ignore[literal-required]
            for column in ("bed", "bath", "acre_lot", "house_size")
        }
        with np.errstate(over="ignore"):  # overflow is caught below, per row (`unusable`)
            x = build_features(
                {
                    **numbers,
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
        for i, notes in range_warnings(state, numbers).items():
            warnings[i].extend(notes)
        unusable = np.flatnonzero(~np.isfinite(x).all(axis=1)).tolist()
        return Rows(x, states, warnings, unusable)

    def price_batch(self, items: Sequence[Property | list[dict]], batch_id: str) -> PricedBatch:
        """Entries for /batch_predict, in order: a price for each valid item, the errors for the others."""
        entries: list[dict] = [{"index": i, "error": "invalid input", "detail": item} for i, item in enumerate(items)]
        properties: dict[int, Property] = {i: item for i, item in enumerate(items) if isinstance(item, dict)}
        valid = list(properties)
        if not valid:
            return PricedBatch(entries, [], None, [], [])
        rows = self.rows([properties[i] for i in valid])
        if rows.unusable:
            for k in rows.unusable:
                entries[valid[k]]["detail"] = rows.problem(k, valid[k])
            keep = sorted(set(range(len(valid))) - set(rows.unusable))
            valid, rows = [valid[k] for k in keep], rows.take(keep)
        prices = self.prices(rows.x) if valid else []
        request_ids = [f"{batch_id}-{i}" for i in valid]
        for k, i in enumerate(valid):
            entries[i] = {
                "index": i,
                "price": prices[k],
                "request_id": request_ids[k],
                "warnings": rows.warnings[k],
            }
        return PricedBatch(entries, [properties[i] for i in valid], rows, prices, request_ids)

    @property
    def predictor(self) -> str:
        """What prices a request, in words (/model)."""
        if self.compiled is None:
            return "xgboost"
        return f"onnxruntime up to {SMALL_BATCH_ROWS} rows, xgboost above (bit-identical)"

    def predict(self, x: np.ndarray) -> np.ndarray:
        """US dollars per row, unrounded (the model predicts log1p(price)). Small requests go to the compiled
        trees, which give XGBoost's float32 result to the bit (checked at `prepare`): one price either way."""
        if self.compiled is not None and len(x) <= SMALL_BATCH_ROWS:
            return from_target(self.compiled.margin(x))
        return predict_price(self.model.booster, x)

    def prices(self, x: np.ndarray) -> list[float]:
        """The price of each row as every endpoint answers it: the model's prediction, to the cent."""
        return [dollars(price) for price in self.predict(x).tolist()]

    def contributions(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(SHAP values rows x features, base value per row), in log1p(dollars): XGBoost's TreeSHAP, one thread."""
        return shap_contributions(self.model.booster, x, nthread=1)

    def explain(self, x: np.ndarray) -> dict:
        """One row's explanation, additive in log space and, via `allocate_dollars`, in dollars.

        The price is the one /predict answers (`prices`), not expm1(base_value + sum(shap_values)): the two
        differ by the model's float32 rounding (~1e-6 in log space: a dollar on a million), and a property must
        not get two prices. That residue goes to the largest contribution, so the cents still add up.
        """
        shap_values, base = self.contributions(x[:1])
        [price] = self.prices(x[:1])
        base_value = float(base[0])
        values = shap_values[0].astype("float64")
        base_price = dollars(float(np.expm1(base_value)))
        return {
            "price": price,
            "base_value": base_value,
            "base_price": base_price,
            "shap_values": values.tolist(),
            "feature_names": list(FEATURE_NAMES),
            "feature_values": x[0].astype("float64").tolist(),
            "contributions_usd": _in_cents(allocate_dollars(base_value, values)[2], price - base_price).tolist(),
        }


def _in_cents(contributions: np.ndarray, total: float) -> np.ndarray:
    """`contributions` to the cent, summing to `total` (dollars to the cent) exactly in cents: the residue of the
    rounding, and of the float32 model's arithmetic, goes to the largest one."""
    cents = np.round(np.asarray(contributions, dtype="float64") * 100.0)
    if len(cents):
        largest = int(np.argmax(np.abs(cents)))
        cents[largest] += round(total * 100.0) - cents.sum()
    return cents / 100.0
