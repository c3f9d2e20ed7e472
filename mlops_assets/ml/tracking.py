"""Recording a training run in MLflow: parameters, metrics, Optuna trials, the model (XGBoost's own
format, registered as a new version), the feature state, SHAP plots and data."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass

import numpy as np

from mlops_assets.core.features import FeatureState
from mlops_assets.core.links import Links
from mlops_assets.ml import explain
from mlops_assets.ml.predict import shap_contributions
from mlops_assets.ml.registry import FEATURE_STATE_KEY, configure_tracking, lineage_markdown, version_description
from mlops_assets.ml.training import TrainedModel

os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""The experiment tag the MLflow UI reads to open an experiment on its runs (model training) rather than on the
GenAI overview (traces)."""
MODEL_TRAINING = "custom_model_development"
GAIN_TITLE = "XGBoost gain (split improvement; not SHAP)"
"""The title of MLflow's `feature_importance.png`: XGBoost's own total gain, which ranks features differently from
the mean |SHAP| (log price) that Dagster, the drift report and the viewer show."""
SHAP_TITLE = "mean |SHAP| (log price)"
INPUT_EXAMPLE_ROWS = 5
RUN_DESCRIPTION_TAG = "mlflow.note.content"
"""The tag the MLflow UI shows, as markdown, as a run's description."""


def run_name(batch_id: str, version: str | None = None) -> str:
    """An MLflow run's name: the model version it registered and the batch it was trained through."""
    return f"v{version} - batch {batch_id}" if version else f"batch {batch_id}"


@dataclass(frozen=True)
class RecordedRun:
    run_id: str
    model_version: str
    experiment_id: str


def ensure_experiment(name: str, artifact_location: str | None) -> str:
    """The experiment's id, created on first use (with a pinned artifact location when local)."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        return mlflow.create_experiment(
            name, artifact_location=artifact_location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING}
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG) != MODEL_TRAINING:  # experiments created before the tag
        mlflow.MlflowClient().set_experiment_tag(experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING)
    return experiment.experiment_id


def record_training(
    *,
    tracking_uri: str,
    experiment: str,
    artifact_location: str | None,
    model_name: str,
    model: TrainedModel,
    feature_state: FeatureState,
    metrics: dict[str, float],
    holdout_x: np.ndarray,
    tags: dict[str, str],
    holdout: dict,
    dicts: dict[str, dict] | None = None,
    links: Links | None = None,
) -> tuple[RecordedRun, dict[str, float]]:
    """One MLflow run for one trained model; returns the run and the mean |SHAP| per feature."""
    import matplotlib.pyplot as plt
    import mlflow
    import mlflow.xgboost
    import pandas as pd
    import xgboost
    from mlflow.models import infer_signature

    configure_tracking(tracking_uri)
    experiment_id = ensure_experiment(experiment, artifact_location)
    sample = holdout_x[:2_000]
    values, _ = shap_contributions(model.booster, sample)  # once: the importance and the plot share them
    shap_importance = explain.importance_of(values)
    batch_id = tags.get("batch_id", "training")
    inputs = pd.DataFrame(sample, columns=model.booster.feature_names)
    signature = infer_signature(inputs, model.booster.predict(xgboost.DMatrix(inputs)))  # output: log price
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name(batch_id)) as run:
        mlflow.set_tags(tags)
        mlflow.log_params(model.params | model.search_params())
        mlflow.log_metrics(metrics | {"cv_r2_mean": model.cv_r2_mean, "cv_r2_std": model.cv_r2_std})
        mlflow.log_dict({"trials": model.trials}, "optuna/trials.json")
        mlflow.log_dict(json.loads(feature_state.to_json()), "feature_state.json")
        mlflow.log_dict(shap_importance, "shap/mean_abs_shap.json")
        mlflow.log_dict(holdout, "holdout.json")
        for path, content in (dicts or {}).items():
            mlflow.log_dict(content, path)
        for name, figure in (
            ("shap/summary.png", explain.summary_plot(values, sample)),
            ("shap/mean_abs_shap.png", explain.importance_plot(shap_importance, SHAP_TITLE)),
            ("feature_importance.png", explain.importance_plot(_gain(model.booster), GAIN_TITLE)),
        ):
            mlflow.log_figure(figure, name)
            plt.close(figure)
        info = mlflow.xgboost.log_model(
            model.booster,
            name="model",
            model_format="ubj",
            pip_requirements=[f"xgboost=={xgboost.__version__}"],
            metadata={FEATURE_STATE_KEY: json.loads(feature_state.to_json())},
            signature=signature,
            input_example=inputs.head(INPUT_EXAMPLE_ROWS),
        )
    version = register(model_name, info, run.info.run_id, tags)
    describe(model_name, version, run.info.run_id, batch_id, tags, links)
    return RecordedRun(run.info.run_id, version, experiment_id), shap_importance


def describe(model_name: str, version: str, run_id: str, batch_id: str, tags: dict[str, str], links: Links | None):
    """The run named by version and batch; the run and the version described with links to the other UIs
    (the viewer's page of the version is known only now, once the registry numbered it)."""
    import mlflow

    client = mlflow.MlflowClient()
    client.update_run(run_id, name=run_name(batch_id, version))
    if links is not None:
        viewer = links.viewer_page("models", version=version)
        client.set_tag(run_id, "viewer_model_url", viewer)
        client.set_model_version_tag(model_name, version, "viewer_model_url", viewer)
        tags = tags | {"viewer_model_url": viewer}
    why = f" ({tags['trigger']}): {tags['why']}" if tags.get("why") else ""
    summary = f"Model **v{version}** of {model_name}, trained through batch {batch_id}{why}"[:4000]
    # the links first: the MLflow UI folds a long description, and the why can be long
    client.set_tag(run_id, RUN_DESCRIPTION_TAG, f"{lineage_markdown(tags)}\n\n{summary}")
    pending = version_description("pending", "awaiting the promotion gate (champion_model)", tags)
    client.update_model_version(model_name, version, description=pending)


def register(model_name: str, info, run_id: str, tags: dict[str, str]) -> str:
    """A new version of the registered model (created on first use), tagged with its lineage."""
    import mlflow
    from mlflow.exceptions import MlflowException

    client = mlflow.MlflowClient()
    try:
        client.create_registered_model(model_name, description="House price (dollars) from listing features")
    except MlflowException as error:
        if error.error_code not in ("RESOURCE_ALREADY_EXISTS", "ALREADY_EXISTS"):
            raise
    version = client.create_model_version(
        model_name,
        source=info.model_uri,
        run_id=run_id,
        model_id=info.model_id,
        tags={k: v[:5000] for k, v in tags.items()},
    )  # described by `describe`, with its links, once numbered
    return str(version.version)


def _gain(booster) -> dict[str, float]:
    """XGBoost's total gain per feature (a tree model's own importance, beside the mean |SHAP|)."""
    return {name: float(v) for name, v in booster.get_score(importance_type="gain").items() if not isinstance(v, list)}
