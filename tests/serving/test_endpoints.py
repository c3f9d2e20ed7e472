"""Every endpoint of a real `bentoml serve` process serving a champion from a real MLflow server."""

from __future__ import annotations

import importlib.metadata
import json
import math
import uuid

import numpy as np
import pandas as pd
import pytest
import requests
import sqlalchemy as sa

from mlops_assets.core.features import FEATURE_NAMES, build_features, transform
from mlops_assets.core.properties import property_keys
from mlops_assets.ml.predict import predict_price
from serving.schemas import MAX_BODY_BYTES, InvalidInput
from tests.serving.conftest import EXAMPLE, READ_TOKEN, REJECTED, TOKEN, Service, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def _property(row) -> dict:
    return {k: (None if isinstance(row[k], float) and math.isnan(row[k]) else row[k]) for k in
            ("bed", "bath", "acre_lot", "house_size", "state", "status", "city", "zip_code")}  # fmt: skip


def _holdout(serving: Service, n: int):
    rows = serving.first.holdout.dropna(subset=["acre_lot"]).head(n)
    return rows, [_property(r) for _, r in rows.iterrows()]


def test_before_a_champion_exists_it_runs_but_is_not_ready_and_says_why(serving: Service):
    seen = serving.before_champion
    health = seen["health"].json()
    assert seen["health"].status_code == 200
    assert health["status"] == "no_champion" and health["model_loaded"] is False
    # the best candidate's figures and the rule it failed, and what an operator can do about it
    best = health["no_champion"]["best_candidate"]
    assert best["version"] == serving.first.version and best["verdict"] == "rejected"
    assert best["verdict_reason"] == REJECTED and {"r2_log", "median_ape", "rmse"} <= set(best["metrics"])
    message = health["no_champion"]["message"]
    assert message.startswith("no champion: no candidate has passed the promotion gate (1 trained)")
    assert f"best candidate v{serving.first.version} (R2(log) " in message and REJECTED in message
    assert "promote_manually" in message and message in health["problems"]
    assert seen["readyz"].status_code == 503 and "no champion: no candidate has passed" in seen["readyz"].text
    assert seen["predict"].status_code == 503 and seen["predict"].json()["error"] == "no model loaded yet"
    assert seen["predict"].json()["detail"] == message
    assert seen["model"].status_code == 503


def test_predict_prices_like_training_does(serving: Service):
    rows, properties = _holdout(serving, 20)
    loaded = serving.model(serving.first.version)
    expected = predict_price(loaded.booster, transform(rows, loaded.feature_state).to_numpy())
    for prop, price in zip(properties, expected, strict=True):
        response = serving.post("/predict", prop)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) >= {"price", "model_name", "model_version", "model_alias", "request_id", "features_used",
                             "warnings"}  # fmt: skip
        if body["model_version"] == serving.first.version:
            assert body["price"] == pytest.approx(price, abs=0.01)
        assert list(body["features_used"]) == FEATURE_NAMES
        assert body["model_name"] == serving.model_name and body["model_alias"] == "champion"


def test_location_is_priced_from_zip_to_state_and_the_fallbacks_are_said(serving: Service):
    _, [prop] = _holdout(serving, 1)
    known = serving.post("/predict", prop).json()
    assert known["warnings"] == [] and prop["zip_code"] is not None
    used = known["features_used"]
    assert used["zip_price_level"] != used["state_price_level"]  # the zip's own level
    unknown_zip = serving.post("/predict", {**prop, "zip_code": "99999"}).json()
    assert any("zip code '99999'" in w and "city's price level" in w for w in unknown_zip["warnings"])
    assert unknown_zip["features_used"]["zip_price_level"] == pytest.approx(used["city_price_level"], rel=1e-6)
    nowhere = serving.post("/predict", {**prop, "zip_code": None, "city": None}).json()
    assert any("state's price level" in w for w in nowhere["warnings"])
    assert nowhere["features_used"]["zip_price_level"] == pytest.approx(used["state_price_level"], rel=1e-6)


def test_an_unknown_state_uses_the_global_mean_and_says_so(serving: Service):
    known = serving.post("/predict", {**EXAMPLE, "state": "CA"}).json()
    assert not any("state" in w and "global mean" in w for w in known["warnings"])
    assert known["features_used"] == serving.post("/predict", EXAMPLE).json()["features_used"]
    unknown = serving.post("/predict", {**EXAMPLE, "state": "Atlantis"}).json()
    state = serving.model(unknown["model_version"]).feature_state
    assert unknown["features_used"]["state_price_level"] == pytest.approx(state.global_log_price, rel=1e-6)
    assert any("Atlantis" in w and "global mean" in w for w in unknown["warnings"])
    no_status = serving.post("/predict", {k: v for k, v in EXAMPLE.items() if k != "status"}).json()
    assert any("status" in w for w in no_status["warnings"])


