"""The engine's threads: how many (CONVLENS_THREADS), and BLAS on one thread inside them, restored after."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np
import pytest

import engine.conv as conv_module
from engine import _blas, conv2d


def _counter() -> Callable[[], int]:
    fn = _blas._set_local()
    if fn is None:
        pytest.skip("NumPy's BLAS here is not OpenBLAS with openblas_set_num_threads_local")

    def count() -> int:
        """This thread's BLAS thread count (set, then put back, which is how OpenBLAS reports it)."""
        value = fn(1)
        fn(value)
        return value

    return count


def test_one_blas_thread_in_every_chunk_and_the_count_restored_after() -> None:
    count = _counter()
    before = count()
    seen: list[int] = []

    def work(chunk: list[tuple[int, int]]) -> None:
        if chunk[0][0] > 0:
            time.sleep(0.02)  # the calling thread's chunk (the first) ends long before this one
        seen.append(count())

    conv_module.run_chunks(work, [(0, 1), (1, 2), (2, 3), (3, 4)])
    assert len(seen) == min(conv_module._THREADS, 4) and set(seen) == {1}
    assert count() == before


def test_concurrent_engine_calls_keep_blas_single_threaded_until_the_last_ends() -> None:
    count = _counter()
    before = count()
    seen: list[int] = []
    start = threading.Barrier(4)

    def call(delay: float) -> None:
        def work(chunk: list[tuple[int, int]]) -> None:
            time.sleep(delay)
            seen.append(count())

        start.wait()
        conv_module.run_chunks(work, [(0, 1), (1, 2)])

    threads = [threading.Thread(target=call, args=(0.005 * (i + 1),)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert seen and set(seen) == {1}
    assert count() == before


def test_a_real_conv_leaves_the_blas_count_as_it_found_it(rng: np.random.Generator) -> None:
    count = _counter()
    before = count()
    x = rng.standard_normal((3, 300, 300)).astype(np.float32)
    conv2d(x, rng.standard_normal((8, 3, 3, 3)).astype(np.float32), padding=1)
    assert count() == before


def test_threads_setting() -> None:
    assert conv_module._threads_setting({"CONVLENS_THREADS": "3"}) == 3
    assert 1 <= conv_module._threads_setting({}) <= 4
    for bad in ("0", "-2", "two", ""):
        with pytest.raises(ValueError, match="CONVLENS_THREADS must be an integer >= 1"):
            conv_module._threads_setting({"CONVLENS_THREADS": bad})
