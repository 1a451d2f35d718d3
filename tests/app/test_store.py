"""app/store.py: content-addressed ids, byte-bounded LRU, thread safety, compute-once outputs, the disk store.

The Redis store has its own file, test_store_redis.py, since it needs a redis-server.
"""

from __future__ import annotations

import multiprocessing
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import diskcache
import numpy as np
import pytest
from apphelp import make_pixels

from app.images import DecodedImage
from app.outputs import OutputCache, make_outputs, nbytes
from app.settings import Settings
from app.store import ImageNotFound, ImageStore, LRUCache, decode_image, encode_image, image_id
from app.store_backends import DiskImageStore, make_store


def _image(seed: int, side: int = 10) -> DecodedImage:
    return DecodedImage(make_pixels(side, side, seed), (side, side))


def test_id_is_sha256_of_pixels_and_stable() -> None:
    a, b = _image(0), _image(0)
    assert image_id(a.pixels) == image_id(b.pixels)
    assert len(image_id(a.pixels)) == 64
    assert image_id(a.pixels) != image_id(_image(1).pixels)


def test_id_depends_on_shape() -> None:
    px = np.zeros((4, 6, 3), np.uint8)
    assert image_id(px) != image_id(px.reshape(6, 4, 3))


def test_put_get() -> None:
    store = ImageStore(10_000)
    img = _image(0)
    key = store.put(img)
    assert store.get(key) is img and key in store and len(store) == 1


def test_get_unknown_is_none_and_require_raises() -> None:
    store = ImageStore(10_000)
    assert store.get("0" * 64) is None
    with pytest.raises(ImageNotFound):
        store.require("0" * 64)


def test_lru_evicts_least_recently_used_by_bytes() -> None:
    store = ImageStore(3 * (300 + 256))  # room for three 10x10x3 images
    keys = [store.put(_image(i)) for i in range(3)]
    store.get(keys[0])  # 0 is now the most recent
    k3 = store.put(_image(3))
    assert keys[0] in store and keys[1] not in store and keys[2] in store and k3 in store
    assert store.nbytes <= 3 * (300 + 256)


def test_item_larger_than_cache_not_stored() -> None:
    store = ImageStore(100)
    key = store.put(_image(0))
    assert store.get(key) is None and store.nbytes == 0


def test_put_same_image_twice_counts_once() -> None:
    store = ImageStore(10_000)
    store.put(_image(0))
    store.put(_image(0))
    assert len(store) == 1 and store.nbytes == 300 + 256


def test_lru_cache_rejects_bad_size() -> None:
    with pytest.raises(ValueError, match="`max_bytes`"):
        LRUCache(0, len)


def test_concurrent_puts_keep_byte_bound() -> None:
    store = ImageStore(20 * (300 + 256))
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: store.put(_image(i)), range(200)))
    assert store.nbytes <= 20 * (300 + 256) and len(store) == 20


def test_output_cache_computes_once_under_concurrency() -> None:
    cache = OutputCache(1 << 20)
    calls = 0
    lock = threading.Lock()

    def compute() -> np.ndarray:
        nonlocal calls
        with lock:
            calls += 1
        time.sleep(0.05)
        return np.ones(10)

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: cache.get_or_compute(("k",), compute), range(8)))
    assert calls == 1 and all(r is results[0] for r in results)


def test_output_cache_distinct_keys() -> None:
    cache = OutputCache(1 << 20)
    assert cache.get_or_compute(("a",), lambda: 1) == 1
    assert cache.get_or_compute(("b",), lambda: 2) == 2
    assert cache.get_or_compute(("a",), lambda: 3) == 1


def test_output_cache_failed_compute_leaves_no_lock_and_retries() -> None:
    cache = OutputCache(1 << 20)

    def boom() -> int:
        raise ValueError("no")

    with pytest.raises(ValueError):
        cache.get_or_compute(("k",), boom)
    assert cache._locks == {}
    assert cache.get_or_compute(("k",), lambda: 5) == 5


def test_nbytes_counts_arrays_in_dataclasses_and_png_bytes() -> None:
    img = _image(0)
    assert nbytes(img) >= img.pixels.nbytes
    assert nbytes((b"x" * 1000, {"X-Value-Min": "0"})) >= 1000
    assert nbytes([np.zeros(100, np.float32), np.zeros(10)]) >= 480


def test_output_cache_bounded_by_array_bytes() -> None:
    cache = OutputCache(10_000)
    for i in range(20):
        cache.get_or_compute((i,), lambda: (np.zeros(1000, np.float32), b"p" * 100))
    assert len(cache) == 2  # each value is ~4.3 kB


# ---------------------------------------------------------------- entries of the shared stores

def test_encode_decode_roundtrip_keeps_pixels_and_metadata() -> None:
    img = DecodedImage(make_pixels(5, 7), (70, 50), "JPEG")
    key = image_id(img.pixels)
    out = decode_image(encode_image(img), key)
    assert out is not None and (out.original_size, out.format) == ((70, 50), "JPEG")
    np.testing.assert_array_equal(out.pixels, img.pixels)
    assert not out.pixels.flags.writeable  # a view of the stored bytes


