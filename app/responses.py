"""Pydantic models of every response of the REST API (shown in /docs and /openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, Field

PairOut = list[int]
ID_PATTERN = r"^[0-9a-f]{64}$"


class ErrorResponse(BaseModel):
    """What went wrong, and in which parameter."""

    detail: str = Field(description="what went wrong and what is allowed", examples=["`stride` must be >= 1"])
    field: str | None = Field(None, description="the parameter at fault", examples=["stride"])


class ImageInfo(BaseModel):
    """A decoded, cached image."""

    id: str = Field(description="sha256 of the decoded pixels", pattern=ID_PATTERN)
    width: int = Field(ge=1, description="working width after downscaling", examples=[1024])
    height: int = Field(ge=1, description="working height", examples=[768])
    channels: int = Field(3, description="stored as RGB; `color` picks gray at compute time", examples=[3])
    original_width: int = Field(ge=1, description="width as uploaded (EXIF orientation applied)")
    original_height: int = Field(ge=1, examples=[3024])
    downscaled: bool = Field(description="true when the working size is smaller than the upload")
    format: str = Field("PNG", description="detected format", examples=["JPEG"])


class LayerInfo(BaseModel):
    """The layer as understood, every pair as [rows, cols]."""

    kernel_size: PairOut = Field(examples=[[3, 3]])
    stride: PairOut = Field(examples=[[1, 1]])
    padding: PairOut = Field(examples=[[1, 1]])
    dilation: PairOut = Field(examples=[[1, 1]])
    groups: int = Field(ge=1, examples=[1])
    activation: str = Field(examples=["none"])
    color: str = Field(examples=["gray"])


class AxisArithmeticOut(BaseModel):
    """out = floor((n + 2p − d(k − 1) − 1) / s) + 1, worked for one axis."""

    axis: Literal["rows", "cols"]
    size: int = Field(description="n, input size")
    kernel: int = Field(description="k")
    stride: int = Field(description="s")
    padding: int = Field(description="p")
    dilation: int = Field(description="d")
    padded: int = Field(description="n + 2p")
    effective_kernel: int = Field(description="d(k − 1) + 1")
    span: int = Field(description="n + 2p − d(k − 1) − 1")
    quotient: int = Field(description="floor(span / s)")
    remainder: int = Field(description="span mod s: padded lines after the last window")
    output: int = Field(description="quotient + 1")
    unused: list[PairOut] = Field(description="[start, stop) input lines that no output reads")
    steps: list[str] = Field(description="the arithmetic as readable lines")
    formula_steps: list[str] = Field(description="the formula's five lines, without the unread-lines line")


class ParametersOut(BaseModel):
    """Parameter counts of the conv layer, its untied (locally connected) twin and a dense layer."""

    conv_weights: int
    conv_biases: int
    untied_weights: int
    untied_biases: int
    dense_weights: int
    dense_biases: int
    connections: int = Field(description="non-zeros of the dense matrix M")
    positions: int = Field(description="H_out·W_out: positions each shared weight is used at")
    conv: int
    untied: int
    dense: int


class MapInfo(BaseModel):
    """One feature map."""

    index: int = Field(ge=0)
    name: str = Field(examples=["sobel_x"])
    weights: list = Field(description="the kernel, C/groups x kh x kw")
    bias: float
    min: float
    max: float
    mean: float
    color_min: float = Field(description="value of the first colour of the PNG's colormap")
    color_max: float = Field(description="value of the last colour")
    png: str = Field(description="GET URL of the map's PNG (feature-maps.png with image_id and index)")


class ConvolveResponse(BaseModel):
    """The layer applied to the image, with the arithmetic behind its output shape."""

    image: ImageInfo
    layer: LayerInfo
    input_shape: list[int] = Field(description="[C, H, W]", examples=[[1, 768, 1024]])
    output_shape: list[int] = Field(description="[J, H_out, W_out]", examples=[[2, 768, 1024]])
    arithmetic: list[AxisArithmeticOut]
    parameters: ParametersOut
    maps: list[MapInfo]
    grid_png: str = Field(description="GET URL of all maps as one labelled grid")
    npy: str = Field(description="GET URL of the output as .npy")
    values: list | None = Field(None, description="J x H_out x W_out; only with values=true, small outputs")


class Box(BaseModel):
    """A rectangle in input coordinates (negative or past the edge where it reaches into padding)."""

    top: int
    left: int
    height: int
    width: int


class Tap(BaseModel):
    """Kernel tap (u, v) of the unit, at input (row, col)."""

    u: int
    v: int
    row: int
    col: int
    padding: bool = Field(description="true when the tap falls on zero padding")


class ReceptiveFieldResponse(BaseModel):
    """The input region one output unit reads."""

    unit: PairOut = Field(examples=[[0, 0]])
    output_shape: list[int] = Field(description="[H_out, W_out]")
    box: Box
    clipped: Box | None = Field(description="the box inside the image; null if wholly in padding")
    taps: list[Tap]
    tap_rows: list[int]
    tap_cols: list[int]
    png: str = Field(description="GET URL of the overlay")


class WeightUsageEntry(BaseModel):
    """How many output positions one shared weight W[j, c, u, v] is used at."""

    index: list[int] = Field(description="[j, c, u, v]")
    real: int = Field(description="positions where it multiplies a real pixel")
    padding: int = Field(description="positions where it multiplies padding")
    total: int


class CoverageOut(BaseModel):
    """Per input pixel, how many outputs of one map read it."""

    min: int
    max: int
    zero_pixels: int = Field(description="pixels that feed no output")
    zero_rows: list[PairOut] = Field(description="[start, stop) rows no output reads")
    zero_cols: list[PairOut] = Field(description="[start, stop) columns no output reads")
    png: str = Field(description="GET URL of the coverage heatmap")


class WeightUsageResponse(BaseModel):
    """Weight sharing, counted."""

    kernel_size: PairOut
    weight_shape: list[int] = Field(description="[J, C/groups, kh, kw]")
    total: int = Field(description="H_out·W_out")
    real: list[list[int]] = Field(description="kh x kw: per tap, positions on real pixels")
    padding: list[list[int]] = Field(description="kh x kw: per tap, positions on padding")
    weights: list[WeightUsageEntry]
    weights_truncated: bool = Field(description="true when the list was capped at max_weights")
    coverage: CoverageOut


class DenseEntries(BaseModel):
    """The non-zeros of M as parallel lists."""

    rows: list[int]
    cols: list[int]
    tied: list[int] = Field(description="flat index into the weights of the shared weight each holds")
    values: list[float]


class DenseMatrixResponse(BaseModel):
    """The layer as v = M u: a sparse, weight-tied matrix."""

    shape: PairOut = Field(description="[J·H_out·W_out, C·H·W]")
    nnz: int
    density: float
    crop: list[int] = Field(description="[top, left, height, width] of the working image")
    input_shape: list[int]
    output_shape: list[int]
    weight_shape: list[int]
    entries: DenseEntries
    parameters: ParametersOut
    png: str
    transposed_coverage: list[list[int]] | None = Field(
        None, description="Mᵀ is the transposed conv with the same weights (crop-sized output): per crop "
        "pixel [r][q], the non-zeros of its row of Mᵀ (its column of M), i.e. how many (unit, tap) pairs "
        "the transposed conv adds into it; uneven where the stride skips (the checkerboard)")


class ContributionsOut(BaseModel):
    """grad_out[j, m, n] · x[..] at every output position: the pieces of one weight's gradient."""

    min: float
    max: float
    sum: float = Field(description="equals grad_w_at_weight up to rounding")
    shape: list[int]
    png: str
    npy: str = Field(description="URL of the whole map as a .npy file (any size)")
    values: list | None = None


