"""The dashboard's charts (Altair): built from frames the pages already hold, nothing recomputed.

Colours carry one meaning everywhere: green raises the price or was promoted, red lowers it or
was rejected, grey is a reference (base price, skipped batch), blue a total or the champion.
"""

from __future__ import annotations

import altair as alt
import pandas as pd

UP, DOWN, NEUTRAL, TOTAL = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"
ROW = 28
"""Pixels per bar of a horizontal bar chart: every label shows (Vega drops 'overlapping' ones otherwise)."""
VERDICT_COLOURS = alt.Scale(
    domain=["promoted", "rejected", "pending", "rolled_back"], range=[UP, DOWN, NEUTRAL, "#7b3294"]
)


def waterfall_steps(base_price: float, price: float, contributions: pd.DataFrame) -> pd.DataFrame:
    """Bars from the base price through each contribution (largest first) to the price.

    `contributions` has feature, value, contribution (US dollars, as serving sent them).
    """
    ordered = contributions.reindex(contributions["contribution"].abs().sort_values(ascending=False).index)
    steps = [{"step": "base price", "start": 0.0, "end": base_price, "amount": base_price, "kind": "base"}]
    level = base_price
    for row in ordered.itertuples():
        steps.append(
            {
                "step": f"{row.feature} = {_short(row.value)}",
                "start": level,
                "end": level + row.contribution,
                "amount": row.contribution,
                "kind": "raises" if row.contribution >= 0 else "lowers",
            }
        )
        level += row.contribution
    steps.append({"step": "price", "start": 0.0, "end": price, "amount": price, "kind": "price"})
    frame = pd.DataFrame(steps)
    frame["order"] = range(len(frame))
    steps_only = frame["kind"].isin(["raises", "lowers"])
    frame["label"] = [_signed(a) if step else _dollars(a) for a, step in zip(frame["amount"], steps_only, strict=True)]
    return frame


def waterfall(steps: pd.DataFrame) -> alt.Chart:
    colours = alt.Scale(domain=["base", "raises", "lowers", "price"], range=[NEUTRAL, UP, DOWN, TOTAL])
    order = alt.EncodingSortField(field="order", order="ascending")
    base = alt.Chart(steps).encode(y=alt.Y("step:N", sort=order, title=None, axis=_labels(260)))
    bars = base.mark_bar().encode(
        x=alt.X("start:Q", title="US dollars", axis=alt.Axis(format="$,.0f")),
        x2="end:Q",
        color=alt.Color("kind:N", scale=colours, legend=alt.Legend(title=None, orient="bottom")),
        tooltip=["step", alt.Tooltip("amount:Q", format="$,.0f", title="dollars")],
    )
    labels = (
        base.transform_calculate(right="max(datum.start, datum.end)")
        .mark_text(align="left", dx=4)
        .encode(x="right:Q", text="label:N")
    )
    return (bars + labels).properties(height=alt.Step(ROW))


def state_prices(frame: pd.DataFrame) -> alt.Chart:
    """frame: state, price (one property priced in each state)."""
    return (
        alt.Chart(frame)
        .mark_bar(color=TOTAL)
        .encode(
            x=alt.X("price:Q", title="predicted price", axis=alt.Axis(format="$,.0f")),
            y=alt.Y("state:N", sort="-x", title=None, axis=_labels()),
            tooltip=["state", alt.Tooltip("price:Q", format="$,.0f"), alt.Tooltip("per_sqft:Q", format="$,.0f")],
        )
        .properties(height=alt.Step(ROW))
    )


def metric_trend(models: pd.DataFrame, metrics: list[str], title: str, axis_format: str) -> alt.Chart:
    """One line per metric across versions; each point coloured by its verdict."""
    long = models.melt(id_vars=["model_version", "verdict"], value_vars=metrics, var_name="metric")
    base = alt.Chart(long.dropna(subset=["value"])).encode(
        x=alt.X("model_version:O", title="model version"),
        y=alt.Y("value:Q", title=title, axis=alt.Axis(format=axis_format), scale=alt.Scale(zero=False)),
    )
    lines = base.mark_line(color=NEUTRAL).encode(detail="metric:N", strokeDash="metric:N")
    points = base.mark_point(filled=True, size=90).encode(
        color=alt.Color("verdict:N", scale=VERDICT_COLOURS),
        shape="metric:N",
        tooltip=["model_version", "metric", alt.Tooltip("value:Q", format=",.3f"), "verdict"],
    )
    return (lines + points).properties(height=260)


