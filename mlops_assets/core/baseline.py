"""The naive baseline a model must beat: the training median price of the listing's place.

A house-price model that cannot beat "what do listings in this zip code cost" has learned nothing
worth serving, in any market. The place is the most specific one with enough training listings:
zip code, else city, else state, else everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.core.features import city_key


@dataclass(frozen=True)
class MedianPriceBaseline:
    """Median training price per zip / city / state, with the global median as the last resort."""

    zip_median: dict[str, float]
    city_median: dict[str, float]
    state_median: dict[str, float]
    global_median: float
    min_listings: int

    @classmethod
    def fit(cls, train: pd.DataFrame, min_listings: int = 5) -> MedianPriceBaseline:
        def medians(keys: pd.Series) -> dict[str, float]:
            grouped = train["price"].groupby(keys.to_numpy()).agg(["median", "size"])
            grouped = grouped[grouped["size"] >= min_listings]
            return {str(k): float(v) for k, v in grouped["median"].items()}

        _, cities, zips = _places(train)  # city keys are built row by row: once
        return cls(
            zip_median=medians(zips),
            city_median=medians(cities),
            state_median=medians(train["state"].astype(object)),
            global_median=float(train["price"].median()),
            min_listings=min_listings,
        )

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        states, cities, zips = _places(frame)
        out = np.full(len(frame), self.global_median, dtype="float64")
        # from the least specific to the most: each level overwrites where it knows the place
        for table, keys in ((self.state_median, states), (self.city_median, cities), (self.zip_median, zips)):
            found = keys.map(table).to_numpy(dtype="float64")
            out = np.where(np.isnan(found), out, found)
        return out


def _places(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series, pd.Series]:
    states = frame["state"].astype(object)
    city = frame["city"] if "city" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    zips = frame["zip_code"] if "zip_code" in frame.columns else pd.Series([None] * len(frame), index=frame.index)
    cities = pd.Series([city_key(s, c) for s, c in zip(states, city, strict=True)], index=frame.index, dtype=object)
    return states, cities, zips.astype(object)
