"""The image store (content-addressed) and the cache of computed layer outputs, LRU and bounded in bytes.

An image's id is the sha256 of its decoded pixels and their shape, so every copy of an id holds the
same picture and any worker may serve any request. make_store(settings) picks where images live:

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
import sqlite3
import struct
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import fields, is_dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

import diskcache
import numpy as np
import redis
from numpy.typing import NDArray
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .errors import ImageNotFound, StoreUnavailable
from .images import FORMATS, DecodedImage
from .settings import Settings

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


class _BytesDisk(diskcache.Disk):
    """diskcache's (de)serialiser limited to str keys and bytes values, so it never unpickles.

    diskcache pickles anything else, and would unpickle whatever row says it is a pickle; here any
    value that is not plain bytes reads as b"", which decode_image rejects, so the entry is deleted.
    """

    def put(self, key: Any) -> tuple[Any, bool]:
        if type(key) is not str:
            raise TypeError(f"image store keys are str, got {type(key).__name__}")
        return super().put(key)

    def get(self, key: Any, raw: bool) -> Any:
        if not raw:
            raise OSError("image store: a pickled key; not read")
        return super().get(key, raw)

    def store(self, value: Any, read: bool, key: Any = diskcache.UNKNOWN) -> Any:
        if type(value) is not bytes:
            raise TypeError(f"image store values are bytes, got {type(value).__name__}")
        return super().store(value, read, key=key)

    def fetch(self, mode: int, filename: str | None, value: Any, read: bool) -> Any:
        if mode not in (diskcache.core.MODE_RAW, diskcache.core.MODE_BINARY) or read:
            return b""  # a pickle, text or file handle: not opened
        data = super().fetch(mode, filename, value, read)
        return data if type(data) is bytes else b""


_DISK_ERRORS = (diskcache.Timeout, sqlite3.Error, OSError)


class DiskImageStore(_SharedImageStore):
    """Images in a diskcache directory: LRU, at most max_bytes on disk, shared by every process that opens it.

    Each image is one file (so its size is counted exactly); SQLite indexes them with their last use.
    Reopening the directory, in this process or another, finds everything still there.
    """

    def __init__(self, directory: str | Path, max_bytes: int, memory_bytes: int = 0, timeout: float = 10.0
                 ) -> None:
        if max_bytes < 1:
            raise ValueError(f"`max_bytes` must be >= 1, got {max_bytes}")
        super().__init__(memory_bytes)
        self.max_bytes = max_bytes
        self._disk = diskcache.Cache(
            str(directory), timeout=timeout, disk=_BytesDisk,
            size_limit=max_bytes,
            eviction_policy="least-recently-used",  # a read marks the image as used
            cull_limit=1,  # a write over the limit evicts the least recently used image; _evict does more
            disk_min_file_size=0,  # every value in its own file, so diskcache counts its bytes
            statistics=False, tag_index=False,
        )

    def _load(self, key: str) -> bytes | None:
        try:
            blob = self._disk.get(key)
        except _DISK_ERRORS as err:
            raise StoreUnavailable(f"image store at {self._disk.directory}: {err}") from err
        return blob if isinstance(blob, bytes) else None

    def _save(self, key: str, blob: bytes) -> None:
        if len(blob) > self.max_bytes:
            return  # alone larger than the store: it would only evict everything, itself included
        try:
            self._disk.set(key, blob)
            self._evict()
        except _DISK_ERRORS as err:
            raise StoreUnavailable(f"image store at {self._disk.directory}: {err}") from err

    def _evict(self) -> None:
        """Evict the least recently used images, one at a time, until the store is within max_bytes.

        diskcache's own cull() removes ten at a time, far too many when each image is several MiB, so
        this reads diskcache's index (table Cache, unchanged since diskcache 3) for one victim at a time.
        """
        while self._disk.volume() > self.max_bytes:
            rows = self._disk._sql("SELECT key FROM Cache ORDER BY access_time LIMIT 1").fetchall()
            if not rows:
                return
            self._disk.delete(rows[0][0])

    def _has(self, key: str) -> bool:
        try:
            return key in self._disk
        except _DISK_ERRORS as err:
            raise StoreUnavailable(f"image store at {self._disk.directory}: {err}") from err

    def _discard(self, key: str) -> None:
        try:
            self._disk.delete(key)
        except _DISK_ERRORS as err:
            log.warning("image store: could not delete %s (%s)", key, err)

    def __len__(self) -> int:
        return len(self._disk)

    @property
    def nbytes(self) -> int:
        """Bytes on disk now: the image files and the SQLite index."""
        return int(self._disk.volume())

    def close(self) -> None:
        """Close this process's SQLite connections; the directory stays."""
        self._disk.close()


