"""`python -m app.serve --workers 2`: the supervisor hands each connection to the least busy worker,
starts again a worker that dies, and stops them all on SIGTERM. Real processes and real sockets."""

from __future__ import annotations

import http.client
import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from live_server import serve_app

from app import workers
from app.workers import Supervisor

pytestmark = pytest.mark.skipif(not workers.available(), reason="descriptors pass over Unix sockets")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp = tmp_path_factory.mktemp("workers")
    with serve_app(tmp / "server.log", workers=2, env={"CONVLENS_STORE_DIR": str(tmp / "store")}) as url:
        yield url


def _connect(base: str) -> http.client.HTTPConnection:
    url = urlsplit(base)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    conn.connect()
    return conn


def _pid(conn: http.client.HTTPConnection) -> int:
    """The worker that serves this (keep-alive) connection."""
    conn.request("GET", "/readyz")
    res = conn.getresponse()
    assert res.status == 200
    return int(json.loads(res.read())["pid"])


def _settle(base: str, quiet: float = 0.3) -> None:
    time.sleep(quiet)  # the workers count off connections that just closed


def _pids_of_new_connections(base: str, n: int) -> list[int]:
    """The worker of each of n new connections, one after the other, each closed once answered."""
    out = []
    for _ in range(n):
        conn = _connect(base)
        try:
            out.append(_pid(conn))
        finally:
            conn.close()
        _settle(base, 0.05)
    return out


def test_a_worker_with_a_request_in_hand_gets_no_new_connection(base: str) -> None:
    _settle(base)
    slow = _connect(base)
    try:
        # Headers whole, body still coming: that worker has a request in hand until it is answered.
        slow.putrequest("POST", "/api/convolve")
        slow.putheader("Content-Type", "application/json")
        slow.putheader("Content-Length", "1000")
        slow.endheaders(b'{"kernels": ')
        _settle(base)
        pids = _pids_of_new_connections(base, 4)
        assert len(set(pids)) == 1, pids  # every one to the other worker
    finally:
        slow.close()


def test_an_idle_keep_alive_connection_does_not_make_its_worker_look_busy(base: str) -> None:
    _settle(base)
    idle = _connect(base)
    try:
        _pid(idle)  # answered: open, but no request in hand
        pids = _pids_of_new_connections(base, 4)
        assert len(set(pids)) == 2, pids  # both workers take turns, the idle connection's too
    finally:
        idle.close()


def test_two_connections_opened_at_once_go_to_two_workers(base: str) -> None:
    _settle(base)
    a, b = _connect(base), _connect(base)  # each counts from when it is passed to a worker
    try:
        assert _pid(a) != _pid(b)
    finally:
        a.close()
        b.close()


def test_a_worker_that_dies_is_started_again(base: str) -> None:
    _settle(base)
    a, b = _connect(base), _connect(base)
    pids = {_pid(a), _pid(b)}
    a.close()
    b.close()
    victim = min(pids)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    seen: set[int] = set()
    while time.monotonic() < deadline:
        _settle(base, 0.2)
        conns = [_connect(base), _connect(base)]
        try:
            seen = {_pid(c) for c in conns}
        except (OSError, http.client.HTTPException):
            seen = set()
        finally:
            for c in conns:
                c.close()
        if len(seen) == 2 and victim not in seen:
            break
    assert len(seen) == 2 and victim not in seen and pids - {victim} <= seen


def test_sigterm_stops_the_supervisor_and_its_workers(tmp_path: Path) -> None:
    import subprocess
    import sys

    from live_server import ROOT, free_port

    port = free_port()
    log = tmp_path / "log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "app.serve", "--port", str(port), "--workers", "2"],
                                cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                env={**os.environ, "CONVLENS_STORE_DIR": str(tmp_path / "store")})
    try:
        deadline = time.monotonic() + 60
        children: list[int] = []
        while time.monotonic() < deadline and len(children) < 2:
            time.sleep(0.2)
            try:
                text = Path(f"/proc/{proc.pid}/task/{proc.pid}/children").read_text()
            except OSError:
                text = ""
            children = [int(p) for p in text.split()
                        if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]
        assert len(children) >= 2, log.read_text()
        conn = _connect(f"http://127.0.0.1:{port}")
        _pid(conn)  # serving
        conn.close()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=40) == 0
        for pid in children:
            assert not Path(f"/proc/{pid}").exists() or "zombie" in Path(f"/proc/{pid}/status").read_text()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_the_least_busy_worker_is_picked_and_ties_take_turns() -> None:
    s = Supervisor(3, {})
    s.load[0], s.load[1], s.load[2] = 2, 0, 1
    assert s.pick() == 1
    s.load[1] = 5
    assert s.pick() == 2
    s.load[0] = s.load[1] = s.load[2] = 0
    assert [s.pick() for _ in range(6)] == [0, 1, 2, 0, 1, 2]
