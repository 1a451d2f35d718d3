"""The image store: content-addressed, LRU and bounded in bytes (the output cache is app/outputs.py).

An image's id is the sha256 of its decoded pixels and their shape, so every copy of an id holds the
same picture and any worker may serve any request. make_store(settings) (app/store_backends.py)
picks where images live:

- On local disk, by default: a diskcache directory (CONVLENS_STORE_DIR) of at most
  CONVLENS_STORE_BYTES, least recently used out first. Every worker process of the machine shares
  it (SQLite in WAL mode indexes one file per image), and it survives restarts.
- In Redis, when CONVLENS_REDIS_URL is set: shared by every machine. Each image expires
  CONVLENS_REDIS_TTL_SECONDS (7 days) after it was last uploaded or read from Redis, since a read
  refreshes the TTL (GETEX, Redis >= 6.2). Bound Redis itself with `maxmemory` and
  `maxmemory-policy volatile-lru` (every key of ours has a TTL), so a full Redis evicts the least
  recently used images rather than refusing uploads.

In front of either, each process keeps the images it used last in memory (CONVLENS_CACHE_BYTES,
an ImageStore), so a request does not read and verify its image again. Those hits do not refresh
the shared copy's recency; when the shared copy is gone the other workers miss, and the next
upload puts it back.

Entries are bytes: a fixed header and the raw uint8 pixels (encode_image). Nothing read back is
unpickled, and an entry whose pixels do not hash to its id is a miss (and is deleted), so a corrupt,
truncated or foreign entry can cost an upload but never crash a request or run code.

A miss is a 404 that tells the client to upload again. A shared store that cannot be reached
(Redis down, disk full, SQLite locked too long) raises StoreUnavailable instead: uploading again
would not help.
"""

from __future__ import annotations

import hashlib
import logging
import re
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

import numpy as np
from numpy.typing import NDArray

from .errors import ImageNotFound
from .images import FORMATS, DecodedImage

V = TypeVar("V")
log = logging.getLogger("convlens.store")


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

    def close(self) -> None:
        """Let go of files and connections (nothing to do for memory)."""


# ---------------------------------------------------------------- entries of the shared stores

_MAGIC = b"CLIMG\x00\x00\x01"  # "ConvLens image", format version 1
# magic, height, width, channels, original width, original height, format name (NUL-padded ASCII)
_HEADER = struct.Struct("<8sIIIII8s")
_ID = re.compile(r"[0-9a-f]{64}")


def encode_image(image: DecodedImage) -> bytes:
    """An image as bytes for a shared store: a 36-byte header, then the (H, W, 3) uint8 pixels row by row."""
    h, w, c = image.pixels.shape
    header = _HEADER.pack(_MAGIC, h, w, c, *image.original_size, image.format.encode("ascii"))
    return b"".join((header, np.ascontiguousarray(image.pixels).data))


def decode_image(blob: bytes, key: str) -> DecodedImage | None:
    """The image encode_image wrote under id `key`, or None for anything else (corrupt, truncated, foreign).

    The pixels are a read-only view of `blob`, and must hash to `key`.
    """
    if len(blob) < _HEADER.size:
        return None
    magic, h, w, c, ow, oh, name = _HEADER.unpack_from(blob)
    fmt = name.rstrip(b"\0").decode("ascii", "replace")
    if (magic != _MAGIC or c != 3 or fmt not in FORMATS or min(h, w, ow, oh) < 1
            or len(blob) != _HEADER.size + h * w * c):
        return None
    pixels = np.frombuffer(blob, np.uint8, offset=_HEADER.size).reshape(h, w, c)
    if image_id(pixels) != key:
        return None
    return DecodedImage(pixels, (ow, oh), fmt)


class _SharedImageStore(ImageStore):
    """An ImageStore shared between processes: a per-process memory LRU, misses read from the backend.

    Subclasses implement the backend: _load, _save, _has, _discard, __len__ and nbytes.
    """

    def __init__(self, memory_bytes: int) -> None:
        super().__init__(max(memory_bytes, 1))  # 1 byte holds no image: no memory tier

    def put(self, image: DecodedImage) -> str:
        """Store the image and return its id; always written, so a bad entry under the id is replaced."""
        key = image_id(image.pixels)
        self._save(key, encode_image(image))
        self._cache.put(key, image)
        return key

    def get(self, key: str) -> DecodedImage | None:
        """The image with this id, or None when it is unknown, was evicted, or its entry is bad."""
        image = self._cache.get(key)
        if image is not None:
            return image
        if not _ID.fullmatch(key):
            return None  # never an id, so never stored
        blob = self._load(key)
        if blob is None:
            return None
        image = decode_image(blob, key)
        if image is None:
            log.warning("image store: the entry for %s is corrupt; deleted", key)
            self._discard(key)
            return None
        self._cache.put(key, image)
        return image

    def __contains__(self, key: str) -> bool:
        return key in self._cache or (_ID.fullmatch(key) is not None and self._has(key))

    def _load(self, key: str) -> bytes | None:
        """The entry's bytes, marking it recently used; None if absent."""
        raise NotImplementedError

    def _save(self, key: str, blob: bytes) -> None:
        """Write the entry (replacing any), evicting as the backend's bound says."""
        raise NotImplementedError

    def _has(self, key: str) -> bool:
        """True if the backend holds an entry under key."""
        raise NotImplementedError

    def _discard(self, key: str) -> None:
        """Delete the entry, if any."""
        raise NotImplementedError
