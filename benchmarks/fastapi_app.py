"""The common alternative, for the serving benchmark: the same champion behind a plain FastAPI app.

    uvicorn benchmarks.fastapi_app:app --workers 2 --port 3100

The work a user would write - pydantic validation, the core's features, XGBoost `inplace_predict`
(nthread=1), TreeSHAP for /explain - and none of the service's extras (no compiled trees for small requests, no
inference log, no metrics, no alias polling): what a quick FastAPI wrapper usually is.
"""

from __future__ import annotations

import uuid
from typing import Annotated

import numpy as np
from fastapi import FastAPI
from pydantic import BaseModel, Field

from mlops_assets.core.explanations import allocate_dollars
from mlops_assets.core.features import FEATURE_NAMES, build_features, from_target
from mlops_assets.core.states import normalize_state
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.settings import Settings

Finite = Field(allow_inf_nan=False)


class House(BaseModel):
    bed: Annotated[float, Finite, Field(ge=0, le=50)]
    bath: Annotated[float, Finite, Field(ge=0, le=50)]
    acre_lot: Annotated[float, Finite, Field(ge=0, le=100_000)]
    house_size: Annotated[float, Finite, Field(gt=0, le=1_000_000)]
    state: Annotated[str, Field(min_length=1, max_length=64)]
    status: str | None = None
    city: Annotated[str | None, Field(max_length=128)] = None
    zip_code: Annotated[str | None, Field(pattern=r"^\d{5}$")] = None


settings = Settings.from_env()
model = ModelRegistry(settings.mlflow_tracking_uri, settings.model_name, settings.model_alias).load_alias()
if model is None:
    raise SystemExit(f"no model holds {settings.model_name}@{settings.model_alias}")
model.booster.set_param({"nthread": 1})
app = FastAPI()


def _features(houses: list[House]) -> np.ndarray:
    return build_features(
        {
            "bed": np.array([h.bed for h in houses]),
            "bath": np.array([h.bath for h in houses]),
            "acre_lot": np.array([h.acre_lot for h in houses]),
            "house_size": np.array([h.house_size for h in houses]),
            "state": np.array([normalize_state(h.state) for h in houses], dtype=object),
            "status": np.array([h.status for h in houses], dtype=object),
            "city": np.array([h.city for h in houses], dtype=object),
            "zip_code": np.array([h.zip_code for h in houses], dtype=object),
        },
        model.feature_state,
    )


@app.post("/predict")
async def predict(house: House) -> dict:
    x = _features([house])
    price = float(from_target(model.booster.inplace_predict(x))[0])
    return {
        "price": round(price, 2),
        "model_version": model.version,
        "request_id": uuid.uuid4().hex,
        "features_used": dict(zip(FEATURE_NAMES, x[0].tolist(), strict=True)),
    }


@app.post("/batch_predict")
def batch_predict(houses: list[House]) -> dict:
    prices = from_target(model.booster.inplace_predict(_features(houses)))
    return {
        "predictions": [{"index": i, "price": round(p, 2)} for i, p in enumerate(prices.tolist())],
        "model_version": model.version,
    }


@app.post("/explain")
async def explain(house: House) -> dict:
    import xgboost as xgb

    x = _features([house])
    contribs = model.booster.predict(xgb.DMatrix(x, feature_names=FEATURE_NAMES, nthread=1), pred_contribs=True)[0]
    _, price, dollars = allocate_dollars(float(contribs[-1]), contribs[:-1].astype("float64"))
    return {
        "price": price,
        "base_value": float(contribs[-1]),
        "shap_values": contribs[:-1].tolist(),
        "contributions_usd": dollars.tolist(),
        "model_version": model.version,
    }
