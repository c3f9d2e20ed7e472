"""raw_listings -> clean_listings materialized in process: embedded default, then PostgreSQL + S3."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from dagster import AssetKey

from mlops_assets.assets.listings import clean_copy_key, clean_listings, raw_copy_key, raw_listings
from mlops_assets.core.cleaning import clean_listings as clean
from mlops_assets.core.schema import coerce_raw
from mlops_assets.settings import Settings
from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.storage import warehouse as tables
from mlops_assets.storage.object_store import ObjectStore
from mlops_assets.storage.warehouse import Warehouse
from tests.pipeline.helpers import run_batch

ASSETS = [raw_listings, clean_listings]


def open_warehouse(url: str) -> Warehouse:
    db = Warehouse(url)
    db.create_tables()
    return db


def generator_for(settings: Settings) -> ListingGenerator:
    return ListingGenerator(
        settings.simulator_seed,
        settings.simulator_batches,
        settings.simulator_min_rows,
        settings.simulator_max_rows,
    )


def assert_batches_loaded(instance, settings: Settings, keys: list[str]) -> None:
    db = open_warehouse(settings.database_url)
    store = ObjectStore(settings.storage_url)
    generator = generator_for(settings)
    for key in keys:
        expected_raw = generator.batch(int(key))
        expected_clean = clean(coerce_raw(expected_raw)).frame
        assert db.count(tables.raw_listings, key) == len(expected_raw)
        assert db.count(tables.clean_listings, key) == len(expected_clean)
        assert len(store.read_parquet(raw_copy_key(key))) == len(expected_raw)
        stored_clean = store.read_parquet(clean_copy_key(key))
        assert sorted(stored_clean["listing_id"]) == sorted(expected_clean["listing_id"])
    assert db.batch_ids(tables.clean_listings) == keys
    materialized = instance.get_materialized_partitions(AssetKey("clean_listings"))
    assert materialized == set(keys)


def test_embedded_default_loads_batches_and_reruns_do_not_duplicate(instance, settings):
    for key in ("00001", "00002"):
        result = run_batch(instance, settings, ASSETS, key)
        assert result.success
    # re-run batch 1: replaces, never duplicates, and replays the stored copy (no new fetch)
    again = run_batch(instance, settings, ASSETS, "00001")
    raw_event = again.asset_materializations_for_node("raw_listings")[0]
    assert raw_event.metadata["origin"].value.startswith("stored copy")
    assert_batches_loaded(instance, settings, ["00001", "00002"])

    clean_event = again.asset_materializations_for_node("clean_listings")[0]
    meta = {k: v.value for k, v in clean_event.metadata.items()}
    assert meta["rows_in"] - meta["rows_out"] == meta["rows_dropped"] > 0
    assert "missing_required" in meta["dropped_by_rule"]
    checks = {e.check_name: e.passed for e in again.get_asset_check_evaluations()}
    assert checks == {"schema_and_types": True, "non_empty": True, "value_ranges": True}


def test_an_exhausted_source_materializes_nothing(instance, settings_env):
    settings = Settings.from_env({**settings_env, "MLOPS_SIM_BATCHES": "1"})
    result = run_batch(instance, settings, ASSETS, "00002")
    assert result.success
    assert result.get_asset_materialization_events() == []
    observations = instance.fetch_observations(AssetKey("raw_listings"), limit=1).records
    assert observations[0].asset_observation.metadata["source_exhausted"].value is True
    assert open_warehouse(settings.database_url).count(tables.raw_listings) == 0


def test_a_bad_batch_fails_its_check_readably_and_writes_nothing(instance, settings):
    good = run_batch(instance, settings, ASSETS, "00001")
    assert good.success
    store = ObjectStore(settings.storage_url)
    bad = generator_for(settings).batch(2).drop(columns=["zip_code"]).astype({"price": object})
    bad.loc[0, "price"] = "call for price"
    store.write_parquet(raw_copy_key("00002"), bad)

    result = run_batch(instance, settings, ASSETS, "00002", raise_on_error=False)
    assert not result.success
    failure = result.failure_data_for_node("raw_listings").error
    assert "zip_code: column is missing" in failure.message
    assert "price: 1 non-numeric value(s), e.g. 'call for price'" in failure.message
    checks = {e.check_name: (e.passed, e.description) for e in result.get_asset_check_evaluations()}
    assert checks["schema_and_types"][0] is False
    assert "zip_code: column is missing" in checks["schema_and_types"][1]
    db = open_warehouse(settings.database_url)
    assert db.count(tables.raw_listings, "00002") == 0 and db.count(tables.clean_listings, "00002") == 0
    assert db.batch_ids(tables.raw_listings) == ["00001"]
    # what arrived is still there to inspect
    assert len(store.read_parquet(raw_copy_key("00002"))) == len(bad)


@pytest.mark.postgres
def test_postgres_warehouse_and_s3_storage(instance, settings_env, postgres_url, s3_bucket):
    settings = Settings.from_env(
        {
            **settings_env,
            "MLOPS_DATABASE_URL": postgres_url,
            "MLOPS_STORAGE_URL": f"s3://{s3_bucket}/platform",
        }
    )
    for key in ("00001", "00002", "00001"):
        assert run_batch(instance, settings, ASSETS, key).success
    assert_batches_loaded(instance, settings, ["00001", "00002"])
    import boto3

    keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket=s3_bucket)["Contents"]]
    assert "platform/raw/batch_id=00001.parquet" in keys and "platform/clean/batch_id=00002.parquet" in keys
    stored = open_warehouse(postgres_url).read("SELECT zip_code, acre_lot_missing FROM clean_listings")
    assert stored["zip_code"].dropna().str.fullmatch(r"\d{5}").all()
    assert stored["acre_lot_missing"].isin([True, False]).all()
    pd.testing.assert_series_equal(
        stored["acre_lot_missing"].value_counts().sort_index(),
        open_warehouse(postgres_url)
        .read("SELECT acre_lot_missing FROM clean_listings")["acre_lot_missing"]
        .value_counts()
        .sort_index(),
    )


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def either_database(request, settings_env) -> Settings:
    """The embedded default, or the same with a PostgreSQL warehouse."""
    if request.param == "sqlite":
        return Settings.from_env(settings_env)
    return Settings.from_env({**settings_env, "MLOPS_DATABASE_URL": request.getfixturevalue("postgres_url")})


def test_text_the_warehouse_cannot_hold_fails_the_check_the_same_on_both_databases(instance, either_database):
    settings = either_database
    store = ObjectStore(settings.storage_url)
    bad = generator_for(settings).batch(1)
    bad.loc[0, "status"] = "for_sale_" * 4
    bad.loc[1, "city"] = "Bos\x00ton"
    bad.loc[2, "brokered_by"] = float("inf")
    store.write_parquet(raw_copy_key("00001"), bad)

    result = run_batch(instance, settings, ASSETS, "00001", raise_on_error=False)
    assert not result.success
    checks = {e.check_name: (e.passed, e.description) for e in result.get_asset_check_evaluations()}
    assert checks["schema_and_types"] == (
        False,
        "brokered_by: 1 infinite value(s), e.g. inf; "
        "status: 1 value(s) longer than 32 characters, e.g. 'for_sale_for_sale_for_sale_for_sale_'; "
        "city: 1 value(s) with control characters (NUL, line breaks...) or invalid Unicode, e.g. 'Bos\\x00ton'",
    )
    assert checks["schema_and_types"][1] in result.failure_data_for_node("raw_listings").error.message
    assert open_warehouse(settings.database_url).count(tables.raw_listings) == 0


def test_text_at_the_width_limit_and_infinite_prices_load_on_both_databases(instance, either_database):
    settings = either_database
    store = ObjectStore(settings.storage_url)
    batch = generator_for(settings).batch(1)
    batch.loc[0, ["status", "city", "state"]] = ["ß" * 32, "é" * 128, "ñ" * 64]
    batch.loc[1, "price"] = float("inf")
    store.write_parquet(raw_copy_key("00001"), batch)

    result = run_batch(instance, settings, ASSETS, "00001")
    db = open_warehouse(settings.database_url)
    assert db.count(tables.raw_listings, "00001") == len(batch)
    stored = db.read("SELECT city, price FROM raw_listings")
    assert "é" * 128 in set(stored["city"]) and np.isinf(stored["price"]).sum() == 1
    # the odd rows are dropped by cleaning, counted under their rule
    clean_event = result.asset_materializations_for_node("clean_listings")[0]
    dropped = clean_event.metadata["dropped_by_rule"].value
    assert "| unknown_status " in dropped and "| price_out_of_range " in dropped


def test_a_failing_clean_copy_leaves_the_warehouse_as_it_was_and_a_rerun_repairs(instance, settings, tmp_path):
    assert run_batch(instance, settings, ASSETS, "00001").success
    assert run_batch(instance, settings, [raw_listings], "00002").success
    db = open_warehouse(settings.database_url)
    before = db.read("SELECT listing_id, cleaned_at FROM clean_listings ORDER BY listing_id")
    not_a_directory = tmp_path / "storage-is-a-file"
    not_a_directory.write_text("object storage cannot live under a file")
    broken = Settings.from_env({"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_STORAGE_URL": not_a_directory.as_uri()})

    for key in ("00001", "00002"):
        result = run_batch(instance, broken, [clean_listings], key, raise_on_error=False)
        assert not result.success
        cause = result.failure_data_for_node("clean_listings").error.cause
        assert cause.cls_name == "NotADirectoryError" and "storage-is-a-file" in cause.message
    after = db.read("SELECT listing_id, cleaned_at FROM clean_listings ORDER BY listing_id")
    pd.testing.assert_frame_equal(after, before)
    assert db.batch_ids(tables.clean_listings) == ["00001"]

    assert run_batch(instance, settings, [clean_listings], "00002").success
    stored = ObjectStore(settings.storage_url).read_parquet(clean_copy_key("00002"))
    assert db.count(tables.clean_listings, "00002") == len(stored) > 0
