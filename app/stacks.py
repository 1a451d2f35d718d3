"""A `layers` stack built for the engine: each layer's geometry, weights and bias, and its costs.

C_in of each layer follows the previous one; every shape and channel count is checked from the
shapes first (engine.stack_cost), then the weights are built and the values each layer may reach are
bounded, so a stack that would overflow float32 is refused before it runs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

import numpy as np
from numpy.typing import NDArray

from engine import ArgumentError, StackCost, StackLayer, init_weights, layer_from_dict, stack_cost
from engine.kernels import kernel_bank, spread_kernels

from . import schemas
from .errors import ParamError
from .layer_fields import DEFAULT_KERNEL, LayerSpec, geometry_of
from .settings import Settings


@dataclass(frozen=True)
class NetLayer:
    """One layer of a `layers` stack: its spec as the request gave it, and the engine's layer."""

    spec: LayerSpec  # validated by fields.Layers; what a URL carries
    layer: StackLayer  # geometry; in a computed stack also its float32 weight and bias
    names: tuple[str, ...]  # a name per output channel: the preset's, or "map j"


@dataclass(frozen=True)
class Network:
    """A `layers` stack: its layers, the seed of its random weights, and its costs from the shapes."""

    layers: tuple[NetLayer, ...]
    seed: int
    computed: bool  # True: every conv has its weights (maps are computed); False: geometry only
    cost: StackCost  # every layer's input and output shape, multiply-adds, parameters

    @property
    def engine_layers(self) -> list[StackLayer]:
        """The layers as engine/stack.py runs them."""
        return [n.layer for n in self.layers]

    @cached_property
    def digest(self) -> str:
        """Identity of every layer's kind, geometry, weights and bias, for cache keys."""
        h = hashlib.sha256()
        for n in self.layers:
            layer = n.layer
            h.update(repr((layer.kind, layer.kernel_size, layer.stride, layer.padding, layer.dilation,
                           layer.groups, layer.output_padding, layer.ceil_mode, layer.count_include_pad,
                           layer.out_channels)).encode())
            for array in (layer.weight, layer.bias):
                h.update(b"-" if array is None else repr(array.shape).encode() + array.tobytes())
        return h.hexdigest()

    def query(self) -> dict[str, str]:
        """The stack as GET parameters that read back into the same stack."""
        return {"layers": json.dumps(list(n.spec for n in self.layers), separators=(",", ":")),
                "seed": str(self.seed)}


def network_of(specs: Sequence[LayerSpec], input_shape: tuple[int, int, int], seed: int, settings: Settings,
               computed: bool) -> Network:
    """The `layers` stack on a (C, H, W) input: C_in of each layer follows the previous one.

    With `computed`, every conv gets its weights: `weights` as given (J x kh x kw act on the mean of
    the input channels, like presets), `kernels` presets, random ones (PyTorch's default init,
    drawn from `seed` + the layer's index) when only `out_channels` is given, or else one default
    preset; at most CONVLENS_MAX_STACK_LAYERS layers of at most CONVLENS_MAX_STACK_CHANNELS maps,
    and values bounded by CONVLENS_MAX_OUTPUT_MAGNITUDE. Without, only the geometry (up to
    CONVLENS_MAX_GEOMETRY_LAYERS layers). ParamError or StackLayerError names `layers[i].<field>`.
    """
    limit, setting = ((settings.max_stack_layers, "CONVLENS_MAX_STACK_LAYERS") if computed
                      else (settings.max_geometry_layers, "CONVLENS_MAX_GEOMETRY_LAYERS"))
    if len(specs) > limit:
        more = " (/api/receptive-field takes longer stacks: it computes geometry only)" if computed else ""
        raise ParamError("layers", f"`layers`: at most {limit} layers here ({setting}), got {len(specs)}"
                         + more)
    geometries = [geometry_of(spec, DEFAULT_KERNEL) for spec in specs]
    cost = stack_cost(input_shape, geometries)  # every shape and channel count first, the field named
    if not computed:
        return Network(tuple(NetLayer(spec, layer_from_dict(g, i), ()) for i, (spec, g) in
                             enumerate(zip(specs, geometries, strict=True))), seed, computed, cost)
    c = input_shape[0]
    layers: list[NetLayer] = []
    bound = 1.0  # the largest |value| the layer's output may hold: inputs are in [0, 1]
    for i, (spec, geometry) in enumerate(zip(specs, geometries, strict=True)):
        names: tuple[str, ...] = ()
        j = cost.layers[i].output_shape[0]
        if j > settings.max_stack_channels:
            raise ParamError(f"layers[{i}]", f"`layers[{i}]` makes {j} maps, over the limit of "
                             f"{settings.max_stack_channels} (CONVLENS_MAX_STACK_CHANNELS); use fewer")
        if spec["kind"] in ("conv", "conv_transpose"):
            built = _stack_weights(spec, i, c, seed, settings)
            if built is not None:
                w, b, names = built
                geometry = {**geometry, "weight": w, "bias": b}
        layer = layer_from_dict(geometry, i)
        if layer.is_conv and layer.weight is None:
            layer = init_weights([layer], c, seed + i)[0]  # PyTorch's default init
        source = next((f for f in ("weights", "kernels") if f in spec), "kernel_size")
        bound = _layer_bound(layer, bound, f"layers[{i}].{source}", settings)
        layers.append(NetLayer(spec, layer, names or tuple(f"map {k}" for k in range(j))))
        c = j
    return Network(tuple(layers), seed, computed, stack_cost(input_shape, [n.layer for n in layers]))


