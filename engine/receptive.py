"""Receptive fields: which input pixels one output unit reads, for one layer and for a stack.

For one layer, output unit (m, n) reads padded-input rows s_h*m + d_h*u, u = 0..kh-1, that is
input rows s_h*m + d_h*u - p_h (likewise columns); taps outside 0..H-1 fall on the zero padding.

For a stack of layers (Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019), with k_l the effective kernel d_l(k_l - 1) + 1:

    r_l = r_{l-1} + (k_l - 1) * j_{l-1}       receptive field size, r_0 = 1
    j_l = j_{l-1} * s_l                         jump (effective stride), j_0 = 1
    start_l = start_{l-1} - p_l * j_{l-1}       input coordinate of the first unit's left edge

so output unit i of layer L reads input positions start_L + i * j_L ... + r_L - 1.

Pools follow the same recurrences with their (k, s, p, d) (ceil_mode only adds units at the
end); activations keep size, jump and start. A transposed conv has no whole-pixel jump (it is
j_{l-1} / s), so receptive_field_stack refuses it, and receptive_box walks one unit's box back
through every kind instead: through conv and pools [lo, hi] -> [s*lo - p, s*hi - p + d(k - 1)],
through a transposed conv [lo, hi] -> [ceil((lo + p - d(k - 1)) / s), floor((hi + p) / s)].

The effective receptive field (Luo, Li, Urtasun and Zemel, "Understanding the Effective
Receptive Field in Deep Convolutional Neural Networks", NeurIPS 2016) of unit y[j, m, n] is
|dy[j, m, n] / dx| summed over input channels, one backward pass: a heatmap over the input,
usually near-Gaussian and much smaller than the theoretical box.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ArgumentError
from .spec import ConvSpec, IntOrPair, PaddingArg, Pair, _input_hw, spec_of
from .stack import (
    ACTIVATION_KINDS,
    FIELDS,
    MAX_GEOMETRY_LAYERS,
    MAX_STACK_LAYERS,
    StackLayer,
    StackLayerError,
    _unit_grad,
    as_layers,
    layer_from_dict,
    layer_output_hw,
    stack_cost,
)


@dataclass(frozen=True)
class ReceptiveField:
    """The input region of one output unit of one layer."""

    unit: Pair  # (row, col) of the output unit
    top: int  # first input row of the window (negative when it starts in the padding)
    left: int  # first input column of the window
    height: int  # rows spanned, d_h(kh - 1) + 1
    width: int  # columns spanned
    clipped: tuple[int, int, int, int] | None  # (top, left, height, width) inside the image
    tap_rows: NDArray[np.intp]  # (kh,) input row of each kernel row u
    tap_cols: NDArray[np.intp]  # (kw,) input column of each kernel column v
    in_padding: NDArray[np.bool_]  # (kh, kw), True where tap (u, v) lands on padding

    @property
    def taps(self) -> list[tuple[int, int, int, int, bool]]:
        """Every tap as (u, v, input row, input column, on padding)."""
        return [
            (u, v, int(r), int(c), bool(self.in_padding[u, v]))
            for u, r in enumerate(self.tap_rows)
            for v, c in enumerate(self.tap_cols)
        ]


def receptive_field(
    input_hw: Sequence[int],
    kernel_hw: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    row: int = 0,
    col: int = 0,
    *,
    spec: ConvSpec | None = None,
) -> ReceptiveField:
    """Receptive field of output unit (row, col) of one conv layer.

    Parameters
    ----------
    input_hw : (H, W)
    kernel_hw, stride, padding, dilation : as in conv2d
    row, col : the output unit, 0 <= row < H_out, 0 <= col < W_out
    spec : a ConvSpec instead of the four geometry arguments

    Returns
    -------
    ReceptiveField with the window box (top, left, height, width) in input coordinates (it may
    reach into the padding, at negative or >= H coordinates), the box clipped to the image, the
    input coordinate of every tap, and which taps fall on padding.
    """
    spec = spec_of(kernel_hw, stride, padding, dilation, spec)
    h, w = _input_hw(input_hw)
    h_out, w_out = spec.output_shape((h, w))
    for name, i, n in (("row", row, h_out), ("col", col, w_out)):
        if isinstance(i, bool) or not isinstance(i, int | np.integer) or not 0 <= i < n:
            raise ArgumentError(name, f"`{name}` must be an output index in 0..{n - 1}, got {i!r}")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = (
        spec.kernel_size, spec.stride, spec.padding, spec.dilation,
    )
    tap_rows = sh * row - ph + dh * np.arange(kh)
    tap_cols = sw * col - pw + dw * np.arange(kw)
    rows_in = (tap_rows >= 0) & (tap_rows < h)
    cols_in = (tap_cols >= 0) & (tap_cols < w)
    top, left = int(tap_rows[0]), int(tap_cols[0])
    height, width = spec.effective_kernel
    c_top, c_left = max(top, 0), max(left, 0)
    c_bottom, c_right = min(top + height, h), min(left + width, w)
    clipped = (
        (c_top, c_left, c_bottom - c_top, c_right - c_left)
        if c_bottom > c_top and c_right > c_left
        else None
    )
    return ReceptiveField(
        (int(row), int(col)), top, left, height, width, clipped,
        tap_rows, tap_cols, ~(rows_in[:, None] & cols_in[None, :]),
    )


@dataclass(frozen=True)
class StackEntry:
    """Receptive-field arithmetic after one layer of a stack, per axis (h, w)."""

    size: Pair  # r_l, input pixels one unit of this layer sees
    jump: Pair  # j_l, input distance between neighbouring units
    start: Pair  # input coordinate of the first unit's top-left (may be negative)
    kind: str = "conv"  # the layer's kind (stack.KINDS)

    @property
    def center(self) -> tuple[float, float]:
        """Input coordinate of the centre of the first unit's receptive field."""
        return (
            self.start[0] + (self.size[0] - 1) / 2,
            self.start[1] + (self.size[1] - 1) / 2,
        )


