"""A seeded generator of realistic realtor listings, with drift built into the batch sequence.

The real file (2.2M rows) may not be shipped, so this reproduces what matters for the pipeline:
the 12 columns with their real types (IDs and zip codes as floats, dates as text), state-level
price levels, heavy tails, absurd values, missing values at the real rates, exact duplicates,
and a sequence of regimes - region mix, price inflation, house sizes - that a drift gate must
judge, including batches that do not really differ from the one before.

Location matters the way it does in the real file: each state has a fixed geography of cities
and zip codes (the same in every batch), and prices vary far more *within* a state - by city and
by zip - than between states, with the luxury tail concentrated in a few zips. A model that
knows only the state cannot price these listings well; the zip and city levels can.

Sales arrive later, as they do on a real listings site: part of each batch's `for_sale` listings reappear
in a later batch (1-4 batches on) as `sold` - the same property (broker, street, city, state, zip, beds,
baths, size, lot), at a price drawn from a realistic sale-to-list ratio. That is the delayed ground truth the
platform joins to its earlier predictions (`core/properties.py`, `assets/outcomes.py`).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache, lru_cache

import numpy as np
import pandas as pd

from mlops_assets.core.schema import RAW_COLUMNS
from mlops_assets.core.states import STATE_ABBREVIATIONS

# Median listing price (dollars) and a rough share of listings, per state.
_STATES: dict[str, tuple[int, float]] = {
    "CA": (800_000, 9.0), "TX": (350_000, 9.0), "FL": (420_000, 8.0), "NY": (600_000, 5.0),
    "PA": (280_000, 4.0), "IL": (300_000, 3.5), "OH": (220_000, 3.5), "GA": (370_000, 3.5),
    "NC": (380_000, 3.5), "MI": (240_000, 3.0), "NJ": (500_000, 3.0), "VA": (420_000, 2.5),
    "WA": (650_000, 2.5), "AZ": (460_000, 2.5), "MA": (650_000, 2.0), "TN": (370_000, 2.2),
    "IN": (250_000, 2.0), "MO": (250_000, 1.8), "MD": (400_000, 1.8), "WI": (300_000, 1.6),
    "CO": (600_000, 1.7), "MN": (330_000, 1.5), "SC": (350_000, 1.8), "AL": (260_000, 1.5),
    "LA": (250_000, 1.3), "KY": (230_000, 1.2), "OR": (520_000, 1.2), "OK": (230_000, 1.1),
    "CT": (420_000, 1.0), "UT": (550_000, 1.0), "IA": (230_000, 0.9), "NV": (450_000, 0.9),
    "AR": (230_000, 0.8), "MS": (200_000, 0.8), "KS": (250_000, 0.8), "NM": (330_000, 0.6),
    "NE": (270_000, 0.6), "ID": (480_000, 0.6), "WV": (190_000, 0.5), "HI": (900_000, 0.4),
    "NH": (450_000, 0.4), "ME": (380_000, 0.4), "MT": (550_000, 0.4), "RI": (450_000, 0.3),
    "DE": (380_000, 0.3), "SD": (300_000, 0.3), "ND": (280_000, 0.2), "AK": (350_000, 0.2),
    "DC": (650_000, 0.2), "VT": (400_000, 0.2), "WY": (380_000, 0.2), "PR": (180_000, 0.4),
    "VI": (500_000, 0.05), "GU": (400_000, 0.03),
}  # fmt: skip

REGIONS: dict[str, tuple[str, ...]] = {
    "northeast": ("PR", "VI", "MA", "CT", "NH", "VT", "NJ", "NY", "ME", "RI", "PA", "DE", "MD", "DC"),
    "south": ("TX", "FL", "GA", "NC", "SC", "TN", "AL", "LA", "MS", "AR", "OK", "KY", "VA", "WV"),
    "midwest": ("OH", "MI", "IN", "IL", "WI", "MN", "IA", "MO", "KS", "NE", "SD", "ND"),
    "west": ("CA", "WA", "OR", "CO", "AZ", "NV", "UT", "ID", "MT", "WY", "NM", "AK", "HI", "GU"),
}

_CITIES: dict[str, tuple[str, ...]] = {
    "CA": ("Los Angeles", "San Diego", "San Jose", "Sacramento"), "TX": ("Houston", "Dallas", "Austin", "San Antonio"),
    "FL": ("Miami", "Tampa", "Orlando", "Jacksonville"), "NY": ("New York City", "Buffalo", "Rochester"),
    "PA": ("Philadelphia", "Pittsburgh"), "IL": ("Chicago", "Naperville"), "OH": ("Columbus", "Cleveland"),
    "GA": ("Atlanta", "Savannah"), "NC": ("Charlotte", "Raleigh"), "MI": ("Detroit", "Grand Rapids"),
    "NJ": ("Newark", "Jersey City"), "VA": ("Virginia Beach", "Richmond"), "WA": ("Seattle", "Spokane"),
    "AZ": ("Phoenix", "Tucson"), "MA": ("Boston", "Worcester"), "TN": ("Nashville", "Memphis"),
    "CO": ("Denver", "Colorado Springs"), "PR": ("San Juan", "Ponce", "Adjuntas"), "VI": ("Charlotte Amalie",),
    "DC": ("Washington",),
}  # fmt: skip

# First three zip digits per state (a representative range), for zip codes of the right shape.
_ZIP3: dict[str, tuple[int, int]] = {
    "PR": (6, 7), "VI": (8, 8), "MA": (10, 27), "RI": (28, 29), "NH": (30, 38), "ME": (39, 49),
    "VT": (50, 59), "CT": (60, 69), "NJ": (70, 89), "NY": (100, 149), "PA": (150, 196),
    "DE": (197, 199), "DC": (200, 205), "MD": (206, 219), "VA": (220, 246), "WV": (247, 268),
    "NC": (270, 289), "SC": (290, 299), "GA": (300, 319), "FL": (320, 349), "AL": (350, 369),
    "TN": (370, 385), "MS": (386, 397), "KY": (400, 427), "OH": (430, 459), "IN": (460, 479),
    "MI": (480, 499), "IA": (500, 528), "WI": (530, 549), "MN": (550, 567), "SD": (570, 577),
    "ND": (580, 588), "MT": (590, 599), "IL": (600, 629), "MO": (630, 658), "KS": (660, 679),
    "NE": (680, 693), "LA": (700, 714), "AR": (716, 729), "OK": (730, 749), "TX": (750, 799),
    "CO": (800, 816), "WY": (820, 831), "ID": (832, 838), "UT": (840, 847), "AZ": (850, 865),
    "NM": (870, 884), "NV": (889, 898), "CA": (900, 961), "HI": (967, 968), "GU": (969, 969),
    "OR": (970, 979), "WA": (980, 994), "AK": (995, 999),
}  # fmt: skip

#: Town names that recur across states (as Springfield and Franklin do), so a city is only
#: identified within its state.
_TOWNS = (
    "Springfield", "Franklin", "Greenville", "Bristol", "Clinton", "Fairview", "Salem", "Madison",
    "Georgetown", "Arlington", "Ashland", "Dover", "Oxford", "Jackson", "Burlington", "Manchester",
    "Milton", "Newport", "Auburn", "Lexington", "Milford", "Riverside", "Winchester", "Hudson",
)  # fmt: skip

# Within-state variation, in log price: a city's level, a zip's level within its city, and the
# luxury zips (a few percent of them) that hold most of the very expensive listings.
CITY_SPREAD = 0.35
ZIP_SPREAD = 0.25
LUXURY_ZIP_SHARE = 0.04
LUXURY_FACTOR = (2.0, 4.5)
LUXURY_NOISE = 0.45
LISTING_NOISE = 0.30


@dataclass(frozen=True)
class Place:
    """One zip code of the geography, with its city and its price factor."""

    state: str  # postal code
    city: str
    zip_code: int
    factor: float
    noise: float


@cache
def geography(seed: int) -> dict[str, tuple[tuple[Place, ...], np.ndarray]]:
    """Per state: its zip codes and the probability that a listing of the state lies in each.

    Fixed per generator seed (not per batch), so a zip code means the same place in every batch.
    """
    rng = np.random.default_rng([seed, 0])
    places: dict[str, tuple[tuple[Place, ...], np.ndarray]] = {}
    for code, (_, share) in _STATES.items():
        known = list(_CITIES.get(code, ()))
        n_cities = int(np.clip(round(2 + share * 1.5), 3, 14))
        names = known + [t for t in rng.permutation(_TOWNS) if t not in known][: max(0, n_cities - len(known))]
        low, high = _ZIP3[code]
        zips = rng.permutation(np.arange(low * 100, (high + 1) * 100))
        state_places: list[Place] = []
        weights: list[float] = []
        for rank, city in enumerate(names):
            city_factor = float(np.exp(rng.normal(0, CITY_SPREAD)))
            city_weight = 1.0 / (rank + 1)  # a few big cities, many small towns
            n_zips = int(rng.integers(2, 7))
            for _ in range(n_zips):
                luxury = rng.random() < LUXURY_ZIP_SHARE
                factor = city_factor * float(np.exp(rng.normal(0, ZIP_SPREAD)))
                if luxury:
                    factor *= float(rng.uniform(*LUXURY_FACTOR))
                zip_code = int(zips[len(state_places) % len(zips)])
                state_places.append(Place(code, city, zip_code, factor, LUXURY_NOISE if luxury else LISTING_NOISE))
                weights.append(city_weight / n_zips)
        probabilities = np.array(weights) / np.sum(weights)
        places[code] = (tuple(state_places), probabilities)
    return places


# Listings without details (land, mostly): bed, bath and house_size all missing together.
NO_DETAILS_RATE = 0.2
# Further missing values per column, so the totals land near the real file's rates
# (bed ~22%, bath ~23%, house_size ~26%, acre_lot ~15%, prev_sold_date over half).
MISSING_RATES = {
    "bed": 0.025, "bath": 0.04, "house_size": 0.075, "acre_lot": 0.15, "prev_sold_date": 0.52,
    "price": 0.0007, "brokered_by": 0.002, "street": 0.005, "city": 0.0005, "zip_code": 0.0003,
}  # fmt: skip


@dataclass(frozen=True)
class Regime:
    """What a batch's market looks like: where listings come from, price and size levels."""

    region: str | None  # None: the national mix
    inflation: float = 1.0
    size_factor: float = 1.0


