"""Keep BLAS to one thread while the engine runs its own threads.

The engine splits work across its threads; if every matmul inside them also spawned BLAS
threads, the cores would be oversubscribed (measured: 2-3x slower on 2 cores). OpenBLAS 0.3.27+
has openblas_set_num_threads_local, meant to change only the calling thread. In the OpenBLAS
that NumPy's wheels bundle (0.3.31, pthreads) it sets the process-wide count instead, so which
of the two it does is found out once, at first use:

- thread-local: each thread that runs engine work sets its own count to 1 (and the calling
  thread puts its count back afterwards);
- process-wide: the first engine call to start sets the count to 1 and the last one to finish
  restores what it found, so concurrent calls never see it go back up mid-run. Meanwhile BLAS
  calls elsewhere in the process run on one thread too.

Without OpenBLAS (another BLAS, another platform) this does nothing.
"""

from __future__ import annotations

import ctypes
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache

_MAPS = "/proc/self/maps"


@cache
def _set_local() -> Callable[[int], int] | None:
    """openblas_set_num_threads_local (returns the previous count), or None."""
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


@cache
def process_wide() -> bool:
    """True when openblas_set_num_threads_local changes every thread's count (see the module doc)."""
    fn = _set_local()
    if fn is None:
        return False
    before = fn(1)
    other = threading.Thread(target=fn, args=(2,))
    other.start()
    other.join()
    seen = fn(before)  # what this thread's count is now: 2 if the other thread changed it
    return seen == 2


def single_threaded_blas() -> None:
    """Initializer of the engine's pool threads: one BLAS thread each, where that is per thread."""
    fn = _set_local()
    if fn is not None and not process_wide():
        fn(1)


_lock = threading.Lock()
_running = 0  # engine sections in progress (process-wide case)
_saved = 1  # the count they found


@contextmanager
def single_threaded_section() -> Iterator[None]:
    """BLAS runs on one thread for the calling thread's work and the pool's, inside the block."""
    global _running, _saved
    fn = _set_local()
    if fn is None:
        yield
        return
    if not process_wide():
        previous = fn(1)
        try:
            yield
        finally:
            fn(previous)
        return
    with _lock:
        if _running == 0:
            _saved = fn(1)
        _running += 1
    try:
        yield
    finally:
        with _lock:
            _running -= 1
            if _running == 0:
                fn(_saved)