def test_batch_predict_answers_every_item_in_order(serving: Service):
    _, properties = _holdout(serving, 50)
    body = [*properties[:10], {**EXAMPLE, "bed": -1}, *properties[10:], {**EXAMPLE, "house_size": 1e-40}]
    response = serving.post("/batch_predict", body)
    assert response.status_code == 200, response.text
    result = response.json()
    assert result["count"] == 52 and result["failed"] == 2 and len(result["predictions"]) == 52
    assert [p["index"] for p in result["predictions"]] == list(range(52))
    assert result["predictions"][51]["detail"][0]["field"] == "house_size"
    bad = result["predictions"][10]
    assert "price" not in bad and bad["detail"][0]["field"] == "bed" and bad["detail"][0]["loc"] == ["body", 10, "bed"]
    single = [serving.post("/predict", p).json()["price"] for p in properties[:5]]
    assert [p["price"] for p in result["predictions"][:5]] == single

    big = serving.post("/batch_predict", [EXAMPLE] * 10_000)
    assert big.status_code == 200 and len(big.json()["predictions"]) == 10_000
    too_big = serving.post("/batch_predict", [EXAMPLE] * 10_001)
    assert too_big.status_code == 422 and "10,000" in too_big.json()["detail"][0]["msg"]


def test_explain_is_treeshap_additive_and_honest_about_units(serving: Service):
    import shap

    _, properties = _holdout(serving, 5)
    for prop in [EXAMPLE, *properties]:
        response = serving.post("/explain", prop)
        assert response.status_code == 200, response.text
        body = response.json()
        loaded = serving.model(body["model_version"])
        x = np.asarray([body["feature_values"]], dtype="float32")
        explainer = shap.TreeExplainer(loaded.booster)
        np.testing.assert_allclose(body["shap_values"], explainer.shap_values(x)[0], atol=1e-4)
        assert body["base_value"] == pytest.approx(float(np.ravel(explainer.expected_value)[0]), abs=1e-4)
        assert body["feature_names"] == FEATURE_NAMES
        # additive in log space (to the float32 model's precision), and the dollars add up to the price, to the cent
        assert body["base_value"] + sum(body["shap_values"]) == pytest.approx(math.log1p(body["price"]), abs=1e-5)
        assert sum(body["contributions_usd"]) == pytest.approx(body["price"] - body["base_price"], abs=1e-6)
        assert body["base_price"] == pytest.approx(math.expm1(body["base_value"]), abs=0.005)
        assert body["units"]["shap_values"].startswith("log1p") and body["units"]["contributions_usd"].startswith("US")
        # the very price /predict gives: one property, one price
        assert body["price"] == serving.post("/predict", prop).json()["price"]
        # the features are the core's
        columns = {k: np.array([prop[k]], dtype=object) for k in ("bed", "bath", "acre_lot", "house_size", "state")}
        for key in ("status", "city", "zip_code"):
            columns[key] = np.array([prop.get(key)], dtype=object)
        expected_x = build_features(columns, loaded.feature_state)
        np.testing.assert_array_equal(x, expected_x)


def test_predict_batch_predict_and_explain_give_one_price_for_one_property(serving: Service):
    _, properties = _holdout(serving, 30)
    batch = serving.post("/batch_predict", properties).json()
    for prop, item in zip(properties, batch["predictions"], strict=True):
        predicted, explained = serving.post("/predict", prop).json(), serving.post("/explain", prop).json()
        if predicted["model_version"] == explained["model_version"] == batch["model_version"]:
            assert predicted["price"] == explained["price"] == item["price"] == round(item["price"], 2)


def test_an_input_outside_the_training_ranges_is_priced_with_a_warning(serving: Service):
    body = serving.post("/predict", {**EXAMPLE, "bed": 0, "house_size": 1}).json()
    ranges = serving.model(body["model_version"]).feature_state.ranges
    assert ranges["bed"][0] > 0 and ranges["house_size"][0] > 1
    outside = [w for w in body["warnings"] if "training range" in w]
    assert [w.split(" is ")[0] for w in outside] == ["bed 0 bedrooms", "house_size 1 sq ft"]
    assert all(w.endswith("the price is an extrapolation") for w in outside) and body["price"] > 0
    assert not any("training range" in w for w in serving.post("/predict", EXAMPLE).json()["warnings"])
    [item] = serving.post("/batch_predict", [{**EXAMPLE, "house_size": 1}]).json()["predictions"]
    assert any(w.startswith("house_size 1 sq ft is below the training range") for w in item["warnings"])


