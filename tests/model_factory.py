"""Train and register a small real model without Dagster: for tests that need a champion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mlops_assets.core.cleaning import clean_listings
from mlops_assets.core.features import FeatureState, fit_transform_training, to_target, transform
from mlops_assets.core.metrics import regression_metrics
from mlops_assets.core.schema import coerce_raw
from mlops_assets.core.splits import digest, is_holdout
from mlops_assets.ml.predict import predict_price
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.ml.tracking import record_training
from mlops_assets.ml.training import TrainedModel, TuningConfig, tune_and_fit
from mlops_assets.sources.generator import ListingGenerator


@dataclass
class Trained:
    version: str
    model: TrainedModel
    state: FeatureState
    holdout: pd.DataFrame
    holdout_x: np.ndarray


def clean_rows(batches=(1, 2), seed: int = 42, rows: int = 3_000) -> pd.DataFrame:
    generator = ListingGenerator(seed=seed, batches=max(batches), min_rows=rows, max_rows=rows)
    return pd.concat([clean_listings(coerce_raw(generator.batch(k))).frame for k in batches], ignore_index=True)


def train_and_register(
    tracking_uri: str,
    model_name: str = "house-price",
    batches=(1, 2),
    trials: int = 2,
    promote: bool = True,
    artifact_location: str | None = None,
) -> Trained:
    data = clean_rows(batches)
    mask = is_holdout(data["listing_id"])
    train, holdout = data[~mask], data[mask]
    state, train_x = fit_transform_training(train)
    model = tune_and_fit(train_x.to_numpy(), to_target(train["price"]), TuningConfig(n_trials=trials))
    holdout_x = transform(holdout, state).to_numpy()
    metrics = regression_metrics(holdout["price"], predict_price(model.booster, holdout_x))
    recorded, _ = record_training(
        tracking_uri=tracking_uri,
        experiment=model_name,
        artifact_location=artifact_location,
        model_name=model_name,
        model=model,
        feature_state=state,
        metrics=metrics,
        holdout_x=holdout_x,
        tags={"batch_id": f"{max(batches):05d}", "trigger": "test"},
        holdout={"rows": len(holdout), "digest": digest(holdout["listing_id"])},
    )
    if promote:
        ModelRegistry(tracking_uri, model_name).promote(recorded.model_version, "test champion")
    return Trained(recorded.model_version, model, state, holdout, holdout_x)
