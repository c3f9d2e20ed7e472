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
