"""What a request will cost, from the shapes alone, before any work is done.

Each estimate gives the output values, the multiply-adds and the peak bytes that the engine and the
encoder will need. `check` refuses a request over a cap with a ParamError (422) naming the field to
change and the setting that raises the cap. The byte counts are upper bounds of what the code
allocates (float32 arrays, the im2col strips of every engine thread, the PNG canvas and its zoom),
measured against tracemalloc in tests/app/test_cost.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from engine import ConvSpec, StackCost, parameter_counts, step_cost
from engine.train import train_cost
from engine.untied import untied_bytes

from . import draw
from .errors import ParamError
from .settings import Settings

if TYPE_CHECKING:
    from .layer import LayerStack
    from .schemas import LayerParams

F32 = 4
STRIP_BYTES = 4 << 20  # one engine thread's im2col buffer, forward or backward (engine/conv.py)
ENGINE_THREADS = 4  # the engine uses at most this many threads (engine/conv.py)
JSON_BYTES_PER_NUMBER = 24  # a float as JSON text, with its separator, as pydantic writes it


@dataclass(frozen=True)
class Cost:
    """The work of one request."""

    output_values: int = 0  # floats the engine writes
    multiply_adds: int = 0
    peak_bytes: int = 0  # memory the request holds at its peak
    png_pixels: int = 0  # pixels of the PNG it draws, after zoom

    def __add__(self, other: Cost) -> Cost:
        return Cost(self.output_values + other.output_values, self.multiply_adds + other.multiply_adds,
                    self.peak_bytes + other.peak_bytes, self.png_pixels + other.png_pixels)


def conv_cost(input_shape: tuple[int, int, int], weight_shape: tuple[int, ...], spec: ConvSpec,
              groups: int) -> Cost:
    """One conv layer's forward pass: σ(conv(x) + b) with statistics."""
    c, h, w = input_shape
    j, cg, kh, kw = weight_shape
    h_out, w_out = spec.output_shape((h, w))
    out = j * h_out * w_out
    padded = c * (h + 2 * spec.padding[0]) * (w + 2 * spec.padding[1])
    return Cost(out, out * cg * kh * kw, F32 * (c * h * w + padded + out) + ENGINE_THREADS * STRIP_BYTES)


def gradient_cost(forward: Cost, input_shape: tuple[int, int, int], with_target: bool) -> Cost:
    """Forward, loss and backward of one layer: z, σ(z), dL/dz, dL/dx (and the target's conv)."""
    c, h, w = input_shape
    out = forward.output_values
    convs = 2 if with_target else 1
    return Cost(out * (convs + 3), forward.multiply_adds * (convs + 2),
                forward.peak_bytes + F32 * (out * (convs + 3) + 2 * c * h * w))


def step_work(stack: LayerStack, with_target: bool) -> Cost:
    """One step w ← w − lr·g (lr on /api/gradient): engine.step_cost's forward, backward, the shared
    layer again, and the untied layer's M copies, built band by band, and their forward pass."""
    layer = stack.layer
    step = step_cost(stack.input_shape, layer.weight.shape, layer.spec, groups=layer.groups,
                     with_target=with_target)
    return Cost(3 * stack.output_values, step.multiply_adds, step.peak_bytes)


def within(cost: Cost, settings: Settings) -> bool:
    """Whether `check` would let `cost` through."""
    return (cost.multiply_adds <= settings.max_work and cost.peak_bytes <= settings.max_request_bytes
            and cost.png_pixels <= settings.max_png_pixels)


def png_cost(pixels: int) -> Cost:
    """An RGB canvas of `pixels` after zoom, its colour indices and its encoding buffer."""
    return Cost(png_pixels=pixels, peak_bytes=pixels * 3 * 3)


def dense_cost(nonzeros: int, json: bool) -> Cost:
    """The dense matrix's triplets (int64 rows, cols, tied; float values), and their JSON."""
    arrays = nonzeros * (3 * 8 + 8) * 3  # the arrays, their sort, and the broadcast masks
    text = nonzeros * 4 * JSON_BYTES_PER_NUMBER * 2 if json else 0  # the lists and the text
    return Cost(output_values=nonzeros, peak_bytes=arrays + text)