class RedisImageStore(_SharedImageStore):
    """Images in Redis under `convlens:image:<id>`, each expiring ttl_seconds after its last upload or read.

    Redis bounds its memory itself (maxmemory, maxmemory-policy volatile-lru); see the module docstring.
    """

    PREFIX = "convlens:image:"

    def __init__(self, client: redis.Redis, ttl_seconds: int, memory_bytes: int = 0) -> None:
        if ttl_seconds < 1:
            raise ValueError(f"`ttl_seconds` must be >= 1, got {ttl_seconds}")
        super().__init__(memory_bytes)
        self.ttl_seconds = ttl_seconds
        self._redis = client

    def _call(self, command: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except redis.RedisError as err:
            raise StoreUnavailable(f"image store in Redis: {err}") from err

    def _load(self, key: str) -> bytes | None:
        blob = self._call(self._redis.getex, self.PREFIX + key, ex=self.ttl_seconds)
        return blob if isinstance(blob, bytes) else None

    def _save(self, key: str, blob: bytes) -> None:
        self._call(self._redis.set, self.PREFIX + key, blob, ex=self.ttl_seconds)

    def _has(self, key: str) -> bool:
        return bool(self._call(self._redis.exists, self.PREFIX + key))

    def _discard(self, key: str) -> None:
        try:
            self._redis.delete(self.PREFIX + key)
        except redis.RedisError as err:
            log.warning("image store: could not delete %s (%s)", key, err)

    def _keys(self) -> list[bytes]:
        return list(self._call(lambda: list(self._redis.scan_iter(match=self.PREFIX + "*", count=1000))))

    def __len__(self) -> int:
        """Images in Redis now (scans every key: for tests and diagnostics)."""
        return len(self._keys())

    @property
    def nbytes(self) -> int:
        """Bytes of image entries in Redis now (scans every key: for tests and diagnostics)."""
        pipe = self._redis.pipeline(transaction=False)
        for k in self._keys():
            pipe.strlen(k)
        return sum(int(n) for n in self._call(pipe.execute))

    def close(self) -> None:
        """Close the connection pool."""
        self._redis.close()


def make_store(settings: Settings) -> ImageStore:
    """The image store the settings ask for: Redis if redis_url is set, else a directory on disk.

    Raises ValueError naming the variable when redis_url, store_dir or store_bytes cannot work.
    """
    if settings.redis_url:
        try:
            client = redis.Redis.from_url(
                settings.redis_url, socket_timeout=10, socket_connect_timeout=5,
                # a command cut off by a dropped connection is tried twice more, within 0.25 s, before a 503
                retry=Retry(ExponentialBackoff(cap=0.25, base=0.02), 2))
        except ValueError as err:
            raise ValueError(f"CONVLENS_REDIS_URL: {err}") from None
        return RedisImageStore(client, settings.redis_ttl_seconds, settings.cache_bytes)
    largest = settings.max_side**2 * 3 + _HEADER.size  # a square working image at max_side
    if settings.store_bytes < largest:
        raise ValueError(
            f"CONVLENS_STORE_BYTES must hold the largest working image (CONVLENS_MAX_SIDE "
            f"{settings.max_side} squared x 3 bytes = {largest:,}), got {settings.store_bytes:,}")
    if not settings.store_dir.strip():
        raise ValueError("CONVLENS_STORE_DIR must name a directory, got an empty string")
    directory = Path(settings.store_dir).expanduser()
    try:
        return DiskImageStore(directory, settings.store_bytes, settings.cache_bytes)
    except (OSError, sqlite3.Error) as err:
        raise ValueError(f"CONVLENS_STORE_DIR={settings.store_dir!r} cannot hold the image store ({err})"
                         ) from None


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
