"""Client for the batch data API (`GET /data`, `GET /restart_data_generation`).

The API hands out "the next batch" per (group, day) by request count, and answers HTTP 400 once
the data is exhausted: that is the normal end, not a failure. Connection errors, timeouts, bodies
cut short and 5xx are retried with exponential backoff, then raised as `SourceError` with the URL
and the cause.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import pandas as pd
import requests

from mlops_assets.core.schema import RAW_COLUMNS

log = logging.getLogger(__name__)


class SourceError(RuntimeError):
    """The source could not be read (after retries), or answered something unusable."""


#: Faults worth another try: no connection, no answer in time, or an answer whose body was cut
#: short (the connection closed mid-body: ChunkedEncodingError; a compressed body that cannot be
#: decoded: ContentDecodingError). A body that did not arrive whole is not an answer. A retry of `/data`
#: may get the next batch (the server counted the lost one); `HttpBatchSource` checks the number.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    requests.ConnectionError,
    requests.Timeout,
    requests.exceptions.ChunkedEncodingError,
    requests.exceptions.ContentDecodingError,
)


@dataclass(frozen=True)
class Batch:
    batch_number: int
    frame: pd.DataFrame


class BatchApiClient:
    def __init__(
        self,
        base_url: str,
        group_number: int,
        day: str,
        *,
        connect_timeout: float = 5.0,
        read_timeout: float = 120.0,
        retries: int = 4,
        backoff_seconds: float = 0.5,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.params: dict[str, str | int] = {"group_number": group_number, "day": day}
        self.timeout = (connect_timeout, read_timeout)
        self.retries = retries
        self.backoff_seconds = backoff_seconds
        self._session = requests.Session()

    def _get(self, path: str) -> requests.Response:
        """GET with retries on TRANSIENT_ERRORS and 5xx; anything below 500 is the caller's to judge."""
        url = f"{self.base_url}{path}"
        for attempt in range(self.retries + 1):
            try:
                response = self._session.get(url, params=self.params, timeout=self.timeout)
                if response.status_code < 500:
                    return response
                cause = f"HTTP {response.status_code}: {response.text[:200]}"
            except TRANSIENT_ERRORS as error:
                cause = f"{type(error).__name__}: {error}"
            if attempt < self.retries:
                delay = self.backoff_seconds * 2**attempt
                log.warning("GET %s failed (%s); retry %d in %.1fs", url, cause, attempt + 1, delay)
                time.sleep(delay)
        raise SourceError(f"GET {url} failed after {self.retries + 1} attempts; last error: {cause}")

    def next_batch(self) -> Batch | None:
        """The next batch, or None once the API says the data is exhausted (HTTP 400)."""
        response = self._get("/data")
        if response.status_code == 400:
            log.info("source exhausted: %s", _detail(response))
            return None
        if response.status_code != 200:
            raise SourceError(f"GET {response.url} answered HTTP {response.status_code}: {_detail(response)}")
        try:
            payload = response.json()
            records = payload["data"]
            number = int(payload["batch_number"])
        except (ValueError, KeyError, TypeError) as error:
            raise SourceError(f"GET {response.url} returned no batch: {error}") from error
        frame = pd.DataFrame.from_records(records)
        # Keep unexpected columns out and absent ones visible: validation names them.
        known = [c for c in RAW_COLUMNS if c in frame.columns] if records else list(RAW_COLUMNS)
        return Batch(number, frame.reindex(columns=known))

    def restart(self) -> None:
        response = self._get("/restart_data_generation")
        if response.status_code != 200:
            raise SourceError(f"restart answered HTTP {response.status_code}: {_detail(response)}")


def _detail(response: requests.Response) -> str:
    try:
        return str(response.json().get("detail", response.text[:200]))
    except ValueError:
        return response.text[:200]
