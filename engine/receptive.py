"""Receptive fields: which input pixels one output unit reads, for one layer and for a stack.

For one layer, output unit (m, n) reads padded-input rows s_h*m + d_h*u, u = 0..kh-1, that is
input rows s_h*m + d_h*u - p_h (likewise columns); taps outside 0..H-1 fall on the zero padding.

For a stack of layers (Araujo, Norris and Sim, "Computing Receptive Fields of Convolutional
Neural Networks", Distill 2019), with k_l the effective kernel d_l(k_l - 1) + 1:

    r_l = r_{l-1} + (k_l - 1) * j_{l-1}       receptive field size, r_0 = 1
    j_l = j_{l-1} * s_l                         jump (effective stride), j_0 = 1
    start_l = start_{l-1} - p_l * j_{l-1}       input coordinate of the first unit's left edge

so output unit i of layer L reads input positions start_L + i * j_L ... + r_L - 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from .errors import ArgumentError
from .spec import ConvSpec, IntOrPair, PaddingArg, Pair, _input_hw, spec_of


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

    @property
    def center(self) -> tuple[float, float]:
        """Input coordinate of the centre of the first unit's receptive field."""
        return (
            self.start[0] + (self.size[0] - 1) / 2,
            self.start[1] + (self.size[1] - 1) / 2,
        )


LayerArg = ConvSpec | tuple | dict


def _as_spec(layer: LayerArg, i: int) -> ConvSpec:
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
    layers : iterable of ConvSpec, (kernel_size, stride, padding, dilation) tuples (trailing
        items optional) or dicts of those keywords

    Returns
    -------
    One StackEntry per layer, by the recurrences in this module's docstring.
    """
    specs = [_as_spec(layer, i) for i, layer in enumerate(layers)]
    if not specs:
        raise ArgumentError("layers", "`layers` must hold at least one layer")
    size, jump, start = [1, 1], [1, 1], [0, 0]
    out: list[StackEntry] = []
    for spec in specs:
        for a in range(2):
            size[a] += (spec.effective_kernel[a] - 1) * jump[a]
            start[a] -= spec.padding[a] * jump[a]
            jump[a] *= spec.stride[a]
        out.append(StackEntry((size[0], size[1]), (jump[0], jump[1]), (start[0], start[1])))
    return out
