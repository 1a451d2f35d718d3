"""memory.FreedMemory: freed NumPy temporaries go back to the OS once the compute pool has stayed idle."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from app.memory import IDLE_SECONDS, FreedMemory
from app.pool import ComputePool

glibc = pytest.mark.skipif(not FreedMemory().available, reason="malloc_trim is glibc's (Linux)")

# After one big array is freed, glibc serves blocks below its size from the heap; 100 temporaries of
# 2 MiB are freed while the one allocated last is kept (as the output cache keeps an entry), so the
# heap's top cannot shrink past it. The script prints how much RSS grew, in MiB.
SCENARIO = """
import sys
import numpy as np
from app.memory import FreedMemory
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
big = np.ones(16 << 20, np.uint8); del big
start = rss()
temporaries = [np.ones(2 << 20, np.uint8) for _ in range(100)]
kept = np.ones(2 << 20, np.uint8)
del temporaries
if sys.argv[1] == "trim":
    FreedMemory().trim()
print(rss() - start)
"""


def _printed(script: str, *args: str) -> float:
    """What `script` prints when run in a fresh interpreter (its own malloc) with arguments `args`."""
    out = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, check=True)
    return float(out.stdout)


@glibc
def test_freed_temporaries_are_returned_to_the_os() -> None:
    kept, released = _printed(SCENARIO, "keep"), _printed(SCENARIO, "trim")
    assert kept > 150  # glibc by itself keeps the 200 MiB of freed temporaries
    assert released < 10, (kept, released)  # only what is still held: the kept array


class Clocked(FreedMemory):
    """Records when each idle() and trim() happens; trims nothing (the process's memory is left alone)."""

    def __init__(self) -> None:
        super().__init__()
        self.idled: list[float] = []
        self.trimmed: list[float] = []

    def idle(self) -> None:
        self.idled.append(time.monotonic())
        super().idle()

    def trim(self) -> None:
        self.trimmed.append(time.monotonic())


def _wait_for_trims(freed: Clocked, n: int) -> None:
    deadline = time.monotonic() + IDLE_SECONDS + 10
    while len(freed.trimmed) < n and time.monotonic() < deadline:
        time.sleep(0.05)


@glibc
def test_the_trim_comes_once_the_pool_has_stayed_idle() -> None:
    freed = Clocked()
    freed.idle()
    assert freed.trimmed == []  # not at once: work that comes back soon finds its pages in place
    _wait_for_trims(freed, 1)
    assert len(freed.trimmed) == 1 and freed.trimmed[0] - freed.idled[0] >= IDLE_SECONDS
    time.sleep(IDLE_SECONDS + 0.3)
    assert len(freed.trimmed) == 1  # one trim for one stretch of quiet


@glibc
def test_work_before_the_quiet_is_over_puts_the_trim_off() -> None:
    freed = Clocked()
    freed.idle()
    freed.busy()  # a request came: the pool is not idle any more
    time.sleep(IDLE_SECONDS + 0.5)
    assert freed.trimmed == []
    freed.idle()
    time.sleep(0.1)
    freed.busy()
    freed.idle()  # busy and idle again: the quiet counts from here
    _wait_for_trims(freed, 1)
    assert len(freed.trimmed) == 1 and freed.trimmed[0] - freed.idled[-1] >= IDLE_SECONDS


def test_the_pool_calls_on_busy_and_on_idle_as_it_starts_and_stops_working() -> None:
    import asyncio

    idle: list[int] = []
    busy: list[int] = []
    gate = threading.Event()
    pool = ComputePool(2, 2, 30, on_idle=lambda: idle.append(pool.admitted),
                       on_busy=lambda: busy.append(pool.admitted))

    async def main() -> None:
        slow = asyncio.ensure_future(pool.run(gate.wait, 10))
        await asyncio.sleep(0)  # admitted
        assert pool.admitted == 1 and busy == [1]  # the first request of an idle pool
        await pool.run(lambda: None)  # ends while the slow one still runs: not idle
        assert idle == [] and busy == [1]
        gate.set()
        await slow

    asyncio.run(main())
    deadline = time.monotonic() + 5
    while not idle and time.monotonic() < deadline:
        time.sleep(0.01)
    assert idle == [0]


# A 48 MiB block (over glibc's largest mmap threshold) is written, freed and written again; the script
# prints the page faults of the second round. Mapped anew, every page faults again; from the heap,
# the freed block is used as it is.
REUSE = """
import resource, sys
import numpy as np
from app.memory import FreedMemory
if sys.argv[1] == "tuned":
    FreedMemory().tune_malloc()
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
block = np.empty(48 << 20, np.uint8); block.fill(1); del block
before = faults()
block = np.empty(48 << 20, np.uint8); block.fill(2); del block
print(faults() - before)
"""


@glibc
def test_a_freed_big_block_is_used_again_without_fresh_pages() -> None:
    mapped, tuned = _printed(REUSE, "plain"), _printed(REUSE, "tuned")
    assert mapped >= 24  # each round maps 48 MiB anew: 24 faults even in 2 MiB huge pages
    assert tuned <= 2, (mapped, tuned)  # the heap's block again, already in memory


# A worker thread (as the compute pool's) allocates the temporaries of a layer, of 8 to 100 MiB, over
# and over while something older is kept below them; the script prints the page faults of the last
# round. Mode "two-arenas" gives threads a heap of their own, as glibc's default would: its heaps grow
# to 64 MiB at most, so the 100 MiB block is mapped anew, and zeroed, every round.
THREAD_REUSE = """
import resource, sys, threading
import numpy as np
from app.memory import M_ARENA_MAX, M_TOP_PAD, FreedMemory
freed = FreedMemory()
if sys.argv[1] != "plain":
    freed.tune_malloc()
if sys.argv[1] == "two-arenas":
    freed._libc.mallopt(M_ARENA_MAX, 2)
if sys.argv[1] == "no-pad":
    freed._libc.mallopt(M_TOP_PAD, 0)
big = int(sys.argv[2]) << 20
faults = []
def work():
    kept = np.ones(8 << 20, np.uint8)
    for r in range(3):
        if big:  # one block past the trim threshold, freed before the round is counted
            block = np.empty(big, np.uint8); block.fill(r); del block
        before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
        for mib in (24, 40, 100, 8, 64):
            block = np.empty(mib << 20, np.uint8); block.fill(r); del block
        faults.append(resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before)
thread = threading.Thread(target=work)
thread.start()
thread.join()
print(faults[-1])
"""


@glibc
def test_a_threads_temporaries_come_back_from_the_one_heap_without_fresh_pages() -> None:
    plain, two, tuned = (_printed(THREAD_REUSE, mode, "0") for mode in ("plain", "two-arenas", "tuned"))
    assert plain >= 50 and two >= 20  # mapped anew each round: faults even in 2 MiB huge pages
    assert tuned <= 5, (plain, two, tuned)


@glibc
def test_after_a_block_past_the_threshold_the_heap_keeps_its_top_for_the_next() -> None:
    # 300 MiB freed leaves more than KEEP_FREE_BYTES free at the heap's top, so glibc trims it: to
    # M_TOP_PAD, which is 128 KiB by default and KEEP_FREE_BYTES here.
    no_pad, tuned = (_printed(THREAD_REUSE, mode, "300") for mode in ("no-pad", "tuned"))
    assert no_pad >= 100
    assert tuned <= 5, (no_pad, tuned)