class GradientResponse(BaseModel):
    """A loss and its gradient with respect to every shared weight."""

    loss: str
    value: float = Field(description="the loss value")
    grad_w: list = Field(description="J x C/groups x kh x kw")
    grad_b: list[float]
    weight: list[int] = Field(description="[j, c, u, v]")
    grad_w_at_weight: float
    positions: int = Field(description="H_out·W_out contributions summed into one update")
    contributions: ContributionsOut


class PresetOut(BaseModel):
    """A named kernel."""

    name: str
    description: str
    default_size: int
    odd_only: bool
    min_size: int
    weights: list[list[float]] | None = Field(description="the kernel at the requested size")


class PresetsResponse(BaseModel):
    """All presets."""

    size: PairOut
    presets: list[PresetOut]


class ReceptiveEntryOut(BaseModel):
    """Receptive-field arithmetic after one layer (Araujo et al., Distill 2019), per axis [rows, cols]."""

    size: PairOut = Field(description="r: input pixels one unit sees", examples=[[5, 5]])
    jump: PairOut = Field(description="j: input distance between neighbouring units (effective stride)",
                          examples=[[2, 2]])
    start: PairOut = Field(description="input coordinate of the first unit's top-left (negative in padding)",
                           examples=[[-1, -1]])


class StackLayerOut(BaseModel):
    """One layer of a `layers` stack: its shapes and receptive field."""

    index: int = Field(ge=0)
    kind: str = Field(examples=["conv"])
    input_shape: list[int] = Field(description="[C, H, W]")
    output_shape: list[int] = Field(description="[J, H_out, W_out]")
    receptive_field: ReceptiveEntryOut | None = Field(
        description="size, jump and start after this layer; null from a conv_transpose on (its jump is "
        "a fraction: use the unit's `box`)")


