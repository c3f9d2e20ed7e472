"""Repairs of the half-written states a failed training or promotion leaves between MLflow and the warehouse.

A training writes MLflow (run, registered version) and then the warehouse (`model_history`); a promotion
writes the warehouse (the verdict), then the registry's verdict tags, then moves the alias. A failure
between two of those writes - a database lost, an MLflow server restarted, a killed run - leaves one of these,
each repaired at the start of the next candidate_model or champion_model:

- an MLflow run still RUNNING whose Dagster run has ended (the process was killed): ended as FAILED;
- a registered version with no `model_history` row (the warehouse write failed): the row, from the version's
  run and tags;
- a verdict in `model_history` that the registry lacks (the tag write failed): back to `pending`, saying so,
  and champion_model decides again;
- a verdict in the registry that `model_history` lacks (the warehouse write failed): copied into it.

An alias that failed to move after its verdict was tagged leaves the old champion serving (safe) and a
failed run: re-running champion_model for that batch decides again and moves it.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from dagster import DagsterInstance

from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.storage.warehouse import Warehouse, metric_values, model_history

#: The registry's verdict tags -> the verdict `model_history` records for them.
REGISTRY_VERDICTS = {
    "promoted": "promoted",
    "promoted_manually": "promoted",
    "rejected": "rejected",
    "rolled_back": "rolled_back",
}


def end_abandoned_runs(registry: ModelRegistry, experiment: str, instance: DagsterInstance) -> list[str]:
    """MLflow runs left RUNNING by a killed process: those whose Dagster run is no longer in progress."""
    experiment_record = registry.client.get_experiment_by_name(experiment)
    if experiment_record is None:
        return []
    repaired = []
    for run in registry.client.search_runs([experiment_record.experiment_id], "attributes.status = 'RUNNING'"):
        dagster_run_id = run.data.tags.get("dagster_run_id")
        dagster_run = instance.get_run_by_id(dagster_run_id) if dagster_run_id else None
        if dagster_run is not None and not dagster_run.is_finished:
            continue  # still training
        registry.client.set_terminated(run.info.run_id, status="FAILED")
        registry.client.set_tag(run.info.run_id, "mlops.ended_by", "repair: its process ended without ending it")
        repaired.append(
            f"MLflow run {run.info.run_id} was left RUNNING by Dagster run {dagster_run_id}: ended as FAILED"
        )
    return repaired


def record_unrecorded_versions(registry: ModelRegistry, db: Warehouse, versions: list) -> list[str]:
    """Registered `versions` trained by the pipeline (they carry a `batch_id` tag) with no `model_history` row."""
    with db.engine.connect() as connection:
        known = {
            int(v)
            for (v,) in connection.execute(
                sa.select(model_history.c.model_version).where(model_history.c.model_name == registry.model_name)
            )
        }
    repaired = []
    for version in versions:
        if int(version.version) in known or "batch_id" not in version.tags:
            continue
        tags = version.tags
        run = registry.client.get_run(version.run_id) if version.run_id else None
        metrics = dict(run.data.metrics) if run else {}
        verdict = REGISTRY_VERDICTS.get(tags.get("verdict", ""), "pending")
        note = "recorded late: the warehouse write after its training failed"
        db.upsert(
            model_history,
            {
                "model_name": registry.model_name,
                "model_version": int(version.version),
                "mlflow_run_id": version.run_id or "",
                "dagster_run_id": tags.get("dagster_run_id"),
                "batch_id": tags["batch_id"],
                "from_batch": tags.get("from_batch"),
                "trained_at": datetime.fromtimestamp(version.creation_timestamp / 1000, UTC),
                "training_rows": int(tags.get("training_rows") or 0),
                "holdout_rows": int(tags.get("holdout_rows") or 0),
                "holdout_digest": tags.get("holdout_digest", ""),
                **metric_values("", metrics),
                **metric_values(
                    "baseline_",
                    {k.removeprefix("baseline_"): v for k, v in metrics.items() if k.startswith("baseline_")},
                ),
                "cv_r2_mean": metrics.get("cv_r2_mean"),
                "cv_r2_std": metrics.get("cv_r2_std"),
                "verdict": verdict,
                "reason": f"{tags['verdict_reason']} ({note})" if tags.get("verdict_reason") else note,
                "trigger": tags.get("trigger"),
                "drift_report_id": tags.get("drift_report_id") or None,
                "why": tags.get("why"),
            },
        )
        repaired.append(f"v{version.version} had no model_history row ({note}): recorded as {verdict}")
    return repaired


def settle_verdicts(registry: ModelRegistry, db: Warehouse, versions: list) -> list[str]:
    """Make `model_history` and the registry agree on the verdict of each of `versions`."""
    tagged = {int(v.version): v.tags for v in versions}
    with db.engine.connect() as connection:
        rows = connection.execute(
            sa.select(model_history.c.model_version, model_history.c.verdict, model_history.c.reason).where(
                model_history.c.model_name == registry.model_name,
                model_history.c.model_version.in_(list(tagged)),
            )
        ).all()
    repaired = []
    for version, verdict, reason in rows:
        tags = tagged[version]
        in_registry = REGISTRY_VERDICTS.get(tags.get("verdict", ""))
        key = {"model_name": registry.model_name, "model_version": version}
        if verdict == "pending" and in_registry:
            db.update(model_history, key, {"verdict": in_registry, "reason": tags.get("verdict_reason"),
                                           "decided_at": datetime.now(UTC)})  # fmt: skip
            repaired.append(f"v{version}: the registry says {in_registry}, model_history said pending: copied")
        elif verdict != "pending" and in_registry is None:
            undone = f"decided {verdict} ({reason}), but the registry write failed: champion_model decides again"
            db.update(model_history, key, {"verdict": "pending", "reason": undone})
            repaired.append(f"v{version}: {undone}")
    return repaired


def repair(
    registry: ModelRegistry, db: Warehouse, experiment: str, instance: DagsterInstance, newest: int = 50
) -> list[str]:
    """Every repair above, in order; what was repaired, in words (empty when nothing was half-written)."""
    repaired = end_abandoned_runs(registry, experiment, instance)
    versions = registry.versions(newest)  # one registry read for both checks below
    repaired += record_unrecorded_versions(registry, db, versions)
    # the rows just recorded carry the registry's verdict already: settling them changes nothing
    return repaired + settle_verdicts(registry, db, versions)
