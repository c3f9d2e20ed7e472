"""The service's contract as a user meets it, in process (no server): the OpenAPI document Swagger UI shows, the
one error shape, the one price per property, and the warning for inputs outside the model's training ranges.
The same, against a running service, is in test_endpoints.py."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
from typing import Any

import httpx
import numpy as np
import pytest
import xgboost as xgb

from mlops_assets.core.features import FeatureState, fit_feature_state, to_target, transform
from mlops_assets.ml.registry import LoadedModel
from serving.body_limit import BodyLimit
from serving.predictor import Champion, dollars, range_warnings
from serving.schemas import InvalidInput, Property, parse_batch, parse_property
from tests.model_factory import clean_rows
from tests.serving.conftest import EXAMPLE

INVALID_REF = {"$ref": "#/components/schemas/InvalidInput"}


@pytest.fixture(scope="module")
def document() -> dict:
    from serving.service import HousePriceService

    service: Any = HousePriceService  # a bentoml.Service (BentoML's type hints keep the class's type)
    return json.loads(json.dumps(service.openapi_spec.asdict()))


def _operations(document: dict):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                yield path, method, operation


def _request(app: Any, method: str, url: str, **kwargs: Any) -> httpx.Response:
    """One request to an ASGI app, in process."""

    async def send() -> httpx.Response:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://serving") as client:
            return await client.request(method, url, **kwargs)

    return asyncio.run(send())


def _schema(response: dict) -> dict:
    return response["content"]["application/json"]["schema"]


def test_the_document_carries_the_projects_title_and_version(document: dict):
    meta = importlib.metadata.metadata("mlops-assets")
    info = document["info"]
    assert info["title"].startswith(meta["Name"]) and info["version"] == meta["Version"] != "None"
    assert info["description"].startswith(meta["Summary"])
    assert "HousePriceService:dev" not in info["description"] and "BentoML Team" not in json.dumps(info)


def test_every_request_body_has_a_realistic_example_that_validates(document: dict):
    examples = {}
    for path, method, operation in _operations(document):
        if "requestBody" in operation:
            examples[f"{method.upper()} {path}"] = _schema(operation["requestBody"])["example"]
    assert set(examples) == {"POST /predict", "POST /batch_predict", "POST /explain"}
    for endpoint in ("POST /predict", "POST /explain"):
        prop = parse_property(json.dumps(examples[endpoint]).encode())
        assert 1 <= prop["bed"] <= 6 and 500 <= prop["house_size"] <= 5_000 and prop["state"] != "string"
    items = parse_batch(json.dumps(examples["POST /batch_predict"]).encode())
    assert len(items) >= 2 and all(isinstance(item, dict) for item in items)  # no item is refused


def test_422_and_413_are_documented_with_the_one_error_shape(document: dict):
    schemas = document["components"]["schemas"]
    assert "HTTPValidationError" not in schemas  # FastAPI's own 422 body: the service never answers with it
    invalid = schemas["InvalidInput"]
    assert set(invalid["required"]) == {"error", "detail"}
    assert invalid["properties"]["detail"]["items"] == {"$ref": "#/components/schemas/FieldError"}
    assert set(schemas["FieldError"]["properties"]) == {"loc", "field", "msg", "type"}
    InvalidInput.model_validate(invalid["example"])
    documented_422 = set()
    for path, method, operation in _operations(document):
        responses = operation["responses"]
        if "requestBody" in operation:
            assert _schema(responses["413"]) == INVALID_REF, path
        if "422" in responses:
            assert _schema(responses["422"]) == INVALID_REF, path
            documented_422.add(f"{method.upper()} {path}")
    assert {"POST /predict", "POST /batch_predict", "POST /explain", "GET /predictions/history",
            "GET /predictions/{request_id}/lineage", "GET /batches/{batch_id}/lineage"} <= documented_422  # fmt: skip
    for path in ("/predict", "/batch_predict", "/explain"):
        responses = document["paths"][path]["post"]["responses"]
        assert _schema(responses["503"]) == _schema(responses["500"]) == {"$ref": "#/components/schemas/Problem"}


def test_a_bad_query_parameter_gets_the_same_422_as_a_bad_body():
    from serving.app import app

    response = _request(app, "GET", "/predictions/history", params={"limit": 0})
    assert response.status_code == 422
    body = InvalidInput.model_validate(response.json())
    assert body.error == "invalid input"
    [problem] = body.detail
    assert problem.loc == ["query", "limit"] and problem.field == "limit" and "greater than or equal" in problem.msg


def test_a_413_has_the_same_shape_as_a_422():
    async def app(scope, receive, send):  # never reached
        raise AssertionError("the body should have been refused")

    limited = BodyLimit(app, max_bytes=10)
    response = _request(limited, "POST", "/predict", content=b"x" * 11, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    body = InvalidInput.model_validate(response.json())
    assert body.error == "request body too large" and body.detail[0].field == "body"
    assert body.detail[0].type == "too_large" and "at most 10" in body.detail[0].msg


# --- one price per property, and the training ranges ---


@pytest.fixture(scope="module")
def champion() -> Champion:
    rows = clean_rows((1,), rows=1_500).dropna(subset=["acre_lot"])
    state = fit_feature_state(rows)
    matrix = xgb.DMatrix(transform(rows, state).to_numpy(), label=to_target(rows["price"]))
    booster = xgb.train({"max_depth": 4, "eta": 0.3, "nthread": 1}, matrix, num_boost_round=30)
    return Champion.prepare(LoadedModel("house-price", "1", None, booster, state), "champion")


def _valid(prop: dict[str, Any]) -> Property:
    """A property as the endpoints hand it on: validated."""
    return parse_property(json.dumps(prop).encode())


def _property(row: Any) -> Property:
    columns = ("bed", "bath", "acre_lot", "house_size", "state", "status", "city")
    return _valid({**{column: getattr(row, column) for column in columns}, "zip_code": int(row.zip_code)})


def test_predict_and_explain_give_one_price_to_the_cent(champion: Champion):
    listings = clean_rows((2,), rows=300).dropna(subset=["acre_lot", "zip_code", "status", "city"])
    properties = [_property(row) for row in listings.itertuples()]
    assert len(properties) > 100
    rows = champion.rows(properties)
    prices = champion.prices(rows.x)
    for k in range(len(properties)):
        explanation = champion.explain(rows.x[k : k + 1])
        assert explanation["price"] == prices[k] == dollars(champion.predict(rows.x[k : k + 1])[0])
        # to the cent, and the cents add up exactly from the base price to the price
        for amount in (explanation["price"], explanation["base_price"], *explanation["contributions_usd"]):
            assert round(amount * 100) == pytest.approx(amount * 100, abs=1e-6)
        moved = round((explanation["price"] - explanation["base_price"]) * 100)
        assert round(sum(explanation["contributions_usd"]) * 100) == moved
        # the price is the log-space sum's, to the model's float32 precision
        total = explanation["base_value"] + sum(explanation["shap_values"])
        assert np.log1p(explanation["price"]) == pytest.approx(total, abs=1e-5)


def test_inputs_outside_the_training_ranges_are_priced_with_a_warning(champion: Champion):
    ranges = champion.model.feature_state.ranges
    assert set(ranges) == {"bed", "bath", "acre_lot", "house_size"} and all(lo < hi for lo, hi in ranges.values())
    high = ranges["house_size"][1]
    asked = [EXAMPLE, {**EXAMPLE, "bed": 0, "house_size": 1}, {**EXAMPLE, "house_size": high * 3}]
    rows = champion.rows([_valid(prop) for prop in asked])
    assert not any("training range" in w for w in rows.warnings[0])
    tiny = [w for w in rows.warnings[1] if "training range" in w]
    assert len(tiny) == 2
    assert tiny[0].startswith("bed 0 bedrooms is below the training range ")
    assert tiny[1].startswith("house_size 1 sq ft is below the training range ")
    assert tiny[1].endswith(" sq ft: the price is an extrapolation")
    assert any(w.startswith("house_size") and "is above the training range" in w for w in rows.warnings[2])


def test_the_training_ranges_are_quantiles_and_an_older_model_has_none():
    rows = clean_rows((1,), rows=1_500)
    state = fit_feature_state(rows)
    low, high = state.ranges["house_size"]
    assert rows["house_size"].min() <= low < high <= rows["house_size"].max()
    assert (rows["house_size"] < low).mean() == pytest.approx(0.001, abs=0.002)
    # a model recorded before the ranges: its feature state loads, and it prices without range warnings
    data = json.loads(state.to_json())
    del data["ranges"]
    older = FeatureState.from_json(json.dumps(data))
    assert older.ranges == {}
    assert range_warnings(older, {"house_size": np.array([1.0]), "bed": np.array([0.0])}) == {}
    assert range_warnings(state, {"house_size": np.array([1.0, 1_800.0])}) == {
        0: [f"house_size 1 sq ft is below the training range {low:,.0f}-{high:,.0f} sq ft: the price is an "
            "extrapolation"]
    }  # fmt: skip
