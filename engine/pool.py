"""Max and average pooling of (C, H, W) arrays, and their backward passes, as PyTorch's.

Along each axis, with kernel k, stride s (default k), padding p and dilation d (max pooling
only), output m reads padded positions s*m + d*u, u = 0..k-1, that is input positions
s*m + d*u - p, and

    out = floor((n + 2p - d(k - 1) - 1 + (s - 1 if ceil_mode else 0)) / s) + 1

except that with ceil_mode the last window must start inside the input or its left padding:
if (out - 1) * s >= n + p, there is one output fewer. PyTorch also requires p <= k // 2.

Max pooling pads with -inf, so padding never wins (a dilated window whose taps all step over
the image outputs -inf, as in PyTorch; see windows_miss_input); average pooling pads with zeros and divides
by the window clipped to the padded extent [-p, n + p) (count_include_pad=True) or to the input
[0, n) (count_include_pad=False), the rule of PyTorch's CPU kernel; with ceil_mode a window can
reach past n + p, and that part is never counted.

The forward passes are separable: the window's reduction along columns for every row (k_w
strided operations on whole arrays), then along rows (k_h more). The backward passes add each
tap's share through the same strided views (max pooling: the first tap in scan order that
holds the window's maximum). No Python loop runs over output positions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import _float_array
from .errors import ArgumentError
from .spec import IntOrPair, Pair, _input_hw, _show, as_pair


def pool_output_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """Output size along one axis by PyTorch's rule (see the module docstring); may be < 1."""
    out = (n + 2 * p - d * (k - 1) - 1 + (s - 1 if ceil_mode else 0)) // s + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def windows_miss_input(n: int, k: int, s: int, p: int, d: int, n_out: int) -> bool:
    """Whether some window along one axis holds no input pixel (all its taps on padding).

    Only dilation can do this, its taps stepping over a short input: max pooling then outputs
    -inf there, as PyTorch does.
    """
    pos = s * np.arange(n_out)[:, None] + d * np.arange(k)[None, :] - p
    return bool((~((pos >= 0) & (pos < n)).any(axis=1)).any())


@dataclass(frozen=True)
class PoolSpec:
    """The geometry of one pooling layer; every field is an (h, w) pair of ints."""

    kernel_size: Pair  # (kh, kw), window taps along rows and columns
    stride: Pair  # (s_h, s_w), defaults to kernel_size
    padding: Pair  # (p_h, p_w), at most k // 2 on each axis
    dilation: Pair = (1, 1)  # (d_h, d_w), spacing of the taps (max pooling only)
    ceil_mode: bool = False  # round the output size up (last window starting inside the input)

    @classmethod
    def make(
        cls,
        kernel_size: IntOrPair,
        stride: IntOrPair | None = None,
        padding: IntOrPair = 0,
        dilation: IntOrPair = 1,
        ceil_mode: bool = False,
    ) -> PoolSpec:
        """Validate and normalise PyTorch's pooling arguments, raising ValueError naming one."""
        k = as_pair(kernel_size, "kernel_size", 1)
        s = k if stride is None else as_pair(stride, "stride", 1)
        p = as_pair(padding, "padding", 0)
        d = as_pair(dilation, "dilation", 1)
        if not isinstance(ceil_mode, bool | np.bool_):
            raise ArgumentError("ceil_mode", f"`ceil_mode` must be True or False, got {ceil_mode!r}")
        if p[0] > k[0] // 2 or p[1] > k[1] // 2:
            raise ArgumentError(
                "padding",
                f"`padding` must be at most half the kernel size (k // 2 = "
                f"{_show((k[0] // 2, k[1] // 2))} for a {_show(k)} kernel), as in PyTorch; "
                f"got {_show(p)}"
            )
        return cls(k, s, p, d, bool(ceil_mode))

    @property
    def effective_kernel(self) -> Pair:
        """Extent of the dilated window, d(k - 1) + 1 on each axis."""
        return (
            self.dilation[0] * (self.kernel_size[0] - 1) + 1,
            self.dilation[1] * (self.kernel_size[1] - 1) + 1,
        )

    def output_shape(self, input_hw: Sequence[int]) -> Pair:
        """(H_out, W_out) for an (H, W) input; ValueError naming the field when no window fits."""
        h, w = _input_hw(input_hw)
        out = []
        for a, n in enumerate((h, w)):
            size = pool_output_size(n, self.kernel_size[a], self.stride[a], self.padding[a],
                                    self.dilation[a], self.ceil_mode)
            if size < 1:
                padded = n + 2 * self.padding[a]
                field = "dilation" if self.kernel_size[a] <= padded else "kernel_size"
                raise ArgumentError(
                    field,
                    f"`{field}`: a {_show(self.kernel_size)} window with dilation "
                    f"{_show(self.dilation)} spans {self.effective_kernel[a]} "
                    f"{('rows', 'cols')[a]}, which does not fit a {n}-pixel input even with "
                    f"padding {self.padding[a]} ({padded} padded)"
                )
            out.append(size)
        return (out[0], out[1])


