"""A stack of layers on the image: /api/network, /api/network-map.png, /api/erf (+ .png), GET /api/networks.

The stack is the request's `layers` (app/fields.py reads them, app/layer.py builds their weights and
costs them from the shapes before anything runs). Its forward pass is computed once per (image,
stack) and cached in the output cache, so the JSON of /api/network and the PNG URLs it lists share
one run; so is each unit's effective receptive field. /api/convolve and /api/receptive-field with
`layers` answer through convolve_stack and receptive_stack here.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from fastapi import APIRouter, Request, Response
from numpy.typing import NDArray

from engine import (
    NETWORKS,
    ReceptiveBox,
    receptive_box,
    receptive_field_stack,
    stack_cost,
    stack_forward,
)

from .. import draw, schemas
from ..encode import (
    cached_png,
    floats,
    json_response,
    npy_response,
    png_link,
    png_response,
    range_headers,
    require_finite,
    server_timing,
)
from ..errors import ParamError
from ..layer import LayerStack
from ..params import Parsed
from ..stacks import Network
from . import ERRORS, Services, compute_route
from .images import image_info

router = APIRouter(prefix="/api", tags=["network"])


@dataclass(frozen=True)
class StackOutput:
    """Every layer's output of a stack, with per-map statistics."""

    ys: tuple[NDArray[np.float32], ...]  # one (J_l, H_l, W_l) per layer
    mins: tuple[NDArray[np.float32], ...]  # one (J_l,) per layer
    maxs: tuple[NDArray[np.float32], ...]
    means: tuple[NDArray[np.float64], ...]
    seconds: float  # time the engine took when it was computed


def _network(stack: LayerStack) -> Network:
    assert stack.network is not None  # the request models of this module require `layers`
    return stack.network


def stack_output(stack: LayerStack, services: Services) -> tuple[StackOutput, bool]:
    """Every layer's output, computed once per (image, stack) and cached; True if computed now."""
    computed = False

    def compute() -> StackOutput:
        nonlocal computed
        computed = True
        t0 = time.perf_counter()
        layers = _network(stack).engine_layers
        ys = tuple(np.asarray(y, dtype=np.float32) for y in stack_forward(stack.x, layers))
        mins = tuple(y.min(axis=(1, 2)) for y in ys)
        maxs = tuple(y.max(axis=(1, 2)) for y in ys)
        means = tuple(y.mean(axis=(1, 2), dtype=np.float64) for y in ys)
        return StackOutput(ys, mins, maxs, means, time.perf_counter() - t0)

    out = services.outputs.get_or_compute(("stack", *stack.key), compute)
    require_finite("layers", *out.mins, *out.maxs)
    return out, computed


def receptive_entries(network: Network) -> list[schemas.ReceptiveEntryOut | None]:
    """Size, jump and start after each layer; None from the first conv_transpose on (a fractional jump)."""
    layers = network.engine_layers
    first = next((i for i, layer in enumerate(layers) if layer.kind == "conv_transpose"), len(layers))
    entries: list[schemas.ReceptiveEntryOut | None] = [
        schemas.ReceptiveEntryOut(size=list(e.size), jump=list(e.jump), start=list(e.start))
        for e in (receptive_field_stack(layers[:first]) if first else [])
    ]
    return entries + [None] * (len(layers) - first)


def layers_out(network: Network) -> list[schemas.StackLayerOut]:
    """Every layer's kind, shapes and receptive field."""
    return [schemas.StackLayerOut(index=i, kind=c.kind, input_shape=list(c.input_shape),
                                  output_shape=list(c.output_shape), receptive_field=rf)
            for i, (c, rf) in enumerate(zip(network.cost.layers, receptive_entries(network), strict=True))]


def map_url(stack: LayerStack, layer: int, index: int, out: StackOutput) -> str:
    """GET URL of one map's PNG (a data URI when inline weights make the URL too long)."""
    return png_link(stack.url("network-map.png", layer=layer, index=index), out.ys[layer][index])


