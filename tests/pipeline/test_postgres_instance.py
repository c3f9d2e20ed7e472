"""config/dagster/postgres.yaml: the Dagster instance on PostgreSQL (dagster-postgres), as deployed."""

from __future__ import annotations

import shutil

import pytest
import sqlalchemy as sa
from dagster import AssetKey, DagsterInstance

from mlops_assets.assets.listings import clean_listings, raw_listings
from tests.pipeline.helpers import run_batch
from tests.processes import ROOT

pytestmark = pytest.mark.postgres


def test_runs_events_and_partitions_are_stored_in_postgres(tmp_path, monkeypatch, postgres_url, settings):
    home = tmp_path / "dagster_home"
    home.mkdir()
    shutil.copy(ROOT / "config/dagster/postgres.yaml", home / "dagster.yaml")
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_url)
    instance = DagsterInstance.from_config(str(home))
    try:
        result = run_batch(instance, settings, [raw_listings, clean_listings], "00001")
        assert result.success
        assert instance.get_materialized_partitions(AssetKey("clean_listings")) == {"00001"}
    finally:
        instance.dispose()
    engine = sa.create_engine(postgres_url)
    with engine.connect() as connection:
        runs = connection.execute(sa.text("SELECT run_id, status FROM runs")).all()
        partitions = connection.execute(sa.text("SELECT partition FROM dynamic_partitions")).scalars().all()
    engine.dispose()
    assert [(r.run_id, r.status) for r in runs] == [(result.run_id, "SUCCESS")]
    assert partitions == ["00001"]