#: The built-in sequence: a baseline, a batch that does not really differ, then moves to other
#: regions with rising prices and larger houses. Batches past its end repeat the last regime.
DEFAULT_REGIMES: tuple[Regime, ...] = (
    Regime("northeast"),
    Regime("northeast"),
    Regime("south", inflation=1.05, size_factor=1.2),
    Regime("south", inflation=1.05, size_factor=1.2),
    Regime("west", inflation=1.25, size_factor=1.1),
    Regime(None, inflation=1.3, size_factor=1.1),
    Regime(None, inflation=1.3, size_factor=1.1),
    Regime("midwest", inflation=1.35, size_factor=1.0),
)


def _state_weights(region: str | None) -> tuple[list[str], np.ndarray]:
    codes = list(_STATES)
    weights = np.array([_STATES[c][1] for c in codes], dtype="float64")
    if region is not None:
        in_region = np.array([c in REGIONS[region] for c in codes])
        weights = np.where(in_region, weights * 30.0, weights)
    return codes, weights / weights.sum()


def _locate(
    state_codes: np.ndarray, rng: np.random.Generator, seed: int
) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """City, zip code, price factor and price noise per listing, from the state's geography."""
    world = geography(seed)
    cities = np.empty(len(state_codes), dtype=object)
    zips = np.zeros(len(state_codes), dtype="int64")
    factor = np.ones(len(state_codes))
    noise = np.full(len(state_codes), LISTING_NOISE)
    for code in np.unique(state_codes):
        rows = np.flatnonzero(state_codes == code)
        places, probabilities = world[str(code)]
        picked = rng.choice(len(places), size=len(rows), p=probabilities)
        cities[rows] = [places[i].city for i in picked]
        zips[rows] = [places[i].zip_code for i in picked]
        factor[rows] = [places[i].factor for i in picked]
        noise[rows] = [places[i].noise for i in picked]
    return list(cities), zips, factor, noise


