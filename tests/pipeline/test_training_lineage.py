"""candidate_model says in its Dagster metadata which batches it was trained on, with the rows of each: the same
counts serving's lineage computes in SQL from the warehouse."""

from __future__ import annotations

import re

import pytest
from dagster import DagsterInstance

from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model
from mlops_assets.settings import Settings
from mlops_assets.storage import lineage
from mlops_assets.storage.warehouse import Warehouse
from tests.pipeline.helpers import run_batch

pytestmark = pytest.mark.slow  # trains a model through the asset graph


def test_the_candidate_s_metadata_lists_its_training_batches_as_the_lineage_counts_them(
    instance: DagsterInstance, settings_env: dict[str, str]
):
    settings = Settings.from_env({**settings_env, "MLOPS_TRAIN_TRIALS": "1"})
    for key in ("00001", "00002"):
        assert run_batch(instance, settings, [raw_listings, clean_listings, drift_report], key).success
    result = run_batch(instance, settings, [candidate_model], "00002")
    [event] = result.asset_materializations_for_node("candidate_model")
    metadata = {name: value.value for name, value in event.metadata.items()}

    table = metadata["training_batches"]
    assert table.splitlines()[:2] == ["| batch | rows |", "|---|---:|"]
    rows = dict(re.findall(r"^\| (\d{5}) \| ([\d,]+) \|$", table, flags=re.MULTILINE))
    total = re.search(r"^\| \*\*total\*\* \| \*\*([\d,]+)\*\* \|$", table, flags=re.MULTILINE)
    with Warehouse(settings.database_url).engine.connect() as connection:
        counted = lineage.training_batches(connection, "00002")
    assert {key: int(n.replace(",", "")) for key, n in rows.items()} == {
        b["batch_id"]: b["training_rows"] for b in counted
    }
    assert total and int(total.group(1).replace(",", "")) == metadata["training_rows"]
    assert sum(b["training_rows"] for b in counted) == metadata["training_rows"]
    assert sum(b["holdout_rows"] for b in counted) == metadata["holdout_rows"]


def test_a_training_window_bounds_what_a_model_reads_and_every_reader_agrees_on_it(
    instance: DagsterInstance, settings_env: dict[str, str]
):
    """MLOPS_TRAIN_WINDOW_ROWS: the candidate reads only the most recent batches within the cap; it records
    the window's first batch, and promotion (holdout check), the next drift report (its reference) and the
    lineage all read the same batches."""
    from mlops_assets.assets.models import champion_model
    from mlops_assets.storage import queries
    from mlops_assets.storage.warehouse import drift_reports, model_history

    base = Settings.from_env({**settings_env, "MLOPS_TRAIN_TRIALS": "1"})
    for key in ("00001", "00002", "00003"):
        assert run_batch(instance, base, [raw_listings, clean_listings], key).success
    db = Warehouse(base.database_url)
    sizes = {key: len(queries.clean_batch(db, key)) for key in ("00001", "00002", "00003")}
    cap = sizes["00002"] + sizes["00003"]  # batches 2 and 3 fit; with batch 1 they would not
    settings = Settings.from_env({**settings_env, "MLOPS_TRAIN_TRIALS": "1", "MLOPS_TRAIN_WINDOW_ROWS": str(cap)})
    assert queries.window_start(db, "00003", cap) == "00002"
    assert queries.window_start(db, "00003", cap - 1) == "00003"
    assert queries.window_start(db, "00003", 1) == "00003"  # the batch itself, however small the cap
    assert queries.window_start(db, "00003", 10**9) == "00001"

    result = run_batch(instance, settings, [drift_report, candidate_model, champion_model], "00003")
    [event] = result.asset_materializations_for_node("candidate_model")
    metadata = {name: value.value for name, value in event.metadata.items()}
    assert "batches 00002..00003" in metadata["training_window"]
    window = queries.clean_through(db, "00003", since="00002")
    assert set(window["batch_id"]) == {"00002", "00003"}
    assert metadata["training_rows"] + metadata["holdout_rows"] == len(window)
    assert len(window) < len(queries.clean_through(db, "00003"))
    [verdict] = result.asset_materializations_for_node("champion_model")
    assert verdict.metadata["verdict"].value == "promoted"  # the holdout check re-read the same window

    with db.engine.connect() as connection:
        row = connection.execute(model_history.select()).mappings().one()
        assert row["from_batch"] == "00002"
        counted = lineage.training_batches(connection, "00003", from_batch=row["from_batch"])
        assert [b["batch_id"] for b in counted] == ["00002", "00003"]
        assert sum(b["training_rows"] for b in counted) == row["training_rows"]
        fed = lineage.batch_lineage(connection, "00001", base.model_name)
        assert fed is not None and fed["models"] == []  # batch 1 is outside the window: it fed no model

    assert run_batch(instance, settings, [raw_listings, clean_listings, drift_report], "00004").success
    with db.engine.connect() as connection:
        report = connection.execute(drift_reports.select().where(drift_reports.c.batch_id == "00004")).mappings().one()
    assert report["reference_batches"] == "00002..00003"
    assert report["rows_reference"] == len(window)  # the champion's window, not all history
