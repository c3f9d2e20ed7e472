"""The platform as containers (docker-compose.yml), for the system test (`make test-system`).

The `platform` fixture starts a Docker engine (docker/engine.sh: the one that answers, or a local
dockerd as root), then the whole stack as compose project `mlops-systest` on ports of its own, fresh
(its volumes removed first), with test-sized settings: 3 simulator batches of 3,000-4,000 rows, one
Optuna trial, sensors every 5 s. It is removed afterwards (volumes too) unless MLOPS_SYSTEM_KEEP=1.
Everything the tests see goes through HTTP, SQL to the published PostgreSQL port, `docker logs` and
`docker exec`: nothing of the platform is called in process.

A test marked `containers("serving", ...)` that fails gets the last 80 log lines of those containers
in its report.
"""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
import sqlalchemy as sa

from tests.conftest import missing_service

ROOT = Path(__file__).resolve().parents[2]
PROJECT = os.environ.get("MLOPS_SYSTEM_PROJECT", "mlops-systest")
# Host ports of the test stack: apart from `make up`'s defaults, so both can run side by side.
PORTS = {
    "POSTGRES_HOST_PORT": 25433,
    "S3_HOST_PORT": 28333,
    "MLFLOW_HOST_PORT": 25000,
    "SIMULATOR_HOST_PORT": 28800,
    "DAGSTER_HOST_PORT": 23001,
    "SERVING_HOST_PORT": 23000,
    "DASHBOARD_HOST_PORT": 28501,
    "PROMETHEUS_HOST_PORT": 29090,
    "GRAFANA_HOST_PORT": 23002,
}
SETTINGS = {
    "MLOPS_SIM_SEED": "42",
    "MLOPS_SIM_BATCHES": "3",
    "MLOPS_SIM_MIN_ROWS": "3000",
    "MLOPS_SIM_MAX_ROWS": "4000",
    "MLOPS_TRAIN_TRIALS": "1",
    "MLOPS_SENSOR_INTERVAL_SECONDS": "5",
    "MLOPS_SERVING_POLL_SECONDS": "2",
    "MLOPS_SERVING_WORKERS": "1",
}
#: Seconds for each phase: the stack's start (images already built) and the whole loop.
UP_TIMEOUT = int(os.environ.get("MLOPS_SYSTEM_UP_TIMEOUT", "900"))
LOOP_TIMEOUT = int(os.environ.get("MLOPS_SYSTEM_LOOP_TIMEOUT", "1200"))


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "containers(*services): compose services whose logs a failure shows")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    outcome = yield
    report = outcome.get_result()
    marker = item.get_closest_marker("containers")
    if report.when == "call" and report.failed and marker is not None and Stack.current is not None:
        for service in marker.args:
            report.sections.append((f"docker logs --tail 80 {service}", Stack.current.logs(service, 80)))


#: The durations of the last stack (seconds), printed at the end of the session.
DURATIONS: dict[str, float] = {}


def pytest_terminal_summary(terminalreporter) -> None:
    if DURATIONS:
        terminalreporter.write_sep("-", "system test durations")
        for name, seconds in DURATIONS.items():
            terminalreporter.write_line(f"{name:>24}: {seconds:6.0f} s")


