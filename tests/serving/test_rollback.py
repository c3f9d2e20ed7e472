"""A rollback on live quality, as serving sees it: the alias moves back, every worker follows without a
restart, and /model reports the restored champion's live figures."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
from dagster import instance_for_test

from mlops_assets.assets.outcomes import live_performance
from mlops_assets.resources import LiveQualityResource, MlflowResource, ServingResource, WarehouseResource
from mlops_assets.settings import Settings
from mlops_assets.storage import warehouse as tables
from mlops_assets.storage.warehouse import Warehouse
from tests.pipeline.helpers import run_batch
from tests.serving.conftest import TOKEN, Service, wait_until

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
SALES = 60


def _history_row(model_name: str, version: str, decided: datetime) -> dict:
    return {"model_name": model_name, "model_version": int(version), "mlflow_run_id": "copy", "batch_id": "00001",
            "trained_at": decided, "training_rows": 1, "holdout_rows": 1, "holdout_digest": "-", "mape": 0.25,
            "verdict": "promoted", "decided_at": decided}  # fmt: skip


def _outcomes(model_name: str, version: str, factor: float) -> pd.DataFrame:
    sold = 200_000.0 + 1_000.0 * pd.RangeIndex(SALES).to_numpy()
    return pd.DataFrame({
        "batch_id": "00009", "sold_listing_id": [f"s{i}" for i in range(SALES)],
        "property_key": [f"p{i}" for i in range(SALES)], "state": "Ohio", "sold_price": sold,
        "model_name": model_name, "model_version": version, "predicted_price": sold * factor,
        "score_source": "batch", "scored_batch_id": "00008", "matched_at": datetime.now(UTC)})  # fmt: skip


def test_a_rollback_is_followed_by_every_worker_and_model_reports_live_quality(serving: Service, tmp_path):
    serving_now = serving.get("/model").json()["model_version"]
    good, bad = serving.register_copy(serving_now), serving.register_copy(serving_now)
    db = Warehouse(serving.database_url)
    db.create_tables()
    start = datetime.now(UTC)
    for version, decided in ((good, start), (bad, start + timedelta(minutes=1))):
        db.upsert(tables.model_history, _history_row(serving.model_name, version, decided))
    registry = serving.registry()
    try:
        registry.promote(good, "serving test: the good champion")
        registry.promote(bad, "serving test: the champion that will do worse")
        wait_until(lambda: serving.all_workers_serve(bad), 60, "every worker serves the new champion")
        both = pd.concat([_outcomes(serving.model_name, good, 1.05), _outcomes(serving.model_name, bad, 1.6)])
        db.replace_batch(tables.sale_outcomes, "00009", both)

        resources = {
            "warehouse": WarehouseResource(url=serving.database_url),
            "mlflow": MlflowResource(tracking_uri=serving.tracking_uri, model_name=serving.model_name),
            "live_quality": LiveQualityResource(policy="auto"),
            "serving": ServingResource(url=serving.url, admin_token=TOKEN),
        }
        settings = Settings.from_env({"MLOPS_HOME": str(tmp_path / "mlops")})
        with instance_for_test() as instance:
            result = run_batch(instance, settings, [live_performance], "00009", resources=resources)
            check = result.get_asset_check_evaluations()[0]
            assert not check.passed and check.description.endswith(f"rolled back to v{good}")
            # /reload was called: every worker serves the restored champion at once, no restart
            wait_until(lambda: serving.all_workers_serve(good), 30, "every worker serves the restored champion")
            run_batch(instance, settings, [live_performance], "00009", resources=resources)  # once only

        model = serving.get("/model").json()
        assert model["model_version"] == good and registry.verdict(bad) == "rolled_back"
        live = model["live_quality"]
        assert live["sales"] == SALES and live["mape"] == pytest.approx(0.05) and live["last_batch"] == "00009"
        events = db.read(tables.rollbacks.select().where(tables.rollbacks.c.model_name == serving.model_name))
        assert len(events) == 1 and str(events.iloc[0]["from_version"]) == bad
    finally:
        registry.promote(serving_now, "serving test: back")
        wait_until(lambda: serving.all_workers_serve(serving_now), 60, "the earlier champion is back")
        db.dispose()
