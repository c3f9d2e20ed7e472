"""The serving pieces that need no server: what serving imports, validation, the dollar allocation,
the bulk price histogram, the inference log's rows (on a real SQLite file) and the summary's figures."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from datetime import timedelta

import numpy as np
import pytest
import sqlalchemy as sa
from prometheus_client import CollectorRegistry, Histogram

from mlops_assets.core.explanations import allocate_dollars
from mlops_assets.storage.warehouse import inference_log
from serving import metrics
from serving.app import outcome_counts, request_latencies
from serving.inference_log import InferenceLogger, LogBatch, ensure_tables, open_warehouse, utcnow
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


def _rows(n: int, prefix: str, city: str = "Boston") -> LogBatch:
    prop = {**parse_property(json.dumps(EXAMPLE).encode()), "city": city}  # city as given: past validation
    return LogBatch("batch_predict", "house-price", "7", utcnow(), 1.0, [f"{prefix}-{i}" for i in range(n)],
                    [prop] * n, ["California"] * n, [1.0] * n, [[]] * n)  # fmt: skip


def _written(log: InferenceLogger, rows: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while log.written + log.dropped < rows and time.monotonic() < deadline:
        time.sleep(0.05)


@pytest.mark.postgres
def test_a_row_the_database_refuses_costs_only_itself(postgres_url):
    """A NUL byte (here past validation, as a future bug might let one through) fails PostgreSQL's COPY for the
    whole transaction; once, the writer dropped every row held with it - other clients' rows too."""
    log = InferenceLogger(open_warehouse(postgres_url), max_rows=1_000, batch_rows=500, flush_seconds=0.05)
    good, bad = _rows(300, "good"), _rows(1, "bad", city="Bos\x00ton")
    for batch in (_rows(100, "early"), bad, good):
        assert log.submit(batch)
    log.start()
    _written(log, 401)
    log.stop()
    assert log.written == 400 and log.dropped == 1 and log.pending_rows == 0
    assert log.recently_dropped() and "0x00" in (log.last_rejection or "")
    with log.warehouse.engine.connect() as c:
        ids = {r[0] for r in c.execute(sa.text("SELECT request_id FROM inference_log"))}
        raw = c.execute(sa.text("SELECT count(*) FROM raw_listings")).scalar()
    assert len(ids) == 400 and "bad-0" not in ids and raw == 400


def test_a_batch_waits_for_room_while_the_database_is_up_and_not_while_it_is_away(tmp_path):
    log = InferenceLogger(open_warehouse(f"sqlite:///{tmp_path / 'log.db'}"), max_rows=10, batch_rows=5,
                          flush_seconds=0.05)  # fmt: skip
    assert log.reserve(8, timeout=0) is True and log.pending_rows == 8
    assert log.reserve(8, timeout=0.2) is False  # no writer yet: no room comes
    log.cancel(8)
    assert log.reserve(25, timeout=0) is True  # larger than the whole buffer: alone, once it is empty
    log.cancel(25)
    assert log.reserve(8, timeout=0) is True
    assert log.submit(_rows(8, "a"), reserved=True)
    log.start()
    assert log.reserve(8, timeout=10) is True  # the writer made room
    assert log.submit(_rows(8, "b"), reserved=True)
    _written(log, 16)
    assert log.written == 16 and log.dropped == 0 and not log.recently_dropped()
    log.database_ok = False  # as the writer marks it when the database is away
    assert log.reserve(8, timeout=10) is None  # predictions do not wait for a database that is away
    log.stop()


def test_concurrent_batches_lose_no_row_while_the_database_is_up(tmp_path):
    """The issue's reproduction in process: many large batches at once against a small buffer."""
    from concurrent.futures import ThreadPoolExecutor

    log = InferenceLogger(open_warehouse(f"sqlite:///{tmp_path / 'log.db'}"), max_rows=3_000, batch_rows=1_000,
                          flush_seconds=0.05)  # fmt: skip
    log.start()

    def request(i: int) -> bool:
        if log.reserve(1_500, timeout=30) is not True:
            return False
        return log.submit(_rows(1_500, f"r{i}"), reserved=True)

    with ThreadPoolExecutor(6) as pool:
        accepted = list(pool.map(request, range(12)))
    _written(log, 18_000, timeout=60)
    log.stop()
    assert all(accepted) and log.written == 18_000 and log.dropped == 0


def test_stopping_writes_what_is_still_queued(tmp_path):
    """On SIGTERM BentoML runs the service's on_shutdown, which stops the log: queued rows are written, not lost."""
    log = InferenceLogger(
        open_warehouse(f"sqlite:///{tmp_path / 'log.db'}"), max_rows=100, batch_rows=50, flush_seconds=60
    )  # fmt: skip  (nothing would be written for a minute)
    log.start()
    assert log.submit(_rows(7, "late"))
    log.stop(timeout=10)
    assert log.written == 7 and log.pending_rows == 0


def test_the_summary_times_requests_not_rows(tmp_path):
    """One 2,000-row batch at 75 ms and three 3 ms predictions are four requests, not 2,003 rows: the batch
    weighs one request in the mean and the percentiles, per endpoint and overall."""
    engine = open_warehouse(f"sqlite:///{tmp_path / 'log.db'}").engine
    ensure_tables(engine)
    now = utcnow()
    batch = uuid.uuid4().hex

    def row(request_id: str, endpoint: str, latency: float, when=now) -> dict:
        return {"request_id": request_id, "created_at": when, "endpoint": endpoint, "model_name": "house-price",
                "model_version": "7", "price": 1.0, "latency_ms": latency}  # fmt: skip

    rows = [row(f"{batch}-{i}", "batch_predict", 75.0) for i in range(2_000)]
    rows += [row(uuid.uuid4().hex, "predict", latency) for latency in (2.0, 3.0, 4.0)]
    rows += [row(uuid.uuid4().hex, "predict", 500.0, when=now - timedelta(hours=25))]  # outside the window
    rows += [row(uuid.uuid4().hex, "explain", 40.0)]
    with engine.begin() as connection:
        connection.execute(inference_log.insert(), rows)
    with engine.connect() as connection:
        figures = request_latencies(connection, now - timedelta(hours=24))
    latency = ("mean_latency_ms", "p50_latency_ms", "p95_latency_ms", "max_latency_ms")
    batches, predictions = figures["batch_predict"], figures["predict"]
    assert (batches["requests"], batches["predictions"]) == (1, 2_000)
    assert [batches[k] for k in latency] == [75.0, 75.0, 75.0, 75.0]
    assert (predictions["requests"], predictions["predictions"]) == (3, 3)
    assert [predictions[k] for k in latency] == [3.0, 3.0, 4.0, 4.0]
    assert figures["explain"]["requests"] == 1 and figures["explain"]["p50_latency_ms"] == 40.0
    engine.dispose()


def test_the_summary_counts_refused_and_failed_requests_per_endpoint():
    """What /metrics/summary reports beside the log: the outcome counters, over every model version."""
    before = outcome_counts()
    metrics.observe("predict", "7", "invalid", 0.001)
    metrics.observe("predict", "8", "invalid", 0.001)
    metrics.observe("explain", "none", "unavailable", 0.001)
    metrics.observe("batch_predict", "7", "error", 0.001)
    after = outcome_counts()
    change = {e: {o: after[e][o] - before[e][o] for o in metrics.OUTCOMES} for e in metrics.ENDPOINTS}
    assert change["predict"] == {"ok": 0, "invalid": 2, "unavailable": 0, "busy": 0, "error": 0}
    assert change["explain"]["unavailable"] == 1 and change["batch_predict"]["error"] == 1
