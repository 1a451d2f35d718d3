"""Memory that a worker frees goes back to the OS, so its RSS tracks what it holds.

glibc's malloc raises its mmap threshold each time a large block is freed (up to 32 MiB), so after
a few requests NumPy's temporaries of a few MiB come from the heap, where freed space between live
blocks (the output cache's entries) is kept by the process. Its RSS then wanders with the traffic:
bench/load.py's soak of 5,000 requests went 483 → 489…577 MiB (+19.5 % after warm-up). With a fixed
threshold every block of 1 MiB or more is its own mapping, returned to the OS when freed, and the
same soak stayed at 404–426 MiB (-3.8 %), with a peak of 496 MiB instead of 625 MiB.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

# mallopt(3) parameters of glibc (malloc.h).
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8

MMAP_THRESHOLD = 1 << 20  # blocks from 1 MiB up are mapped on their own (setting it ends the drift)
TRIM_THRESHOLD = 4 << 20  # free space at the top of the heap past 4 MiB is given back
ARENA_MAX = 2  # threads share two heaps: each thread's own arena would hold its own free space


def return_freed_memory() -> bool:
    """Tune glibc's malloc as above, for this process; False where malloc is not glibc's."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others have no mallopt
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (M_MMAP_THRESHOLD, MMAP_THRESHOLD), (M_TRIM_THRESHOLD, TRIM_THRESHOLD), (M_ARENA_MAX, ARENA_MAX)))
