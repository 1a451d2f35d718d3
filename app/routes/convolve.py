"""POST /api/convolve and /api/feature-maps.png: the layer's output, computed once per image and layer."""

from __future__ import annotations

import os
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial

import numpy as np
from fastapi import APIRouter, Response
from numpy.typing import NDArray

from engine import conv_layer, output_arithmetic, parameter_counts

from .. import draw, schemas
from ..cost import ENGINE_THREADS
from ..encode import (
    arithmetic_out,
    cached_png,
    data_uri,
    floats,
    json_response,
    npy_response,
    parameters_out,
    png_link,
    range_headers,
    require_finite,
    server_timing,
)
from ..errors import ParamError
from ..layer import LayerStack
from ..params import Parsed
from . import Services, compute_route
from .images import image_info

router = APIRouter(prefix="/api", tags=["convolve"])
Encoded = tuple[bytes, dict[str, str]]  # a PNG and the headers of its value and colour ranges


@dataclass(frozen=True)
class Output:
    """A layer's output σ(conv(x) + b) with per-map statistics."""

    y: NDArray[np.float32]  # (J, H_out, W_out)
    mins: NDArray[np.float32]  # (J,)
    maxs: NDArray[np.float32]
    means: NDArray[np.float64]
    seconds: float  # time the engine (conv, bias, σ and statistics) took when it was computed


def layer_output(stack: LayerStack, services: Services) -> tuple[Output, bool]:
    """The layer's output, computed once per (image, layer) and cached; True if computed now."""
    computed = False

    def compute() -> Output:
        nonlocal computed
        computed = True
        layer = stack.layer
        t0 = time.perf_counter()
        # σ, the bias and each map's statistics are applied strip by strip inside the engine.
        maps = conv_layer(stack.x, layer.weight32, layer.bias, groups=layer.groups,
                          activation=layer.activation, spec=layer.spec)
        return Output(maps.y, maps.minimum, maps.maximum, maps.mean, time.perf_counter() - t0)

    return services.outputs.get_or_compute(("output", *stack.key), compute), computed


def layer_info(stack: LayerStack) -> schemas.LayerInfo:
    """The layer as understood, every pair as [rows, cols]."""
    s, layer = stack.layer.spec, stack.layer
    return schemas.LayerInfo(kernel_size=list(s.kernel_size), stride=list(s.stride), padding=list(s.padding),
                             dilation=list(s.dilation), groups=layer.groups, activation=layer.activation,
                             color=stack.color)


@compute_route(router, "convolve", schemas.ConvolveParams,
               schemas.ConvolveResponse | schemas.StackConvolveResponse,  # type: ignore[arg-type]
               "Convolve the image: shapes, output-size arithmetic, parameter counts, per-map stats and PNG "
               "URLs; format=npy gives the (J, H_out, W_out) float32 array. With `layers`, the last layer's "
               "output of the stack, with every layer's shapes (StackConvolveResponse)")
