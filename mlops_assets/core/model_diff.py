"""What changed between two models, on the same holdout rows: the model diff.

`model_diff` takes the holdout rows (clean listings with their true price), each model's price
predictions for those rows, each model's mean |SHAP| per feature (on those rows) and, optionally,
the drift report that preceded the newer model. It returns a JSON-ready dict:

- `overall`: every metric of `core.metrics` for both models, their difference and relative change;
- `segments`: the same by state, by price band (quantiles of the true price) and by size band
  (quantiles of house_size), with the share of each segment's properties that moved more than 10%;
- `value_changes`: the distribution of (new - old) / old per property, the share moving more than
  5%, 10% and 20%, where they are, and the largest movers with their inputs;
- `importance`: mean |SHAP| per feature before and after, and the features that changed most;
- `drift`: the data change that preceded it (per-column scores, the why), as the report said it;
- `headline`: "v7 vs v6: RMSE(log) -3.1%; 12% of properties moved more than 10%, mostly in Texas".

`to_markdown` and `summary_markdown` turn it into readable text (dollars, percent). Pure:
pandas and numpy only, metrics from `core.metrics`, their units from `core.promotion`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from mlops_assets.core.metrics import METRIC_NAMES, regression_metrics
from mlops_assets.core.promotion import fmt, label

#: The value-change thresholds: the share of properties whose price moved more than each.
MOVE_THRESHOLDS = (0.05, 0.10, 0.20)
#: The threshold the headline and the per-segment "moved" share use.
HEADLINE_MOVE = 0.10
#: The inputs shown with each large mover (those the holdout rows carry).
MOVER_INPUTS = ("listing_id", "state", "city", "zip_code", "status", "bed", "bath", "house_size", "acre_lot")
#: Edges of the value-change histogram (fractions).
HISTOGRAM_EDGES = (-0.5, -0.2, -0.1, -0.05, 0.0, 0.05, 0.1, 0.2, 0.5)
SEGMENTS = {"state": "state", "price_band": "price band", "size_band": "size band"}
HIGHER_IS_BETTER = ("r2", "r2_log")


def model_diff(
    holdout: pd.DataFrame,
    new_price: Sequence[float] | np.ndarray,
    old_price: Sequence[float] | np.ndarray,
    new_importance: Mapping[str, float] | None = None,
    old_importance: Mapping[str, float] | None = None,
    drift: Mapping | None = None,
    *,
    new_version: str | int = "new",
    old_version: str | int = "old",
    metric: str = "rmse_log",
    bands: int = 4,
    movers: int = 10,
) -> dict:
    """The diff of the model predicting `new_price` against the one predicting `old_price` on `holdout`.

    `holdout` needs `price` (true, dollars), `state` and `house_size`; the inputs in MOVER_INPUTS it
    carries are shown with the largest movers. `metric` (one of core.metrics) leads the headline.
    """
    if metric not in METRIC_NAMES:
        raise ValueError(f"metric must be one of {', '.join(METRIC_NAMES)}, got {metric!r}")
    rows = holdout.reset_index(drop=True)
    new = np.asarray(new_price, dtype="float64")
    old = np.asarray(old_price, dtype="float64")
    if not len(rows) == len(new) == len(old):
        raise ValueError(f"{len(rows)} holdout rows but {len(new)} new and {len(old)} old predictions")
    if rows.empty:
        raise ValueError("no holdout rows to compare the models on")
    truth = rows["price"].to_numpy(dtype="float64")
    with np.errstate(divide="ignore", invalid="ignore"):
        change = np.where(old > 0, (new - old) / old, np.nan)
    segments = {
        "state": rows["state"].fillna("(unknown)").astype(str).to_numpy(),
        "price_band": _bands(rows["price"], bands, _money_short),
        "size_band": _bands(rows["house_size"], bands, lambda v: f"{v:,.0f}", " sq ft"),
    }
    overall = _compare(truth, new, old)
    value_changes = _value_changes(rows, truth, new, old, change, segments["state"], movers)
    diff = {
        "new_version": str(new_version),
        "old_version": str(old_version),
        "metric": metric,
        "rows": len(rows),
        "overall": overall,
        "segments": {
            name: _segment_table(labels, truth, new, old, change, ordered=name != "state")
            for name, labels in segments.items()
        },
        "value_changes": value_changes,
        "importance": _importance(new_importance, old_importance),
        "drift": _drift(drift),
    }
    diff["headline"] = headline(diff)
    return dict(_jsonable(diff))  # type: ignore[call-overload]  # a Mapping in, a dict out


def headline(diff: Mapping) -> str:
    """'v7 vs v6: RMSE(log) -3.1%; 12% of properties moved more than 10%, mostly in Texas'."""
    m = diff["metric"]
    relative = diff["overall"]["relative"].get(m)
    metric_part = f"{label(m)} {relative:+.1%}" if relative is not None else f"{label(m)} not comparable"
    moved = diff["value_changes"]["share_moved"][_key(HEADLINE_MOVE)]
    if not moved:
        move_part = f"no property moved more than {HEADLINE_MOVE:.0%}"
    else:
        where = diff["value_changes"]["moved_by_state"]
        top = f", mostly in {where[0]['state']}" if where else ""
        move_part = f"{_share(moved)} of properties moved more than {HEADLINE_MOVE:.0%}{top}"
    return f"v{diff['new_version']} vs v{diff['old_version']}: {metric_part}; {move_part}"


def _key(threshold: float) -> str:
    """A threshold as a JSON key: 0.1 -> '10%'."""
    return f"{threshold:.0%}"


def _share(value: float) -> str:
    return f"{value:.1%}" if 0 < value < 0.01 else f"{value:.0%}"


def _money_short(value: float) -> str:
    if abs(value) >= 1e6:
        return f"${value / 1e6:,.1f}M"
    if abs(value) >= 1e3:
        return f"${value / 1e3:,.0f}k"
    return f"${value:,.0f}"


def _bands(values: pd.Series, bands: int, text, unit: str = "") -> np.ndarray:
    """Each row's quantile band ("Q1 $50k-$180k"); rows without a value are "(unknown)"."""
    numbers = values.to_numpy(dtype="float64")
    known = ~np.isnan(numbers)
    labels = np.full(len(numbers), "(unknown)", dtype=object)
    if not known.any():
        return labels
    edges = np.unique(np.quantile(numbers[known], np.linspace(0, 1, bands + 1)))
    if len(edges) == 1:
        labels[known] = f"Q1 {text(edges[0])}{unit}"
        return labels
    index = np.clip(np.searchsorted(edges, numbers[known], side="right") - 1, 0, len(edges) - 2)
    names = [f"Q{i + 1} {text(edges[i])}-{text(edges[i + 1])}{unit}" for i in range(len(edges) - 1)]
    labels[known] = np.array(names, dtype=object)[index]
    return labels


