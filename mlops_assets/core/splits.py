"""The holdout split: by listing id, so a listing is in the holdout forever.

Every model, whenever trained, leaves the same listings out; two models can therefore be compared on
identical rows that neither has seen.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def is_holdout(listing_ids: pd.Series | np.ndarray, fraction: float = 0.2) -> np.ndarray:
    """True for listings in the holdout: the id's hash bucket (of 10,000) is below the fraction."""
    if not 0 < fraction < 1:
        raise ValueError(f"holdout fraction must be between 0 and 1, got {fraction}")
    ids = np.asarray(listing_ids, dtype=object)
    buckets = np.fromiter((int(i[-8:], 16) % 10_000 for i in ids), dtype="int64", count=len(ids))
    return buckets < round(fraction * 10_000)


def digest(listing_ids: pd.Series | np.ndarray) -> str:
    """A fingerprint of a set of listings (order-free), to record which rows a metric used."""
    joined = "\n".join(sorted(map(str, listing_ids)))
    return hashlib.sha256(joined.encode()).hexdigest()[:16]
