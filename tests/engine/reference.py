"""Slow, obvious references for the engine tests. Nothing here imports engine/.

The reference convolution is written straight from the formula

    y[j, m, n] = b[j] + sum_c sum_u sum_v W[j, c, u, v] * x_pad[g*C/groups + c, s_h*m + d_h*u, s_w*n + d_w*v]

with g = j // (J / groups), one Python loop per index, so that it shares no code (and no
height/width mix-up) with the fast paths it checks.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

Pair = tuple[int, int]


def pair(value: int | Sequence[int]) -> Pair:
    """An int or an (h, w) pair as a pair."""
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[1]))


def out_size(n: int, k: int, s: int, p: int, d: int) -> int:
    """floor((n + 2p - d(k - 1) - 1) / s) + 1, or 0 when the kernel does not fit."""
    span = n + 2 * p - d * (k - 1) - 1
    return span // s + 1 if span >= 0 else 0


def pad_ref(x: NDArray[np.float64], ph: int, pw: int) -> NDArray[np.float64]:
    """(C, H, W) zero-padded to (C, H + 2 ph, W + 2 pw), element by element."""
    c_in, h, w = x.shape
    out = np.zeros((c_in, h + 2 * ph, w + 2 * pw), dtype=np.float64)
    for c in range(c_in):
        for r in range(h):
            for q in range(w):
                out[c, r + ph, q + pw] = x[c, r, q]
    return out


def conv2d_ref(
    x: NDArray[np.floating],
    weight: NDArray[np.floating],
    bias: NDArray[np.floating] | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> NDArray[np.float64]:
    """Plain-loop conv2d in float64: x (C, H, W), weight (J, C/groups, kh, kw) -> (J, H_out, W_out)."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    c_in, h, w = x.shape
    j_total, cg, kh, kw = weight.shape
    jg = j_total // groups
    h_out, w_out = out_size(h, kh, sh, ph, dh), out_size(w, kw, sw, pw, dw)
    xp = pad_ref(np.asarray(x, dtype=np.float64), ph, pw)
    wt = np.asarray(weight, dtype=np.float64)
    y = np.zeros((j_total, h_out, w_out), dtype=np.float64)
    for j in range(j_total):
        g = j // jg
        for m in range(h_out):
            for n in range(w_out):
                acc = 0.0 if bias is None else float(bias[j])
                for c in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            acc += float(wt[j, c, u, v]) * float(
                                xp[g * cg + c, sh * m + dh * u, sw * n + dw * v]
                            )
                y[j, m, n] = acc
    return y


def taps_read(
    n_in: int, n_out: int, k: int, s: int, p: int, d: int
) -> list[list[int]]:
    """For each output index m along one axis, the input indices s*m + d*u - p of its taps."""
    return [[s * m + d * u - p for u in range(k)] for m in range(n_out)]


