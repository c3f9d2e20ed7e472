"""The asset checks of the training assets: what each one asserts, and its result.

The checks run inside their asset (`check_specs`), since they judge what the asset just computed:

- `candidate_quality` (blocking) on `candidate_model`: a sanity floor every real model passes - finite holdout
  metrics and R2(log) above 0 (better than predicting the mean log price). A broken model (NaN predictions, a
  constant, a mis-encoded feature frame) fails it, and `champion_model` does not run on it.
- `promotion_gate` (non-blocking, WARN) on `champion_model`: the gate's verdict. Passed = promoted (or the
  version already holds the alias); failed = kept out, with the rule that failed. A rejected candidate is a
  normal outcome of the loop, so it warns and never fails the run.
"""

from __future__ import annotations

import math

from dagster import AssetCheckResult, AssetCheckSeverity, AssetCheckSpec, MetadataValue

from mlops_assets.core.promotion import fmt, label

CANDIDATE_QUALITY = "candidate_quality"
PROMOTION_GATE = "promotion_gate"

candidate_quality_spec = AssetCheckSpec(
    CANDIDATE_QUALITY,
    asset="candidate_model",
    blocking=True,
    description="Sanity floor on the holdout: every metric is finite and R2(log) > 0 (better than the mean log "
    "price). Blocking: a broken model never reaches the promotion gate.",
)
promotion_gate_spec = AssetCheckSpec(
    PROMOTION_GATE,
    asset="champion_model",
    blocking=False,
    description="The promotion gate's verdict: passes when the candidate is promoted (or already holds the alias); "
    "a rejection warns with the rule that failed - a normal outcome, not a failed run.",
)


def candidate_quality(metrics: dict[str, float]) -> AssetCheckResult:
    """`candidate_quality_spec`'s result for the candidate's holdout metrics."""
    problems = [f"{label(k)} is {v}" for k, v in metrics.items() if not math.isfinite(v)]
    r2_log = metrics.get("r2_log", float("nan"))
    if math.isfinite(r2_log) and r2_log <= 0:
        problems.append(f"R2(log) {r2_log:.3f} <= 0: no better than the mean log price")
    return AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=not problems,
        severity=AssetCheckSeverity.ERROR,
        description="; ".join(problems) if problems else f"finite metrics, R2(log) {r2_log:.3f} > 0",
        metadata={"r2_log": MetadataValue.float(round(r2_log, 4)) if math.isfinite(r2_log) else "not finite"},
    )


def not_trained(why: str) -> AssetCheckResult:
    """`candidate_quality` when `candidate_model` skipped training (mlops_pipeline, no drift): nothing to judge."""
    return AssetCheckResult(
        check_name=CANDIDATE_QUALITY,
        passed=True,
        description=f"nothing to check: not trained (no drift: {why})",
        metadata={"trained": False},
    )


def promotion_gate(promoted: bool, verdict: str, reason: str, gate: str, metric: str, value: float) -> AssetCheckResult:
    """`promotion_gate_spec`'s result: the verdict, its reason, the gate and the candidate's figure on its metric."""
    return AssetCheckResult(
        check_name=PROMOTION_GATE,
        passed=promoted,
        severity=AssetCheckSeverity.WARN,
        description=f"{verdict}: {reason}",
        metadata={
            "verdict": verdict,
            "reason": MetadataValue.md(reason),
            "gate": gate,
            f"candidate {label(metric)}": fmt(metric, value),
        },
    )
