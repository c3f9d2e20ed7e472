"""Object storage for parquet copies and reports: `file://` and `s3://` through one UPath code path.

For S3-compatible stores (SeaweedFS, MinIO, moto) the endpoint comes from the settings (AWS_ENDPOINT_URL,
`Settings.s3_endpoint_url`) unless given, and the credentials from the usual AWS environment variables.
"""

from __future__ import annotations

import io

import pandas as pd
import pyarrow as pa
from upath import UPath

from mlops_assets.settings import Settings


def storage_options(url: str, endpoint_url: str | None = None) -> dict:
    """fsspec options for `url`: the S3 endpoint of a non-AWS store, nothing for local files."""
    if url.startswith(("s3://", "s3a://")):
        endpoint = endpoint_url or Settings.from_env().s3_endpoint_url
        return {"client_kwargs": {"endpoint_url": endpoint}} if endpoint else {}
    return {}


class ObjectStore:
    def __init__(self, url: str, endpoint_url: str | None = None) -> None:
        self.url = url.rstrip("/")
        self.root = UPath(self.url, **storage_options(self.url, endpoint_url))

    def path(self, key: str) -> UPath:
        return self.root / key

    def uri(self, key: str) -> str:
        return f"{self.url}/{key}"

    def exists(self, key: str) -> bool:
        return self.path(key).exists()

    def write_bytes(self, key: str, data: bytes) -> str:
        """Write whole-object: S3 puts are atomic; local files go through a rename."""
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.root.protocol in ("", "file", "local"):
            partial = path.with_name(path.name + ".partial")
            partial.write_bytes(data)
            partial.rename(path)
        else:
            path.write_bytes(data)
        return self.uri(key)

    def read_bytes(self, key: str) -> bytes:
        return self.path(key).read_bytes()

    def write_text(self, key: str, text: str) -> str:
        return self.write_bytes(key, text.encode())

    def read_text(self, key: str) -> str:
        return self.read_bytes(key).decode()

    def write_parquet(self, key: str, frame: pd.DataFrame) -> str:
        buffer = io.BytesIO()
        try:
            frame.to_parquet(buffer, index=False)
        except (pa.ArrowException, ValueError):
            buffer = io.BytesIO()
            _arrow_safe(frame).to_parquet(buffer, index=False)
        return self.write_bytes(key, buffer.getvalue())

    def read_parquet(self, key: str) -> pd.DataFrame:
        return pd.read_parquet(io.BytesIO(self.read_bytes(key)))


def _arrow_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """Object columns mixing numbers and text (a bad batch) are kept as text, so the copy of
    what arrived can always be written and inspected."""
    out = frame.copy()
    for column in out.columns:
        values = out[column]
        if values.dtype == object and len({type(v) for v in values.dropna()}) > 1:
            out[column] = values.map(lambda v: v if v is None or v != v else str(v))
    return out