def untied_conv2d_ref(
    x: NDArray[np.floating],
    weight: NDArray[np.floating],
    bias: NDArray[np.floating] | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> NDArray[np.float64]:
    """Plain-loop locally connected layer in float64: weight (H_out, W_out, J, C/groups, kh, kw),
    bias (H_out, W_out, J) or None -> (J, H_out, W_out), with

        y[j, m, n] = b[m, n, j] + sum_c sum_u sum_v W[m, n, j, c, u, v] * x_pad[g*C/groups + c,
                                                          s_h*m + d_h*u, s_w*n + d_w*v]
    """
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    h_out, w_out, j_total, cg, kh, kw = weight.shape
    jg = j_total // groups
    xp = pad_ref(np.asarray(x, dtype=np.float64), ph, pw)
    wt = np.asarray(weight, dtype=np.float64)
    y = np.zeros((j_total, h_out, w_out), dtype=np.float64)
    for j in range(j_total):
        g = j // jg
        for m in range(h_out):
            for n in range(w_out):
                acc = 0.0 if bias is None else float(bias[m, n, j])
                for c in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            acc += float(wt[m, n, j, c, u, v]) * float(
                                xp[g * cg + c, sh * m + dh * u, sw * n + dw * v]
                            )
                y[j, m, n] = acc
    return y


# ---- network issue: pooling, transposed conv, finite differences -----------------------------

def pool_out_size(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size: floor or ceil of (n + 2p - d(k - 1) - 1) / s, plus one,
    then one fewer if ceil_mode made the last window start past the input and left padding."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def max_pool2d_ref(
    x: NDArray[np.floating], kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0, dilation: int | Sequence[int] = 1, ceil_mode: bool = False,
) -> tuple[NDArray[np.float64], list[list[list[tuple[int, int] | None]]]]:
    """Plain-loop max pooling: (C, H, W) -> (C, H_out, W_out), and each window's arg-max (r, q).

    Only taps on real pixels take part (padding is -inf); the arg-max is the first maximal
    element in row-major scan order of the window (strict >), None when no tap is real.
    """
    (kh, kw) = pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else pair(stride)
    (ph, pw), (dh, dw) = pair(padding), pair(dilation)
    c_in, h, w = x.shape
    h_out = pool_out_size(h, kh, sh, ph, dh, ceil_mode)
    w_out = pool_out_size(w, kw, sw, pw, dw, ceil_mode)
    y = np.full((c_in, h_out, w_out), -np.inf)
    where: list[list[list[tuple[int, int] | None]]] = []
    for c in range(c_in):
        plane = []
        for m in range(h_out):
            line: list[tuple[int, int] | None] = []
            for n in range(w_out):
                best, at = -np.inf, None
                for u in range(kh):
                    for v in range(kw):
                        r, q = sh * m + dh * u - ph, sw * n + dw * v - pw
                        if 0 <= r < h and 0 <= q < w and (at is None or x[c, r, q] > best):
                            best, at = float(x[c, r, q]), (r, q)
                y[c, m, n] = best
                line.append(at)
            plane.append(line)
        where.append(plane)
    return y, where


def max_pool2d_backward_ref(
    x: NDArray[np.floating], grad_out: NDArray[np.floating], kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1, ceil_mode: bool = False,
) -> NDArray[np.float64]:
    """Each window's gradient added whole to its arg-max (max_pool2d_ref's tie rule)."""
    _, where = max_pool2d_ref(x, kernel_size, stride, padding, dilation, ceil_mode)
    grad = np.zeros(x.shape)
    for c, plane in enumerate(where):
        for m, line in enumerate(plane):
            for n, at in enumerate(line):
                if at is not None:
                    grad[c, at[0], at[1]] += grad_out[c, m, n]
    return grad


def _avg_windows(
    shape: tuple[int, ...], kernel_size: int | Sequence[int], stride: int | Sequence[int] | None,
    padding: int | Sequence[int], ceil_mode: bool, count_include_pad: bool,
) -> list[tuple[int, int, int, list[tuple[int, int]], int]]:
    """(c, m, n, real pixels of the window, divisor) for every output of an average pool.

    The divisor is the window clipped to the padded extent [-p, n + p) with count_include_pad,
    else the number of real pixels, as PyTorch's CPU kernel counts.
    """
    (kh, kw) = pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else pair(stride)
    (ph, pw) = pair(padding)
    c_in, h, w = shape
    out = []
    for c in range(c_in):
        for m in range(pool_out_size(h, kh, sh, ph, 1, ceil_mode)):
            for n in range(pool_out_size(w, kw, sw, pw, 1, ceil_mode)):
                r0, q0 = sh * m - ph, sw * n - pw
                real = [(r, q) for r in range(r0, r0 + kh) for q in range(q0, q0 + kw)
                        if 0 <= r < h and 0 <= q < w]
                padded = [(r, q) for r in range(r0, r0 + kh) for q in range(q0, q0 + kw)
                          if -ph <= r < h + ph and -pw <= q < w + pw]
                out.append((c, m, n, real, len(padded) if count_include_pad else len(real)))
    return out


def avg_pool2d_ref(
    x: NDArray[np.floating], kernel_size: int | Sequence[int], stride: int | Sequence[int] | None = None,
    padding: int | Sequence[int] = 0, ceil_mode: bool = False, count_include_pad: bool = True,
) -> NDArray[np.float64]:
    """Plain-loop average pooling: the window's real pixels summed, over _avg_windows' divisor."""
    (kh, kw) = pair(kernel_size)
    (sh, sw) = (kh, kw) if stride is None else pair(stride)
    (ph, pw) = pair(padding)
    c_in, h, w = x.shape
    y = np.zeros((c_in, pool_out_size(h, kh, sh, ph, 1, ceil_mode),
                  pool_out_size(w, kw, sw, pw, 1, ceil_mode)))
    windows = _avg_windows(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
    for c, m, n, real, div in windows:
        y[c, m, n] = sum(float(x[c, r, q]) for r, q in real) / div
    return y


def avg_pool2d_backward_ref(
    x: NDArray[np.floating], grad_out: NDArray[np.floating], kernel_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None, padding: int | Sequence[int] = 0,
    ceil_mode: bool = False, count_include_pad: bool = True,
) -> NDArray[np.float64]:
    """grad_out[c, m, n] / divisor added to every real pixel of window (m, n)."""
    grad = np.zeros(x.shape)
    windows = _avg_windows(x.shape, kernel_size, stride, padding, ceil_mode, count_include_pad)
    for c, m, n, real, div in windows:
        for r, q in real:
            grad[c, r, q] += grad_out[c, m, n] / div
    return grad


def conv_transpose2d_ref(
    x: NDArray[np.floating], weight: NDArray[np.floating], bias: NDArray[np.floating] | None = None,
    stride: int | Sequence[int] = 1, padding: int | Sequence[int] = 0,
    output_padding: int | Sequence[int] = 0, groups: int = 1, dilation: int | Sequence[int] = 1,
) -> NDArray[np.float64]:
    """Plain-loop transposed conv, from its definition as a scatter: x (C_in, H, W) and weight
    (C_in, C_out/groups, kh, kw); pixel x[c, i, j] adds weight[c, o, u, v] * x[c, i, j] to output
    (g*C_out/groups + o, s_h*i + d_h*u - p_h, s_w*j + d_w*v - p_w) when that lies in the output,
    H_out = (H - 1) s_h - 2 p_h + d_h (kh - 1) + output_padding_h + 1."""
    (sh, sw), (ph, pw), (dh, dw) = pair(stride), pair(padding), pair(dilation)
    (oph, opw) = pair(output_padding)
    c_in, h, w = x.shape
    _, cog, kh, kw = weight.shape
    cig = c_in // groups
    h_out = (h - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    w_out = (w - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    y = np.zeros((groups * cog, h_out, w_out))
    for c in range(c_in):
        g = c // cig
        for i in range(h):
            for j in range(w):
                for o in range(cog):
                    for u in range(kh):
                        for v in range(kw):
                            m, n = sh * i + dh * u - ph, sw * j + dw * v - pw
                            if 0 <= m < h_out and 0 <= n < w_out:
                                y[g * cog + o, m, n] += float(weight[c, o, u, v]) * float(x[c, i, j])
    if bias is not None:
        y += np.asarray(bias, dtype=np.float64)[:, None, None]
    return y


def central_difference(f, a: NDArray[np.float64], h: float = 1e-6) -> NDArray[np.float64]:  # type: ignore[no-untyped-def]
    """d f / d a by central differences, one entry at a time (a is changed and restored)."""
    grad = np.zeros_like(a)
    flat, g = a.reshape(-1), grad.reshape(-1)
    for i in range(flat.size):
        old = flat[i]
        flat[i] = old + h
        up = f()
        flat[i] = old - h
        down = f()
        flat[i] = old
        g[i] = (up - down) / (2 * h)
    return grad