def check(cost: Cost, settings: Settings, field: str) -> None:
    """Refuse work over a cap (422), naming `field` as the thing to change and the setting to raise."""
    caps = (
        (cost.multiply_adds, settings.max_work, "multiply-adds", "CONVLENS_MAX_WORK"),
        (cost.peak_bytes, settings.max_request_bytes, "bytes of memory", "CONVLENS_MAX_REQUEST_BYTES"),
        (cost.png_pixels, settings.max_png_pixels, "PNG pixels", "CONVLENS_MAX_PNG_PIXELS"),
    )
    for need, cap, what, setting in caps:
        if need > cap:
            raise ParamError(field, f"this request needs about {need:,} {what}, over the limit of {cap:,} "
                             f"({setting}); ask for less: {ADVICE.get(field, 'a smaller image or layer')}")


ADVICE = {
    "scale": "a smaller `scale`",
    "crop": "a smaller `crop` or fewer kernels",
    "max_side": "fewer kernels, a stride, or a smaller `max_side`",
    "loss": "a smaller image, fewer kernels, or a stride",
    "lr": "no `lr` (the step runs both layers again), a smaller image, fewer kernels, or a stride",
    "steps": "fewer `steps`, untied=false, fewer kernels or a smaller image",
    "layers": "fewer or smaller layers, fewer maps, a stride or a pool early on, or a smaller `max_side`",
}


def _zoomed(height: int, width: int, scale: int) -> int:
    return height * scale * width * scale


def estimate(work: str, stack: LayerStack, params: LayerParams, settings: Settings) -> tuple[Cost, str]:
    """The cost of `work` on the stack, and the field a learner would change to lower it."""
    if stack.network is not None:
        return network_estimate(work, stack, params)
    layer = stack.layer
    c, h, w = stack.input_shape
    h_out, w_out = layer.spec.output_shape((h, w))
    forward = conv_cost(stack.input_shape, layer.weight.shape, layer.spec, layer.groups)
    scale = int(getattr(params, "scale", None) or 1)
    if work == "forward":
        if getattr(params, "png_data", False):  # /api/convolve with every map's PNG in the answer
            return forward + png_cost(layer.kernels * h_out * w_out), "max_side"
        return forward, "max_side"
    if work == "map_png":
        index = getattr(params, "index", None)
        maps = 1 if index is not None else layer.kernels
        return forward + png_cost(maps * _zoomed(h_out + 24, w_out + 4, scale)), "scale"
    if work == "image_png":
        zoom = getattr(params, "scale", None) or draw.auto_scale(h, w)
        return png_cost(_zoomed(h, w, zoom) * 2), "scale"
    if work == "geometry":
        return Cost(peak_bytes=8 * 3 * h * w), "max_side"
    if work in ("dense", "dense_png"):
        side = settings.max_dense_side
        crop = getattr(params, "crop", None) or (0, 0, min(h, side), min(w, side))
        counts = parameter_counts((c, crop[2], crop[3]), layer.weight.shape, groups=layer.groups,
                                  spec=layer.spec) if _fits(layer.spec, crop) else None
        nonzeros = counts.connections if counts else 0
        if nonzeros > settings.max_dense_nonzeros:
            raise ParamError("crop", f"`crop`: the dense matrix has {nonzeros:,} non-zeros, over the limit "
                             f"of {settings.max_dense_nonzeros:,} (CONVLENS_MAX_DENSE_NONZEROS); choose a "
                             "smaller crop or fewer kernels")
        cost = dense_cost(nonzeros, json=work == "dense")
        if work == "dense_png" and counts is not None:
            rows, cols = layer.kernels * counts.positions, c * crop[2] * crop[3]
            cost = cost + png_cost(rows * cols * scale * scale)
        return cost, "scale" if work == "dense_png" else "crop"
    if work in ("gradient", "gradient_png"):
        mse = getattr(params, "loss", "sum") == "mse"
        cost = gradient_cost(forward, stack.input_shape, mse)
        if work == "gradient_png":
            return cost + png_cost(_zoomed(h_out, w_out, scale)), "scale"
        if getattr(params, "lr", None) is None:
            return cost, "max_side"
        # The step comes on top of the gradient; name `lr` when it is the step that goes over.
        return cost + step_work(stack, mse), "lr" if within(cost, settings) else "max_side"
    if work == "train":
        return train_work(stack, params, forward), "steps"
    raise ValueError(f"estimate(): unknown work {work!r}")  # a bug in a caller


