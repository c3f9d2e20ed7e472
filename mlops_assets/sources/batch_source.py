"""Where raw batches come from: batch k of the sequence, or None once it is exhausted.

Two implementations of one small interface: the built-in simulator in process (the embedded
default; stateless, batch k is computed directly) and the batch data API over HTTP, whose
"next batch" protocol is kept in step with the batch number the pipeline asks for.
"""

from __future__ import annotations

import logging
from typing import Protocol

import pandas as pd

from mlops_assets.sources.client import BatchApiClient, SourceError
from mlops_assets.sources.generator import ListingGenerator

log = logging.getLogger(__name__)


class BatchSource(Protocol):
    def fetch(self, batch_number: int, rewind: bool = False) -> pd.DataFrame | None:
        """Rows of batch `batch_number` (1-based), or None if the source has no such batch.

        `rewind` asks a stateful source to start over if it is already past the batch (a
        deliberate re-fetch of an old batch); without it, an exhausted source answers None."""
        ...

    def describe(self) -> str: ...


class SimulatorSource:
    """The built-in generator, in process."""

    def __init__(self, generator: ListingGenerator) -> None:
        self.generator = generator

    def fetch(self, batch_number: int, rewind: bool = False) -> pd.DataFrame | None:
        return self.generator.batch(batch_number)

    def describe(self) -> str:
        g = self.generator
        return f"in-process simulator (seed {g.seed}, {g.batches} batches)"


class HttpBatchSource:
    """The batch data API. Its count is server-side, so each answer's batch_number is checked:
    a server that restarted is read forward; one that is ahead (another reader, a response lost
    to a timeout or cut short, then retried) is restarted and read forward, so batch k is always batch k."""

    def __init__(self, client: BatchApiClient, max_skips: int = 1_000) -> None:
        self.client = client
        self.max_skips = max_skips

    def fetch(self, batch_number: int, rewind: bool = False) -> pd.DataFrame | None:
        restarted = False
        for _ in range(self.max_skips):
            batch = self.client.next_batch()
            if batch is None:
                if rewind and not restarted:
                    self.client.restart()
                    restarted = True
                    continue
                return None
            if batch.batch_number == batch_number:
                return batch.frame
            if batch.batch_number > batch_number:
                if restarted:
                    raise SourceError(
                        f"asked for batch {batch_number}, the source sent {batch.batch_number} "
                        "even after a restart: is another reader using the same group and day?"
                    )
                log.warning("source is at batch %d, restarting it to reach %d", batch.batch_number, batch_number)
                self.client.restart()
                restarted = True
            else:
                log.info("skipping batch %d already held, reading on to %d", batch.batch_number, batch_number)
        raise SourceError(f"batch {batch_number} not reached after {self.max_skips} reads")

    def describe(self) -> str:
        return f"batch data API {self.client.base_url} {self.client.params}"
