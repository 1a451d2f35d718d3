"""Transposed convolution (PyTorch's conv_transpose2d): multiplication by Mᵀ, the adjoint of conv2d.

conv2d is y = M x with the weight-tied matrix M of sharing.dense_matrix. The transposed
convolution with the same weight, stride, padding, dilation and groups is y = Mᵀ x: each input
pixel x[c, i, j] scatters its kernel, scaled by itself, onto the output

    y[g*C_out/groups + o, s_h*i + d_h*u - p_h, s_w*j + d_w*v - p_w] += weight[c, o, u, v] * x[c, i, j]

for c in group g, which is conv2d's gradient with respect to its input. Along each axis

    out = (n - 1) s - 2p + d(k - 1) + output_padding + 1

where output_padding (< max(s, d), as PyTorch requires) adds rows at the bottom and columns at
the right, picking one of the input sizes that a strided conv2d maps to the same size.

The forward pass is one matmul per group and strip of input rows, Z = Wᵀ x of shape
(C_out/g * kh * kw, rows * W), and kh * kw strided adds of Z's taps into the output (col2im).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import _float_array, check_bias, conv2d, prepare, run_chunks, strips
from .errors import ArgumentError
from .grad import _check_grad_out, _weight_backward
from .spec import AXES, IntOrPair, Pair, _input_hw, as_pair, check_groups


@dataclass(frozen=True)
class TransposeAxisArithmetic:
    """The transposed conv's output-size formula worked for one axis."""

    axis: str  # "rows" or "cols"
    size: int  # n, the input size
    kernel: int  # k
    stride: int  # s
    padding: int  # p, removed from each side of the full output
    output_padding: int  # added at the end (bottom or right)
    dilation: int  # d
    stretched: int  # (n - 1) s + 1, the input with s - 1 gaps between its pixels
    effective_kernel: int  # d(k - 1) + 1
    full: int  # stretched + d(k - 1), every position a kernel tap reaches
    output: int  # full - 2p + output_padding

    def steps(self) -> list[str]:
        """The arithmetic as short human-readable lines."""
        n, k, s, p, d, op = (self.size, self.kernel, self.stride, self.padding, self.dilation,
                             self.output_padding)
        return [
            f"stretched = ({n} − 1)·{s} + 1 = {self.stretched}",
            f"effective kernel = {d}·({k} − 1) + 1 = {self.effective_kernel}",
            f"full = {self.stretched} + {self.effective_kernel} − 1 = {self.full}",
            f"output = {self.full} − 2·{p} + {op} = {self.output}",
        ]


def _axis(axis: int, n: int, k: int, s: int, p: int, op: int, d: int) -> TransposeAxisArithmetic:
    if op >= max(s, d):
        raise ArgumentError(
            "output_padding",
            f"`output_padding` must be smaller than the stride or the dilation (as in PyTorch): "
            f"got {op} on the {AXES[axis]} with stride {s} and dilation {d}"
        )
    stretched = (n - 1) * s + 1
    eff = d * (k - 1) + 1
    full = stretched + eff - 1
    out = full - 2 * p + op
    if out < 1:
        raise ArgumentError(
            "padding",
            f"`padding` {p} removes more than the full output: {full} {AXES[axis]} − 2·{p} "
            f"+ {op} = {out}"
        )
    return TransposeAxisArithmetic(AXES[axis], n, k, s, p, op, d, stretched, eff, full, out)


