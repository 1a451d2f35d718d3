"""The real server (python -m app.serve, as `make run` starts it) against slow and oversized clients."""

from __future__ import annotations

import os
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from live_server import serve_app


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("serve") / "uvicorn.log"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CONVLENS_HEADER_SECONDS", "1")
        mp.setenv("CONVLENS_BODY_SECONDS", "1")
        with serve_app(log) as url:
            yield url


def _connect(base: str) -> socket.socket:
    parts = urlsplit(base)
    return socket.create_connection((parts.hostname, parts.port), timeout=10)


def _closed_within(sock: socket.socket, seconds: float) -> bool:
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except (TimeoutError, ConnectionResetError):
        return False


def test_a_client_too_slow_to_send_its_headers_is_disconnected(base: str) -> None:
    with _connect(base) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        start = time.monotonic()
        assert _closed_within(sock, 5)
        assert time.monotonic() - start < 4


def test_an_idle_connection_is_disconnected_too(base: str) -> None:
    with _connect(base) as sock:
        assert _closed_within(sock, 8)


def test_a_slow_body_gets_a_408_in_json(base: str) -> None:
    with _connect(base) as sock:
        sock.sendall(b"POST /api/convolve HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 40\r\n\r\n{\"kernels\": ")
        sock.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = sock.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408")
    assert b"CONVLENS_BODY_SECONDS" in body and b'"field":null' in body


def test_a_fast_client_is_served_with_keep_alive(base: str) -> None:
    with _connect(base) as sock:
        for _ in range(3):
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            sock.settimeout(5)
            reply = b""
            while b'"ok"' not in reply:
                chunk = sock.recv(4096)
                assert chunk, reply
                reply += chunk
            assert reply.startswith(b"HTTP/1.1 200")


def test_a_very_long_url_gets_json(base: str) -> None:
    url = f"{base}/api/presets?size=3&pad={'x' * 70_000}"
    try:
        with urllib.request.urlopen(url, timeout=10) as r:
            status, body, ctype = r.status, r.read(), r.headers["content-type"]
    except urllib.error.HTTPError as err:
        status, body, ctype = err.code, err.read(), err.headers["content-type"]
    assert status == 400 and ctype.startswith("application/json"), (status, body[:200])
    assert b"POST them in the body" in body


def test_each_answer_names_its_request_id(base: str) -> None:
    req = urllib.request.Request(f"{base}/api/presets", headers={"X-Request-ID": "abc-123"})
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.headers["x-request-id"] == "abc-123"


@pytest.mark.parametrize(("cores", "workers", "share"), [(2, 2, "1"), (8, 2, "4"), (2, 4, "1"), (12, 5, "2")])
def test_several_workers_share_the_cores(monkeypatch: pytest.MonkeyPatch, cores: int, workers: int,
                                         share: str) -> None:
    from app.serve import share_cores

    for name in ("CONVLENS_COMPUTE_WORKERS", "CONVLENS_THREADS", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                 "MKL_NUM_THREADS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("os.cpu_count", lambda: cores)
    monkeypatch.setenv("CONVLENS_THREADS", "3")  # one the user set stays
    share_cores(workers)
    assert os.environ["CONVLENS_COMPUTE_WORKERS"] == share and os.environ["CONVLENS_THREADS"] == "3"
    assert os.environ["OPENBLAS_NUM_THREADS"] == "1"
