"""A stack of layers: conv, pooling, activations and transposed conv, run forward and backward.

A stack is a list of StackLayer, plain data built from dicts such as

    {"kind": "conv", "kernel_size": 3, "padding": 1, "weight": w}     # kind defaults to "conv"
    {"kind": "maxpool", "kernel_size": 2}                             # stride defaults to kernel_size
    {"kind": "relu"}

with PyTorch's argument names and defaults. stack_forward keeps every layer's output, which
is what stack_backward needs: the chain rule runs from the last layer to the first,

    dL/dy_{l-1} = J_l(y_{l-1})ᵀ dL/dy_l,     dL/dW_l = the weight gradient of layer l

with J_l the Jacobian of layer l at its input y_{l-1} (y_0 = x). An activation's Jacobian is
read off its own output: relu' = [y > 0], sigmoid' = y (1 - y), tanh' = 1 - y².

stack_cost works out every layer's output shape, multiply-adds and bytes from the shapes
alone, so a caller can refuse work that is too big before any of it runs.

Every validation error is a StackLayerError (an ArgumentError, so a ValueError) whose message
starts with the field in backticks, as in "`layers[2].kernel_size` must be ...", and whose
`.field` (and `.argument`) is that name.
"""

from __future__ import annotations

import operator
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import activate, conv2d
from .errors import ArgumentError
from .grad import conv2d_backward
from .pool import (
    avg_pool2d,
    avg_pool2d_backward,
    max_pool2d,
    max_pool2d_backward,
    pool_output_size,
    windows_miss_input,
)
from .spec import AXES, Pair, _show, as_pair, check_groups, resolve_padding
from .transpose import conv_transpose2d, conv_transpose2d_backward

KINDS = ("conv", "maxpool", "avgpool", "relu", "sigmoid", "tanh", "conv_transpose")
ACTIVATION_KINDS = ("relu", "sigmoid", "tanh")
MAX_STACK_LAYERS = 8  # layers stack_forward and stack_backward run
MAX_GEOMETRY_LAYERS = 64  # layers stack_cost and the receptive-field functions accept

# The fields each kind takes besides "kind" (PyTorch's argument names).
_CONV = ("kernel_size", "stride", "padding", "dilation", "groups", "weight", "bias", "out_channels")
FIELDS: Mapping[str, tuple[str, ...]] = {
    "conv": _CONV,
    "conv_transpose": (*_CONV, "output_padding"),
    "maxpool": ("kernel_size", "stride", "padding", "dilation", "ceil_mode"),
    "avgpool": ("kernel_size", "stride", "padding", "ceil_mode", "count_include_pad"),
    "relu": (),
    "sigmoid": (),
    "tanh": (),
}

BYTES_PER_VALUE = 4  # float32


class StackLayerError(ArgumentError):
    """A bad field of one layer of a stack; `field` (and `argument`) is e.g. "layers[2].kernel_size"."""

    def __init__(self, index: int | None, name: str | None, message: str) -> None:
        if index is None:
            field = "layers" if name is None else name
        else:
            field = f"layers[{index}]" + ("" if name is None else f".{name}")
        super().__init__(field, f"`{field}` {message}")
        self.field = field
        self.index = index
        self.name = name


@dataclass(frozen=True, eq=False)
class StackLayer:
    """One layer of a stack, validated; geometric fields are (h, w) pairs."""

    kind: str  # one of KINDS
    kernel_size: Pair = (1, 1)  # (kh, kw); (1, 1) for activations
    stride: Pair = (1, 1)  # (s_h, s_w); a pool's default is its kernel_size
    padding: Pair = (0, 0)  # (p_h, p_w), 'same' and 'valid' resolved (conv only)
    dilation: Pair = (1, 1)  # (d_h, d_w)
    groups: int = 1  # conv and conv_transpose
    output_padding: Pair = (0, 0)  # conv_transpose only, < max(stride, dilation)
    ceil_mode: bool = False  # pools only
    count_include_pad: bool = True  # avgpool only
    out_channels: int | None = None  # conv kinds: J (from the weight when given); None otherwise
    weight: NDArray[np.floating] | None = None  # conv (J, C/g, kh, kw); conv_transpose (C, J/g, kh, kw)
    bias: NDArray[np.floating] | None = None  # (J,) or None

    @property
    def effective_kernel(self) -> Pair:
        """d(k - 1) + 1 on each axis."""
        return (
            self.dilation[0] * (self.kernel_size[0] - 1) + 1,
            self.dilation[1] * (self.kernel_size[1] - 1) + 1,
        )

    @property
    def is_conv(self) -> bool:
        """conv or conv_transpose: a layer with weights."""
        return self.kind in ("conv", "conv_transpose")


