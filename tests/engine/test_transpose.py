"""conv_transpose2d and its backward pass against the scatter loop, the dense route (Mᵀ), conv2d's
input gradient, finite differences and, where it is installed, PyTorch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from reference import central_difference, conv_transpose2d_ref

import engine.conv as conv_module
from engine import (
    ArgumentError,
    conv2d_backward,
    conv_transpose2d,
    conv_transpose2d_backward,
    dense_matrix,
    transpose_arithmetic,
    transpose_output_shape,
)


@dataclass(frozen=True)
class TCase:
    c_in: int
    c_out: int  # total, a multiple of groups
    groups: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    output_padding: tuple[int, int]
    dilation: tuple[int, int]

    def kwargs(self) -> dict[str, object]:
        return {"stride": self.stride, "padding": self.padding, "output_padding": self.output_padding,
                "groups": self.groups, "dilation": self.dilation}

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.c_in, self.h, self.w))
        wt = rng.standard_normal((self.c_in, self.c_out // self.groups, *self.kernel))
        return x, wt, rng.standard_normal(self.c_out)

    @property
    def out_hw(self) -> tuple[int, int]:
        return transpose_output_shape((self.h, self.w), self.kernel, self.stride, self.padding,
                                      self.output_padding, self.dilation)


def _random_cases(count: int, seed: int) -> list[TCase]:
    """Kernels 1-4, strides 1-3, padding 0-2, dilation 1-2, output_padding < max(s, d),
    groups 1-2, sizes 1-6; only cases with an output."""
    rng = np.random.default_rng(seed)
    out: list[TCase] = []
    while len(out) < count:
        g = int(rng.integers(1, 3))
        s = (int(rng.integers(1, 4)), int(rng.integers(1, 4)))
        d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
        case = TCase(
            g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3)), g,
            int(rng.integers(1, 7)), int(rng.integers(1, 7)),
            (int(rng.integers(1, 5)), int(rng.integers(1, 5))), s,
            (int(rng.integers(0, 3)), int(rng.integers(0, 3))),
            (int(rng.integers(0, max(s[0], d[0]))), int(rng.integers(0, max(s[1], d[1])))), d,
        )
        try:
            assert min(case.out_hw) >= 1
        except ArgumentError:
            continue
        out.append(case)
    return out


CASES = [
    TCase(2, 3, 1, 4, 5, (3, 2), (2, 3), (1, 0), (1, 2), (1, 1)),
    TCase(4, 2, 2, 3, 3, (4, 4), (2, 2), (1, 1), (0, 0), (1, 1)),  # the usual 2x upsampler
    TCase(1, 1, 1, 5, 2, (2, 3), (3, 1), (0, 1), (2, 0), (1, 2)),  # stride > kernel: gaps
    TCase(2, 2, 1, 3, 4, (3, 2), (1, 2), (0, 0), (1, 1), (2, 1)),  # output_padding from dilation
] + _random_cases(24, seed=11)


def _id(c: TCase) -> str:
    return (f"{c.c_in}to{c.c_out}g{c.groups}-{c.h}x{c.w}-k{c.kernel}-s{c.stride}-p{c.padding}"
            f"-op{c.output_padding}-d{c.dilation}")


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_the_scatter_loop(case: TCase) -> None:
    x, wt, b = case.arrays(0)
    y = conv_transpose2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    assert y.shape == (case.c_out, *case.out_hw)
    ref = conv_transpose2d_ref(x, wt, b, case.stride, case.padding, case.output_padding, case.groups,
                               case.dilation)
    np.testing.assert_allclose(y, ref, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_is_multiplication_by_the_transposed_dense_matrix(case: TCase) -> None:
    x, wt, _ = case.arrays(1)
    y = conv_transpose2d(x, wt, None, **case.kwargs())  # type: ignore[arg-type]
    # M is the conv2d from the transposed conv's output back to (a zero-extended) x.
    m = dense_matrix(y.shape, wt, case.stride, case.padding, case.dilation, case.groups)
    j, h_conv, w_conv = m.output_shape
    x_ext = np.zeros((j, h_conv, w_conv))
    x_ext[:, : case.h, : case.w] = x
    np.testing.assert_allclose(y.ravel(), m.toarray().T @ x_ext.ravel(), atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_is_the_input_gradient_of_conv2d(case: TCase) -> None:
    x, wt, _ = case.arrays(2)
    y = conv_transpose2d(x, wt, None, **case.kwargs())  # type: ignore[arg-type]
    m = dense_matrix(y.shape, wt, case.stride, case.padding, case.dilation, case.groups)
    x_ext = np.zeros(m.output_shape)
    x_ext[:, : case.h, : case.w] = x
    grad_x, _, _ = conv2d_backward(np.zeros(y.shape), wt, x_ext, case.stride, case.padding,
                                   case.dilation, case.groups)
    np.testing.assert_allclose(y, grad_x, atol=1e-10)


@pytest.mark.parametrize("case", CASES[:10], ids=_id)
def test_backward_matches_finite_differences(case: TCase) -> None:
    x, wt, b = case.arrays(3)
    go = np.random.default_rng(4).standard_normal((case.c_out, *case.out_hw))

    def loss() -> float:
        return float((conv_transpose2d(x, wt, b, **case.kwargs()) * go).sum())  # type: ignore[arg-type]

    gx, gw, gb = conv_transpose2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_allclose(gx, central_difference(loss, x), atol=1e-6)
    np.testing.assert_allclose(gw, central_difference(loss, wt), atol=1e-6)
    np.testing.assert_allclose(gb, central_difference(loss, b), atol=1e-6)


def test_many_strips_and_threads_agree(monkeypatch: pytest.MonkeyPatch) -> None:
    case = TCase(3, 4, 1, 23, 9, (3, 4), (2, 1), (1, 2), (1, 0), (1, 2))
    x, wt, b = case.arrays(5)
    whole = conv_transpose2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    monkeypatch.setattr(conv_module, "BACKWARD_STRIP_FLOATS", 1)  # one input row per strip
    np.testing.assert_allclose(conv_transpose2d(x, wt, b, **case.kwargs()), whole, atol=1e-12)  # type: ignore[arg-type]


def test_float32_stays_float32() -> None:
    x = np.ones((2, 3, 3), dtype=np.float32)
    assert conv_transpose2d(x, np.ones((2, 1, 2, 2), dtype=np.float32), stride=2).dtype == np.float32


def test_arithmetic_steps() -> None:
    rows, cols = transpose_arithmetic((4, 5), (3, 2), (2, 3), (1, 0), (1, 2), (1, 1))
    assert (rows.stretched, rows.effective_kernel, rows.full, rows.output) == (7, 3, 9, 8)
    assert (cols.stretched, cols.effective_kernel, cols.full, cols.output) == (13, 2, 14, 16)
    assert rows.steps() == [
        "stretched = (4 − 1)·2 + 1 = 7",
        "effective kernel = 1·(3 − 1) + 1 = 3",
        "full = 7 + 3 − 1 = 9",
        "output = 9 − 2·1 + 1 = 8",
    ]
    assert rows.axis == "rows" and cols.axis == "cols"
    # H_out = (H - 1) s - 2p + d(k - 1) + output_padding + 1
    assert transpose_output_shape((4, 5), (3, 2), (2, 3), (1, 0), (1, 2)) == (
        3 * 2 - 2 + 2 + 1 + 1, 4 * 3 - 0 + 1 + 2 + 1)


def test_output_padding_must_be_below_stride_or_dilation() -> None:
    with pytest.raises(ArgumentError, match="`output_padding`") as info:
        transpose_arithmetic((4, 4), 3, 2, 0, 2)
    assert info.value.argument == "output_padding"
    # Dilation allows it: output_padding 2 < max(1, 3).
    assert transpose_output_shape((4, 4), 3, 1, 0, 2, 3) == (4 - 1 + 6 + 2 + 1,) * 2


def test_output_padding_error_from_conv_transpose2d() -> None:
    with pytest.raises(ArgumentError, match="`output_padding`"):
        conv_transpose2d(np.ones((1, 3, 3)), np.ones((1, 1, 2, 2)), stride=(2, 1), output_padding=(1, 1))


def test_padding_larger_than_the_output() -> None:
    with pytest.raises(ArgumentError, match="`padding`") as info:
        conv_transpose2d(np.ones((1, 1, 1)), np.ones((1, 1, 1, 1)), padding=1)
    assert info.value.argument == "padding"


def test_weight_channels_must_be_the_inputs() -> None:
    with pytest.raises(ArgumentError, match="`weight`"):
        conv_transpose2d(np.ones((2, 3, 3)), np.ones((3, 1, 2, 2)))


def test_groups_must_divide_the_input_channels() -> None:
    with pytest.raises(ArgumentError, match="`groups`"):
        conv_transpose2d(np.ones((3, 3, 3)), np.ones((3, 1, 2, 2)), groups=2)


def test_bias_wrong_length() -> None:
    with pytest.raises(ArgumentError, match="`bias`"):
        conv_transpose2d(np.ones((2, 3, 3)), np.ones((2, 2, 2, 2)), np.ones(3), groups=2)


def test_backward_grad_out_wrong_shape() -> None:
    with pytest.raises(ArgumentError, match="`grad_out`"):
        conv_transpose2d_backward(np.ones((1, 3, 3)), np.ones((1, 1, 2, 2)), np.ones((1, 3, 3)))


@pytest.mark.parametrize("case", CASES, ids=_id)
def test_matches_torch(case: TCase) -> None:
    torch = pytest.importorskip("torch")
    x, wt, b = case.arrays(6)
    xt, wtt, bt = (torch.from_numpy(a).requires_grad_(True) for a in (x[None], wt, b))
    yt = torch.nn.functional.conv_transpose2d(xt, wtt, bt, case.stride, case.padding, case.output_padding,
                                              case.groups, case.dilation)
    y = conv_transpose2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_allclose(y, yt.detach().numpy()[0], atol=1e-10)
    go = np.random.default_rng(7).standard_normal(y.shape)
    yt.backward(torch.from_numpy(go)[None])
    gx, gw, gb = conv_transpose2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_allclose(gx, xt.grad.numpy()[0], atol=1e-10)
    np.testing.assert_allclose(gw, wtt.grad.numpy(), atol=1e-10)
    np.testing.assert_allclose(gb, bt.grad.numpy(), atol=1e-10)
