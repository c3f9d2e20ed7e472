"""candidate_model (train, track, register) and champion_model (gate, promote, tell serving).

Every candidate is kept: a registered MLflow version and a `model_history` row with its verdict -
promoted, or rejected with the rule that failed and by how much.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Literal

import pandas as pd
from dagster import AssetCheckResult, AssetExecutionContext, Config, Failure, MaterializeResult, MetadataValue, asset
from pydantic import Field

from mlops_assets.assets import checks
from mlops_assets.assets.drift import drift_report
from mlops_assets.assets.listings import clean_listings
from mlops_assets.assets.repair import repair
from mlops_assets.core import display
from mlops_assets.core.baseline import MedianPriceBaseline
from mlops_assets.core.contracts import DriftDecision, Trigger
from mlops_assets.core.features import fit_transform_training, to_target, transform
from mlops_assets.core.metrics import METRIC_NAMES, regression_metrics
from mlops_assets.core.model_diff import summary_markdown, to_markdown
from mlops_assets.core.promotion import Verdict, decide, fmt
from mlops_assets.core.ratio_study import RatioStudy, by_state, ratio_study
from mlops_assets.core.splits import digest, is_holdout
from mlops_assets.ml.model_diff import artifact_paths, diff_models, prices
from mlops_assets.ml.predict import predict_price
from mlops_assets.ml.registry import LoadedModel, ModelRegistry
from mlops_assets.ml.rollback import ROLLED_BACK
from mlops_assets.ml.tracking import GAIN_TITLE, SHAP_TITLE, record_training
from mlops_assets.ml.training import tune_and_fit
from mlops_assets.partitions import batch_partitions
from mlops_assets.resources import (
    MlflowResource,
    PromotionGateResource,
    ServingResource,
    TrainingResource,
    WarehouseResource,
)
from mlops_assets.storage import queries
from mlops_assets.storage.warehouse import drift_reports, metric_values, model_diff_row, model_diffs, model_history

MIN_TRAINING_ROWS = 200


class CandidateConfig(Config):
    mode: Literal["force", "if_drift"] = Field(
        default="force",
        description="'force': always train (a materialization by hand is a forced retrain); "
        "'if_drift': train only when the batch's drift report says so (mlops_pipeline).",
    )
    n_trials: int | None = Field(default=None, description="Optuna trials; default: the training resource's")


def _trigger(context: AssetExecutionContext, report: dict | None) -> tuple[str, str]:
    """Who asked for this training (the run's `mlops/trigger` tag), and why - recorded with the model."""
    decided = f"{report['decision']} - {report['why']}" if report else "no drift report for this batch"
    trigger = Trigger.from_tags(context.run.tags)
    if trigger in (Trigger.DRIFT_SENSOR, Trigger.PIPELINE):
        return trigger.value, decided
    return Trigger.MANUAL.value, f"forced retrain (materialized by hand); drift report: {decided}"


def _split(frame: pd.DataFrame, fraction: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    mask = is_holdout(frame["listing_id"], fraction)
    return frame[~mask], frame[mask]


def baseline_metrics(train: pd.DataFrame, holdout: pd.DataFrame) -> dict[str, float]:
    """The naive baseline (training median price per zip / city / state) on the holdout rows."""
    return regression_metrics(holdout["price"], MedianPriceBaseline.fit(train).predict(holdout))


def metrics_table(rows: dict[str, dict[str, float] | None]) -> str:
    """Markdown: one column per model (candidate, champion, baseline), one row per metric, readable units."""
    present = {n: m for n, m in rows.items() if m}
    lines = ["| metric | " + " | ".join(present) + " |", "|---|" + "---|" * len(present)]
    for metric in METRIC_NAMES:
        lines.append(f"| {metric} | " + " | ".join(fmt(metric, m[metric]) for m in present.values()) + " |")
    return "\n".join(lines)


def holdout_ratio_study(holdout: pd.DataFrame, predicted) -> tuple[RatioStudy, dict[str, dict]]:
    """The IAAO ratio study of holdout predictions against the listed prices: overall and by state."""
    rows = pd.DataFrame(
        {"state": holdout["state"].to_numpy(), "predicted": predicted, "sold": holdout["price"].to_numpy()}
    )
    return ratio_study(rows["predicted"].to_numpy(), rows["sold"].to_numpy()), by_state(rows)


def ratio_values(study: RatioStudy, states: dict[str, dict]) -> dict:
    """`study` as model_history column values."""
    return {"ratio_median": study.median_ratio, "ratio_cod": study.cod, "ratio_prd": study.prd,
            "ratio_prb": study.prb, "ratio_by_state": states}  # fmt: skip


def ratio_markdown(study: RatioStudy) -> str:
    """One line: the four figures, and those outside IAAO's standard ranges."""
    prb = f"{study.prb:+.3f}" if study.prb is not None else "-"
    line = f"median ratio {study.median_ratio:.3f}, COD {study.cod:.1f}, PRD {study.prd:.3f}, PRB {prb}"
    outside = study.outside_standards()
    return line + (f" (outside IAAO ranges: {'; '.join(outside)})" if outside else " (within IAAO ranges)")


def batches_table(train: pd.DataFrame) -> str:
    """Markdown: the training rows per batch (a listing in several batches counts in its latest), and the total."""
    rows = train["batch_id"].value_counts().sort_index()
    lines = ["| batch | rows |", "|---|---:|", *(f"| {batch} | {n:,} |" for batch, n in rows.items())]
    return "\n".join([*lines, f"| **total** | **{len(train):,}** |"])


@asset(
    partitions_def=batch_partitions,
    group_name="training",
    kinds={"xgboost", "optuna", "mlflow"},
    deps=[clean_listings, drift_report],
    output_required=False,
    check_specs=[checks.candidate_quality_spec],
    description=(
        "XGBoost tuned with Optuna on the clean data of the training window ending at the batch (the most recent "
        "batches, up to MLOPS_TRAIN_WINDOW_ROWS rows), tracked and registered in MLflow."
    ),
)
def candidate_model(
    context: AssetExecutionContext,
    config: CandidateConfig,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    training: TrainingResource,
) -> Iterator[MaterializeResult | AssetCheckResult]:
    batch_id = context.partition_key
    db = warehouse.get()
    report = queries.latest_drift_report(db, batch_id)
    repaired = _repair(context, mlflow, db)
    if config.mode == "if_drift":
        if report is None:
            raise Failure(f"batch {batch_id} has no drift report: materialize drift_report first")
        if not DriftDecision.parse(report["decision"]).trains:
            context.log.info(f"batch {batch_id}: skipped: no drift ({report['why']}); no training")
            yield checks.not_trained(report["why"])  # an @asset's check output is required even when skipping
            return
    trigger, why = _trigger(context, report)
    context.log.info(f"batch {batch_id}: training ({trigger}): {why}")

    from_batch = queries.window_start(db, batch_id, training.window_rows)
    train, holdout = _split(queries.clean_through(db, batch_id, since=from_batch), training.holdout_fraction)
    if len(train) < MIN_TRAINING_ROWS or holdout.empty:
        raise Failure(f"only {len(train)} training and {len(holdout)} holdout rows in batches {from_batch}..{batch_id}")
    state, train_x = fit_transform_training(train)  # training rows encoded out of fold: no target leakage
    champion_version = mlflow.registry().alias_version()  # its parameters are the search's first trial
    champion = queries.model_row(db, mlflow.model_name, champion_version) if champion_version else None
    model = tune_and_fit(
        train_x.to_numpy(),
        to_target(train["price"]),
        training.tuning(config.n_trials, batch_id),
        warm_start=champion["params"] if champion else None,
        log=context.log.info,
    )
    holdout_x = transform(holdout, state).to_numpy()
    predicted = predict_price(model.booster, holdout_x)
    metrics = regression_metrics(holdout["price"], predicted)
    study, study_by_state = holdout_ratio_study(holdout, predicted)
    baseline = baseline_metrics(train, holdout)
    holdout_digest = digest(holdout["listing_id"])
    links = mlflow.links()
    tags = {
        "batch_id": batch_id,
        "from_batch": from_batch,
        "dagster_run_id": context.run.run_id,
        "dagster_run_url": links.dagster_run(context.run.run_id),
        "dagster_partition_url": links.dagster_partition("candidate_model", batch_id),
        "trigger": trigger,
        "why": why,
        "drift_report_id": report["report_id"] if report else "",
        "training_rows": str(len(train)),
        "holdout_rows": str(len(holdout)),
        "holdout_digest": holdout_digest,
    }
    recorded, shap_importance = record_training(
        tracking_uri=mlflow.tracking_uri,
        experiment=mlflow.experiment,
        artifact_location=mlflow.artifact_location,
        model_name=mlflow.model_name,
        model=model,
        feature_state=state,
        metrics=metrics
        | {f"baseline_{k}": v for k, v in baseline.items()}
        | {k: v for k, v in ratio_values(study, {}).items() if isinstance(v, float)},
        holdout_x=holdout_x,
        dicts={
            "ratio_study.json": {"overall": study.as_dict(), "by_state": study_by_state},
            "optuna/search.json": model.search,
        },
        tags=tags,
        holdout={
            "rule": f"hash bucket of listing_id below {training.holdout_fraction:.0%}",
            "rows": len(holdout),
            "digest": holdout_digest,
        },
        links=links,
    )
    db.upsert(
        model_history,
        {
            "model_name": mlflow.model_name,
            "model_version": int(recorded.model_version),
            "mlflow_run_id": recorded.run_id,
            "dagster_run_id": context.run.run_id,
            "batch_id": batch_id,
            "from_batch": from_batch,
            "trained_at": datetime.now(UTC),
            "training_rows": len(train),
            "holdout_rows": len(holdout),
            "holdout_digest": holdout_digest,
            **metric_values("", metrics),
            **metric_values("baseline_", baseline),
            "cv_r2_mean": model.cv_r2_mean,
            "cv_r2_std": model.cv_r2_std,
            "verdict": "pending",
            "trigger": trigger,
            "drift_report_id": tags["drift_report_id"] or None,
            "why": why,
            "params": model.params,
            "shap_importance": shap_importance,
            **ratio_values(study, study_by_state),
        },
    )
    yield MaterializeResult(
        metadata={
            "model_version": int(recorded.model_version),
            "mlflow_model_version": MetadataValue.url(links.mlflow_version(mlflow.model_name, recorded.model_version)),
            "mlflow_run_id": recorded.run_id,
            "mlflow_run": MetadataValue.url(links.mlflow_run(recorded.run_id)),
            "trigger": trigger,
            "why": MetadataValue.md(why),
            "training_rows": len(train),
            "holdout_rows": len(holdout),
            "training_window": MetadataValue.md(
                f"batches {from_batch}..{batch_id}: the most recent holding at most "
                f"{training.window_rows:,} clean rows (`MLOPS_TRAIN_WINDOW_ROWS`)"
            ),
            "training_batches": MetadataValue.md(batches_table(train)),
            **plotted_metrics(metrics),
            "metrics": MetadataValue.md(metrics_table({"candidate": metrics, "naive baseline": baseline})),
            "ratio_study": MetadataValue.md(ratio_markdown(study)),
            "cv_r2_mean": round(model.cv_r2_mean, 4),
            "cv_r2_std": round(model.cv_r2_std, 4),
            "best_params": MetadataValue.md(display.key_values(model.params)),
            "search": MetadataValue.md(display.key_values(model.search, ("search", "setting"))),
            "mean_abs_shap": MetadataValue.md(
                display.importance(shap_importance, SHAP_TITLE)
                + f"\n\nSHAP: each feature's mean contribution to the predicted log price over the holdout rows "
                f"(the importance the drift report and the viewer use). MLflow's `feature_importance.png` is "
                f"{GAIN_TITLE}, another ranking."
            ),
            **({"repaired": MetadataValue.md("\n".join(f"- {line}" for line in repaired))} if repaired else {}),
        },
        check_results=[checks.candidate_quality(metrics)],
    )


def plotted_metrics(metrics: dict[str, float]) -> dict:
    """The holdout metrics as numbers Dagster plots across materializations, in readable units: dollars without
    cents, MAPE and median APE in percent (`_pct`), the rest to 4 decimals."""
    out: dict = {}
    for name, value in metrics.items():
        if name in ("rmse", "mae"):
            out[name] = round(value)
        elif name in ("mape", "median_ape"):
            out[f"{name}_pct"] = round(100 * value, 2)
        else:
            out[name] = round(value, 4)
    return out


def _repair(context: AssetExecutionContext, mlflow: MlflowResource, db) -> list[str]:
    """Repair what an earlier failed run left half-written (see `assets/repair.py`), and say so."""
    repaired = repair(mlflow.registry(), db, mlflow.experiment, context.instance)
    for line in repaired:
        context.log.warning(f"repaired: {line}")
    return repaired


def _drift_report(db, report_id: str | None) -> dict | None:
    """The drift report that caused a training, as recorded."""
    if not report_id:
        return None
    with db.engine.connect() as connection:
        query = drift_reports.select().where(drift_reports.c.report_id == report_id)
        row = connection.execute(query).mappings().first()
    return dict(row) if row else None


def _record_diff(
    context: AssetExecutionContext,
    db,
    mlflow: MlflowResource,
    registry: ModelRegistry,
    judged: tuple[LoadedModel, LoadedModel],
    holdout: pd.DataFrame,
    row: dict,
    metric: str,
    judged_prices: tuple,
) -> dict:
    """The diff of the candidate against the champion it was judged against (core/model_diff.py), on the
    same holdout rows: JSON and markdown with the candidate's MLflow run, a `model_diffs` row, and the
    metadata's summary. Recording it is not part of the decision: a failure is a warning, the verdict stands."""
    candidate, champion = judged
    try:
        diff = diff_models(
            candidate,
            champion,
            holdout,
            _drift_report(db, row.get("drift_report_id")),
            metric,
            new_price=judged_prices[0],
            old_price=judged_prices[1],
        )
        json_path, markdown_path = artifact_paths(candidate.version, champion.version)
        if candidate.run_id:
            registry.client.log_dict(candidate.run_id, diff, json_path)
            registry.client.log_text(candidate.run_id, to_markdown(diff), markdown_path)
        db.upsert(
            model_diffs,
            model_diff_row(
                mlflow.model_name,
                diff,
                created_at=datetime.now(UTC),
                batch_id=row["batch_id"],
                holdout_digest=row["holdout_digest"],
                mlflow_run_id=candidate.run_id,
                dagster_run_id=context.run.run_id,
            ),
        )
    except Exception as error:  # the diff explains a decision already taken; it must not undo it
        context.log.warning(f"the diff of v{candidate.version} against v{champion.version} was not recorded: {error}")
        return {"model_diff": f"not recorded: {error}"}
    context.log.info(diff["headline"])
    return {
        "model_diff": MetadataValue.md(summary_markdown(diff)),
        "model_diff_headline": diff["headline"],
        "model_diff_artifact": f"{json_path} (MLflow run {candidate.run_id})",
        "model_diff_page": MetadataValue.url(mlflow.links().model_diff(candidate.version, champion.version)),
    }


@asset(
    partitions_def=batch_partitions,
    group_name="training",
    kinds={"mlflow"},
    deps=[candidate_model],
    check_specs=[checks.promotion_gate_spec],
    description="The promotion decision: moves the registry alias when the candidate passes the gate.",
)
def champion_model(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    training: TrainingResource,
    promotion_gate: PromotionGateResource,
    serving: ServingResource,
) -> MaterializeResult:
    batch_id = context.partition_key
    db = warehouse.get()
    repaired = _repair(context, mlflow, db)
    row = queries.candidate_for(db, mlflow.model_name, batch_id, context.run.run_id)
    if row is None:
        raise Failure(f"no candidate was trained for batch {batch_id}: materialize candidate_model first")
    registry = mlflow.registry()
    candidate = registry.load(str(row["model_version"]))
    champion_version = registry.alias_version()

    trained_on = queries.clean_through(db, row["batch_id"], since=row.get("from_batch"))
    train, holdout = _split(trained_on, training.holdout_fraction)
    if digest(holdout["listing_id"]) != row["holdout_digest"]:
        raise Failure(
            f"the holdout rows of v{candidate.version} changed since it was trained (a batch was re-loaded): "
            "retrain it before promoting"
        )
    candidate_price = prices(candidate, holdout)
    candidate_metrics = regression_metrics(holdout["price"], candidate_price)
    baseline = baseline_metrics(train, holdout)
    gate = promotion_gate.gate()
    champion_metrics = None
    champion = champion_price = None
    candidate_study = ratio_study(candidate_price, holdout["price"].to_numpy())  # the gate needs no by-state figures
    rolled_back = candidate.tags.get("verdict") == ROLLED_BACK
    if champion_version == candidate.version:
        verdict = Verdict(True, f"v{candidate.version} already holds the alias '{mlflow.alias}'")
    elif rolled_back:
        verdict = Verdict(
            False,
            f"v{candidate.version} was rolled back on live quality ({candidate.tags.get('verdict_reason', '')}); "
            "it is not promoted again unless retrained",
        )
    else:
        unscorable = None
        if champion_version is not None:
            try:
                champion = registry.load(champion_version)
                champion_price = prices(champion, holdout)
                champion_metrics = regression_metrics(holdout["price"], champion_price)
            except ValueError as error:  # e.g. trained by a release with other features
                unscorable = f"champion v{champion_version} cannot be scored by this code ({error})"
                context.log.warning(f"{unscorable}: the candidate is judged against the naive baseline only")
        verdict = decide(
            candidate_metrics, champion_metrics, gate, champion_version, len(holdout), baseline, candidate_study
        )
        if unscorable:
            reason = verdict.reason.replace("; no champion yet", "")
            verdict = Verdict(verdict.promoted, f"{reason}; {unscorable}: judged against the baseline only")

    # The warehouse first, then the registry's verdict, then the alias: a failure between two writes leaves a
    # state the next run repairs (assets/repair.py), never a served version without its recorded verdict.
    db.update(
        model_history,
        {"model_name": mlflow.model_name, "model_version": int(candidate.version)},
        {
            "champion_version": int(champion_version) if champion_metrics and champion_version else None,
            **metric_values("champion_", champion_metrics),
            **metric_values("baseline_", baseline),
            "gate_mode": gate.mode,
            "verdict": "promoted" if verdict.promoted else ROLLED_BACK if rolled_back else "rejected",
            "reason": verdict.reason,
            "decided_at": datetime.now(UTC),
        },
    )
    if champion_version != candidate.version and not rolled_back:
        if verdict.promoted:
            registry.promote(candidate.version, verdict.reason)
        else:
            registry.set_verdict(candidate.version, "rejected", verdict.reason)
    outcome = "promoted" if verdict.promoted else "rejected"
    context.log.info(f"v{candidate.version} {outcome}: {verdict.reason}")
    notified = "not configured"
    if verdict.promoted and serving.url:
        try:
            serving.notify_reload()
            notified = "reloaded"
        except Exception as error:  # serving follows the alias by itself: a warning, not a failure
            notified = f"failed: {error}"
            context.log.warning(
                f"serving was not told to reload ({error}); it will pick v{candidate.version} up by polling"
            )
    diff_metadata = {}
    if champion_metrics is not None and champion is not None:
        diff_metadata = _record_diff(
            context,
            db,
            mlflow,
            registry,
            (candidate, champion),
            holdout,
            row,
            gate.comparison_metric,
            (candidate_price, champion_price),
        )
    links = mlflow.links()
    held = candidate.version if verdict.promoted else champion_version
    return MaterializeResult(
        metadata={
            "verdict": outcome,
            "reason": MetadataValue.md(verdict.reason),
            "candidate_version": int(candidate.version),
            "candidate": MetadataValue.url(links.mlflow_version(mlflow.model_name, candidate.version)),
            **({"champion": MetadataValue.url(links.mlflow_version(mlflow.model_name, held))} if held else {}),
            **({"mlflow_run": MetadataValue.url(links.mlflow_run(candidate.run_id))} if candidate.run_id else {}),
            "champion_version": int(candidate.version if verdict.promoted else champion_version or 0),
            "gate": f"{gate.mode} ({gate.comparison_metric})",
            "metrics": MetadataValue.md(
                metrics_table(
                    {
                        f"candidate v{candidate.version}": candidate_metrics,
                        f"champion v{champion_version}": champion_metrics,
                        "naive baseline": baseline,
                    }
                )
            ),
            "holdout_rows": len(holdout),
            "ratio_study": MetadataValue.md(ratio_markdown(candidate_study)),
            "serving_reload": notified,
            **diff_metadata,
            **({"repaired": MetadataValue.md("\n".join(f"- {line}" for line in repaired))} if repaired else {}),
        },
        check_results=[
            checks.promotion_gate(
                verdict.promoted,
                outcome,
                verdict.reason,
                f"{gate.mode} ({gate.comparison_metric})",
                gate.comparison_metric,
                candidate_metrics[gate.comparison_metric],
            )
        ],
    )
