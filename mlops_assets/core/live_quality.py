"""Live quality: how a model's predictions did once the sale prices came in, and when that is bad enough
to put its predecessor back.

A model is judged on the sales matched to its own earlier scores (see `storage/outcomes.py`). Two rules,
each only once both sides have `min_sales` matched sales:
- against itself: its live error is clearly worse than its holdout error at training time
  (live > holdout x (1 + max_increase_over_holdout));
- against its predecessor: over the same sale batches, its live error is clearly worse than the previous
  champion's (live > previous x (1 + max_increase_over_previous)).

Defaults: 50 sales put the MAPE's standard error near 3 points at the generator's ~25% error, so a 50%
margin over the holdout is far outside noise; live error also carries the sale-to-list spread (a few
percent) and the time between scoring and sale, which the holdout does not, hence the wide margin. Against
the predecessor the error kinds are alike, so 20% worse on the same period is already a clear signal.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from mlops_assets.core.promotion import fmt, label
from mlops_assets.core.ratio_study import ratio_study

RollbackPolicy = Literal["off", "alert", "auto"]
LiveMetric = Literal["mape", "median_ape", "mae"]
ROLLBACK_POLICIES: tuple[str, ...] = ("off", "alert", "auto")


@dataclass(frozen=True)
class LiveQualityRule:
    policy: RollbackPolicy = "alert"
    """off: figures only; alert: the check fails; auto: the check fails and the alias moves back."""
    metric: LiveMetric = "mape"
    min_sales: int = 50
    max_increase_over_holdout: float = 0.5
    max_increase_over_previous: float = 0.2

    def __post_init__(self) -> None:
        if self.policy not in ROLLBACK_POLICIES:
            raise ValueError(f"rollback policy must be one of {', '.join(ROLLBACK_POLICIES)}, got {self.policy!r}")
        if self.metric not in ("mape", "median_ape", "mae"):
            raise ValueError(f"live metric must be mape, median_ape or mae, got {self.metric!r}")


def live_errors(predicted: np.ndarray, sold: np.ndarray) -> dict[str, Any]:
    """Error and ratio-study figures over matched sales: sales, mae, mape, median_ape, median_ratio, cod,
    prd, prb. Fractions for mape and median_ape (0.18 = 18%); COD in percent, as IAAO writes it."""
    predicted, sold = np.asarray(predicted, float), np.asarray(sold, float)
    ape = np.abs(predicted - sold) / sold
    study = ratio_study(predicted, sold)
    return {
        "sales": len(sold),
        "mae": float(np.mean(np.abs(predicted - sold))),
        "mape": float(np.mean(ape)),
        "median_ape": float(np.median(ape)),
        "median_ratio": study.median_ratio,
        "cod": study.cod,
        "prd": study.prd,
        "prb": study.prb,
    }


@dataclass(frozen=True)
class VersionFigures:
    """One model version's live figures over a set of matched sales."""

    version: str
    sales: int
    error: float | None


@dataclass(frozen=True)
class LiveJudgement:
    worse: bool
    summary: str
    reasons: list[str] = field(default_factory=list)
    figures: dict = field(default_factory=dict)


def judge(
    champion: VersionFigures,
    holdout_error: float | None,
    previous: VersionFigures | None,
    rule: LiveQualityRule | None = None,
) -> LiveJudgement:
    """Is the champion clearly worse live than at training time, or than its predecessor on the same sales?"""
    rule = rule or LiveQualityRule()
    m = rule.metric
    figures = {"metric": m, "champion_version": champion.version, "champion_sales": champion.sales,
               "champion_live": champion.error, "champion_holdout": holdout_error,
               "previous_version": previous.version if previous else None,
               "previous_sales": previous.sales if previous else 0,
               "previous_live": previous.error if previous else None}  # fmt: skip
    if champion.sales < rule.min_sales or champion.error is None:
        return LiveJudgement(
            False,
            f"v{champion.version}: {champion.sales} matched sales, fewer than {rule.min_sales}: not judged yet",
            figures=figures,
        )
    live = f"v{champion.version} live {label(m)} {fmt(m, champion.error)} over {champion.sales:,} sales"
    reasons: list[str] = []
    passes: list[str] = []
    if holdout_error is not None and holdout_error > 0:
        limit = holdout_error * (1 + rule.max_increase_over_holdout)
        text = f"{live} vs its holdout {fmt(m, holdout_error)} (limit {fmt(m, limit)})"
        (reasons if champion.error > limit else passes).append(text)
    if previous is not None and previous.error is not None:
        if previous.sales >= rule.min_sales:
            limit = previous.error * (1 + rule.max_increase_over_previous)
            text = (f"{live} vs previous champion v{previous.version} {fmt(m, previous.error)} over "
                    f"{previous.sales:,} sales of the same batches (limit {fmt(m, limit)})")  # fmt: skip
            (reasons if champion.error > limit else passes).append(text)
        else:
            passes.append(f"previous champion v{previous.version}: {previous.sales} sales of the same batches, "
                          f"fewer than {rule.min_sales}: not compared")  # fmt: skip
    if reasons:
        return LiveJudgement(True, "clearly worse: " + "; ".join(reasons), reasons, figures)
    return LiveJudgement(False, "within limits: " + "; ".join(passes or [live]), [], figures)