def _compare(truth: np.ndarray, new: np.ndarray, old: np.ndarray) -> dict:
    """Both models' metrics (core.metrics), the difference and the relative change per metric."""
    after, before = regression_metrics(truth, new), regression_metrics(truth, old)
    return {
        "new": after,
        "old": before,
        "change": {m: after[m] - before[m] for m in METRIC_NAMES},
        "relative": {m: (after[m] / before[m] - 1) if before[m] not in (0, None) else None for m in METRIC_NAMES},
    }


def _segment_table(
    labels: np.ndarray, truth: np.ndarray, new: np.ndarray, old: np.ndarray, change: np.ndarray, ordered: bool
) -> list[dict]:
    """One entry per segment: rows, both models' metrics, and how much of it moved."""
    table = []
    for segment in sorted(set(labels)):
        inside = labels == segment
        compared = _compare(truth[inside], new[inside], old[inside])
        moved = np.abs(change[inside])
        table.append(
            {
                "segment": segment,
                "rows": int(inside.sum()),
                **compared,
                "median_value_change": float(np.nanmedian(change[inside])) if np.isfinite(moved).any() else None,
                "share_moved": float(np.mean(moved > HEADLINE_MOVE)),
            }
        )
    if not ordered:  # states: the largest first
        table.sort(key=lambda entry: (-entry["rows"], entry["segment"]))
    return table