def _pair(d: Mapping[str, object], index: int, name: str, minimum: int, default: Pair) -> Pair:
    value = d.get(name)
    if value is None:
        return default
    try:
        return as_pair(value, name, minimum)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise StackLayerError(
            index, name, f"must be an int or an (h, w) pair of ints >= {minimum}, got {value!r}"
        ) from None


def _flag(d: Mapping[str, object], index: int, name: str, default: bool) -> bool:
    value = d.get(name)
    if value is None:
        return default
    if not isinstance(value, bool | np.bool_):
        raise StackLayerError(index, name, f"must be true or false, got {value!r}")
    return bool(value)


def _array(value: object, index: int, name: str, ndim: int) -> NDArray[np.floating]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise StackLayerError(index, name, f"must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise StackLayerError(index, name, f"must have {ndim} dimensions, got shape {arr.shape}")
    if arr.size == 0:
        raise StackLayerError(index, name, f"must not be empty, got shape {arr.shape}")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32, copy=False)
    if not np.isfinite(arr).all():
        raise StackLayerError(index, name, "must be finite: it holds NaN or infinite values")
    return arr


def _positive_int(d: Mapping[str, object], index: int, name: str) -> int | None:
    value = d.get(name)
    if value is None:
        return None
    try:
        if isinstance(value, bool):
            raise TypeError
        n = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        n = 0
    if n < 1:
        raise StackLayerError(index, name, f"must be an int >= 1, got {value!r}")
    return n


def layer_from_dict(d: Mapping[str, object], index: int = 0) -> StackLayer:
    """One layer from its dict of fields, validated on its own (channels are checked by stack_cost).

    Parameters
    ----------
    d : mapping with "kind" (one of KINDS, default "conv") and the fields FIELDS[kind] allows:
        kernel_size, stride, padding, dilation, output_padding (int or (h, w) pair), groups,
        out_channels (int), ceil_mode, count_include_pad (bool), weight, bias (arrays).
        A conv's kernel_size and out_channels come from its weight when it has one; without
        one they describe the geometry only (enough for stack_cost and receptive fields).
        A pool's stride defaults to its kernel_size, and its padding must be <= k // 2.
    index : the layer's position, used in error fields ("layers[index].name")

    Returns
    -------
    StackLayer. Raises StackLayerError naming the field.
    """
    if not isinstance(d, Mapping):
        raise StackLayerError(index, None, f"must be an object of layer fields, got {type(d).__name__}")
    kind = d.get("kind", "conv")
    if kind is None:
        kind = "conv"
    if kind not in KINDS:
        raise StackLayerError(index, "kind", f"must be one of {', '.join(KINDS)}; got {kind!r}")
    assert isinstance(kind, str)
    allowed = FIELDS[kind]
    for key in d:
        if key != "kind" and key not in allowed and d[key] is not None:
            fields = ", ".join(allowed) if allowed else "none"
            raise StackLayerError(index, str(key), f"is not a field of a {kind} layer (its fields: {fields})")
    if kind in ACTIVATION_KINDS:
        return StackLayer(kind)
    if kind in ("maxpool", "avgpool"):
        return _pool_layer(d, index, kind)
    return _conv_layer(d, index, kind)


