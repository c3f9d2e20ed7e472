"""The viewer: which model answers, why it predicts what it does, and why the model changed.

    streamlit run dashboard/app.py        (or: make dashboard)

Pages live in dashboard/views/; the sidebar shows serving's status on every page. Prices and
explanations come from serving over HTTP (MLOPS_SERVING_URL); model and drift history are read
read-only from the warehouse (MLOPS_DATABASE_URL).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import streamlit as st

from dashboard import ui
from dashboard.client import ServingError

logger = logging.getLogger("dashboard")

PAGES = [
    st.Page("views/predict.py", url_path="predict", title="Predict", icon=":material/sell:"),
    st.Page("views/explain.py", url_path="explain", title="Explain", icon=":material/waterfall_chart:"),
    st.Page("views/compare.py", url_path="compare", title="Compare locations", icon=":material/map:"),
    st.Page("views/models.py", url_path="models", title="Model history", icon=":material/history:"),
    st.Page("views/model_diff.py", url_path="model_diff", title="Compare models", icon=":material/compare_arrows:"),
    st.Page("views/drift.py", url_path="drift", title="Drift", icon=":material/ssid_chart:"),
    st.Page("views/live_quality.py", url_path="live_quality", title="Live quality", icon=":material/fact_check:"),
    st.Page("views/monitoring.py", url_path="monitoring", title="Monitoring", icon=":material/monitoring:"),
    st.Page("views/trace.py", url_path="trace", title="Trace a prediction", icon=":material/account_tree:"),
]
# Each page at /<url_path>: a link to /predict opens Predict. None of them is Streamlit's default page: that one
# is served at / only, and its own path answers "Page not found" (so HOME, at /, sends a visitor on to /predict).
# (Comments, not a string: Streamlit's magic would draw a bare string on every page.)


def home() -> None:
    """The root URL: Predict, at its own address (the query string kept)."""
    st.switch_page(PAGES[0], query_params=st.query_params.to_dict())


HOME = st.Page(home, title="Predict", url_path="home", default=True, visibility="hidden")


def sidebar() -> None:
    """Serving's status and model, and the admin's reload."""
    client = ui.client()
    st.sidebar.markdown("### Serving")
    try:
        health = client.health()
    except ServingError as error:
        st.sidebar.error(str(error))
        return
    version = health.get("model_version")
    no_champion = health.get("no_champion")
    if no_champion:
        st.sidebar.warning(no_champion["message"])
    elif health.get("status") == "healthy":
        st.sidebar.success(f"healthy: {health.get('model_name')} **v{version}** ({health.get('model_alias')})")
    else:
        problems = "; ".join(health.get("problems") or []) or health.get("status", "unknown")
        st.sidebar.warning(f"{health.get('status')}: {problems}")
    st.sidebar.caption(f"{client.base_url} · model {'v' + str(version) if version else 'none loaded'}")
    with st.sidebar.expander("Reload the model"):
        st.caption("Serving follows the alias by itself; reload makes it switch now.")
        token = st.text_input("Admin token", type="password", key="admin_token")
        if st.button("Reload", key="reload", disabled=not token):
            try:
                answer = client.reload(token)
            except ServingError as error:
                st.error(str(error))
            else:
                old, new = answer.get("old_version"), answer.get("new_version")
                st.success(f"serving v{new}" + (f" (was v{old})" if old != new else " (unchanged)"))
                ui.known_states.clear()


def guarded(part: Callable[[], object], name: str) -> None:
    """Last resort: an unexpected failure becomes a message on the page and a traceback in the log only."""
    try:
        part()
    except Exception:  # st.stop() and reruns are BaseExceptions and pass through
        logger.exception("dashboard: %s failed", name)
        st.error(f"{name} failed unexpectedly; the details are in the dashboard's log.")


st.set_page_config(page_title="House prices · MLOps", page_icon=":material/house:", layout="wide")
navigation = st.navigation([HOME, *PAGES])
if navigation is HOME:
    navigation.run()  # on to /predict before anything is drawn
guarded(sidebar, "The sidebar")
guarded(navigation.run, f"The {navigation.title} page")