def _value_changes(
    rows: pd.DataFrame,
    truth: np.ndarray,
    new: np.ndarray,
    old: np.ndarray,
    change: np.ndarray,
    states: np.ndarray,
    movers: int,
) -> dict:
    valid = np.isfinite(change)
    moved = np.abs(np.where(valid, change, 0.0))
    quantiles = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
    values = change[valid]
    counts = np.histogram(values, bins=[-np.inf, *HISTOGRAM_EDGES, np.inf])[0] if len(values) else np.array([], int)
    histogram = [
        {"bin": _bin_label(i), "count": int(count), "share": float(count / len(values))}
        for i, count in enumerate(counts)
    ]
    big = moved > HEADLINE_MOVE
    state_rows = pd.Series(states).value_counts()
    by_state = sorted(pd.Series(states[big]).value_counts().items(), key=lambda item: (-item[1], item[0]))
    order = np.argsort(-moved, kind="stable")[:movers]
    shown = [c for c in MOVER_INPUTS if c in rows.columns]
    return {
        "rows": int(valid.sum()),
        "mean": float(values.mean()) if len(values) else None,
        "median": float(np.median(values)) if len(values) else None,
        "quantiles": {f"p{round(q * 100):02d}": float(np.quantile(values, q)) for q in quantiles if len(values)},
        "share_up": float(np.mean(values > 0)) if len(values) else None,
        "share_down": float(np.mean(values < 0)) if len(values) else None,
        "share_moved": {_key(t): float(np.mean(moved > t)) for t in MOVE_THRESHOLDS},
        "histogram": histogram,
        "moved_by_state": [
            {
                "state": str(state),
                "count": int(count),
                "share_of_moved": float(count / big.sum()),
                "share_of_state": float(count / state_rows[state]),
            }
            for state, count in by_state
        ],
        "largest_movers": [
            {
                **{c: _value(rows.at[i, c]) for c in shown},
                "price": float(truth[i]),
                "old_prediction": float(old[i]),
                "new_prediction": float(new[i]),
                "change": float(change[i]) if valid[i] else None,
            }
            for i in order
            if valid[i]
        ],
    }


def _bin_label(index: int) -> str:
    edges = HISTOGRAM_EDGES
    if index == 0:
        return f"< {edges[0]:+.0%}"
    if index == len(edges):
        return f">= {edges[-1]:+.0%}"
    return f"{edges[index - 1]:+.0%} to {edges[index]:+.0%}"


def _value(value: object) -> object:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


def _importance(new: Mapping[str, float] | None, old: Mapping[str, float] | None, top: int = 5) -> dict:
    if not new or not old:
        missing = [name for name, value in (("new", new), ("old", old)) if not value]
        return {"features": [], "most_changed": [], "note": f"no mean |SHAP| for the {' and '.join(missing)} model"}
    names = sorted(set(new) | set(old), key=lambda f: (-max(new.get(f, 0.0), old.get(f, 0.0)), f))
    features: list[dict[str, Any]] = [
        {
            "feature": f,
            "old": float(old.get(f, 0.0)),
            "new": float(new.get(f, 0.0)),
            "change": float(new.get(f, 0.0) - old.get(f, 0.0)),
        }
        for f in names
    ]
    most = sorted(features, key=lambda e: (-abs(e["change"]), e["feature"]))[:top]
    return {"features": features, "most_changed": [e["feature"] for e in most], "units": "log1p(price)"}


def _drift(report: Mapping | None) -> dict | None:
    """The drift report's per-column scores and why, as the report recorded them."""
    if not report:
        return None
    scores: dict = _parsed(report.get("column_scores")) or {}
    drifted: list = _parsed(report.get("drifted_columns")) or []
    ranking = _parsed(report.get("importance_ranking"))
    return {
        "report_id": report.get("report_id"),
        "batch_id": report.get("batch_id"),
        "decision": report.get("decision"),
        "why": report.get("why"),
        "drifted_columns": list(drifted),
        "column_scores": {name: dict(values) for name, values in scores.items()},
        "importance_ranking": ranking,
    }


