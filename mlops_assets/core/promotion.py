"""The promotion gate: when a candidate may replace the champion, and the reason in words."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Gate:
    min_r2: float = 0.35
    max_rmse: float = 700_000.0
    max_rmse_increase: float = 0.0
    """How much worse than the champion's RMSE (a fraction) a candidate may be; 0: not worse."""


@dataclass(frozen=True)
class Verdict:
    promoted: bool
    reason: str


def decide(
    candidate: dict[str, float],
    champion: dict[str, float] | None,
    gate: Gate = Gate(),
    champion_version: str | None = None,
    holdout_rows: int | None = None,
) -> Verdict:
    """Both metric sets must come from the same holdout rows. Every failed rule is named, with
    the amount by which it failed."""
    failures, passes = [], []
    r2, rmse = candidate["r2"], candidate["rmse"]
    if r2 >= gate.min_r2:
        passes.append(f"R2 {r2:.3f} >= {gate.min_r2}")
    else:
        failures.append(f"R2 {r2:.3f} < {gate.min_r2} (short by {gate.min_r2 - r2:.3f})")
    if rmse <= gate.max_rmse:
        passes.append(f"RMSE ${rmse:,.0f} <= ${gate.max_rmse:,.0f}")
    else:
        failures.append(f"RMSE ${rmse:,.0f} > ${gate.max_rmse:,.0f} (over by ${rmse - gate.max_rmse:,.0f})")
    if champion is None:
        passes.append("no champion yet")
    else:
        rows = f" on the same {holdout_rows:,} holdout rows" if holdout_rows else " on the same holdout rows"
        limit = champion["rmse"] * (1 + gate.max_rmse_increase)
        change = rmse / champion["rmse"] - 1
        comparison = f"RMSE ${rmse:,.0f} vs champion v{champion_version} ${champion['rmse']:,.0f}{rows} ({change:+.1%})"
        if rmse <= limit:
            passes.append(comparison)
        else:
            failures.append(f"worse than the champion: {comparison}")
    if failures:
        return Verdict(False, "; ".join(failures))
    return Verdict(True, "; ".join(passes))
