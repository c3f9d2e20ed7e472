"""One story across the UIs: Dagster metadata links to MLflow and the viewer, MLflow links back to Dagster,
readable numbers, and the training assets' checks (candidate_quality blocks, promotion_gate warns)."""

from __future__ import annotations

import mlflow
import pytest
from dagster import AssetCheckSeverity, DagsterInstance, MetadataValue

from mlops_assets.assets.checks import CANDIDATE_QUALITY, PROMOTION_GATE
from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings, raw_listings
from mlops_assets.assets.models import candidate_model, champion_model
from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.ml.tracking import EXPERIMENT_KIND_TAG, GAIN_TITLE, MODEL_TRAINING
from mlops_assets.resources import PromotionGateResource
from mlops_assets.settings import Settings
from tests.pipeline.helpers import run_batch

pytestmark = pytest.mark.slow  # trains two models through the asset graph

DAGSTER, MLFLOW_UI, VIEWER = "http://dagster.test:3001", "http://mlflow.test:5000", "http://viewer.test:8501"


@pytest.fixture
def settings(tmp_path) -> Settings:
    return Settings.from_env(
        {
            "MLOPS_HOME": str(tmp_path / "mlops"),
            "MLOPS_SIM_MIN_ROWS": "3000",
            "MLOPS_SIM_MAX_ROWS": "3500",
            "MLOPS_TRAIN_TRIALS": "1",
            "MLOPS_DAGSTER_URL": DAGSTER,
            "MLOPS_MLFLOW_URL": MLFLOW_UI + "/",
            "MLOPS_VIEWER_URL": VIEWER,
        }
    )


def metadata(result, node: str) -> dict:
    [event] = result.asset_materializations_for_node(node)
    return dict(event.metadata)


def checks(result) -> dict:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_ids_are_links_numbers_are_readable_and_the_checks_tell_the_verdict(instance: DagsterInstance, settings):
    result = run_batch(instance, settings, [raw_listings, clean_listings, drift_report, candidate_model,
                                            champion_model], "00001")  # fmt: skip
    assert result.success
    candidate = metadata(result, "candidate_model")
    run_id = candidate["mlflow_run_id"].value
    # Dagster -> MLflow: the run and the version, with a local sqlite tracking store too
    assert candidate["mlflow_run"] == MetadataValue.url(f"{MLFLOW_UI}/#/runs/{run_id}")
    assert candidate["mlflow_model_version"] == MetadataValue.url(f"{MLFLOW_UI}/#/models/house-price/versions/1")
    assert candidate["model_version"].value == 1
    # tables and readable units, not 17-digit JSON
    for key in ("best_params", "search", "mean_abs_shap"):
        assert isinstance(candidate[key], type(MetadataValue.md(""))) and candidate[key].value.startswith("| ")
    assert (
        "mean |SHAP| (log price)" in candidate["mean_abs_shap"].value and GAIN_TITLE in candidate["mean_abs_shap"].value
    )
    assert 0 < candidate["median_ape_pct"].value < 100 and "median_ape" not in candidate
    assert isinstance(candidate["rmse"].value, int)
    champion = metadata(result, "champion_model")
    assert champion["candidate"] == MetadataValue.url(f"{MLFLOW_UI}/#/models/house-price/versions/1")
    assert "candidate_metrics" not in champion
    drift = metadata(result, "drift_report")
    assert drift["training"].value == "requested by drift_sensor (a train_job run)"
    assert drift["trains_in_same_run"].value is False  # kept for the sensors

    # the checks: the candidate's sanity floor passed, the gate promoted
    evaluations = checks(result)
    assert evaluations[CANDIDATE_QUALITY].passed and evaluations[PROMOTION_GATE].passed
    assert evaluations[PROMOTION_GATE].description.startswith("promoted: ")
    specs = {s.name: s for a in (candidate_model, champion_model) for s in a.check_specs}
    assert specs[CANDIDATE_QUALITY].blocking and not specs[PROMOTION_GATE].blocking
    assert all(s.description for s in specs.values())
    for asset in (raw_listings, clean_listings):
        assert all(s.description for s in asset.check_specs)

    # MLflow: named by version and batch, a model-training experiment, links back to Dagster
    client = ModelRegistry(settings.mlflow_tracking_uri, settings.model_name).client
    run = client.get_run(run_id)
    assert run.info.run_name == "v1 - batch 00001"
    dagster_run = result.run_id
    assert run.data.tags["dagster_run_url"] == f"{DAGSTER}/runs/{dagster_run}"
    assert run.data.tags["dagster_partition_url"] == (
        f"{DAGSTER}/assets/candidate_model?view=partitions&partition=00001"
    )
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.tags[EXPERIMENT_KIND_TAG] == MODEL_TRAINING
    version = client.get_model_version(settings.model_name, "1")
    assert version.tags["dagster_run_url"] == run.data.tags["dagster_run_url"]
    assert version.description.startswith("promoted: ") and "no champion yet" in version.description
    # MLflow shows tags as text and descriptions as markdown: the links back are in the descriptions
    viewer = f"{VIEWER}/models?version=1"
    assert run.data.tags["viewer_model_url"] == version.tags["viewer_model_url"] == viewer
    lineage = (
        f"[Dagster run]({DAGSTER}/runs/{dagster_run}) · "
        f"[Dagster: candidate_model partition]({DAGSTER}/assets/candidate_model?view=partitions&partition=00001) · "
        f"[Viewer: model history]({viewer})"
    )
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith(f"{lineage}\n\nModel **v1** of house-price, trained through batch 00001 (")
    assert version.description.endswith(lineage)
    info = mlflow.models.get_model_info(f"models:/{settings.model_name}/1")
    assert info.signature is not None and "house_size" in info.signature.inputs.input_names()
    assert info.saved_input_example_info is not None

    # a rejection is a normal outcome: the gate's check warns, the run succeeds
    strict = run_batch(
        instance,
        settings,
        [candidate_model, champion_model],
        "00001",
        resources={"promotion_gate": PromotionGateResource(mode="absolute", min_r2=0.99)},
    )
    assert strict.success
    gate = checks(strict)[PROMOTION_GATE]
    assert not gate.passed and gate.severity == AssetCheckSeverity.WARN
    assert gate.description.startswith("rejected: R2 0.")
    assert client.get_run(metadata(strict, "candidate_model")["mlflow_run_id"].value).info.run_name == (
        "v2 - batch 00001"
    )
    assert client.get_model_version(settings.model_name, "2").description.startswith("rejected: R2 0.")


def test_a_batch_skipped_for_no_drift_says_so_on_the_model_assets_partition(instance: DagsterInstance, settings):
    """No training means no materialization: an observation on the model assets' partition tells the outcome."""
    graph = [raw_listings, clean_listings, drift_report, candidate_model, champion_model]
    assert run_batch(instance, settings, graph, "00001").success
    result = run_batch(instance, settings, [raw_listings, clean_listings, drift_report], "00002")
    drift = metadata(result, "drift_report")
    assert drift["decision"].value == "skip: no drift"  # the simulator's second batch is its first's kin
    assert drift["share_drifted"].value.endswith("%")
    observed = {
        (e.asset_key.to_user_string(), e.partition): e.asset_observation_data.asset_observation.metadata
        for e in result.get_asset_observation_events()
    }
    assert set(observed) == {("candidate_model", "00002"), ("champion_model", "00002")}
    for meta in observed.values():
        assert meta["outcome"].value == "skip: no drift"
        assert meta["why"].value == drift["why"].value
        assert meta["drift_report"] == MetadataValue.url(f"{VIEWER}/drift?report=00002-vs-v1")
