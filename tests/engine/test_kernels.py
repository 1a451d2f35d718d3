"""Named kernel presets: defined sizes, classic values, sums and symmetry."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from engine import MAX_KERNEL_SIZE, PRESETS, conv2d, preset

NAMES = ["identity", "box", "gaussian", "sobel_x", "sobel_y", "laplacian", "sharpen", "emboss", "random"]
ODD_ONLY = {"identity", "sobel_x", "sobel_y", "laplacian", "sharpen", "emboss"}
MIN_3 = {"sobel_x", "sobel_y", "laplacian", "sharpen"}
SIZES = list(itertools.product(range(1, 8), repeat=2))


def _defined(name: str, k: tuple[int, int]) -> bool:
    if name in ODD_ONLY and (k[0] % 2 == 0 or k[1] % 2 == 0):
        return False
    return not (name in MIN_3 and min(k) < 3)


def test_the_presets_are_the_documented_ones() -> None:
    assert list(PRESETS) == NAMES
    for name, p in PRESETS.items():
        assert p.name == name
        assert p.description and "\n" not in p.description


@pytest.mark.parametrize("name", NAMES)
def test_every_size_from_1_to_7(name: str) -> None:
    for k in SIZES:
        if _defined(name, k):
            out = preset(name, k)
            assert out.shape == k and out.dtype == np.float64, (name, k)
            assert np.isfinite(out).all()
            if k[0] == k[1]:
                np.testing.assert_array_equal(preset(name, k[0]), out)
        else:
            with pytest.raises(ValueError, match="`kernel_size`"):
                preset(name, k)


def test_sobel_x_3x3() -> None:
    np.testing.assert_array_equal(preset("sobel_x", 3), [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def test_sobel_y_3x3_is_the_transpose() -> None:
    np.testing.assert_array_equal(preset("sobel_y", 3), [[-1, -2, -1], [0, 0, 0], [1, 2, 1]])
    for k in (3, 5, 7):
        np.testing.assert_array_equal(preset("sobel_y", k), preset("sobel_x", k).T)
    np.testing.assert_array_equal(preset("sobel_y", (5, 3)), preset("sobel_x", (3, 5)).T)


def test_sobel_5x5_is_smoothed_central_difference() -> None:
    np.testing.assert_array_equal(preset("sobel_x", 5)[2], 6 * np.array([-1, -2, 0, 2, 1]))
    np.testing.assert_array_equal(preset("sobel_x", 5)[:, 4], [1, 4, 6, 4, 1])


@pytest.mark.parametrize("name", ["sobel_x", "sobel_y"])
def test_sobel_is_antisymmetric_and_sums_to_zero(name: str) -> None:
    for k in [(a, b) for a, b in SIZES if _defined(name, (a, b))]:
        out = preset(name, k)
        assert out.sum() == 0
        flipped = out[:, ::-1] if name == "sobel_x" else out[::-1, :]
        np.testing.assert_array_equal(flipped, -out)


def test_sobel_x_responds_positively_to_brightness_rising_to_the_right() -> None:
    ramp = np.tile(np.arange(6, dtype=np.float64), (5, 1))[None]
    y = conv2d(ramp, preset("sobel_x", 3)[None, None])
    assert (y > 0).all()
    y = conv2d(np.transpose(ramp, (0, 2, 1)), preset("sobel_y", 3)[None, None])
    assert (y > 0).all()


def test_laplacian_3x3_classic() -> None:
    np.testing.assert_array_equal(preset("laplacian", 3), [[0, 1, 0], [1, -4, 1], [0, 1, 0]])


@pytest.mark.parametrize("k", [(3, 5), (5, 5), (7, 7), (5, 3), (7, 3)])
def test_larger_laplacian_is_centre_minus_surround(k: tuple[int, int]) -> None:
    out = preset("laplacian", k)
    assert out.sum() == pytest.approx(0, abs=1e-12)
    assert out[k[0] // 2, k[1] // 2] == pytest.approx(-4)
    others = np.delete(out.ravel(), (k[0] // 2) * k[1] + k[1] // 2)
    assert (others > 0).all()
    np.testing.assert_allclose(out, out[::-1, ::-1], atol=1e-15)


def test_sharpen_3x3_classic() -> None:
    np.testing.assert_array_equal(preset("sharpen", 3), [[0, -1, 0], [-1, 5, -1], [0, -1, 0]])
    for k in [(3, 3), (5, 7), (7, 5)]:
        assert preset("sharpen", k).sum() == pytest.approx(1, abs=1e-12)


def test_emboss_3x3_classic() -> None:
    np.testing.assert_array_equal(preset("emboss", 3), [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]])
    assert preset("emboss", 1).tolist() == [[1.0]]


@pytest.mark.parametrize("k", [(a, b) for a, b in SIZES if a % 2 and b % 2])
def test_identity_is_a_centred_one(k: tuple[int, int]) -> None:
    out = preset("identity", k)
    assert out.sum() == 1 and out[k[0] // 2, k[1] // 2] == 1
    x = np.random.default_rng(0).standard_normal((1, 8, 9))
    np.testing.assert_array_equal(conv2d(x, out[None, None], padding=(k[0] // 2, k[1] // 2)), x)


@pytest.mark.parametrize("k", SIZES)
def test_box_sums_to_one_and_is_flat(k: tuple[int, int]) -> None:
    out = preset("box", k)
    assert out.sum() == pytest.approx(1, abs=1e-14)
    assert (out == out[0, 0]).all()


@pytest.mark.parametrize("k", SIZES)
def test_gaussian_sums_to_one_and_is_symmetric(k: tuple[int, int]) -> None:
    out = preset("gaussian", k)
    assert out.sum() == pytest.approx(1, abs=1e-14)
    np.testing.assert_allclose(out, out[::-1, :], atol=1e-15)
    np.testing.assert_allclose(out, out[:, ::-1], atol=1e-15)
    if k[0] == k[1]:
        np.testing.assert_allclose(out, out.T, atol=1e-15)
    assert (out > 0).all()
    # Peak in the middle, falling off towards the edges.
    mid = out[(k[0] - 1) // 2]
    assert np.all(np.diff(mid[: (k[1] + 1) // 2]) >= 0)


def test_random_is_reproducible_by_seed() -> None:
    a = preset("random", (3, 5), seed=7)
    np.testing.assert_array_equal(a, preset("random", (3, 5), seed=7))
    assert not np.array_equal(a, preset("random", (3, 5), seed=8))
    assert a.shape == (3, 5)


def test_random_scale() -> None:
    samples = np.stack([preset("random", 7, seed=s) for s in range(200)])
    # N(0, 1 / (kh kw)): the mean square of 200 * 49 draws is within a few percent of 1/49.
    assert np.mean(samples**2) * 49 == pytest.approx(1, rel=0.1)


def test_kernel_size_at_the_limit() -> None:
    assert preset("box", MAX_KERNEL_SIZE).shape == (MAX_KERNEL_SIZE, MAX_KERNEL_SIZE)


# ---- errors ---------------------------------------------------------------------------------

def test_unknown_name() -> None:
    with pytest.raises(ValueError, match="`kernels`"):
        preset("blur")


def test_unknown_name_lists_the_choices() -> None:
    with pytest.raises(ValueError, match="sobel_x"):
        preset("Sobel_X")


def test_kernel_size_zero() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        preset("box", 0)


def test_kernel_size_over_the_limit() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        preset("box", (3, MAX_KERNEL_SIZE + 1))


def test_kernel_size_not_an_int() -> None:
    with pytest.raises(TypeError, match="`kernel_size`"):
        preset("box", 2.5)  # type: ignore[arg-type]


def test_even_size_for_an_odd_only_preset() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        preset("identity", (3, 4))


def test_too_small_for_a_derivative() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        preset("sobel_x", 1)
