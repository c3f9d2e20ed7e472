"""Replay of a realtor CSV/Parquet file in N batches, in file order."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from mlops_assets.core.schema import RAW_COLUMNS


def read_listings_file(path: str | Path) -> pd.DataFrame:
    """Read a realtor file; the 12 columns must all be there."""
    path = Path(path)
    if path.suffix.lower() in (".parquet", ".pq"):
        frame = pd.read_parquet(path)
    else:
        frame = pd.read_csv(path, dtype={"status": "string", "city": "string", "state": "string"})
    missing = [c for c in RAW_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} lacks the realtor column(s) {', '.join(missing)}")
    return frame[list(RAW_COLUMNS)]


@dataclass
class FileReplay:
    """Batch k holds the k-th of `batches` contiguous slices of the file, so all rows appear once."""

    path: str | Path
    batches: int = 10
    _frame: pd.DataFrame | None = field(default=None, repr=False)
    _bounds: np.ndarray | None = field(default=None, repr=False)

    def _load(self) -> tuple[pd.DataFrame, np.ndarray]:
        if self._frame is None:
            self._frame = read_listings_file(self.path)
            self._bounds = np.linspace(0, len(self._frame), self.batches + 1).astype(int)
        if self._bounds is None:  # _frame is set only together with _bounds
            raise RuntimeError("replay bounds missing")
        return self._frame, self._bounds

    def rows(self) -> int:
        """Read the file (once) and return its row count; raises when it is not a usable realtor file."""
        return len(self._load()[0])

    def batch(self, batch_number: int) -> pd.DataFrame | None:
        if not 1 <= batch_number <= self.batches:
            return None
        frame, bounds = self._load()
        return frame.iloc[bounds[batch_number - 1] : bounds[batch_number]].reset_index(drop=True)
