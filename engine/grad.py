"""Backward pass of conv2d, and the per-position pieces whose sum is a shared weight's gradient.

A weight W[j, c, u, v] is used at every output position (m, n), so by the chain rule

    dL/dW[j, c, u, v] = sum_m sum_n dL/dy[j, m, n] * x_pad[c', s_h*m + d_h*u, s_w*n + d_w*v]

one term per position: the shared weight gets one update, the sum of all of them.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import (
    ColumnPlan,
    ConvCall,
    _float_array,
    activate,
    activation_grad,
    check_bias,
    choose_fold,
    conv2d,
    pad,
    padded_phases,
    prepare,
    run_chunks,
    strips,
)
from .errors import ArgumentError
from .spec import ConvSpec, IntOrPair, PaddingArg, check_groups, spec_of

LOSSES = ("sum", "mse", "unit")


def _check_grad_out(grad_out: ArrayLike, layer: ConvCall) -> NDArray[np.floating]:
    g = _float_array(grad_out, "grad_out", 3).astype(layer.x.dtype, copy=False)
    expected = (layer.weight.shape[0], *layer.out_hw)
    if g.shape != expected:
        raise ArgumentError("grad_out", f"`grad_out` must have the output's shape {expected}, got {g.shape}")
    return g


def conv2d_backward(
    x: ArrayLike,
    weight: ArrayLike,
    grad_out: ArrayLike,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
    """Gradients of a loss through conv2d.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    weight : ndarray of shape (J, C / groups, kh, kw)
    grad_out : ndarray of shape (J, H_out, W_out), dL/dy
    stride, padding, dilation, groups, spec : as in conv2d

    Returns
    -------
    grad_x : (C, H, W), dL/dx
    grad_w : (J, C / groups, kh, kw), dL/dW: each entry sums over all H_out * W_out positions
    grad_b : (J,), dL/db[j] = sum_m sum_n grad_out[j, m, n]
    """
    layer = prepare(x, weight, stride, padding, dilation, groups, spec=spec)
    grad_out = _check_grad_out(grad_out, layer)
    return _backward(layer, grad_out)


def _backward(
    layer: ConvCall, grad_out: NDArray[np.floating], fold: int | None = None
) -> tuple[NDArray[np.floating], NDArray[np.floating], NDArray[np.floating]]:
    """conv2d_backward on checked arguments; `fold` overrides the ColumnPlan's fold (tests)."""
    grad_x, grad_w, grad_b = _gradients(layer, grad_out, fold, with_input=True)
    if grad_x is None:
        raise RuntimeError("the backward pass left out dL/dx")  # a bug, not input
    return grad_x, grad_w, grad_b


def _weight_backward(
    layer: ConvCall, grad_out: NDArray[np.floating], fold: int | None = None
) -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    """(grad_w, grad_b) of conv2d_backward, without dL/dx: its products W'^T @ dZ and their
    scatter-add cost as much again as dW, for callers that only update the weights."""
    _, grad_w, grad_b = _gradients(layer, grad_out, fold, with_input=False)
    return grad_w, grad_b