class LayerCountsOut(BaseModel):
    """What one layer holds and costs."""

    weights: int
    biases: int
    multiply_adds: int = Field(description="of one forward pass")


class NetworkMapOut(BaseModel):
    """One map of one layer of a stack."""

    index: int = Field(ge=0)
    name: str = Field(examples=["sobel_x"])
    min: float
    max: float
    mean: float
    color_min: float = Field(description="value of the first colour of the PNG's colormap")
    color_max: float = Field(description="value of the last colour")
    png: str = Field(description="GET URL of the map's PNG (/api/network-map.png)")


class NetworkLayerOut(StackLayerOut):
    """One layer of the stack, run: its spec, parameter counts and maps."""

    spec: dict[str, Any] = Field(description="the layer as understood (pairs as [rows, cols])")
    parameters: LayerCountsOut
    maps: list[NetworkMapOut]


class NetworkResponse(BaseModel):
    """A stack of layers run on the image, layer by layer."""

    image: ImageInfo
    input_shape: list[int] = Field(description="[C, H, W]")
    output_shape: list[int] = Field(description="[J, H_out, W_out] of the last layer")
    layers: list[NetworkLayerOut]
    parameters: int = Field(description="weights and biases of the whole stack")
    multiply_adds: int = Field(description="of one forward pass of the whole stack")
    npy: str = Field(description="GET URL of the last layer's output as .npy (/api/convolve)")


class StackConvolveResponse(BaseModel):
    """The output of the last layer of a `layers` stack, with every layer's shapes."""

    image: ImageInfo
    input_shape: list[int] = Field(description="[C, H, W]")
    output_shape: list[int] = Field(description="[J, H_out, W_out] of the last layer")
    layers: list[StackLayerOut]
    maps: list[NetworkMapOut] = Field(description="the last layer's maps")
    npy: str = Field(description="GET URL of the output as .npy")
    values: list | None = Field(None, description="J x H_out x W_out; only with values=true, small outputs")


class PaddingOut(BaseModel):
    """Rows and columns of a box that lie outside the image (on padding)."""

    top: int
    bottom: int
    left: int
    right: int


class StackReceptiveFieldResponse(BaseModel):
    """The input box one unit of the last layer of a `layers` stack reads, and each layer's arithmetic."""

    unit: PairOut = Field(examples=[[0, 0]])
    input_shape: list[int] = Field(description="[C, H, W]")
    output_shape: list[int] = Field(description="[H_out, W_out] of the last layer")
    layers: list[StackLayerOut]
    box: Box = Field(description="in input coordinates; for stacks without conv_transpose start + "
                     "unit · jump, size")
    clipped: Box | None = Field(description="the box inside the image; null if wholly in padding")
    padding: PaddingOut
    in_padding: int = Field(description="pixels of the box outside the image")
    padding_fraction: float = Field(description="share of the box outside the image")
    png: str = Field(description="GET URL of the box drawn on the image")


class ErfResponse(BaseModel):
    """The effective receptive field of one unit: |∂y / ∂x| summed over input channels."""

    unit: list[int] = Field(description="[layer, channel, row, col]")
    layer_shape: list[int] = Field(description="[J, H_out, W_out] of the unit's layer")
    box: Box = Field(description="the theoretical receptive field (may reach into padding)")
    clipped: Box | None
    padding: PaddingOut
    center: list[float] | None = Field(description="heat-weighted mean [row, col]; null if the heat is 0")
    std: list[float] | None = Field(description="heat-weighted standard deviation per axis [rows, cols]")
    total: float = Field(description="sum of the heatmap")
    max: float = Field(description="largest value of the heatmap")
    png: str = Field(description="GET URL of the heatmap (H x W) as PNG")
    npy: str = Field(description="GET URL of the (H, W) float32 heatmap as .npy")
    values: list | None = Field(None, description="H x W heatmap; only with values=true, small images")


class NetworkOut(BaseModel):
    """A well-known network's main path, usable as `layers`."""

    name: str = Field(examples=["vgg16"])
    title: str = Field(examples=["VGG-16"])
    input_shape: list[int] = Field(description="[C, H, W] it was trained on")
    layout: str = Field(description="whose layout this is, and the receptive field it gives")
    layers: list[dict[str, Any]] = Field(description="the layers, as `layers` takes them")
    layer_names: list[str]
    receptive_field: ReceptiveEntryOut = Field(description="after the last layer")
    output_shape: list[int] = Field(description="[J, H_out, W_out] on input_shape")
    runnable: bool = Field(description="small enough for /api/network (at most {max_stack_layers} layers)")


