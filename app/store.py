"""Content-addressed image cache and a cache of computed layer outputs, both LRU and bounded in bytes.

The cache is only a cache: a miss on an image id is a 404 that tells the client to upload again,
so any worker may serve any request.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from .images import DecodedImage

V = TypeVar("V")


class ImageNotFound(LookupError):
    """An image id that is not (or no longer) in the cache: the client must upload again."""

    def __init__(self, image_id: str) -> None:
        super().__init__(image_id)
        self.image_id = image_id


class LRUCache(Generic[V]):
    """Thread-safe least-recently-used mapping whose values' sizes add up to at most max_bytes."""

    def __init__(self, max_bytes: int, sizeof: Callable[[V], int]) -> None:
        if max_bytes < 1:
            raise ValueError(f"`max_bytes` must be >= 1, got {max_bytes}")
        self.max_bytes = max_bytes
        self._sizeof = sizeof
        self._items: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        """The value for key (marking it recently used), or None."""
        with self._lock:
            item = self._items.get(key)
            if item is None:
                return None
            self._items.move_to_end(key)
            return item[0]

    def put(self, key: Hashable, value: V) -> bool:
        """Store value under key, evicting the least recently used; False if it alone is too big."""
        size = self._sizeof(value)
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._bytes -= old[1]
            if size > self.max_bytes:
                return False
            self._items[key] = (value, size)
            self._bytes += size
            while self._bytes > self.max_bytes:
                _, (_, evicted) = self._items.popitem(last=False)
                self._bytes -= evicted
            return True

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._items

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    @property
    def nbytes(self) -> int:
        """Bytes held now."""
        with self._lock:
            return self._bytes


def image_id(pixels: NDArray[np.uint8]) -> str:
    """sha256 (hex) of the decoded pixels and their shape: the same picture always gets the same id."""
    h = hashlib.sha256(f"{pixels.dtype.str}{pixels.shape}".encode())
    h.update(np.ascontiguousarray(pixels).data)
    return h.hexdigest()


class ImageStore:
    """Decoded images by content id, LRU, bounded in bytes; safe to share between threads."""

    def __init__(self, max_bytes: int) -> None:
        self._cache: LRUCache[DecodedImage] = LRUCache(max_bytes, lambda im: int(im.pixels.nbytes) + 256)

    def put(self, image: DecodedImage) -> str:
        """Store the image and return its id (sha256 of its pixels)."""
        key = image_id(image.pixels)
        self._cache.put(key, image)
        return key

    def get(self, key: str) -> DecodedImage | None:
        """The image with this id, or None when it is unknown or was evicted."""
        return self._cache.get(key)

    def require(self, key: str) -> DecodedImage:
        """The image with this id; ImageNotFound (a 404 asking to upload again) when absent."""
        image = self.get(key)
        if image is None:
            raise ImageNotFound(key)
        return image

    def __contains__(self, key: str) -> bool:
        return key in self._cache

    def __len__(self) -> int:
        return len(self._cache)

    @property
    def nbytes(self) -> int:
        """Bytes of pixels held now."""
        return self._cache.nbytes


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
        self._cache: LRUCache[object] = LRUCache(max_bytes, nbytes)
        self._locks: dict[Hashable, threading.Lock] = {}
        self._guard = threading.Lock()

    def get_or_compute(self, key: Hashable, compute: Callable[[], V]) -> V:
        """The cached value for key, or compute() once (concurrent callers for one key wait)."""
        hit = self._cache.get(key)
        if hit is not None:
            return hit  # type: ignore[return-value]
        with self._guard:
            lock = self._locks.setdefault(key, threading.Lock())
        try:
            with lock:
                hit = self._cache.get(key)
                if hit is None:
                    hit = compute()
                    self._cache.put(key, hit)
        finally:
            with self._guard:
                self._locks.pop(key, None)
        return hit  # type: ignore[return-value]

    def __len__(self) -> int:
        return len(self._cache)