def pool_output_shape(
    input_hw: Sequence[int],
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> Pair:
    """Output size of a pooling layer.

    Parameters
    ----------
    input_hw : (H, W)
    kernel_size, stride, padding, dilation, ceil_mode : as in max_pool2d

    Returns
    -------
    (H_out, W_out), each by the rule in this module's docstring.
    """
    return PoolSpec.make(kernel_size, stride, padding, dilation, ceil_mode).output_shape(input_hw)


def _padded(
    x: NDArray[np.floating], spec: PoolSpec, out_hw: Pair, fill: float
) -> NDArray[np.floating]:
    """x padded by `fill` to cover every window: (C, max(reach, p + H), ...) with the image at (p_h, p_w).

    Without padding and with every window inside the image this is x itself (no copy).
    """
    c, h, w = x.shape
    (ph, pw), (sh, sw) = spec.padding, spec.stride
    eh, ew = spec.effective_kernel
    rows = max((out_hw[0] - 1) * sh + eh, ph + h)
    cols = max((out_hw[1] - 1) * sw + ew, pw + w)
    if ph == 0 and pw == 0 and rows == h and cols == w:
        return x
    out = np.full((c, rows, cols), fill, dtype=x.dtype)
    out[:, ph : ph + h, pw : pw + w] = x
    return out


def _taps(xp: NDArray[Any], axis: int, k: int, s: int, d: int, n_out: int) -> list[NDArray[Any]]:
    """The k strided views xp[..., d*u + s*m, ...] (m < n_out) along `axis` (1 rows, 2 cols)."""
    views = []
    for u in range(k):
        index: list[slice] = [slice(None)] * 3
        index[axis] = slice(d * u, d * u + s * (n_out - 1) + 1, s)
        views.append(xp[tuple(index)])
    return views


def _pool_args(
    x: ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    dilation: IntOrPair,
    ceil_mode: bool,
) -> tuple[NDArray[np.floating], PoolSpec, Pair]:
    xa = _float_array(x, "x", 3)
    spec = PoolSpec.make(kernel_size, stride, padding, dilation, ceil_mode)
    return xa, spec, spec.output_shape(xa.shape[1:])


def _check_grad_out(
    grad_out: ArrayLike, shape: tuple[int, int, int], dtype: np.dtype
) -> NDArray[np.floating]:
    g = _float_array(grad_out, "grad_out", 3).astype(dtype, copy=False)
    if g.shape != shape:
        raise ArgumentError("grad_out", f"`grad_out` must have the output's shape {shape}, got {g.shape}")
    return g


def _window_max(xp: NDArray[np.floating], spec: PoolSpec, out_hw: Pair) -> NDArray[np.floating]:
    """Max over each window of the padded xp: first along columns (every row), then along rows."""
    (kh, kw), (sh, sw), (dh, dw) = spec.kernel_size, spec.stride, spec.dilation
    cols = _taps(xp, 2, kw, sw, dw, out_hw[1])  # each (C, rows, W_out)
    row_max = cols[0].copy()
    for view in cols[1:]:
        np.maximum(row_max, view, out=row_max)
    rows = _taps(row_max, 1, kh, sh, dh, out_hw[0])  # each (C, H_out, W_out)
    out = rows[0].copy()
    for view in rows[1:]:
        np.maximum(out, view, out=out)
    return out


def max_pool2d(
    x: ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> NDArray[np.floating]:
    """2-D max pooling, as torch.nn.functional.max_pool2d.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    kernel_size : int or (kh, kw), >= 1
    stride : int or (h, w) pair >= 1; None (the default) means kernel_size
    padding : int or (h, w) pair, 0 <= p <= k // 2; the padding is -inf, so it never wins
    dilation : int or (h, w) pair, >= 1
    ceil_mode : round the output size up, the last window starting inside the input or its
        left padding

    Returns
    -------
    y : ndarray of shape (C, H_out, W_out), float32 (float64 if x is), with

        y[c, m, n] = max_{u, v} x_pad[c, s_h*m + d_h*u, s_w*n + d_w*v]

    and H_out = floor((H + 2 p_h - d_h (kh - 1) - 1 (+ s_h - 1 with ceil_mode)) / s_h) + 1,
    less one with ceil_mode when that last window would start at or past H + p_h (likewise W).
    """
    xa, spec, out_hw = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
    return _window_max(_padded(xa, spec, out_hw, -np.inf), spec, out_hw)


def max_pool2d_backward(
    x: ArrayLike,
    grad_out: ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    dilation: IntOrPair = 1,
    ceil_mode: bool = False,
) -> NDArray[np.floating]:
    """Gradient of a loss through max_pool2d with respect to its input.

    Parameters
    ----------
    x : ndarray of shape (C, H, W), the pooling's input
    grad_out : ndarray of shape (C, H_out, W_out), dL/dy
    kernel_size, stride, padding, dilation, ceil_mode : as in max_pool2d

    Returns
    -------
    grad_x : ndarray of shape (C, H, W). Each window's gradient goes whole to its arg-max;
    on a tie, to the first maximal element in row-major scan order of the window (smallest
    u, then smallest v), as PyTorch's CPU kernel does. Overlapping windows add up. A window
    with no input pixel (see windows_miss_input) passes no gradient (PyTorch's sends it to a
    pixel outside the window).
    """
    xa, spec, out_hw = _pool_args(x, kernel_size, stride, padding, dilation, ceil_mode)
    c, h, w = xa.shape
    go = _check_grad_out(grad_out, (c, *out_hw), xa.dtype)
    xp = _padded(xa, spec, out_hw, -np.inf)
    y = _window_max(xp, spec, out_hw)
    (kh, kw), (sh, sw), (dh, dw) = spec.kernel_size, spec.stride, spec.dilation
    # The taps in row-major scan order: a tap takes the window's gradient where it holds the
    # maximum and no earlier tap did (the first maximum). Its share is added through the same
    # strided view the forward pass read, so overlapping windows add up.
    grad_xp = np.zeros(xp.shape, dtype=xa.dtype)
    taken = np.zeros(y.shape, dtype=bool)
    hit = np.empty(y.shape, dtype=bool)
    share = np.empty_like(go)
    rows = slice(None, sh * (out_hw[0] - 1) + 1, sh)
    for u in range(kh):
        row_x = _taps(xp[:, dh * u :], 2, kw, sw, dw, out_hw[1])
        row_g = _taps(grad_xp[:, dh * u :], 2, kw, sw, dw, out_hw[1])
        for view_x, view_g in zip(row_x, row_g, strict=True):
            np.equal(view_x[:, rows], y, out=hit)
            np.greater(hit, taken, out=hit)  # hit and not taken
            taken |= hit
            np.multiply(go, hit, out=share)
            view_g[:, rows] += share
    ph, pw = spec.padding
    return np.ascontiguousarray(grad_xp[:, ph : ph + h, pw : pw + w])


def _avg_divisor(n: int, n_out: int, k: int, s: int, p: int, count_include_pad: bool) -> NDArray[np.int64]:
    """(n_out,) per-axis divisor: window length clipped to [-p, n + p), or to [0, n)."""
    start = s * np.arange(n_out) - p
    end = np.minimum(start + k, n + p)
    if count_include_pad:
        return end - start
    return np.minimum(end, n) - np.maximum(start, 0)


def _avg_args(
    x: ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None,
    padding: IntOrPair,
    ceil_mode: bool,
    count_include_pad: bool,
) -> tuple[NDArray[np.floating], PoolSpec, Pair, NDArray[np.floating]]:
    xa, spec, out_hw = _pool_args(x, kernel_size, stride, padding, 1, ceil_mode)
    if not isinstance(count_include_pad, bool | np.bool_):
        raise ArgumentError(
            "count_include_pad", f"`count_include_pad` must be True or False, got {count_include_pad!r}"
        )
    _, h, w = xa.shape
    (kh, kw), (sh, sw), (ph, pw) = spec.kernel_size, spec.stride, spec.padding
    div_h = _avg_divisor(h, out_hw[0], kh, sh, ph, bool(count_include_pad))
    div_w = _avg_divisor(w, out_hw[1], kw, sw, pw, bool(count_include_pad))
    # Never 0: a window starts inside the input or its left padding, and p <= k // 2.
    divisor = np.outer(np.maximum(div_h, 1), np.maximum(div_w, 1)).astype(xa.dtype)
    return xa, spec, out_hw, divisor


def avg_pool2d(
    x: ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> NDArray[np.floating]:
    """2-D average pooling, as torch.nn.functional.avg_pool2d (without divisor_override).

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    kernel_size : int or (kh, kw), >= 1
    stride : int or (h, w) pair >= 1; None (the default) means kernel_size
    padding : int or (h, w) pair, 0 <= p <= k // 2, of zeros
    ceil_mode : as in max_pool2d
    count_include_pad : divide by the window clipped to the padded extent (True), or by its
        input pixels only (False)

    Returns
    -------
    y : ndarray of shape (C, H_out, W_out), H_out as in max_pool2d with dilation 1, and

        y[c, m, n] = sum_{u, v} x_pad[c, s_h*m + u, s_w*n + v] / (a_h[m] * a_w[n])

    where a_h[m] is the length of rows [s_h*m - p_h, s_h*m - p_h + kh) clipped to
    [-p_h, H + p_h) (count_include_pad) or to [0, H) (likewise a_w[n]).
    """
    xa, spec, out_hw, divisor = _avg_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    (kh, kw), (sh, sw) = spec.kernel_size, spec.stride
    xp = _padded(xa, spec, out_hw, 0.0)
    cols = _taps(xp, 2, kw, sw, 1, out_hw[1])
    row_sum = cols[0].copy()
    for view in cols[1:]:
        row_sum += view
    rows = _taps(row_sum, 1, kh, sh, 1, out_hw[0])
    y = rows[0].copy()
    for view in rows[1:]:
        y += view
    y /= divisor
    return y


def avg_pool2d_backward(
    x: ArrayLike,
    grad_out: ArrayLike,
    kernel_size: IntOrPair,
    stride: IntOrPair | None = None,
    padding: IntOrPair = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> NDArray[np.floating]:
    """Gradient of a loss through avg_pool2d with respect to its input.

    Parameters
    ----------
    x : ndarray of shape (C, H, W), the pooling's input (only its shape and dtype are used)
    grad_out : ndarray of shape (C, H_out, W_out), dL/dy
    kernel_size, stride, padding, ceil_mode, count_include_pad : as in avg_pool2d

    Returns
    -------
    grad_x : ndarray of shape (C, H, W), with
        grad_x[c, r, q] = sum over the windows (m, n) holding pixel (r, q) of
                          grad_out[c, m, n] / (a_h[m] * a_w[n]).
    """
    xa, spec, out_hw, divisor = _avg_args(x, kernel_size, stride, padding, ceil_mode, count_include_pad)
    c, h, w = xa.shape
    go = _check_grad_out(grad_out, (c, *out_hw), xa.dtype) / divisor
    (kh, kw), (sh, sw), (ph, pw) = spec.kernel_size, spec.stride, spec.padding
    rows = max((out_hw[0] - 1) * sh + kh, ph + h)
    cols = max((out_hw[1] - 1) * sw + kw, pw + w)
    # Spread each gradient over its window's rows, then over its columns (the adjoint of the
    # two sums of the forward pass).
    by_row = np.zeros((c, rows, out_hw[1]), dtype=xa.dtype)
    for view in _taps(by_row, 1, kh, sh, 1, out_hw[0]):
        view += go
    grad_xp = np.zeros((c, rows, cols), dtype=xa.dtype)
    for view in _taps(grad_xp, 2, kw, sw, 1, out_hw[1]):
        view += by_row
    return np.ascontiguousarray(grad_xp[:, ph : ph + h, pw : pw + w])
