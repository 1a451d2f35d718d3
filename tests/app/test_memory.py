"""memory.FreedMemory: freed NumPy temporaries go back to the OS when the compute pool goes idle."""

from __future__ import annotations

import subprocess
import sys
import threading
import time

import pytest

from app.memory import TRIM_EVERY_SECONDS, FreedMemory
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
if sys.argv[1] == "release":
    FreedMemory().release()
print(rss() - start)
"""


def _printed(script: str, mode: str) -> float:
    """What `script` prints when run in a fresh interpreter (its own malloc) with argument `mode`."""
    out = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@glibc
def test_freed_temporaries_are_returned_to_the_os() -> None:
    kept, released = _printed(SCENARIO, "keep"), _printed(SCENARIO, "release")
    assert kept > 150  # glibc by itself keeps the 200 MiB of freed temporaries
    assert released < 10, (kept, released)  # only what is still held: the kept array


@glibc
def test_a_release_too_soon_after_the_last_runs_once_it_may() -> None:
    freed = FreedMemory()
    freed.release()
    assert freed.trims == 1
    for _ in range(5):
        freed.release()  # within the second: one deferred trim, not five
    assert freed.trims == 1
    deadline = time.monotonic() + TRIM_EVERY_SECONDS + 5
    while freed.trims < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.2)
    assert freed.trims == 2


def test_the_pool_calls_on_idle_when_its_last_request_ends() -> None:
    import asyncio

    idle: list[int] = []
    gate = threading.Event()
    pool = ComputePool(2, 2, 30, on_idle=lambda: idle.append(pool.admitted))

    async def main() -> None:
        slow = asyncio.ensure_future(pool.run(gate.wait, 10))
        await asyncio.sleep(0)  # admitted
        assert pool.admitted == 1
        await pool.run(lambda: None)  # ends while the slow one still runs: not idle
        assert idle == []
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