def _pool_layer(d: Mapping[str, object], index: int, kind: str) -> StackLayer:
    if d.get("kernel_size") is None:
        raise StackLayerError(index, "kernel_size", f"is needed for a {kind} layer")
    k = _pair(d, index, "kernel_size", 1, (1, 1))
    s = _pair(d, index, "stride", 1, k)
    p = _pair(d, index, "padding", 0, (0, 0))
    dil = _pair(d, index, "dilation", 1, (1, 1))
    if p[0] > k[0] // 2 or p[1] > k[1] // 2:
        raise StackLayerError(
            index, "padding",
            f"must be at most half the kernel size (k // 2 = {_show((k[0] // 2, k[1] // 2))} for "
            f"a {_show(k)} window), as in PyTorch; got {_show(p)}",
        )
    return StackLayer(
        kind, k, s, p, dil,
        ceil_mode=_flag(d, index, "ceil_mode", False),
        count_include_pad=_flag(d, index, "count_include_pad", True),
    )


def _conv_layer(d: Mapping[str, object], index: int, kind: str) -> StackLayer:
    groups_value = d.get("groups", 1)
    try:
        groups = check_groups(1 if groups_value is None else groups_value)  # type: ignore[arg-type]
    except ValueError:
        raise StackLayerError(index, "groups", f"must be an int >= 1, got {groups_value!r}") from None
    weight = None if d.get("weight") is None else _array(d["weight"], index, "weight", 4)
    out_channels = _positive_int(d, index, "out_channels")
    if weight is not None:
        from_weight = weight.shape[0] if kind == "conv" else weight.shape[1] * groups
        if out_channels is not None and out_channels != from_weight:
            raise StackLayerError(
                index, "out_channels",
                f"is {out_channels} but the weight of shape {weight.shape} gives {from_weight}",
            )
        out_channels = from_weight
        k = (weight.shape[2], weight.shape[3])
        given = _pair(d, index, "kernel_size", 1, k)
        if given != k:
            raise StackLayerError(
                index, "kernel_size", f"is {_show(given)} but the weight's kernels are {_show(k)}"
            )
    elif d.get("kernel_size") is None:
        raise StackLayerError(index, "kernel_size", f"is needed for a {kind} layer without a weight")
    else:
        k = _pair(d, index, "kernel_size", 1, (1, 1))
    if kind == "conv" and out_channels is not None and out_channels % groups:
        raise StackLayerError(index, "groups", f"={groups} must divide the kernels ({out_channels})")
    s = _pair(d, index, "stride", 1, (1, 1))
    dil = _pair(d, index, "dilation", 1, (1, 1))
    if kind == "conv" and isinstance(d.get("padding"), str):
        try:
            p = resolve_padding(d["padding"], k, s, dil)  # type: ignore[arg-type]
        except ValueError as err:
            raise StackLayerError(index, "padding", f"is not allowed here: {err}") from None
    else:
        p = _pair(d, index, "padding", 0, (0, 0))
    op = _pair(d, index, "output_padding", 0, (0, 0))
    for a in range(2):
        if op[a] and op[a] >= max(s[a], dil[a]):
            raise StackLayerError(
                index, "output_padding",
                f"must be smaller than the stride or the dilation (as in PyTorch): got {op[a]} on "
                f"the {AXES[a]} with stride {s[a]} and dilation {dil[a]}",
            )
    bias = None
    if d.get("bias") is not None:
        b = np.asarray(d["bias"])
        if out_channels is None:
            raise StackLayerError(index, "bias", "needs a weight or out_channels to go with it")
        bias = _array(np.full(out_channels, b) if b.ndim == 0 else b, index, "bias", 1)
        if bias.shape != (out_channels,):
            raise StackLayerError(
                index, "bias", f"must have one value per output channel, ({out_channels},), got {bias.shape}"
            )
    return StackLayer(kind, k, s, p, dil, groups, op, out_channels=out_channels, weight=weight, bias=bias)


def _as_layer(layer: StackLayer | Mapping[str, object], index: int) -> StackLayer:
    return layer if isinstance(layer, StackLayer) else layer_from_dict(layer, index)


def as_layers(
    layers: Sequence[StackLayer | Mapping[str, object]], limit: int = MAX_GEOMETRY_LAYERS
) -> list[StackLayer]:
    """StackLayers from StackLayers or dicts; StackLayerError on an empty or too long stack."""
    if isinstance(layers, str | bytes | Mapping) or not isinstance(layers, Sequence):
        raise StackLayerError(None, None, f"must be a list of layers, got {type(layers).__name__}")
    if not layers:
        raise StackLayerError(None, None, "must hold at least one layer")
    if len(layers) > limit:
        raise StackLayerError(None, None, f"may hold at most {limit} layers, got {len(layers)}")
    return [_as_layer(layer, i) for i, layer in enumerate(layers)]


