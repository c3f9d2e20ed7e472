"""Outcomes: batch scoring, sales joined to earlier scores, live quality per model version, rollback.

The truth arrives by itself in this domain: a house listed `for_sale` shows up in a later batch as `sold`.
- listing_scores: every listing of the batch that is not sold, priced by the champion of that moment - the
  platform's batch inference path, and the earlier predictions later sales are judged against;
- sale_outcomes: the batch's sales joined to every earlier score of the same property (storage/outcomes.py);
- live_performance: per model version, error and IAAO ratio study over the batch's matched sales, and the
  check `champion_live_quality` (core/live_quality.py) that can roll the champion back (ml/rollback.py).

All three run in ingest_job, before the drift report: the batch is scored by the champion that stood when it
arrived, before any training on it, and a rollback happens before the drift report picks its reference.
"""

from collections.abc import Iterator
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    MaterializeResult,
    MetadataValue,
    asset,
)

from mlops_assets.assets.listings import clean_listings
from mlops_assets.core.live_quality import judge
from mlops_assets.core.promotion import fmt
from mlops_assets.ml.model_diff import prices
from mlops_assets.ml.rollback import roll_back
from mlops_assets.partitions import batch_partitions
from mlops_assets.resources import (
    LiveQualityResource,
    MlflowResource,
    ObjectStoreResource,
    ServingResource,
    WarehouseResource,
)
from mlops_assets.storage import outcomes, queries
from mlops_assets.storage.warehouse import listing_scores as scores_table
from mlops_assets.storage.warehouse import live_performance as performance_table
from mlops_assets.storage.warehouse import sale_outcomes as outcomes_table

LIVE_CHECK = "champion_live_quality"


def scores_copy_key(batch_id: str) -> str:
    return f"scores/batch_id={batch_id}.parquet"


def _price_table(values: pd.Series) -> str:
    """Markdown: quantiles of a price column in dollars."""
    quantiles = values.quantile([0.1, 0.25, 0.5, 0.75, 0.9])
    lines = ["| quantile | price |", "|---|---:|"]
    lines += [f"| p{round(q * 100)} | ${v:,.0f} |" for q, v in quantiles.items()]
    return "\n".join(lines)


def _nothing_scored(context: AssetExecutionContext, db, batch_id: str, version: str | None, why: str):
    """An empty score set for the batch (replacing any earlier one), saying why: the loop goes on."""
    db.replace_batch(scores_table, batch_id, pd.DataFrame())
    log = context.log.warning if version else context.log.info  # a champion that cannot score is worth a warning
    log(f"batch {batch_id}: {why}")
    return MaterializeResult(
        metadata={"rows_scored": 0, "model_version": version or "none", "note": why, "dagster/row_count": 0}
    )


@asset(
    partitions_def=batch_partitions,
    group_name="outcomes",
    kinds={"xgboost", "sql", "parquet"},
    deps=[clean_listings],
    description="Batch scoring: every listing of the batch that is not sold, priced by the champion of that moment.",
)
def listing_scores(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    object_store: ObjectStoreResource,
) -> MaterializeResult:
    batch_id = context.partition_key
    db = warehouse.get()
    clean = queries.clean_batch(db, batch_id)
    # rows loaded before property keys existed have none: they could never be matched to a sale
    unsold = clean[(clean["status"] != "sold") & clean["property_key"].notna()].reset_index(drop=True)
    registry = mlflow.registry()
    version = registry.alias_version()
    if version is None or unsold.empty:
        why = "no champion yet: nothing to score with" if version is None else "no unsold listings in the batch"
        return _nothing_scored(context, db, batch_id, version, why)
    try:
        predicted = prices(registry.load(version), unsold)
    except ValueError as error:  # e.g. a champion trained by a release with other features
        return _nothing_scored(context, db, batch_id, version, f"champion v{version} cannot be scored by this code "
                               f"({error}); the batch is left unscored")  # fmt: skip
    frame = pd.DataFrame(
        {
            "batch_id": batch_id,
            "listing_id": unsold["listing_id"],
            "property_key": unsold["property_key"],
            "model_name": mlflow.model_name,
            "model_version": str(version),
            "status": unsold["status"],
            "state": unsold["state"],
            "list_price": unsold["price"],
            "predicted_price": predicted,
            "scored_at": datetime.now(UTC),
        }
    )
    uri = object_store.get().write_parquet(scores_copy_key(batch_id), frame)
    rows = db.replace_batch(scores_table, batch_id, frame)
    context.log.info(f"batch {batch_id}: {rows:,} listings priced by v{version}")
    return MaterializeResult(
        metadata={
            "rows_scored": rows,
            "model_version": str(version),
            "predicted_prices": MetadataValue.md(_price_table(frame["predicted_price"])),
            "median_predicted_over_list": round(float(np.median(predicted / unsold["price"].to_numpy())), 3),
            "stored_copy": MetadataValue.path(uri),
            "dagster/row_count": rows,
        }
    )


@asset(
    partitions_def=batch_partitions,
    group_name="outcomes",
    kinds={"sql"},
    deps=[clean_listings, listing_scores],
    description="The batch's sales joined to the latest earlier score of the same property by each model version.",
)
def sale_outcomes(context: AssetExecutionContext, warehouse: WarehouseResource, mlflow: MlflowResource):
    batch_id = context.partition_key
    db = warehouse.get()
    sold = outcomes.sold_rows(db, batch_id)
    sales = len(sold)
    matched = outcomes.match_sales(db, batch_id, mlflow.model_name, sold)
    matched["matched_at"] = datetime.now(UTC)
    rows = db.replace_batch(outcomes_table, batch_id, matched)
    matched_sales = int(matched["sold_listing_id"].nunique()) if rows else 0
    per_version = matched.groupby(["model_version", "score_source"]).size().rename("sales").reset_index()
    context.log.info(f"batch {batch_id}: {matched_sales:,} of {sales:,} sales matched to earlier scores")
    return MaterializeResult(
        metadata={
            "sales": sales,
            "matched_sales": matched_sales,
            "match_rate": MetadataValue.text(f"{matched_sales / sales:.1%}" if sales else "no sales"),
            "rows": rows,
            "by_model_version": MetadataValue.md(
                per_version.to_markdown(index=False) if rows else "no earlier score of any sold property"
            ),
            "dagster/row_count": rows,
        }
    )