def _gradients(
    layer: ConvCall, grad_out: NDArray[np.floating], fold: int | None, *, with_input: bool
) -> tuple[NDArray[np.floating] | None, NDArray[np.floating], NDArray[np.floating]]:
    """dL/dx (if `with_input`, else None), dL/dW and dL/db.

    The forward pass computes y = sum_i shift_i(Z_i) with Z = W' @ B (ColumnPlan), so the
    backward builds dZ_i = shift_i^T(grad_out), then dW' = dZ @ B^T and dB = W'^T @ dZ, and
    scatter-adds each row of dB onto the padded input columns it was copied from.
    """
    spec = layer.spec
    cg, jg = layer.group_sizes
    kh, kw = spec.kernel_size
    (sh, sw), dh = spec.stride, spec.dilation[0]
    h_out, w_out = layer.out_hw
    plan = ColumnPlan.of(spec, choose_fold(spec, cg, jg, w_out) if fold is None else fold)
    f, width, nb, step = plan.fold, plan.width(w_out), len(plan.blocks), plan.step
    k = cg * kh * nb  # rows of the im2col buffer
    # dL/dx_pad is gathered with its columns split by phase (column mod s_w), shape (s_w, C, Hp, Wq),
    # so each block's scatter-add writes with unit stride.
    xq = padded_phases(layer.x, spec.padding, sw, plan.extra)
    dtype = xq.dtype
    w_mats = [plan.weight_matrix(layer.weight[g * jg : (g + 1) * jg]) for g in range(layer.groups)]
    # Padded column (within its phase) where each block's first tap starts reading.
    starts = [off + b * bstep for _, count, off, bstep in plan.groups for b in range(count)]
    phases = [phase for phase, count, _, _ in plan.groups for _ in range(count)]
    eff_h = spec.effective_kernel[0]
    bands = strips(h_out, (k + f * jg if f > 1 else k) * width, backward=True)
    grad_xq = np.zeros_like(xq) if with_input else None
    grad_w = np.zeros((layer.groups, f * jg, k), dtype=dtype)
    parts: list[tuple[int, NDArray[np.floating], NDArray[np.floating]]] = []

    def work(chunk: list[tuple[int, int]]) -> None:
        top = chunk[0][0] * sh  # first padded row this chunk touches
        bottom = (chunk[-1][1] - 1) * sh + eff_h
        local = np.zeros((sw, xq.shape[1], bottom - top, xq.shape[3]) if with_input else 0, dtype=dtype)
        gw = np.zeros_like(grad_w)
        rows_max = max(b - a for a, b in chunk)
        buf = np.empty(k * rows_max * width, dtype=dtype)
        dz_buf = np.zeros(f * jg * rows_max * width if f > 1 else 0, dtype=dtype)
        for g in range(layer.groups):
            xg = xq[:, g * cg : (g + 1) * cg]
            for a, b in chunk:
                rows = b - a
                cols = buf[: k * rows * width].reshape(k, rows * width)
                plan.fill(cols.reshape(cg, kh, nb, rows, width), xg, spec, a)
                grad_out_block = grad_out[g * jg : (g + 1) * jg, a:b]
                if f == 1:
                    dz = grad_out_block.reshape(jg, rows * w_out)
                else:
                    # dZ_i[j, r, n + i*step] = grad_out[j, r, n]; zero where no output reads it.
                    dz4 = dz_buf[: f * jg * rows * width].reshape(f, jg, rows, width)
                    for i in range(f):
                        lo = i * step
                        dz4[i, :, :, :lo] = 0
                        dz4[i, :, :, lo : lo + w_out] = grad_out_block
                        dz4[i, :, :, lo + w_out :] = 0
                    dz = dz4.reshape(f * jg, rows * width)
                gw[g] += dz @ cols.T
                if not with_input:
                    continue
                dcols = (w_mats[g].T @ dz).reshape(cg, kh, nb, rows, width)
                r0 = a * sh - top
                for blk, (phase, start) in enumerate(zip(phases, starts, strict=True)):
                    target = local[phase, g * cg : (g + 1) * cg, :, start : start + width]
                    for u in range(kh):
                        target[:, r0 + dh * u : r0 + dh * u + sh * (rows - 1) + 1 : sh] += dcols[:, u, blk]
        parts.append((top, local, gw))

    # Chunks are contiguous, so each thread's buffer covers only its own rows (plus the halo).
    run_chunks(work, bands)
    for top, local, gw in parts:
        if grad_xq is not None:
            grad_xq[:, :, top : top + local.shape[2]] += local
        grad_w += gw
    grad_b = grad_out.sum(axis=(1, 2))
    grad_w_out = np.concatenate([plan.unfold_weights(m, cg, kh, kw) for m in grad_w])
    if grad_xq is None:
        return None, grad_w_out, grad_b
    pad_h, pad_w = spec.padding
    c_in, h, w = layer.x.shape
    grad_xp = np.empty((c_in, h + 2 * pad_h, w + 2 * pad_w), dtype=dtype)
    for phase in range(sw):
        n = grad_xp[:, :, phase::sw].shape[2]
        grad_xp[:, :, phase::sw] = grad_xq[phase, :, :, :n]
    grad_x = grad_xp[:, pad_h : pad_h + h, pad_w : pad_w + w].copy()
    return grad_x, grad_w_out, grad_b


