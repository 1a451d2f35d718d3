"""POST /api/gradient (and .png): one update per shared weight, the sum of its per-position pieces."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from fastapi import APIRouter, Response
from numpy.typing import NDArray

from engine import LayerGradient, StepLosses, layer_gradient, step_losses

from .. import draw, schemas
from ..encode import cached_png, floats, json_response, npy_response, range_headers, require_finite
from ..errors import ParamError
from ..layer import LayerStack, json_text, target_weights
from ..params import Parsed
from ..weights import check_squares, magnitude
from . import Services, compute_route

router = APIRouter(prefix="/api", tags=["gradient"])


def _check_index(index: tuple[int, int, int, int], shape: tuple[int, ...]) -> None:
    for name, i, n in zip("jcuv", index, shape, strict=True):
        if not 0 <= i < n:
            raise ParamError("weight", f"`weight`: {name}={i} is out of range 0..{n - 1} for weights of "
                             f"shape {list(shape)}")


class Computed(NamedTuple):
    """A gradient request, built and computed: what the step and the encoders need."""

    stack: LayerStack
    gradient: LayerGradient
    key: tuple[object, ...]  # the gradient's key in the output cache
    target: NDArray[np.float32] | None  # the hidden kernels of loss=mse
    unit: tuple[int, int, int] | None  # (j, m, n) of loss=unit


def _gradient(parsed: Parsed[schemas.GradientParams], services: Services, work: str) -> Computed:
    params = parsed.params
    stack = services.build(parsed, work)
    layer = stack.layer
    _check_index(params.weight, layer.weight.shape)
    target, target_field = None, "target_kernels"
    if params.loss == "mse":
        target, target_field = target_weights(params, services.settings, stack.channels)
        if target is None:
            raise ParamError("target_kernels", "loss=mse needs `target_kernels` or `target_weights`")
        if target.shape != layer.weight.shape:
            raise ParamError(target_field, f"`{target_field}`: the target layer must have the layer's "
                             f"{layer.kernels} kernels of {layer.weight.shape[2]}x{layer.weight.shape[3]}, "
                             f"got {target.shape[0]} of {target.shape[2]}x{target.shape[3]}")
        bound = magnitude(layer.weight, layer.bias) + magnitude(target, layer.bias)
        check_squares(stack.output_values, bound)
    unit = None
    if params.loss == "unit":
        h_out, w_out = layer.spec.output_shape((stack.image.height, stack.image.width))
        for name, i, n in (("row", params.row, h_out), ("col", params.col, w_out)):
            if i >= n:
                raise ParamError(name, f"`{name}` must be an output index in 0..{n - 1}, got {i}")
        unit = (params.weight[0], params.row, params.col)
    key = ("grad", *stack.key, params.loss, params.target_kernels, json_text(params.target_weights),
           params.weight, unit)

    def compute() -> LayerGradient:
        return layer_gradient(stack.x, layer.weight32, layer.bias, params.weight, groups=layer.groups,
                              activation=layer.activation, loss=params.loss, target_weight=target,
                              unit=unit, spec=layer.spec)

    gradient = services.outputs.get_or_compute(key, compute)
    require_finite("weights", np.asarray(gradient.loss), gradient.grad_w, gradient.grad_b,
                   gradient.contributions)
    return Computed(stack, gradient, key, target, unit)


def _step(computed: Computed, params: schemas.GradientParams, services: Services) -> schemas.StepOut:
    """One step of `lr` on the shared layer and on its untied twin; 422 on `lr` if it goes too far."""
    stack, gradient = computed.stack, computed.gradient
    layer, lr = stack.layer, float(params.lr or 0)
    limit = services.settings.max_output_magnitude
    bound = magnitude(layer.weight32 - np.float32(lr) * gradient.grad_w, layer.bias)
    if not bound <= limit:
        raise ParamError("lr", f"`lr`: a step of {lr:g} moves the weights so far that the output could "
                         f"reach {bound:.3g}, over the limit of {limit:.3g} (CONVLENS_MAX_OUTPUT_MAGNITUDE); "
                         "use a smaller learning rate")
    if computed.target is not None:
        check_squares(stack.output_values, bound + magnitude(computed.target, layer.bias), "lr")

    def compute() -> StepLosses:
        return step_losses(stack.x, layer.weight32, layer.bias, lr, groups=layer.groups,
                           activation=layer.activation, loss=params.loss, target_weight=computed.target,
                           unit=computed.unit, spec=layer.spec)

    step = services.outputs.get_or_compute((*computed.key, "step", lr), compute)
    losses = np.array([step.loss_before, step.shared_loss_after, step.untied_loss_after])
    require_finite("lr", losses)
    return schemas.StepOut(lr=lr, loss_before=step.loss_before, shared_loss_after=step.shared_loss_after,
                           untied_loss_after=step.untied_loss_after)


def _links(stack: LayerStack, params: schemas.GradientParams) -> dict[str, str]:
    extra = {"loss": params.loss, "weight": ",".join(map(str, params.weight))}
    if params.loss == "unit":
        extra |= {"row": str(params.row), "col": str(params.col)}
    if params.target_kernels:
        extra["target_kernels"] = params.target_kernels
    target_text = json_text(params.target_weights)
    if target_text is not None:
        extra["target_weights"] = target_text
    return extra


@compute_route(router, "gradient", schemas.GradientParams, schemas.GradientResponse,
               "Gradient of a loss w.r.t. each shared weight, and one weight's per-position contributions; "
               "format=npy gives the (H_out, W_out) float32 map of them")
def gradient(parsed: Parsed[schemas.GradientParams], services: Services) -> Response:
    """The loss, every shared weight's gradient, and one weight's contributions."""
    params = parsed.params
    computed = _gradient(parsed, services, "gradient")
    stack, g = computed.stack, computed.gradient
    contrib = g.contributions
    if params.format == "npy":
        return npy_response(contrib.astype(np.float32, copy=False), "contributions.npy")
    if params.values and contrib.size > services.settings.max_values:
        raise ParamError("values", f"`values`: {contrib.size:,} contributions is over the limit of "
                         f"{services.settings.max_values:,} (CONVLENS_MAX_VALUES)")
    j, c, u, v = params.weight
    step = _step(computed, params, services) if params.lr is not None else None
    extra = _links(stack, params)
    return json_response(schemas.GradientResponse(
        loss=params.loss, value=g.loss, grad_w=floats(g.grad_w), grad_b=floats(g.grad_b),
        weight=list(params.weight), grad_w_at_weight=float(g.grad_w[j, c, u, v]), positions=int(contrib.size),
        contributions=schemas.ContributionsOut(
            min=float(contrib.min()), max=float(contrib.max()), sum=float(contrib.sum(dtype=np.float64)),
            shape=list(contrib.shape), png=stack.url("gradient.png", **extra),
            npy=stack.url("gradient", **extra, format="npy"),
            values=floats(contrib) if params.values else None,
        ),
        step=step,
    ))


@compute_route(router, "gradient.png", schemas.GradientParams, None,
               "The per-position contributions to one weight's gradient (diverging colormap)")
def gradient_png(parsed: Parsed[schemas.GradientParams], services: Services) -> Response:
    """One weight's contributions, drawn."""
    computed = _gradient(parsed, services, "gradient_png")
    contrib, key = computed.gradient.contributions, computed.key

    def render() -> tuple[bytes, dict[str, str]]:
        data, c = draw.map_png(contrib, parsed.params.scale)
        return data, range_headers(float(contrib.min()), float(contrib.max()), c)

    return cached_png(services.outputs, (*key, parsed.params.scale), render)