def test_swagger_try_it_out_works_as_it_comes(serving: Service):
    """Every operation with a body documents an example (what Swagger UI's "Try it out" sends), and it is priced."""
    document = serving.get("/docs.json").json()
    meta = importlib.metadata.metadata("mlops-assets")
    assert document["info"]["title"].startswith(meta["Name"]) and document["info"]["version"] == meta["Version"]
    tried = []
    for path, item in document["paths"].items():
        request = (item.get("post") or {}).get("requestBody")
        if request is None:
            continue
        example = request["content"]["application/json"]["schema"]["example"]
        response = serving.post(path, example)
        assert response.status_code == 200, (path, response.text)
        tried.append(path)
    assert sorted(tried) == ["/batch_predict", "/explain", "/predict"]


def test_every_422_has_the_one_documented_shape(serving: Service):
    """A 422 from a BentoML API, a FastAPI query parameter or a path parameter: one shape, the documented one."""
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    answers = {
        "POST /predict": serving.post("/predict", {**EXAMPLE, "bed": -1}),
        "POST /explain": serving.post("/explain", data=b"{"),
        "POST /batch_predict": serving.post("/batch_predict", []),
        "GET /predictions/history": serving.get("/predictions/history", params={"limit": 0}, headers=read),
        "GET /predictions/{request_id}/lineage": serving.get("/predictions/not-an-id/lineage", headers=read),
        "GET /batches/{batch_id}/lineage": serving.get("/batches/a b/lineage", headers=read),
    }
    document = serving.get("/docs.json").json()
    for endpoint, response in answers.items():
        assert response.status_code == 422, (endpoint, response.text)
        body = InvalidInput.model_validate(response.json())  # error + detail [{loc, field, msg, type}], nothing else
        assert body.error and body.detail and body.detail[0].loc[0] in ("body", "query", "path"), endpoint
        method, path = endpoint.split(" ")
        documented = document["paths"][path][method.lower()]["responses"]["422"]
        assert documented["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/InvalidInput"}
    assert answers["GET /predictions/history"].json()["detail"][0]["field"] == "limit"
    assert answers["GET /predictions/{request_id}/lineage"].json()["detail"][0]["loc"] == ["path", "request_id"]


BAD_BODIES = [
    ({k: v for k, v in EXAMPLE.items() if k != "bed"}, "bed", "Field required"),
    ({**EXAMPLE, "bath": "2"}, "bath", "valid number"),
    ({**EXAMPLE, "bath": True}, "bath", "valid number"),
    ({**EXAMPLE, "bed": -1}, "bed", "greater than or equal to 0"),
    ({**EXAMPLE, "bed": 51}, "bed", "less than or equal to 50"),
    ({**EXAMPLE, "house_size": 0}, "house_size", "greater than 0"),
    ({**EXAMPLE, "house_size": 1e12}, "house_size", "less than or equal to 1000000"),
    ({**EXAMPLE, "house_size": 1e-40}, "house_size", "too small for the model"),  # > 0, but overflows a feature
    ({**EXAMPLE, "acre_lot": -0.5}, "acre_lot", "greater than or equal to 0"),
    ({**EXAMPLE, "acre_lot": None}, "acre_lot", "valid number"),
    ({**EXAMPLE, "state": ""}, "state", "at least 1 character"),
    ({**EXAMPLE, "state": "x" * 65}, "state", "at most 64 characters"),
    ({**EXAMPLE, "status": "haunted"}, "status", "unknown status"),
    ({**EXAMPLE, "city": "y" * 500}, "city", "at most 128 characters"),
    ({**EXAMPLE, "zip_code": "ABCDE"}, "zip_code", "5 digits"),
    # PostgreSQL cannot store NUL: once, such a row cost every other client's rows held with it
    ({**EXAMPLE, "state": "CA\u0000"}, "state", "control characters"),
    ({**EXAMPLE, "city": "Bos\u0000ton"}, "city", "control characters"),
    ({**EXAMPLE, "city": "Bos\nton"}, "city", "control characters"),
]
RAW_BAD_BODIES = [
    (b'{"bed": NaN, "bath": 2, "acre_lot": 0.25, "house_size": 1800, "state": "CA"}', "bed", "finite number"),
    (b'{"bed": 3, "bath": Infinity, "acre_lot": 0.25, "house_size": 1800, "state": "CA"}', "bath", "finite number"),
    (b'{"bed": 3, "bath": 2, "acre_lot": 1e999, "house_size": 1800, "state": "CA"}', "acre_lot", "finite number"),
    (b'{"bed": 3, "bath": 2,', "body", "Invalid JSON"),
    (b"", "body", "Invalid JSON"),
    (b"[1, 2]", "body", "object"),
    (b'"just a string"', "body", "object"),
]


