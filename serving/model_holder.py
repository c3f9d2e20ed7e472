"""Which champion this worker serves: load at start, follow the alias, swap atomically.

A background thread asks the registry every `poll_seconds` which version holds the alias. On a
change it loads the new version completely (download, feature state, a probe prediction and
explanation) and only then replaces the reference that requests read: a request sees the old
model or the new one, never a mix, and never waits for a load. A failed load leaves the old model
serving; it is logged and counted (`model_reloads_total{outcome="failed"}`) and retried at the next
poll. Without a champion the worker keeps asking and reports not ready.

`bentoml serve` runs several worker processes, each with its own holder. `/reload` reaches one of
them; `WorkerSync` lets it tell the others through a directory they share (`MLOPS_SERVING_RUN_DIR`,
created per `bentoml serve` by the service's deployment hook) and wait until they serve the same version.
"""

from __future__ import annotations

import asyncio
import gc
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from serving import metrics
from serving.predictor import Champion

logger = logging.getLogger("bentoml.serving.model")  # under "bentoml": shown in the server log


class WorkerSync:
    """Reload requests and the version each worker serves, as small files in a shared directory."""

    def __init__(self, directory: str) -> None:
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.request_file = self.directory / "reload-request"
        self.status_file = self.directory / f"worker-{os.getpid()}.json"

    def request_token(self) -> int:
        try:
            return self.request_file.stat().st_mtime_ns
        except FileNotFoundError:
            return 0

    def request_reload(self) -> int:
        _write_atomic(self.request_file, str(time.time_ns()))
        return self.request_token()

    def publish(self, version: str | None) -> None:
        _write_atomic(self.status_file, json.dumps({"pid": os.getpid(), "version": version}))

    def withdraw(self) -> None:
        self.status_file.unlink(missing_ok=True)

    def reap_dead(self) -> list[int]:
        """Remove the files of workers that died without withdrawing (killed); returns their pids."""
        dead = []
        for path in self.directory.glob("worker-*.json"):
            try:
                pid = int(json.loads(path.read_text())["pid"])
            except (OSError, ValueError, KeyError):
                continue
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                path.unlink(missing_ok=True)
                dead.append(pid)
            except OSError:
                continue
        return dead

    def versions(self) -> dict[int, str | None]:
        """The version each live worker serves."""
        found: dict[int, str | None] = {}
        for path in self.directory.glob("worker-*.json"):
            try:
                data = json.loads(path.read_text())
                os.kill(int(data["pid"]), 0)
            except (OSError, ValueError, KeyError):
                continue
            found[int(data["pid"])] = data["version"]
        return found


def _write_atomic(path: Path, text: str) -> None:
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(text)
    temporary.replace(path)


class ModelLoadError(RuntimeError):
    """The alias points at a version that could not be loaded; the previous model keeps serving."""


