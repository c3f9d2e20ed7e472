"""Batch loads replace, never duplicate, and are atomic - on SQLite and PostgreSQL alike."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
import pytest

from mlops_assets.storage import warehouse as tables
from mlops_assets.storage.object_store import ObjectStore
from mlops_assets.storage.warehouse import Warehouse


def raw_rows(batch_id: str, n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "batch_id": batch_id, "source": "test", "ingested_at": datetime.now(UTC),
            "brokered_by": 1.0, "status": "for_sale", "price": [float(i) for i in range(n)], "bed": 3.0,
            "bath": None, "acre_lot": float("nan"), "street": 2.0, "city": "O'Fallon, \"the\" city",
            "state": "Missouri", "zip_code": 63366.0, "house_size": 1500.0, "prev_sold_date": None,
        }
    )  # fmt: skip


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Warehouse:
    url = f"sqlite:///{tmp_path}/w.db" if request.param == "sqlite" else request.getfixturevalue("postgres_url")
    db = Warehouse(url)
    db.create_tables()
    yield db
    db.dispose()


def test_replace_batch_is_idempotent_and_keeps_other_batches(warehouse):
    warehouse.replace_batch(tables.raw_listings, "00001", raw_rows("00001", 5))
    warehouse.replace_batch(tables.raw_listings, "00002", raw_rows("00002", 3))
    warehouse.replace_batch(tables.raw_listings, "00001", raw_rows("00001", 4))
    assert warehouse.count(tables.raw_listings, "00001") == 4
    assert warehouse.count(tables.raw_listings) == 7
    back = warehouse.read(
        "SELECT city, bath, acre_lot, prev_sold_date FROM raw_listings WHERE batch_id = :b", b="00002"
    )
    assert back["city"].tolist() == ['O\'Fallon, "the" city'] * 3
    assert back["bath"].isna().all() and back["acre_lot"].isna().all() and back["prev_sold_date"].isna().all()


def test_a_failed_load_leaves_the_previous_rows(warehouse):
    warehouse.replace_batch(tables.raw_listings, "00001", raw_rows("00001", 5))
    broken = raw_rows("00001", 2)
    broken.loc[1, "ingested_at"] = None  # violates NOT NULL after the delete ran
    with pytest.raises(Exception):  # noqa: B017 - the driver's own IntegrityError/NotNullViolation
        warehouse.replace_batch(tables.raw_listings, "00001", broken)
    assert warehouse.count(tables.raw_listings, "00001") == 5


def test_object_store_round_trips_parquet_and_text_locally(tmp_path):
    store = ObjectStore((tmp_path / "store").as_uri())
    frame = pd.DataFrame({"a": [1.0, None], "b": ["x", 3]})  # mixed types, as a bad batch has
    uri = store.write_parquet("raw/x.parquet", frame)
    assert uri.endswith("/raw/x.parquet") and store.exists("raw/x.parquet")
    back = store.read_parquet("raw/x.parquet")
    assert back["b"].tolist() == ["x", "3"]
    store.write_text("reports/r.html", "<html>ok</html>")
    assert store.read_text("reports/r.html") == "<html>ok</html>"
    assert not list((tmp_path / "store").rglob("*.partial"))