@pytest.mark.parametrize("path", ["/predict", "/explain"])
def test_bad_inputs_get_a_422_naming_the_field_and_the_reason(serving: Service, path: str):
    cases = [(json.dumps(b).encode(), f, m) for b, f, m in BAD_BODIES] + RAW_BAD_BODIES
    for data, field, reason in cases:
        response = serving.post(path, data=data)
        assert response.status_code == 422, (data, response.status_code, response.text)
        detail = response.json()["detail"]
        assert any(d["field"] == field and reason in d["msg"] for d in detail), (data, detail)


def test_bad_batch_bodies_get_a_422(serving: Service):
    for data, reason in [
        (b"{not json", "Invalid JSON"),
        (json.dumps(EXAMPLE).encode(), "JSON list"),
        (b"[]", "empty"),
        (json.dumps([EXAMPLE] * 10_001).encode(), "at most 10,000"),
    ]:
        response = serving.post("/batch_predict", data=data)
        assert response.status_code == 422 and reason in response.json()["detail"][0]["msg"], response.text


def test_read_endpoints(serving: Service):
    # a registry poll that timed out on a loaded machine makes a worker "degraded" until its next poll (seen once
    # in a run with other test sessions): wait for it to pass, and show the problems if it does not
    seen: list[dict] = []

    def healthy() -> bool:
        seen.append(serving.get("/health").json())
        return seen[-1]["status"] == "healthy"

    try:
        wait_until(healthy, 30, "serving healthy")
    except TimeoutError:
        raise AssertionError(seen[-1]) from None
    health = seen[-1]
    assert health["model_loaded"] and health["explainer_loaded"], health
    assert serving.get("/readyz").status_code == 200

    model = serving.get("/model").json()
    fields = {"model_name", "model_version", "model_alias", "run_id", "metrics", "trained_at", "feature_names"}
    assert fields <= set(model)
    assert model["feature_names"] == FEATURE_NAMES and {"rmse", "r2"} <= set(model["metrics"]) and model["run_id"]

    states = serving.get("/states").json()
    names = [s["state"] for s in states["states"]]
    loaded = serving.model(model["model_version"]).feature_state
    assert names == sorted(loaded.state_mean_price) and states["global_mean_price"] == loaded.global_mean_price
    assert all(s["mean_price"] > 0 for s in states["states"])


