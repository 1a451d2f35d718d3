"""Memory that a worker frees goes back to the OS once it is idle, so its RSS tracks what it holds.

glibc's malloc keeps freed memory for the process: NumPy's temporaries of a few MiB come from the
heap once glibc has raised its mmap threshold, and the space they leave between live blocks (the
output cache's entries) stays resident. A worker's RSS then wanders with the traffic: bench/load.py's
soak of 5,000 requests went 483 → 489…577 MiB (+19.5 % after warm-up). Two remedies were measured:

- a fixed mmap threshold of 1 MiB (every big block its own mapping, unmapped when freed) held the
  soak flat, but each temporary then costs fresh page faults: 14 % less throughput (90.7 → 79 req/s);
- `malloc_trim(0)` once the compute pool has stayed idle for IDLE_SECONDS: what this module does.
  Busy, a worker allocates as fast as glibc allows; idle, it gives back every free page.

While busy, freed memory is used again as it is, never mapped anew (the kernel zeroes every fresh
page as it is first touched, which costs CPU and memory bandwidth, which two workers share):
- One heap for every thread (M_ARENA_MAX 1). glibc's default gives a thread its own heaps, which grow
  to 64 MiB at most, so a bigger block there is mapped and unmapped each time.
- Big blocks from the heap too (M_MMAP_MAX 0). glibc maps each block of 32 MiB or more (the most its
  moving threshold reaches) and unmaps it when freed; a layer of 8 maps of 1024² is 32 MiB, and the
  output cache takes a new one with every new layer.
- The heap's free top kept up to KEEP_FREE_BYTES (M_TRIM_THRESHOLD), and trimmed down to that much
  when it grows past it (M_TOP_PAD; glibc's default trims to 128 KiB, so one request that peaks
  high would make the next ones fault their pages in again).
- No trim while work goes on: a trim once a second at most, whenever the pool went idle for a
  moment, gave the heap back about once a second under steady load.
In bench/load.py's mix, fresh-page zeroing was 9 % of a worker's CPU with glibc's defaults. Big
blocks from the heap and a kept top (with two heaps, and the old trim) took the kernel's time a
request from 1.5-2.0 to 0.9-1.7 ms, and one worker from 85-87 to 90-100 req/s (two from 136 to
154-162). One heap, the top pad and no trim under load then took a worker's compute thread from 37
page faults a request to 2, its kernel time from 0.50-0.78 to 0.33-0.37 ms, and its CPU from
9.9-10.3 to 9.7-9.8 ms: one worker went from 99.0 to 104.0 req/s, two from 168.7 to 175.6, and
the soak from 91.4 to 103.8. The soak's RSS still moves by 2.9 % after warm-up, and the overload
peaks at 632 MiB: idle trims still give it back.
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
M_TOP_PAD = -2
M_TRIM_THRESHOLD = -1
KEEP_FREE_BYTES = 256 << 20  # free heap top kept while busy (glibc's own rule would be 128 KiB)
IDLE_SECONDS = 1.0  # the pool idle this long, the worker gives its free pages back


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
    """Gives the process's free heap pages back to the OS once its compute pool has been idle for
    IDLE_SECONDS (glibc only; elsewhere does nothing)."""

    def __init__(self) -> None:
        self._libc = _libc()
        self._lock = threading.Lock()
        self._idle_at: float | None = None  # when the pool last went idle, None while it is busy
        self._timer: threading.Timer | None = None

    def tune_malloc(self) -> None:
        """One heap for every thread, big blocks from it too, and KEEP_FREE_BYTES of its free top
        kept while busy (call before the threads start)."""
        if self._libc is not None:
            self._libc.mallopt(M_ARENA_MAX, 1)
            self._libc.mallopt(M_MMAP_MAX, 0)
            self._libc.mallopt(M_TRIM_THRESHOLD, KEEP_FREE_BYTES)
            self._libc.mallopt(M_TOP_PAD, KEEP_FREE_BYTES)

    @property
    def available(self) -> bool:
        """True where malloc_trim exists."""
        return self._libc is not None

    def busy(self) -> None:
        """The pool took work: a trim waiting for it to stay idle does not happen."""
        with self._lock:
            self._idle_at = None

    def idle(self) -> None:
        """The pool went idle: trim once it has stayed so for IDLE_SECONDS."""
        if self._libc is None:
            return
        with self._lock:
            self._idle_at = time.monotonic()
            if self._timer is None:
                self._wait(IDLE_SECONDS)

    def _wait(self, seconds: float) -> None:
        self._timer = threading.Timer(seconds, self._due)
        self._timer.daemon = True
        self._timer.start()

    def _due(self) -> None:
        with self._lock:
            self._timer = None
            if self._idle_at is None:  # busy again: its next idle moment waits anew
                return
            left = self._idle_at + IDLE_SECONDS - time.monotonic()
            if left > 0:  # busy and idle again since: wait for the rest of the quiet
                self._wait(left)
                return
            self._idle_at = None  # one trim for one stretch of quiet
        self.trim()

    def trim(self) -> None:
        """malloc_trim(0) now: every free page of the heap back to the OS."""
        if self._libc is not None:
            self._libc.malloc_trim(0)


FREED = FreedMemory()
