"""The cache of computed layer outputs: per process, LRU and bounded in bytes, one compute per key."""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass
from typing import TypeVar

import numpy as np

from .settings import Settings
from .store import LRUCache

V = TypeVar("V")


def nbytes(value: object) -> int:
    """Approximate memory of a cached value: arrays, bytes, and containers or dataclasses of them."""
    if isinstance(value, np.ndarray):
        return int(value.nbytes) + 128
    if isinstance(value, bytes | bytearray | str):
        return len(value) + 64
    if isinstance(value, tuple | list):
        return sum(nbytes(v) for v in value) + 64
    if isinstance(value, dict):
        return sum(nbytes(k) + nbytes(v) for k, v in value.items()) + 64
    if is_dataclass(value) and not isinstance(value, type):
        return sum(nbytes(getattr(value, f.name)) for f in fields(value)) + 64
    return 64


class OutputCache:
    """Computed layer outputs keyed by (image id, layer parameters): JSON and PNGs share one conv."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._cache: LRUCache[object] = LRUCache(max_bytes, nbytes)
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()
        self.hits = 0  # answers served from the cache (for /metrics)
        self.misses = 0  # answers computed

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for key, or compute() once (concurrent callers for one key wait)."""
        hit = self._cache.get(key)
        if hit is not None:
            self.hits += 1
            return hit  # type: ignore[return-value]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                hit = self._cache.get(key)
                if hit is None:
                    self.misses += 1
                    hit = compute()
                    self._cache.put(key, hit)
                else:
                    self.hits += 1
        finally:
            with self._guard:
                self._locks.pop(key, None)
        return hit  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        return self._cache.nbytes


def make_outputs(settings: Settings) -> OutputCache:
    """The output cache the settings ask for; ValueError when it cannot hold the largest allowed output."""
    largest = 4 * settings.max_output_values + (1 << 20)  # float32 values, and 1 MiB for statistics
    if settings.output_cache_bytes < largest:
        raise ValueError(
            f"CONVLENS_OUTPUT_CACHE_BYTES must hold the largest allowed output (CONVLENS_MAX_OUTPUT_VALUES "
            f"x 4 bytes + 1 MiB = {largest:,}), got {settings.output_cache_bytes:,}")
    return OutputCache(settings.output_cache_bytes)