def transpose_arithmetic(
    input_hw: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> tuple[TransposeAxisArithmetic, TransposeAxisArithmetic]:
    """Step-by-step output-size arithmetic of a transposed conv, for rows and columns.

    Parameters
    ----------
    input_hw : (H, W)
    kernel_size, stride, dilation : int or (h, w) pair, >= 1
    padding, output_padding : int or (h, w) pair, >= 0; output_padding < max(s, d) per axis

    Returns
    -------
    One TransposeAxisArithmetic per axis, with
    H_out = (H - 1) s_h - 2 p_h + d_h (kh - 1) + output_padding_h + 1 (likewise W_out).
    """
    h, w = _input_hw(input_hw)
    k = as_pair(kernel_size, "kernel_size", 1)
    s = as_pair(stride, "stride", 1)
    p = as_pair(padding, "padding", 0)
    op = as_pair(output_padding, "output_padding", 0)
    d = as_pair(dilation, "dilation", 1)
    return (_axis(0, h, k[0], s[0], p[0], op[0], d[0]), _axis(1, w, k[1], s[1], p[1], op[1], d[1]))


def transpose_output_shape(
    input_hw: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
) -> Pair:
    """(H_out, W_out) of a transposed conv (see transpose_arithmetic)."""
    rows, cols = transpose_arithmetic(input_hw, kernel_size, stride, padding, output_padding, dilation)
    return (rows.output, cols.output)


@dataclass(frozen=True)
class _Transpose:
    """Validated arguments of one conv_transpose2d call."""

    x: NDArray[np.floating]  # (C_in, H, W)
    weight: NDArray[np.floating]  # (C_in, C_out / groups, kh, kw)
    stride: Pair
    padding: Pair
    output_padding: Pair
    dilation: Pair
    groups: int
    out_hw: Pair


def _prepare(
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntOrPair,
    padding: IntOrPair,
    output_padding: IntOrPair,
    groups: int,
    dilation: IntOrPair,
) -> _Transpose:
    xa = _float_array(x, "x", 3)
    wa = _float_array(weight, "weight", 4)
    if xa.dtype != wa.dtype:
        dtype = np.result_type(xa, wa)
        xa, wa = xa.astype(dtype), wa.astype(dtype)
    groups = check_groups(groups)
    c_in = xa.shape[0]
    if c_in % groups:
        raise ArgumentError("groups", f"`groups`={groups} must divide the input channels ({c_in})")
    if wa.shape[0] != c_in:
        raise ArgumentError(
            "weight",
            f"`weight` of a transposed conv is (C_in, C_out / groups, kh, kw) with C_in = {c_in}, "
            f"the input's channels; got {wa.shape}"
        )
    rows, cols = transpose_arithmetic(xa.shape[1:], wa.shape[2:], stride, padding, output_padding,
                                      dilation)
    return _Transpose(
        xa, wa, (rows.stride, cols.stride), (rows.padding, cols.padding),
        (rows.output_padding, cols.output_padding), (rows.dilation, cols.dilation), groups,
        (rows.output, cols.output),
    )




def _scatter(t: _Transpose) -> NDArray[np.floating]:
    """Mᵀ x on checked arguments: (C_out, H_out, W_out), no bias."""
    x, weight, groups = t.x, t.weight, t.groups
    c_in, h, w = x.shape
    _, cog, kh, kw = weight.shape
    cig = c_in // groups
    (sh, sw), (dh, dw), (ph, pw) = t.stride, t.dilation, t.padding
    # The full output before cropping the padding: every position a tap reaches, plus the
    # output_padding rows and columns (zeros) at the end.
    full_h, full_w = t.out_hw[0] + 2 * ph, t.out_hw[1] + 2 * pw
    w_mats = [weight[g * cig : (g + 1) * cig].reshape(cig, cog * kh * kw).T for g in range(groups)]
    bands = strips(h, cog * kh * kw * w, backward=True)
    eff_h = dh * (kh - 1) + 1
    parts: list[tuple[int, NDArray[np.floating]]] = []

    def work(chunk: list[tuple[int, int]]) -> None:
        top = chunk[0][0] * sh  # first full-output row this chunk writes
        bottom = (chunk[-1][1] - 1) * sh + eff_h
        local = np.zeros((groups * cog, bottom - top, full_w), dtype=x.dtype)
        rows_max = max(b - a for a, b in chunk)
        buf = np.empty(cog * kh * kw * rows_max * w, dtype=x.dtype)
        for g in range(groups):
            xg = x[g * cig : (g + 1) * cig].reshape(cig, h * w)
            out = local[g * cog : (g + 1) * cog]
            for a, b in chunk:
                rows = b - a
                z = buf[: cog * kh * kw * rows * w].reshape(cog * kh * kw, rows * w)
                np.matmul(w_mats[g], xg[:, a * w : b * w], out=z)
                z5 = z.reshape(cog, kh, kw, rows, w)
                r0 = a * sh - top
                for u in range(kh):
                    r = r0 + dh * u
                    for v in range(kw):
                        c = dw * v
                        out[:, r : r + sh * (rows - 1) + 1 : sh, c : c + sw * (w - 1) + 1 : sw] += z5[:, u, v]
        parts.append((top, local))

    run_chunks(work, bands)
    y_full = np.zeros((groups * cog, full_h, full_w), dtype=x.dtype)
    for top, local in parts:
        y_full[:, top : top + local.shape[1]] += local
    return np.ascontiguousarray(y_full[:, ph : ph + t.out_hw[0], pw : pw + t.out_hw[1]])


def conv_transpose2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
) -> NDArray[np.floating]:
    """2-D transposed convolution, as torch.nn.functional.conv_transpose2d (same argument order).

    Parameters
    ----------
    x : ndarray of shape (C_in, H, W)
    weight : ndarray of shape (C_in, C_out / groups, kh, kw), PyTorch's layout
    bias : ndarray of shape (C_out,), a scalar, or None
    stride, dilation : int or (h, w) pair, >= 1
    padding : int or (h, w) pair >= 0, cropped from each side of the full output
    output_padding : int or (h, w) pair, 0 <= output_padding < max(stride, dilation) per axis
    groups : int dividing C_in

    Returns
    -------
    y : ndarray of shape (C_out, H_out, W_out), float32 (float64 if an input is), with

        y[g*C_out/groups + o, m, n] = b + sum_{c in group g} sum_{i, j, u, v : s_h*i + d_h*u - p_h = m,
                                              s_w*j + d_w*v - p_w = n} weight[c, o, u, v] * x[c, i, j]

    and H_out = (H - 1) s_h - 2 p_h + d_h (kh - 1) + output_padding_h + 1 (likewise W_out).
    It equals conv2d_backward's grad_x for a conv2d with this weight on an input of the output's
    size, and Mᵀ x for that conv's dense matrix M.
    """
    t = _prepare(x, weight, stride, padding, output_padding, groups, dilation)
    b = check_bias(bias, t.weight.shape[1] * t.groups, t.x.dtype)
    y = _scatter(t)
    if b is not None:
        y += b[:, None, None]
    return y


