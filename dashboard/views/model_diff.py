"""Compare models: any two versions on the same holdout rows - metrics overall and by segment, how
each property's value moved, what each model relies on, and the data change before it.

The pipeline's stored diff when there is one for the pair (every candidate against the champion it
was judged against); any other pair is computed on demand. The pair can come in the URL
(`?new=7&old=6`), as the Model history page links to it.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from dashboard import diffs, ui
from dashboard.history import HistoryError

st.title("Compare models")
models = ui.models_or_none()
if models is None:
    st.stop()
versions = [int(v) for v in models["model_version"]]
if len(versions) < 2:
    st.info(f"Only v{versions[0]} has been trained: there is nothing to compare it with yet.")
    st.stop()


def _asked(name: str) -> int | None:
    try:
        value = int(st.query_params.get(name, ""))
    except ValueError:
        return None
    return value if value in versions else None


judged = models[models["champion_version"].notna()]
if not judged.empty:  # the newest candidate and the champion it was judged against
    default_new, default_old = int(judged["model_version"].iloc[-1]), int(judged["champion_version"].iloc[-1])
else:
    default_new, default_old = versions[-1], versions[-2]
default_new, default_old = _asked("new") or default_new, _asked("old") or default_old
if default_old not in versions:
    default_old = next(v for v in reversed(versions) if v != default_new)

left, right = st.columns(2)
verdicts = dict(zip(versions, models["verdict"], strict=True))
new = left.selectbox(
    "Model", versions, index=versions.index(default_new), format_func=lambda v: f"v{v} ({verdicts[v]})", key="diff_new"
)
old = right.selectbox(
    "Against", versions, index=versions.index(default_old), format_func=lambda v: f"v{v} ({verdicts[v]})",
    key="diff_old",
)  # fmt: skip
st.query_params.update({"new": str(new), "old": str(old)})
if new == old:
    st.info("Pick two different versions.")
    st.stop()

cfg = ui.config()
try:
    diff = diffs.stored(cfg.settings.database_url, cfg.settings.model_name, new, old)
    if diff is None:
        with st.spinner(f"Scoring v{new} and v{old} on the same holdout rows..."):
            diff = diffs.compute(models, new, old)
except Exception as error:  # every failure becomes a message (diffs.show_problem says which kind)
    diffs.show_problem(error, new, old)
    st.stop()

row = models[models["model_version"] == new].iloc[0]
if not pd.isna(row.get("champion_version")) and int(row["champion_version"]) == old:
    st.caption(f"v{new} was judged against v{old}: **{row['verdict']}** - {row['reason'] or 'no reason recorded'}")
try:
    diffs.show(diff, key="diff")
except HistoryError as error:
    ui.show_problem(error)
