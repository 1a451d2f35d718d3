"""The one layer builder: a validated request becomes the layers the engine runs.

`build_stack` loads the image (from the upload or the store), builds each layer's weights, bias and
ConvSpec once, checks what the output will cost from the shapes alone, and returns a LayerStack that
every route and the page use: its engine input, its cache key, and the GET URL of any endpoint for
the same image and layers. A request has one conv layer (its own fields), or a `layers` stack of
conv, pool, activation and transposed-conv layers (a Network); the single-layer path does not see it.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import numpy as np
from numpy.typing import NDArray

from engine import (
    PRESETS,
    ArgumentError,
    ConvSpec,
    StackCost,
    StackLayer,
    init_weights,
    layer_from_dict,
    stack_cost,
)
from engine.kernels import kernel_bank, spread_kernels

from . import images, schemas
from .cost import check, estimate
from .errors import ParamError
from .fields import DEFAULT_KERNEL, LayerSpec, geometry_of
from .images import DecodedImage
from .outputs import OutputCache
from .params import Uploads
from .settings import Settings
from .store import ImageStore

NPY_HEADER_BYTES = 4096  # a .npy header is at most this long; the data follows it


@dataclass(frozen=True)
class ConvLayer:
    """One conv layer of a request, validated: what the engine runs, and how a URL names it."""

    weight: NDArray[np.float64]  # (J, C/groups, kh, kw), as given (reported back exactly)
    bias: NDArray[np.float32]  # (J,)
    names: tuple[str, ...]  # a name per kernel: the preset's, or "kernel j"
    spec: ConvSpec
    groups: int
    activation: str
    presets: str | None  # the `kernels` text when the weights came from presets, else None
    seed: int = 0

    @cached_property
    def weight32(self) -> NDArray[np.float32]:
        """The weights as the engine runs them, float32."""
        return self.weight.astype(np.float32)

    @property
    def kernels(self) -> int:
        """J, the number of kernels."""
        return int(self.weight.shape[0])

    @cached_property
    def digest(self) -> str:
        """Identity of the weights, bias, geometry and σ, for cache keys."""
        h = hashlib.sha256(self.weight32.tobytes())
        geometry = (self.weight.shape, self.bias.tolist(), self.spec, self.groups, self.activation)
        h.update(repr(geometry).encode())
        return h.hexdigest()

    def query(self) -> dict[str, str]:
        """The layer as GET parameters that read back into the same layer."""
        q: dict[str, str]
        if self.presets is not None:
            q = {"kernels": self.presets, "kernel_size": "{},{}".format(*self.spec.kernel_size),
                 "seed": str(self.seed)}
        else:
            q = {"weights": json.dumps(self.weight.tolist(), separators=(",", ":"))}
        s = self.spec
        return q | {"stride": "{},{}".format(*s.stride), "padding": "{},{}".format(*s.padding),
                    "dilation": "{},{}".format(*s.dilation), "groups": str(self.groups),
                    "bias": ",".join(repr(float(b)) for b in self.bias), "activation": self.activation}


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


@dataclass
class LayerStack:
    """The image and the layers of one request, with the engine input, cache key and GET URLs."""

    image_id: str
    image: DecodedImage
    color: str
    layers: tuple[ConvLayer, ...]
    cache: OutputCache | None = field(default=None, repr=False)
    network: Network | None = None  # the `layers` stack, when the request has one (then `layers` is ())

    @property
    def layer(self) -> ConvLayer:
        """The only layer, for the single-layer endpoints."""
        return self.layers[0]

    @property
    def channels(self) -> int:
        """C of the input: 1 for gray, 3 for rgb."""
        return 1 if self.color == "gray" else 3

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of the engine input."""
        return (self.channels, self.image.height, self.image.width)

    @cached_property
    def x(self) -> NDArray[np.float32]:
        """The engine input (C, H, W) in [0, 1], cached per (image, color)."""
        def make() -> NDArray[np.float32]:
            return images.to_input(self.image.pixels, self.color)  # type: ignore[arg-type]
        if self.cache is None:
            return make()
        return self.cache.get_or_compute(("input", self.image_id, self.color), make)

    @cached_property
    def key(self) -> tuple[object, ...]:
        """Identity of the stack's output, for the output cache."""
        if self.network is not None:
            return (self.image_id, self.color, "layers", self.network.digest)
        return (self.image_id, self.color, *(layer.digest for layer in self.layers))

    @cached_property
    def query(self) -> dict[str, str]:
        """Canonical GET parameters of the image and layers."""
        if self.network is not None:
            return {"image_id": self.image_id, "color": self.color, **self.network.query()}
        return {"image_id": self.image_id, "color": self.color, **self.layer.query()}

    @cached_property
    def _query_string(self) -> str:
        return urlencode(self.query)

    def url(self, path: str, **extra: object) -> str:
        """GET URL of an endpoint for this image and layer; `extra` adds parameters the layer has not."""
        clash = self.query.keys() & extra.keys()
        if clash:
            raise ValueError(f"url(): {sorted(clash)} are layer parameters")  # a bug in a caller
        more = urlencode({k: str(v) for k, v in extra.items()})
        return f"/api/{path}?{self._query_string}" + (f"&{more}" if more else "")

    def map_url(self, index: int) -> str:
        """GET URL of feature map `index` as PNG: the page and /api/convolve give the same one."""
        return self.url("feature-maps.png", index=index)


