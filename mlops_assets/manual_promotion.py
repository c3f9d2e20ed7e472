"""An operator's manual promotion: serve a version the gate did not promote, on the record.

When no candidate has ever passed the gate there is no champion and serving has nothing to serve.
An operator who judges a candidate good enough anyway launches `promote_manually` with the version
and a reason (required, at least 10 characters). The promotion is recorded like any other - the
verdict `promoted_manually` with the reason and who gave it on the registry version, the
`model_history` row's `manual_by` / `manual_reason`, and the reason the gate had given - then the
alias moves and serving is told. Launch it from the Dagster UI (Jobs -> promote_manually ->
Launchpad) or the CLI:

    dagster job launch -w workspace.yaml -j promote_manually --config-json \\
      '{"ops": {"promote_version": {"config": {"version": 3, "reason": "best so far; gate too strict for PR"}}}}'
"""

import getpass
from datetime import UTC, datetime

from dagster import Config, Failure, MetadataValue, OpExecutionContext, job, op
from pydantic import Field

from mlops_assets.resources import MlflowResource, ServingResource, WarehouseResource
from mlops_assets.storage import queries
from mlops_assets.storage.warehouse import model_history

MIN_REASON_CHARS = 10
MANUAL_VERDICT = "promoted_manually"


class ManualPromotionConfig(Config):
    version: int = Field(description="the registered model version to serve")
    reason: str = Field(
        description=f"why it is served although the gate did not promote it (>= {MIN_REASON_CHARS} chars)"
    )
    operator: str = Field(default="", description="who decided; default: the user running the job")


@op(description="Move the champion alias to a version the gate did not promote, with a recorded reason.")
def promote_version(
    context: OpExecutionContext,
    config: ManualPromotionConfig,
    mlflow: MlflowResource,
    warehouse: WarehouseResource,
    serving: ServingResource,
) -> None:
    reason = config.reason.strip()
    if len(reason) < MIN_REASON_CHARS:
        raise Failure(f"a manual promotion needs a reason of at least {MIN_REASON_CHARS} characters, got {reason!r}")
    operator = config.operator.strip() or getpass.getuser()
    version = str(config.version)
    registry = mlflow.registry()
    try:
        registered = registry.client.get_model_version(mlflow.model_name, version)
    except Exception as error:
        raise Failure(f"{mlflow.model_name} has no version {version}: {error}") from None
    previous = registry.alias_version()
    if previous == version:
        raise Failure(f"v{version} already holds the alias '{mlflow.alias}': nothing to promote")
    gate_said = registered.tags.get("verdict_reason") or "no verdict recorded"
    recorded = f"manual promotion by {operator}: {reason} (the gate had said: {gate_said})"
    db = warehouse.get()
    db.update(
        model_history,
        {"model_name": mlflow.model_name, "model_version": int(version)},
        {
            "verdict": "promoted",
            "reason": recorded,
            "manual_by": operator,
            "manual_reason": reason,
            "champion_version": int(previous) if previous else None,
            "decided_at": datetime.now(UTC),
        },
    )
    registry.promote(version, recorded, MANUAL_VERDICT, {"manual_by": operator, "manual_reason": reason})
    context.log.info(f"v{version} promoted manually by {operator} (was v{previous}): {reason}")
    notified = "not configured"
    if serving.url:
        try:
            serving.notify_reload()
            notified = "reloaded"
        except Exception as error:  # serving follows the alias by itself
            notified = f"failed: {error}"
            context.log.warning(f"serving was not told to reload ({error}); it will pick v{version} up by polling")
    row = queries.model_row(db, mlflow.model_name, version)
    context.add_output_metadata(
        {
            "version": int(version),
            "previous_champion": previous or "none",
            "operator": operator,
            "reason": MetadataValue.md(recorded),
            "history_row": "updated" if row else "none (version not trained by this platform)",
            "serving_reload": notified,
        }
    )


@job(description="Serve a version the promotion gate did not promote; needs the version and a reason.")
def promote_manually() -> None:
    promote_version()