def _parsed(value: object) -> Any:
    return json.loads(value) if isinstance(value, str) else value


def _jsonable(value: object) -> object:
    """Plain JSON: no NaN or infinity (None instead), numpy scalars as Python numbers, 6 significant digits."""
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


# --- readable text -------------------------------------------------------------------------------


def _metric(name: str, value: float | None) -> str:
    return "-" if value is None else fmt(name, value)


def change_text(name: str, before: float | None, after: float | None) -> str:
    """A metric's change as a person reads it: '-$12,400 (-3.1%)', '-0.4 pts', '+0.012'."""
    if before is None or after is None:
        return "-"
    delta = after - before
    if name in ("mape", "median_ape"):
        return f"{delta * 100:+.1f} pts"
    relative = f" ({after / before - 1:+.1%})" if before else ""
    if name in ("rmse", "mae"):
        sign = "-" if delta < 0 else "+"
        return f"{sign}${abs(delta):,.0f}{relative}"
    if name in HIGHER_IS_BETTER:
        return f"{delta:+.3f}"
    return f"{delta:+.3f}{relative}"


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c).replace("|", "/") for c in row) + " |" for row in rows]
    return lines


def overall_rows(diff: Mapping) -> list[list[str]]:
    """metric, old, new, change: readable units."""
    o = diff["overall"]
    return [
        [label(m), _metric(m, o["old"].get(m)), _metric(m, o["new"].get(m)), change_text(m, o["old"][m], o["new"][m])]
        for m in METRIC_NAMES
    ]


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:+.1%}"


def summary_markdown(diff: Mapping, segments: int = 3, features: int = 3) -> str:
    """The headline, the overall metrics and the biggest changes: for Dagster's metadata."""
    new, old, m = diff["new_version"], diff["old_version"], diff["metric"]
    lines = [f"**{diff['headline']}** (on the same {diff['rows']:,} holdout rows)", ""]
    lines += _table(["metric", f"v{old}", f"v{new}", "change"], overall_rows(diff))
    vc = diff["value_changes"]
    moved = ", ".join(f"{_share(s)} more than {k}" for k, s in vc["share_moved"].items())
    lines += ["", f"Per-property value change (new - old) / old: median {_pct(vc['median'])}; moved {moved}."]
    states = sorted(diff["segments"]["state"], key=lambda e: -abs(e["change"][m] or 0))[:segments]
    if states:
        lines += ["", f"States whose {label(m)} changed most:", ""]
        lines += _table(
            ["state", "rows", f"v{old}", f"v{new}", f"moved > {HEADLINE_MOVE:.0%}"],
            [
                [e["segment"], f"{e['rows']:,}", _metric(m, e["old"][m]), _metric(m, e["new"][m]),
                 _share(e["share_moved"])]
                for e in states
            ],
        )  # fmt: skip
    importance = diff["importance"]
    if importance["most_changed"]:
        by_name = {e["feature"]: e for e in importance["features"]}
        parts = [
            f"{f} {by_name[f]['old']:.3f} -> {by_name[f]['new']:.3f}" for f in importance["most_changed"][:features]
        ]
        lines += ["", "Mean |SHAP| (log price) changed most: " + "; ".join(parts) + "."]
    if diff.get("drift"):
        d = diff["drift"]
        lines += ["", f"Data change before it (drift report `{d['report_id']}`): {d['why']}"]
    return "\n".join(lines)


