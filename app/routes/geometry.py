"""Where the layer reads: a unit's receptive field, each shared weight's usage, and the dense matrix M."""

from __future__ import annotations

import numpy as np
from fastapi import APIRouter, Response

from engine import (
    ArgumentError,
    DenseMatrix,
    ReceptiveField,
    coverage,
    dense_matrix,
    output_arithmetic,
    parameter_counts,
    receptive_field,
    weight_usage,
)

from .. import draw, schemas
from ..encode import floats, json_response, pairs, parameters_out, png_response, range_headers
from ..errors import ParamError
from ..layer import LayerStack
from ..params import Parsed
from . import Services, compute_route, network

router = APIRouter(prefix="/api", tags=["geometry"])


def _hw(stack: LayerStack) -> tuple[int, int]:
    return (stack.image.height, stack.image.width)


def _receptive(parsed: Parsed[schemas.ReceptiveFieldParams], services: Services, work: str
               ) -> tuple[LayerStack, ReceptiveField]:
    stack = services.build(parsed, work)
    rf = receptive_field(_hw(stack), row=parsed.params.row, col=parsed.params.col, spec=stack.layer.spec)
    return stack, rf


@compute_route(router, "receptive-field", schemas.ReceptiveFieldParams,
               schemas.ReceptiveFieldResponse | schemas.StackReceptiveFieldResponse,  # type: ignore[arg-type]
               "The input box and kernel taps read by output unit (row, col). With `layers` (geometry "
               "only, up to CONVLENS_MAX_GEOMETRY_LAYERS): each layer's size, jump and start, and the input "
               "box of unit (row, col) of the last layer with how much of it is padding "
               "(StackReceptiveFieldResponse)")
def receptive_field_json(parsed: Parsed[schemas.ReceptiveFieldParams], services: Services) -> Response:
    """The receptive field of one unit."""
    if parsed.params.layers is not None:
        return network.receptive_stack(parsed, services)
    stack, rf = _receptive(parsed, services, "geometry")
    clipped = None
    if rf.clipped is not None:
        top, left, height, width = rf.clipped
        clipped = schemas.Box(top=top, left=left, height=height, width=width)
    return json_response(schemas.ReceptiveFieldResponse(
        unit=list(rf.unit), output_shape=list(stack.layer.spec.output_shape(_hw(stack))),
        box=schemas.Box(top=rf.top, left=rf.left, height=rf.height, width=rf.width), clipped=clipped,
        taps=[schemas.Tap(u=u, v=v, row=r, col=c, padding=p) for u, v, r, c, p in rf.taps],
        tap_rows=rf.tap_rows.tolist(), tap_cols=rf.tap_cols.tolist(),
        png=stack.url("receptive-field.png", row=parsed.params.row, col=parsed.params.col),
    ))


@compute_route(router, "receptive-field.png", schemas.ReceptiveFieldParams, None,
               "The receptive field drawn on the input: box, taps, padding")
def receptive_field_png(parsed: Parsed[schemas.ReceptiveFieldParams], services: Services) -> Response:
    """The receptive field of one unit, drawn on the image."""
    if parsed.params.layers is not None:
        return network.receptive_stack_png(parsed, services)
    stack, rf = _receptive(parsed, services, "image_png")
    scale = parsed.params.scale or draw.auto_scale(*_hw(stack))
    taps = [(r, c, pad) for _, _, r, c, pad in rf.taps]
    return png_response(draw.draw_receptive_field(
        stack.image.pixels, stack.layer.spec.padding, (rf.top, rf.left, rf.height, rf.width), taps, scale))


@compute_route(router, "weight-usage", schemas.WeightUsageParams, schemas.WeightUsageResponse,
               "How many output positions each shared weight is used at; per-pixel coverage")
def weight_usage_json(parsed: Parsed[schemas.WeightUsageParams], services: Services) -> Response:
    """Every shared weight's usage count, and the coverage of the input."""
    stack = services.build(parsed, "geometry")
    spec, params = stack.layer.spec, parsed.params
    cov = coverage(_hw(stack), spec=spec)
    usage = weight_usage(_hw(stack), spec=spec)
    rows, cols = output_arithmetic(_hw(stack), spec=spec)
    shape = stack.layer.weight.shape
    n = min(int(np.prod(shape)), params.max_weights)
    entries = []
    for flat in range(n):
        j, c, u, v = (int(i) for i in np.unravel_index(flat, shape))
        entries.append(schemas.WeightUsageEntry(index=[j, c, u, v], real=int(usage.real[u, v]),
                                                padding=int(usage.padding[u, v]), total=usage.total))
    return json_response(schemas.WeightUsageResponse(
        kernel_size=list(spec.kernel_size), weight_shape=list(shape), total=usage.total,
        real=usage.real.tolist(), padding=usage.padding.tolist(), weights=entries,
        weights_truncated=n < int(np.prod(shape)),
        coverage=schemas.CoverageOut(
            min=int(cov.min()), max=int(cov.max()), zero_pixels=int((cov == 0).sum()),
            zero_rows=pairs(rows.unused), zero_cols=pairs(cols.unused),
            png=stack.url("weight-usage.png", scale=params.scale),
        ),
    ))