def _stack_weights(spec: LayerSpec, i: int, c: int, seed: int, settings: Settings) -> tuple[
        NDArray[np.float32], NDArray[np.float32], tuple[str, ...]] | None:
    """A conv layer's weight (conv (J, C/g, kh, kw), conv_transpose (C, J/g, kh, kw)), bias, names;
    None when the layer gives only out_channels (random weights, drawn by the caller)."""
    where, kind = f"layers[{i}]", spec["kind"]
    g = int(spec.get("groups", 1))
    if c % g:
        raise ParamError(f"{where}.groups", f"`{where}.groups`={g} must divide the {c} input channels "
                         "of this layer")
    if "weights" in spec:
        raw: NDArray[np.floating] = np.array(spec["weights"], dtype=np.float64)
        names: tuple[str, ...] = ()
        if raw.ndim == 3:
            raw = spread_kernels(raw, c // g)
            if kind == "conv_transpose":
                raw = _as_transposed(raw, g)
        want = (raw.shape[0], c // g) if kind == "conv" else (c, raw.shape[1])
        if raw.shape[:2] != want:
            layout = "J x C/groups x kh x kw" if kind == "conv" else "C x J/groups x kh x kw"
            raise ParamError(f"{where}.weights", f"`{where}.weights` of shape {list(raw.shape)} does not "
                             f"fit the {c} input channels of this layer in {g} group(s): a {kind} weight is "
                             f"{layout}, or J x kh x kw")
        w = raw
    elif "kernels" in spec or "out_channels" not in spec:
        text = str(spec.get("kernels") or schemas.LayerParams.model_fields["kernels"].default)
        names = tuple(text.split(","))
        size = tuple(spec.get("kernel_size", DEFAULT_KERNEL))
        try:
            bank = kernel_bank(list(names), (size[0], size[1]), c // g, seed, settings.max_kernel_size)
        except ArgumentError as err:
            raise ParamError(f"{where}.{err.argument}", str(err)) from None
        if len(names) % g:
            raise ParamError(f"{where}.groups", f"`{where}.groups`={g} must divide the {len(names)} kernels")
        w = bank if kind == "conv" else _as_transposed(bank, g)
    else:
        return None
    j = w.shape[0] if kind == "conv" else w.shape[1] * g
    bias = np.zeros(j, np.float32)
    if "bias" in spec:
        values = np.atleast_1d(np.asarray(spec["bias"], dtype=np.float64))
        if values.size not in (1, j):
            raise ParamError(f"{where}.bias", f"`{where}.bias` must be one value or one per output channel "
                             f"({j}), got {values.size}")
        bias = np.broadcast_to(values, (j,)).astype(np.float32)
    return w.astype(np.float32), bias, names or tuple(f"kernel {k}" for k in range(j))


def _as_transposed(bank: NDArray[np.floating], groups: int) -> NDArray[np.floating]:
    """Conv weights (J, C/g, kh, kw) as a transposed conv's (C, J/g, kh, kw): kernel j on channel c."""
    j, cg, kh, kw = bank.shape
    if j % groups:
        return bank  # the caller names `groups` for this
    return bank.reshape(groups, j // groups, cg, kh, kw).transpose(0, 2, 1, 3, 4).reshape(
        groups * cg, j // groups, kh, kw)


def _layer_bound(layer: StackLayer, bound: float, name: str, settings: Settings) -> float:
    """The largest |value| of the layer's output when its input is within ±bound; 422 past the limit."""
    if layer.kind in ("sigmoid", "tanh"):
        return 1.0
    if not layer.is_conv:
        return bound  # pools and relu never grow a value
    assert layer.weight is not None and layer.bias is not None
    w = np.abs(layer.weight.astype(np.float64))
    per_map = w.sum(axis=(1, 2, 3)) if layer.kind == "conv" else w.sum(axis=(0, 2, 3))
    if layer.kind == "conv_transpose" and layer.groups > 1:
        per_map = np.tile(per_map, layer.groups)
    top = float((per_map * bound + np.abs(layer.bias.astype(np.float64))).max())
    if top > settings.max_output_magnitude:
        raise ParamError(name, f"`{name}`: with these weights and bias, and the layers before, the "
                         f"output could reach {top:.3g}, over the limit of "
                         f"{settings.max_output_magnitude:.3g} (CONVLENS_MAX_OUTPUT_MAGNITUDE); use smaller "
                         "numbers")
    return top
