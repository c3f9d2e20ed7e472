"""Streamlit pieces every page shares: config, the serving client, cached reads, the property form,
and one way to say that something is unavailable (a message, never a traceback)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import streamlit as st

from dashboard.client import ServingClient, ServingError
from dashboard.config import DashboardConfig
from dashboard.history import History, HistoryError, NoHistoryError
from mlops_assets.core.schema import STATUSES

DEFAULT_PROPERTY: dict[str, Any] = {
    "bed": 3.0, "bath": 2.0, "acre_lot": 0.25, "house_size": 1800.0, "state": "California", "status": "for_sale",
}  # fmt: skip
STATUS_LABELS = {"for_sale": "for sale", "ready_to_build": "ready to build", "sold": "sold"}


def config() -> DashboardConfig:
    return DashboardConfig.from_env()


def client() -> ServingClient:
    cfg = config()
    return ServingClient(cfg.serving_url, cfg.timeout_s, read_token=cfg.settings.read_token)


def money(amount: float | None) -> str:
    if amount is None or pd.isna(amount):
        return "-"
    return f"${amount:,.0f}" if amount >= 0 else f"-${-amount:,.0f}"


def show_problem(error: Exception) -> None:
    """The page's one way to say what is missing: down or failing is an error, not-yet is info."""
    if (isinstance(error, ServingError) and error.no_model) or isinstance(error, NoHistoryError):
        st.info(str(error))
    else:
        st.error(str(error))


@st.cache_resource(show_spinner=False)
def _history(url: str) -> History:
    return History(url)


@st.cache_data(ttl=15, show_spinner=False)
def model_history(url: str, model_name: str) -> pd.DataFrame:
    return _history(url).models(model_name)


@st.cache_data(ttl=15, show_spinner=False)
def drift_history(url: str) -> pd.DataFrame:
    return _history(url).drift_reports()


@st.cache_data(ttl=15, show_spinner=False)
def stored_diffs(url: str, model_name: str) -> pd.DataFrame:
    return _history(url).model_diffs(model_name)


@st.cache_data(ttl=15, show_spinner=False)
def live_history(url: str, model_name: str) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(live performance per batch and version, matched sales, rollbacks)."""
    history = _history(url)
    return history.live_performance(model_name), history.sale_outcomes(model_name), history.rollbacks(model_name)


def history(url: str) -> History:
    """The warehouse's read-only history (one engine per URL)."""
    return _history(url)


@st.cache_data(ttl=60, show_spinner=False)
def known_states(serving_url: str, timeout_s: float) -> list[dict]:
    """The champion's states with their mean training price (from serving's /states)."""
    return ServingClient(serving_url, timeout_s).states()["states"]


def states_or_stop() -> list[dict]:
    cfg = config()
    try:
        return known_states(cfg.serving_url, cfg.timeout_s)
    except ServingError as error:
        show_problem(error)
        st.stop()
        raise  # unreachable: st.stop() ends the run


def models_or_none() -> pd.DataFrame | None:
    cfg = config()
    try:
        return model_history(cfg.settings.database_url, cfg.settings.model_name)
    except HistoryError as error:
        show_problem(error)
        return None


def champion_version(models: pd.DataFrame | None) -> tuple[str | None, str]:
    """The version serving answers with; when serving is down, the latest promoted row (and says so)."""
    try:
        return str(client().model()["model_version"]), "serving"
    except ServingError as error:
        if models is None:
            return None, str(error)
        promoted = models[models["verdict"] == "promoted"].sort_values(["decided_at", "model_version"])
        if promoted.empty:
            return None, f"no model has been promoted yet ({error})"
        fallback = str(int(promoted["model_version"].iloc[-1]))
        return fallback, f"the warehouse's latest promoted model (serving did not say: {error})"


def property_inputs(states: list[str], key: str) -> dict:
    """The property fields, prefilled with the last property priced on any page."""
    last: dict[str, Any] = st.session_state.get("property") or DEFAULT_PROPERTY
    left, middle, right = st.columns(3)
    prop: dict[str, Any] = {
        "bed": left.number_input("Bedrooms", 0.0, 50.0, float(last["bed"]), 1.0, format="%.0f", key=f"{key}_bed"),
        "bath": middle.number_input("Bathrooms", 0.0, 50.0, float(last["bath"]), 0.5, format="%.1f", key=f"{key}_bath"),
        "acre_lot": right.number_input(
            "Lot (acres)", 0.0, 100_000.0, float(last["acre_lot"]), 0.05, format="%.2f", key=f"{key}_acre_lot"
        ),
        "house_size": left.number_input(
            "Living space (sq ft)", 1.0, 1e6, float(last["house_size"]), 50.0, format="%.0f", key=f"{key}_house_size"
        ),
    }
    default: str | None = next((s for s in (last["state"], DEFAULT_PROPERTY["state"]) if s in states), None)
    prop["state"] = middle.selectbox("State", states, index=states.index(default) if default else 0, key=f"{key}_state")
    prop["status"] = right.selectbox(
        "Status", STATUSES, index=STATUSES.index(last.get("status") or "for_sale"),
        format_func=lambda s: STATUS_LABELS.get(s, s), key=f"{key}_status",
    )  # fmt: skip
    # The model prices location by zip code, then city, then state: both are optional.
    city = left.text_input("City (optional)", last.get("city") or "", max_chars=128, key=f"{key}_city")
    zip_code = middle.text_input("ZIP code (optional)", last.get("zip_code") or "", max_chars=10, key=f"{key}_zip")
    prop["city"] = city.strip() or None
    prop["zip_code"] = zip_code.strip() or None
    return prop
