"""Starting and stopping the real server processes the tests talk to.

Each runs in its own session, so that stopping it reaches its children too (bentoml's arbiter and
workers, mlflow's uvicorn workers), and writes its output to a log the fixtures print on failure.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def venv_bin(name: str) -> str:
    """A console script of this interpreter's environment (bentoml, mlflow, dagster)."""
    return str(Path(sys.executable).parent / name)


def start_process(command: list[str], env: dict[str, str], log: Path) -> subprocess.Popen:
    with open(log, "w") as output:
        return subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, start_new_session=True
        )


def start_bentoml(env: dict[str, str], port: int, log: Path) -> subprocess.Popen:
    command = [venv_bin("bentoml"), "serve", "serving.service:HousePriceService", "--host", "127.0.0.1"]
    return start_process([*command, "--port", str(port)], env, log)


def stop_process(process: subprocess.Popen) -> None:
    """SIGTERM to the process group, SIGKILL if it has not ended within 30 s."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)
