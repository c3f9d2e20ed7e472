"""The drift rule: Evidently per-column drift with effect-size statistics, and the words for it.

Why effect sizes: on batches of 10^4-10^5 rows, a test's p-value falls below 0.05 for differences
no model cares about. The rule instead measures how far each distribution moved:

- numeric columns (price, bed, bath, house_size, acre_lot): Wasserstein distance normed by the
  reference's standard deviation - "the mean shift in reference standard deviations";
  drifted when >= 0.1 (two samples of one distribution score ~0.01-0.03 here);
- categorical columns (state, status): Jensen-Shannon distance of the category shares;
  drifted when >= 0.1. Categories under 1% of the reference are pooled as "(other)" first: with
  ~50 states, rare ones add sampling noise (same-distribution batches of a few thousand rows
  score ~0.1 unpooled, ~0.02-0.06 pooled), while a real move still shows in the pooled shares.

A batch is drifted when at least `min_drifted_columns` columns (default 1) drifted. Methods and
thresholds are configurable (`DriftRule`, the `drift_rule` resource).

Importance-weighted: given the champion's reliance on each column (the share of its mean |SHAP|
carried by the features derived from the column, `core.features.column_reliance`), the columns are
ranked by severity (score / threshold) x reliance, and the why leads with the drifted columns the
model relies on. `require_importance` (off by default) counts a drifted column only when it carries
at least `min_importance_share` of the importance; the report always says what that would decide.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field

import pandas as pd

from mlops_assets.core.data_changes import describe_changes
from mlops_assets.core.schema import MONITORED_CATEGORICAL, MONITORED_NUMERIC

#: The monitored columns (core.schema): numbers compared by a distance, categories by their shares.
NUMERIC = list(MONITORED_NUMERIC)
CATEGORICAL = list(MONITORED_CATEGORICAL)
OTHER = "(other)"


@dataclass(frozen=True)
class DriftRule:
    numeric_method: str = "wasserstein"
    numeric_threshold: float = 0.1
    categorical_method: str = "jensenshannon"
    categorical_threshold: float = 0.1
    min_drifted_columns: int = 1
    min_category_share: float = 0.01
    """Categories rarer than this in the reference are pooled as "(other)"."""
    sample_rows: int = 50_000
    """Each side is sampled down to this many rows (seeded): enough for the statistics, bounded time."""
    require_importance: bool = False
    """When True, a drifted column counts only if the champion relies on it (`min_importance_share`)."""
    min_importance_share: float = 0.05
    """The share of the champion's importance (mean |SHAP|) the features derived from a drifted column
    must carry for it to count under `require_importance`; reported either way."""


@dataclass(frozen=True)
class RankedColumn:
    """A monitored column weighted by how much the champion relies on it."""

    column: str
    score: float
    threshold: float
    drifted: bool
    severity: float
    """score / threshold (threshold / score for p-value methods): >= 1 is past the threshold."""
    reliance: float
    """The share of the champion's mean |SHAP| carried by features derived from this column."""
    weighted: float
    """severity x reliance: the ranking key."""


@dataclass(frozen=True)
class ColumnDrift:
    score: float
    threshold: float
    method: str
    drifted: bool


@dataclass
class DriftResult:
    columns: dict[str, ColumnDrift]
    changes: dict[str, str]
    html: str = field(repr=False)

    @property
    def drifted_columns(self) -> list[str]:
        return [name for name, c in self.columns.items() if c.drifted]

    @property
    def share_drifted(self) -> float:
        return len(self.drifted_columns) / len(self.columns) if self.columns else 0.0

    def detected(self, rule: DriftRule, reliance: Mapping[str, float] | None = None) -> bool:
        """The rule's decision; with `require_importance` (and a champion's reliance to apply it) only
        drifted columns the champion relies on count."""
        if rule.require_importance and reliance is not None:
            return self.importance_detected(rule, reliance)
        return len(self.drifted_columns) >= rule.min_drifted_columns

    def decide(self, rule: DriftRule, reliance: Mapping[str, float] | None = None) -> tuple[bool, str]:
        """(drifted, why) under the rule; the why says so first when the importance option changed the decision."""
        detected = self.detected(rule, reliance)
        why = self.why(reliance)
        if detected != self.detected(rule):
            why = f"no drifted column carries >= {rule.min_importance_share:.0%} of the champion's importance: {why}"
        return detected, why

    def relied_on(self, rule: DriftRule, reliance: Mapping[str, float]) -> list[str]:
        """The drifted columns carrying at least `min_importance_share` of the champion's importance."""
        return [c for c in self.drifted_columns if reliance.get(c, 0.0) >= rule.min_importance_share]

    def importance_detected(self, rule: DriftRule, reliance: Mapping[str, float]) -> bool:
        """What `require_importance` decides, whether or not it is applied."""
        return len(self.relied_on(rule, reliance)) >= rule.min_drifted_columns

    def ranking(self, reliance: Mapping[str, float]) -> list[RankedColumn]:
        """Every monitored column, by drift severity x the champion's reliance on it (largest first)."""
        ranked = []
        for name, c in self.columns.items():
            severity = _severity(c)
            share = float(reliance.get(name, 0.0))
            ranked.append(RankedColumn(name, c.score, c.threshold, c.drifted, severity, share, severity * share))
        return sorted(ranked, key=lambda r: (-r.weighted, -r.severity, r.column))

    def why(self, reliance: Mapping[str, float] | None = None) -> str:
        """Markdown: what moved past its threshold, or that nothing did (and what came closest).

        With the champion's `reliance`, the drifted columns it relies on most come first, each with
        its share of the champion's importance."""
        if self.drifted_columns:
            if reliance is None:
                return "; ".join(self.changes[c] for c in self.drifted_columns)
            ordered = [r.column for r in self.ranking(reliance) if r.drifted]
            return "; ".join(f"{self.changes[c]} ({_reliance_text(reliance.get(c, 0.0))})" for c in ordered)
        closest = max(self.columns, key=lambda c: self.columns[c].score / self.columns[c].threshold)
        c = self.columns[closest]
        return f"no column moved past its threshold (closest: {closest} {c.score:.3f} of {c.threshold})"

    def scores(self) -> dict[str, dict]:
        return {name: asdict(c) for name, c in self.columns.items()}


