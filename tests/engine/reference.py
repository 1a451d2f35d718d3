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
