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


def tricky_rows(batch_id: str) -> pd.DataFrame:
    """Values COPY must carry exactly: NaN, infinities, -0.0, tiny and huge floats, empty text against NULL,
    quotes, commas, line breaks and non-ASCII text."""
    frame = raw_rows(batch_id, 8)
    frame["price"] = [0.1, -0.0, float("inf"), float("-inf"), float("nan"), 1e-300, 1.7976931348623157e308, 123456.789]
    frame["city"] = ["", None, 'O\'Fallon, "the" city', "line\nbreak", "Ünïcode 東京", "tab\there", " ", "x" * 128]
    frame["prev_sold_date"] = ["2015-06-01", None, "", "\\N", "NULL", "a,b", '"', "z"]
    frame["property_key"] = ["0123456789abcdef"] * 7 + [None]
    return frame


@pytest.mark.postgres
def test_binary_copy_loads_what_the_csv_copy_loads(postgres_url, monkeypatch):
    db = Warehouse(postgres_url)
    db.create_tables()
    frame = tricky_rows("00001")
    assert tables._binary_copy(frame, ["x"] * len(frame.columns)) is None  # unknown stored types: CSV
    frame["bath"] = frame["bath"].astype("float64")
    built = []
    encode = tables._binary_copy
    monkeypatch.setattr(tables, "_binary_copy", lambda frame, stored: built.append(encode(frame, stored)) or built[-1])
    db.replace_batch(tables.raw_listings, "00001", frame)  # binary: every column is of its stored type
    assert built and built[0] is not None
    monkeypatch.setattr(tables, "_binary_copy", lambda frame, stored: None)
    db.replace_batch(tables.raw_listings, "00002", frame.assign(batch_id="00002"))  # the CSV path
    query = "SELECT * FROM raw_listings WHERE batch_id = :b ORDER BY price NULLS LAST, city NULLS LAST"
    binary, csv = db.read(query, b="00001"), db.read(query, b="00002")
    db.dispose()
    assert len(binary) == 8
    pd.testing.assert_frame_equal(binary.drop(columns="batch_id"), csv.drop(columns="batch_id"), check_exact=True)
    by_text = dict(zip(binary["prev_sold_date"].fillna("<null>"), binary["city"].fillna("<null>"), strict=True))
    assert by_text["2015-06-01"] == "" and by_text["<null>"] == "<null>" and by_text["\\N"] == "line\nbreak"
    assert str(binary["price"].map(repr).tolist()).count("-0.0") == 1


@pytest.mark.postgres
def test_a_failed_binary_load_leaves_the_previous_rows(postgres_url, monkeypatch):
    db = Warehouse(postgres_url)
    db.create_tables()
    db.replace_batch(tables.raw_listings, "00001", raw_rows("00001", 5))
    broken = raw_rows("00001", 3).assign(bath=float("nan"))  # floats only: the binary path
    broken["source"] = ["test", "test", "s" * 33]  # longer than varchar(32): refused after the delete ran
    built = []
    encode = tables._binary_copy
    monkeypatch.setattr(tables, "_binary_copy", lambda frame, stored: built.append(encode(frame, stored)) or built[-1])
    with pytest.raises(Exception):  # noqa: B017 - the driver's own StringDataRightTruncation
        db.replace_batch(tables.raw_listings, "00001", broken)
    assert built and built[0] is not None
    assert db.count(tables.raw_listings, "00001") == 5
    db.dispose()


@pytest.mark.postgres
def test_the_inference_log_s_rows_load_in_binary_as_the_csv_path_loads_them(postgres_url, monkeypatch):
    """JSON text columns and columns a request leaves all NULL (brokered_by, street) take the binary path too: the
    serving writer's COPY of both tables, compared with the CSV path's."""
    from serving.inference_log import LogBatch, frames

    props = [
        {"bed": 3.0, "bath": 2.0, "acre_lot": 0.25, "house_size": 1800.0, "state": "Texas", "city": "Austin",
         "zip_code": "78701", "status": "for_sale"},
        {"bed": 1.0, "bath": 1.0, "acre_lot": 0.0, "house_size": 500.0, "state": "tx", "city": 'O"Fallon, 東京'},
    ]  # fmt: skip
    when = datetime.now(UTC).replace(microsecond=5)
    notes: list[list[str]] = [[], ['note: "x"']]
    batch = LogBatch("batch_predict", "house-price", "3", when, 1.5, ["a-0", "a-1"], props, ["Texas", "Texas"],
                     [350000.25, 99000.0], notes)  # fmt: skip
    log_rows, raw_rows_ = frames([batch], json_as_text=True)
    assert raw_rows_["brokered_by"].isna().all() and raw_rows_["street"].isna().all()
    db = Warehouse(postgres_url)
    db.create_tables()
    built = []
    encode = tables._binary_copy
    monkeypatch.setattr(tables, "_binary_copy", lambda frame, stored: built.append(encode(frame, stored)) or built[-1])
    with db.begin() as connection:
        db.bulk_insert(connection, tables.inference_log, log_rows)
        db.bulk_insert(connection, tables.raw_listings, raw_rows_)
    assert len(built) == 2 and all(payload is not None for payload in built)  # both tables: binary
    monkeypatch.setattr(tables, "_binary_copy", lambda frame, stored: None)
    with db.begin() as connection:
        db.bulk_insert(connection, tables.inference_log, log_rows.assign(request_id=["b-0", "b-1"]))
        db.bulk_insert(connection, tables.raw_listings, raw_rows_.assign(batch_id="csv"))
    log = db.read("SELECT * FROM inference_log ORDER BY request_id")
    raw = db.read("SELECT * FROM raw_listings WHERE source = 'inference' ORDER BY batch_id, bed")
    db.dispose()
    binary_log, csv_log = log.iloc[:2].drop(columns="request_id"), log.iloc[2:].drop(columns="request_id")
    pd.testing.assert_frame_equal(binary_log.reset_index(drop=True), csv_log.reset_index(drop=True), check_exact=True)
    assert binary_log["inputs"].tolist() == props and binary_log["warnings"].tolist() == [[], ['note: "x"']]
    binary_raw, csv_raw = raw[raw["batch_id"] != "csv"], raw[raw["batch_id"] == "csv"]
    assert len(binary_raw) == 2
    binary_raw, csv_raw = (frame.drop(columns="batch_id").reset_index(drop=True) for frame in (binary_raw, csv_raw))
    pd.testing.assert_frame_equal(binary_raw, csv_raw, check_exact=True)