def _severity(column: ColumnDrift) -> float:
    """How far a column moved relative to its threshold (>= 1: drifted), for either kind of method.

    Evidently's verdict says which way the method reads: a distance drifts above its threshold, a
    p-value below it; the ratio is oriented so that the drifted side is >= 1."""
    ratio = column.score / column.threshold if column.threshold > 0 else 0.0
    if (ratio >= 1) == column.drifted:
        return ratio
    return min(column.threshold / max(column.score, 1e-12), 1e6)


def _reliance_text(share: float) -> str:
    return f"the model's reliance: {share:.0%}" if share > 0 else "not a model input"


def _sample(frame: pd.DataFrame, rows: int) -> pd.DataFrame:
    return frame.sample(n=rows, random_state=0) if len(frame) > rows else frame


def _pool_rare(reference: pd.Series, current: pd.Series, min_share: float) -> tuple[pd.Series, pd.Series]:
    shares = reference.value_counts(normalize=True)
    kept = set(shares[shares >= min_share].index)
    return (
        reference.where(reference.isin(kept) | reference.isna(), OTHER),
        current.where(current.isin(kept) | current.isna(), OTHER),
    )


def _drifted(status: str | None, column: str) -> bool:
    """Evidently's drift test status -> drifted: FAIL means the column drifted, SUCCESS that it did not."""
    if status not in ("FAIL", "SUCCESS"):
        raise RuntimeError(f"Evidently gave no drift verdict for column {column} (test status {status!r})")
    return status == "FAIL"


def compare(reference: pd.DataFrame, current: pd.DataFrame, rule: DriftRule = DriftRule()) -> DriftResult:
    """Score every monitored column of `current` against `reference` (both clean listings)."""
    from evidently import DataDefinition, Dataset, Report  # slow import (~10 s): only when used
    from evidently.metrics import ValueDrift

    reference = _sample(reference, rule.sample_rows)
    current = _sample(current, rule.sample_rows)
    # Evidently refuses a column that is empty on either side; such a column cannot be judged.
    numeric = [c for c in NUMERIC if reference[c].notna().any() and current[c].notna().any()]
    categorical = [c for c in CATEGORICAL if reference[c].notna().any() and current[c].notna().any()]
    methods = {c: (rule.numeric_method, rule.numeric_threshold) for c in numeric}
    methods |= {c: (rule.categorical_method, rule.categorical_threshold) for c in categorical}
    scored_reference, scored_current = reference[numeric + categorical].copy(), current[numeric + categorical].copy()
    for column in categorical:
        scored_reference[column], scored_current[column] = _pool_rare(
            reference[column], current[column], rule.min_category_share
        )
    definition = DataDefinition(numerical_columns=numeric, categorical_columns=categorical)
    # include_tests: each ValueDrift gets Evidently's own drift test, whose status is the column's verdict
    report = Report([ValueDrift(column=c, method=m, threshold=t) for c, (m, t) in methods.items()], include_tests=True)
    snapshot = report.run(
        Dataset.from_pandas(scored_current, data_definition=definition),
        Dataset.from_pandas(scored_reference, data_definition=definition),
    )
    result = snapshot.dict()
    verdicts = {test["metric_config"]["metric_id"]: test["status"] for test in result["tests"]}
    columns: dict[str, ColumnDrift] = {}
    for metric in result["metrics"]:
        config = metric["config"]
        columns[config["column"]] = ColumnDrift(
            score=float(metric["value"]),
            threshold=float(config["threshold"]),
            method=config["method"],
            drifted=_drifted(verdicts.get(metric["id"]), config["column"]),
        )
    phrases = describe_changes(reference, current, numeric, categorical)
    return DriftResult(
        columns=columns,
        changes=dict(zip(numeric + categorical, phrases, strict=True)),
        html=snapshot.get_html_str(as_iframe=False),
    )
