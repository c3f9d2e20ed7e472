"""The serving API over HTTP, with timeouts and errors a person can act on.

Every failure becomes a `ServingError` whose message is meant for the page as is: the dashboard
never shows a traceback. The dashboard computes nothing serving already does: prices, SHAP,
state means, history and summaries all come from these calls.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import requests

NO_MODEL = "Serving is up but has no model yet: no model has been promoted. Run the pipeline (`make demo`) first."


class ServingError(Exception):
    """A call to serving that gave no usable answer; `str()` is the message for the page."""

    def __init__(self, message: str, status: int | None = None, down: bool = False, no_model: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.down = down
        """True when serving did not answer at all (not running, unreachable, timed out)."""
        self.no_model = no_model
        """True when serving answers but has no model to answer with (no champion yet)."""


def _detail(payload: Any) -> str:
    """The reason in an error body: serving's {"error", "detail"} or FastAPI's {"detail": [...]}."""
    if not isinstance(payload, dict):
        return str(payload)[:300]
    detail = payload.get("detail")
    if isinstance(detail, list):
        fields = [f"{d.get('field') or '.'.join(map(str, d.get('loc', [])[1:]))}: {d.get('msg')}" for d in detail]
        return "; ".join(f for f in fields if f)
    message = payload.get("error") or ""
    return f"{message} ({detail})" if message and detail else str(message or detail or payload)[:300]


class ServingClient:
    def __init__(self, base_url: str, timeout_s: float = 20.0, read_token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = (min(3.0, timeout_s), timeout_s)  # (connect, read)
        self.read_token = read_token
        """Sent with the calls that show other clients' requests (the prediction history)."""

    def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        url = f"{self.base_url}{path}"
        try:
            response = requests.request(method, url, timeout=self.timeout, **kwargs)
        except requests.Timeout:
            raise ServingError(
                f"Serving at {self.base_url} did not answer within {self.timeout[1]:.0f} s.", down=True
            ) from None
        except requests.RequestException:
            raise ServingError(
                f"Serving is down: nothing answers at {self.base_url}. Start it with `make serve` "
                "or point MLOPS_SERVING_URL at it.",
                down=True,
            ) from None
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code == 503 and isinstance(payload, dict) and "no model" in str(payload.get("error")):
            detail = str(payload.get("detail") or "")
            if detail.startswith("no champion: no candidate"):  # candidates exist, none passed the gate
                raise ServingError(f"Serving has no model to answer with: {detail}", status=503, no_model=True)
            raise ServingError(NO_MODEL, status=503, no_model=True)
        if response.status_code == 422:
            raise ServingError(f"Serving refused the input: {_detail(payload)}", status=422)
        if response.status_code in (401, 403):
            raise ServingError(f"Not allowed: {_detail(payload)}", status=response.status_code)
        if response.status_code == 404 and isinstance(payload, dict) and payload.get("error"):
            raise ServingError(f"Not found: {_detail(payload)}", status=404)
        if response.status_code >= 400:
            raise ServingError(
                f"Serving answered HTTP {response.status_code} to {method} {path}: {_detail(payload)}",
                status=response.status_code,
            )
        if not isinstance(payload, dict):
            raise ServingError(f"Serving sent an unexpected answer to {method} {path}.", status=response.status_code)
        return payload

    def health(self) -> dict:
        return self._call("GET", "/health")

    def model(self) -> dict:
        return self._call("GET", "/model")

    def states(self) -> dict:
        """{"states": [{"state", "mean_price", "training_rows"}], "global_mean_price", "model_version"}"""
        return self._call("GET", "/states")

    def predict(self, prop: dict) -> dict:
        return self._call("POST", "/predict", json=prop)

    def batch_predict(self, props: list[dict]) -> dict:
        return self._call("POST", "/batch_predict", json=props)

    def explain(self, prop: dict) -> dict:
        return self._call("POST", "/explain", json=prop)

    def _read_headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.read_token}"} if self.read_token else {}

    def predictions(self, limit: int = 100, state: str | None = None) -> dict:
        params: dict[str, Any] = {"limit": limit}
        if state:
            params["state"] = state
        return self._call("GET", "/predictions/history", params=params, headers=self._read_headers())

    def lineage(self, request_id: str) -> dict:
        """A logged prediction's lineage: model, runs, training batches, drift report, verdict (read token)."""
        path = f"/predictions/{quote(request_id, safe='')}/lineage"
        return self._call("GET", path, headers=self._read_headers())

    def batch_lineage(self, batch_id: str) -> dict:
        """The models trained on a batch and the predictions they served (read token)."""
        return self._call("GET", f"/batches/{quote(batch_id, safe='')}/lineage", headers=self._read_headers())

    def summary(self) -> dict:
        return self._call("GET", "/metrics/summary")

    def reload(self, token: str) -> dict:
        return self._call("POST", "/reload", headers={"Authorization": f"Bearer {token}"})