def test_decode_rejects_pixels_that_do_not_hash_to_the_id() -> None:
    img = _image(0)
    blob = bytearray(encode_image(img))
    blob[-1] ^= 1  # one flipped bit in the last pixel
    assert decode_image(bytes(blob), image_id(img.pixels)) is None


@pytest.mark.parametrize("cut", [0, 10, 36, -1])
def test_decode_rejects_truncated_entries(cut: int) -> None:
    img = _image(0)
    assert decode_image(encode_image(img)[:cut], image_id(img.pixels)) is None


def test_decode_rejects_other_bytes() -> None:
    img = _image(0)
    blob = encode_image(img)
    assert decode_image(b"X" + blob[1:], image_id(img.pixels)) is None  # not our magic
    assert decode_image(b"\x80\x04K\x01." + blob[5:], image_id(img.pixels)) is None  # a pickle


# ---------------------------------------------------------------- the disk store

ENTRY = 30 * 30 * 3 + 36  # bytes of one 30x30 image entry on disk


def _big(seed: int) -> DecodedImage:
    return _image(seed, side=30)


OpenDisk = Callable[..., DiskImageStore]


@pytest.fixture
def disk() -> Iterator[OpenDisk]:
    """Opens DiskImageStore(path, max_bytes=1 GiB, memory_bytes=0) and closes them after the test."""
    opened: list[DiskImageStore] = []

    def open_store(path: Path, max_bytes: int = 1 << 30, memory_bytes: int = 0) -> DiskImageStore:
        store = DiskImageStore(path, max_bytes, memory_bytes)
        opened.append(store)
        return store

    yield open_store
    for store in opened:
        store.close()


def test_disk_put_get_require(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path)
    img = DecodedImage(make_pixels(6, 9), (18, 12), "WEBP")
    key = store.put(img)
    assert key == image_id(img.pixels) and key in store and len(store) == 1
    out = store.require(key)
    np.testing.assert_array_equal(out.pixels, img.pixels)
    assert (out.original_size, out.format) == ((18, 12), "WEBP")
    with pytest.raises(ImageNotFound):
        store.require("0" * 64)


def test_disk_store_survives_a_restart(disk: OpenDisk, tmp_path: Path) -> None:
    first = disk(tmp_path)
    key = first.put(_image(3))
    first.close()
    again = disk(tmp_path)  # a new process opening the same directory
    out = again.get(key)
    assert out is not None and key in again
    np.testing.assert_array_equal(out.pixels, _image(3).pixels)


def _put_in_child(directory: str, seed: int) -> str:
    """Runs in a spawned process: store one image and return its id."""
    store = DiskImageStore(directory, 1 << 30)
    try:
        return store.put(_image(seed))
    finally:
        store.close()


def _get_in_child(directory: str, key: str) -> bytes | None:
    """Runs in a spawned process: the stored pixels' bytes, or None."""
    store = DiskImageStore(directory, 1 << 30)
    try:
        img = store.get(key)
        return None if img is None else img.pixels.tobytes()
    finally:
        store.close()


def test_two_processes_see_each_others_puts(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path)
    mine = store.put(_image(1))
    with multiprocessing.get_context("spawn").Pool(2) as pool:
        theirs = pool.apply(_put_in_child, (str(tmp_path), 2))
        seen = pool.apply(_get_in_child, (str(tmp_path), mine))
    assert seen == _image(1).pixels.tobytes()
    out = store.get(theirs)
    assert out is not None
    np.testing.assert_array_equal(out.pixels, _image(2).pixels)


def test_disk_lru_evicts_least_recently_used_by_bytes(disk: OpenDisk, tmp_path: Path) -> None:
    index = disk(tmp_path / "empty").nbytes  # SQLite's own pages
    limit = index + 3 * ENTRY + ENTRY // 2  # room for three entries
    store = disk(tmp_path / "store", limit)
    keys = [store.put(_big(i)) for i in range(3)]
    time.sleep(0.01)
    assert store.get(keys[0]) is not None  # 0 is now the most recent
    k3 = store.put(_big(3))
    assert [k in store for k in keys] == [True, False, True] and k3 in store
    assert store.nbytes <= limit


def test_disk_eviction_makes_room_for_a_larger_image(disk: OpenDisk, tmp_path: Path) -> None:
    index = disk(tmp_path / "empty").nbytes
    limit = index + 4 * ENTRY
    store = disk(tmp_path / "store", limit)
    keys = [store.put(_big(i)) for i in range(4)]
    wide = store.put(DecodedImage(make_pixels(30, 75), (75, 30)))  # 2.5 entries' worth
    assert wide in store and store.nbytes <= limit
    assert keys[-1] in store and keys[0] not in store


def test_disk_image_larger_than_the_store_not_stored(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path, 100)
    key = store.put(_image(0))
    assert store.get(key) is None and len(store) == 0