class ModelHolder:
    def __init__(
        self,
        registry_factory: Callable[[], object],
        alias: str,
        poll_seconds: float,
        sync: WorkerSync | None = None,
    ) -> None:
        self._registry_factory = registry_factory
        self._registry = None
        self.alias = alias
        self.poll_seconds = poll_seconds
        self.sync = sync
        self.current: Champion | None = None
        self.last_error: str | None = None
        self.no_champion: dict | None = None
        """While no version holds the alias: the best candidate and the rule it failed (see `_no_champion`)."""
        self._failed_version: str | None = None
        self._load_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def starting(self) -> bool:
        """True until this worker's first check has an outcome: a model, no champion, or an error."""
        return self.current is None and self.no_champion is None and self.last_error is None

    async def model_for_request(self, wait_seconds: float) -> Champion | None:
        """The champion; a worker still starting (a fresh or respawned one) holds the request until its model
        is in, instead of answering 503 for a champion that exists (at most `wait_seconds`)."""
        deadline = time.monotonic() + wait_seconds
        while self.starting and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self.current

    def model_for_request_sync(self, wait_seconds: float) -> Champion | None:
        """`model_for_request` for the endpoints BentoML runs in a thread."""
        deadline = time.monotonic() + wait_seconds
        while self.starting and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.current

    # --- the loop ---

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="model-poller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self.sync is not None:
            self.sync.withdraw()

    def _run(self) -> None:
        seen = self.sync.request_token() if self.sync else 0
        if self.sync is not None:
            for pid in self.sync.reap_dead():  # a killed worker's live gauges would report its model forever
                metrics.mark_process_dead(pid)
                logger.info("worker %d died without stopping; its metrics are withdrawn", pid)
            self.sync.publish(None)
        next_poll = 0.0
        while not self._stop.is_set():
            token = self.sync.request_token() if self.sync else 0
            if time.monotonic() >= next_poll or token != seen:
                seen = token
                try:
                    self.refresh()
                except ModelLoadError:
                    pass  # logged and counted by refresh; retried at the next poll
                except Exception as error:  # the registry is down: keep serving, say why, try again
                    self.last_error = f"registry: {type(error).__name__}: {error}"[:500]
                    logger.warning("could not ask the registry for %r: %s", self.alias, self.last_error)
                next_poll = time.monotonic() + self.poll_seconds
            self._stop.wait(min(0.25, self.poll_seconds))

    # --- one check ---

    def registry(self):
        if self._registry is None:
            self._registry = self._registry_factory()  # imports MLflow: seconds, so never in a request
        return self._registry

    def refresh(self) -> tuple[str | None, str | None]:
        """Serve whatever version holds the alias now; returns (old version, new version).

        Raises when the registry cannot be asked or the new version cannot be loaded; either way
        the current model keeps serving.
        """
        with self._load_lock:
            registry = self.registry()
            old = self.current.version if self.current else None
            version = registry.alias_version()
            if version is None:
                if old is not None:  # withdrawn: keep answering with what was served, and say so
                    if self.last_error is None or not self.last_error.startswith("alias withdrawn"):
                        logger.warning("alias %r points nowhere now; still serving version %s", self.alias, old)
                    self.last_error = (
                        f"alias withdrawn: no version holds {self.alias!r} any more; still serving version {old} "
                        "until a version is promoted (README: 'Withdrawing a model')"
                    )
                else:
                    self.no_champion = _no_champion(registry, self.alias)
                    self.last_error = self.no_champion["message"]
                return old, old
            self.no_champion = None
            if version == old:
                self.last_error = None
                return old, old
            verdict = registry.verdict(version)
            if verdict not in SERVABLE_VERDICTS:  # the alias moved outside the gate (the MLflow UI, a script)
                self.last_error = (
                    f"version {version} holds the alias {self.alias!r} without a promotion verdict "
                    f"(verdict: {verdict or 'none'}): not served; still serving {old or 'nothing'}. "
                    f"Promote through the gate or {HOW_TO_PROMOTE}"
                )[:500]
                if self._failed_version != version:
                    logger.warning(self.last_error)
                self._failed_version = version
                return old, old
            try:
                champion = Champion.prepare(registry.load(version), self.alias)
            except Exception as error:
                metrics.MODEL_RELOADS.labels("failed").inc()
                self.last_error = f"loading version {version} failed: {type(error).__name__}: {error}"[:500]
                if self._failed_version != version:  # the traceback once; then one line per retry
                    logger.exception("loading version %s failed; still serving %s", version, old)
                else:
                    logger.warning("%s; still serving %s", self.last_error, old)
                self._failed_version = version
                raise ModelLoadError(self.last_error) from error
            self._swap(champion)
            self.last_error = None
            logger.info("now serving %s version %s (was %s)", champion.model.name, version, old)
            return old, version

    def _swap(self, champion: Champion) -> None:
        previous = self.current
        self.current = champion  # one reference assignment: atomic for every reader
        if previous is not None:
            metrics.MODEL_INFO.labels(previous.model.name, previous.version, self.alias).set(0)
        metrics.MODEL_INFO.labels(champion.model.name, champion.version, self.alias).set(1)
        metrics.MODEL_LOADED.set(1)
        metrics.EXPLAINER_LOADED.set(1)
        metrics.MODEL_RELOADS.labels("success").inc()
        if self.sync is not None:
            self.sync.publish(champion.version)
        # Everything loaded so far (MLflow, pandas, the model) lives as long as the worker. Freezing it
        # keeps the cyclic GC from rescanning those ~300,000 objects during requests: without it a
        # 10,000-row batch's allocations set off full collections that tripled its p95 (measured).
        gc.collect()
        gc.freeze()

    # --- /reload across workers ---

    def reload_everywhere(self, timeout: float = 30.0) -> dict:
        """Refresh here, ask the other workers to, and wait until all serve the same version."""
        old, new = self.refresh()
        workers: dict[int, str | None] = {os.getpid(): new}
        if self.sync is not None:
            self.sync.request_reload()
            deadline = time.monotonic() + timeout
            while True:
                workers = self.sync.versions()
                if all(v == new for v in workers.values()) or time.monotonic() > deadline:
                    break
                time.sleep(0.05)
        return {
            "old_version": old,
            "new_version": new,
            "changed": old != new,
            "workers": {str(pid): version for pid, version in sorted(workers.items())},
            "all_workers_synced": all(v == new for v in workers.values()),
        }


#: Verdict tags that the promotion gate or a recorded manual promotion write (mlops_assets/manual_promotion.py).
SERVABLE_VERDICTS = ("promoted", "promoted_manually")

HOW_TO_PROMOTE = (
    "to serve a candidate anyway, launch the Dagster job promote_manually with its version and a reason "
    "(README: 'No champion yet')"
)


def _no_champion(registry, alias: str) -> dict:
    """No version holds the alias: say so with the best candidate's figures and the rule it failed."""
    try:
        best = registry.best_candidate()
    except Exception as error:  # the registry answered the alias query; this is a detail
        logger.warning("could not rank the candidates: %s", error)
        best = None
    if best is None:
        message = f"no champion: no model holds the alias {alias!r} yet and none has been trained"
        return {"message": message, "best_candidate": None, "how_to_serve_anyway": None}
    figures = best["metrics"]
    shown = ", ".join(
        text
        for key, text in (
            ("r2_log", f"R2(log) {figures.get('r2_log', float('nan')):.3f}"),
            ("median_ape", f"median APE {figures.get('median_ape', float('nan')):.1%}"),
            ("rmse", f"RMSE ${figures.get('rmse', float('nan')):,.0f}"),
        )
        if key in figures
    )
    verdict = best["verdict"]
    because = f": {best['verdict_reason']}" if best.get("verdict_reason") else ""
    message = (
        f"no champion: no candidate has passed the promotion gate ({best['candidates']} trained); "
        f"best candidate v{best['version']} ({shown}) was {verdict}{because}. {HOW_TO_PROMOTE.capitalize()}."
    )
    return {"message": message, "best_candidate": best, "how_to_serve_anyway": HOW_TO_PROMOTE}
