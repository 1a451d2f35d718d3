"""Pin the BLAS that NumPy loaded to one thread inside the engine's own worker threads.

The engine splits work across its threads; if every matmul inside them also spawned BLAS
threads, the cores would be oversubscribed (measured: 2-3x slower on 2 cores). OpenBLAS 0.3.27+
has openblas_set_num_threads_local, which changes only the calling thread, so nothing else in
the process is affected. Without it (another BLAS, another platform) this does nothing.
"""

from __future__ import annotations

import ctypes
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

_MAPS = "/proc/self/maps"


@cache
def _set_local() -> Callable[[int], int] | None:
    try:
        with open(_MAPS) as f:
            paths = set(re.findall(r"(/\S*openblas\S*\.so[\w.]*)", f.read()))
    except OSError:
        return None
    for path in sorted(paths):
        try:
            lib = ctypes.CDLL(path)
            fn = lib.openblas_set_num_threads_local
        except (OSError, AttributeError):
            continue
        fn.argtypes = [ctypes.c_int]
        fn.restype = ctypes.c_int
        return fn
    return None


def single_threaded_blas() -> bool:
    """Make BLAS calls from the current thread use one thread; True when that was possible."""
    fn = _set_local()
    if fn is None:
        return False
    fn(1)
    return True


@contextmanager
def blas_threads_here(n: int) -> Iterator[None]:
    """BLAS calls from the current thread use n threads inside the block; restored after it."""
    fn = _set_local()
    if fn is None:
        yield
        return
    previous = fn(n)
    try:
        yield
    finally:
        fn(previous)