def test_predictions_are_logged_to_inference_log_and_raw_data(serving: Service):
    city = f"logcheck-{uuid.uuid4().hex[:8]}"
    ids = [serving.post("/predict", {**EXAMPLE, "state": "VT", "city": city, "zip_code": 5401}).json()["request_id"]
           for _ in range(3)]  # fmt: skip
    batch = serving.post("/batch_predict", [{**EXAMPLE, "state": "Vermont", "city": city}] * 4).json()
    ids += [p["request_id"] for p in batch["predictions"]]

    engine = sa.create_engine(serving.database_url)
    try:

        def logged():
            raw_query = "SELECT source, price, state, zip_code, batch_id FROM raw_listings WHERE city = :city"
            log_query = (
                "SELECT request_id, endpoint, model_version, price, latency_ms, state FROM inference_log"
                " WHERE request_id = ANY(:ids)"
            )
            with engine.connect() as c:
                raw = c.execute(sa.text(raw_query), {"city": city}).all()
                log = c.execute(sa.text(log_query), {"ids": ids}).all()
            return (raw, log) if len(raw) == 7 and len(log) == 7 else None

        raw, log = wait_until(logged, 30, "7 predictions in raw_listings and inference_log")
    finally:
        engine.dispose()
    assert {r.source for r in raw} == {"inference"} and all(r.price is None for r in raw)
    assert all(r.batch_id.startswith("inference-") for r in raw)
    assert sorted(r.zip_code for r in raw if r.zip_code is not None) == [5401.0] * 3
    assert {r.endpoint for r in log} == {"predict", "batch_predict"} and {r.state for r in log} == {"Vermont"}
    assert all(r.price > 0 and r.latency_ms >= 0 for r in log)

    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    history = serving.get("/predictions/history", params={"limit": 5, "state": "VT"}, headers=read).json()
    assert history["count"] == 5 and all(p["state"] == "Vermont" for p in history["predictions"])
    times = [p["created_at"] for p in history["predictions"]]
    assert times == sorted(times, reverse=True)
    for bad in ({"limit": 0}, {"limit": 100_000}, {"limit": "many"}, {"state": "\u0000"}, {"state": "V\tT"}):
        assert serving.get("/predictions/history", params=bad, headers=read).status_code == 422, bad

    summary = serving.get("/metrics/summary").json()
    assert summary["count"] >= 7 and summary["min_price"] <= summary["mean_price"] <= summary["max_price"]
    assert summary["mean_latency_ms"] > 0 and sum(summary["versions_used"].values()) == summary["count"]
    # latency per request, not per row: the 4-item batch is one request (its rows share its id and latency)
    endpoints = summary["endpoints"]
    assert summary["requests"] == sum(e["requests"] for e in endpoints.values()) < summary["count"]
    assert endpoints["batch_predict"]["predictions"] >= 4 and endpoints["batch_predict"]["requests"] >= 1
    predict = endpoints["predict"]
    assert 0 < predict["p50_latency_ms"] <= predict["p95_latency_ms"] <= predict["max_latency_ms"]
    assert summary["outcomes"]["predict"]["ok"] >= 3  # the counters, over both workers


def test_the_prediction_history_of_every_client_needs_a_token(serving: Service):
    """What other clients asked is theirs: the history takes the read token (or the admin token)."""
    refused = serving.get("/predictions/history")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert serving.get("/predictions/history", headers={"Authorization": "Bearer nope"}).status_code == 403
    for token in (READ_TOKEN, TOKEN):
        assert serving.get("/predictions/history", headers={"Authorization": f"Bearer {token}"}).status_code == 200
    assert serving.get("/metrics/summary").status_code == 200  # aggregates only: open


def test_the_lineage_of_a_prediction_needs_the_token_and_a_well_formed_known_id(serving: Service):
    """A request id leads to another client's request: the lineage takes the read token, like the history. Serving's
    own database holds the inference log but no pipeline history: the trace stops at the model and says why."""
    answer = serving.post("/predict", EXAMPLE).json()
    path = f"/predictions/{answer['request_id']}/lineage"
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    refused = serving.get(path)
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert serving.get(path, headers={"Authorization": "Bearer nope"}).status_code == 403
    assert serving.get("/predictions/not-an-id/lineage").status_code == 401  # nothing said without the token
    for bad in ("not-an-id", answer["request_id"].upper(), answer["request_id"] + "-x", "0" * 65):
        malformed = serving.get(f"/predictions/{bad}/lineage", headers=read)
        assert malformed.status_code == 422 and malformed.json()["error"] == "invalid request id", bad
    unknown = serving.get(f"/predictions/{uuid.uuid4().hex}/lineage", headers=read)
    assert unknown.status_code == 404 and unknown.json()["error"].startswith("no logged prediction has request id ")

    def traced(request_path: str, token: str = READ_TOKEN) -> dict | None:
        response = serving.get(request_path, headers={"Authorization": f"Bearer {token}"})
        return response.json() if response.status_code == 200 else None

    lineage = wait_until(lambda: traced(path), 30, "the prediction is logged")
    logged = lineage["prediction"]
    assert logged["request_id"] == answer["request_id"] and logged["endpoint"] == "predict"
    assert logged["model_version"] == answer["model_version"] and logged["price"] == pytest.approx(answer["price"])
    assert lineage["model"] is None and lineage["training_batches"] == [] and lineage["verdict"] is None
    assert lineage["problems"] == ["this warehouse has no model history: the pipeline recorded no model here"]
    assert traced(path, TOKEN) == lineage  # the admin token works too

    [item] = serving.post("/batch_predict", [EXAMPLE]).json()["predictions"]
    item_lineage = wait_until(lambda: traced(f"/predictions/{item['request_id']}/lineage"), 30, "the item is logged")
    assert item_lineage["prediction"]["endpoint"] == "batch_predict"


