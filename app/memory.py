"""Memory that a worker frees goes back to the OS when it goes idle, so its RSS tracks what it holds.

glibc's malloc keeps freed memory for the process: NumPy's temporaries of a few MiB come from the
heap once glibc has raised its mmap threshold, and the space they leave between live blocks (the
output cache's entries) stays resident. A worker's RSS then wanders with the traffic: bench/load.py's
soak of 5,000 requests went 483 → 489…577 MiB (+19.5 % after warm-up). Two remedies were measured:

- a fixed mmap threshold of 1 MiB (every big block its own mapping, unmapped when freed) held the
  soak flat, but each temporary then costs fresh page faults: 14 % less throughput (90.7 → 79 req/s);
- `malloc_trim(0)` when the compute pool goes idle (at most once a second): what this module does.
  Busy, a worker allocates as fast as glibc allows; idle, it gives back every free page.

Threads share ARENA_MAX heaps: each thread's own arena would keep its own free space.

Big blocks come from the heap too (M_MMAP_MAX 0: glibc maps none of its own), and the heap's free
top is kept up to KEEP_FREE_BYTES between trims. glibc maps each block of 32 MiB or more (the most
its moving threshold reaches) and unmaps it when freed, and trims the heap's top past 128 KiB, so
the next big block is fresh memory, which the kernel zeroes as it is first touched: a layer of 8
maps of 1024² is 32 MiB, and the output cache takes a new one with every new layer. In
bench/load.py's mix that zeroing was 9 % of a worker's CPU, and memory bandwidth, which two workers
share. From the heap, a freed block is used again as it is. bench/load.py measured the kernel's time
a request 1.5-2.0 → 0.9-1.7 ms, 85-87 → 90-100 req/s with one worker and 136 → 154-162 with two,
the soak's RSS after warm-up -3.7 % and the overload's peak 644 MiB: idle trims still give it back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys
import threading
import time
from typing import Any

M_ARENA_MAX = -8  # mallopt(3) parameters of glibc (malloc.h)
M_MMAP_MAX = -4
M_TRIM_THRESHOLD = -1
KEEP_FREE_BYTES = 256 << 20  # free heap top kept between trims (glibc's own rule would be 128 KiB)
ARENA_MAX = 2
TRIM_EVERY_SECONDS = 1.0  # at most one trim a second, however often the pool goes idle


def _libc() -> Any | None:
    """glibc, or None where malloc is another's (macOS, musl)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError):
        return None
    return libc


class FreedMemory:
    """Gives the process's free heap pages back to the OS (glibc only; elsewhere does nothing)."""

    def __init__(self) -> None:
        self._libc = _libc()
        self._lock = threading.Lock()
        self._last = -TRIM_EVERY_SECONDS
        self._timer: threading.Timer | None = None
        self.trims = 0  # trims done (for tests)

    def tune_malloc(self) -> None:
        """Let this process's threads share ARENA_MAX heaps, and take big blocks from them too (call
        before the threads start)."""
        if self._libc is not None:
            self._libc.mallopt(M_ARENA_MAX, ARENA_MAX)
            self._libc.mallopt(M_MMAP_MAX, 0)
            self._libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES)

    @property
    def available(self) -> bool:
        """True where malloc_trim exists."""
        return self._libc is not None

    def release(self) -> None:
        """malloc_trim(0) now, or, if one ran less than TRIM_EVERY_SECONDS ago, once that is over."""
        if self._libc is None:
            return
        with self._lock:
            wait = self._last + TRIM_EVERY_SECONDS - time.monotonic()
            if wait > 0:
                if self._timer is None:  # one trim pending at most
                    self._timer = threading.Timer(wait, self._trim)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._trim()

    def _trim(self) -> None:
        with self._lock:
            self._timer = None
            self._last = time.monotonic()
        if self._libc is not None:
            self._libc.malloc_trim(0)
            self.trims += 1


FREED = FreedMemory()