class NetworksResponse(BaseModel):
    """Well-known networks' layer lists."""

    networks: list[NetworkOut]


class TrainReportLine(BaseModel):
    """A report line of POST /api/train: the shared layer at one step, and the untied layer's loss."""

    step: int = Field(ge=0, description="updates made so far; 0 is the random start")
    loss: float = Field(description="the shared layer's L = mean((σ(z) − t)²) at these weights")
    weights: list = Field(description="J x C/groups x kh x kw, the shared weights after `step` updates")
    grad: list = Field(description="∂L/∂W at these weights: each weight's one update, the sum over positions")
    bias: list[float] | None = Field(None, description="(J,) the learned bias; only with learn_bias")
    grad_bias: list[float] | None = Field(None, description="∂L/∂b; only with learn_bias")
    untied_loss: float | None = Field(None, description="the untied layer's L after as many updates; "
                                      "only with untied")

    model_config = {"json_schema_extra": {"examples": [
        {"step": 50, "loss": 0.00213, "weights": [[[[-0.61, 0.02, 0.58], [-1.7, 0.01, 1.69],
                                                      [-0.93, -0.03, 1.02]]]],
         "grad": [[[[0.003, -0.001, 0.002], [0.004, 0.0, -0.002], [0.001, 0.002, -0.001]]]],
         "bias": [0.011], "grad_bias": [-0.004], "untied_loss": 0.00187}]}}


class TrainLayerOut(BaseModel):
    """One trained layer: its size, and its loss on the training image and on images it never saw."""

    parameters: int = Field(description="shared: J·C/groups·kh·kw (+ J); untied: that × H_out·W_out")
    train_loss: float = Field(description="on the training image, at the final weights")
    test_loss: dict[str, float] = Field(description="`shifted`: on the training image shifted by `shift` "
                                        "pixels; `second`: on the second image, when one was given")


class TrainMapsOut(BaseModel):
    """Kernel 0's target and outputs on one image, on one colour scale, as PNG data URIs."""

    image: Literal["train", "shifted", "second"]
    target: str = Field(description="σ(conv(x, hidden) + b), without noise")
    shared: str
    untied: str | None = None
    min: float = Field(description="value of the first colour of the scale")
    max: float = Field(description="value of the last colour")
    colormap: Literal["diverging", "sequential"]


class TrainDoneLine(BaseModel):
    """The last line of POST /api/train: what was learned, what was hidden, and how each layer generalises."""

    done: Literal[True] = True
    steps: int
    weights: list = Field(description="J x C/groups x kh x kw, the learned shared weights")
    bias: list[float] | None = Field(description="the learned bias (null without learn_bias)")
    target_weights: list = Field(description="the hidden weights, J x C/groups x kh x kw")
    target_bias: list[float] = Field(description="the hidden bias (the request's `bias`)")
    shift: list[int] = Field(description="[dy, dx] of the shifted test image (a circular shift)")
    test_image: str | None = Field(description="the second test image: a sample's name, an image id, or null")
    shared: TrainLayerOut
    untied: TrainLayerOut | None = Field(description="null when untied=false")
    seconds: float = Field(description="time the training and evaluation took")
    maps: list[TrainMapsOut] | None = Field(None, description="with maps=true")

    model_config = {"json_schema_extra": {"examples": [
        {"done": True, "steps": 200, "weights": [[[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]]],
         "bias": [0.0], "target_weights": [[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]], "target_bias": [0.0],
         "shift": [2, 3], "test_image": "checkerboard",
         "shared": {"parameters": 10, "train_loss": 1.2e-9,
                    "test_loss": {"shifted": 1.2e-9, "second": 1.5e-9}},
         "untied": {"parameters": 122880, "train_loss": 3.1e-8,
                    "test_loss": {"shifted": 0.041, "second": 0.083}},
         "seconds": 1.9}]}}


class TrainErrorLine(BaseModel):
    """The last line of POST /api/train when it cannot finish: the loss diverged, or time ran out."""

    error: Literal[True] = True
    status: int = Field(description="422: diverged (change `lr`); 503: over CONVLENS_TRAIN_SECONDS")
    detail: str
    field: str | None
    step: int = Field(description="the last step computed")


def _attach_examples() -> None:
    """Give every response model a worked example (a real answer for a 6 x 8 image, openapi_examples.json)."""
    examples = json.loads((Path(__file__).with_name("openapi_examples.json")).read_text())
    for name, example in examples.items():
        model = globals()[name]
        model.model_config["json_schema_extra"] = {"examples": [example]}
        model.model_rebuild(force=True)


_attach_examples()
