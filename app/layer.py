"""The one layer builder: a validated request becomes the layers the engine runs.

`build_stack` loads the image (from the upload or the store), builds each layer's weights, bias and
ConvSpec once, checks what the output will cost from the shapes alone, and returns a LayerStack that
every route and the page use: its engine input, its cache key, and the GET URL of any endpoint for
the same image and layers. A request has one conv layer (its own fields), or a `layers` stack of
conv, pool, activation and transposed-conv layers (a Network); the single-layer path does not see it.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any
from urllib.parse import urlencode

import numpy as np
from numpy.typing import NDArray

from engine import (
    ConvSpec,
)
from engine.kernels import kernel_bank

from . import images, schemas
from .cost import check, estimate
from .errors import ParamError
from .images import DecodedImage
from .outputs import OutputCache
from .params import Uploads
from .settings import Settings
from .stacks import Network, network_of
from .store import ImageStore
from .weights import bias_of, check_bank, check_magnitude, preset_names, read_npy, shape_weights

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

    @property
    def output_values(self) -> int:
        """J · H_out · W_out of the stack's one layer."""
        h_out, w_out = self.layer.spec.output_shape(self.input_shape[1:])
        return self.layer.kernels * h_out * w_out

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


def weights_of(params: schemas.LayerParams, uploads: Uploads, settings: Settings, channels: int,
               ) -> tuple[NDArray[np.floating], tuple[str, ...], str | None]:
    """(J, C/groups, kh, kw) weights, a name per kernel, and the presets text if they came from presets."""
    groups = params.groups
    if channels % groups:
        raise ParamError("groups", f"`groups`={groups} must divide the input channels ({channels}; "
                         "color=gray has 1, rgb 3)")
    if uploads.weights_file is not None:
        w = shape_weights(read_npy(uploads.weights_file, settings), "weights_file", channels, groups)
        name, presets = "weights_file", None
    elif params.weights is not None:
        w = shape_weights(np.array(params.weights, dtype=np.float64), "weights", channels, groups)
        name, presets = "weights", None
    else:
        names = preset_names(params.kernels, settings)
        w = kernel_bank(names, params.kernel_size, channels // groups, params.seed, settings.max_kernel_size)
        check_bank(w, "kernels", settings, groups)
        return w, tuple(names), ",".join(names)
    check_bank(w, name, settings, groups)
    return w, tuple(f"kernel {j}" for j in range(w.shape[0])), presets


def conv_layer_of(params: schemas.LayerParams, uploads: Uploads, settings: Settings, channels: int
                  ) -> ConvLayer:
    """The request's conv layer: weights, bias, ConvSpec, groups and σ, validated once."""
    w, names, presets = weights_of(params, uploads, settings, channels)
    spec = ConvSpec.make((w.shape[2], w.shape[3]), params.stride, params.padding, params.dilation)
    bias = bias_of(params.bias, w.shape[0])
    return ConvLayer(w.astype(np.float64), bias, names, spec, params.groups, params.activation, presets,
                     params.seed)


def check_output(stack: LayerStack, settings: Settings) -> None:
    """Refuse, from the shapes alone, a layer whose output is over CONVLENS_MAX_OUTPUT_VALUES."""
    layer = stack.layer
    h_out, w_out = layer.spec.output_shape((stack.image.height, stack.image.width))  # names the field
    values = layer.kernels * h_out * w_out
    if values > settings.max_output_values:
        raise ParamError("max_side", f"the output would hold {layer.kernels} x {h_out} x {w_out} = "
                         f"{values:,} values, over the limit of {settings.max_output_values:,} "
                         "(CONVLENS_MAX_OUTPUT_VALUES); use fewer kernels, a stride, or a smaller max_side")


CONV_WORK = ("forward", "map_png", "gradient", "gradient_png", "train")  # work that runs the conv itself


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


def target_weights(params: schemas.GradientParams | schemas.TrainParams, settings: Settings,
                   channels: int) -> tuple[NDArray[np.float32] | None, str]:
    """The hidden layer's weights of loss=mse, and the field that gave them."""
    if params.target_weights is not None:
        w = shape_weights(np.array(params.target_weights, dtype=np.float64), "target_weights", channels,
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