def layer_output_hw(layer: StackLayer, input_hw: Pair, index: int = 0) -> Pair:
    """(H_out, W_out) of one layer on an (H, W) input; StackLayerError naming the field.

    conv and pools: floor((n + 2p - d(k - 1) - 1) / s) + 1 (pools: PyTorch's ceil_mode rule,
    pool.pool_output_size); conv_transpose: (n - 1) s - 2p + d(k - 1) + output_padding + 1;
    activations: n.
    """
    if layer.kind in ACTIVATION_KINDS:
        return input_hw
    out = []
    for a, n in enumerate(input_hw):
        k, s, p, d = layer.kernel_size[a], layer.stride[a], layer.padding[a], layer.dilation[a]
        eff = d * (k - 1) + 1
        if layer.kind == "conv_transpose":
            size = (n - 1) * s - 2 * p + eff + layer.output_padding[a]
            if size < 1:
                raise StackLayerError(
                    index, "padding",
                    f"{p} removes more than the full output of {(n - 1) * s + eff} {AXES[a]}",
                )
        else:
            if eff > n + 2 * p:
                field = "dilation" if k <= n + 2 * p else "kernel_size"
                raise StackLayerError(
                    index, field,
                    f"is too large: a {_show(layer.kernel_size)} window with dilation "
                    f"{_show(layer.dilation)} "
                    f"spans {eff} {AXES[a]}, which does not fit the {n} {AXES[a]} of this layer's "
                    f"input even with padding {p}",
                )
            if layer.kind == "conv":
                size = (n + 2 * p - eff) // s + 1
            else:
                size = pool_output_size(n, k, s, p, d, layer.ceil_mode)
                if layer.kind == "maxpool" and windows_miss_input(n, k, s, p, d, size):
                    raise StackLayerError(
                        index, "dilation",
                        f"{d} steps a window's taps over every one of the {n} input {AXES[a]}: "
                        "it would pool padding only (-inf)",
                    )
        out.append(size)
    return (out[0], out[1])


@dataclass(frozen=True)
class LayerCost:
    """What one layer of a stack costs, from shapes alone."""

    kind: str
    input_shape: tuple[int, int, int]  # (C, H, W)
    output_shape: tuple[int, int, int]  # (J, H_out, W_out)
    multiply_adds: int  # conv: J H_out W_out (C/g) kh kw; pools: C H_out W_out kh kw; σ: C H W
    parameters: int  # weights and biases
    bytes: int  # the output in float32, BYTES_PER_VALUE per value


@dataclass(frozen=True)
class StackCost:
    """Per-layer costs and the totals of a stack."""

    layers: tuple[LayerCost, ...]

    @property
    def output_shapes(self) -> list[tuple[int, int, int]]:
        """Each layer's output shape."""
        return [c.output_shape for c in self.layers]

    @property
    def multiply_adds(self) -> int:
        """Multiply-adds of one forward pass (a backward pass costs about twice as many)."""
        return sum(c.multiply_adds for c in self.layers)

    @property
    def bytes(self) -> int:
        """Bytes of every layer's output, which stack_forward keeps."""
        return sum(c.bytes for c in self.layers)

    @property
    def parameters(self) -> int:
        """Weights and biases of the whole stack."""
        return sum(c.parameters for c in self.layers)