def weight_grad_contributions(
    x: ArrayLike,
    grad_out: ArrayLike,
    index: Sequence[int],
    kernel_size: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> NDArray[np.floating]:
    """Per-position contributions to one shared weight's gradient.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    grad_out : ndarray of shape (J, H_out, W_out), dL/dy
    index : (j, c, u, v), the weight W[j, c, u, v] (c counts within the kernel's group)
    kernel_size : int or (kh, kw)
    stride, padding, dilation, groups : as in conv2d; or `spec`, a ConvSpec, instead of
        kernel_size, stride, padding and dilation

    Returns
    -------
    contributions : ndarray of shape (H_out, W_out) with
        contributions[m, n] = grad_out[j, m, n] * x_pad[g*C/groups + c, s_h*m + d_h*u, s_w*n + d_w*v]
    Its sum is conv2d_backward(...)[1][j, c, u, v].
    """
    spec = spec_of(kernel_size, stride, padding, dilation, spec)
    kh, kw = spec.kernel_size
    grad_out_arr = np.asarray(grad_out)
    if grad_out_arr.ndim != 3:
        raise ArgumentError("grad_out", f"`grad_out` must have 3 dimensions, got shape {grad_out_arr.shape}")
    xa = np.asarray(x)
    if xa.ndim != 3:
        raise ArgumentError("x", f"`x` must have 3 dimensions, got shape {xa.shape}")
    groups = check_groups(groups)
    if xa.shape[0] % groups:
        raise ArgumentError("groups", f"`groups`={groups} must divide the input channels ({xa.shape[0]})")
    j_total, cg = grad_out_arr.shape[0], xa.shape[0] // groups
    weight_shape = (j_total, cg, kh, kw)
    # A zero weight of the right shape lets prepare() check every argument and the shapes.
    layer = prepare(xa, np.zeros(weight_shape, dtype=np.float32), groups=groups, spec=spec)
    grad_out = _check_grad_out(grad_out_arr, layer)
    try:
        if len(index) != 4 or any(isinstance(i, bool) for i in index):
            raise TypeError
        j, c, u, v = (operator.index(i) for i in index)
    except TypeError:
        raise ArgumentError("index", f"`index` must be four integers (j, c, u, v), got {index!r}") from None
    for name, i, n in zip("jcuv", (j, c, u, v), weight_shape, strict=True):
        if not 0 <= i < n:
            raise ArgumentError("index", f"`index` {name}={i} is out of range 0..{n - 1}")
    _, jg = layer.group_sizes
    channel = (j // jg) * cg + c
    h_out, w_out = layer.out_hw
    geometry = layer.spec
    xp = pad(layer.x[channel : channel + 1], geometry.padding)[0]
    (sh, sw), (dh, dw) = geometry.stride, geometry.dilation
    taps = xp[dh * u : dh * u + sh * (h_out - 1) + 1 : sh, dw * v : dw * v + sw * (w_out - 1) + 1 : sw]
    return grad_out[j] * taps


def loss_grad(
    z: ArrayLike,
    activation: str = "none",
    loss: str = "sum",
    target: ArrayLike | None = None,
    unit: Sequence[int] | None = None,
) -> tuple[float, NDArray[np.floating]]:
    """A scalar loss of σ(z) and its gradient with respect to the pre-activation z.

    Parameters
    ----------
    z : ndarray of shape (J, H_out, W_out), the layer's output before σ
    activation : 'none', 'relu', 'sigmoid' or 'tanh'
    loss : 'sum' (L = sum σ(z)), 'mse' (L = mean((σ(z) - target)^2)) or 'unit'
        (L = σ(z)[j, m, n], one output unit: its gradient reaches only that unit's window)
    target : ndarray of z's shape, needed for 'mse'
    unit : (j, m, n), needed for 'unit'

    Returns
    -------
    (L, dL/dz) with dL/dz of z's shape: pass it as grad_out to conv2d_backward.
    """
    za = np.asarray(z)
    y = activate(za, activation)
    if loss == "sum":
        value, grad_y = float(y.sum()), np.ones_like(y)
    elif loss == "mse":
        if target is None:
            raise ArgumentError("target", "`target` is needed for loss='mse'")
        t = np.asarray(target, dtype=y.dtype)
        if t.shape != y.shape:
            raise ArgumentError("target", f"`target` must have the output's shape {y.shape}, got {t.shape}")
        diff = y - t
        value, grad_y = float(np.mean(diff**2)), 2 * diff / diff.size
    elif loss == "unit":
        j, m, n = _index(unit, "unit", y.shape, "jmn")
        value, grad_y = float(y[j, m, n]), np.zeros_like(y)
        grad_y[j, m, n] = 1
    else:
        raise ArgumentError("loss", f"`loss` must be one of {', '.join(LOSSES)}; got {loss!r}")
    return value, grad_y * activation_grad(za, activation)


def _index(index: Sequence[int] | None, name: str, shape: Sequence[int], letters: str) -> tuple[int, ...]:
    """An index into an array of `shape`, checked; ArgumentError naming `name`."""
    try:
        if index is None or len(index) != len(shape) or any(isinstance(i, bool) for i in index):
            raise TypeError
        values = tuple(operator.index(i) for i in index)
    except TypeError:
        raise ArgumentError(
            name, f"`{name}` must be {len(shape)} integers ({', '.join(letters)}), got {index!r}") from None
    for letter, i, n in zip(letters, values, shape, strict=True):
        if not 0 <= i < n:
            raise ArgumentError(name, f"`{name}` {letter}={i} is out of range 0..{n - 1}")
    return values


def mse_target(layer: ConvCall, bias: NDArray[np.floating] | None, activation: str,
               target_weight: ArrayLike | None) -> NDArray[np.floating]:
    """σ(conv2d(x, target_weight) + b), the mse loss's target: the same layer with hidden kernels."""
    if target_weight is None:
        raise ArgumentError("target_weight", "`target_weight` is needed for loss='mse'")
    tw = _float_array(target_weight, "target_weight", 4).astype(layer.x.dtype, copy=False)
    if tw.shape != layer.weight.shape:
        raise ArgumentError(
            "target_weight", f"`target_weight` must have the layer's weight shape "
            f"{layer.weight.shape} ({layer.weight.shape[0]} kernels of "
            f"{layer.weight.shape[2]}x{layer.weight.shape[3]}), got {tw.shape}")
    return activate(conv2d(layer.x, tw, bias, groups=layer.groups, spec=layer.spec), activation)


@dataclass(frozen=True)
class LayerGradient:
    """A loss of one conv layer's output and its gradient with respect to the shared weights."""

    loss: float  # L
    grad_w: NDArray[np.floating]  # (J, C/groups, kh, kw), dL/dW, each a sum over H_out * W_out positions
    grad_b: NDArray[np.floating]  # (J,)
    contributions: NDArray[np.floating]  # (H_out, W_out), the pieces of grad_w[index] by position
    grad_out: NDArray[np.floating]  # (J, H_out, W_out), dL/dz


def layer_gradient(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None,
    index: Sequence[int],
    *,
    spec: ConvSpec,
    groups: int = 1,
    activation: str = "none",
    loss: str = "sum",
    target_weight: ArrayLike | None = None,
    unit: Sequence[int] | None = None,
) -> LayerGradient:
    """Forward, loss, backward and one weight's per-position contributions, in one call.

    Parameters
    ----------
    x : (C, H, W); weight : (J, C/groups, kh, kw); bias : (J,) or None
    index : (j, c, u, v), the shared weight whose contributions to return
    spec, groups, activation : the layer, as in conv_layer
    loss : 'sum', 'mse' or 'unit', as in loss_grad
    target_weight : for 'mse', the hidden layer's weights (weight's shape): the target is
        σ(conv2d(x, target_weight) + b), the same layer with other kernels
    unit : for 'unit', (j, m, n)

    Returns
    -------
    LayerGradient, with contributions.sum() == grad_w[index] up to rounding.
    """
    layer = prepare(x, weight, groups=groups, spec=spec)
    b = check_bias(bias, layer.weight.shape[0], layer.x.dtype)
    z = conv2d(layer.x, layer.weight, b, groups=groups, spec=spec)
    target = mse_target(layer, b, activation, target_weight) if loss == "mse" else None
    value, grad_z = loss_grad(z, activation, loss, target, unit)
    grad_w, grad_b = _weight_backward(layer, grad_z.astype(layer.x.dtype, copy=False))
    contributions = weight_grad_contributions(layer.x, grad_z, index, groups=groups, spec=spec)
    return LayerGradient(value, grad_w, grad_b, contributions, grad_z)