def convolve(parsed: Parsed[schemas.ConvolveParams], services: Services) -> Response:
    """The layer applied to the image."""
    if parsed.params.layers is not None:
        from .network import convolve_stack  # noqa: PLC0415 - network.py builds on this module

        return convolve_stack(parsed, services)
    start = time.perf_counter()
    params = parsed.params
    stack = services.build(parsed)
    out, computed = layer_output(stack, services)
    require_finite("weights", out.mins, out.maxs)
    timing = server_timing(start, out.seconds, computed)
    if params.format == "npy":
        return npy_response(out.y, "feature_maps.npy", timing)
    j, h_out, w_out = out.y.shape
    if params.values and h_out * w_out > services.settings.max_values:
        limit = services.settings.max_values
        raise ParamError("values", f"`values`: {h_out}x{w_out} = {h_out * w_out:,} values per map is over "
                         f"the limit of {limit:,} (CONVLENS_MAX_VALUES); use format=npy")
    layer = stack.layer
    # The PNGs encode on their own threads while the rest of the answer is built.
    pngs = encode_maps(stack, out, services) if params.png_data else None
    maps = []
    for k in range(j):
        lo, hi = float(out.mins[k]), float(out.maxs[k])
        c_lo, c_hi, _ = draw.color_range(lo, hi)
        png = pngs[k].result()[0] if pngs else None
        maps.append(schemas.MapInfo(
            index=k, name=layer.names[k], weights=floats(layer.weight[k]), bias=float(layer.bias[k]),
            min=lo, max=hi, mean=float(out.means[k]), color_min=c_lo, color_max=c_hi,
            png=png_link(stack.map_url(k), out.y[k], png),
            png_data=None if png is None else data_uri(png),
        ))
    body = schemas.ConvolveResponse(
        image=image_info(stack.image_id, stack.image), layer=layer_info(stack),
        input_shape=list(stack.input_shape), output_shape=[j, h_out, w_out],
        arithmetic=arithmetic_out(output_arithmetic(stack.input_shape[1:], spec=layer.spec)),
        parameters=parameters_out(parameter_counts(stack.input_shape, layer.weight.shape, groups=layer.groups,
                                                   spec=layer.spec)),
        maps=maps, grid_png=stack.url("feature-maps.png"), npy=stack.url("convolve", format="npy"),
        values=floats(out.y) if params.values else None,
    )
    return json_response(body, timing)


@compute_route(router, "feature-maps.png", schemas.FeatureMapParams, None,
               "One feature map (`index`) or a labelled grid of all, as PNG")
def feature_maps_png(parsed: Parsed[schemas.FeatureMapParams], services: Services) -> Response:
    """One map, or the grid of all."""
    stack = services.build(parsed, "map_png")
    out, _ = layer_output(stack, services)
    require_finite("weights", out.mins, out.maxs)
    index, scale = parsed.params.index, parsed.params.scale
    if index is not None and index >= out.y.shape[0]:
        raise ParamError("index", f"`index` must be a map index in 0..{out.y.shape[0] - 1}, got {index}")

    if index is not None:
        entry = partial(map_entry, out, index, scale)
        return cached_png(services.outputs, map_key(stack, index, scale), entry)

    def render() -> tuple[bytes, dict[str, str]]:
        labels = [f"{k}: {name}" for k, name in enumerate(stack.layer.names)]
        data = draw.grid_png(out.y, labels, scale)
        lo, hi = float(out.mins.min()), float(out.maxs.max())
        return data, {"X-Value-Min": repr(lo), "X-Value-Max": repr(hi)}

    return cached_png(services.outputs, (*stack.key, "map", None, scale), render)


def map_key(stack: LayerStack, index: int, scale: int) -> tuple[object, ...]:
    """The output cache's key of one map's PNG."""
    return (*stack.key, "map", index, scale)


def map_entry(out: Output, index: int, scale: int) -> Encoded:
    """One map as PNG bytes and the headers of its value and colour ranges."""
    data, c = draw.map_png(out.y[index], scale)
    return data, range_headers(float(out.mins[index]), float(out.maxs[index]), c)


# One encoding thread a core: more only contend for the GIL with the answer itself.
ENCODER = ThreadPoolExecutor(max_workers=max(1, min(ENGINE_THREADS, os.cpu_count() or 1)),
                             thread_name_prefix="convlens-png")


def encode_maps(stack: LayerStack, out: Output, services: Services) -> list[Future[Encoded]]:
    """Every map's PNG (scale 1), encoding in parallel into the output cache, so that the `png` URLs
    are served from it too (the cache computes each key once: a URL asked for meanwhile waits)."""
    return [ENCODER.submit(services.outputs.get_or_compute, ("png", *map_key(stack, k, 1)),
                           partial(map_entry, out, k, 1)) for k in range(out.y.shape[0])]