def to_markdown(diff: Mapping) -> str:
    """The whole diff as a readable document (stored beside the JSON with the newer model's run)."""
    new, old, m = diff["new_version"], diff["old_version"], diff["metric"]
    lines = [f"# Model diff: v{new} vs v{old}", "", f"**{diff['headline']}**", ""]
    lines += [f"Both models on the same {diff['rows']:,} holdout rows (listings neither was trained on).", ""]
    lines += ["## Metrics", "", *_table(["metric", f"v{old}", f"v{new}", "change"], overall_rows(diff))]
    for name, title in SEGMENTS.items():
        lines += ["", f"## By {title}", ""]
        lines += _table(
            ["segment", "rows", f"{label(m)} v{old}", f"{label(m)} v{new}", "change", "median APE change",
             "median value change", f"moved > {HEADLINE_MOVE:.0%}"],
            [
                [e["segment"], f"{e['rows']:,}", _metric(m, e["old"][m]), _metric(m, e["new"][m]),
                 change_text(m, e["old"][m], e["new"][m]),
                 change_text("median_ape", e["old"]["median_ape"], e["new"]["median_ape"]),
                 _pct(e["median_value_change"]), _share(e["share_moved"])]
                for e in diff["segments"][name]
            ],
        )  # fmt: skip
    vc = diff["value_changes"]
    lines += ["", "## Value changes per property", ""]
    lines += [
        f"(new - old) / old over {vc['rows']:,} properties: mean {_pct(vc['mean'])}, median {_pct(vc['median'])}; "
        f"{_share(vc['share_up'] or 0)} up, {_share(vc['share_down'] or 0)} down.",
        "",
    ]
    lines += _table(["moved more than", "share"], [[k, _share(s)] for k, s in vc["share_moved"].items()])
    if vc["quantiles"]:
        lines += ["", *_table(["quantile", "change"], [[q, _pct(v)] for q, v in vc["quantiles"].items()])]
    if vc["moved_by_state"]:
        lines += ["", f"Where the properties that moved more than {HEADLINE_MOVE:.0%} are:", ""]
        lines += _table(
            ["state", "properties", "share of those moved", "share of the state"],
            [[e["state"], f"{e['count']:,}", _share(e["share_of_moved"]), _share(e["share_of_state"])]
             for e in vc["moved_by_state"]],
        )  # fmt: skip
    if vc["largest_movers"]:
        inputs = [c for c in MOVER_INPUTS if c in vc["largest_movers"][0]]
        lines += ["", "### Largest movers", ""]
        lines += _table(
            [*inputs, "price", f"v{old}", f"v{new}", "change"],
            [
                [*(input_text(c, e[c]) for c in inputs), _money(e["price"]), _money(e["old_prediction"]),
                 _money(e["new_prediction"]), _pct(e["change"])]
                for e in vc["largest_movers"]
            ],
        )  # fmt: skip
    importance = diff["importance"]
    lines += ["", "## What the models rely on (mean |SHAP|, log price)", ""]
    if importance["features"]:
        lines += _table(
            ["feature", f"v{old}", f"v{new}", "change"],
            [[e["feature"], f"{e['old']:.4f}", f"{e['new']:.4f}", f"{e['change']:+.4f}"]
             for e in importance["features"]],
        )  # fmt: skip
        lines += ["", "Changed most: " + ", ".join(importance["most_changed"]) + "."]
    else:
        lines += [importance.get("note", "not recorded")]
    lines += ["", "## The data change before it", ""]
    drift = diff.get("drift")
    if not drift:
        lines += ["No drift report was recorded for the newer model (a forced retrain, or no report)."]
    else:
        lines += [f"Drift report `{drift['report_id']}` (batch {drift['batch_id']}): {drift['decision']}.", ""]
        lines += [f"Why: {drift['why']}", ""]
        if drift["column_scores"]:
            lines += _table(
                ["column", "score", "threshold", "method", "drifted"],
                [[c, f"{s.get('score', 0):.3f}", f"{s.get('threshold', 0):g}", s.get("method", ""),
                  "yes" if s.get("drifted") else "no"] for c, s in drift["column_scores"].items()],
            )  # fmt: skip
    return "\n".join(lines) + "\n"


def input_text(column: str, value: object) -> str:
    """A listing input as a person reads it: 2,140 sq ft, 0.25 acres, 3 beds."""
    if value is None:
        return "-"
    if column == "house_size":
        return f"{value:,.0f}"
    if column == "acre_lot":
        return f"{value:.2f}"
    if column in ("bed", "bath"):
        return f"{value:g}"
    return str(value)


def _money(value: float | None) -> str:
    return "-" if value is None else f"${value:,.0f}"
