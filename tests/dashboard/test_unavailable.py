"""When serving is down, or nothing has been trained yet, every page says so plainly: no traceback."""

from __future__ import annotations

import pytest
import requests

from dashboard.client import NO_MODEL
from tests.conftest import free_port
from tests.dashboard.conftest import Platform, clean, eventually, open_page, texts

pytestmark = pytest.mark.slow

PROPERTY = {"bed": 3.0, "bath": 2.0, "acre_lot": 0.25, "house_size": 1800.0, "state": "Ohio", "status": "sold"}


@pytest.fixture
def serving_down(platform: Platform, dashboard_env) -> str:
    """The platform's history, but MLOPS_SERVING_URL points at a port nothing listens on."""
    url = f"http://127.0.0.1:{free_port()}"
    dashboard_env(platform, MLOPS_SERVING_URL=url)
    return url


@pytest.mark.parametrize("page", ["predict", "explain", "compare", "monitoring", "trace"])
def test_serving_pages_say_that_serving_is_down(serving_down, page):
    at = open_page("predict")  # a session that priced a property earlier
    at.session_state["property"] = PROPERTY
    at = open_page(page, at)
    assert clean(at)
    down = f"Serving is down: nothing answers at {serving_down}."
    assert [e for e in texts(at.main.error) if e.startswith(down)], texts(at.main.error)
    assert texts(at.sidebar.error)[0].startswith(down)
    if page == "monitoring":  # the links do not need serving
        assert len(at.get("link_button")) == 3


def test_history_pages_still_work_and_say_where_the_champion_comes_from(serving_down):
    at = open_page("models")
    assert clean(at)
    [warning] = texts(at.main.warning)
    assert warning.startswith("Champion shown: **v2**, from the warehouse's latest promoted model")
    assert "Serving is down" in warning
    assert list(at.dataframe[0].value["verdict"]) == ["promoted", "promoted", "rejected"]
    at = open_page("drift", at)
    assert clean(at) and len(at.dataframe[0].value) == 3


@pytest.fixture
def nothing_yet(empty_serving: Platform, dashboard_env) -> Platform:
    eventually(lambda: _answers(empty_serving.serving.url), "the empty service answers /health", timeout=180)
    dashboard_env(empty_serving)
    return empty_serving


def _answers(url: str) -> bool:
    """Serving answers and has asked the registry (before its first poll it says only "no model loaded")."""
    try:
        return requests.get(f"{url}/health", timeout=5).json().get("status") == "no_champion"
    except (requests.RequestException, ValueError):
        return False


def test_before_any_model_is_promoted_every_page_says_so(nothing_yet):
    at = open_page("predict")
    assert clean(at)
    assert texts(at.main.info) == [NO_MODEL]
    assert (
        texts(at.sidebar.warning)[0] == "no champion: no model holds the alias 'champion' yet and none has been trained"
    )

    at.session_state["property"] = PROPERTY
    for page in ("explain", "compare"):
        at = open_page(page, at)
        assert clean(at) and texts(at.main.info) == [NO_MODEL]
    # serving creates the (empty) warehouse file on its first log query, so either message is the truth
    no_file = f"No warehouse yet at {nothing_yet.settings.home / 'warehouse.db'}: run the pipeline (`make demo`) first."
    no_rows = {"models": "No model named 'house-price' has been trained yet.",
               "drift": "No drift report yet: no batch has been judged."}  # fmt: skip
    for page, empty in no_rows.items():
        at = open_page(page, at)
        assert clean(at) and texts(at.main.info) in ([no_file], [empty])
    at = open_page("monitoring", at)
    assert clean(at)
    assert texts(at.main.error) == []
    assert [m.value for m in at.metric][:1] == ["0"]  # no prediction in the last 24 hours
    assert texts(at.main.info) == ["No prediction logged yet: price a property on the Predict page."]
    assert len(at.get("link_button")) == 3
    at = open_page("trace", at)
    assert clean(at)
    assert texts(at.main.info) == [
        "No prediction logged yet: price a property on the Predict page, then trace it here.",
        "No batch to show: the warehouse has no drift report yet.",
    ]


def test_when_no_candidate_passed_the_gate_the_pages_say_which_is_best_and_what_to_do(nothing_yet):
    """Runs last among the users of the session's empty platform: it registers a (rejected) candidate there."""
    from mlops_assets.ml.registry import ModelRegistry
    from tests.model_factory import train_and_register

    settings = nothing_yet.settings
    trained = train_and_register(
        settings.mlflow_tracking_uri, settings.model_name, trials=1, promote=False,
        artifact_location=settings.mlflow_artifact_location,
    )  # fmt: skip
    reason = "not enough better than the naive baseline: RMSE(log) 0.480 vs naive baseline 0.500 (4% better)"
    ModelRegistry(settings.mlflow_tracking_uri, settings.model_name).set_verdict(trained.version, "rejected", reason)

    def reported() -> bool:
        health = requests.get(f"{nothing_yet.serving.url}/health", timeout=5).json()
        return reason in (health.get("no_champion") or {}).get("message", "")

    eventually(reported, "serving reports the rejected candidate", timeout=60)
    at = open_page("predict")
    assert clean(at)
    [sidebar] = texts(at.sidebar.warning)
    assert sidebar.startswith("no champion: no candidate has passed the promotion gate (1 trained); best candidate v1")
    assert reason in sidebar and "promote_manually" in sidebar
    [info] = texts(at.main.info)
    assert info.startswith("Serving has no model to answer with: no champion: no candidate has passed")
