"""Layer geometry: kernel size, stride, padding, dilation, and the output-size arithmetic.

Conventions are PyTorch's: symmetric zero padding, and along each axis

    out = floor((n + 2p - d(k - 1) - 1) / s) + 1

where n is the input size, k the kernel size, s the stride, p the padding and d the dilation.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from .errors import ArgumentError, ArgumentTypeError

Pair = tuple[int, int]
IntOrPair = int | Sequence[int]
PaddingArg = int | Sequence[int] | Literal["same", "valid"]

AXES = ("rows", "cols")


def as_pair(value: IntOrPair, name: str, minimum: int = 0) -> Pair:
    """Turn an int or an (h, w) pair into a pair of ints >= minimum, or raise naming `name`."""
    try:
        if isinstance(value, bool):
            raise TypeError
        single = operator.index(value)  # type: ignore[arg-type]
        pair = (single, single)
    except TypeError:
        if (
            isinstance(value, str)
            or not isinstance(value, Sequence)
            or len(value) != 2
            or any(isinstance(v, bool) or not hasattr(v, "__index__") for v in value)
        ):
            raise ArgumentTypeError(
                name, f"`{name}` must be an int or a pair of ints, got {value!r}") from None
        pair = (operator.index(value[0]), operator.index(value[1]))
    if min(pair) < minimum:
        raise ArgumentError(name, f"`{name}` must be >= {minimum}, got {_show(pair)}")
    return pair


def check_groups(groups: int) -> int:
    """groups as a Python int >= 1, or ValueError naming `groups`."""
    try:
        if isinstance(groups, bool):
            raise TypeError
        value = operator.index(groups)
    except TypeError:
        raise ArgumentError("groups", f"`groups` must be an int >= 1, got {groups!r}") from None
    if value < 1:
        raise ArgumentError("groups", f"`groups` must be an int >= 1, got {groups!r}")
    return value


def _show(pair: Pair) -> str:
    return str(pair[0]) if pair[0] == pair[1] else f"{pair[0]}x{pair[1]}"


def resolve_padding(padding: PaddingArg, kernel_hw: Pair, stride: Pair, dilation: Pair) -> Pair:
    """Padding as a pair; 'valid' is 0 and 'same' keeps the size at stride 1 (symmetric only)."""
    if isinstance(padding, str):
        if padding == "valid":
            return (0, 0)
        if padding != "same":
            raise ArgumentError(
                "padding", f"`padding` must be an int, a pair, 'same' or 'valid', got {padding!r}")
        if stride != (1, 1):
            raise ArgumentError("padding",
                f"`padding`='same' needs stride 1 (as in PyTorch), got stride {_show(stride)}"
            )
        span = tuple(d * (k - 1) for k, d in zip(kernel_hw, dilation, strict=True))
        if any(t % 2 for t in span):
            raise ArgumentError("padding",
                "`padding`='same' needs an odd effective kernel d(k-1)+1 on both axes so the "
                f"padding is symmetric; kernel {_show(kernel_hw)} with dilation "
                f"{_show(dilation)} is even: give the padding as a number instead"
            )
        return (span[0] // 2, span[1] // 2)
    return as_pair(padding, "padding", 0)


@dataclass(frozen=True)
class ConvSpec:
    """The geometry of one conv layer; every field is an (h, w) pair of ints."""

    kernel_size: Pair  # (kh, kw), taps of the kernel along rows and columns
    stride: Pair = (1, 1)  # (s_h, s_w), step of the window between neighbouring outputs
    padding: Pair = (0, 0)  # (p_h, p_w), zeros added on each side
    dilation: Pair = (1, 1)  # (d_h, d_w), spacing between the taps of the kernel

    @classmethod
    def make(
        cls,
        kernel_size: IntOrPair,
        stride: IntOrPair = 1,
        padding: PaddingArg = 0,
        dilation: IntOrPair = 1,
    ) -> ConvSpec:
        """Validate and normalise int-or-pair arguments into a ConvSpec."""
        k = as_pair(kernel_size, "kernel_size", 1)
        s = as_pair(stride, "stride", 1)
        d = as_pair(dilation, "dilation", 1)
        p = resolve_padding(padding, k, s, d)
        return cls(k, s, p, d)

    @property
    def effective_kernel(self) -> Pair:
        """Extent of the dilated kernel, d(k - 1) + 1 on each axis."""
        return (
            self.dilation[0] * (self.kernel_size[0] - 1) + 1,
            self.dilation[1] * (self.kernel_size[1] - 1) + 1,
        )

    def output_shape(self, input_hw: Sequence[int]) -> Pair:
        """(H_out, W_out) for an (H, W) input; ValueError when the kernel does not fit."""
        h, w = _input_hw(input_hw)
        out = []
        for axis, n in enumerate((h, w)):
            padded = n + 2 * self.padding[axis]
            eff = self.effective_kernel[axis]
            if eff > padded:
                # Name the dilation when the undilated kernel would fit: it is what spreads it too far.
                field = "dilation" if self.kernel_size[axis] <= padded else "kernel_size"
                raise ArgumentError(field,
                    f"`{field}`: a {_show(self.kernel_size)} kernel with dilation "
                    f"{_show(self.dilation)} spans {eff} {AXES[axis]}, which does not fit "
                    f"a {n}-pixel input even with padding {self.padding[axis]} "
                    f"({padded} {AXES[axis]} padded)"
                )
            out.append((padded - eff) // self.stride[axis] + 1)
        return (out[0], out[1])


def spec_of(
    kernel_hw: IntOrPair | None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    spec: ConvSpec | None = None,
) -> ConvSpec:
    """The geometry of a call: `spec` as given, or one made from the int-or-pair arguments.

    Public functions take either a ConvSpec (`spec=`, validated once where it was made) or the
    separate arguments; giving both is an error naming `spec`.
    """
    if spec is None:
        if kernel_hw is None:
            raise ArgumentError("kernel_size", "`kernel_size` is needed when no `spec` is given")
        return ConvSpec.make(kernel_hw, stride, padding, dilation)
    if not isinstance(spec, ConvSpec):
        raise ArgumentTypeError("spec", f"`spec` must be a ConvSpec, got {type(spec).__name__}")
    given = kernel_hw is not None and as_pair(kernel_hw, "kernel_size", 1) != spec.kernel_size
    if given or (stride, padding, dilation) != (1, 0, 1):
        raise ArgumentError(
            "spec", "give either `spec` or kernel_size, stride, padding and dilation, not both")
    return spec


def _input_hw(input_hw: Sequence[int]) -> Pair:
    if len(input_hw) != 2:
        raise ArgumentError("input_hw", f"`input_hw` must be (H, W), got {tuple(input_hw)!r}")
    try:
        h, w = operator.index(input_hw[0]), operator.index(input_hw[1])
    except TypeError:
        raise ArgumentError(
            "input_hw", f"`input_hw` must be a pair of ints, got {tuple(input_hw)!r}") from None
    if h < 1 or w < 1:
        raise ArgumentError("input_hw", f"`input_hw` must be positive, got {(h, w)!r}")
    return (h, w)


def output_shape(
    input_hw: Sequence[int],
    kernel_hw: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    *,
    spec: ConvSpec | None = None,
) -> Pair:
    """Output size of a conv layer.

    Parameters
    ----------
    input_hw : (H, W)
    kernel_hw, stride, dilation : int or (h, w) pair
    padding : int, (h, w) pair, 'same' or 'valid'
    spec : a ConvSpec instead of the four geometry arguments

    Returns
    -------
    (H_out, W_out) with H_out = floor((H + 2p - d(k - 1) - 1) / s) + 1, likewise for W.
    """
    return spec_of(kernel_hw, stride, padding, dilation, spec).output_shape(input_hw)


@dataclass(frozen=True)
class AxisArithmetic:
    """The output-size formula worked for one axis, with the input lines no output reads."""

    axis: str  # "rows" or "cols"
    size: int  # n, the input size
    kernel: int  # k
    stride: int  # s
    padding: int  # p
    dilation: int  # d
    padded: int  # n + 2p
    effective_kernel: int  # d(k - 1) + 1
    span: int  # n + 2p - d(k - 1) - 1, room the window can slide
    quotient: int  # floor(span / s)
    remainder: int  # span mod s: padded lines after the last window
    output: int  # quotient + 1
    unused: tuple[Pair, ...]  # [start, stop) ranges of input lines (0-based) no output reads

    def formula_steps(self) -> list[str]:
        """The output-size formula worked in five short lines (the unread lines are in `unused`)."""
        n, k, s, p, d = self.size, self.kernel, self.stride, self.padding, self.dilation
        return [
            f"padded = {n} + 2·{p} = {self.padded}",
            f"effective kernel = {d}·({k} − 1) + 1 = {self.effective_kernel}",
            f"span = {self.padded} − {self.effective_kernel} = {self.span}",
            f"⌊{self.span} / {s}⌋ = {self.quotient}, remainder {self.remainder}",
            f"output = {self.quotient} + 1 = {self.output}",
        ]

    def steps(self) -> list[str]:
        """formula_steps, then a line listing the input lines no output reads, if any."""
        lines = self.formula_steps()
        if self.unused:
            ranges = ", ".join(
                str(a) if b - a == 1 else f"{a}–{b - 1}" for a, b in self.unused
            )
            lines.append(f"input {self.axis} never read: {ranges}")
        return lines


def axis_arithmetic(
    axis: str, size: int, kernel: int, stride: int, padding: int, dilation: int
) -> AxisArithmetic:
    """Work the output-size formula for one axis; ValueError when the kernel does not fit."""
    padded = size + 2 * padding
    eff = dilation * (kernel - 1) + 1
    if eff > padded:
        raise ArgumentError("kernel_size",
            f"`kernel_size`: effective kernel {eff} is larger than the padded {axis} ({padded})"
        )
    span = padded - eff
    q, r = divmod(span, stride)
    out = q + 1
    read = (axis_reads(size, kernel, stride, padding, dilation, out) > 0).tolist()
    return AxisArithmetic(
        axis, size, kernel, stride, padding, dilation, padded, eff, span, q, r, out,
        _false_runs(read),
    )


def axis_reads(
    size: int, kernel: int, stride: int, padding: int, dilation: int, out: int
) -> NDArray[np.int64]:
    """(size,) along one axis: how many (output m, tap u) pairs read input line i = s*m + d*u - p."""
    pos = stride * np.arange(out)[:, None] + dilation * np.arange(kernel)[None, :] - padding
    return np.bincount(pos[(pos >= 0) & (pos < size)], minlength=size).astype(np.int64)


def _false_runs(flags: list[bool]) -> tuple[Pair, ...]:
    runs: list[Pair] = []
    start = None
    for i, f in enumerate([*flags, True]):
        if not f and start is None:
            start = i
        elif f and start is not None:
            runs.append((start, i))
            start = None
    return tuple(runs)


def output_arithmetic(
    input_hw: Sequence[int],
    kernel_hw: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    *,
    spec: ConvSpec | None = None,
) -> tuple[AxisArithmetic, AxisArithmetic]:
    """Step-by-step output-size arithmetic for rows and columns.

    Returns one AxisArithmetic per axis: padded size, effective kernel d(k - 1) + 1, the span
    n + 2p - d(k - 1) - 1, its quotient and remainder by the stride, the output size, and the
    input lines that no output reads (when the stride skips them or the remainder is left over).
    The geometry comes as kernel_hw, stride, padding and dilation, or as one ConvSpec (`spec=`).
    """
    spec = spec_of(kernel_hw, stride, padding, dilation, spec)
    h, w = _input_hw(input_hw)
    spec.output_shape((h, w))
    return (
        axis_arithmetic("rows", h, spec.kernel_size[0], spec.stride[0], spec.padding[0],
                        spec.dilation[0]),
        axis_arithmetic("cols", w, spec.kernel_size[1], spec.stride[1], spec.padding[1],
                        spec.dilation[1]),
    )
