"""The dashboard's warehouse access is read-only and says plainly when there is nothing to read."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlalchemy as sa

from dashboard.history import History, NoHistoryError
from mlops_assets.core.contracts import DriftDecision
from mlops_assets.storage.warehouse import Warehouse, drift_reports


def test_a_missing_sqlite_warehouse_is_reported_and_not_created(tmp_path):
    path = tmp_path / "warehouse.db"
    with pytest.raises(NoHistoryError, match=r"No warehouse yet at .*: run the pipeline"):
        History(f"sqlite:///{path}")
    assert not path.exists()


def test_sqlite_history_is_read_only(tmp_path):
    url = f"sqlite:///{tmp_path / 'warehouse.db'}"
    Warehouse(url).create_tables()
    history = History(url)
    with pytest.raises(NoHistoryError, match="No drift report yet"):
        history.drift_reports()
    with pytest.raises(sa.exc.OperationalError, match="readonly"), history.engine.begin() as connection:
        connection.execute(drift_reports.delete())


@pytest.mark.postgres
def test_postgres_history_is_read_only(postgres_url):
    writer = Warehouse(postgres_url)
    with pytest.raises(NoHistoryError, match="has been trained yet"):
        History(postgres_url).models("house-price")  # no tables yet
    writer.create_tables()
    row = {
        "report_id": "00001-vs-v0",
        "batch_id": "00001",
        "created_at": pd.Timestamp.now("UTC"),
        "rows_reference": 0,
        "rows_current": 10,
        "decision": DriftDecision.BASELINE,
        "why": "first",
    }
    writer.upsert(drift_reports, row)
    history = History(postgres_url)
    assert list(history.drift_reports()["why"]) == ["first"]
    with pytest.raises(sa.exc.InternalError, match="read-only transaction"), history.engine.begin() as connection:
        connection.execute(drift_reports.delete())
    history.dispose()
    writer.dispose()
