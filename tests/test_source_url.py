"""URL sources against a real HTTP server on 127.0.0.1: the size limit, the read timeout, the md5
the source stage records and ingest checks, and the validators that spare a second download."""
from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator

import pytest

from tasks.core.common import PipelineError
from tasks.readers import sources
from tasks.readers import tables

CSV = b"id,text,label\n" + b"".join(b"r%d,a fine review number %d,%d\n" % (n, n, n % 2) for n in range(50))


class Site:
    """What the server answers; ``requests`` counts the GETs."""

    def __init__(self) -> None:
        self.body = CSV
        self.etag: str | None = '"v1"'
        self.declare_length = True
        self.stall_s = 0.0
        self.requests = 0


@pytest.fixture
def site() -> Iterator[tuple[Site, str]]:
    state = Site()

    class Handler(BaseHTTPRequestHandler):
        def _headers(self) -> None:
            self.send_response(200)
            if state.etag:
                self.send_header("ETag", state.etag)
            if state.declare_length:
                self.send_header("Content-Length", str(len(state.body)))
            self.end_headers()

        def do_HEAD(self) -> None:  # noqa: N802 (http.server's naming)
            self._headers()

        def do_GET(self) -> None:  # noqa: N802
            state.requests += 1
            self._headers()
            half = len(state.body) // 2
            self.wfile.write(state.body[:half])
            self.wfile.flush()
            time.sleep(state.stall_s)
            try:
                self.wfile.write(state.body[half:])
            except (BrokenPipeError, ConnectionResetError):
                pass

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state, f"http://127.0.0.1:{server.server_address[1]}/reviews.csv"
    finally:
        server.shutdown()
        server.server_close()


LIMITS = {"max_bytes": 10_000, "timeout_s": 5.0}


def test_the_source_stage_records_the_md5_and_ingest_checks_it(site):
    state, url = site
    cache: dict = {}
    entry = sources.url_entry(url, cache, LIMITS)
    assert entry["md5"] and entry["etag"] == '"v1"' and entry["max_bytes"] == 10_000
    assert tables.read_file(entry).data == CSV
    state.body = CSV.replace(b"fine", b"FINE")  # the server's content changes between the stages
    with pytest.raises(PipelineError, match=f"{url}: changed since the source stage listed it"):
        tables.read_file(entry)


def test_unchanged_validators_reuse_the_known_md5(site):
    state, url = site
    cache: dict = {}
    first = sources.url_entry(url, cache, LIMITS)
    downloads = state.requests
    assert sources.url_entry(url, cache, LIMITS) == first and state.requests == downloads
    state.etag, state.body = '"v2"', CSV + b"r99,one more,1\n"
    assert sources.url_entry(url, cache, LIMITS)["md5"] != first["md5"] and state.requests == downloads + 1


def test_without_validators_the_content_is_hashed_every_time(site):
    state, url = site
    state.etag, state.declare_length = None, False
    cache: dict = {}
    assert sources.url_entry(url, cache, LIMITS)["md5"] == sources.url_entry(url, cache, LIMITS)["md5"]
    assert state.requests == 2


@pytest.mark.parametrize("declared", [True, False], ids=["declared_length", "streamed"])
def test_a_download_past_the_size_limit_stops(site, declared):
    state, url = site
    state.declare_length = declared
    expected = "the server declares 1494 bytes" if declared else "stopped after 1494 bytes"
    with pytest.raises(PipelineError, match=rf"{url}: larger than ingest.url_max_mb \(.* MB\): {expected}"):
        sources.fetch_url(url, max_bytes=1000, timeout_s=5, attempts=1)


def test_a_server_that_stalls_past_the_read_timeout_stops(site):
    state, url = site
    state.stall_s = 2.0
    started = time.perf_counter()
    with pytest.raises(PipelineError, match=f"{url}: could not download after 1 attempts"):
        sources.fetch_url(url, max_bytes=10_000, timeout_s=0.5, attempts=1)
    assert time.perf_counter() - started < 2.0


def test_limits_come_from_the_ingest_params():
    assert sources.download_limits({"url_max_mb": 1, "url_timeout_s": 7}) == {"max_bytes": 2**20, "timeout_s": 7.0}
