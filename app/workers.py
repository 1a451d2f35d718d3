"""Several worker processes behind one listening socket, each connection to the least busy worker.

uvicorn's own `--workers` shares the listening socket between the workers: every new connection
wakes them all and the first to call accept() takes it, and a worker whose compute slots are busy
takes connections as readily as an idle one (its event loop is free: the computing is in threads).
So one worker queues while the other waits: bench/load.py measured two such workers at 122-134
req/s against 92-97 for one (1.33-1.4x), where two one-worker servers, each sent its own half of
the clients, gave 152-158 req/s (1.66x). SO_REUSEPORT (a socket for each worker, the kernel picks
by a hash) measured worse: 111-133 req/s.

Here the parent accepts every connection and passes it (its file descriptor, over a Unix socket)
to the worker with the fewest requests in hand, as HAProxy's `leastconn` or Node's cluster module
do; the worker serves it as if it had accepted it. A connection counts from the moment it is passed
until its request is answered, and again for each later request on it: an idle keep-alive
connection (a monitor polling /healthz, say) does not make its worker look busy. The parent
copies no bytes: a connection costs it about 0.15 ms of CPU (its wake-up, accept and pass).
Two workers so measured 1.66-1.75x one worker over six runs (medians of 5 interleaved rounds
each), within 2-5 % of two one-worker servers sent half the clients each (a perfect split:
1.68-1.79x).
It also starts again a worker that dies, and on SIGINT or SIGTERM stops them all (each finishes
its requests, as uvicorn does).

Tried and measured worse: the workers accepting from the shared socket themselves, only the least
busy one listening at a time (counts and whose turn in shared memory, a pipe to wake the next), so
that no third process is on the path. Two workers so gave 1.68x one worker, with two one-worker
servers at 1.82x in the same run, where this design gave 1.75x against 1.78x an hour before. Likely:
the listening worker's event loop shares the GIL with its compute thread, so its accept waits on the
GIL, and every new connection waits with it; the parent decides at once.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
import os
import selectors
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from multiprocessing.sharedctypes import SynchronizedArray
from typing import Any

log = logging.getLogger("convlens")

RESTART_SECONDS = 1.0  # a worker that died is started again after this pause
STOP_SECONDS = 30.0  # workers still running this long after SIGTERM are killed

# Set in a worker: called by the HTTP protocol (serve.HeaderTimeoutProtocol) with +1 when a request
# starts on an idle keep-alive connection and -1 when a request ends or its connection closes.
on_load: Callable[[int], None] | None = None


def available() -> bool:
    """Descriptors pass over Unix sockets on Linux and the BSDs, not on Windows."""
    return hasattr(socket, "send_fds") and hasattr(socket, "AF_UNIX") and sys.platform != "win32"


def listening_socket(host: str, port: int, backlog: int) -> socket.socket:
    """The one socket every connection arrives on, bound and listening."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(backlog)
    return sock


def _serve(options: dict[str, Any], channel: socket.socket, index: int, load: SynchronizedArray[int]) -> None:
    """One worker process: uvicorn serving app.main:app on the connections the parent passes."""
    import uvicorn

    global on_load

    def change(delta: int) -> None:
        with load.get_lock():
            load[index] += delta

    on_load = change

    class PassedConnections(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=[])  # no socket of its own: the parent accepts
            loop = asyncio.get_running_loop()
            config = self.config

            def protocol() -> asyncio.Protocol:
                return config.http_protocol_class(config=config, server_state=self.server_state,  # type: ignore[call-arg]
                                                  app_state=self.lifespan.state)

            def receive() -> None:
                try:
                    _, fds, _, _ = socket.recv_fds(channel, 16, 64)
                except BlockingIOError:
                    return
                if not fds:  # the parent is gone
                    loop.remove_reader(channel.fileno())
                    self.should_exit = True
                    return
                for fd in fds:
                    conn = socket.socket(fileno=fd)
                    conn.setblocking(False)
                    loop.create_task(loop.connect_accepted_socket(protocol, conn))

            channel.setblocking(False)
            loop.add_reader(channel.fileno(), receive)

    PassedConnections(uvicorn.Config(**options)).run()


@dataclass
class Worker:
    process: SpawnProcess
    channel: socket.socket  # the parent's end of the Unix socket the connections go through


class Supervisor:
    """Accepts connections and hands each to the least busy of `workers` processes serving
    `options` (uvicorn.Config arguments, including host, port and backlog)."""

    def __init__(self, workers: int, options: dict[str, Any]) -> None:
        self.options = options
        self._context = multiprocessing.get_context("spawn")
        self.load = self._context.Array("i", workers)  # requests each worker has in hand
        self.size = workers
        self.workers: list[Worker] = []  # started by run()
        self._stop = False
        self._next = 0  # round-robin among the least busy

    def _start(self, index: int) -> Worker:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        with self.load.get_lock():
            self.load[index] = 0
        process = self._context.Process(target=_serve, args=(self.options, theirs, index, self.load))
        process.start()
        theirs.close()
        return Worker(process, ours)

    def pick(self) -> int:
        """The worker with the fewest requests in hand (ties in turn)."""
        n = self.size
        with self.load.get_lock():
            loads = [self.load[i] for i in range(n)]
        order = [(self._next + k) % n for k in range(n)]
        best = min(order, key=lambda i: loads[i])
        self._next = (best + 1) % n
        return best

    def hand_over(self, conn: socket.socket) -> None:
        """Pass the connection to a live worker; the parent keeps no copy."""
        try:
            for _ in range(self.size):
                i = self.pick()
                worker = self.workers[i]
                if not worker.process.is_alive():
                    continue
                with self.load.get_lock():
                    self.load[i] += 1
                try:
                    socket.send_fds(worker.channel, [b"c"], [conn.fileno()])
                    return
                except OSError:
                    with self.load.get_lock():
                        self.load[i] -= 1
            log.warning("no worker could take a connection; closed it")
        finally:
            conn.close()

    def run(self) -> None:
        """Serve until SIGINT or SIGTERM, then stop every worker."""
        host, port = self.options["host"], self.options["port"]
        try:
            listener = listening_socket(host, port, self.options.get("backlog", 2048))
        except OSError as err:
            log.error("cannot listen on %s:%s: %s", host, port, err)
            sys.exit(3)  # uvicorn's STARTUP_FAILURE
        listener.setblocking(False)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._ask_to_stop)
        self.workers = [self._start(i) for i in range(self.size)]
        log.info("%d workers (pids %s) on http://%s:%d, each connection to the least busy",
                 self.size, ", ".join(str(w.process.pid) for w in self.workers), host, port)
        selector = selectors.DefaultSelector()
        selector.register(listener, selectors.EVENT_READ)
        try:
            while not self._stop:
                if selector.select(timeout=0.5):
                    self._accept(listener)
                self._restart_dead()
        finally:
            selector.close()
            listener.close()
            self.stop()

    def _ask_to_stop(self, *_: object) -> None:
        self._stop = True

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                conn, _ = listener.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as err:  # out of descriptors, say: wait for the next round
                log.warning("accept failed: %s", err)
                return
            self.hand_over(conn)

    def _restart_dead(self) -> None:
        for i, worker in enumerate(self.workers):
            if not worker.process.is_alive() and not self._stop:
                log.warning("worker %s exited with %s; starting another", worker.process.pid,
                            worker.process.exitcode)
                worker.channel.close()
                time.sleep(RESTART_SECONDS)
                self.workers[i] = self._start(i)

    def stop(self) -> None:
        """SIGTERM to every worker, then SIGKILL to any still running after STOP_SECONDS."""
        for worker in self.workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.channel.close()
