"""memory.return_freed_memory: freed NumPy temporaries go back to the OS, in a fresh process each."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app.memory import return_freed_memory

# After one big array is freed, glibc serves blocks below its size from the heap; 100 temporaries of
# 2 MiB are freed while the one allocated last is kept (as the output cache keeps an entry), so the
# heap cannot shrink past it. The script prints how much RSS grew, in MiB.
SCENARIO = """
import sys
import numpy as np
from app.memory import return_freed_memory
if sys.argv[1] == "tuned":
    assert return_freed_memory()
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20
big = np.ones(16 << 20, np.uint8); del big
start = rss()
temporaries = [np.ones(2 << 20, np.uint8) for _ in range(100)]
kept = np.ones(2 << 20, np.uint8)
del temporaries
print(rss() - start)
"""


def _grown(mode: str) -> float:
    out = subprocess.run([sys.executable, "-c", SCENARIO, mode], capture_output=True, text=True, check=True)
    return float(out.stdout)


@pytest.mark.skipif(not sys.platform.startswith("linux") or not return_freed_memory(),
                    reason="mallopt is glibc's (Linux)")
def test_freed_temporaries_are_returned_to_the_os() -> None:
    untuned, tuned = _grown("default"), _grown("tuned")
    assert untuned > 150  # glibc's default keeps the 200 MiB of freed temporaries
    assert tuned < 10, (untuned, tuned)  # only what is still held: the kept array
