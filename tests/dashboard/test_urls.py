"""Every page opens at its own address (http://host:8501/predict, /drift, ...), as a browser asks for it.

A browser opening /<path> asks the app for the page *named* <path>, not for a script: AppTest only
switches pages by script, so these runs send the name the way the browser does and read the answer
the browser gets (the navigation message, and "Page not found" when no page has that path). No
serving and no history are needed: every page says so and still opens.
"""

from __future__ import annotations

import functools

import pytest
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.runtime.forward_msg_queue import ForwardMsgQueue
from streamlit.runtime.scriptrunner import RerunData
from streamlit.testing.v1 import AppTest, local_script_runner

from tests.conftest import free_port
from tests.dashboard.conftest import APP, clean

URL_PATHS = {
    "predict": "Predict a price",
    "explain": "Why this price?",
    "compare": "Compare locations",
    "models": "Model history",
    "model_diff": "Compare models",
    "drift": "Drift",
    "live_quality": "Live quality",
    "monitoring": "Monitoring",
    "trace": "Trace a prediction",
}
"""The documented address of each page, and the title it shows."""


@pytest.fixture
def nothing_running(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("MLOPS_HOME", str(tmp_path / "mlops"))
    monkeypatch.setenv("MLOPS_SERVING_URL", f"http://127.0.0.1:{free_port()}")
    for name in ("MLOPS_DATABASE_URL", "MLOPS_STORAGE_URL", "MLFLOW_TRACKING_URI"):
        monkeypatch.delenv(name, raising=False)


def open_url(path: str, monkeypatch: pytest.MonkeyPatch, query: str = "") -> tuple[AppTest, list[ForwardMsg]]:
    """The app as a browser opening /<path>?<query> runs it, and the messages it was sent."""
    sent: list[ForwardMsg] = []
    enqueue = ForwardMsgQueue.enqueue

    def recording(queue: ForwardMsgQueue, msg: ForwardMsg) -> None:
        sent.append(msg)
        enqueue(queue, msg)

    monkeypatch.setattr(ForwardMsgQueue, "enqueue", recording)
    rerun = functools.partial(RerunData, page_name=path, query_string=query)
    monkeypatch.setattr(local_script_runner, "RerunData", rerun)
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.query_params.update(dict(part.split("=", 1) for part in query.split("&") if part))
    return at.run(), sent


def landed_on(sent: list[ForwardMsg]) -> str:
    """The address the browser shows: the url path of the page the last navigation message ran."""
    [*_, navigation] = [m.navigation for m in sent if m.WhichOneof("type") == "navigation"]
    [page] = [p for p in navigation.app_pages if p.page_script_hash == navigation.page_script_hash]
    return page.url_pathname


def not_found(sent: list[ForwardMsg]) -> bool:
    return any(m.WhichOneof("type") == "page_not_found" for m in sent)


@pytest.mark.parametrize("path", list(URL_PATHS))
def test_each_page_opens_at_its_own_address(path, nothing_running, monkeypatch):
    at, sent = open_url(path, monkeypatch)
    assert not not_found(sent)
    assert landed_on(sent) == path
    assert clean(at) and [t.value for t in at.title] == [URL_PATHS[path]]


def test_the_root_address_opens_predict_at_its_address(nothing_running, monkeypatch):
    at, sent = open_url("", monkeypatch)
    assert not not_found(sent)
    assert landed_on(sent) == "predict"
    assert [t.value for t in at.title] == ["Predict a price"]


def test_an_unknown_address_says_page_not_found_and_shows_predict(nothing_running, monkeypatch):
    _, sent = open_url("no_such_page", monkeypatch)
    assert not_found(sent)
    assert landed_on(sent) == "predict"


def test_the_menu_lists_every_page_at_its_address_and_hides_the_root(nothing_running, monkeypatch):
    _, sent = open_url("drift", monkeypatch)
    [*_, navigation] = [m.navigation for m in sent if m.WhichOneof("type") == "navigation"]
    shown = [(p.page_name, p.url_pathname) for p in navigation.app_pages if not p.is_hidden]
    assert [path for _, path in shown] == list(URL_PATHS)
    assert shown[0] == ("Predict", "predict")
    [root] = [p for p in navigation.app_pages if p.is_hidden]
    assert root.is_default and root.url_pathname == ""


def test_a_link_to_one_drift_report_opens_that_report(nothing_running, monkeypatch, tmp_path):
    """Dagster's drift_report metadata links to /drift?report=<id>: opened as a browser does, that report shows."""
    from datetime import UTC, datetime

    from mlops_assets.core.contracts import DriftDecision
    from mlops_assets.settings import Settings
    from mlops_assets.storage.warehouse import Warehouse, drift_reports

    db = Warehouse(Settings.from_env().database_url)
    db.create_tables()
    reports = [("00001", DriftDecision.BASELINE, "no champion yet"), ("00002", DriftDecision.NO_DRIFT, "nothing moved")]
    for batch, decision, why in reports:
        row = {"report_id": f"{batch}-vs-v1", "batch_id": batch, "created_at": datetime.now(UTC), "why": why}
        db.upsert(drift_reports, row | {"rows_reference": 0, "rows_current": 10, "decision": decision.value})
    at, _ = open_url("drift", monkeypatch, "report=00001-vs-v1")
    assert clean(at) and at.selectbox(key="report_id").value == "00001-vs-v1"
    at, _ = open_url("drift", monkeypatch, "report=00009-vs-v1")
    assert at.selectbox(key="report_id").value == "00002-vs-v1"  # unknown: the latest, and it says so
    assert any("No drift report '00009-vs-v1'" in w.value for w in at.warning)
