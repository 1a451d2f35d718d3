"""The locally connected (untied) layer: conv2d's geometry, but its own kernel at every position.

A conv layer uses one kernel W[j] at all H_out * W_out output positions. The untied layer has
the same windows and the same sum, but a separate weight at each position (m, n):

    y[j, m, n] = b[m, n, j] + sum_c sum_u sum_v W[m, n, j, c, u, v] * x_pad[g*C/groups + c,
                                                      s_h*m + d_h*u, s_w*n + d_w*v]

with g = j // (J / groups). Tying every position to one kernel, W[m, n] = K for all (m, n)
(`tie`), gives conv2d. The gradients tell the two apart: an untied weight W[m, n, j, c, u, v] is
used at one position only, so its gradient is that position's single contribution

    dL/dW[m, n, j, c, u, v] = dL/dy[j, m, n] * x_pad[g*C/groups + c, s_h*m + d_h*u, s_w*n + d_w*v]

while a shared weight K[j, c, u, v] gets the sum of those H_out * W_out contributions (grad.py).

Both passes are vectorised: for a band of output rows at a time, the windows of the padded input
are copied out of a strided view into a (groups, positions, C/groups * kh * kw) buffer (im2col per
position), and an einsum contracts each position's window with its own kernels. The backward
builds the same buffers, never a dense matrix: the weight gradient is an outer product per
position, and the input gradient is scattered back onto the padded input one tap (u, v) at a time.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike, NDArray

from .conv import _float_array, pad
from .errors import ArgumentError
from .grad import conv2d_backward
from .sharing import parameter_counts
from .spec import ConvSpec, IntOrPair, PaddingArg, Pair, check_groups, spec_of

# Floats of im2col buffer per band of output rows (4 MiB float32): the band's temporaries stay
# small while each einsum still covers many positions.
BAND_FLOATS = 1 << 20


@dataclass(frozen=True)
class UntiedCall:
    """Validated arguments of one untied call (private helper of the public functions)."""

    x: NDArray[np.floating]  # (C, H, W)
    weight: NDArray[np.floating]  # (H_out, W_out, J, C/groups, kh, kw)
    spec: ConvSpec
    groups: int
    out_hw: Pair

    @property
    def kernels(self) -> int:
        """J, the kernels at each position."""
        return int(self.weight.shape[2])


def _prepare(
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntOrPair,
    padding: PaddingArg,
    dilation: IntOrPair,
    groups: int,
    spec: ConvSpec | None,
) -> UntiedCall:
    """Check the arguments of the untied functions; raise naming the bad one."""
    xa = _float_array(x, "x", 3)
    wa = _float_array(weight, "weight", 6)
    if xa.dtype != wa.dtype:
        dtype = np.result_type(xa, wa)
        xa, wa = xa.astype(dtype), wa.astype(dtype)
    groups = check_groups(groups)
    c, j = xa.shape[0], wa.shape[2]
    if c % groups or j % groups:
        raise ArgumentError(
            "groups", f"`groups`={groups} must divide both the input channels ({c}) and the kernels ({j})")
    if wa.shape[3] != c // groups:
        raise ArgumentError(
            "weight", f"`weight` has {wa.shape[3]} input channels per kernel but the input has {c} "
            f"channels in {groups} group(s): expected (H_out, W_out, {j}, {c // groups}, kh, kw), "
            f"got {wa.shape}")
    layer_spec = spec_of((wa.shape[4], wa.shape[5]), stride, padding, dilation, spec)
    out_hw = layer_spec.output_shape(xa.shape[1:])
    if wa.shape[:2] != out_hw:
        raise ArgumentError(
            "weight", f"`weight` must hold a kernel for each of the {out_hw[0]}x{out_hw[1]} output "
            f"positions, shape ({out_hw[0]}, {out_hw[1]}, {j}, {c // groups}, {wa.shape[4]}, "
            f"{wa.shape[5]}), got {wa.shape}")
    return UntiedCall(xa, wa, layer_spec, groups, out_hw)


def _check_bias(bias: ArrayLike | None, call: UntiedCall) -> NDArray[np.floating] | None:
    """Bias as (J, H_out, W_out) ready to add, from None, a scalar, (J,) or (H_out, W_out, J)."""
    if bias is None:
        return None
    j, (h_out, w_out) = call.kernels, call.out_hw
    b = np.asarray(bias)
    if b.ndim == 0:
        b = np.full(j, b)
    shapes = f"shared, shape ({j},), or one per position, shape ({h_out}, {w_out}, {j})"
    if b.ndim not in (1, 3):
        raise ArgumentError("bias", f"`bias` must be {shapes}, got {b.shape}")
    b = _float_array(b, "bias", b.ndim).astype(call.x.dtype, copy=False)
    if b.shape == (j,):
        return np.broadcast_to(b[:, None, None], (j, h_out, w_out))
    if b.shape == (h_out, w_out, j):
        return b.transpose(2, 0, 1)
    raise ArgumentError("bias", f"`bias` must be {shapes}, got {b.shape}")


def patches(
    xp: NDArray[np.floating], spec: ConvSpec, groups: int, out_hw: Pair, rows: tuple[int, int],
    out: NDArray[np.floating] | None = None,
) -> NDArray[np.floating]:
    """The windows of output rows [a, b) of padded input xp (C, Hp, Wp), copied as (G, positions, K).

    out[g, r * W_out + n, (c * kh + u) * kw + v] = xp[g*C/groups + c, s_h*(a + r) + d_h*u,
    s_w*n + d_w*v], with K = C/groups * kh * kw in the order of weight.reshape(..., K).
    """
    a, b = rows
    c_in = xp.shape[0]
    cg = c_in // groups
    (kh, kw), (sh, sw), (dh, dw) = spec.kernel_size, spec.stride, spec.dilation
    w_out = out_hw[1]
    base = xp[:, a * sh :]
    s0, s1, s2 = base.strides
    view = as_strided(
        base, shape=(groups, b - a, w_out, cg, kh, kw),
        strides=(cg * s0, sh * s1, sw * s2, s0, dh * s1, dw * s2), writeable=False)
    if out is None:
        out = np.empty((groups, (b - a) * w_out, cg * kh * kw), dtype=xp.dtype)
    target = out.reshape(groups, b - a, w_out, cg, kh, kw)
    if not np.may_share_memory(target, out):  # reshape made a copy, which would leave out unfilled
        raise RuntimeError("`out` of patches() must split into (rows, W_out) and (C/g, kh, kw)")
    np.copyto(target, view)
    return out


def bands(out_hw: Pair, window_floats: int) -> list[tuple[int, int]]:
    """Split H_out output rows into [a, b) bands of about BAND_FLOATS floats of windows."""
    h_out, w_out = out_hw
    rows = max(1, BAND_FLOATS // max(1, w_out * window_floats))
    return [(a, min(a + rows, h_out)) for a in range(0, h_out, rows)]


def untied_conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> NDArray[np.floating]:
    """The locally connected layer: conv2d with a separate kernel at each output position.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    weight : ndarray of shape (H_out, W_out, J, C / groups, kh, kw), the kernels of each position
    bias : None, a scalar, shape (J,) (shared by all positions, as in conv2d), or shape
        (H_out, W_out, J) (one per position: the untied layer's own biases)
    stride, padding, dilation, groups : as in conv2d
    spec : a ConvSpec instead of stride, padding and dilation (its kernel_size must be (kh, kw))

    Returns
    -------
    y : ndarray of shape (J, H_out, W_out), float32 (float64 if an input is float64), with

        y[j, m, n] = b[m, n, j] + sum_c sum_u sum_v weight[m, n, j, c, u, v] * x_pad[g*C/groups + c,
                                                        s_h*m + d_h*u, s_w*n + d_w*v]

    where g = j // (J / groups) and H_out, W_out are conv2d's. With weight = tie(K, (H_out, W_out))
    this is conv2d(x, K).
    """
    call = _prepare(x, weight, stride, padding, dilation, groups, spec)
    b = _check_bias(bias, call)
    g, j = call.groups, call.kernels
    h_out, w_out = call.out_hw
    jg, k = j // g, int(np.prod(call.weight.shape[3:]))
    xp = pad(call.x, call.spec.padding)
    y = np.empty((j, h_out, w_out), dtype=call.x.dtype)
    for a, bottom in bands(call.out_hw, g * k):
        cols = patches(xp, call.spec, g, call.out_hw, (a, bottom))  # (G, positions, K)
        wb = call.weight[a:bottom].reshape(-1, g, jg, k)  # (positions, G, J/G, K)
        yb = np.einsum("mgjk,gmk->gjm", wb, cols)  # (G, J/G, positions)
        y[:, a:bottom] = yb.reshape(j, bottom - a, w_out)
    if b is not None:
        y += b
    return y


def untied_conv2d_backward(
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
    """Gradients of a loss through untied_conv2d.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    weight : ndarray of shape (H_out, W_out, J, C / groups, kh, kw)
    grad_out : ndarray of shape (J, H_out, W_out), dL/dy
    stride, padding, dilation, groups, spec : as in untied_conv2d

    Returns
    -------
    grad_x : (C, H, W), dL/dx = sum over positions and taps of weight * grad_out, scattered back
    grad_w : (H_out, W_out, J, C / groups, kh, kw), each weight's own single contribution,
        grad_w[m, n, j, c, u, v] = grad_out[j, m, n] * x_pad[g*C/groups + c, s_h*m + d_h*u, s_w*n + d_w*v]
    grad_b : (H_out, W_out, J), grad_b[m, n, j] = grad_out[j, m, n], the gradient of per-position
        biases; a shared (J,) bias's gradient is its sum over the first two axes
    """
    call = _prepare(x, weight, stride, padding, dilation, groups, spec)
    go = _float_array(grad_out, "grad_out", 3).astype(call.x.dtype, copy=False)
    j, (h_out, w_out) = call.kernels, call.out_hw
    if go.shape != (j, h_out, w_out):
        raise ArgumentError(
            "grad_out", f"`grad_out` must have the output's shape {(j, h_out, w_out)}, got {go.shape}")
    g, spec_ = call.groups, call.spec
    c_in = call.x.shape[0]
    cg, jg = c_in // g, j // g
    (kh, kw), (sh, sw), (dh, dw) = spec_.kernel_size, spec_.stride, spec_.dilation
    k = cg * kh * kw
    xp = pad(call.x, spec_.padding)
    grad_xp = np.zeros_like(xp)
    grad_w = np.empty(call.weight.shape, dtype=call.x.dtype)
    for a, bottom in bands(call.out_hw, k * g):
        rows = bottom - a
        cols = patches(xp, spec_, g, call.out_hw, (a, bottom))  # (G, positions, K)
        gob = go[:, a:bottom].reshape(g, jg, rows * w_out).transpose(2, 0, 1)  # (positions, G, J/G)
        # One contribution per weight: an outer product of grad_out and the window, per position.
        np.multiply(gob[..., None], cols.transpose(1, 0, 2)[:, :, None, :],
                    out=grad_w[a:bottom].reshape(rows * w_out, g, jg, k))
        wb = call.weight[a:bottom].reshape(rows * w_out, g, jg, k)
        dcols = np.einsum("mgjk,mgj->gmk", wb, gob)  # (G, positions, K), dL/d(window)
        # (C, rows, W_out, kh, kw): each tap's gradient, scattered onto the pixels it read.
        dwin = dcols.reshape(g, rows, w_out, cg, kh, kw).transpose(0, 3, 1, 2, 4, 5).reshape(
            c_in, rows, w_out, kh, kw)
        r0 = a * sh
        for u in range(kh):
            for v in range(kw):
                top, left = r0 + dh * u, dw * v
                grad_xp[:, top : top + sh * (rows - 1) + 1 : sh,
                        left : left + sw * (w_out - 1) + 1 : sw] += dwin[:, :, :, u, v]
    pad_h, pad_w = spec_.padding
    h, w = call.x.shape[1:]
    grad_x = grad_xp[:, pad_h : pad_h + h, pad_w : pad_w + w].copy()
    return grad_x, grad_w, go.transpose(1, 2, 0).copy()


def tie(weight: ArrayLike, out_hw: Sequence[int]) -> NDArray[np.floating]:
    """One shared kernel used at every output position, as untied weights.

    Parameters
    ----------
    weight : ndarray of shape (J, C / groups, kh, kw)
    out_hw : (H_out, W_out)

    Returns
    -------
    A read-only broadcast view of shape (H_out, W_out, J, C / groups, kh, kw) with
    tied[m, n] = weight for every (m, n): no memory is copied. untied_conv2d(x, tie(weight, out_hw))
    is conv2d(x, weight). Copy it (np.array) to train it as untied weights.
    """
    wa = _float_array(weight, "weight", 4)
    if len(out_hw) != 2 or any(isinstance(v, bool) for v in out_hw):
        raise ArgumentError("out_hw", f"`out_hw` must be (H_out, W_out), got {tuple(out_hw)!r}")
    try:
        h_out, w_out = operator.index(out_hw[0]), operator.index(out_hw[1])
    except TypeError:
        raise ArgumentError("out_hw", f"`out_hw` must be a pair of ints, got {tuple(out_hw)!r}") from None
    if h_out < 1 or w_out < 1:
        raise ArgumentError("out_hw", f"`out_hw` must be positive, got {(h_out, w_out)!r}")
    return np.broadcast_to(wa, (h_out, w_out, *wa.shape))


@dataclass(frozen=True)
class SharedAndUntiedGrads:
    """The weight gradients of one shared kernel and of its untied twin, from the same grad_out."""

    shared_grad_w: NDArray[np.floating]  # (J, C/groups, kh, kw): one update per shared weight
    untied_grad_w: NDArray[np.floating]  # (H_out, W_out, J, C/groups, kh, kw): one per position
    shared_grad_b: NDArray[np.floating]  # (J,)
    untied_grad_b: NDArray[np.floating]  # (H_out, W_out, J)
    grad_x: NDArray[np.floating]  # (C, H, W), the same for both: the layers compute the same y


def shared_and_untied_grads(
    x: ArrayLike,
    weight: ArrayLike,
    grad_out: ArrayLike,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> SharedAndUntiedGrads:
    """A shared kernel's gradient and the untied gradients of the same kernel tied to every position.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    weight : ndarray of shape (J, C / groups, kh, kw), the shared kernels
    grad_out : ndarray of shape (J, H_out, W_out), dL/dy, the same for both layers
    stride, padding, dilation, groups, spec : as in conv2d

    Returns
    -------
    SharedAndUntiedGrads. The untied layer with weight tie(weight) computes the same y, but each
    of its weights is used at one position, so its gradient is that position's one contribution;
    the shared weight's gradient (conv2d_backward, computed separately) is the sum of them all:

        shared_grad_w = untied_grad_w.sum(axis=(0, 1)),  shared_grad_b = untied_grad_b.sum(axis=(0, 1))
    """
    wa = _float_array(weight, "weight", 4)
    layer_spec = spec_of((wa.shape[2], wa.shape[3]), stride, padding, dilation, spec)
    xa = _float_array(x, "x", 3)
    out_hw = layer_spec.output_shape(xa.shape[1:])
    gx, gw, gb = conv2d_backward(xa, wa, grad_out, groups=groups, spec=layer_spec)
    _, ugw, ugb = untied_conv2d_backward(xa, tie(wa, out_hw), grad_out, groups=groups, spec=layer_spec)
    return SharedAndUntiedGrads(gw, ugw, gb, ugb, gx)


def untied_bytes(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
    with_bias: bool = True,
    itemsize: int = 4,
) -> int:
    """Bytes of one copy of an untied layer's parameters, from shapes alone.

    Parameters
    ----------
    input_shape : (C, H, W)
    weight_shape : (J, C / groups, kh, kw), the shared kernel the untied layer unties
    stride, padding, dilation, groups, spec : as in conv2d
    with_bias : count the per-position biases (H_out, W_out, J) too
    itemsize : bytes per float, 4 (float32) or 8 (float64)

    Returns
    -------
    itemsize * H_out * W_out * J * (C/groups * kh * kw + with_bias): for a 512x512 gray image, eight
    3x3 kernels and padding 1, 512 * 512 * 8 * 9 weights = 75.5 MB float32 (83.9 MB with biases).
    Training keeps several copies (gradient, optimizer state): see train.train_cost.
    """
    if isinstance(itemsize, bool) or itemsize not in (4, 8):
        raise ArgumentError("itemsize", f"`itemsize` must be 4 or 8, got {itemsize!r}")
    counts = parameter_counts(input_shape, weight_shape, stride, padding, dilation, groups, spec=spec)
    return itemsize * (counts.untied_weights + (counts.untied_biases if with_bias else 0))
