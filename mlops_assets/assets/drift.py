"""drift_report: is the newest batch different from what the champion was trained on?

The reference is the clean data the current champion was trained on (every batch up to the one it
was trained at). No champion yet means no reference: the decision is a baseline training.
"""

from datetime import UTC, datetime

from dagster import AssetExecutionContext, Failure, MaterializeResult, MetadataValue, asset

from mlops_assets.assets.listings import clean_listings
from mlops_assets.ml.drift import CATEGORICAL, NUMERIC, compare
from mlops_assets.partitions import batch_partitions
from mlops_assets.resources import DriftRuleResource, MlflowResource, ObjectStoreResource, WarehouseResource
from mlops_assets.storage import queries
from mlops_assets.storage.warehouse import drift_reports

BASELINE = "train: baseline (no champion yet)"
DRIFT = "train: drift detected"
NO_DRIFT = "skip: no drift"
PIPELINE_JOB = "mlops_pipeline"


def report_key(report_id: str) -> str:
    return f"reports/drift/{report_id}.html"


def _reference_through(db, mlflow: MlflowResource, version: str) -> str:
    """The last batch the champion was trained on: its model_history row, else its registry tag."""
    row = queries.model_row(db, mlflow.model_name, version)
    if row:
        return row["batch_id"]
    tags = mlflow.registry().client.get_model_version(mlflow.model_name, version).tags
    if "batch_id" not in tags:
        raise Failure(f"champion v{version} records no training batch (tag batch_id): cannot pick a reference")
    return tags["batch_id"]


@asset(
    partitions_def=batch_partitions,
    group_name="drift",
    kinds={"evidently"},
    deps=[clean_listings],
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
        row |= {"rows_reference": 0, "decision": BASELINE, "why": "no champion yet: a baseline model is trained"}
    else:
        through = _reference_through(db, mlflow, champion)
        reference = queries.clean_through(db, through, columns=NUMERIC + CATEGORICAL)
        rule = drift_rule.rule()
        result = compare(reference, current, rule)
        detected = result.detected(rule)
        uri = object_store.get().write_text(report_key(report_id), result.html)
        row |= {
            "reference_batches": f"up to {through}",
            "rows_reference": len(reference),
            "drift_detected": detected,
            "share_drifted": result.share_drifted,
            "drifted_columns": result.drifted_columns,
            "column_scores": result.scores(),
            "decision": DRIFT if detected else NO_DRIFT,
            "why": result.why(),
            "report_uri": uri,
        }
        metadata = {
            "share_drifted": result.share_drifted,
            "drifted_columns": ", ".join(result.drifted_columns) or "none",
            "column_scores": MetadataValue.json(result.scores()),
            "report": MetadataValue.path(uri),
        }
    db.upsert(drift_reports, row)
    trains_here = context.job_def.name == PIPELINE_JOB
    context.log.info(f"batch {batch_id}: {row['decision']} - {row['why']}")
    return MaterializeResult(
        metadata={
            "report_id": report_id,
            "decision": row["decision"],
            "drift_detected": bool(row.get("drift_detected")),
            "why": MetadataValue.md(row["why"]),
            "reference": f"champion v{champion}, batches {row['reference_batches']}" if champion else "none",
            "rows_current": len(current),
            "rows_reference": row["rows_reference"],
            "trains_in_same_run": trains_here,
            **metadata,
        }
    )
