"""Shared fixtures: real servers (PostgreSQL, an S3 endpoint, the batch API simulator) and
isolated settings per test.

PostgreSQL is found at MLOPS_TEST_POSTGRES_URL or postgresql://postgres@127.0.0.1:5432/postgres
(started with pg_ctlcluster when installed but stopped). Without one, its tests are skipped with
the reason - or fail, when MLOPS_REQUIRE_SERVICES=1 (as in CI).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from mlops_assets.settings import Settings
from tests.processes import start_process, stop_process, venv_bin

POSTGRES_URL = os.environ.get("MLOPS_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REQUIRE_SERVICES = os.environ.get("MLOPS_REQUIRE_SERVICES") == "1"


#: Test folders whose session fixtures are costly (a platform built by the pipeline with serving, the UIs and a
#: browser; serving on an mlflow server; the rendered manifests). `make test` runs two xdist workers with
#: `--dist loadgroup`: each folder's tests stay together on one worker, so each fixture is built once.
SHARED_FIXTURE_FOLDERS = ("dashboard", "serving", "deploy")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    tests = Path(__file__).parent
    for item in items:
        folder = item.path.relative_to(tests).parts[0] if item.path.is_relative_to(tests) else ""
        if folder in SHARED_FIXTURE_FOLDERS:
            item.add_marker(pytest.mark.xdist_group(folder))


def missing_service(reason: str) -> None:
    if REQUIRE_SERVICES:
        pytest.fail(f"{reason} (MLOPS_REQUIRE_SERVICES=1)")
    pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"{process.args} exited with {process.returncode}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise TimeoutError(f"nothing listens on port {port} after {timeout}s")


#: MLflow's `set_tracking_uri` / `set_registry_uri` also write MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI into
#: os.environ, so a test that used a registry in process handed its URI to every process a later test on the same
#: worker started with `{**os.environ, ...}` (seen: a `dagster dev` serving another test's champion v5).
_MLFLOW_ENV = {name: os.environ.get(name) for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}


@pytest.fixture(autouse=True)
def _mlflow_environment_as_the_session_started() -> None:
    for name, value in _MLFLOW_ENV.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@pytest.fixture
def settings_env(tmp_path: Path) -> dict[str, str]:
    """An environment for the embedded default, isolated under tmp_path."""
    return {"MLOPS_HOME": str(tmp_path / "mlops"), "MLOPS_SIM_MIN_ROWS": "1500", "MLOPS_SIM_MAX_ROWS": "3000"}


@pytest.fixture
def settings(settings_env: dict[str, str]) -> Settings:
    return Settings.from_env(settings_env)


def _postgres_reachable(url: str) -> bool:
    try:
        engine = sa.create_engine(url, connect_args={"connect_timeout": 3})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except sa.exc.OperationalError:
        return False


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The URL of a reachable PostgreSQL server's maintenance database."""
    if _postgres_reachable(POSTGRES_URL):
        return POSTGRES_URL
    if shutil.which("pg_ctlcluster") and Path("/etc/postgresql").is_dir():
        for version in os.listdir("/etc/postgresql"):
            subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "start"],
                capture_output=True,
                check=False,
            )
        if _postgres_reachable(POSTGRES_URL):
            return POSTGRES_URL
    missing_service(
        f"needs a PostgreSQL server at {POSTGRES_URL} (trust auth) or MLOPS_TEST_POSTGRES_URL; none answered"
    )
    raise AssertionError("unreachable")


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty database for one test, dropped afterwards."""
    name = f"mlops_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    yield url
    with admin.connect() as connection:
        connection.execute(
            sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :name"),
            {"name": name},
        )
        connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
    admin.dispose()


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory) -> Iterator[dict[str, str]]:
    """A real S3-compatible HTTP endpoint (moto's server) and the environment to reach it."""
    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "server.log"
    process = start_process([sys.executable, "-m", "moto.server", "-p", str(port)], dict(os.environ), log)
    try:
        wait_for_port(port, process=process)
        yield {
            "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "MLFLOW_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    finally:
        stop_process(process)


@pytest.fixture
def s3_bucket(s3_server: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh bucket on the S3 test server, with the process environment pointed at it."""
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    name = f"mlops-{uuid.uuid4().hex[:8]}"
    s3_client(s3_server).create_bucket(Bucket=name)
    return name


def s3_client(s3_server: dict[str, str]):
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=s3_server["AWS_ENDPOINT_URL"],
        aws_access_key_id=s3_server["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=s3_server["AWS_SECRET_ACCESS_KEY"],
        region_name=s3_server["AWS_DEFAULT_REGION"],
    )


class ServerThread:
    """Runs an http.server in a thread for the duration of a test."""

    def __init__(self, server) -> None:
        self.server = server
        self.thread = threading.Thread(target=server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="session")
def mlflow_server(postgres_server: str, s3_server: dict[str, str], tmp_path_factory) -> Iterator[str]:
    """A real `mlflow server` process: backend store on PostgreSQL, artifacts proxied to the S3
    test server. Yields its tracking URI. Session-scoped: it takes ~20 s to start."""
    name = f"mlflow_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    backend = postgres_server.rsplit("/", 1)[0] + f"/{name}"
    bucket = f"mlflow-{uuid.uuid4().hex[:8]}"
    s3_client(s3_server).create_bucket(Bucket=bucket)
    port = free_port()
    log = tmp_path_factory.mktemp("mlflow") / "server.log"
    env = {**os.environ, **s3_server, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    command = [venv_bin("mlflow"), "server", "--backend-store-uri", backend, "--artifacts-destination",
               f"s3://{bucket}/artifacts", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"]  # fmt: skip
    process = start_process(command, env, log)
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        import requests

        while True:
            if process.poll() is not None:
                raise RuntimeError(f"mlflow server exited: {log.read_text()[-2000:]}")
            try:
                if requests.get(f"{url}/health", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"mlflow server not ready in 120 s: {log.read_text()[-2000:]}")
            time.sleep(0.5)
        yield url
    finally:
        stop_process(process)
        with admin.connect() as connection:
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": name}
            )
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()
