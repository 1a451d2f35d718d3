"""max_pool2d, avg_pool2d and their backward passes against plain loops, finite differences
and, where it is installed, PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from reference import (
    avg_pool2d_backward_ref,
    avg_pool2d_ref,
    central_difference,
    max_pool2d_backward_ref,
    max_pool2d_ref,
    pool_out_size,
)

from engine import (
    ArgumentError,
    ArgumentTypeError,
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    pool_output_shape,
)
from engine.pool import windows_miss_input


@dataclass(frozen=True)
class PoolCase:
    c: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]
    ceil_mode: bool
    count_include_pad: bool

    def max_args(self) -> dict[str, object]:
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding,
                "dilation": self.dilation, "ceil_mode": self.ceil_mode}

    def avg_args(self) -> dict[str, object]:
        return {"kernel_size": self.kernel, "stride": self.stride, "padding": self.padding,
                "ceil_mode": self.ceil_mode, "count_include_pad": self.count_include_pad}

    def fits(self, dilated: bool) -> bool:
        d = self.dilation if dilated else (1, 1)
        for n, k, s, p, dd in zip((self.h, self.w), self.kernel, self.stride, self.padding, d, strict=True):
            out = pool_out_size(n, k, s, p, dd, self.ceil_mode)
            if out < 1 or (dilated and windows_miss_input(n, k, s, p, dd, out)):
                return False
        return True


def _random_cases(count: int, seed: int) -> list[PoolCase]:
    """Kernels 1-4 per axis, strides 1-3, padding 0..k//2, dilation 1-2, ceil_mode and
    count_include_pad both ways, sizes 1-9; only those where some window fits."""
    rng = np.random.default_rng(seed)
    cases: list[PoolCase] = []
    while len(cases) < count:
        kh, kw = (int(v) for v in rng.integers(1, 5, 2))
        case = PoolCase(
            int(rng.integers(1, 3)), int(rng.integers(1, 10)), int(rng.integers(1, 10)), (kh, kw),
            (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
            (int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))),
            (int(rng.integers(1, 3)), int(rng.integers(1, 3))),
            bool(rng.integers(0, 2)), bool(rng.integers(0, 2)),
        )
        if case.fits(True) and case.fits(False):
            cases.append(case)
    return cases


CASES = [
    PoolCase(2, 7, 6, (3, 2), (2, 1), (1, 1), (1, 2), False, True),
    PoolCase(1, 5, 5, (3, 3), (3, 3), (1, 1), (1, 1), True, True),  # ceil_mode drops a window
    PoolCase(1, 4, 9, (3, 2), (2, 3), (1, 0), (1, 1), True, False),  # a window past H + p
    PoolCase(3, 8, 5, (2, 4), (1, 2), (0, 2), (2, 1), True, True),
] + _random_cases(40, seed=7)


def _id(case: PoolCase) -> str:
    return (f"C{case.c}-{case.h}x{case.w}-k{case.kernel}-s{case.stride}-p{case.padding}-d{case.dilation}"
            f"-{'ceil' if case.ceil_mode else 'floor'}-{'incl' if case.count_include_pad else 'excl'}")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_max_pool_matches_loops_with_ties(case: PoolCase) -> None:
    # Small integers make ties common, so the first-maximum rule is exercised.
    rng = np.random.default_rng(1)
    x = rng.integers(-2, 3, (case.c, case.h, case.w)).astype(np.float64)
    y = max_pool2d(x, **case.max_args())  # type: ignore[arg-type]
    ref, _ = max_pool2d_ref(x, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    np.testing.assert_array_equal(y, ref)
    go = rng.standard_normal(y.shape)
    gx = max_pool2d_backward(x, go, **case.max_args())  # type: ignore[arg-type]
    np.testing.assert_allclose(gx, max_pool2d_backward_ref(x, go, case.kernel, case.stride, case.padding,
                                                           case.dilation, case.ceil_mode), atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_avg_pool_matches_loops(case: PoolCase) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((case.c, case.h, case.w))
    y = avg_pool2d(x, **case.avg_args())  # type: ignore[arg-type]
    ref = avg_pool2d_ref(x, case.kernel, case.stride, case.padding, case.ceil_mode, case.count_include_pad)
    np.testing.assert_allclose(y, ref, atol=1e-12)
    go = rng.standard_normal(y.shape)
    gx = avg_pool2d_backward(x, go, **case.avg_args())  # type: ignore[arg-type]
    ref_g = avg_pool2d_backward_ref(x, go, case.kernel, case.stride, case.padding, case.ceil_mode,
                                    case.count_include_pad)
    np.testing.assert_allclose(gx, ref_g, atol=1e-12)


@pytest.mark.parametrize("case", CASES[:12], ids=_id)
def test_backward_passes_match_finite_differences(case: PoolCase) -> None:
    rng = np.random.default_rng(3)
    # Distinct, well-separated values: no ties, so max pooling is differentiable here.
    x = rng.permutation(case.c * case.h * case.w).reshape(case.c, case.h, case.w).astype(np.float64)
    go = rng.standard_normal(max_pool2d(x, **case.max_args()).shape)  # type: ignore[arg-type]
    numeric = central_difference(lambda: float((max_pool2d(x, **case.max_args()) * go).sum()), x, 1e-3)  # type: ignore[arg-type]
    np.testing.assert_allclose(max_pool2d_backward(x, go, **case.max_args()), numeric, atol=1e-6)  # type: ignore[arg-type]
    go = rng.standard_normal(avg_pool2d(x, **case.avg_args()).shape)  # type: ignore[arg-type]
    numeric = central_difference(lambda: float((avg_pool2d(x, **case.avg_args()) * go).sum()), x, 1e-3)  # type: ignore[arg-type]
    np.testing.assert_allclose(avg_pool2d_backward(x, go, **case.avg_args()), numeric, atol=1e-6)  # type: ignore[arg-type]


def test_ceil_mode_last_window_must_start_inside_the_input_or_left_padding() -> None:
    # n = 5, k = 3, s = 3, p = 1: ceil((5 + 2 - 3) / 3) + 1 = 3, but window 2 would start at
    # 2 * 3 - 1 = 5 = n, on the right padding: PyTorch drops it.
    assert pool_output_shape((5, 5), 3, 3, 1, ceil_mode=True) == (2, 2)
    assert pool_output_shape((5, 5), 3, 3, 1, ceil_mode=False) == (2, 2)
    # n = 5, k = 2, s = 2: ceil gives a third window, starting at row 4 inside the input.
    assert pool_output_shape((5, 4), 2, ceil_mode=True) == (3, 2)
    assert pool_output_shape((5, 4), 2) == (2, 2)


def test_avg_divisor_hand_worked() -> None:
    x = np.ones((1, 5, 5))
    # Corners read 4 real pixels of a 3x3 window that lies inside the padded extent: 4/9.
    y = avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=True)
    np.testing.assert_allclose(y[0], [[4 / 9, 6 / 9, 4 / 9], [6 / 9, 1, 6 / 9], [4 / 9, 6 / 9, 4 / 9]])
    np.testing.assert_allclose(avg_pool2d(x, 3, 2, 1, True, False), np.ones((1, 3, 3)))
    # n = 4, k = 3, s = 2, p = 1, ceil: the last window covers rows 3, 4, 5 but the padded extent
    # ends at n + p = 5, so its divisor counts rows 3 and 4 only: 1 real row out of 2.
    y = avg_pool2d(np.ones((1, 4, 1)), (3, 1), (2, 1), (1, 0), ceil_mode=True)
    np.testing.assert_allclose(y[0, :, 0], [2 / 3, 1, 1 / 2])


def test_max_pool_pads_with_minus_infinity() -> None:
    x = -np.arange(1.0, 10.0).reshape(1, 3, 3) - 5  # all negative: zero padding would win
    y = max_pool2d(x, 3, 1, 1)
    assert y.max() < 0
    assert y[0, 0, 0] == -6.0  # the window's real pixels -6, -7, -9, -10


def test_max_pool_gradient_goes_to_the_first_maximum() -> None:
    x = np.array([[[1.0, 3.0, 3.0], [3.0, 0.0, 3.0], [1.0, 1.0, 1.0]]])
    gx = max_pool2d_backward(x, np.ones((1, 3, 3)), 3, 1, 1)
    # Windows centred on row 0 and row 1 take the 3 at (0, 1) first in scan order, except those
    # that cannot see it; PyTorch's CPU kernel gives the same (test_matches_torch).
    np.testing.assert_array_equal(gx, [[[0, 6, 0], [2, 0, 1], [0, 0, 0]]])


def test_stride_defaults_to_the_kernel() -> None:
    x = np.arange(36.0).reshape(1, 6, 6)
    np.testing.assert_array_equal(max_pool2d(x, (2, 3)), max_pool2d(x, (2, 3), (2, 3)))
    np.testing.assert_array_equal(avg_pool2d(x, 2), avg_pool2d(x, 2, 2))
    assert max_pool2d(x, (2, 3)).shape == (1, 3, 2)


def test_dtypes() -> None:
    x = np.ones((2, 4, 4), dtype=np.float32)
    assert max_pool2d(x, 2).dtype == np.float32
    assert avg_pool2d(x, 2).dtype == np.float32
    assert max_pool2d_backward(x, np.ones((2, 2, 2)), 2).dtype == np.float32
    assert avg_pool2d_backward(x, np.ones((2, 2, 2)), 2).dtype == np.float32
    assert max_pool2d(x.astype(np.float64), 2).dtype == np.float64


def test_a_window_on_padding_only_is_minus_infinity_as_in_torch() -> None:
    # Width 1, kernel 2 dilated by 2 with padding 1: the taps land on columns -1 and 1.
    y = max_pool2d(np.ones((1, 3, 1)), 2, (3, 2), (0, 1), (1, 2))
    assert y.shape == (1, 1, 1) and y[0, 0, 0] == -np.inf
    assert windows_miss_input(1, 2, 2, 1, 2, 1)
    g = max_pool2d_backward(np.ones((1, 3, 1)), np.ones((1, 1, 1)), 2, (3, 2), (0, 1), (1, 2))
    np.testing.assert_array_equal(g, np.zeros((1, 3, 1)))


# ---- errors ---------------------------------------------------------------------------------

def _raises(argument: str, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ArgumentError, ArgumentTypeError), match=f"`{argument}`") as info:
        fn(*args, **kwargs)
    assert info.value.argument == argument


def test_padding_over_half_the_kernel() -> None:
    _raises("padding", max_pool2d, np.ones((1, 5, 5)), 3, 1, 2)


def test_padding_over_half_the_kernel_avg() -> None:
    _raises("padding", avg_pool2d, np.ones((1, 5, 5)), (3, 2), 1, (1, 2))


def test_padding_negative() -> None:
    _raises("padding", max_pool2d, np.ones((1, 5, 5)), 3, 1, -1)


def test_kernel_larger_than_input() -> None:
    _raises("kernel_size", max_pool2d, np.ones((1, 2, 5)), 3)


def test_dilation_spreads_past_the_input() -> None:
    _raises("dilation", max_pool2d, np.ones((1, 4, 5)), 2, 1, 0, 4)


def test_kernel_zero() -> None:
    _raises("kernel_size", avg_pool2d, np.ones((1, 4, 4)), 0)


def test_stride_zero() -> None:
    _raises("stride", max_pool2d, np.ones((1, 4, 4)), 2, 0)


def test_ceil_mode_not_bool() -> None:
    _raises("ceil_mode", max_pool2d, np.ones((1, 4, 4)), 2, ceil_mode=1)


def test_count_include_pad_not_bool() -> None:
    _raises("count_include_pad", avg_pool2d, np.ones((1, 4, 4)), 2, count_include_pad="yes")


def test_x_two_dimensional() -> None:
    _raises("x", max_pool2d, np.ones((4, 4)), 2)


def test_x_nan() -> None:
    x = np.ones((1, 4, 4))
    x[0, 1, 1] = np.nan
    _raises("x", avg_pool2d, x, 2)


def test_grad_out_wrong_shape() -> None:
    _raises("grad_out", max_pool2d_backward, np.ones((1, 4, 4)), np.ones((1, 3, 2)), 2)


def test_grad_out_wrong_shape_avg() -> None:
    _raises("grad_out", avg_pool2d_backward, np.ones((2, 4, 4)), np.ones((1, 2, 2)), 2)


# ---- PyTorch --------------------------------------------------------------------------------

@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_torch(case: PoolCase) -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    rng = np.random.default_rng(4)
    x = rng.integers(-2, 3, (case.c, case.h, case.w)).astype(np.float64)
    xt = torch.from_numpy(x)[None].requires_grad_(True)
    yt = functional.max_pool2d(xt, case.kernel, case.stride, case.padding, case.dilation, case.ceil_mode)
    y = max_pool2d(x, **case.max_args())  # type: ignore[arg-type]
    np.testing.assert_array_equal(y, yt.detach().numpy()[0])
    go = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(go)[None])
    np.testing.assert_allclose(max_pool2d_backward(x, go, **case.max_args()), xt.grad.numpy()[0],  # type: ignore[arg-type]
                               atol=1e-12)
    xt = torch.from_numpy(x)[None].requires_grad_(True)
    yt = functional.avg_pool2d(xt, case.kernel, case.stride, case.padding, case.ceil_mode,
                               case.count_include_pad)
    y = avg_pool2d(x, **case.avg_args())  # type: ignore[arg-type]
    np.testing.assert_allclose(y, yt.detach().numpy()[0], atol=1e-12)
    go = rng.standard_normal(y.shape)
    yt.backward(torch.from_numpy(go)[None])
    np.testing.assert_allclose(avg_pool2d_backward(x, go, **case.avg_args()), xt.grad.numpy()[0],  # type: ignore[arg-type]
                               atol=1e-12)


def test_torch_refuses_what_the_engine_refuses() -> None:
    torch = pytest.importorskip("torch")
    with pytest.raises(RuntimeError, match="pad"):
        torch.nn.functional.max_pool2d(torch.ones(1, 1, 5, 5), 3, 1, 2)
    _raises("padding", max_pool2d, np.ones((1, 5, 5)), 3, 1, 2)
    y = torch.nn.functional.max_pool2d(torch.ones(1, 1, 5, 5), 3, 3, 1, ceil_mode=True)
    assert tuple(y.shape[2:]) == pool_output_shape((5, 5), 3, 3, 1, ceil_mode=True)
