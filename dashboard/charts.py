"""The dashboard's charts (Altair): built from frames the pages already hold, nothing recomputed.

Colours carry one meaning everywhere: green raises the price or was promoted, red lowers it or
was rejected, grey is a reference (base price, skipped batch), blue a total or the champion.
"""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

UP, DOWN, NEUTRAL, TOTAL = "#2e7d32", "#c62828", "#9e9e9e", "#1565c0"
ROW = 28
"""Pixels per bar of a horizontal bar chart: every label shows (Vega drops 'overlapping' ones otherwise)."""
LABEL_WIDTH_MAX = 420
"""The widest a label column gets (a long city name is cut there, with an ellipsis; the tooltip has it whole)."""
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
    """The steps of `waterfall_steps`. The y axis is as wide as its longest label. Each dollar label sits where
    there is room (Vega cuts off whatever lies outside the chart): a step's beside its bar, on the side with more
    space; the base price's and the price's inside the bar's end when it is long, else after it."""
    colours = alt.Scale(domain=["base", "raises", "lowers", "price"], range=[NEUTRAL, UP, DOWN, TOTAL])
    frame = steps.assign(left=steps[["start", "end"]].min(axis=1), right=steps[["start", "end"]].max(axis=1))
    low, top = min(0.0, float(frame["left"].min())), float(frame["right"].max())
    total = frame["kind"].isin(["base", "price"])
    inside = total & (frame["right"] - low > (top - low) / 2)
    before = ~total & (frame["left"] - low > top - frame["right"])
    frame["place"] = np.select([inside, before], ["inside", "left"], "right")

    order = alt.EncodingSortField(field="order", order="ascending")
    base = alt.Chart(frame).encode(
        y=alt.Y("step:N", sort=order, title=None, axis=_labels(label_width(frame["step"]))), text="label:N"
    )
    scale = alt.Scale(domain=[low, top], nice=False)
    bars = base.mark_bar().encode(
        x=alt.X("start:Q", title="US dollars", axis=alt.Axis(format="$,.0f"), scale=scale),
        x2="end:Q",
        color=alt.Color("kind:N", scale=colours, legend=alt.Legend(title=None, orient="bottom")),
        tooltip=["step", alt.Tooltip("amount:Q", format="$,.0f", title="dollars")],
    )
    after = base.transform_filter(alt.datum.place == "right").mark_text(align="left", dx=4).encode(x="right:Q")
    ahead = base.transform_filter(alt.datum.place == "left").mark_text(align="right", dx=-4).encode(x="left:Q")
    within = (
        base.transform_filter(alt.datum.place == "inside")
        .mark_text(align="right", dx=-4, color="white", fontWeight="bold")
        .encode(x="right:Q")
    )
    return (bars + after + ahead + within).properties(height=alt.Step(ROW))


def state_prices(frame: pd.DataFrame) -> alt.Chart:
    """frame: state, price (one property priced in each state)."""
    return (
        alt.Chart(frame)
        .mark_bar(color=TOTAL)
        .encode(
            x=alt.X("price:Q", title="predicted price", axis=alt.Axis(format="$,.0f")),
            y=alt.Y("state:N", sort="-x", title=None, axis=_labels(label_width(frame["state"]))),
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


def champion_gain(gains: pd.DataFrame, versions: list[int]) -> alt.Chart:
    """gains: model_version, verdict, champion_version, metric (its label), change (a fraction: -0.03 is 3% below
    the champion it was judged against, on the same rows); NaN change: judged with no champion. One slot per
    version in `versions`, so the chart lines up with the trends beside it."""
    scale, axis = alt.Scale(domain=versions), alt.Axis(labelAngle=0)
    x = alt.X("model_version:O", title="model version", scale=scale, axis=axis)
    judged = gains.dropna(subset=["change"])
    bars = (
        alt.Chart(judged)
        .mark_bar()
        .encode(
            x=x,
            xOffset=alt.XOffset("metric:N"),
            y=alt.Y("change:Q", title="vs the champion (same rows)", axis=alt.Axis(format="+.0%")),
            color=alt.Color("verdict:N", scale=VERDICT_COLOURS),
            opacity=alt.Opacity("metric:N", scale=alt.Scale(range=[1.0, 0.5]), legend=alt.Legend(title=None)),
            tooltip=[
                "model_version",
                "metric",
                alt.Tooltip("change:Q", format="+.1%", title="vs champion"),
                "champion_version",
                "verdict",
            ],
        )
    )
    zero = alt.Chart(pd.DataFrame({"zero": [0.0]})).mark_rule(color="black").encode(y="zero:Q")
    alone = gains[gains["change"].isna()].drop_duplicates("model_version").assign(zero=0.0, note="no champion")
    centre = alt.X("model_version:O", title="model version", scale=scale, axis=axis, bandPosition=0.5)
    notes = alt.Chart(alone).mark_text(dy=-8, color=NEUTRAL).encode(x=centre, y="zero:Q", text="note:N")
    return (bars + zero + notes).properties(height=260)


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
                axis=_labels(label_width(frame["feature"])),
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
    axis = _labels(label_width(scores["column"]))
    base = alt.Chart(scores).encode(y=alt.Y("column:N", sort=by_score, title=None, axis=axis))
    bars = base.mark_bar().encode(
        x=alt.X("score:Q", title="drift score (drifted at or past the tick)"),
        color=alt.Color("drifted:N", scale=alt.Scale(domain=[True, False], range=[DOWN, NEUTRAL])),
        tooltip=["column", "method", alt.Tooltip("score:Q", format=".3f"), "threshold", "drifted"],
    )
    ticks = base.mark_tick(color="black", thickness=2, size=ROW - 6).encode(x="threshold:Q")
    return (bars + ticks).properties(height=alt.Step(ROW))


def latency(requests: pd.DataFrame) -> alt.Chart:
    """requests: created_at, latency_ms, endpoint, model_version, predictions; one row per request (a batch is one).

    A log-like (symlog) axis: a large batch's hundreds of milliseconds and a prediction's few share it.
    """
    return (
        alt.Chart(requests)
        .mark_circle(size=50)
        .encode(
            x=alt.X("created_at:T", title="time"),
            y=alt.Y("latency_ms:Q", title="latency per request (ms)", scale=alt.Scale(type="symlog")),
            color=alt.Color("endpoint:N", legend=alt.Legend(title=None)),
            tooltip=[
                "created_at:T",
                "endpoint",
                "model_version",
                alt.Tooltip("predictions:Q", title="rows"),
                alt.Tooltip("latency_ms:Q", format=".1f"),
            ],
        )
        .properties(height=220)
    )


def _dollars(amount: float) -> str:
    return f"${amount:,.0f}"


def _signed(amount: float) -> str:
    return f"+${amount:,.0f}" if amount >= 0 else f"-${-amount:,.0f}"


def _short(value: float) -> str:
    return f"{value:,.2f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


def label_width(labels: pd.Series | list[str]) -> int:
    """Pixels for the longest of `labels` on an axis (about 8 a character), at most LABEL_WIDTH_MAX."""
    longest = max((len(str(label)) for label in labels), default=0)
    return min(max(8 * longest + 16, 120), LABEL_WIDTH_MAX)


def _labels(limit: int) -> alt.Axis:
    return alt.Axis(labelOverlap=False, labelLimit=limit)
