"""Two `make serve` on one host keep their own metrics: BentoML empties its Prometheus multiprocess
directory at every start, so a shared one would let the second start wipe the first one's counters."""

from __future__ import annotations

import os
import subprocess

import pytest
import requests

from tests.conftest import free_port, wait_for_port
from tests.processes import ROOT, start_process, stop_process
from tests.serving.conftest import EXAMPLE, wait_until

pytestmark = pytest.mark.slow  # starts two services


def _make_serve(tmp_path, port: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if k not in ("BENTOML_HOME", "MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    env.update(PORT=str(port), HOST="127.0.0.1", MLOPS_HOME=str(tmp_path / "mlops"), MLOPS_SERVING_WORKERS="1")
    return start_process(
        ["make", "--no-print-directory", "-C", str(ROOT), "serve"], env, tmp_path / f"serve-{port}.log"
    )


def _invalid_predictions(url: str) -> float:
    text = requests.get(f"{url}/metrics", timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("predictions_total{") and 'outcome="invalid"' in line
    )


def test_two_services_on_one_host_keep_their_own_metrics(tmp_path):
    first_port, second_port = free_port(), free_port()
    first = _make_serve(tmp_path, first_port)
    second = None
    try:
        wait_for_port(first_port, timeout=120, process=first)
        url = f"http://127.0.0.1:{first_port}"
        wait_until(lambda: requests.get(f"{url}/health", timeout=5).ok, 60, "the first service answers")
        for _ in range(3):
            assert requests.post(f"{url}/predict", json={**EXAMPLE, "bed": -1}, timeout=10).status_code == 422
        assert _invalid_predictions(url) == 3

        second = _make_serve(tmp_path, second_port)
        wait_for_port(second_port, timeout=120, process=second)
        wait_until(lambda: requests.get(f"http://127.0.0.1:{second_port}/health", timeout=5).ok, 60, "the second")
        assert _invalid_predictions(url) == 3  # the second start left the first one's counters alone
        homes = sorted(p.name for p in (tmp_path / "mlops" / "bentoml").iterdir())
        assert homes == sorted([str(first_port), str(second_port)])
    finally:
        for process in (first, second):
            if process is not None:
                stop_process(process)