def stack_forward_cost(input_shape: tuple[int, int, int], cost: StackCost,
                       paddings: Sequence[tuple[int, int]]) -> Cost:
    """A stack's forward pass, every layer's output kept (engine/stack.py's stack_forward).

    Peak: the input, every output, the padded copy of the largest layer input (paddings: each
    layer's (p_h, p_w)) next to that input, and the engine threads' strips.
    """
    c, h, w = input_shape
    padded = max(lc.input_shape[0] * (lc.input_shape[1] + 2 * p[0]) * (lc.input_shape[2] + 2 * p[1])
                 for lc, p in zip(cost.layers, paddings, strict=True))
    values = sum(lc.output_shape[0] * lc.output_shape[1] * lc.output_shape[2] for lc in cost.layers)
    peak = F32 * (c * h * w + padded) + cost.bytes + ENGINE_THREADS * STRIP_BYTES
    return Cost(values, cost.multiply_adds, peak)


def erf_cost(forward: Cost, input_shape: tuple[int, int, int], cost: StackCost) -> Cost:
    """The effective receptive field: the forward pass, then one backward pass to the input.

    The backward pass to the input costs about as many multiply-adds as the forward one, and holds
    two gradients of the largest layer at once, and the (H, W) heatmap in float64.
    """
    largest = max(lc.bytes for lc in cost.layers)
    c, h, w = input_shape
    return Cost(forward.output_values * 2, forward.multiply_adds * 2,
                forward.peak_bytes + 2 * largest + F32 * c * h * w + 2 * 8 * h * w)


def network_estimate(work: str, stack: LayerStack, params: LayerParams) -> tuple[Cost, str]:
    """The cost of `work` on a `layers` stack, from its shapes (engine.stack_cost); the field to change."""
    assert stack.network is not None
    cost = stack.network.cost
    forward = stack_forward_cost(stack.input_shape, cost, [n.layer.padding for n in stack.network.layers])
    c, h, w = stack.input_shape
    scale = int(getattr(params, "scale", None) or 1)
    if work == "geometry":
        return Cost(), "layers"
    if work == "image_png":  # the image, with up to its own size of padding drawn on each side
        zoom = getattr(params, "scale", None) or draw.auto_scale(h, w)
        return png_cost(_zoomed(3 * h, 3 * w, zoom)), "scale"
    if work in ("erf", "erf_png"):
        erf = erf_cost(forward, stack.input_shape, cost)
        if work == "erf_png":
            return erf + png_cost(_zoomed(h, w, scale)), "scale"
        return erf, "layers"
    if work in ("map_png", "network_png"):
        largest = max(lc.output_shape[1] * lc.output_shape[2] for lc in cost.layers)
        return forward + png_cost(largest * scale * scale), "scale"
    if work in ("forward", "network"):
        return forward, "layers"
    raise ValueError(f"network_estimate(): unknown work {work!r}")  # a bug in a caller


def train_work(stack: LayerStack, params: LayerParams, forward: Cost) -> Cost:
    """A training stream (POST /api/train): steps + 1 forward and gradient passes of the shared
    layer, and of the untied one (engine.train_cost), then the evaluation on one or two test images.

    The evaluation makes each test target and runs both layers on it: (2 + untied) forward passes
    per image, holding the shifted copy, the second image, three outputs, and the untied layer's
    windows (at most one copy of its parameters, engine.untied_bytes). With maps=true, three PNG
    maps per image (the training one included).
    """
    layer = stack.layer
    c, h, w = stack.input_shape
    untied = bool(getattr(params, "untied", False))
    with_bias = bool(getattr(params, "learn_bias", True))
    run = train_cost(stack.input_shape, layer.weight.shape, layer.spec, int(getattr(params, "steps", 0)),
                     untied, groups=layer.groups, with_bias=with_bias,
                     optimizer=str(getattr(params, "optimizer", "adam")), activation=layer.activation)
    tests = 1 + (getattr(params, "test_image", None) is not None or getattr(params, "test_image_id", None)
                 is not None)
    windows = untied_bytes(stack.input_shape, layer.weight.shape, groups=layer.groups, spec=layer.spec,
                           with_bias=with_bias) if untied else 0
    evaluation = Cost(forward.output_values * 3 * tests, forward.multiply_adds * (2 + untied) * tests,
                      forward.peak_bytes + F32 * (2 * c * h * w + 3 * forward.output_values) + windows)
    cost = Cost(forward.output_values, run.multiply_adds, run.peak_bytes) + evaluation
    if getattr(params, "maps", False):
        cost = cost + png_cost(3 * (1 + tests) * forward.output_values // layer.kernels)
    return cost


def _fits(spec: ConvSpec, crop: tuple[int, int, int, int]) -> bool:
    return all(spec.effective_kernel[a] <= crop[2 + a] + 2 * spec.padding[a] for a in range(2))