def test_the_lineage_of_a_batch_needs_the_token_and_a_known_batch(serving: Service):
    read = {"Authorization": f"Bearer {READ_TOKEN}"}
    assert serving.get("/batches/00001/lineage").status_code == 401
    assert serving.get("/batches/00001/lineage", headers={"Authorization": "Bearer nope"}).status_code == 403
    for bad in ("a b", "-1", "x" * 33):
        malformed = serving.get(f"/batches/{bad}/lineage", headers=read)
        assert malformed.status_code == 422 and malformed.json()["error"] == "invalid batch id", bad
    unknown = serving.get("/batches/00001/lineage", headers=read)  # no pipeline has loaded anything here
    assert unknown.status_code == 404 and unknown.json()["error"] == "no batch 00001 in the warehouse"


def test_a_body_over_the_limit_is_refused_before_it_is_read(serving: Service):
    too_large = MAX_BODY_BYTES + 1
    declared = requests.post(serving.url + "/batch_predict", data=b"[" + b" " * too_large + b"]", timeout=60,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert declared.status_code == 413 and declared.json()["detail"][0]["field"] == "body"
    assert InvalidInput.model_validate(declared.json()).error == "request body too large"  # a 422's shape

    def chunks():  # no Content-Length: counted as it arrives
        yield b"["
        for _ in range(too_large // 65_536 + 1):
            yield b" " * 65_536
        yield b"]"

    streamed = requests.post(serving.url + "/predict", data=chunks(), timeout=60,
                             headers={"Content-Type": "application/json"})  # fmt: skip
    assert streamed.status_code == 413 and "at most" in streamed.json()["detail"][0]["msg"]
    assert serving.post("/predict", EXAMPLE).status_code == 200  # and the service goes on


def test_metrics_are_exported_with_bounded_labels(serving: Service):
    serving.post("/predict", {**EXAMPLE, "state": "Narnia-label-check"})
    serving.post("/predict", {**EXAMPLE, "bed": -1})
    text = serving.get("/metrics").text
    for name in ("predictions_total", "prediction_latency_seconds_bucket", "prediction_price_dollars_bucket",
                 "model_loaded", "explainer_loaded", "model_info", "model_reloads_total",
                 "bentoml_service_request_total"):  # fmt: skip
        assert name in text, name
    assert "Narnia" not in text
    assert serving.metric("predictions_total", endpoint="predict", outcome="ok") > 0
    assert serving.metric("predictions_total", endpoint="predict", outcome="invalid") > 0
    assert serving.metric("prediction_latency_seconds_bucket", endpoint="predict", le="0.0005") >= 0


def test_reload_needs_the_admin_token(serving: Service):
    refused = serving.post("/reload")
    assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    assert serving.post("/reload", headers={"Authorization": "Basic c2VjcmV0"}).status_code == 401
    assert serving.post("/reload", headers={"Authorization": "Bearer wrong-token"}).status_code == 403
    allowed = serving.post("/reload", headers={"Authorization": f"Bearer {TOKEN}"})
    assert allowed.status_code == 200, allowed.text
    body = allowed.json()
    assert body["new_version"] == serving.get("/model").json()["model_version"] and body["all_workers_synced"]
    assert len(body["workers"]) == 2


def test_a_request_that_names_the_property_is_logged_with_its_property_key(serving: Service):
    named = {**EXAMPLE, "city": f"keycheck-{uuid.uuid4().hex[:8]}", "zip_code": "90001", "brokered_by": 5, "street": 7}
    named_id = serving.post("/predict", named).json()["request_id"]
    anonymous_id = serving.post("/predict", {**named, "brokered_by": None, "street": None}).json()["request_id"]
    assert serving.post("/predict", {**named, "street": -1}).status_code == 422
    engine = sa.create_engine(serving.database_url)
    try:

        def logged():
            query = "SELECT request_id, property_key FROM inference_log WHERE request_id IN (:a, :b)"
            with engine.connect() as c:
                rows = dict(c.execute(sa.text(query), {"a": named_id, "b": anonymous_id}).all())
            return rows if len(rows) == 2 else None

        keys = wait_until(logged, 30, "both predictions in inference_log")
    finally:
        engine.dispose()
    listing = pd.DataFrame([{**named, "state": "California", "brokered_by": 5.0, "street": 7.0}])
    assert keys[named_id] == property_keys(listing)[0]  # the key its sale will carry in clean_listings
    assert keys[anonymous_id] is None  # without broker and street a sale could match it only by size and place