LayerArg = ConvSpec | tuple | dict | StackLayer


_SPEC_KEYS = frozenset(("kernel_size", "stride", "padding", "dilation"))


def _as_stack_layer(layer: LayerArg, i: int) -> StackLayer:
    """A StackLayer from any layer form.

    Dicts with a "kind", or with stack fields beyond ConvSpec.make's (weight, out_channels, ...),
    go through stack.layer_from_dict; other dicts and tuples through ConvSpec.make.
    """
    if isinstance(layer, StackLayer):
        return layer
    if isinstance(layer, dict):
        extra = set(layer) - _SPEC_KEYS
        if "kind" in layer or (extra and extra <= set(FIELDS["conv"])):
            return layer_from_dict(layer, i)
    spec = _as_spec(layer, i)
    return StackLayer("conv", spec.kernel_size, spec.stride, spec.padding, spec.dilation)


def _as_stack(layers: Iterable[LayerArg]) -> list[StackLayer]:
    stack = [_as_stack_layer(layer, i) for i, layer in enumerate(layers)]
    if not stack:
        raise ArgumentError("layers", "`layers` must hold at least one layer")
    return as_layers(stack, MAX_GEOMETRY_LAYERS)


def _as_spec(layer: ConvSpec | tuple | dict, i: int) -> ConvSpec:
    if isinstance(layer, ConvSpec):
        return layer
    try:
        if isinstance(layer, dict):
            return ConvSpec.make(**layer)
        return ConvSpec.make(*layer)
    except (TypeError, ValueError) as err:
        raise ArgumentError("layers", f"`layers`[{i}]: {err}") from None


def receptive_field_stack(layers: Iterable[LayerArg]) -> list[StackEntry]:
    """Receptive field size, jump and start offset after each layer of a stack.

    Parameters
    ----------
    layers : up to stack.MAX_GEOMETRY_LAYERS layers: ConvSpec, (kernel_size, stride, padding,
        dilation) tuples (trailing items optional), dicts of those keywords, or StackLayers and
        dicts with a "kind" (stack.layer_from_dict): conv, maxpool, avgpool, relu, sigmoid, tanh

    Returns
    -------
    One StackEntry per layer, by the recurrences in this module's docstring (activations keep
    the entry before them). A conv_transpose layer raises StackLayerError naming
    `layers[i].kind`: its jump would be a fraction of a pixel; receptive_box handles it.
    """
    stack = _as_stack(layers)
    size, jump, start = [1, 1], [1, 1], [0, 0]
    out: list[StackEntry] = []
    for i, layer in enumerate(stack):
        if layer.kind == "conv_transpose":
            raise StackLayerError(
                i, "kind",
                "conv_transpose has no receptive-field size and jump in whole input pixels (its "
                "jump is the previous jump / stride); use receptive_box for one unit's input box",
            )
        if layer.kind not in ACTIVATION_KINDS:
            for a in range(2):
                size[a] += (layer.effective_kernel[a] - 1) * jump[a]
                start[a] -= layer.padding[a] * jump[a]
                jump[a] *= layer.stride[a]
        out.append(StackEntry((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1]),
                              layer.kind))
    return out