def importance_comparison(frame: pd.DataFrame) -> alt.Chart:
    """frame: feature, model (label), importance (mean |SHAP|, log-price units); the first model is drawn in blue."""
    models = list(dict.fromkeys(frame["model"]))
    return (
        alt.Chart(frame)
        .mark_bar()
        .encode(
            y=alt.Y(
                "feature:N",
                sort=alt.EncodingSortField("importance", op="max", order="descending"),
                title=None,
                axis=_labels(),
            ),
            x=alt.X("importance:Q", title="mean |SHAP| (log-price units)"),
            yOffset=alt.YOffset("model:N", sort=models),
            color=alt.Color(
                "model:N", scale=alt.Scale(domain=models, range=[TOTAL, NEUTRAL]), legend=alt.Legend(title=None)
            ),
            tooltip=["feature", "model", alt.Tooltip("importance:Q", format=".4f")],
        )
        .properties(height=alt.Step(ROW // 2))
    )


def drift_timeline(reports: pd.DataFrame) -> alt.Chart:
    """reports: batch_id, share_drifted (0 for a baseline), outcome ('trained'/'skipped'), decision, why.

    A point and a label on every bar, so a batch where nothing drifted (a 0% bar) still shows its decision.
    """
    colours = alt.Scale(domain=["trained", "skipped"], range=[TOTAL, NEUTRAL])
    base = alt.Chart(reports).encode(
        x=alt.X("batch_id:O", title="batch", axis=alt.Axis(labelAngle=0)),
        y=alt.Y("share_drifted:Q", title="share of columns drifted", axis=alt.Axis(format="%"),
                scale=alt.Scale(domain=[0, 1])),
        color=alt.Color("outcome:N", scale=colours, legend=alt.Legend(title="decision")),
        tooltip=["batch_id", "decision", alt.Tooltip("share_drifted:Q", format=".0%"), "why"],
    )  # fmt: skip
    bars = base.mark_bar(size=36)
    points = base.mark_point(filled=True, size=110)
    labels = base.mark_text(dy=-14).encode(text="outcome:N")
    return (bars + points + labels).properties(height=260)


def column_scores(scores: pd.DataFrame) -> alt.Chart:
    """scores: column, score, threshold, method, drifted; a tick marks each column's threshold."""
    by_score = list(scores.sort_values("score", ascending=False)["column"])  # explicit: layers keep it
    base = alt.Chart(scores).encode(y=alt.Y("column:N", sort=by_score, title=None, axis=_labels()))
    bars = base.mark_bar().encode(
        x=alt.X("score:Q", title="drift score (drifted at or past the tick)"),
        color=alt.Color("drifted:N", scale=alt.Scale(domain=[True, False], range=[DOWN, NEUTRAL])),
        tooltip=["column", "method", alt.Tooltip("score:Q", format=".3f"), "threshold", "drifted"],
    )
    ticks = base.mark_tick(color="black", thickness=2, size=ROW - 6).encode(x="threshold:Q")
    return (bars + ticks).properties(height=alt.Step(ROW))


def latency(predictions: pd.DataFrame) -> alt.Chart:
    """predictions: created_at, latency_ms, endpoint (as /predictions/history returns them)."""
    return (
        alt.Chart(predictions)
        .mark_circle(size=50)
        .encode(
            x=alt.X("created_at:T", title="time"),
            y=alt.Y("latency_ms:Q", title="latency (ms)"),
            color=alt.Color("endpoint:N", legend=alt.Legend(title=None)),
            tooltip=["created_at:T", "endpoint", "model_version", alt.Tooltip("latency_ms:Q", format=".1f")],
        )
        .properties(height=220)
    )


def _dollars(amount: float) -> str:
    return f"${amount:,.0f}"


def _signed(amount: float) -> str:
    return f"+${amount:,.0f}" if amount >= 0 else f"-${-amount:,.0f}"


def _short(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def _labels(limit: int = 200) -> alt.Axis:
    return alt.Axis(labelOverlap=False, labelLimit=limit)
