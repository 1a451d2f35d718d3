"""Serving ConvLens with uvicorn: an HTTP protocol that closes connections too slow to send headers.

uvicorn times out idle keep-alive connections, but not a client that opens a connection and sends
its request line and headers a byte at a time (a slow-loris): each such client holds a socket and a
parser forever. HeaderTimeoutProtocol gives every request CONVLENS_HEADER_SECONDS from the moment the
connection is idle to its last header, then closes the connection. `make run` selects it with
`--http app.serve:HeaderTimeoutProtocol`; bodies are timed by the app (CONVLENS_BODY_SECONDS).
"""

from __future__ import annotations

import asyncio
import copy
import json
import logging.config
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from . import workers
from .settings import Settings

HEADER_SECONDS = Settings.from_env().header_seconds


class HeaderTimeoutProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request's headers."""

    _header_timer: asyncio.TimerHandle | None = None
    _busy = True  # a request in hand: the supervisor counted this connection when it passed it

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm()

    def on_headers_complete(self) -> None:
        self._disarm()
        self._count(True)  # a later request on a keep-alive connection
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._count(False)
        if not self.transport.is_closing():
            self._arm()  # the next request on this keep-alive connection gets its own deadline

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)
        self._count(False)

    def _count(self, busy: bool) -> None:
        """Tell the supervisor (app/workers.py) when this connection starts or stops being work."""
        if busy != self._busy:
            self._busy = busy
            if workers.on_load is not None:
                workers.on_load(1 if busy else -1)

    def _arm(self) -> None:
        self._disarm()
        self._header_timer = self.loop.call_later(HEADER_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def send_400_response(self, msg: str) -> None:
        """A request the parser refuses (a URL or headers too long, bad syntax): 400 in JSON, like every
        other error of the API."""
        body = json.dumps({"detail": f"{msg} The request line or its headers are malformed or too long "
                           "(for big weights, POST them in the body instead of the URL).",
                           "field": None}).encode()
        head = [b"HTTP/1.1 400 Bad Request"]
        head += [name + b": " + value for name, value in self.server_state.default_headers]
        head += [b"content-type: application/json", b"content-length: " + str(len(body)).encode(),
                 b"x-content-type-options: nosniff", b"connection: close"]
        self.transport.write(b"\r\n".join(head) + b"\r\n\r\n" + body)
        self.transport.close()

    def _too_slow(self) -> None:
        self._header_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def log_config() -> dict[str, object]:
    """uvicorn's logging, plus ConvLens's one JSON line per request (convlens.requests) in place of
    uvicorn's access log, and its warnings and errors (convlens)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["formatters"]["plain"] = {"format": "%(message)s"}
    config["handlers"]["plain"] = {"class": "logging.StreamHandler", "formatter": "plain",
                                   "stream": "ext://sys.stdout"}
    config["loggers"]["convlens"] = {"handlers": ["default"], "level": "INFO", "propagate": False}
    config["loggers"]["convlens.requests"] = {"handlers": ["plain"], "level": "INFO", "propagate": False}
    config["loggers"]["uvicorn.access"] = {"handlers": [], "level": "WARNING", "propagate": False}
    return config


def share_cores(workers: int) -> None:
    """Defaults for `workers` processes on this machine's cores (a variable already set wins).

    Each worker computes on its share of the cores (CONVLENS_COMPUTE_WORKERS requests at once, each
    with CONVLENS_THREADS engine threads), so that N workers never run N x cores threads. BLAS's own
    thread pools would spin-wait against each other across processes (bench/load.py: two workers at
    0.4x one worker's throughput with them, 1.3x without).
    """
    share = str(max(1, (os.cpu_count() or 1) // workers))
    for name in ("CONVLENS_COMPUTE_WORKERS", "CONVLENS_THREADS"):
        os.environ.setdefault(name, share)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")


def main(argv: list[str] | None = None) -> None:
    """`python -m app.serve [--host H] [--port P] [--workers N]`: uvicorn with ConvLens's settings."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m app.serve", description=main.__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--workers", type=int, default=1, help="worker processes (share the image store)")
    args = parser.parse_args(argv)
    if args.workers > 1:
        share_cores(args.workers)
    options: dict[str, Any] = dict(
        app="app.main:app", host=args.host, port=args.port,
        http="app.serve:HeaderTimeoutProtocol",  # closes connections too slow to send headers
        timeout_keep_alive=5,  # idle keep-alive connections close after 5 s
        limit_concurrency=1000,  # connections + tasks past this get 503 from uvicorn itself
        backlog=2048, proxy_headers=True, server_header=False, log_config=log_config())
    if args.workers > 1 and workers.available():
        logging.config.dictConfig(log_config())
        workers.Supervisor(args.workers, options).run()  # each connection to the least busy worker
    else:
        uvicorn.run(**options, workers=args.workers)


if __name__ == "__main__":
    main()
