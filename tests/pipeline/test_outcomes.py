"""Sales joined to earlier scores, live quality and rollback, through the assets on a real warehouse and
a real (local) MLflow registry."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import pandas as pd
import pytest
import sqlalchemy as sa

from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import _split, champion_model
from mlops_assets.assets.outcomes import LIVE_CHECK, listing_scores, live_performance, sale_outcomes
from mlops_assets.core.splits import digest
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.resources import LiveQualityResource, ServingResource
from mlops_assets.settings import Settings
from mlops_assets.storage import queries
from mlops_assets.storage import warehouse as tables
from mlops_assets.storage.warehouse import Warehouse
from tests.model_factory import train_and_register
from tests.pipeline.helpers import run_batch

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def _clean(batch_id: str, key: str, status: str, price: float, state: str = "Ohio") -> dict:
    return {"batch_id": batch_id, "listing_id": f"{key}-{batch_id}", "property_key": key, "cleaned_at": NOW,
            "status": status, "price": price, "bed": 3.0, "bath": 2.0, "house_size": 1500.0, "state": state,
            "acre_lot_missing": True}  # fmt: skip


def _score(batch_id: str, key: str, version: str, predicted: float, minutes: int = 0) -> dict:
    return {"batch_id": batch_id, "listing_id": f"{key}-{batch_id}", "property_key": key, "model_name": "house-price",
            "model_version": version, "status": "for_sale", "state": "Ohio", "list_price": 1.0,
            "predicted_price": predicted, "scored_at": NOW + timedelta(minutes=minutes)}  # fmt: skip


def _outcomes(db: Warehouse, batch_id: str) -> pd.DataFrame:
    frame = db.read(tables.sale_outcomes.select().where(tables.sale_outcomes.c.batch_id == batch_id))
    return frame.sort_values(["property_key", "model_version"]).reset_index(drop=True)


def test_a_sale_is_attributed_to_each_version_s_latest_earlier_score_and_reruns_change_nothing(instance, settings):
    db = Warehouse(settings.database_url)
    db.create_tables()
    # P: scored at batch 2 by v1, re-scored at batch 3 by v2, sold at batch 4.
    # Q: scored twice by v1 (batches 2 and 3), sold at batch 4: its latest score counts, once.
    # R: priced by serving before batch 4 arrived (and once after: not an earlier prediction), sold at batch 4.
    # S: listed and sold in batch 4 itself: no earlier score.
    clean = [_clean("00002", "P", "for_sale", 400_000), _clean("00002", "Q", "for_sale", 300_000),
             _clean("00003", "P", "for_sale", 410_000), _clean("00003", "Q", "for_sale", 305_000),
             _clean("00004", "P", "sold", 500_000), _clean("00004", "Q", "sold", 320_000),
             _clean("00004", "R", "sold", 200_000), _clean("00004", "S", "for_sale", 100_000),
             _clean("00004", "S", "sold", 99_000) | {"listing_id": "S-sold"}]  # fmt: skip
    for batch, rows in pd.DataFrame(clean).groupby("batch_id"):
        db.replace_batch(tables.clean_listings, batch, rows)
    arrived = NOW + timedelta(hours=1)
    db.replace_batch(tables.raw_listings, "00004", pd.DataFrame([{"batch_id": "00004", "source": "test",
                                                                  "ingested_at": arrived}]))  # fmt: skip
    scores = pd.DataFrame([_score("00002", "P", "1", 450_000), _score("00002", "Q", "1", 290_000),
                           _score("00003", "P", "2", 490_000, 5), _score("00003", "Q", "1", 330_000, 5)])  # fmt: skip
    for batch, rows in scores.groupby("batch_id"):
        db.replace_batch(tables.listing_scores, batch, rows)
    served = [("before", arrived - timedelta(minutes=1), 210_000.0), ("after", arrived + timedelta(minutes=1), 1.0)]
    with db.begin() as connection:
        for request_id, created_at, price in served:
            connection.execute(tables.inference_log.insert().values(
                request_id=request_id, created_at=created_at, endpoint="predict", model_name="house-price",
                model_version="2", price=price, latency_ms=1.0, property_key="R"))  # fmt: skip

    first = run_batch(instance, settings, [sale_outcomes, live_performance], "00004")
    matched = _outcomes(db, "00004")
    attributed = {(r.property_key, r.model_version): (r.predicted_price, r.score_source) for r in matched.itertuples()}
    assert attributed == {
        ("P", "1"): (450_000, "batch"),
        ("P", "2"): (490_000, "batch"),
        ("Q", "1"): (330_000, "batch"),
        ("R", "2"): (210_000, "serving"),
    }
    assert matched.set_index(["property_key", "model_version"]).loc[("P", "1"), "scored_batch_id"] == "00002"
    meta = {k: v.value for k, v in first.asset_materializations_for_node("sale_outcomes")[0].metadata.items()}
    assert meta["sales"] == 4 and meta["matched_sales"] == 3

    performance = db.read(tables.live_performance.select().where(tables.live_performance.c.scope == "all"))
    by_version = performance.set_index("model_version")
    assert by_version.loc["1", "sales"] == 2 and by_version.loc["2", "sales"] == 2
    assert by_version.loc["1", "mape"] == pytest.approx((0.1 + 10_000 / 320_000) / 2)
    assert by_version.loc["2", "median_ratio"] == pytest.approx((0.98 + 1.05) / 2)

    run_batch(instance, settings, [sale_outcomes, live_performance], "00004")  # re-run: nothing counted twice
    pd.testing.assert_frame_equal(
        _outcomes(db, "00004").drop(columns="matched_at"), matched.drop(columns="matched_at"), check_dtype=False
    )
    assert db.count(tables.live_performance, "00004") == len(performance)


class ReloadCounter(BaseHTTPRequestHandler):
    calls: ClassVar[list[str]] = []

    def do_POST(self):
        ReloadCounter.calls.append(self.path)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture
def fake_serving():
    server = ThreadingHTTPServer(("127.0.0.1", 0), ReloadCounter)
    ReloadCounter.calls = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


@pytest.fixture
def small(tmp_path) -> Settings:
    return Settings.from_env({"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_SIM_MIN_ROWS": "3000",
                              "MLOPS_SIM_MAX_ROWS": "3000", "MLOPS_TRAIN_TRIALS": "1"})  # fmt: skip


@pytest.mark.slow  # trains two small models
def test_a_champion_worse_on_later_sales_is_rolled_back_once_and_not_promoted_again(instance, small, fake_serving):
    db = Warehouse(small.database_url)
    for key in ("00001", "00002", "00003"):
        assert run_batch(instance, small, [raw_listings, clean_listings, listing_scores], key).success
    assert db.count(tables.listing_scores) == 0  # no champion yet: nothing scored

    registry = ModelRegistry(small.mlflow_tracking_uri, small.model_name, small.model_alias)
    holdout = _split(queries.clean_through(db, "00002"), 0.2)[1]
    for version_batches, decided in (((1,), NOW), ((1, 2), NOW + timedelta(hours=1))):
        trained = train_and_register(small.mlflow_tracking_uri, small.model_name, version_batches, trials=1,
                                     artifact_location=small.mlflow_artifact_location)  # fmt: skip
        db.upsert(tables.model_history, {
            "model_name": small.model_name, "model_version": int(trained.version), "mlflow_run_id": "run",
            "batch_id": "00002", "trained_at": decided, "training_rows": 1, "holdout_rows": len(holdout),
            "holdout_digest": digest(holdout["listing_id"]), "mape": 0.25, "verdict": "promoted",
            "decided_at": decided})  # fmt: skip
    assert registry.alias_version() == "2"

    # v1 priced batch 1's listings, v2 batch 2's; both have sales in batch 3: v1 within 5%, v2 60% too high
    sold = queries.clean_batch(db, "00003").query("status == 'sold'").set_index("property_key")["price"]
    for batch, version, factor in (("00001", "1", 1.05), ("00002", "2", 1.6)):
        listed = queries.clean_batch(db, batch).query("status != 'sold'")
        listed = listed[listed["property_key"].isin(sold.index)].drop_duplicates("property_key")
        db.replace_batch(tables.listing_scores, batch, pd.DataFrame({
            "batch_id": batch, "listing_id": listed["listing_id"], "property_key": listed["property_key"],
            "model_name": small.model_name, "model_version": version, "status": "for_sale", "state": listed["state"],
            "list_price": listed["price"], "predicted_price": sold.loc[listed["property_key"]].to_numpy() * factor,
            "scored_at": NOW}))  # fmt: skip
        assert len(listed) >= 50  # enough sales for the rule to judge

    serving = {"serving": ServingResource(url=fake_serving)}
    alert = run_batch(instance, small, [sale_outcomes, live_performance], "00003", resources=serving)
    check = alert.get_asset_check_evaluations()[0]
    assert check.check_name == LIVE_CHECK and not check.passed
    assert "clearly worse: v2 live MAPE 60.0%" in check.description
    assert "vs previous champion v1 5.0%" in check.description
    assert registry.alias_version() == "2" and not ReloadCounter.calls  # alert only: nothing moved

    auto = {**serving, "live_quality": LiveQualityResource(policy="auto")}
    rolled = run_batch(instance, small, [sale_outcomes, live_performance], "00003", resources=auto)
    assert not rolled.get_asset_check_evaluations()[0].passed
    assert registry.alias_version() == "1" and ReloadCounter.calls == ["/reload"]
    assert registry.verdict("2") == "rolled_back"
    events = db.read(tables.rollbacks.select())
    assert len(events) == 1 and events.iloc[0]["from_version"] == 2 and events.iloc[0]["to_version"] == 1
    assert "v2 live MAPE 60.0%" in events.iloc[0]["reason"]
    assert queries.model_row(db, small.model_name, "2")["verdict"] == "rolled_back"

    # re-running the batch judges the restored champion (fine) and records nothing twice
    again = run_batch(instance, small, [sale_outcomes, live_performance], "00003", resources=auto)
    assert again.get_asset_check_evaluations()[0].passed
    assert len(db.read(tables.rollbacks.select())) == 1 and ReloadCounter.calls == ["/reload"]

    # the gate does not promote the rolled-back version again
    decided = run_batch(instance, small, [champion_model], "00002", resources=serving)
    meta = {k: v.value for k, v in decided.asset_materializations_for_node("champion_model")[0].metadata.items()}
    assert meta["verdict"] == "rejected" and "rolled back on live quality" in meta["reason"]
    assert registry.alias_version() == "1"
    assert queries.model_row(db, small.model_name, "2")["verdict"] == "rolled_back"

    # the batch's own scores: the champion of that moment (v1 now), recorded with its version
    run_batch(instance, small, [listing_scores], "00003")
    with db.engine.connect() as connection:
        scored = tables.listing_scores
        query = sa.select(scored.c.model_version).where(scored.c.batch_id == "00003").distinct()
        versions = connection.execute(query).scalars().all()
    assert versions == ["1"]