def test_disk_corrupt_entry_is_a_miss_and_deleted(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path)
    key = store.put(_big(0))
    (entry,) = tmp_path.rglob("*.val")  # diskcache keeps each value in its own file
    entry.write_bytes(entry.read_bytes()[:-100])  # truncated, as by a full disk
    again = disk(tmp_path)
    assert again.get(key) is None and key not in again
    again.put(_big(0))  # uploading again repairs it
    assert again.get(key) is not None


def test_disk_flipped_bit_is_a_miss(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path)
    key = store.put(_big(0))
    (entry,) = tmp_path.rglob("*.val")
    data = bytearray(entry.read_bytes())
    data[500] ^= 0x10
    entry.write_bytes(bytes(data))
    assert store.get(key) is None


class _Trap:
    """Unpickling this touches a file: the store must never do it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[object, ...]]:
        return (Path.touch, (self.marker,))


def test_disk_never_unpickles_an_entry(disk: OpenDisk, tmp_path: Path) -> None:
    key = image_id(_image(0).pixels)
    marker = tmp_path / "unpickled"
    with diskcache.Cache(str(tmp_path / "store")) as plain:  # someone else's writer pickles values
        plain.set(key, _Trap(marker))
        plain.set(image_id(_image(1).pixels), {"a": 1})
    store = disk(tmp_path / "store")
    assert store.get(key) is None and store.get(image_id(_image(1).pixels)) is None
    assert not marker.exists()
    assert key not in store  # the foreign entry was deleted


def test_disk_refuses_to_store_anything_but_bytes(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path)
    with pytest.raises(TypeError, match="bytes"):
        store._disk.set("k", {"a": 1})


def test_disk_memory_tier_serves_repeated_gets(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path, memory_bytes=1 << 20)
    key = store.put(_image(0))
    first = store.get(key)
    assert first is store.get(key)  # the same object: not read from disk again
    other = disk(tmp_path)  # no memory tier: each get reads the disk
    a, b = other.get(key), other.get(key)
    assert a is not None and b is not None and a is not b


def test_disk_ids_that_cannot_be_ids_are_misses(disk: OpenDisk, tmp_path: Path) -> None:
    store = disk(tmp_path)
    for key in ("", "../../etc/passwd", "A" * 64, "0" * 63):
        assert store.get(key) is None and key not in store


def test_disk_concurrent_puts_keep_byte_bound(disk: OpenDisk, tmp_path: Path) -> None:
    index = disk(tmp_path / "empty").nbytes
    limit = index + 10 * ENTRY
    store = disk(tmp_path / "store", limit)
    with ThreadPoolExecutor(8) as pool:
        keys = list(pool.map(lambda i: store.put(_big(i)), range(40)))
    assert store.nbytes <= limit and 1 <= len(store) <= 10
    assert sum(k in store for k in keys) == len(store)


# ---------------------------------------------------------------- the factories

def test_make_store_defaults_to_disk_in_store_dir(tmp_path: Path) -> None:
    store = make_store(Settings(store_dir=str(tmp_path / "images")))
    assert isinstance(store, DiskImageStore) and isinstance(store, ImageStore)
    key = store.put(_image(0))
    assert (tmp_path / "images").is_dir() and key in store
    store.close()


def test_make_store_expands_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    store = make_store(Settings(store_dir="~/cache"))
    assert (tmp_path / "cache").is_dir()
    store.close()


def test_make_store_empty_dir_names_the_variable() -> None:
    with pytest.raises(ValueError, match="CONVLENS_STORE_DIR"):
        make_store(Settings(store_dir=" "))


def test_make_store_unusable_dir_names_the_variable(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    with pytest.raises(ValueError, match="CONVLENS_STORE_DIR"):
        make_store(Settings(store_dir=str(tmp_path / "file" / "images")))


def test_make_store_too_small_for_one_image_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="CONVLENS_STORE_BYTES"):
        make_store(Settings(store_dir=str(tmp_path), store_bytes=1_000_000))


def test_make_store_bad_redis_url_names_the_variable() -> None:
    with pytest.raises(ValueError, match="CONVLENS_REDIS_URL"):
        make_store(Settings(redis_url="http://localhost:6379"))


def test_default_output_cache_holds_the_largest_output() -> None:
    settings = Settings()
    cache = make_outputs(settings)
    assert cache.max_bytes >= 4 * settings.max_output_values + (1 << 20)


def test_output_cache_keeps_an_output_of_the_largest_size() -> None:
    settings = Settings(max_output_values=100_000, output_cache_bytes=400_000 + (1 << 20))
    cache = make_outputs(settings)
    y = cache.get_or_compute(("output",), lambda: (np.zeros(100_000, np.float32), np.zeros(16, np.float32)))
    assert len(cache) == 1 and cache.get_or_compute(("output",), lambda: None) is y


def test_output_cache_too_small_names_the_variable() -> None:
    with pytest.raises(ValueError, match="CONVLENS_OUTPUT_CACHE_BYTES"):
        make_outputs(Settings(output_cache_bytes=256 * 1024 * 1024))
