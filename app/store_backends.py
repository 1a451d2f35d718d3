"""The shared image stores, and the factory that picks one: on local disk (diskcache) or in Redis.

See app/store.py for what is stored, how, and why nothing read back is unpickled.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import diskcache
import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .errors import StoreUnavailable
from .settings import Settings
from .store import _HEADER, ImageStore, _SharedImageStore, log


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


