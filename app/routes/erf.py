"""POST /api/erf (and .png, format=npy): the effective receptive field of one unit of a `layers` stack."""

from __future__ import annotations

import time

import numpy as np
from fastapi import APIRouter, Response

from engine import EffectiveReceptiveField, effective_receptive_field

from .. import draw, schemas
from ..encode import (
    cached_png,
    floats,
    json_response,
    npy_response,
    range_headers,
    require_finite,
    server_timing,
)
from ..errors import ParamError
from ..layer import LayerStack
from ..params import Parsed
from . import Services, compute_route
from .network import _box, _clipped, _network, _padding_out

router = APIRouter(prefix="/api", tags=["network"])


def _erf(parsed: Parsed[schemas.ErfParams], services: Services, work: str
         ) -> tuple[LayerStack, EffectiveReceptiveField, float]:
    """The unit's ERF, cached per (image, stack, unit), and the seconds the engine took (0 if cached)."""
    stack = services.build(parsed, work)
    params, network = parsed.params, _network(stack)
    n = len(network.layers)
    layer = n - 1 if params.layer is None else params.layer
    if layer >= n:
        raise ParamError("layer", f"`layer` must be a layer index in 0..{n - 1}, got {layer}")
    j, h_out, w_out = network.cost.layers[layer].output_shape
    checks = (("channel", params.channel, j), ("row", params.row, h_out), ("col", params.col, w_out))
    for name, value, size in checks:
        if value >= size:
            raise ParamError(name, f"`{name}` must be an index of layer {layer}'s output "
                             f"({j}x{h_out}x{w_out}), 0..{size - 1}, got {value}")
    unit = (layer, params.channel, params.row, params.col)
    seconds = 0.0

    def compute() -> EffectiveReceptiveField:
        nonlocal seconds
        t0 = time.perf_counter()
        erf = effective_receptive_field(stack.x, network.engine_layers, unit)
        seconds = time.perf_counter() - t0
        return erf

    erf = services.outputs.get_or_compute(("erf", *stack.key, unit), compute)
    require_finite("layers", erf.heatmap)
    return stack, erf, seconds


def _erf_query(params: schemas.ErfParams, layer: int) -> dict[str, object]:
    return {"layer": layer, "channel": params.channel, "row": params.row, "col": params.col}


@compute_route(router, "erf", schemas.ErfParams, schemas.ErfResponse,
               "The effective receptive field of unit (`layer`, `channel`, `row`, `col`) of the stack "
               "`layers`: |∂y / ∂x| over the input, its centre and spread, and the theoretical box; "
               "format=npy gives the (H, W) float32 heatmap")
def erf_json(parsed: Parsed[schemas.ErfParams], services: Services) -> Response:
    """The ERF of one unit."""
    start = time.perf_counter()
    stack, erf, seconds = _erf(parsed, services, "erf")
    params = parsed.params
    timing = server_timing(start, seconds, seconds > 0)
    if params.format == "npy":
        return npy_response(erf.heatmap.astype(np.float32), "erf.npy", timing)
    h, w = erf.heatmap.shape
    if params.values and h * w > services.settings.max_values:
        raise ParamError("values", f"`values`: the {h}x{w} heatmap is over the limit of "
                         f"{services.settings.max_values:,} values (CONVLENS_MAX_VALUES); use format=npy")
    query = _erf_query(params, erf.unit[0])
    box = erf.box
    return json_response(schemas.ErfResponse(
        unit=list(erf.unit), layer_shape=list(_network(stack).cost.layers[erf.unit[0]].output_shape),
        box=_box(box), clipped=_clipped(box), padding=_padding_out(box),
        center=None if erf.center is None else list(erf.center),
        std=None if erf.std is None else list(erf.std),
        total=erf.total, max=float(erf.heatmap.max()),
        png=stack.url("erf.png", **query), npy=stack.url("erf", **query, format="npy"),
        values=floats(erf.heatmap) if params.values else None,
    ), timing)


@compute_route(router, "erf.png", schemas.ErfParams, None,
               "The effective receptive field of one unit as an (H, W) heatmap PNG (viridis, 0 to its "
               "maximum)")
def erf_png(parsed: Parsed[schemas.ErfParams], services: Services) -> Response:
    """The ERF heatmap of one unit."""
    stack, erf, _ = _erf(parsed, services, "erf_png")
    scale = parsed.params.scale

    def render() -> tuple[bytes, dict[str, str]]:
        data, c = draw.map_png(erf.heatmap.astype(np.float32), scale)
        return data, range_headers(0.0, float(erf.heatmap.max()), c)

    return cached_png(services.outputs, (*stack.key, "erf", erf.unit, scale), render)
