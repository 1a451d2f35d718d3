"""One step of gradient descent, w ← w − lr·g, taken by a conv layer and by its untied twin.

A shared weight K[j, c, u, v] is one parameter used at all M = H_out * W_out output positions, so
its gradient is the sum of M contributions (grad.py) and its one step is

    K' = K − lr * sum_p g_p,   g_p[j, c, u, v] = dL/dz[j, m, n] * x_pad[g*C/groups + c, s_h*m + d_h*u,
                                                                        s_w*n + d_w*v]

The untied (locally connected) layer starts as M copies of K, one at each position p = (m, n)
(untied.tie). Each copy is used at its own position only, so its gradient is its own contribution
and it takes its own step, with nothing summed:

    W'_p = K − lr * g_p

Both layers compute the same output before the step, so they start from the same loss; after it
they differ. With σ = none the untied output moves by exactly

    z'[j, m, n] = z[j, m, n] − lr * dL/dz[j, m, n] * |x_p|^2

(|x_p|^2 the sum of squares of the window the kernel's group reads at p), while the shared
output moves by lr * dL/dz-weighted windows of every position. The biases are held fixed, as the
page's step holds them: only the weights move.

The untied step never holds all M copies at once: it runs band by band of output rows, building
each band's copies and running untied_conv2d on the padded rows that band reads.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import BACKWARD_STRIP_FLOATS, ConvCall, activate, check_bias, conv2d, pad, prepare
from .errors import ArgumentError, ArgumentTypeError
from .grad import _weight_backward, loss_grad, mse_target
from .spec import ConvSpec
from .untied import BAND_FLOATS, bands, patches, untied_conv2d

ENGINE_THREADS = 4  # the backward pass uses at most this many threads (conv._threads_setting)


@dataclass(frozen=True)
class StepLosses:
    """The loss before one step, and after it for the shared layer and for the untied one."""

    lr: float  # the learning rate of the step
    positions: int  # M = H_out * W_out: contributions summed by a shared weight; copies of the untied one
    loss_before: float  # L at the current weights, the same for both layers
    shared_loss_after: float  # L after K' = K − lr * sum_p g_p
    untied_loss_after: float  # L after W'_p = K − lr * g_p at every position p
    weight_after: NDArray[np.floating]  # (J, C/groups, kh, kw), the shared layer's K'


def step_losses(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None,
    lr: float,
    *,
    spec: ConvSpec,
    groups: int = 1,
    activation: str = "none",
    loss: str = "sum",
    target_weight: ArrayLike | None = None,
    unit: Sequence[int] | None = None,
) -> StepLosses:
    """One step of gradient descent on the shared layer and on the untied layer, and their losses.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    weight : ndarray of shape (J, C / groups, kh, kw), the shared kernels K
    bias : ndarray of shape (J,), a scalar, or None; held fixed by the step
    lr : learning rate, a finite real number > 0
    spec, groups, activation : the layer, as in layer_gradient
    loss : 'sum', 'mse' or 'unit', as in loss_grad; target_weight for 'mse', unit (j, m, n) for 'unit'

    Returns
    -------
    StepLosses with, for g_p the contribution of position p to dL/dK (sum_p g_p = dL/dK),

        loss_before       = L(σ(conv2d(x, K) + b))
        shared_loss_after = L(σ(conv2d(x, K − lr * sum_p g_p) + b))
        untied_loss_after = L(σ(untied_conv2d(x, W') + b)),  W'[m, n] = K − lr * g_(m, n)

    With one output position (M = 1) the two losses after are equal. Losses are computed in float64
    from outputs of x's precision (float32 unless x or weight is float64).
    """
    rate = _check_lr(lr)
    layer = prepare(x, weight, groups=groups, spec=spec)
    b = check_bias(bias, layer.weight.shape[0], layer.x.dtype)
    z = conv2d(layer.x, layer.weight, b, groups=groups, spec=spec)
    target = mse_target(layer, b, activation, target_weight) if loss == "mse" else None
    _, grad_z = loss_grad(z, activation, loss, target, unit)  # checks loss, target and unit
    grad_z = grad_z.astype(layer.x.dtype, copy=False)
    grad_w, _ = _weight_backward(layer, grad_z)
    before = _loss_value(z, activation, loss, target, unit)
    del z
    weight_after = layer.weight - layer.x.dtype.type(rate) * grad_w
    shared = _loss_value(conv2d(layer.x, weight_after, b, groups=groups, spec=spec), activation, loss,
                         target, unit)
    untied = _loss_value(_untied_after(layer, b, grad_z, rate), activation, loss, target, unit)
    h_out, w_out = layer.out_hw
    return StepLosses(rate, h_out * w_out, before, shared, untied, weight_after)


def _check_lr(lr: object) -> float:
    """lr as a float, finite and > 0; ArgumentError or ArgumentTypeError naming `lr`."""
    if isinstance(lr, bool) or not isinstance(lr, int | float | np.floating | np.integer):
        raise ArgumentTypeError("lr", f"`lr` must be a real number, got {lr!r}")
    rate = float(lr)
    if not math.isfinite(rate) or rate <= 0:
        raise ArgumentError("lr", f"`lr` must be a finite number > 0, got {lr!r}")
    return rate


def _loss_value(z: NDArray[np.floating], activation: str, loss: str, target: NDArray[np.floating] | None,
                unit: Sequence[int] | None) -> float:
    """L of pre-activation z, in float64 (arguments already checked by loss_grad)."""
    if loss == "unit":
        assert unit is not None
        j, m, n = unit
        return float(activate(np.asarray(z[j, m, n], dtype=np.float64), activation))
    y = activate(z.astype(np.float64), activation)
    if loss == "sum":
        return float(y.sum())
    assert target is not None
    y -= target
    return float(np.mean(y * y))


def _untied_after(layer: ConvCall, bias: NDArray[np.floating] | None, grad_z: NDArray[np.floating],
                  rate: float) -> NDArray[np.floating]:
    """z of the untied layer after W'_p = K − lr * g_p, band by band of output rows: (J, H_out, W_out)."""
    spec, g = layer.spec, layer.groups
    cg, jg = layer.group_sizes
    j_total, k = layer.weight.shape[0], cg * spec.kernel_size[0] * spec.kernel_size[1]
    h_out, w_out = layer.out_hw
    sh, eff_h = spec.stride[0], spec.effective_kernel[0]
    xp = pad(layer.x, spec.padding)
    unpadded = replace(spec, padding=(0, 0))  # each band reads rows of the padded input
    shared = layer.weight.reshape(1, g, jg, k)
    lr = layer.x.dtype.type(rate)
    z = np.empty((j_total, h_out, w_out), dtype=layer.x.dtype)
    for a, bottom in bands(layer.out_hw, j_total * k):
        rows = bottom - a
        cols = patches(xp, spec, g, layer.out_hw, (a, bottom)).transpose(1, 0, 2)  # (positions, G, K)
        dz = grad_z[:, a:bottom].reshape(g, jg, rows * w_out).transpose(2, 0, 1)  # (positions, G, J/G)
        # Each position's own copy of K, stepped by its own contribution g_p = dL/dz[j, p] * window_p.
        copies = dz[..., None] * cols[:, :, None, :]  # (positions, G, J/G, K)
        np.multiply(copies, -lr, out=copies)
        copies += shared
        band_x = xp[:, a * sh : (bottom - 1) * sh + eff_h]
        z[:, a:bottom] = untied_conv2d(band_x, copies.reshape(rows, w_out, j_total, *layer.weight.shape[1:]),
                                       bias, groups=g, spec=unpadded)
    return z


@dataclass(frozen=True)
class StepCost:
    """The work and memory of step_losses, from shapes alone."""

    multiply_adds: int  # forward, target, backward, the shared layer again, the untied copies and forward
    peak_bytes: int  # an upper bound of the memory step_losses holds at once


def step_cost(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    spec: ConvSpec,
    *,
    groups: int = 1,
    with_target: bool = False,
    itemsize: int = 4,
) -> StepCost:
    """What step_losses costs, from shapes alone (checked against tracemalloc in tests/engine).

    Parameters
    ----------
    input_shape : (C, H, W)
    weight_shape : (J, C / groups, kh, kw)
    spec, groups : the layer
    with_target : loss='mse', whose target is one more forward pass
    itemsize : bytes per float, 4 (float32) or 8 (float64)

    Returns
    -------
    StepCost. With F = M * J * C/groups * kh * kw the multiply-adds of one forward pass: (6 + with_target) F
    (forward, backward 2F, the shared layer after, the untied copies and their forward pass). The untied
    layer's M copies are built one band of output rows at a time, so memory holds about three bands of
    max(BAND_FLOATS, W_out * J * C/groups * kh * kw) floats, never M * J * C/groups * kh * kw of them.
    """
    if isinstance(itemsize, bool) or itemsize not in (4, 8):
        raise ArgumentError("itemsize", f"`itemsize` must be 4 or 8, got {itemsize!r}")
    c, h, w = (int(n) for n in input_shape)
    j, cg, kh, kw = (int(n) for n in weight_shape)
    h_out, w_out = spec.output_shape((h, w))
    out = j * h_out * w_out
    forward = out * cg * kh * kw
    padded = c * (h + 2 * spec.padding[0]) * (w + 2 * spec.padding[1] + spec.stride[1] * kw)
    per_row = w_out * j * cg * kh * kw
    band = max(BAND_FLOATS, per_row)
    # x, its padded copies (forward, backward and its gradient), z, target, dL/dz, the float64 loss
    # temporaries, the backward's strips, and the untied band: its windows, copies and product.
    floats = c * h * w + 4 * padded + 4 * out + ENGINE_THREADS * BACKWARD_STRIP_FLOATS + 4 * band
    return StepCost((6 + with_target) * forward, itemsize * floats + 2 * 8 * out + band)