def maps_out(stack: LayerStack, out: StackOutput, layer: int) -> list[schemas.NetworkMapOut]:
    """Each map of one layer: its statistics, colour range and PNG URL."""
    names = _network(stack).layers[layer].names
    maps = []
    for k in range(out.ys[layer].shape[0]):
        lo, hi = float(out.mins[layer][k]), float(out.maxs[layer][k])
        c_lo, c_hi, _ = draw.color_range(lo, hi)
        maps.append(schemas.NetworkMapOut(index=k, name=names[k], min=lo, max=hi,
                                          mean=float(out.means[layer][k]), color_min=c_lo, color_max=c_hi,
                                          png=map_url(stack, layer, k, out)))
    return maps


@compute_route(router, "network", schemas.NetworkParams, schemas.NetworkResponse,
               "Run a stack of layers (`layers`) on the image: per layer its output shape, receptive field "
               "(size, jump, start), parameter counts, per-map statistics and PNG URLs")
def network_json(parsed: Parsed[schemas.NetworkParams], services: Services) -> Response:
    """The stack, layer by layer."""
    start = time.perf_counter()
    stack = services.build(parsed, "network")
    network = _network(stack)
    out, computed = stack_output(stack, services)
    layers = []
    for i, (base, cost) in enumerate(zip(layers_out(network), network.cost.layers, strict=True)):
        biases = 0 if network.layers[i].layer.bias is None else cost.output_shape[0]
        layers.append(schemas.NetworkLayerOut(
            **base.model_dump(), spec=network.layers[i].spec, maps=maps_out(stack, out, i),
            parameters=schemas.LayerCountsOut(weights=cost.parameters - biases, biases=biases,
                                              multiply_adds=cost.multiply_adds)))
    body = schemas.NetworkResponse(
        image=image_info(stack.image_id, stack.image), input_shape=list(stack.input_shape),
        output_shape=list(network.cost.layers[-1].output_shape), layers=layers,
        parameters=network.cost.parameters, multiply_adds=network.cost.multiply_adds,
        npy=stack.url("convolve", format="npy"),
    )
    return json_response(body, server_timing(start, out.seconds, computed))


@compute_route(router, "network-map.png", schemas.NetworkMapParams, None,
               "Map `index` of layer `layer` (default: the last) of the stack `layers`, as PNG")
def network_map_png(parsed: Parsed[schemas.NetworkMapParams], services: Services) -> Response:
    """One map of one layer of the stack."""
    stack = services.build(parsed, "network_png")
    params = parsed.params
    n = len(_network(stack).layers)
    layer = n - 1 if params.layer is None else params.layer
    if layer >= n:
        raise ParamError("layer", f"`layer` must be a layer index in 0..{n - 1}, got {layer}")
    j = _network(stack).cost.layers[layer].output_shape[0]
    if params.index >= j:
        raise ParamError("index", f"`index` must be a map of layer {layer}, 0..{j - 1}, got {params.index}")
    out, _ = stack_output(stack, services)

    def render() -> tuple[bytes, dict[str, str]]:
        k = params.index
        data, c = draw.map_png(out.ys[layer][k], params.scale)
        return data, range_headers(float(out.mins[layer][k]), float(out.maxs[layer][k]), c)

    return cached_png(services.outputs, (*stack.key, "stack-map", layer, params.index, params.scale), render)


def convolve_stack(parsed: Parsed[schemas.ConvolveParams], services: Services) -> Response:
    """/api/convolve with `layers`: the last layer's output, with every layer's shapes."""
    start = time.perf_counter()
    params = parsed.params
    stack = services.build(parsed)
    out, computed = stack_output(stack, services)
    timing = server_timing(start, out.seconds, computed)
    y = out.ys[-1]
    if params.format == "npy":
        return npy_response(y, "feature_maps.npy", timing)
    if params.values and y.shape[1] * y.shape[2] > services.settings.max_values:
        limit = services.settings.max_values
        raise ParamError("values", f"`values`: {y.shape[1]}x{y.shape[2]} = {y.shape[1] * y.shape[2]:,} "
                         f"values per map is over the limit of {limit:,} (CONVLENS_MAX_VALUES); use "
                         "format=npy")
    network = _network(stack)
    body = schemas.StackConvolveResponse(
        image=image_info(stack.image_id, stack.image), input_shape=list(stack.input_shape),
        output_shape=list(y.shape), layers=layers_out(network), maps=maps_out(stack, out, len(out.ys) - 1),
        npy=stack.url("convolve", format="npy"), values=floats(y) if params.values else None,
    )
    return json_response(body, timing)


