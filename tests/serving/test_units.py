"""The serving pieces that need no server: what serving imports, validation, the dollar allocation,
the bulk price histogram, and the inference log's rows (on a real SQLite file)."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Histogram

from mlops_assets.core.explanations import allocate_dollars
from serving import metrics
from serving.inference_log import InferenceLogger, LogBatch, open_warehouse, utcnow
from serving.schemas import InputError, parse_batch, parse_property
from tests.processes import ROOT
from tests.serving.conftest import EXAMPLE


@pytest.mark.slow  # imports the service in a fresh interpreter
def test_the_service_imports_no_pipeline_library():
    code = (
        "import sys, serving.service; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'dagster', 'evidently', 'optuna', 'shap'}))"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_validation_normalises_what_it_accepts():
    prop = parse_property(json.dumps({**EXAMPLE, "state": " CA ", "status": "For Sale", "zip_code": 2108}).encode())
    assert prop["state"] == "CA" and prop["status"] == "for_sale" and prop["zip_code"] == "02108"
    assert parse_property(json.dumps({**EXAMPLE, "zip_code": "02108-1234"}).encode())["zip_code"] == "02108"
    with pytest.raises(InputError) as error:
        parse_property(json.dumps({**EXAMPLE, "zip_code": True}).encode())
    assert error.value.errors[0]["field"] == "zip_code"


def test_a_batch_keeps_valid_items_and_reports_each_invalid_one():
    items = parse_batch(json.dumps([EXAMPLE, {**EXAMPLE, "bath": "two"}, EXAMPLE]).encode())
    assert isinstance(items[0], dict) and isinstance(items[2], dict)
    assert items[1] == [{"loc": ["body", 1, "bath"], "field": "bath", "msg": "Input should be a valid number",
                         "type": "float_type"}]  # fmt: skip


@pytest.mark.parametrize(
    "base, shap_values",
    [
        (12.9, [0.3, -0.1, 0.05, 0.0]),
        (12.9, [0.2, -0.2]),  # moves cancel: price == base price
        (13.5, [-2.0, -1.5, 0.25]),
        (11.0, [1e-9, 3.0, -0.4, 2.2]),
        (13.0, []),
    ],
)
def test_dollar_contributions_sum_exactly_to_price_minus_base(base, shap_values):
    base_price, price, dollars = allocate_dollars(base, np.array(shap_values))
    assert base_price == pytest.approx(np.expm1(base)) and price == pytest.approx(np.expm1(base + sum(shap_values)))
    assert float(np.sum(dollars)) == pytest.approx(price - base_price, abs=1e-6)
    # each feature keeps the sign of its log-space contribution
    assert all(np.sign(d) == np.sign(s) for d, s in zip(dollars, shap_values, strict=True) if abs(s) > 1e-6)


def test_bulk_price_observation_equals_one_by_one(monkeypatch):
    prices = np.random.default_rng(1).lognormal(13, 1.3, 5_000)
    prices[:3] = [50e3, 1e6, 1e9]  # on a bound, on a bound, past the last one

    def histogram() -> tuple[CollectorRegistry, Histogram]:
        registry = CollectorRegistry()
        return registry, Histogram("p", "p", buckets=metrics.PRICE._upper_bounds[:-1], registry=registry)

    bulk_registry, bulk = histogram()
    monkeypatch.setattr(metrics, "PRICE", bulk)
    metrics.observe_prices(prices)
    single_registry, single = histogram()
    for price in prices:
        single.observe(price)
    samples = [{s.labels.get("le"): s.value for s in next(iter(r.collect())).samples if s.name.endswith("bucket")}
               for r in (bulk_registry, single_registry)]  # fmt: skip
    assert samples[0] == samples[1]
    assert bulk_registry.get_sample_value("p_sum") == pytest.approx(single_registry.get_sample_value("p_sum"))


def test_the_inference_log_writes_both_tables(tmp_path):
    warehouse = open_warehouse(f"sqlite:///{tmp_path / 'log.db'}")
    engine = warehouse.engine
    log = InferenceLogger(warehouse, max_rows=10, batch_rows=5, flush_seconds=0.05)
    log.start()
    props = [parse_property(json.dumps({**EXAMPLE, "city": "Boston", "zip_code": "02108"}).encode())] * 3
    batch = LogBatch("batch_predict", "house-price", "7", utcnow(), 1.5, ["a-0", "a-1", "a-2"], props,
                     ["California"] * 3, [1.0, 2.0, 3.0], [[], ["a warning"], []])  # fmt: skip
    assert log.submit(batch)
    assert not log.submit(
        LogBatch(
            "predict",
            "house-price",
            "7",
            utcnow(),
            1.0,
            list("abcdefgh"),
            (props * 3)[:8],
            [None] * 8,
            [1.0] * 8,
            [[]] * 8,
        )
    )  # fmt: skip  (8 more rows > 10: dropped)
    deadline = time.monotonic() + 10
    while log.written < 3 and time.monotonic() < deadline:
        time.sleep(0.05)
    log.stop()
    assert log.written == 3 and log.dropped == 8 and log.pending_rows == 0
    with engine.connect() as c:
        logged = c.execute(sa.text("SELECT request_id, model_version, price, warnings FROM inference_log "
                                   "ORDER BY request_id")).all()  # fmt: skip
        raw = c.execute(sa.text("SELECT source, price, city, state, zip_code, status FROM raw_listings")).all()
    assert [(r.request_id, r.model_version, r.price) for r in logged] == [("a-0", "7", 1.0), ("a-1", "7", 2.0),
                                                                         ("a-2", "7", 3.0)]  # fmt: skip
    assert json.loads(logged[1].warnings) == ["a warning"]
    assert set(raw) == {("inference", None, "Boston", "California", 2108.0, "for_sale")}
