"""The promotion gate: when a candidate may replace the champion, and the reason in words.

Two modes:
- `relative` (the default): the candidate must beat the naive baseline (the training median price
  of the listing's zip / city / state, `core.baseline`) on the same holdout rows by a margin, and
  must not be worse than the champion on those rows. Both comparisons use one metric, by default
  the RMSE of log price: it means the same in Puerto Rico as in Manhattan, and one $40M listing
  cannot decide it.
- `absolute`: the original system's fixed thresholds (R2 >= 0.35, RMSE <= $700,000) and not worse
  than the champion by dollar RMSE. On markets with luxury tails these say little; kept for
  continuity and for users whose market they fit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from mlops_assets.core.metrics import LOWER_IS_BETTER
from mlops_assets.core.ratio_study import RatioStudy

GateMode = Literal["relative", "absolute"]
GateMetric = Literal["rmse_log", "median_ape", "mape", "rmse", "mae"]


@dataclass(frozen=True)
class Gate:
    mode: GateMode = "relative"
    metric: GateMetric = "rmse_log"
    """relative mode: the metric (lower is better) compared with the baseline and the champion."""
    min_gain_over_baseline: float = 0.10
    """relative mode: the candidate's metric must be at least this fraction below the baseline's."""
    max_increase: float = 0.0
    """How much worse than the champion (a fraction of its metric) a candidate may be; 0: not worse."""
    min_r2: float = 0.35
    """absolute mode only."""
    max_rmse: float = 700_000.0
    """absolute mode only (dollars)."""
    max_cod: float | None = None
    """Either mode, off by default: the holdout ratio study's COD (percent) must not exceed this (IAAO: 15)."""
    min_prd: float | None = None
    """Off by default: the holdout PRD must be at least this (IAAO: 0.98)."""
    max_prd: float | None = None
    """Off by default: the holdout PRD must be at most this (IAAO: 1.03)."""
    max_abs_prb: float | None = None
    """Off by default: the holdout PRB must lie within +/- this (IAAO: 0.05)."""

    def __post_init__(self) -> None:
        if self.mode not in ("relative", "absolute"):
            raise ValueError(f"gate mode must be 'relative' or 'absolute', got {self.mode!r}")
        if self.metric not in LOWER_IS_BETTER:
            raise ValueError(f"gate metric must be one of {', '.join(LOWER_IS_BETTER)}, got {self.metric!r}")

    @property
    def comparison_metric(self) -> str:
        return self.metric if self.mode == "relative" else "rmse"


@dataclass(frozen=True)
class Verdict:
    promoted: bool
    reason: str


def fmt(metric: str, value: float) -> str:
    """A metric as a person reads it: dollars, percent, or three decimals."""
    if metric in ("rmse", "mae"):
        return f"${value:,.0f}"
    if metric in ("mape", "median_ape"):
        return f"{value:.1%}"
    return f"{value:.3f}"


def label(metric: str) -> str:
    """A metric's name as the reasons write it."""
    names = {"rmse": "RMSE", "mae": "MAE", "mape": "MAPE", "median_ape": "median APE", "rmse_log": "RMSE(log)",
             "r2": "R2", "r2_log": "R2(log)"}  # fmt: skip
    return names[metric]


def decide(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    gate: Gate = Gate(),
    champion_version: str | None = None,
    holdout_rows: int | None = None,
    baseline: dict[str, float] | None = None,
    ratio: RatioStudy | None = None,
) -> Verdict:
    """All metric sets must come from the same holdout rows. Every failed rule is named, with the
    amount by which it failed."""
    failures: list[str] = []
    passes: list[str] = []
    if gate.mode == "absolute":
        _absolute_thresholds(candidate, gate, passes, failures)
    else:
        if baseline is None:
            raise ValueError("the relative gate needs the naive baseline's metrics on the same holdout rows")
        _beats_baseline(candidate, baseline, gate, passes, failures)
    _not_worse_than_champion(candidate, champion, gate, champion_version, holdout_rows, passes, failures)
    _ratio_study_limits(ratio, gate, passes, failures)
    if failures:
        return Verdict(False, "; ".join(failures))
    return Verdict(True, "; ".join(passes))


def _absolute_thresholds(candidate: dict, gate: Gate, passes: list[str], failures: list[str]) -> None:
    r2, rmse = candidate["r2"], candidate["rmse"]
    if r2 >= gate.min_r2:
        passes.append(f"R2 {r2:.3f} >= {gate.min_r2}")
    else:
        failures.append(f"R2 {r2:.3f} < {gate.min_r2} (short by {gate.min_r2 - r2:.3f})")
    if rmse <= gate.max_rmse:
        passes.append(f"RMSE ${rmse:,.0f} <= ${gate.max_rmse:,.0f}")
    else:
        failures.append(f"RMSE ${rmse:,.0f} > ${gate.max_rmse:,.0f} (over by ${rmse - gate.max_rmse:,.0f})")


def _beats_baseline(candidate: dict, baseline: dict, gate: Gate, passes: list[str], failures: list[str]) -> None:
    m = gate.metric
    gain = 1.0 - candidate[m] / baseline[m] if baseline[m] > 0 else 0.0
    text = (
        f"{label(m)} {fmt(m, candidate[m])} vs naive baseline {fmt(m, baseline[m])} "
        f"({gain:.0%} better; needs >= {gate.min_gain_over_baseline:.0%})"
    )
    if gain >= gate.min_gain_over_baseline:
        passes.append(text)
    else:
        failures.append(f"not enough better than the naive baseline: {text}")


def _ratio_study_limits(ratio: RatioStudy | None, gate: Gate, passes: list[str], failures: list[str]) -> None:
    """The optional limits on the holdout ratio study (all off by default)."""
    limits = [
        ("COD", ratio.cod if ratio else None, None, gate.max_cod),
        ("PRD", ratio.prd if ratio else None, gate.min_prd, gate.max_prd),
        ("|PRB|", abs(ratio.prb) if ratio and ratio.prb is not None else None, None, gate.max_abs_prb),
    ]
    for name, value, low, high in limits:
        if low is None and high is None:
            continue
        if value is None:
            failures.append(f"{name} limit set but no ratio study to check it against")
        elif (low is not None and value < low) or (high is not None and value > high):
            failures.append(f"ratio study: {name} {value:.3f} outside [{low if low is not None else '-'}, "
                            f"{high if high is not None else '-'}]")  # fmt: skip
        else:
            passes.append(f"ratio study: {name} {value:.3f} within limits")


def _not_worse_than_champion(
    candidate: dict,
    champion: dict | None,
    gate: Gate,
    version: str | None,
    holdout_rows: int | None,
    passes: list[str],
    failures: list[str],
) -> None:
    if champion is None:
        passes.append("no champion yet")
        return
    m = gate.comparison_metric
    rows = f" on the same {holdout_rows:,} holdout rows" if holdout_rows else " on the same holdout rows"
    change = candidate[m] / champion[m] - 1
    comparison = f"{label(m)} {fmt(m, candidate[m])} vs champion v{version} {fmt(m, champion[m])}{rows} ({change:+.1%})"
    if candidate[m] <= champion[m] * (1 + gate.max_increase):
        passes.append(comparison)
    else:
        failures.append(f"worse than the champion: {comparison}")
