"""drift_report: is the newest batch different from what the champion was trained on?

The reference is the clean data the current champion was trained on (the batches of its training
window, `model_history.from_batch` to the one it was trained at). No champion yet means no
reference: the decision is a baseline training.

The columns are also ranked by drift x the champion's reliance on them (its mean |SHAP| per feature,
mapped to the raw columns each feature derives from), and the why leads with the drifted columns the
champion relies on. The report says what the importance option (`require_importance`) decides,
whether or not it is applied.
"""

import json
from dataclasses import asdict
from datetime import UTC, datetime

from dagster import (
    AssetExecutionContext,
    AssetKey,
    AssetObservation,
    Failure,
    MaterializeResult,
    MetadataValue,
    asset,
)

from mlops_assets.assets.listings import clean_listings
from mlops_assets.assets.outcomes import live_performance
from mlops_assets.core import display
from mlops_assets.core.contracts import DriftDecision, Meta, Trigger
from mlops_assets.core.features import column_reliance
from mlops_assets.ml.drift import CATEGORICAL, NUMERIC, DriftResult, DriftRule, compare
from mlops_assets.partitions import batch_partitions
from mlops_assets.resources import DriftRuleResource, MlflowResource, ObjectStoreResource, WarehouseResource
from mlops_assets.storage import queries
from mlops_assets.storage.warehouse import drift_reports


def _training_line(decision: DriftDecision, trains_here: bool) -> str:
    """What happens next, in words (the `trains_in_same_run` flag the sensors read, for people)."""
    if not decision.trains:
        return "none: nothing to retrain on"
    return "in this run (mlops_pipeline)" if trains_here else "requested by drift_sensor (a train_job run)"


def skipped_training(batch_id: str, why: str, report_url: str) -> list[AssetObservation]:
    """'skipped: no drift' as an outcome on the model assets' partition for the batch.

    No training means no materialization, which the Dagster UI would otherwise show as a missing partition;
    an observation puts the decision, its reason and the report on that partition's page instead.
    """
    metadata: dict[str, MetadataValue] = {
        "outcome": MetadataValue.text(DriftDecision.NO_DRIFT.value),
        "why": MetadataValue.md(why),
        "drift_report": MetadataValue.url(report_url),
    }
    return [
        AssetObservation(asset_key=AssetKey(name), partition=batch_id, metadata=metadata)
        for name in ("candidate_model", "champion_model")
    ]


def report_key(report_id: str) -> str:
    return f"reports/drift/{report_id}.html"


def _reference_window(db, mlflow: MlflowResource, version: str) -> tuple[str | None, str]:
    """The batches the champion was trained on, (first, last): its model_history row, else its registry tags
    (no first batch recorded: from the first)."""
    row = queries.model_row(db, mlflow.model_name, version)
    if row:
        return row.get("from_batch"), row["batch_id"]
    tags = mlflow.registry().client.get_model_version(mlflow.model_name, version).tags
    if "batch_id" not in tags:
        raise Failure(f"champion v{version} records no training batch (tag batch_id): cannot pick a reference")
    return tags.get("from_batch"), tags["batch_id"]


def _champion_reliance(db, mlflow: MlflowResource, version: str) -> tuple[dict[str, float] | None, str]:
    """Per monitored column, the champion's reliance on it; None (and why) when it recorded no importance."""
    row = queries.model_row(db, mlflow.model_name, version)
    importance = (row or {}).get("shap_importance")
    if isinstance(importance, str):
        importance = json.loads(importance)
    if not importance:
        return None, f"champion v{version} recorded no mean |SHAP| per feature: no importance to weight the drift by"
    return column_reliance(importance, NUMERIC + CATEGORICAL), ""


def importance_summary(
    result: DriftResult, rule: DriftRule, reliance: dict[str, float], version: str
) -> tuple[str, str]:
    """(what the importance option decides, the sentence that says it and whether it was applied)."""
    relied = result.relied_on(rule, reliance)
    decision = DriftDecision.of(result.importance_detected(rule, reliance))
    state = "applied" if rule.require_importance else "not applied (require_importance is off)"
    counted = ", ".join(f"{c} ({reliance[c]:.0%})" for c in relied) if relied else "none"
    ignored = [c for c in result.drifted_columns if c not in relied]
    left_out = f"; not counted: {', '.join(f'{c} ({reliance.get(c, 0.0):.0%})' for c in ignored)}" if ignored else ""
    sentence = (
        f"importance option {state}: drifted columns carrying >= {rule.min_importance_share:.0%} of champion "
        f"v{version}'s importance: {counted}{left_out} -> {decision}"
    )
    return decision.value, sentence