@dataclass(frozen=True)
class ReceptiveBox:
    """The input box of one unit of a stack's last layer, and how much of it is padding."""

    unit: Pair  # (row, col) in the last layer's output
    top: int  # first input row of the box (negative when it starts in the padding)
    left: int  # first input column
    height: int  # rows spanned (0 when the unit reads no input: a transposed conv's gap)
    width: int  # columns spanned
    clipped: tuple[int, int, int, int] | None  # (top, left, height, width) inside the image
    padding: tuple[int, int, int, int]  # rows above, rows below, columns left, right: outside the image

    @property
    def area(self) -> int:
        """Pixels of the box, height * width."""
        return self.height * self.width

    @property
    def in_padding(self) -> int:
        """Pixels of the box outside the image."""
        inside = 0 if self.clipped is None else self.clipped[2] * self.clipped[3]
        return self.area - inside

    @property
    def padding_fraction(self) -> float:
        """Share of the box outside the image (0 for an empty box)."""
        return self.in_padding / self.area if self.area else 0.0


def _unit_index(value: object, name: str, n: int, part: str = "") -> int:
    """value as an int in 0..n-1, or ArgumentError naming `name` (and which part of it)."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or not 0 <= value < n:
        what = f"`{name}` {part}" if part else f"`{name}`"
        raise ArgumentError(name, f"{what} must be an index in 0..{n - 1}, got {value!r}")
    return int(value)


def _stack_shapes(input_hw: Sequence[int], stack: list[StackLayer]) -> list[Pair]:
    """(H, W) of the input and after every layer; StackLayerError naming a layer's field."""
    hw = [_input_hw(input_hw)]
    for i, layer in enumerate(stack):
        hw.append(layer_output_hw(layer, hw[-1], i))
    return hw


