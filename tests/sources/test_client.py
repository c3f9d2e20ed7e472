"""The batch API client against the simulator over real HTTP, faults included."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pandas as pd
import pytest
import requests

from mlops_assets.sources.batch_source import HttpBatchSource
from mlops_assets.sources.client import BatchApiClient, SourceError
from mlops_assets.sources.generator import ListingGenerator
from mlops_assets.sources.replay import FileReplay
from mlops_assets.sources.simulator import make_server
from tests.conftest import ServerThread

GENERATOR = ListingGenerator(seed=3, batches=3, min_rows=200, max_rows=400)
CUT_SHORT = ("short_body", "chunked_cut", "bad_gzip")


@pytest.fixture
def api():
    server = ServerThread(make_server(GENERATOR.batch))
    yield server
    server.close()


def client(url: str, **kwargs) -> BatchApiClient:
    return BatchApiClient(url, group_number=4, day="Tuesday", backoff_seconds=0.01, **kwargs)


def test_batches_arrive_in_order_then_exhaustion_is_a_clean_stop(api):
    c = client(api.url)
    numbers = []
    while (batch := c.next_batch()) is not None:
        numbers.append(batch.batch_number)
        pd.testing.assert_frame_equal(
            batch.frame, GENERATOR.batch(batch.batch_number), check_dtype=False, check_exact=False
        )
    assert numbers == [1, 2, 3]
    assert c.next_batch() is None


def test_restart_starts_again_and_groups_are_independent(api):
    c = client(api.url)
    other = BatchApiClient(api.url, group_number=5, day="Tuesday")
    assert c.next_batch().batch_number == 1
    assert c.next_batch().batch_number == 2
    assert other.next_batch().batch_number == 1
    c.restart()
    assert c.next_batch().batch_number == 1


def test_the_protocol_matches_the_original_api(api):
    response = requests.get(f"{api.url}/data", params={"group_number": 1, "day": "Wednesday"}, timeout=10)
    body = response.json()
    assert set(body) == {"group_number", "day", "batch_number", "data"}
    assert body["batch_number"] == 1 and body["group_number"] == 1 and body["day"] == "Wednesday"
    assert set(body["data"][0]) == set(GENERATOR.batch(1).columns)
    for _ in range(3):
        response = requests.get(f"{api.url}/data", params={"group_number": 1, "day": "Wednesday"}, timeout=10)
    assert response.status_code == 400 and "detail" in response.json()
    missing = requests.get(f"{api.url}/data", timeout=10)
    assert missing.status_code == 422


def send_cut_short(handler: BaseHTTPRequestHandler, mode: str) -> None:
    """Answer 200 with a body that never arrives whole, then close the connection: a
    Content-Length larger than what is written, a chunked body without its last chunk, or a
    gzip body that is not gzip."""
    body = b'{"group_number": 4, "day": "Tuesday", "batch_number": 1, "data": ['
    handler.close_connection = True
    if mode == "chunked_cut":
        handler.protocol_version = "HTTP/1.1"
        handler.send_response(200)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.wfile.write(b"%x\r\n%s\r\n" % (len(body), body))
    elif mode == "bad_gzip":
        handler.send_response(200)
        handler.send_header("Content-Encoding", "gzip")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    else:
        handler.send_response(200)
        handler.send_header("Content-Length", str(len(body) + 10_000))
        handler.end_headers()
        handler.wfile.write(body)
    handler.wfile.flush()


class FlakyProxy:
    """Real HTTP in front of the simulator: fails the first `failures` requests with 503,
    stalls them past the client's timeout, or cuts their body short (see `send_cut_short`)."""

    def __init__(self, upstream: str, failures: int, mode: str = "503") -> None:
        self.calls = 0
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                proxy.calls += 1
                if proxy.calls <= failures:
                    if mode in CUT_SHORT:
                        send_cut_short(self, mode)
                        return
                    if mode == "stall":
                        time.sleep(1.5)
                    body = b'{"detail": "upstream busy"}'
                    self.send_response(503)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                upstream_response = requests.get(upstream + self.path, timeout=10)
                self.send_response(upstream_response.status_code)
                self.send_header("Content-Length", str(len(upstream_response.content)))
                self.end_headers()
                self.wfile.write(upstream_response.content)

            def log_message(self, *args):
                pass

        self.server = ServerThread(ThreadingHTTPServer(("127.0.0.1", 0), Handler))

    @property
    def url(self) -> str:
        return self.server.url


def test_5xx_is_retried_then_succeeds(api):
    proxy = FlakyProxy(api.url, failures=2)
    batch = client(proxy.url, retries=3).next_batch()
    assert batch.batch_number == 1 and proxy.calls == 3
    proxy.server.close()


def test_timeouts_are_retried(api):
    proxy = FlakyProxy(api.url, failures=1, mode="stall")
    batch = client(proxy.url, retries=2, read_timeout=0.5).next_batch()
    assert batch is not None and proxy.calls == 2
    proxy.server.close()