def load_image(params: schemas.LayerParams, uploads: Uploads, settings: Settings,
               store: ImageStore) -> tuple[str, DecodedImage]:
    """The uploaded image (decoded and stored) or the stored one named by image_id."""
    if uploads.image is not None:
        decoded = images.decode_upload(uploads.image, settings, params.max_side)
        return store.put(decoded), decoded
    if params.image_id is None:
        raise ParamError("image", "send the image as multipart field `image`, or `image_id` from "
                         "POST /api/images")
    return params.image_id, store.require(params.image_id)


def read_npy(data: bytes, settings: Settings, name: str = "weights_file") -> NDArray[np.float64]:
    """A .npy file of real numbers, its header checked against the limits before anything is allocated."""
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(buf)
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise ParamError(name, f"`{name}` is not a readable .npy file ({err})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ParamError(name, f"`{name}` must hold real numbers, got dtype {dtype}")
    if len(shape) not in (3, 4):
        raise ParamError(name, f"`{name}` must have shape (J, C/groups, kh, kw) or (J, kh, kw), got {shape}")
    most = settings.max_kernels * 3 * settings.max_kernel_size ** 2
    count = int(np.prod(shape, dtype=np.int64))
    if count > most or count * dtype.itemsize > len(data):
        side = settings.max_kernel_size
        raise ParamError(name, f"`{name}` declares shape {shape}: over {settings.max_kernels} kernels of "
                         f"{side}x{side}, or more than the file holds")
    buf.seek(0)
    try:
        raw = np.load(buf, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ParamError(name, f"`{name}` is not a readable .npy file ({err})") from None
    raw = raw.astype(np.float64)
    if raw.size == 0 or not np.isfinite(raw).all():
        raise ParamError(name, f"`{name}` must hold finite numbers and not be empty")
    if np.abs(raw).max() > np.finfo(np.float32).max:
        raise ParamError(name, f"`{name}` must hold numbers of at most about 3.4e38 in size (float32)")
    return raw


def _shape_weights(raw: NDArray[np.floating], name: str, channels: int, groups: int) -> NDArray[np.floating]:
    """(J, kh, kw) or (J, C/groups, kh, kw) values as (J, C/groups, kh, kw) weights."""
    cg = channels // groups
    if raw.ndim == 3:
        raw = spread_kernels(raw, cg)
    if raw.ndim != 4 or raw.shape[1] != cg:
        raise ParamError(name, f"`{name}` must have shape (J, {cg}, kh, kw) or (J, kh, kw) for "
                         f"{channels} channel(s) in {groups} group(s), got {raw.shape}")
    return raw


def preset_names(text: str, settings: Settings, name: str = "kernels") -> list[str]:
    """Comma-separated preset names, checked: 1..max_kernels known presets."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ParamError(name, f"`{name}` must name at least one preset")
    if len(names) > settings.max_kernels:
        raise ParamError(name, f"`{name}`: at most {settings.max_kernels} kernels, got {len(names)}")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ParamError(name, f"`{name}`: unknown preset {unknown[0]!r}; choose from {', '.join(PRESETS)}")
    return names


def _check_bank(w: NDArray[np.floating], name: str, settings: Settings, groups: int) -> None:
    j, _, kh, kw = w.shape
    if j > settings.max_kernels:
        raise ParamError(name, f"`{name}`: at most {settings.max_kernels} kernels, got {j}")
    if max(kh, kw) > settings.max_kernel_size:
        raise ParamError(name, f"`{name}`: kernels up to {settings.max_kernel_size} on a side, got {kh}x{kw}")
    if j % groups:
        raise ParamError("groups", f"`groups`={groups} must divide the number of kernels ({j})")


def weights_of(params: schemas.LayerParams, uploads: Uploads, settings: Settings, channels: int,
               ) -> tuple[NDArray[np.floating], tuple[str, ...], str | None]:
    """(J, C/groups, kh, kw) weights, a name per kernel, and the presets text if they came from presets."""
    groups = params.groups
    if channels % groups:
        raise ParamError("groups", f"`groups`={groups} must divide the input channels ({channels}; "
                         "color=gray has 1, rgb 3)")
    if uploads.weights_file is not None:
        w = _shape_weights(read_npy(uploads.weights_file, settings), "weights_file", channels, groups)
        name, presets = "weights_file", None
    elif params.weights is not None:
        w = _shape_weights(np.array(params.weights, dtype=np.float64), "weights", channels, groups)
        name, presets = "weights", None
    else:
        names = preset_names(params.kernels, settings)
        w = kernel_bank(names, params.kernel_size, channels // groups, params.seed, settings.max_kernel_size)
        _check_bank(w, "kernels", settings, groups)
        return w, tuple(names), ",".join(names)
    _check_bank(w, name, settings, groups)
    return w, tuple(f"kernel {j}" for j in range(w.shape[0])), presets


def bias_of(values: Sequence[float], j: int) -> NDArray[np.float32]:
    """`bias` as J values: one number for all kernels or one per kernel."""
    if len(values) == 1:
        return np.full(j, values[0], dtype=np.float32)
    if len(values) != j:
        raise ParamError("bias", f"`bias` must be one value or one per kernel ({j}), got {len(values)}")
    return np.asarray(values, dtype=np.float32)


def conv_layer_of(params: schemas.LayerParams, uploads: Uploads, settings: Settings, channels: int
                  ) -> ConvLayer:
    """The request's conv layer: weights, bias, ConvSpec, groups and σ, validated once."""
    w, names, presets = weights_of(params, uploads, settings, channels)
    spec = ConvSpec.make((w.shape[2], w.shape[3]), params.stride, params.padding, params.dilation)
    bias = bias_of(params.bias, w.shape[0])
    return ConvLayer(w.astype(np.float64), bias, names, spec, params.groups, params.activation, presets,
                     params.seed)


def magnitude(w: NDArray[np.floating], bias: NDArray[np.floating]) -> float:
    """The largest |y| a layer can output for inputs in [0, 1]: max over kernels of sum |w| + |b|."""
    return float((np.abs(w).sum(axis=(1, 2, 3)) + np.abs(bias)).max())


def check_magnitude(w: NDArray[np.floating], bias: NDArray[np.floating], settings: Settings, name: str
                    ) -> None:
    """Refuse weights whose outputs could overflow float32 (CONVLENS_MAX_OUTPUT_MAGNITUDE)."""
    bound = magnitude(w, bias)
    if bound > settings.max_output_magnitude:
        field = "bias" if float(np.abs(bias).max()) > settings.max_output_magnitude else name
        raise ParamError(field, f"`{field}`: with these weights and bias the output could reach {bound:.3g}, "
                         f"over the limit of {settings.max_output_magnitude:.3g} "
                         "(CONVLENS_MAX_OUTPUT_MAGNITUDE); use smaller numbers")


def check_output(stack: LayerStack, settings: Settings) -> None:
    """Refuse, from the shapes alone, a layer whose output is over CONVLENS_MAX_OUTPUT_VALUES."""
    layer = stack.layer
    h_out, w_out = layer.spec.output_shape((stack.image.height, stack.image.width))  # names the field
    values = layer.kernels * h_out * w_out
    if values > settings.max_output_values:
        raise ParamError("max_side", f"the output would hold {layer.kernels} x {h_out} x {w_out} = "
                         f"{values:,} values, over the limit of {settings.max_output_values:,} "
                         "(CONVLENS_MAX_OUTPUT_VALUES); use fewer kernels, a stride, or a smaller max_side")


CONV_WORK = ("forward", "map_png", "gradient", "gradient_png")  # work that runs the conv itself


def build_stack(params: schemas.LayerParams, uploads: Uploads, settings: Settings, store: ImageStore,
                outputs: OutputCache | None = None, work: str = "forward") -> LayerStack:
    """Everything about the request's image and layers, validated, and `work` on it costed from the
    shapes (app/cost.py) before anything runs; ParamError names a field."""
    image_id, image = load_image(params, uploads, settings, store)
    stack = LayerStack(image_id, image, params.color, (), outputs)
    specs = getattr(params, "layers", None)
    if specs is not None:
        stack.network = network_of(specs, stack.input_shape, params.seed, settings,
                                   computed=work not in GEOMETRY_WORK)
        cost, field_name = estimate(work, stack, params, settings)
        check(cost, settings, field_name)
        return stack
    stack.layers = (conv_layer_of(params, uploads, settings, stack.channels),)
    if work in CONV_WORK:
        check_output(stack, settings)  # the kernel must fit the image first: that names the real problem
        check_magnitude(stack.layer.weight, stack.layer.bias, settings,
                        "weights_file" if uploads.weights_file else "weights")
    cost, field_name = estimate(work, stack, params, settings)
    check(cost, settings, field_name)
    return stack


GEOMETRY_WORK = ("geometry", "image_png")  # work on a stack that needs its shapes only, no weights


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


def target_weights(params: schemas.GradientParams | schemas.TrainParams, settings: Settings,
                   channels: int) -> tuple[NDArray[np.float32] | None, str]:
    """The hidden layer's weights of loss=mse, and the field that gave them."""
    if params.target_weights is not None:
        w = _shape_weights(np.array(params.target_weights, dtype=np.float64), "target_weights", channels,
                           params.groups)
        return w.astype(np.float32), "target_weights"
    if params.target_kernels is None:
        return None, "target_kernels"
    names = preset_names(params.target_kernels, settings, "target_kernels")
    bank = kernel_bank(names, params.kernel_size, channels // params.groups, params.seed,
                       settings.max_kernel_size)
    return bank.astype(np.float32), "target_kernels"


def json_text(value: Any) -> str | None:
    """A JSON parameter as the compact text a URL carries."""
    return None if value is None else json.dumps(value, separators=(",", ":"))