def receptive_box(
    input_hw: Sequence[int], layers: Iterable[LayerArg], row: int = 0, col: int = 0
) -> ReceptiveBox:
    """The input box that unit (row, col) of a stack's last layer sees, and its part in padding.

    Parameters
    ----------
    input_hw : (H, W) of the stack's input
    layers : as in receptive_field_stack, and conv_transpose layers too
    row, col : the unit, 0 <= row < H_last, 0 <= col < W_last

    Returns
    -------
    ReceptiveBox: the unit's interval [lo, hi] per axis walked back to the input through every
    layer (this module's docstring), never clipped on the way, so for stacks without
    conv_transpose it is start + row * jump, size of receptive_field_stack; then clipped to the
    image, with the rows and columns that fall outside it (on padding).
    """
    stack = _as_stack(layers)
    shapes = _stack_shapes(input_hw, stack)
    h_last, w_last = shapes[-1]
    unit = (_unit_index(row, "row", h_last), _unit_index(col, "col", w_last))
    lo, hi = [unit[0], unit[1]], [unit[0], unit[1]]
    for layer in reversed(stack):
        if layer.kind in ACTIVATION_KINDS:
            continue
        for a in range(2):
            if hi[a] < lo[a]:
                continue  # empty (a transposed conv's gap) stays empty
            k, s, p, d = layer.kernel_size[a], layer.stride[a], layer.padding[a], layer.dilation[a]
            if layer.kind == "conv_transpose":
                lo[a], hi[a] = -((d * (k - 1) - lo[a] - p) // s), (hi[a] + p) // s
            else:
                lo[a], hi[a] = s * lo[a] - p, s * hi[a] - p + d * (k - 1)
    if hi[0] < lo[0] or hi[1] < lo[1]:
        hi = [lo[0] - 1, lo[1] - 1]  # the unit reads no input pixel at all
    h, w = shapes[0]
    height, width = max(hi[0] - lo[0] + 1, 0), max(hi[1] - lo[1] + 1, 0)
    c_top, c_left = max(lo[0], 0), max(lo[1], 0)
    c_bottom, c_right = min(lo[0] + height, h), min(lo[1] + width, w)
    clipped = (
        (c_top, c_left, c_bottom - c_top, c_right - c_left)
        if c_bottom > c_top and c_right > c_left
        else None
    )
    padding = (
        min(max(-lo[0], 0), height), min(max(lo[0] + height - h, 0), height),
        min(max(-lo[1], 0), width), min(max(lo[1] + width - w, 0), width),
    )
    return ReceptiveBox(unit, lo[0], lo[1], height, width, clipped, padding)


@dataclass(frozen=True)
class EffectiveReceptiveField:
    """The effective receptive field of one unit: how strongly each input pixel moves it."""

    unit: tuple[int, int, int, int]  # (layer, channel, row, col)
    heatmap: NDArray[np.float64]  # (H, W), sum_c |d y[layer][channel, row, col] / d x[c]|
    center: tuple[float, float] | None  # heat-weighted mean (row, col); None if the heat is 0
    std: tuple[float, float] | None  # heat-weighted standard deviation per axis
    box: ReceptiveBox  # the theoretical receptive field of the unit

    @property
    def total(self) -> float:
        """Sum of the heatmap."""
        return float(self.heatmap.sum())


def effective_receptive_field(
    x: NDArray[np.floating], layers: Sequence[StackLayer | dict], unit: Sequence[int]
) -> EffectiveReceptiveField:
    """The effective receptive field (Luo et al., NeurIPS 2016) of one unit of a stack.

    Parameters
    ----------
    x : ndarray of shape (C, H, W), the stack's input
    layers : up to stack.MAX_STACK_LAYERS StackLayers or dicts, every conv with its weight
    unit : (layer, channel, row, col), a unit of the output of layers[layer]

    Returns
    -------
    EffectiveReceptiveField with heatmap[r, q] = sum_c |d y_l[j, m, n] / d x[c, r, q]|, one
    backward pass of layers[: layer + 1] from a one-hot grad_out (the forward pass runs only as
    far as a non-linearity needs it); its centre mu = sum heat * position / sum heat and
    standard deviation sqrt(sum heat * (position - mu)^2 / sum heat) per axis; and the unit's
    theoretical box (receptive_box). For n stacked stride-1 k x k box filters the heatmap is the
    n-fold convolution of a box, with variance n (k^2 - 1) / 12 per axis.
    """
    if isinstance(unit, str) or not isinstance(unit, Sequence) or len(unit) != 4:
        raise ArgumentError("unit", f"`unit` must be four ints (layer, channel, row, col), got {unit!r}")
    stack = as_layers(list(layers), MAX_STACK_LAYERS)
    layer = _unit_index(unit[0], "unit", len(stack), "layer")
    sub = stack[: layer + 1]
    xa = np.asarray(x)
    if xa.ndim != 3:
        raise ArgumentError("x", f"`x` must have 3 dimensions (C, H, W), got shape {xa.shape}")
    j, h_out, w_out = stack_cost(xa.shape, sub).output_shapes[-1]
    channel = _unit_index(unit[1], "unit", j, "channel")
    row = _unit_index(unit[2], "unit", h_out, "row")
    col = _unit_index(unit[3], "unit", w_out, "col")
    box = receptive_box(xa.shape[1:], sub, row, col)
    window = _dependency_window(xa.shape, sub, box, (channel, row, col))
    if window is None:
        heat = np.abs(_unit_grad(xa, sub, (channel, row, col))).sum(axis=0, dtype=np.float64)
    else:  # the same gradient, from the part of the input the unit depends on
        (r0, r1), (c0, c1), local = window
        heat = np.zeros(xa.shape[1:], dtype=np.float64)
        heat[r0:r1, c0:c1] = np.abs(_unit_grad(xa[:, r0:r1, c0:c1], sub, local)).sum(axis=0, dtype=np.float64)
    total = heat.sum()
    center = std = None
    if total > 0:
        rows = np.arange(heat.shape[0], dtype=np.float64)
        cols = np.arange(heat.shape[1], dtype=np.float64)
        p_rows, p_cols = heat.sum(axis=1) / total, heat.sum(axis=0) / total
        mu = (float(p_rows @ rows), float(p_cols @ cols))
        center = mu
        std = (float(np.sqrt(p_rows @ (rows - mu[0]) ** 2)), float(np.sqrt(p_cols @ (cols - mu[1]) ** 2)))
    return EffectiveReceptiveField((layer, channel, row, col), heat, center, std, box)


def _dependency_window(
    shape: tuple[int, ...], layers: list[StackLayer], box: ReceptiveBox, unit: tuple[int, int, int]
) -> tuple[Pair, Pair, tuple[int, int, int]] | None:
    """The rows and columns of the input that unit (j, m, n) of the stack's output depends on, and
    the unit's index in the stack run on them alone; None when that would not be smaller.

    Every unit the target depends on, at every layer, reads only inside the target's box, so the
    stack run on the box alone computes those units exactly, with the layers' own padding where
    the box meets the image's edge. The window starts at a multiple of the stack's jump J (the
    product of its strides), so unit m of the whole stack is unit m - start / J of the window's.
    A transposed conv has no whole-pixel jump: it keeps the whole input.
    """
    if any(layer.kind == "conv_transpose" for layer in layers):
        return None
    jump = receptive_field_stack(layers)[-1].jump
    edges, local = [], [unit[0]]
    for axis, (start, extent) in enumerate(((box.top, box.height), (box.left, box.width))):
        n = shape[1 + axis]
        lo = max(0, start) // jump[axis] * jump[axis]
        hi = min(n, start + extent)
        if hi <= lo:
            return None
        edges.append((lo, hi))
        local.append(unit[1 + axis] - lo // jump[axis])
    (r0, r1), (c0, c1) = edges
    if (r1 - r0) * (c1 - c0) * 2 > shape[1] * shape[2]:
        return None  # most of the image anyway
    try:
        out = stack_cost((shape[0], r1 - r0, c1 - c0), layers).output_shapes[-1]
    except ArgumentError:  # a layer's window does not fit the box: keep the whole input
        return None
    if not (0 <= local[1] < out[1] and 0 <= local[2] < out[2]):
        return None
    return edges[0], edges[1], (local[0], local[1], local[2])