def _in_channels_check(layer: StackLayer, c: int, index: int) -> int:
    """The layer's output channels on a C-channel input; StackLayerError on a mismatch."""
    if not layer.is_conv:
        return c
    g = layer.groups
    if c % g:
        raise StackLayerError(index, "groups", f"={g} must divide the {c} input channels of this layer")
    if layer.weight is not None:
        ws = layer.weight.shape
        expected = (ws[0], c // g) if layer.kind == "conv" else (c, ws[1])
        got = (ws[0], ws[1])
        if got != expected:
            layout = "(J, C/groups, kh, kw)" if layer.kind == "conv" else "(C, J/groups, kh, kw)"
            raise StackLayerError(
                index, "weight",
                f"of shape {ws} does not fit the {c} input channels in {g} group(s): a {layer.kind} "
                f"weight is {layout}",
            )
    if layer.out_channels is None:
        raise StackLayerError(index, "out_channels", "is needed (or a weight) to know this layer's output")
    return layer.out_channels


def stack_cost(
    input_shape: Sequence[int], layers: Sequence[StackLayer | Mapping[str, object]]
) -> StackCost:
    """Every layer's output shape, multiply-adds, parameters and bytes, from the shapes alone.

    Parameters
    ----------
    input_shape : (C, H, W) of the stack's input
    layers : up to MAX_GEOMETRY_LAYERS StackLayers or dicts (see layer_from_dict)

    Returns
    -------
    StackCost; raises StackLayerError naming the field of the first layer that cannot run on
    its input (a window that does not fit, channels that do not match the weight or groups).
    """
    try:
        c, h, w = (operator.index(v) for v in input_shape)
    except (TypeError, ValueError):
        raise StackLayerError(None, "input_shape", f"must be (C, H, W), got {input_shape!r}") from None
    if min(c, h, w) < 1:
        raise StackLayerError(None, "input_shape", f"must be positive, got {(c, h, w)!r}")
    costs = []
    for i, layer in enumerate(as_layers(layers)):
        j = _in_channels_check(layer, c, i)
        h_out, w_out = layer_output_hw(layer, (h, w), i)
        kh, kw = layer.kernel_size
        g = layer.groups
        if layer.kind == "conv":
            macs, params = j * h_out * w_out * (c // g) * kh * kw, j * (c // g) * kh * kw
        elif layer.kind == "conv_transpose":
            macs, params = c * h * w * (j // g) * kh * kw, c * (j // g) * kh * kw
        elif layer.kind in ACTIVATION_KINDS:
            macs, params = c * h * w, 0
        else:
            macs, params = c * h_out * w_out * kh * kw, 0
        if layer.bias is not None:
            params += j
        costs.append(LayerCost(layer.kind, (c, h, w), (j, h_out, w_out), macs, params,
                               j * h_out * w_out * BYTES_PER_VALUE))
        c, h, w = j, h_out, w_out
    return StackCost(tuple(costs))


def init_weights(
    layers: Sequence[StackLayer | Mapping[str, object]], in_channels: int, seed: int = 0
) -> list[StackLayer]:
    """The layers with random weights and biases where a conv layer has none, PyTorch's default init.

    PyTorch's Conv2d and ConvTranspose2d draw weights and biases from U(-1/sqrt(fan_in),
    1/sqrt(fan_in)) (kaiming_uniform_ with a = sqrt(5)), fan_in = weight.shape[1] * kh * kw.
    Returned weights are float32, drawn with numpy.random.default_rng(seed).
    """
    rng = np.random.default_rng(seed)
    out = []
    c = in_channels
    for i, layer in enumerate(as_layers(layers)):
        j = _in_channels_check(layer, c, i)
        if layer.is_conv and layer.weight is None:
            kh, kw = layer.kernel_size
            g = layer.groups
            shape = (j, c // g, kh, kw) if layer.kind == "conv" else (c, j // g, kh, kw)
            bound = 1 / np.sqrt(shape[1] * kh * kw)
            weight = rng.uniform(-bound, bound, shape).astype(np.float32)
            bias = rng.uniform(-bound, bound, j).astype(np.float32)
            layer = replace(layer, weight=weight, bias=bias)
        out.append(layer)
        c = j
    return out


def _check_run(x: ArrayLike, layers: Sequence[StackLayer | Mapping[str, object]]) -> tuple[
    NDArray[np.floating], list[StackLayer]
]:
    xa = np.asarray(x)
    if xa.dtype.kind not in "biuf" or xa.ndim != 3 or xa.size == 0:
        raise StackLayerError(
            None, "x", f"must be a non-empty (C, H, W) array of numbers, got shape {xa.shape}"
        )
    if xa.dtype != np.float64:
        xa = xa.astype(np.float32, copy=False)
    if not np.isfinite(xa).all():
        raise StackLayerError(None, "x", "must be finite: it holds NaN or infinite values")
    stack = as_layers(layers, MAX_STACK_LAYERS)
    stack_cost(xa.shape, stack)  # every shape and channel count checked before any work
    for i, layer in enumerate(stack):
        if layer.is_conv and layer.weight is None:
            raise StackLayerError(i, "weight", "is needed to run the stack (init_weights draws one)")
    return xa, stack


def _run_layer(layer: StackLayer, y: NDArray[np.floating]) -> NDArray[np.floating]:
    k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
    if layer.kind == "conv":
        assert layer.weight is not None
        return conv2d(y, layer.weight.astype(y.dtype, copy=False), layer.bias, s, p, d, layer.groups)
    if layer.kind == "conv_transpose":
        assert layer.weight is not None
        return conv_transpose2d(y, layer.weight.astype(y.dtype, copy=False), layer.bias, s, p,
                                layer.output_padding, layer.groups, d)
    if layer.kind == "maxpool":
        return max_pool2d(y, k, s, p, d, layer.ceil_mode)
    if layer.kind == "avgpool":
        return avg_pool2d(y, k, s, p, layer.ceil_mode, layer.count_include_pad)
    return activate(y, layer.kind)


def stack_forward(
    x: ArrayLike, layers: Sequence[StackLayer | Mapping[str, object]]
) -> list[NDArray[np.floating]]:
    """Run a stack forward and keep every layer's output.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    layers : up to MAX_STACK_LAYERS StackLayers or dicts; every conv layer needs its weight

    Returns
    -------
    outputs : list with one (C_l, H_l, W_l) array per layer, outputs[-1] the stack's output;
    float32, or float64 if x is.
    """
    y, stack = _check_run(x, layers)
    outputs = []
    for layer in stack:
        y = _run_layer(layer, y)
        outputs.append(y)
    return outputs


LayerGrads = tuple[NDArray[np.floating], NDArray[np.floating] | None] | None


def _backward(
    x: NDArray[np.floating],
    stack: list[StackLayer],
    outputs: Sequence[NDArray[np.floating] | None],
    grad_out: ArrayLike,
    with_weights: bool,
) -> tuple[NDArray[np.floating], list[LayerGrads]]:
    """The chain rule from the last layer to x; weight gradients only when with_weights.

    outputs[i] may be None where no backward step reads it (see _unit_grad).
    """
    shapes = stack_cost(x.shape, stack).output_shapes
    if len(outputs) != len(stack):
        raise StackLayerError(
            None, "outputs", f"must hold one array per layer ({len(stack)}), got {len(outputs)}"
        )
    for i, (out, expected) in enumerate(zip(outputs, shapes, strict=True)):
        if out is not None and np.shape(out) != expected:
            raise StackLayerError(None, f"outputs[{i}]", f"must have shape {expected}, got {np.shape(out)}")
    g = np.asarray(grad_out)
    if g.shape != shapes[-1] or g.dtype.kind not in "biuf":
        raise StackLayerError(
            None, "grad_out", f"must have the last output's shape {shapes[-1]}, got {g.shape}"
        )
    g = g.astype(x.dtype, copy=False)
    grads: list[LayerGrads] = [None] * len(stack)
    for i in range(len(stack) - 1, -1, -1):
        layer, y = stack[i], outputs[i]
        inp = x if i == 0 else outputs[i - 1]
        in_hw = x.shape[1:] if i == 0 else shapes[i - 1][1:]
        k, s, p, d = layer.kernel_size, layer.stride, layer.padding, layer.dilation
        if layer.kind in ("conv", "conv_transpose"):
            assert layer.weight is not None
            w = layer.weight.astype(x.dtype, copy=False)
        if layer.kind == "conv":
            if with_weights:
                assert inp is not None
                g, gw, gb = conv2d_backward(inp, w, g, s, p, d, layer.groups)
                grads[i] = (gw, gb if layer.bias is not None else None)
            else:
                # dL/dx of a conv is the transposed conv of dL/dy; output_padding restores the
                # input lines that the stride's remainder left unread.
                op = tuple(in_hw[a] - ((shapes[i][1 + a] - 1) * s[a] - 2 * p[a] + d[a] * (k[a] - 1) + 1)
                           for a in range(2))
                g = conv_transpose2d(g, w, None, s, p, op, layer.groups, d)
        elif layer.kind == "conv_transpose":
            if with_weights:
                assert inp is not None
                g, gw, gb = conv_transpose2d_backward(inp, w, g, s, p, layer.output_padding,
                                                      layer.groups, d)
                grads[i] = (gw, gb if layer.bias is not None else None)
            else:
                # dL/dx of y = Mᵀ x is M dL/dy, a conv2d (longer than x when output_padding >= s).
                g = conv2d(g, w, None, s, p, d, layer.groups)[:, : in_hw[0], : in_hw[1]]
        elif layer.kind == "maxpool":
            assert inp is not None
            g = max_pool2d_backward(inp, g, k, s, p, d, layer.ceil_mode)
        elif layer.kind == "avgpool":
            shape = (shapes[i - 1] if i else x.shape)
            g = avg_pool2d_backward(np.zeros(shape, dtype=x.dtype) if inp is None else inp, g, k, s, p,
                                    layer.ceil_mode, layer.count_include_pad)
        else:
            assert y is not None
            if layer.kind == "relu":
                g = np.where(y > 0, g, 0).astype(g.dtype, copy=False)
            elif layer.kind == "sigmoid":
                g = g * y * (1 - y)
            else:  # tanh
                g = g * (1 - y * y)
    return g, grads


def _unit_grad(
    x: ArrayLike, layers: Sequence[StackLayer | Mapping[str, object]], unit: tuple[int, int, int]
) -> NDArray[np.floating]:
    """d y_last[j, m, n] / dx for unit (j, m, n) of the last layer, checked by the caller.

    The forward pass runs only as far as the last layer whose backward step reads an
    activation (an activation's own output, a max pool's input): a stack of convs and average
    pools is linear, and its input gradient needs no forward pass at all.
    """
    xa, stack = _check_run(x, layers)
    shapes = stack_cost(xa.shape, stack).output_shapes
    need = -1
    for i, layer in enumerate(stack):
        if layer.kind in ACTIVATION_KINDS:
            need = i
        elif layer.kind == "maxpool":
            need = max(need, i - 1)
    outputs: list[NDArray[np.floating] | None] = [None] * len(stack)
    y = xa
    for i in range(need + 1):
        y = _run_layer(stack[i], y)
        outputs[i] = y
    g = np.zeros(shapes[-1], dtype=xa.dtype)
    g[unit] = 1
    return _backward(xa, stack, outputs, g, False)[0]


def stack_backward(
    x: ArrayLike,
    layers: Sequence[StackLayer | Mapping[str, object]],
    outputs: Sequence[NDArray[np.floating]],
    grad_out: ArrayLike,
) -> tuple[NDArray[np.floating], list[LayerGrads]]:
    """Gradients of a loss through a stack, to its input and to every layer's weights.

    Parameters
    ----------
    x : ndarray of shape (C, H, W), the stack's input
    layers : the stack, as given to stack_forward
    outputs : stack_forward(x, layers)
    grad_out : ndarray of the last output's shape, dL/dy_last

    Returns
    -------
    grad_x : (C, H, W), dL/dx
    grads : one entry per layer: (grad_w, grad_b) for conv and conv_transpose layers, grad_w of
        the weight's shape and grad_b (J,) (None when the layer has no bias); None for pools
        and activations.
    """
    xa, stack = _check_run(x, layers)
    return _backward(xa, stack, outputs, grad_out, True)


def stack_input_grad(
    x: ArrayLike,
    layers: Sequence[StackLayer | Mapping[str, object]],
    outputs: Sequence[NDArray[np.floating]],
    grad_out: ArrayLike,
) -> NDArray[np.floating]:
    """dL/dx through a stack, without the weight gradients (about half a backward pass's work).

    Arguments as in stack_backward; returns grad_x of shape (C, H, W).
    """
    xa, stack = _check_run(x, layers)
    return _backward(xa, stack, outputs, grad_out, False)[0]
