"""The batch data API of the original system, simulated: same protocol, over real HTTP.

    GET /data?group_number=G&day=D                    -> the next batch for (G, D), or
                                                         400 {"detail": ...} once exhausted
    GET /restart_data_generation?group_number=G&day=D -> resets the count for (G, D)

Run it with `python -m mlops_assets.sources.simulator --port 8800 [--seed 42] [--batches 8]`
or replay a realtor file: `--file realtor-data.csv --batches 10`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pandas as pd

from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.sources.replay import FileReplay

BatchProvider = Callable[[int], "pd.DataFrame | None"]


class BatchSimulator:
    """Serves batch 1, 2, ... to each (group, day) in request order; thread-safe."""

    def __init__(self, provider: BatchProvider) -> None:
        self._provider = provider
        self._served: dict[tuple[int, str], int] = {}
        self._lock = threading.Lock()

    def next_batch(self, group_number: int, day: str) -> tuple[int, pd.DataFrame | None]:
        with self._lock:
            number = self._served.get((group_number, day), 0) + 1
            frame = self._provider(number)
            if frame is not None:
                self._served[(group_number, day)] = number
        return number, frame

    def restart(self, group_number: int, day: str) -> None:
        with self._lock:
            self._served.pop((group_number, day), None)


def batch_body(group_number: int, day: str, batch_number: int, frame: pd.DataFrame) -> bytes:
    """The response body; pandas writes the records (NaN as null) far faster than json.dumps."""
    head = json.dumps({"group_number": group_number, "day": day, "batch_number": batch_number})
    return (head[:-1] + ', "data": ' + frame.to_json(orient="records") + "}").encode()


def make_handler(simulator: BatchSimulator) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _send(self, status: int, body: bytes) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _error(self, status: int, detail: str) -> None:
            self._send(status, json.dumps({"detail": detail}).encode())

        def do_GET(self) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            if url.path == "/health":
                return self._send(HTTPStatus.OK, b'{"status": "ok"}')
            if url.path not in ("/data", "/restart_data_generation"):
                return self._error(HTTPStatus.NOT_FOUND, f"no route {url.path}")
            try:
                group, day = int(query["group_number"]), query["day"]
            except (KeyError, ValueError):
                return self._error(HTTPStatus.UNPROCESSABLE_ENTITY, "group_number (integer) and day are required")
            if url.path == "/restart_data_generation":
                simulator.restart(group, day)
                body = {"ok": True, "group_number": group, "day": day}
                return self._send(HTTPStatus.OK, json.dumps(body).encode())
            try:
                number, frame = simulator.next_batch(group, day)
            except Exception as error:  # say why instead of dropping the connection
                return self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"cannot serve a batch: {error}")
            if frame is None:
                detail = f"no more data: the {number - 1} batch(es) for group {group}, day {day} were all served"
                return self._error(HTTPStatus.BAD_REQUEST, detail)
            self._send(HTTPStatus.OK, batch_body(group, day, number, frame))

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass

    return Handler


def make_server(provider: BatchProvider, host: str = "127.0.0.1", port: int = 0) -> ThreadingHTTPServer:
    """An HTTP server for the protocol; port 0 picks a free port (see `server.server_port`)."""
    server = ThreadingHTTPServer((host, port), make_handler(BatchSimulator(provider)))
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8800)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--min-rows", type=int, default=4_000)
    parser.add_argument("--max-rows", type=int, default=30_000)
    parser.add_argument("--file", help="replay this realtor CSV/Parquet file instead of generating")
    args = parser.parse_args(argv)
    if args.file:
        replay = FileReplay(args.file, batches=args.batches)
        try:
            rows = replay.rows()  # read and check the file now: a file it cannot use is refused at start
        except (OSError, ValueError) as error:
            raise SystemExit(f"cannot replay {args.file}: {error}") from None
        print(f"replaying {rows:,} rows of {args.file} in {args.batches} batches", flush=True)
        provider: BatchProvider = replay.batch
    else:
        provider = ListingGenerator(args.seed, args.batches, args.min_rows, args.max_rows).batch
    server = make_server(provider, args.host, args.port)
    print(f"batch data API on http://{args.host}:{server.server_port}", flush=True)
    with contextlib.suppress(KeyboardInterrupt):
        server.serve_forever()


if __name__ == "__main__":
    main()