@compute_route(router, "weight-usage.png", schemas.WeightUsageParams, None,
               "Per-pixel coverage heatmap over the image (magenta: pixels no output reads)")
def weight_usage_png(parsed: Parsed[schemas.WeightUsageParams], services: Services) -> Response:
    """The coverage heatmap."""
    stack = services.build(parsed, "image_png")
    cov = coverage(_hw(stack), spec=stack.layer.spec)
    data, c = draw.draw_coverage(stack.image.pixels, cov, scale=parsed.params.scale)
    return png_response(data, range_headers(float(cov.min()), float(cov.max()), c))


def _dense(parsed: Parsed[schemas.DenseMatrixParams], services: Services, work: str
           ) -> tuple[LayerStack, tuple[int, int, int, int], DenseMatrix]:
    stack = services.build(parsed, work)
    side = services.settings.max_dense_side
    crop = parsed.params.crop or (0, 0, min(stack.image.height, side), min(stack.image.width, side))
    top, left, height, width = crop
    if top + height > stack.image.height or left + width > stack.image.width:
        raise ParamError("crop", f"`crop` {list(crop)} must lie inside the {stack.image.height}x"
                         f"{stack.image.width} image")
    if height > side or width > side:
        raise ParamError("crop", f"`crop`: the dense matrix is drawn for inputs up to {side}x{side} "
                         f"(CONVLENS_MAX_DENSE_SIDE), got {height}x{width}; choose a smaller crop, "
                         f"e.g. crop=0,0,{min(side, 16)},{min(side, 16)}")
    layer = stack.layer
    try:
        h_out, w_out = layer.spec.output_shape((height, width))
    except ArgumentError:  # the kernel does not fit the crop: a larger crop may fit it
        eff_h, eff_w = layer.spec.effective_kernel
        raise ParamError("crop", f"`crop`: the {height}x{width} crop is too small for this kernel, whose "
                         f"window spans {eff_h}x{eff_w} pixels with padding {layer.spec.padding[0]}x"
                         f"{layer.spec.padding[1]}; choose a larger crop, up to {side}x{side}") from None
    rows, cols = layer.kernels * h_out * w_out, stack.channels * height * width
    limit = services.settings.max_dense_entries
    if rows * cols > limit:
        raise ParamError("crop", f"`crop`: the dense matrix would be {rows:,} x {cols:,} = {rows * cols:,} "
                         f"entries, over the limit of {limit:,} (CONVLENS_MAX_DENSE_ENTRIES); use a smaller "
                         "crop or fewer kernels")
    x = stack.x[:, top : top + height, left : left + width]
    m = dense_matrix(x.shape, layer.weight32, groups=layer.groups, max_entries=limit, spec=layer.spec)
    return stack, crop, m


@compute_route(router, "dense-matrix", schemas.DenseMatrixParams, schemas.DenseMatrixResponse,
               "The layer as a dense weight-tied matrix M (v = M u) for a small crop")
def dense_matrix_json(parsed: Parsed[schemas.DenseMatrixParams], services: Services) -> Response:
    """M for a crop, as sparse triplets."""
    stack, crop, m = _dense(parsed, services, "dense")
    layer = stack.layer
    input_shape = (stack.channels, crop[2], crop[3])
    counts = parameter_counts(input_shape, layer.weight.shape, groups=layer.groups, spec=layer.spec)
    return json_response(schemas.DenseMatrixResponse(
        shape=list(m.shape), nnz=m.nnz, density=m.density, crop=list(crop), input_shape=list(input_shape),
        output_shape=list(m.output_shape), weight_shape=list(m.weight_shape),
        entries=schemas.DenseEntries(rows=m.rows.tolist(), cols=m.cols.tolist(), tied=m.tied.tolist(),
                                     values=floats(m.values)),
        parameters=parameters_out(counts),
        png=stack.url("dense-matrix.png", crop=",".join(map(str, crop)), scale=parsed.params.scale),
        transposed_coverage=np.bincount(m.cols, minlength=int(np.prod(input_shape))).reshape(input_shape)[0]
        .tolist(),
    ))


@compute_route(router, "dense-matrix.png", schemas.DenseMatrixParams, None,
               "The dense matrix, each shared weight in its own colour, zeros white")
def dense_matrix_png(parsed: Parsed[schemas.DenseMatrixParams], services: Services) -> Response:
    """M drawn, a colour per shared weight."""
    stack, _, m = _dense(parsed, services, "dense_png")
    return png_response(draw.draw_dense_matrix(m.shape, m.rows, m.cols, m.tied, stack.layer.weight.size,
                                                 parsed.params.scale))
