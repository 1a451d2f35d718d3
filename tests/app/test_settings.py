"""app/settings.py: CONVLENS_* variables over typed defaults, and a bad variable named."""

from __future__ import annotations

import pytest

from app.settings import Settings


def test_defaults_without_variables() -> None:
    assert Settings.from_env({}) == Settings()


def test_int_variables_are_read() -> None:
    s = Settings.from_env({"CONVLENS_MAX_PIXELS": "1000", "CONVLENS_STORE_BYTES": "123456789"})
    assert (s.max_pixels, s.store_bytes) == (1000, 123456789)


def test_string_variables_are_read_as_they_are() -> None:
    s = Settings.from_env({"CONVLENS_STORE_DIR": "/var/cache/convlens", "CONVLENS_REDIS_URL": "redis://r:6379/2"})
    assert (s.store_dir, s.redis_url) == ("/var/cache/convlens", "redis://r:6379/2")


def test_empty_redis_url_means_on_disk() -> None:
    assert Settings.from_env({"CONVLENS_REDIS_URL": ""}).redis_url == ""


def test_a_number_that_is_not_an_integer_is_named() -> None:
    with pytest.raises(ValueError, match=r"CONVLENS_STORE_BYTES must be an integer, got '2G'"):
        Settings.from_env({"CONVLENS_STORE_BYTES": "2G"})


def test_a_number_below_one_is_named() -> None:
    with pytest.raises(ValueError, match=r"CONVLENS_REDIS_TTL_SECONDS must be >= 1, got 0"):
        Settings.from_env({"CONVLENS_REDIS_TTL_SECONDS": "0"})


def test_other_variables_are_ignored() -> None:
    assert Settings.from_env({"CONVLENS_NOT_A_SETTING": "x", "HOME": "/root"}) == Settings()


def test_default_output_cache_holds_the_largest_output_with_its_pngs() -> None:
    # The JSON and the PNG URLs of the largest allowed layer share one computed output. (The engine
    # input is cached too, but it is cheap to make again from the stored pixels, and a cache of
    # most of a GiB per process made bench/load.py 10-20% slower.)
    s = Settings()
    largest_output = 4 * s.max_output_values  # float32
    assert s.output_cache_bytes >= largest_output + (32 << 20)