def ranking_table(ranking: list[dict]) -> str:
    """Markdown: the columns by drift x reliance, readable."""
    lines = [
        "| column | drift score | threshold | drifted | model reliance | weighted |",
        "|---|---:|---:|---|---:|---:|",
    ]
    for r in ranking:
        lines.append(
            f"| {r['column']} | {r['score']:.3f} | {r['threshold']:g} | {'yes' if r['drifted'] else 'no'} | "
            f"{r['reliance']:.0%} | {r['weighted']:.2f} |"
        )
    return "\n".join(lines)


@asset(
    partitions_def=batch_partitions,
    group_name="drift",
    kinds={"evidently"},
    # after the outcomes: a rollback they make happens before the report picks the champion's reference
    deps=[clean_listings, live_performance],
    description="Drift of the batch against the champion's training data; decides whether to train.",
)
def drift_report(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    object_store: ObjectStoreResource,
    mlflow: MlflowResource,
    drift_rule: DriftRuleResource,
) -> MaterializeResult:
    batch_id = context.partition_key
    db = warehouse.get()
    current = queries.clean_batch(db, batch_id)
    if current.empty:
        raise Failure(f"batch {batch_id} has no clean rows: materialize clean_listings first")
    champion = mlflow.registry().alias_version()
    report_id = f"{batch_id}-vs-v{champion or 0}"
    row = {
        "report_id": report_id,
        "batch_id": batch_id,
        "created_at": datetime.now(UTC),
        "reference_model_version": champion,
        "rows_current": len(current),
        "dagster_run_id": context.run.run_id,
    }
    metadata: dict = {}
    if champion is None:
        no_ranking = "absent: no champion yet, so no importance to weight the drift by"
        row |= {
            "rows_reference": 0,
            "decision": DriftDecision.BASELINE.value,
            "why": "no champion yet: a baseline model is trained",
            "importance_rule": no_ranking,
        }
        metadata = {"importance_ranking": no_ranking}
    else:
        since, through = _reference_window(db, mlflow, champion)
        reference = queries.clean_through(db, through, columns=NUMERIC + CATEGORICAL, since=since)
        rule = drift_rule.rule()
        result = compare(reference, current, rule)
        reliance, no_reliance = _champion_reliance(db, mlflow, champion)
        detected, why = result.decide(rule, reliance)
        uri = object_store.get().write_text(report_key(report_id), result.html)
        ranking = [asdict(r) for r in result.ranking(reliance)] if reliance is not None else None
        if reliance is not None:
            importance_decision, importance_rule = importance_summary(result, rule, reliance, champion)
        else:
            unapplied = "; require_importance could not be applied: the plain rule decided"
            applied = unapplied if rule.require_importance else ""
            importance_decision, importance_rule = None, f"absent: {no_reliance}{applied}"
        row |= {
            "reference_batches": f"{since}..{through}" if since else f"up to {through}",
            "rows_reference": len(reference),
            "drift_detected": detected,
            "share_drifted": result.share_drifted,
            "drifted_columns": result.drifted_columns,
            "column_scores": result.scores(),
            "decision": DriftDecision.of(detected).value,
            "why": why,
            "report_uri": uri,
            "importance_ranking": ranking,
            "importance_decision": importance_decision,
            "importance_rule": importance_rule,
        }
        metadata = {
            "share_drifted": display.percent(result.share_drifted),
            "drifted_columns": ", ".join(result.drifted_columns) or "none",
            "column_scores": MetadataValue.md(display.drift_scores(result.scores())),
            "report": MetadataValue.url(mlflow.links().drift_report(report_id)),
            "report_file": MetadataValue.text(f"Evidently HTML: {uri} (the viewer's Drift page shows it)"),
            "importance_ranking": MetadataValue.md(ranking_table(ranking)) if ranking else importance_rule,
            "importance_option": MetadataValue.md(importance_rule),
            **({"importance_decision": importance_decision} if importance_decision else {}),
        }
    db.upsert(drift_reports, row)
    trains_here = Trigger.from_tags(context.run.tags).trains_in_same_run
    decision = DriftDecision.parse(row["decision"])
    context.log.info(f"batch {batch_id}: {row['decision']} - {row['why']}")
    if not decision.trains:
        for observation in skipped_training(batch_id, row["why"], mlflow.links().drift_report(report_id)):
            context.log_event(observation)
    return MaterializeResult(
        metadata={
            Meta.REPORT_ID: report_id,
            Meta.DECISION: row["decision"],
            Meta.DRIFT_DETECTED: bool(row.get("drift_detected")),
            Meta.WHY: MetadataValue.md(row["why"]),
            "reference": f"champion v{champion}, batches {row['reference_batches']}" if champion else "none",
            "rows_current": len(current),
            "rows_reference": row["rows_reference"],
            "training": _training_line(decision, trains_here),
            **metadata,
            # read back by the sensors (internal): this run trains itself, so drift_sensor leaves it alone
            Meta.TRAINS_IN_SAME_RUN: trains_here,
        }
    )