def conv_transpose2d_backward(
    x: ArrayLike,
    weight: ArrayLike,
    grad_out: ArrayLike,
    stride: IntOrPair = 1,
    padding: IntOrPair = 0,
    output_padding: IntOrPair = 0,
    groups: int = 1,
    dilation: IntOrPair = 1,
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
    """Gradients of a loss through conv_transpose2d.

    y = Mᵀ x, so dL/dx = M dL/dy: conv2d of grad_out with the same weight and geometry. And
    the weight gradient is conv2d's weight gradient with grad_out as its input and x as its
    upstream gradient.

    Parameters
    ----------
    x : ndarray of shape (C_in, H, W)
    weight : ndarray of shape (C_in, C_out / groups, kh, kw)
    grad_out : ndarray of shape (C_out, H_out, W_out), dL/dy
    stride, padding, output_padding, groups, dilation : as in conv_transpose2d

    Returns
    -------
    grad_x : (C_in, H, W)
    grad_w : (C_in, C_out / groups, kh, kw)
    grad_b : (C_out,), the sums of grad_out over positions
    """
    t = _prepare(x, weight, stride, padding, output_padding, groups, dilation)
    c_out = t.weight.shape[1] * t.groups
    go = _float_array(grad_out, "grad_out", 3).astype(t.x.dtype, copy=False)
    if go.shape != (c_out, *t.out_hw):
        raise ArgumentError(
            "grad_out", f"`grad_out` must have the output's shape {(c_out, *t.out_hw)}, got {go.shape}"
        )
    gx = conv2d(go, t.weight, None, t.stride, t.padding, t.dilation, t.groups)
    _, h, w = t.x.shape
    # With output_padding >= stride (possible when the dilation is larger), the conv2d of the
    # output is longer than x: the extra rows and columns have no x, so x is extended by zeros.
    x_ext = np.zeros(gx.shape, dtype=t.x.dtype)
    x_ext[:, :h, :w] = t.x
    # dW only: conv2d_backward's dL/d(grad_out) would be thrown away.
    layer = prepare(go, t.weight, t.stride, t.padding, t.dilation, t.groups)
    gw, _ = _weight_backward(layer, _check_grad_out(x_ext, layer))
    return np.ascontiguousarray(gx[:, :h, :w]), gw, go.sum(axis=(1, 2))
