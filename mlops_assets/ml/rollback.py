"""Rollback: put the previous champion back when the current one does clearly worse on real sales.

The same order of writes as a promotion (assets/models.py): the warehouse first (the `rollbacks` event and
the rolled-back version's verdict in `model_history`), then the registry's verdict tags, then the alias.
A rolled-back version carries the verdict `rolled_back`, so serving no longer follows it and the promotion
gate does not promote it again unless a new training registers a new version.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from mlops_assets.ml.registry import ModelRegistry
from mlops_assets.storage.warehouse import Warehouse, model_history, rollbacks

ROLLED_BACK = "rolled_back"


def recorded_rollback(db: Warehouse, model_name: str, from_version: str) -> dict | None:
    with db.engine.connect() as connection:
        row = (
            connection.execute(
                sa.select(rollbacks).where(
                    rollbacks.c.model_name == model_name, rollbacks.c.from_version == int(from_version)
                )
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


def roll_back(
    registry: ModelRegistry,
    db: Warehouse,
    *,
    from_version: str,
    to_version: str,
    batch_id: str,
    reason: str,
    figures: dict,
    dagster_run_id: str | None = None,
) -> bool:
    """Move the alias from `from_version` back to `to_version`, recording why. False (and nothing written)
    when this rollback was already done: the event is recorded once, however often a batch re-runs."""
    if recorded_rollback(db, registry.model_name, from_version) and registry.alias_version() == str(to_version):
        return False
    now = datetime.now(UTC)
    text = f"rolled back to v{to_version} at batch {batch_id}: {reason}"
    db.upsert(
        rollbacks,
        {
            "model_name": registry.model_name,
            "from_version": int(from_version),
            "to_version": int(to_version),
            "batch_id": batch_id,
            "decided_at": now,
            "reason": reason,
            "figures": figures,
            "dagster_run_id": dagster_run_id,
        },
    )
    db.update(
        model_history,
        {"model_name": registry.model_name, "model_version": int(from_version)},
        {"verdict": ROLLED_BACK, "reason": text, "decided_at": now},
    )
    registry.set_verdict(from_version, ROLLED_BACK, text)
    registry.client.set_model_version_tag(registry.model_name, str(to_version), "restored_from", str(from_version))
    registry.client.set_registered_model_alias(registry.model_name, registry.alias, str(to_version))
    return True