def _padding_out(box: ReceptiveBox) -> schemas.PaddingOut:
    top, bottom, left, right = box.padding
    return schemas.PaddingOut(top=top, bottom=bottom, left=left, right=right)


def _clipped(box: ReceptiveBox) -> schemas.Box | None:
    if box.clipped is None:
        return None
    top, left, height, width = box.clipped
    return schemas.Box(top=top, left=left, height=height, width=width)


def _box(box: ReceptiveBox) -> schemas.Box:
    return schemas.Box(top=box.top, left=box.left, height=box.height, width=box.width)


def _unit(stack: LayerStack, row: int, col: int) -> None:
    """Refuse a unit outside the last layer's output, naming `row` or `col`."""
    _, h_out, w_out = _network(stack).cost.layers[-1].output_shape
    for name, value, n in (("row", row, h_out), ("col", col, w_out)):
        if value >= n:
            raise ParamError(name, f"`{name}` must be an index of the last layer's output, 0..{n - 1}, "
                             f"got {value}")


def receptive_stack(parsed: Parsed[schemas.ReceptiveFieldParams], services: Services) -> Response:
    """/api/receptive-field with `layers`: geometry only, up to CONVLENS_MAX_GEOMETRY_LAYERS layers."""
    stack = services.build(parsed, "geometry")
    network, params = _network(stack), parsed.params
    _unit(stack, params.row, params.col)
    box = receptive_box(stack.input_shape[1:], network.engine_layers, params.row, params.col)
    return json_response(schemas.StackReceptiveFieldResponse(
        unit=[params.row, params.col], input_shape=list(stack.input_shape),
        output_shape=list(network.cost.layers[-1].output_shape[1:]), layers=layers_out(network),
        box=_box(box), clipped=_clipped(box), padding=_padding_out(box), in_padding=box.in_padding,
        padding_fraction=box.padding_fraction,
        png=stack.url("receptive-field.png", row=params.row, col=params.col),
    ))


def receptive_stack_png(parsed: Parsed[schemas.ReceptiveFieldParams], services: Services) -> Response:
    """/api/receptive-field.png with `layers`: the box of the unit on the image, padding drawn around it."""
    stack = services.build(parsed, "image_png")
    params = parsed.params
    _unit(stack, params.row, params.col)
    box = receptive_box(stack.input_shape[1:], _network(stack).engine_layers, params.row, params.col)
    h, w = stack.input_shape[1:]
    top, bottom, left, right = box.padding
    pad = (min(max(top, bottom), h), min(max(left, right), w))  # at most the image's own size drawn
    scale = params.scale or draw.auto_scale(h, w)
    return png_response(draw.draw_receptive_field(stack.image.pixels, pad,
                                                    (box.top, box.left, box.height, box.width), [], scale))


@router.get("/networks", response_model=schemas.NetworksResponse, responses=ERRORS,
            summary="Well-known networks' layer lists, usable as `layers`")
def networks(request: Request) -> schemas.NetworksResponse:
    """AlexNet, VGG-16, ResNet-50 (torchvision's and TF-Slim's layouts) and a small learner stack.

    Receptive fields of the last layer: AlexNet pool5 195, jump 32 (conv1 unpadded, as TF-Slim's
    alexnet_v2); VGG-16 pool5 212, jump 32; ResNet-50 main path 427, jump 32 in torchvision's layout
    (`resnet50`), 483 in TF-Slim's (`resnet50_slim`); the learner 18, jump 4.
    """
    settings = request.app.state.settings
    out = []
    for net in NETWORKS.values():
        last = receptive_field_stack([dict(layer) for layer in net.layers])[-1]
        shape = stack_cost(net.input_shape, list(net.layers)).output_shapes[-1]
        out.append(schemas.NetworkOut(
            name=net.name, title=net.title, input_shape=list(net.input_shape), layout=net.layout,
            layers=[{k: list(v) if isinstance(v, tuple) else v for k, v in layer.items()}
                    for layer in net.layers],
            layer_names=list(net.layer_names), output_shape=list(shape),
            receptive_field=schemas.ReceptiveEntryOut(size=list(last.size), jump=list(last.jump),
                                                      start=list(last.start)),
            runnable=len(net.layers) <= settings.max_stack_layers,
        ))
    return schemas.NetworksResponse(networks=out)
