"""kernel_bank and spread_kernels: presets as (J, C/groups, kh, kw) conv weights."""

from __future__ import annotations

import numpy as np
import pytest

from engine import conv2d, preset
from engine.kernels import kernel_bank, spread_kernels


def test_kernel_bank_shape_and_values() -> None:
    w = kernel_bank(["sobel_x", "box"], (3, 5), in_channels=3)
    assert w.shape == (2, 3, 3, 5)
    np.testing.assert_allclose(w[0, 1], preset("sobel_x", (3, 5)) / 3)
    np.testing.assert_allclose(w[1].sum(), 1.0)


def test_spread_kernels_acts_on_channel_mean() -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 7, 6))
    k = rng.standard_normal((2, 3, 2))
    y = conv2d(x, spread_kernels(k, 3))
    y_mean = conv2d(x.mean(axis=0, keepdims=True), k[:, None])
    np.testing.assert_allclose(y, y_mean, rtol=1e-10, atol=1e-12)


def test_random_kernels_differ_by_position() -> None:
    w = kernel_bank(["random", "random"], 3, seed=5)
    assert not np.allclose(w[0], w[1])
    np.testing.assert_array_equal(w[0, 0], preset("random", 3, seed=5))


def test_kernel_bank_empty_names_kernels() -> None:
    with pytest.raises(ValueError, match="`kernels`"):
        kernel_bank([], 3)


def test_kernel_bank_unknown_name() -> None:
    with pytest.raises(ValueError, match="`kernels`: unknown preset"):
        kernel_bank(["nope"], 3)


def test_spread_kernels_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`weights`"):
        spread_kernels(np.zeros((3, 3)), 1)


def test_spread_kernels_bad_channels() -> None:
    with pytest.raises(ValueError, match="`in_channels`"):
        spread_kernels(np.zeros((1, 3, 3)), 0)
