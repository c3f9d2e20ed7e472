"""One real `bentoml serve` process for the serving tests, against the real MLflow server and its own
PostgreSQL database (so a test can take that database away without touching anyone else's).

The server starts before any champion exists: what it answers then is recorded, then version 1 is
promoted and the tests run against a ready service (2 workers, polling the alias every second).
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families

from mlops_assets.ml.registry import LoadedModel, ModelRegistry
from tests.conftest import free_port, wait_for_port
from tests.model_factory import Trained, train_and_register
from tests.processes import start_bentoml, stop_process

TOKEN = "serving-test-token"
READ_TOKEN = "serving-test-read-token"
REJECTED = "not enough better than the naive baseline: RMSE(log) 0.500 vs naive baseline 0.520 (4% better)"
EXAMPLE = {"bed": 3, "bath": 2, "acre_lot": 0.25, "house_size": 1800, "state": "California", "status": "for_sale"}


def wait_until(check: Callable[[], Any], timeout: float, what: str, interval: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except requests.RequestException:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        time.sleep(interval)


@dataclass
class Service:
    url: str
    process: subprocess.Popen
    log: Path
    model_name: str
    tracking_uri: str
    database_name: str
    database_url: str
    admin_url: str
    first: Trained
    before_champion: dict[str, requests.Response] = field(default_factory=dict)
    _models: dict[str, LoadedModel] = field(default_factory=dict)

    def post(self, path: str, body: Any = None, data: bytes | None = None, **kwargs) -> requests.Response:
        if data is None:
            return requests.post(self.url + path, json=body, timeout=60, **kwargs)
        headers = {"Content-Type": "application/json", **kwargs.pop("headers", {})}
        return requests.post(self.url + path, data=data, headers=headers, timeout=60, **kwargs)

    def get(self, path: str, **kwargs) -> requests.Response:
        return requests.get(self.url + path, timeout=60, **kwargs)

    def metrics(self) -> dict[tuple[str, frozenset], float]:
        text = self.get("/metrics").text
        return {
            (sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text)
            for sample in family.samples
        }

    def metric(self, name: str, **labels: str) -> float:
        """The sum of the samples of `name` whose labels include `labels`."""
        wanted = set(labels.items())
        return sum(v for (n, lab), v in self.metrics().items() if n == name and wanted <= lab)

    def registry(self) -> ModelRegistry:
        return ModelRegistry(self.tracking_uri, self.model_name)

    def model(self, version: str) -> LoadedModel:
        """A registered version, loaded the way the service loads it (cached: versions never change)."""
        if version not in self._models:
            self._models[version] = self.registry().load(version)
        return self._models[version]

    def register_copy(self, version: str) -> str:
        """A new registry version holding the same booster and feature state as `version` (no training)."""
        import mlflow

        from mlops_assets.ml.registry import FEATURE_STATE_KEY
        from mlops_assets.ml.tracking import register

        loaded = self.model(version)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_experiment(self.model_name)
        with mlflow.start_run() as run:
            info = mlflow.xgboost.log_model(
                loaded.booster,
                name="model",
                model_format="ubj",
                metadata={FEATURE_STATE_KEY: json.loads(loaded.feature_state.to_json())},
            )
        return register(self.model_name, info, run.info.run_id, {"copy_of": version})

    def all_workers_serve(self, version: str) -> bool:
        """model_info is 'livemax' over workers: the old version reads 0 only once every worker swapped."""
        info = {dict(lab)["version"]: v for (n, lab), v in self.metrics().items() if n == "model_info"}
        return info.get(version) == 1 and all(v == 0 for k, v in info.items() if k != version)

    def set_database_connections(self, allowed: bool) -> None:
        """Take the service's database away (or give it back) without stopping the shared server."""
        admin = sa.create_engine(self.admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(
                sa.text(f'ALTER DATABASE "{self.database_name}" ALLOW_CONNECTIONS {"true" if allowed else "false"}')
            )
            if not allowed:
                connection.execute(
                    sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                    {"n": self.database_name},
                )
        admin.dispose()


class RequestLoop:
    """Predictions in a background thread, each on a new connection (so both workers answer), until stopped."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.results: list[tuple[int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            path = "/explain" if len(self.results) % 4 == 3 else "/predict"
            try:
                response = requests.post(self.service.url + path, json=EXAMPLE, timeout=30)
                version = response.json().get("model_version") if response.status_code == 200 else None
                self.results.append((response.status_code, version))
            except requests.RequestException as error:
                self.results.append((0, repr(error)))

    def __enter__(self) -> RequestLoop:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(30)


@pytest.fixture(scope="session")
def serving(mlflow_server: str, postgres_server: str, tmp_path_factory) -> Iterator[Service]:
    model_name = f"house-price-serving-{uuid.uuid4().hex[:6]}"
    database = f"serving_test_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(postgres_server, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{database}"'))
    database_url = postgres_server.rsplit("/", 1)[0] + f"/{database}"
    home = tmp_path_factory.mktemp("serving")
    port = free_port()
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": mlflow_server,
        "MLOPS_MODEL_NAME": model_name,
        "MLOPS_DATABASE_URL": database_url,
        "MLOPS_ADMIN_TOKEN": TOKEN,
        "MLOPS_READ_TOKEN": READ_TOKEN,
        "MLOPS_HOME": str(home / "mlops"),
        "MLOPS_SERVING_POLL_SECONDS": "1",
        "MLOPS_SERVING_WORKERS": "2",
        "MLOPS_INFERENCE_LOG_FLUSH_SECONDS": "0.2",
        "MLOPS_INFERENCE_LOG_QUEUE_ROWS": "3000",
        "BENTOML_HOME": str(home / "bentoml"),  # its own Prometheus multiprocess directory
        "BENTOML_DO_NOT_TRACK": "true",
    }
    log = home / "serve.log"
    process = start_bentoml(env, port, log)
    service = None
    try:
        # train while the server starts; the alias does not exist until the promotion below
        first = train_and_register(mlflow_server, model_name=model_name, promote=False)
        url = f"http://127.0.0.1:{port}"
        wait_for_port(port, timeout=120, process=process)
        wait_until(lambda: requests.get(f"{url}/health", timeout=5).ok, 120, "the service answers /health")
        service = Service(url, process, log, model_name, mlflow_server, database, database_url, postgres_server, first)
        service.registry().set_verdict(first.version, "rejected", REJECTED)  # as the gate would have

        def reports_the_rejection() -> bool:
            # both tags: the registry writes the reason first, then the verdict, so a poll in between
            # sees the reason of a still "pending" candidate
            health = service.get("/health").json()
            best = (health.get("no_champion") or {}).get("best_candidate") or {}
            return best.get("verdict") == "rejected" and best.get("verdict_reason") == REJECTED

        # every worker (each request may reach either) reports the rejected best candidate
        wait_until(lambda: all(reports_the_rejection() for _ in range(8)), 60, "serving reports the rejection")
        service.before_champion = {
            "readyz": service.get("/readyz"),
            "health": service.get("/health"),
            "predict": service.post("/predict", EXAMPLE),
            "model": service.get("/model"),
        }
        service.registry().promote(first.version, "serving tests")
        wait_until(lambda: service.metric("model_loaded") == 1, 120, "every worker loads the champion")
        yield service
    except BaseException:
        print(log.read_text()[-5000:])
        raise
    finally:
        stop_process(process)
        with admin.connect() as connection:
            connection.execute(sa.text(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true'))
            connection.execute(
                sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"), {"n": database}
            )
            connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{database}"'))
        admin.dispose()