def test_persistent_failure_raises_a_clear_error(api):
    proxy = FlakyProxy(api.url, failures=100)
    with pytest.raises(SourceError, match=r"failed after 3 attempts; last error: HTTP 503"):
        client(proxy.url, retries=2).next_batch()
    proxy.server.close()


@pytest.mark.parametrize("mode", CUT_SHORT)
def test_a_body_cut_short_is_retried_then_succeeds(api, mode):
    proxy = FlakyProxy(api.url, failures=2, mode=mode)
    try:
        batch = client(proxy.url, retries=3).next_batch()
        assert batch.batch_number == 1 and proxy.calls == 3
        pd.testing.assert_frame_equal(batch.frame, GENERATOR.batch(1), check_dtype=False, check_exact=False)
    finally:
        proxy.server.close()


@pytest.mark.parametrize(
    ("mode", "cause"),
    [
        ("short_body", "ChunkedEncodingError"),
        ("chunked_cut", "ChunkedEncodingError"),
        ("bad_gzip", "ContentDecodingError"),
    ],
)
def test_a_body_always_cut_short_raises_a_clear_error(api, mode, cause):
    proxy = FlakyProxy(api.url, failures=100, mode=mode)
    try:
        with pytest.raises(SourceError, match=rf"GET {proxy.url}/data failed after 3 attempts; last error: {cause}"):
            client(proxy.url, retries=2).next_batch()
        assert proxy.calls == 3
    finally:
        proxy.server.close()


def test_connection_refused_raises_a_clear_error():
    with pytest.raises(SourceError, match="ConnectionError"):
        client("http://127.0.0.1:9", retries=1).next_batch()


def test_http_source_keeps_in_step_with_the_batch_asked_for(api):
    source = HttpBatchSource(client(api.url))
    pd.testing.assert_frame_equal(source.fetch(1), GENERATOR.batch(1), check_dtype=False, check_exact=False)
    # ask for batch 3 while the server is at 2: reads forward
    pd.testing.assert_frame_equal(source.fetch(3), GENERATOR.batch(3), check_dtype=False, check_exact=False)
    # the server is exhausted: plain asking says so, a deliberate re-fetch rewinds
    assert source.fetch(2) is None
    pd.testing.assert_frame_equal(
        source.fetch(2, rewind=True), GENERATOR.batch(2), check_dtype=False, check_exact=False
    )
    # the server is past batch 1: restarts and reads forward
    pd.testing.assert_frame_equal(source.fetch(1), GENERATOR.batch(1), check_dtype=False, check_exact=False)
    assert source.fetch(4) is None


def test_file_replay_returns_the_files_rows_no_more_no_fewer(tmp_path: Path):
    rows = pd.concat([GENERATOR.batch(k) for k in (1, 2, 3)], ignore_index=True)
    path = tmp_path / "realtor-data.csv"
    rows.to_csv(path, index=False)
    server = ServerThread(make_server(FileReplay(path, batches=4).batch))
    try:
        c = client(server.url)
        received = []
        while (batch := c.next_batch()) is not None:
            received.append(batch.frame)
        assert len(received) == 4
        replayed = pd.concat(received, ignore_index=True)
        expected = pd.read_csv(path)
        assert len(replayed) == len(expected)
        pd.testing.assert_frame_equal(replayed, expected, check_dtype=False, check_exact=False)
    finally:
        server.close()


def test_the_simulator_runs_as_a_module(tmp_path):
    import subprocess
    import sys

    from tests.conftest import free_port, wait_for_port

    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "mlops_assets.sources.simulator", "--port", str(port), "--batches", "2",
         "--min-rows", "50", "--max-rows", "60"]
    )  # fmt: skip
    try:
        wait_for_port(port, process=process)
        c = client(f"http://127.0.0.1:{port}")
        assert [c.next_batch().batch_number, c.next_batch().batch_number] == [1, 2]
        assert c.next_batch() is None
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:  # seen once under an xdist worker: the TERM never arrived; not the subject
            process.kill()
            process.wait(10)


def test_concurrent_readers_of_one_group_each_get_distinct_batches(api):
    results = []

    def read():
        results.append(client(api.url).next_batch().batch_number)

    threads = [threading.Thread(target=read) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [1, 2, 3]
    assert json.loads(requests.get(f"{api.url}/health", timeout=5).text) == {"status": "ok"}


@pytest.mark.parametrize(
    ("body", "reason"),
    [(b"<html>maintenance</html>", "Expecting value"), (b'{"group_number": 1}', "'data'"), (b"[1, 2]", "indices")],
)
def test_an_answer_that_is_no_batch_raises_a_clear_error(body, reason):
    """A 200 whose body is not the API's JSON (a proxy's page, another API) is a source error naming the URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ServerThread(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    try:
        with pytest.raises(SourceError, match=rf"GET {server.url}/data\?.* returned no batch: .*{reason}"):
            client(server.url, retries=0).next_batch()
    finally:
        server.close()
