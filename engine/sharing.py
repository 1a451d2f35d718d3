"""Weight sharing made countable: per-weight usage, per-pixel coverage, the dense matrix M.

A conv layer is a dense layer v = σ(M u + b) on the flattened input u = x.ravel(), whose matrix
M of shape (J * H_out * W_out, C * H * W) is sparse and weight-tied: row (j, m, n) holds
W[j, c, u, v] in column (c', s_h*m + d_h*u - p_h, s_w*n + d_w*v - p_w) for every tap that lands
inside the image, and zeros elsewhere. Each weight appears in up to H_out * W_out rows.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import _float_array
from .errors import ArgumentError
from .spec import (
    ConvSpec,
    IntOrPair,
    PaddingArg,
    Pair,
    _input_hw,
    axis_reads,
    check_groups,
    spec_of,
)

# Largest dense M (rows x columns) that dense_matrix() will build: 16.7 M entries, 64 MiB float32.
MAX_DENSE_ENTRIES = 1 << 24


def _ints(values: Sequence[int], name: str) -> tuple[int, ...]:
    """The items of a shape as Python ints, or ValueError naming `name`."""
    try:
        return tuple(operator.index(v) for v in values)
    except TypeError:
        raise ArgumentError(name, f"`{name}` must hold ints, got {tuple(values)!r}") from None


def _axis_hits(n: int, k: int, s: int, p: int, d: int, n_out: int) -> NDArray[np.bool_]:
    """(k, n_out): whether tap u of output m lands inside 0..n-1 along one axis."""
    pos = s * np.arange(n_out)[None, :] + d * np.arange(k)[:, None] - p
    return (pos >= 0) & (pos < n)


@dataclass(frozen=True)
class WeightUsage:
    """How often each kernel tap is used, the same for every kernel and channel."""

    real: NDArray[np.int64]  # (kh, kw) output positions where tap (u, v) reads a real pixel
    padding: NDArray[np.int64]  # (kh, kw) output positions where it reads padding
    total: int  # H_out * W_out, positions per feature map


def weight_usage(
    input_hw: Sequence[int],
    kernel_hw: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    *,
    spec: ConvSpec | None = None,
) -> WeightUsage:
    """Usage count of every kernel tap.

    Parameters
    ----------
    input_hw : (H, W)
    kernel_hw, stride, padding, dilation : as in conv2d, or `spec`, a ConvSpec, instead

    Returns
    -------
    WeightUsage: real[u, v] counts the output positions (m, n) at which W[., ., u, v] multiplies
    a real pixel, padding[u, v] those where it multiplies a padding zero; real + padding =
    total = H_out * W_out. Every weight W[j, c, u, v] of the layer has the counts of its tap.
    """
    spec = spec_of(kernel_hw, stride, padding, dilation, spec)
    h, w = _input_hw(input_hw)
    h_out, w_out = spec.output_shape((h, w))
    rows = _axis_hits(h, spec.kernel_size[0], spec.stride[0], spec.padding[0],
                      spec.dilation[0], h_out).sum(axis=1)
    cols = _axis_hits(w, spec.kernel_size[1], spec.stride[1], spec.padding[1],
                      spec.dilation[1], w_out).sum(axis=1)
    real = np.outer(rows, cols).astype(np.int64)
    total = h_out * w_out
    return WeightUsage(real, total - real, total)


def coverage(
    input_hw: Sequence[int],
    kernel_hw: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    *,
    spec: ConvSpec | None = None,
) -> NDArray[np.int64]:
    """Per input pixel, the number of output units of one feature map that read it.

    The geometry comes as kernel_hw, stride, padding and dilation, or as one ConvSpec (`spec=`).

    Returns
    -------
    ndarray of shape (H, W), int64; zero where no window reaches a pixel (a stride larger than
    the effective kernel skips lines, or the last lines are left over by the division).
    """
    spec = spec_of(kernel_hw, stride, padding, dilation, spec)
    h, w = _input_hw(input_hw)
    h_out, w_out = spec.output_shape((h, w))
    rows, cols = (
        axis_reads(n, spec.kernel_size[a], spec.stride[a], spec.padding[a], spec.dilation[a], n_out)
        for a, (n, n_out) in enumerate(((h, h_out), (w, w_out)))
    )
    return np.outer(rows, cols)


@dataclass(frozen=True)
class DenseMatrix:
    """The conv layer as a matrix M with M @ x.ravel() == conv2d(x).ravel() (no bias)."""

    shape: Pair  # (J * H_out * W_out, C * H * W)
    rows: NDArray[np.int64]  # (nnz,) row of each non-zero: j * H_out * W_out + m * W_out + n
    cols: NDArray[np.int64]  # (nnz,) column: c * H * W + r * W + q
    tied: NDArray[np.int64]  # (nnz,) flat index into weight.ravel() of the weight it holds
    values: NDArray[np.floating]  # (nnz,) = weight.ravel()[tied]
    weight_shape: tuple[int, int, int, int]  # (J, C / groups, kh, kw)
    output_shape: tuple[int, int, int]  # (J, H_out, W_out)

    @property
    def nnz(self) -> int:
        """Number of structural non-zeros (taps on real pixels)."""
        return int(self.rows.size)

    @property
    def density(self) -> float:
        """nnz over the number of entries of M."""
        return self.nnz / (self.shape[0] * self.shape[1])

    def toarray(self) -> NDArray[np.floating]:
        """M as a dense (J * H_out * W_out, C * H * W) array."""
        m = np.zeros(self.shape, dtype=self.values.dtype)
        m[self.rows, self.cols] = self.values
        return m


def dense_matrix(
    input_shape: Sequence[int],
    weight: ArrayLike,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    max_entries: int = MAX_DENSE_ENTRIES,
    *,
    spec: ConvSpec | None = None,
) -> DenseMatrix:
    """The equivalent dense, weight-tied matrix of a conv layer, as sparse triplets.

    Parameters
    ----------
    input_shape : (C, H, W)
    weight : ndarray of shape (J, C / groups, kh, kw)
    stride, padding, dilation, groups : as in conv2d
    max_entries : refuse (ValueError) when M would have more than this many entries
    spec : a ConvSpec instead of stride, padding and dilation (its kernel_size must be (kh, kw))

    Returns
    -------
    DenseMatrix with M[row, col] = weight.ravel()[tied] at each non-zero, so that
    M @ x.ravel() == conv2d(x, weight, ...).ravel() for every x of shape input_shape.
    """
    if len(input_shape) != 3:
        raise ArgumentError("input_shape", f"`input_shape` must be (C, H, W), got {tuple(input_shape)!r}")
    c_in, h, w = _ints(input_shape, "input_shape")
    if c_in < 1:
        raise ArgumentError("input_shape", f"`input_shape` must have at least one channel, got {c_in}")
    wa = _float_array(weight, "weight", 4)
    j_total, cg, kh, kw = wa.shape
    groups = check_groups(groups)
    if c_in % groups or j_total % groups or cg != c_in // groups:
        raise ArgumentError("weight",
            f"`weight` of shape {wa.shape} does not fit {c_in} input channels in "
            f"{groups} group(s): expected ({j_total}, {c_in // max(groups, 1)}, kh, kw)"
        )
    spec = spec_of((kh, kw), stride, padding, dilation, spec)
    h_out, w_out = spec.output_shape((h, w))
    n_rows, n_cols = j_total * h_out * w_out, c_in * h * w
    if n_rows * n_cols > max_entries:
        raise ArgumentError("input_shape",
            f"`input_shape`: the dense matrix would be {n_rows:,} x {n_cols:,} = "
            f"{n_rows * n_cols:,} entries, over the limit of {max_entries:,}; use a smaller "
            "input (a crop) or fewer kernels"
        )
    jg = j_total // groups
    # Per-axis input coordinate of tap u at output m, and whether it is inside the image.
    rpos = spec.stride[0] * np.arange(h_out)[None, :] + spec.dilation[0] * np.arange(kh)[:, None] \
        - spec.padding[0]  # (kh, H_out)
    cpos = spec.stride[1] * np.arange(w_out)[None, :] + spec.dilation[1] * np.arange(kw)[:, None] \
        - spec.padding[1]  # (kw, W_out)
    # Broadcast to (J, Cg, kh, kw, H_out, W_out).
    j_idx = np.arange(j_total)[:, None, None, None, None, None]
    c_idx = np.arange(cg)[None, :, None, None, None, None]
    r = rpos[None, None, :, None, :, None]
    q = cpos[None, None, None, :, None, :]
    m = np.arange(h_out)[None, None, None, None, :, None]
    n = np.arange(w_out)[None, None, None, None, None, :]
    full = (j_total, cg, kh, kw, h_out, w_out)
    inside = np.broadcast_to((r >= 0) & (r < h) & (q >= 0) & (q < w), full)
    channel = (j_idx // jg) * cg + c_idx
    rows = np.broadcast_to((j_idx * h_out + m) * w_out + n, full)[inside]
    cols = np.broadcast_to((channel * h + r) * w + q, full)[inside]
    tied = np.broadcast_to(
        ((j_idx * cg + c_idx) * kh + np.arange(kh)[None, None, :, None, None, None]) * kw
        + np.arange(kw)[None, None, None, :, None, None],
        full,
    )[inside]
    rows, cols, tied = (a.astype(np.int64) for a in (rows, cols, tied))
    order = np.lexsort((cols, rows))
    rows, cols, tied = rows[order], cols[order], tied[order]
    return DenseMatrix(
        (n_rows, n_cols), rows, cols, tied, wa.ravel()[tied], (j_total, cg, kh, kw),
        (j_total, h_out, w_out),
    )


@dataclass(frozen=True)
class ParameterCounts:
    """Weights and biases of the conv layer and of the two layers it specialises."""

    conv_weights: int  # J * C/groups * kh * kw: one per shared weight
    conv_biases: int  # J
    untied_weights: int  # locally connected: a separate kernel at each of the H_out * W_out positions
    untied_biases: int  # J * H_out * W_out
    dense_weights: int  # (J * H_out * W_out) * (C * H * W): every output sees every input
    dense_biases: int  # J * H_out * W_out
    connections: int  # non-zeros of M: multiplications by a real pixel
    positions: int  # H_out * W_out: positions each shared weight is used at

    @property
    def conv(self) -> int:
        """Total parameters of the conv layer."""
        return self.conv_weights + self.conv_biases

    @property
    def untied(self) -> int:
        """Total parameters of the locally connected layer."""
        return self.untied_weights + self.untied_biases

    @property
    def dense(self) -> int:
        """Total parameters of the dense layer."""
        return self.dense_weights + self.dense_biases


def parameter_counts(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> ParameterCounts:
    """Parameter counts of the conv layer, its untied (locally connected) twin and a dense layer.

    Parameters
    ----------
    input_shape : (C, H, W)
    weight_shape : (J, C / groups, kh, kw)
    stride, padding, dilation, groups : as in conv2d, or `spec`, a ConvSpec, for the first three

    Returns
    -------
    ParameterCounts, by formula; `connections` is the number of non-zeros of the dense matrix M,
    counted per axis without building M.
    """
    if len(input_shape) != 3 or len(weight_shape) != 4:
        raise ArgumentError(
            "input_shape", "`input_shape` must be (C, H, W) and `weight_shape` (J, C/groups, kh, kw)")
    c_in, h, w = _ints(input_shape, "input_shape")
    j_total, cg, kh, kw = _ints(weight_shape, "weight_shape")
    groups = check_groups(groups)
    if c_in % groups or j_total % groups or cg != c_in // groups:
        raise ArgumentError("weight_shape",
            f"`weight_shape` {tuple(weight_shape)} does not fit {c_in} channels in {groups} group(s)"
        )
    spec = spec_of((kh, kw), stride, padding, dilation, spec)
    h_out, w_out = spec.output_shape((h, w))
    positions = h_out * w_out
    kernel = cg * kh * kw
    usage = weight_usage((h, w), spec=spec)
    return ParameterCounts(
        conv_weights=j_total * kernel,
        conv_biases=j_total,
        untied_weights=j_total * positions * kernel,
        untied_biases=j_total * positions,
        dense_weights=j_total * positions * c_in * h * w,
        dense_biases=j_total * positions,
        connections=j_total * cg * int(usage.real.sum()),
        positions=positions,
    )
