"""app/store.py's RedisImageStore against a real redis-server, started here on a free port.

Without /usr/bin/redis-server (CONVLENS_REDIS_SERVER) these tests skip on a user's machine and fail
when the CI environment variable is set, as the browser tests do with chromium.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from apphelp import make_pixels
from live_server import free_port

from app.errors import StoreUnavailable
from app.images import DecodedImage
from app.settings import Settings
from app.store import ImageNotFound, encode_image, image_id
from app.store_backends import RedisImageStore, make_store

REDIS_SERVER = os.environ.get("CONVLENS_REDIS_SERVER", "/usr/bin/redis-server")


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a throwaway redis-server (no persistence) on a free port, stopped after the module."""
    if not Path(REDIS_SERVER).exists():
        reason = (f"{REDIS_SERVER} is missing: install Debian's redis-server (apt-get install redis-server) "
                  "to run the Redis store tests")
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    port = free_port()
    log = tmp_path_factory.mktemp("redis") / "redis.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
            stdout=out, stderr=subprocess.STDOUT,
        )
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                client.ping()
                break
            except redis.ConnectionError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"redis-server did not start:\n{log.read_text()}")
                time.sleep(0.05)
        yield url
    finally:
        client.close()
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def client(redis_url: str) -> Iterator[redis.Redis]:
    """A client of an emptied database."""
    c = redis.Redis.from_url(redis_url)
    c.flushdb()
    yield c
    c.close()


@pytest.fixture
def store(client: redis.Redis) -> Iterator[RedisImageStore]:
    """A store with no memory tier, so every get goes to Redis."""
    s = RedisImageStore(client, ttl_seconds=3600)
    yield s
    s.close()


def _image(seed: int) -> DecodedImage:
    return DecodedImage(make_pixels(10, 12, seed), (24, 20), "GIF")


def test_put_get_require(store: RedisImageStore) -> None:
    img = _image(0)
    key = store.put(img)
    assert key == image_id(img.pixels) and key in store and len(store) == 1
    out = store.require(key)
    assert (out.pixels.tobytes(), out.original_size, out.format) == (img.pixels.tobytes(), (24, 20), "GIF")
    assert store.nbytes == len(encode_image(img))
    with pytest.raises(ImageNotFound):
        store.require("0" * 64)


def test_two_machines_see_each_others_puts(redis_url: str, store: RedisImageStore) -> None:
    other = make_store(Settings(redis_url=redis_url))  # another machine, with its own memory tier
    assert isinstance(other, RedisImageStore)
    theirs = other.put(_image(1))
    mine = store.put(_image(2))
    got = store.get(theirs)
    seen = other.get(mine)
    assert got is not None and seen is not None
    assert got.pixels.tobytes() == _image(1).pixels.tobytes()
    assert seen.pixels.tobytes() == _image(2).pixels.tobytes()
    other.close()


def test_keys_get_the_ttl_and_a_read_refreshes_it(client: redis.Redis, store: RedisImageStore) -> None:
    key = store.put(_image(0))
    name = RedisImageStore.PREFIX + key
    assert 3590 <= client.ttl(name) <= 3600
    client.expire(name, 5)
    assert store.get(key) is not None
    assert client.ttl(name) > 3590


def test_expired_image_is_a_miss(client: redis.Redis) -> None:
    short = RedisImageStore(client, ttl_seconds=1)
    key = short.put(_image(0))
    time.sleep(1.2)
    assert short.get(key) is None and key not in short


def test_corrupt_entry_is_a_miss_and_deleted(client: redis.Redis, store: RedisImageStore) -> None:
    key = store.put(_image(0))
    name = RedisImageStore.PREFIX + key
    client.set(name, encode_image(_image(0))[:-1])
    assert store.get(key) is None and client.exists(name) == 0
    client.set(name, encode_image(_image(1)))  # a valid entry, under another image's id
    assert store.get(key) is None
    store.put(_image(0))  # uploading again repairs it
    assert store.get(key) is not None


def test_memory_tier_serves_repeated_gets(client: redis.Redis) -> None:
    front = RedisImageStore(client, ttl_seconds=60, memory_bytes=1 << 20)
    key = front.put(_image(0))
    client.delete(RedisImageStore.PREFIX + key)  # gone from Redis, still in this process
    assert front.get(key) is not None


def test_unreachable_redis_is_unavailable_not_a_miss() -> None:
    down = make_store(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StoreUnavailable, match="Redis"):
        down.put(_image(0))
    with pytest.raises(StoreUnavailable):
        down.get(image_id(_image(0).pixels))
    down.close()


def test_ttl_must_be_positive(client: redis.Redis) -> None:
    with pytest.raises(ValueError, match="`ttl_seconds`"):
        RedisImageStore(client, ttl_seconds=0)


def test_counting_an_unreachable_redis_is_unavailable() -> None:
    down = make_store(Settings(redis_url=f"redis://127.0.0.1:{free_port()}/0"))
    with pytest.raises(StoreUnavailable):
        len(down)
    with pytest.raises(StoreUnavailable):
        _ = down.nbytes
    down.close()


def test_a_dropped_connection_reconnects(redis_url: str, client: redis.Redis) -> None:
    store = make_store(Settings(redis_url=redis_url, cache_bytes=1))  # no memory tier
    key = store.put(_image(0))
    client.client_kill_filter(_type="normal", skipme=True)  # as a Redis restart or an idle timeout would
    assert store.get(key) is not None
    store.close()
