"""app/store.py: content-addressed ids, byte-bounded LRU, thread safety, compute-once outputs."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
from apphelp import make_pixels

from app.images import DecodedImage
from app.store import ImageNotFound, ImageStore, LRUCache, OutputCache, image_id, nbytes


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