def _performance_table(frame: pd.DataFrame) -> str:
    """Markdown: per model version, its figures over the batch's matched sales, in readable units."""
    lines = ["| version | sales | MAE | MAPE | median ratio | COD | PRD | PRB |", "|---|" + "---:|" * 7]
    for row in frame[frame["scope"] == "all"].itertuples():
        prb = f"{row.prb:+.3f}" if row.prb is not None and not pd.isna(row.prb) else "-"
        lines.append(f"| v{row.model_version} | {row.sales:,} | {fmt('mae', row.mae)} | {fmt('mape', row.mape)} | "
                     f"{row.median_ratio:.3f} | {row.cod:.1f} | {row.prd:.3f} | {prb} |")  # fmt: skip
    return "\n".join(lines)


@asset(
    partitions_def=batch_partitions,
    group_name="outcomes",
    kinds={"sql"},
    deps=[sale_outcomes],
    check_specs=[
        AssetCheckSpec(
            LIVE_CHECK,
            asset="live_performance",
            description="The champion's live error over its matched sales is not clearly worse than its holdout "
            "error, nor than the previous champion's on the same sale batches (rollback policy: off/alert/auto).",
        )
    ],
    description="Live quality per model version over the batch's matched sales: MAE, MAPE, the IAAO ratio study.",
)
def live_performance(
    context: AssetExecutionContext,
    warehouse: WarehouseResource,
    mlflow: MlflowResource,
    live_quality: LiveQualityResource,
    serving: ServingResource,
) -> Iterator:
    batch_id = context.partition_key
    db = warehouse.get()
    matched = db.read(outcomes_table.select().where(outcomes_table.c.batch_id == batch_id))
    performance = outcomes.performance_rows(matched)
    stored = performance.assign(batch_id=batch_id, model_name=mlflow.model_name, computed_at=datetime.now(UTC))
    db.replace_batch(performance_table, batch_id, stored)

    rule = live_quality.rule()
    registry = mlflow.registry()
    champion = registry.alias_version()
    metadata: dict = {
        "matched_sales": int(matched["sold_listing_id"].nunique()) if not matched.empty else 0,
        "by_model_version": MetadataValue.md(_performance_table(performance) if not performance.empty else "no sales"),
        "rollback_policy": rule.policy,
    }
    if champion is None:
        yield MaterializeResult(metadata=metadata | {"champion": "none"})
        yield AssetCheckResult(check_name=LIVE_CHECK, passed=True, description="no champion yet: nothing to judge")
        return
    mine = outcomes.version_outcomes(db, mlflow.model_name, champion, through=batch_id)
    champion_figures = outcomes.figures(mine, champion, rule.metric)
    row = queries.model_row(db, mlflow.model_name, champion) or {}
    previous = outcomes.previous_champion(db, mlflow.model_name, champion)
    previous_figures = None
    if previous is not None:
        theirs = outcomes.version_outcomes(
            db, mlflow.model_name, previous, through=batch_id, batches=sorted(set(mine["batch_id"]))
        )
        previous_figures = outcomes.figures(theirs, previous, rule.metric)
    verdict = judge(champion_figures, row.get(rule.metric), previous_figures, rule)
    metadata |= {
        "champion": f"v{champion}",
        "champion_matched_sales": champion_figures.sales,
        f"champion_live_{rule.metric}": round(champion_figures.error, 4) if champion_figures.error else None,
        "judgement": MetadataValue.md(verdict.summary),
    }
    description = verdict.summary
    if verdict.worse and rule.policy == "auto":
        description += _roll_back(context, db, registry, serving, batch_id, champion, previous, verdict)
        metadata["rollback"] = description.rsplit("; ", 1)[-1]
    yield MaterializeResult(metadata={k: v for k, v in metadata.items() if v is not None})
    if rule.policy == "off":
        yield AssetCheckResult(
            check_name=LIVE_CHECK,
            passed=True,
            description=f"policy off (not enforced): {description}",
            metadata={k: v for k, v in verdict.figures.items() if v is not None},
        )
        return
    yield AssetCheckResult(
        check_name=LIVE_CHECK,
        passed=not verdict.worse,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={k: v for k, v in verdict.figures.items() if v is not None},
    )


def _roll_back(context, db, registry, serving: ServingResource, batch_id, champion, previous, verdict) -> str:
    """Under policy auto: the alias back to the previous champion, once, and serving told. Returns the words."""
    if previous is None:
        context.log.warning(f"v{champion} does clearly worse live, but no earlier champion stands to roll back to")
        return "; no earlier champion to roll back to"
    done = roll_back(registry, db, from_version=champion, to_version=previous, batch_id=batch_id,
                     reason=verdict.summary, figures=verdict.figures, dagster_run_id=context.run.run_id)  # fmt: skip
    if not done:
        return f"; rollback to v{previous} already recorded"
    context.log.warning(f"rolled back: v{champion} -> v{previous}: {verdict.summary}")
    if serving.url:
        try:
            serving.notify_reload()
        except Exception as error:  # serving follows the alias by itself
            context.log.warning(f"serving was not told to reload ({error}); it follows the alias by polling")
    return f"; rolled back to v{previous}"