def generate_listings(n: int, regime: Regime, rng: np.random.Generator, seed: int = 42) -> pd.DataFrame:
    """`n` raw listings (before missing values, absurd prices and duplicates are mixed in)."""
    codes, probabilities = _state_weights(regime.region)
    state_codes = rng.choice(codes, size=n, p=probabilities)
    cities, zip_codes, location_factor, location_noise = _locate(state_codes, rng, seed)
    size = np.exp(rng.normal(np.log(1750 * regime.size_factor), 0.42, n))
    tail = rng.random(n) < 0.01
    size[tail] *= rng.pareto(2.0, tail.sum()) + 1.5
    bed = np.clip(np.round(size / 650 + rng.normal(0.6, 0.8, n)), 1, 30)
    bath = np.clip(np.round(bed * 0.75 + rng.normal(0.2, 0.55, n)), 1, 25)
    acre_lot = np.round(np.exp(rng.normal(np.log(0.25), 1.3, n)), 2)
    status = rng.choice(["for_sale", "sold", "ready_to_build"], size=n, p=[0.62, 0.35, 0.03])
    level = np.array([_STATES[c][0] for c in state_codes], dtype="float64") * regime.inflation
    status_factor = np.select([status == "sold", status == "ready_to_build"], [0.95, 0.8], 1.0)
    price = (
        level
        * (size / 1750) ** 0.85
        * (1 + 0.04 * (bath - 2))
        * (1 + 0.05 * np.log1p(acre_lot))
        * status_factor
        * location_factor
        * np.exp(rng.normal(0, 1, n) * location_noise)
    )
    days = rng.integers(0, (pd.Timestamp("2022-12-31") - pd.Timestamp("1990-01-01")).days, n)
    return pd.DataFrame(
        {
            "brokered_by": rng.integers(1, 110_000, n).astype("float64"),
            "status": status,
            "price": np.round(price, -2),
            "bed": bed,
            "bath": bath,
            "acre_lot": acre_lot,
            "street": rng.integers(1, 2_000_000, n).astype("float64"),
            "city": cities,
            "state": [STATE_ABBREVIATIONS[c] for c in state_codes],
            "zip_code": zip_codes.astype("float64"),
            "house_size": np.round(size),
            "prev_sold_date": (pd.Timestamp("1990-01-01") + pd.to_timedelta(days, unit="D")).strftime("%Y-%m-%d"),
        },
        columns=list(RAW_COLUMNS),
    )


