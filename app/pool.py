"""The bounded compute pool: every CPU-heavy handler runs here, never on the event loop.

At most `workers` requests compute at once and at most `queue` more wait for a slot. A request that
finds both full is refused at once with 503 and Retry-After (ServerBusy), so a burst never piles up
memory or latency. A request that waits or runs past its time budget is answered 503 too; its thread
finishes the (already costed and bounded) work and then frees the slot, so the pool never runs more
than `workers` at once.
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from .errors import ServerBusy

T = TypeVar("T")


class ComputePool:
    """A thread pool with a bounded queue in front of it, and counts for /readyz and /metrics."""

    def __init__(self, workers: int, queue: int, budget_seconds: float,
                 on_idle: Callable[[], object] | None = None,
                 on_busy: Callable[[], object] | None = None) -> None:
        self.on_idle = on_idle  # called in the pool's thread each time the last admitted request ends
        self.on_busy = on_busy  # called on the event loop each time a request is admitted to an idle pool
        self.workers = max(1, workers or (os.cpu_count() or 1))
        self.queue = queue
        self.budget_seconds = budget_seconds
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="convlens-compute")
        self._lock = threading.Lock()
        self.admitted = 0  # running or waiting now
        self.running = 0
        self.rejected = 0  # 503s: full
        self.timed_out = 0  # 503s: over the time budget

    @property
    def capacity(self) -> int:
        """Requests that may be admitted at once: workers plus the queue."""
        return self.workers + self.queue

    @property
    def waiting(self) -> int:
        """Admitted requests not yet running."""
        with self._lock:
            return self.admitted - self.running

    def _admit(self) -> None:
        with self._lock:
            if self.admitted >= self.capacity:
                self.rejected += 1
                raise ServerBusy(f"the server is busy: {self.running} requests are computing and "
                                 f"{self.admitted - self.running} are waiting; try again in a moment")
            self.admitted += 1
            first = self.admitted == 1
        if first and self.on_busy is not None:
            self.on_busy()

    def _release(self, _: Future[Any]) -> None:
        with self._lock:
            self.admitted -= 1
            idle = self.admitted == 0
        if idle and self.on_idle is not None:
            self.on_idle()

    def _call(self, fn: Callable[[], T], timing: dict[str, float]) -> T:
        with self._lock:
            self.running += 1
        start = time.perf_counter()
        try:
            return fn()
        finally:
            timing["compute"] = time.perf_counter() - start
            with self._lock:
                self.running -= 1

    async def run(self, fn: Callable[..., T], *args: object, timing: dict[str, float] | None = None) -> T:
        """fn(*args) in the pool; ServerBusy when the pool is full or the budget runs out."""
        self._admit()
        timing = {} if timing is None else timing
        try:
            future = self._executor.submit(self._call, functools.partial(fn, *args), timing)
        except BaseException:
            with self._lock:
                self.admitted -= 1
            raise
        future.add_done_callback(self._release)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(future), self.budget_seconds)
        except TimeoutError:
            with self._lock:
                self.timed_out += 1
            raise ServerBusy(f"the request took longer than its budget of {self.budget_seconds:g} s "
                             "(CONVLENS_REQUEST_SECONDS); ask for less work, or try again when the server "
                             "is less busy", retry_after=5) from None

    def shutdown(self) -> None:
        """Stop the threads once their work is done."""
        self._executor.shutdown(wait=False, cancel_futures=True)
