"""A real platform for the dashboard tests: warehouse history from the real pipeline (see pipeline_history.py),
a real `bentoml serve` process serving its champion, and a second one that has no model yet.

Both servers and the history are session-scoped: built once (the no-model server boots while the
pipeline runs), then every page test runs against them through Streamlit's AppTest.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from streamlit.testing.v1 import AppTest

from mlops_assets.settings import Settings
from tests.conftest import free_port
from tests.dashboard.pipeline_history import UI_URLS, build_platform, platform_env
from tests.processes import ROOT, start_bentoml, stop_process

APP = ROOT / "dashboard" / "app.py"
TOKEN = "dashboard-test-token"
READ_TOKEN = "dashboard-test-read-token"
DAGSTER_UI = UI_URLS["dagster"]
MLFLOW_UI = UI_URLS["mlflow"]
"""The UIs serving links its lineage answers into (MLOPS_DAGSTER_URL, MLOPS_MLFLOW_URL), as the pipeline does."""


@dataclass
class Serving:
    url: str
    process: subprocess.Popen
    log: Path

    def post(self, path: str, body: object) -> dict:
        response = requests.post(self.url + path, json=body, timeout=60)
        response.raise_for_status()
        return response.json()


@dataclass
class Platform:
    settings: Settings
    serving: Serving

    def env(self) -> dict[str, str]:
        """What the dashboard reads: this platform's warehouse and storage, and its serving."""
        return {
            **platform_env(self.settings.home),
            "MLOPS_DATABASE_URL": self.settings.database_url,
            "MLOPS_STORAGE_URL": self.settings.storage_url,
            "MLFLOW_TRACKING_URI": self.settings.mlflow_tracking_uri,
            "MLOPS_MODEL_NAME": self.settings.model_name,
            "MLOPS_MODEL_ALIAS": self.settings.model_alias,
            "MLOPS_SERVING_URL": self.serving.url,
            "MLOPS_READ_TOKEN": READ_TOKEN,
        }


def wait_until(
    check: Callable[[], object], timeout: float, what: str, process: subprocess.Popen, log: Path,
    name: str = "bentoml serve",
) -> None:  # fmt: skip
    """Until `check()` holds; the process's log in the error when it exits or the time runs out."""
    deadline = time.monotonic() + timeout
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with {process.returncode}: {log.read_text()[-3000:]}")
        try:
            if check():
                return
        except requests.RequestException:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f}s: {what}\n{log.read_text()[-3000:]}")
        time.sleep(0.25)


def eventually(check: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Wait for something another process does in its own time (never a timing assertion)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.1)


def start_serving(home: Path) -> Serving:
    """`bentoml serve` on the embedded default under `home` (1 worker, following the alias every second)."""
    port = free_port()
    env = {
        **os.environ,
        **platform_env(home),
        "MLOPS_ADMIN_TOKEN": TOKEN,
        "MLOPS_READ_TOKEN": READ_TOKEN,
        "MLOPS_DAGSTER_URL": DAGSTER_UI,
        "MLOPS_MLFLOW_URL": MLFLOW_UI,
        "MLOPS_SERVING_WORKERS": "1",
        "MLOPS_SERVING_POLL_SECONDS": "1",
        "MLOPS_INFERENCE_LOG_FLUSH_SECONDS": "0.1",
        "BENTOML_HOME": str(home.parent / f"bentoml-{port}"),
        "BENTOML_DO_NOT_TRACK": "true",
    }
    for name in ("MLOPS_DATABASE_URL", "MLOPS_STORAGE_URL", "MLFLOW_TRACKING_URI", "MLOPS_MODEL_NAME"):
        env.pop(name, None)  # everything under `home`
    log = home.parent / f"serve-{port}.log"
    return Serving(f"http://127.0.0.1:{port}", start_bentoml(env, port, log), log)


def stop_serving(serving: Serving) -> None:
    stop_process(serving.process)


@pytest.fixture(scope="session")
def empty_serving(tmp_path_factory) -> Iterator[Platform]:
    """Serving and a warehouse before any model was trained."""
    home = tmp_path_factory.mktemp("empty") / "mlops"
    home.mkdir()
    serving = start_serving(home)
    try:
        yield Platform(Settings.from_env(platform_env(home)), serving)
    finally:
        stop_serving(serving)


@pytest.fixture(scope="session")
def platform(empty_serving: Platform, tmp_path_factory) -> Iterator[Platform]:
    """v1 promoted (baseline), batch 2 skipped, v2 promoted on drift, v3 rejected; serving answers with v2."""
    home = tmp_path_factory.mktemp("platform") / "mlops"
    started: list[Serving] = []
    try:
        settings = build_platform(home, champion_ready=lambda: started.append(start_serving(home)))
        [serving] = started
        wait_until(
            lambda: requests.get(f"{serving.url}/health", timeout=5).json().get("model_version") == "2",
            180, "serving loads the champion v2", serving.process, serving.log,
        )  # fmt: skip
        yield Platform(settings, serving)
    finally:
        for serving in started:
            stop_serving(serving)


@pytest.fixture
def dashboard_env(monkeypatch: pytest.MonkeyPatch) -> Callable[[Platform], None]:
    """Point the dashboard (it reads the environment on every run) at a platform."""

    def point(target: Platform, **extra: str) -> None:
        for key, value in {**target.env(), **extra}.items():
            monkeypatch.setenv(key, value)

    return point


def open_page(page: str, at: AppTest | None = None) -> AppTest:
    """Run the app on `page` (views/<page>.py); pass `at` to keep one session across pages."""
    at = at or AppTest.from_file(str(APP), default_timeout=60)
    return at.switch_page(f"views/{page}.py").run()


def clean(at: AppTest) -> bool:
    """No traceback and no last-resort "failed unexpectedly" message (app.py turns bugs into those)."""
    return not at.exception and not [e for e in at.error if "failed unexpectedly" in e.value]


def texts(elements) -> list[str]:
    return [e.value for e in elements]