def _run(command: list[str], env: dict[str, str], timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _engine_env() -> dict[str, str]:
    """The environment with DOCKER_HOST of an engine that answers; skips (or fails) when none can be had."""
    try:
        result = _run(["bash", "docker/engine.sh", "start"], dict(os.environ), 120)
    except (OSError, subprocess.TimeoutExpired) as error:
        missing_service(f"no Docker engine could be started: {error}")
    if result.returncode != 0:
        missing_service(f"no Docker engine could be started (docker/engine.sh start): {result.stderr.strip()[-500:]}")
    env = dict(os.environ)
    for line in result.stdout.splitlines():
        if line.startswith("export DOCKER_HOST="):
            env["DOCKER_HOST"] = line.split("=", 1)[1]
    return env


@dataclass
class Stack:
    env: dict[str, str]
    secrets: dict[str, str]
    durations: dict[str, float] = field(default_factory=dict)
    model_versions_seen: list[str] = field(default_factory=list)
    current = None  # the running Stack, for the failure hook

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{PORTS[service + '_HOST_PORT']}"

    @property
    def serving(self) -> str:
        return self.url("SERVING")

    def docker(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return _run(["docker", *args], self.env, timeout)

    def container(self, service: str) -> str:
        result = self.docker(
            "ps", "-aq", "--filter", f"label=com.docker.compose.project={PROJECT}",
            "--filter", f"label=com.docker.compose.service={service}",
        )  # fmt: skip
        ids = result.stdout.split()
        assert ids, f"no container for service {service}: {result.stderr}"
        return ids[0]

    def logs(self, service: str, tail: int = 80) -> str:
        try:
            result = self.docker("logs", "--tail", str(tail), self.container(service), timeout=30)
        except AssertionError as error:
            return str(error)
        return result.stdout + result.stderr

    def exec(self, service: str, *command: str, timeout: float = 180) -> subprocess.CompletedProcess:
        return self.docker("exec", self.container(service), *command, timeout=timeout)

    def inspect(self, service: str, template: str) -> str:
        return self.docker("inspect", "--format", template, self.container(service)).stdout.strip()

    def database(self, name: str = "warehouse") -> sa.Engine:
        password = self.secrets["WAREHOUSE_DB_PASSWORD"]
        port = PORTS["POSTGRES_HOST_PORT"]
        return sa.create_engine(f"postgresql://warehouse:{password}@127.0.0.1:{port}/{name}")

    def sql(self, query: str, **params) -> list[dict]:
        engine = self.database()
        try:
            with engine.connect() as connection:
                return [dict(row._mapping) for row in connection.execute(sa.text(query), params)]
        except sa.exc.ProgrammingError as error:  # a table the pipeline has not created yet
            if "does not exist" in str(error):
                return []
            raise
        finally:
            engine.dispose()

    def graphql(self, query: str, **variables) -> dict:
        response = requests.post(
            f"{self.url('DAGSTER')}/graphql", json={"query": query, "variables": variables}, timeout=30
        )
        response.raise_for_status()
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def runs(self) -> list[dict]:
        data = self.graphql("{ runsOrError { ... on Runs { results { runId jobName status tags { key value } } } } }")
        runs = data["runsOrError"]["results"]
        for run in runs:
            run["tags"] = {t["key"]: t["value"] for t in run["tags"]}
        return runs


def eventually(check: Callable[[], object], timeout: float, what: str, interval: float = 3.0):
    """Polls `check` until it returns something truthy; fails with `what` and the last value."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            last = check()
        except (requests.RequestException, sa.exc.OperationalError) as error:
            last = error
        else:
            if last:
                return last
        if time.monotonic() > deadline:
            pytest.fail(f"{what}: not within {timeout:.0f} s (last: {last!r})"[:3000])
        time.sleep(interval)


def _read_env_file(path: Path) -> dict[str, str]:
    pairs = (line.split("=", 1) for line in path.read_text().splitlines() if "=" in line and not line.startswith("#"))
    return {key.strip(): value.strip() for key, value in pairs}


def _watch_model_versions(stack: Stack, stop: threading.Event) -> None:
    """Records every model version serving's /model reports, in order, while the tests run."""
    while not stop.is_set():
        try:
            response = requests.get(f"{stack.serving}/model", timeout=5)
            if response.ok:
                version = str(response.json().get("model_version"))
                if not stack.model_versions_seen or stack.model_versions_seen[-1] != version:
                    stack.model_versions_seen.append(version)
        except (requests.RequestException, ValueError):
            pass
        stop.wait(1.0)


@pytest.fixture(scope="session")
def platform() -> Iterator[Stack]:
    env = _engine_env()
    env.update({key: str(value) for key, value in PORTS.items()})
    env.update(SETTINGS)
    env["MLOPS_COMPOSE_PROJECT"] = PROJECT
    compose = ["bash", "docker/compose.sh"]
    started = time.monotonic()
    _run([*compose, "down"], {**env, "VOLUMES": "1"}, 300)
    up = _run([*compose, "up"], env, UP_TIMEOUT + 1800)  # + 1800: it builds missing images first
    if up.returncode != 0:
        _run([*compose, "down"], {**env, "VOLUMES": "1"}, 300)
        pytest.fail(f"make up failed:\n{up.stdout[-6000:]}\n{up.stderr[-6000:]}")
    stack = Stack(env=env, secrets=_read_env_file(ROOT / "docker/compose.env"), durations=DURATIONS)
    stack.durations["make up (stack healthy)"] = time.monotonic() - started
    stack.started_at = stack.inspect("serving", "{{.State.StartedAt}}")
    Stack.current = stack
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_model_versions, args=(stack, stop), daemon=True)
    watcher.start()
    try:
        yield stack
    finally:
        stop.set()
        watcher.join(5)
        Stack.current = None
        if os.environ.get("MLOPS_SYSTEM_KEEP") != "1":
            _run([*compose, "down"], {**env, "VOLUMES": "1"}, 300)
