"""The lineage queries count in SQL what the pipeline reads in Python: the same rows per batch, on SQLite and
PostgreSQL. The warehouse holds the generator's batches cleaned by the pipeline's own rules, plus listings
seen again in a later batch (a listing counts once, in its latest batch)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pandas as pd
import pytest

from dashboard.config import DashboardConfig
from mlops_assets.core.cleaning import clean_listings as clean
from mlops_assets.core.schema import coerce_raw
from mlops_assets.core.splits import is_holdout
from mlops_assets.resources import TrainingResource
from mlops_assets.settings import Settings
from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.storage import lineage, queries
from mlops_assets.storage.warehouse import Warehouse, clean_listings

BATCHES = ("00001", "00002", "00003")


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path_factory) -> Warehouse:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('lineage')}/w.db"
    else:
        import sqlalchemy as sa

        server = request.getfixturevalue("postgres_server")
        name = f"mlops_test_{uuid.uuid4().hex[:10]}"
        admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        request.addfinalizer(lambda: _drop(admin, name))
        url = server.rsplit("/", 1)[0] + f"/{name}"
    db = Warehouse(url)
    db.create_tables()
    generator = ListingGenerator(seed=42, batches=3, min_rows=1500, max_rows=2500)
    frames = {}
    for number, key in enumerate(BATCHES, start=1):
        frame = clean(coerce_raw(generator.batch(number))).frame
        frame.insert(0, "batch_id", key)
        frame.insert(2, "cleaned_at", datetime.now(UTC))
        frames[key] = frame
    # listings of batches 1 and 2 seen again in batch 3: they count there, once
    again = pd.concat([frames["00001"].head(60), frames["00002"].iloc[100:130]]).assign(batch_id="00003")
    frames["00003"] = pd.concat([frames["00003"], again], ignore_index=True)
    for key, frame in frames.items():
        db.replace_batch(clean_listings, key, frame)
    yield db
    db.dispose()


def _drop(admin, name: str) -> None:
    import sqlalchemy as sa

    with admin.connect() as connection:
        connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
        )
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


def pipeline_reading(db: Warehouse, through: str) -> pd.DataFrame:
    """Per batch, the training and holdout rows as candidate_model takes them (clean_through, then the holdout)."""
    frame = queries.clean_through(db, through, ["batch_id", "listing_id"])
    held = is_holdout(frame["listing_id"], lineage.HOLDOUT_FRACTION)
    return pd.DataFrame(
        {
            "training_rows": frame[~held]["batch_id"].value_counts(),
            "holdout_rows": frame[held]["batch_id"].value_counts(),
        }
    ).fillna(0)


@pytest.mark.parametrize("through", ["00001", "00002", "00003"])
def test_training_rows_per_batch_are_what_the_pipeline_trains_on(warehouse, through):
    expected = pipeline_reading(warehouse, through)
    with warehouse.engine.connect() as connection:
        batches = lineage.training_batches(connection, through)
    assert [b["batch_id"] for b in batches] == [k for k in BATCHES if k <= through]
    for batch in batches:
        key = batch["batch_id"]
        assert batch["training_rows"] == expected.loc[key, "training_rows"], key
        assert batch["holdout_rows"] == expected.loc[key, "holdout_rows"], key
        assert batch["clean_rows"] == warehouse.count(clean_listings, key)
        assert batch["clean_rows"] == batch["training_rows"] + batch["holdout_rows"] + batch["superseded_rows"]
        assert batch["loaded_at"].endswith("+00:00")
    superseded = {b["batch_id"]: b["superseded_rows"] for b in batches}
    seen_again = {"00001": 60, "00002": 30, "00003": 0} if through == "00003" else {}
    assert superseded == {key: seen_again.get(key, 0) for key in superseded}


def test_a_batch_s_rows_in_each_later_model_are_what_the_pipeline_trains_on(warehouse):
    with warehouse.engine.connect() as connection:
        sightings = lineage.batch_rows_by_next_sighting(connection, "00001")
    assert {seen for seen, _, _ in sightings} == {None, "00003"}
    for through in BATCHES:
        used = [(n, held) for seen, n, held in sightings if seen is None or seen > through]
        expected = pipeline_reading(warehouse, through).loc["00001"]
        assert sum(n - held for n, held in used) == expected["training_rows"], through
        assert sum(held for _, held in used) == expected["holdout_rows"], through


def test_a_batch_without_models_and_an_unknown_batch(warehouse):
    with warehouse.engine.connect() as connection:
        known = lineage.batch_lineage(connection, "00002", "house-price")
        assert lineage.batch_lineage(connection, "00009", "house-price") is None
        assert lineage.prediction_lineage(connection, uuid.uuid4().hex) is None
    assert known["batch"]["clean_rows"] == warehouse.count(clean_listings, "00002")
    assert known["models"] == [] and known["totals"] == {"models": 0, "predictions": 0}


def test_the_holdout_share_is_the_pipeline_s():
    assert TrainingResource().holdout_fraction == lineage.HOLDOUT_FRACTION


def test_request_and_batch_ids_are_checked_before_any_query():
    single, batch_id = uuid.uuid4().hex, uuid.uuid4().hex
    for good in (single, f"{batch_id}-0", f"{batch_id}-9999"):
        assert lineage.REQUEST_ID.fullmatch(good), good
    for bad in ("", single[:-1], single.upper(), f"{single}-", f"{single}-x", "../history", f"{single}\n"):
        assert not lineage.REQUEST_ID.fullmatch(bad), bad
    for good in ("00001", "inference-20250101"):
        assert lineage.BATCH_ID.fullmatch(good), good
    for bad in ("", "-1", "a/b", "x" * 33, "00001;drop"):
        assert not lineage.BATCH_ID.fullmatch(bad), bad


TRACE = {
    "request_id": "r",
    "prediction": {"model_name": "house-price", "model_version": "2"},
    "model": {"model_name": "house-price", "model_version": 2, "mlflow_run_id": "abc", "dagster_run_id": "d-1",
              "through_batch": "00003"},
    "training_batches": [{"batch_id": "00001"}, {"batch_id": "00003"}],
    "drift_report": {"report_id": "00003-vs-v1", "batch_id": "00003", "dagster_run_id": "d-0"},
    "verdict": {"verdict": "promoted", "replaced_version": 1},
    "problems": [],
}  # fmt: skip


def test_links_only_into_the_uis_whose_urls_are_configured():
    bare = lineage.add_links(TRACE, None, None)
    assert bare["model"]["links"] == {} and bare["drift_report"]["links"] == {} and bare["verdict"]["links"] == {}
    assert all(b["links"] == {} for b in bare["training_batches"]) and "links" not in TRACE["model"]

    linked = lineage.add_links(TRACE, "http://dagster:3001/", "http://mlflow:5000")
    assert linked["model"]["links"] == {
        "mlflow_run": "http://mlflow:5000/#/runs/abc",
        "mlflow_model_version": "http://mlflow:5000/#/models/house-price/versions/2",
        "dagster_run": "http://dagster:3001/runs/d-1",
        "dagster_partition": "http://dagster:3001/assets/candidate_model?view=partitions&partition=00003",
    }
    assert [b["links"]["dagster_partition"] for b in linked["training_batches"]] == [
        "http://dagster:3001/assets/clean_listings?view=partitions&partition=00001",
        "http://dagster:3001/assets/clean_listings?view=partitions&partition=00003",
    ]
    assert linked["drift_report"]["links"] == {
        "dagster_partition": "http://dagster:3001/assets/drift_report?view=partitions&partition=00003",
        "dagster_run": "http://dagster:3001/runs/d-0",
    }
    assert linked["verdict"]["links"] == {
        "mlflow_replaced_version": "http://mlflow:5000/#/models/house-price/versions/1"
    }

    only_mlflow = lineage.add_links(TRACE, "", "http://mlflow:5000")
    assert set(only_mlflow["model"]["links"]) == {"mlflow_run", "mlflow_model_version"}


def test_serving_and_the_dashboard_read_the_ui_urls_from_one_setting():
    env = {"MLOPS_DAGSTER_URL": " http://dagster.localhost:8080/ ", "MLOPS_MLFLOW_URL": "http://mlflow.localhost:8080"}
    settings = Settings.from_env(env)
    assert (settings.dagster_url, settings.mlflow_url) == (
        "http://dagster.localhost:8080",
        "http://mlflow.localhost:8080",
    )
    dashboard = DashboardConfig.from_env(env)
    assert (dashboard.dagster_url, dashboard.mlflow_url) == (settings.dagster_url, settings.mlflow_url)
    unset = Settings.from_env({})
    assert unset.dagster_url is None and unset.mlflow_url is None  # serving: no links
    assert DashboardConfig.from_env({}).dagster_url == "http://127.0.0.1:3001"  # the dashboard's default