def add_imperfections(frame: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Missing values at the real rates, a few absurd prices and exact duplicate rows."""
    frame = frame.copy()
    n = len(frame)
    frame.loc[rng.random(n) < NO_DETAILS_RATE, ["bed", "bath", "house_size"]] = np.nan
    for column, rate in MISSING_RATES.items():
        frame.loc[rng.random(n) < rate, column] = np.nan if column != "prev_sold_date" else None
    absurd_low = rng.random(n) < 0.0003
    absurd_high = rng.random(n) < 0.0002
    frame.loc[absurd_low, "price"] = rng.integers(1, 100, absurd_low.sum()).astype("float64")
    frame.loc[absurd_high, "price"] = 100_000_000.0
    duplicates = frame.iloc[rng.integers(0, n, max(1, n // 200))]
    frame = pd.concat([frame, duplicates], ignore_index=True)
    return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


#: The share of a batch's `for_sale` listings that sell within the next MAX_SALE_LAG batches (each lag
#: equally likely), and the sale-to-list ratio: median 0.985, most sales within a few percent of the list
#: price, as in US markets of the 2010s-2020s.
SALE_RATE = 0.3
MAX_SALE_LAG = 4
SALE_TO_LIST_MEDIAN = 0.985
SALE_TO_LIST_SPREAD = 0.05
#: The fields a sold row copies from its listing: the property and its broker (core.properties).
SOLD_COPIES = ("brokered_by", "bed", "bath", "acre_lot", "street", "city", "state", "zip_code", "house_size",
               "prev_sold_date")  # fmt: skip


@dataclass(frozen=True)
class ListingGenerator:
    """Batch k of the built-in sequence, deterministic in (seed, k): its new listings plus the sales of
    listings from up to MAX_SALE_LAG batches before it."""

    seed: int = 42
    batches: int = 8
    min_rows: int = 4_000
    max_rows: int = 30_000
    regimes: tuple[Regime, ...] = DEFAULT_REGIMES
    sale_rate: float = SALE_RATE

    def regime(self, batch_number: int) -> Regime:
        return self.regimes[min(batch_number, len(self.regimes)) - 1]

    def batch(self, batch_number: int) -> pd.DataFrame | None:
        """Rows of batch `batch_number` (1-based); None once the sequence is exhausted."""
        if not 1 <= batch_number <= self.batches:
            return None
        sold = [
            sales[sales["sale_batch"] == batch_number].drop(columns="sale_batch")
            for earlier in range(max(1, batch_number - MAX_SALE_LAG), batch_number)
            if not (sales := _sales_of(self, earlier)).empty
        ]
        fresh = _new_listings(self, batch_number)
        if not any(len(s) for s in sold):
            return fresh.copy()
        rng = np.random.default_rng([self.seed, batch_number, 2])
        frame = pd.concat([fresh, *sold], ignore_index=True)
        return frame.iloc[rng.permutation(len(frame))].reset_index(drop=True)


@lru_cache(maxsize=64)
def _new_listings(generator: ListingGenerator, batch_number: int) -> pd.DataFrame:
    """The listings that first appear in a batch (cached: later batches read them for their sales)."""
    rng = np.random.default_rng([generator.seed, batch_number])
    n = int(rng.integers(generator.min_rows, generator.max_rows + 1))
    return add_imperfections(generate_listings(n, generator.regime(batch_number), rng, generator.seed), rng)


@lru_cache(maxsize=64)
def _sales_of(generator: ListingGenerator, batch_number: int) -> pd.DataFrame:
    """The `for_sale` listings of a batch that sell later: their sold rows, with the batch they sell in."""
    listings = _new_listings(generator, batch_number)
    on_sale = listings[(listings["status"] == "for_sale") & (listings["price"] >= 10_000)].drop_duplicates()
    rng = np.random.default_rng([generator.seed, batch_number, 1])
    sells = rng.random(len(on_sale)) < generator.sale_rate
    sold = on_sale[sells].copy()
    ratio = np.exp(rng.normal(np.log(SALE_TO_LIST_MEDIAN), SALE_TO_LIST_SPREAD, len(sold)))
    sold["status"] = "sold"
    sold["price"] = np.round(sold["price"].to_numpy() * ratio, -2)
    sold["sale_batch"] = batch_number + rng.integers(1, MAX_SALE_LAG + 1, len(sold))
    return sold[[*RAW_COLUMNS, "sale_batch"]].reset_index(drop=True)
