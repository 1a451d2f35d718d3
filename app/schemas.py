"""Pydantic models of every request and response of the REST API (shown in /docs and /openapi.json).

Layer parameters arrive as form fields, query parameters (GET) or a JSON body; all three are read
into the same request model. Fields that accept "an int or a pair" take 3, [3, 5] or "3,5".
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

IntOrPairIn = int | list[int] | str
PairOut = list[int]

ID_PATTERN = r"^[0-9a-f]{64}$"


class LayerParams(BaseModel):
    """The image and the conv layer: the same fields on every compute endpoint."""

    model_config = ConfigDict(extra="ignore")

    image_id: str | None = Field(
        None, pattern=ID_PATTERN, description="id from POST /api/images (sha256 of the decoded pixels); "
        "or upload the file as multipart field `image`",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    kernels: str = Field(
        "sobel_x", max_length=400, description="comma-separated preset names, 1..16 of them "
        "(see GET /api/presets); ignored when `weights` is given", examples=["sobel_x,sobel_y"],
    )
    weights: list | str | None = Field(
        None, description="kernels as a JSON nested list, J x C/groups x kh x kw, or J x kh x kw (the "
        "same kernel on every channel); J 1..16, kh and kw 1..31, finite numbers. Overrides `kernels`",
        examples=[[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]],
    )
    kernel_size: IntOrPairIn = Field(
        3, description="preset kernel size: int or 'kh,kw', each 1..31", examples=["3", "3,5"],
    )
    stride: IntOrPairIn = Field(1, description="int or 'sh,sw', each 1..64", examples=["1", "2,1"])
    padding: IntOrPairIn = Field(
        0, description="int or 'ph,pw', each 0..64, or 'same' (stride 1, odd effective kernel)",
        examples=["1", "same"],
    )
    dilation: IntOrPairIn = Field(1, description="int or 'dh,dw', each 1..16", examples=["1", "2"])
    groups: int = Field(1, ge=1, le=16, description="groups dividing channels and kernels", examples=[1])
    bias: float | list[float] | str = Field(
        0.0, description="one value for every kernel, or one per kernel ('0.1,-0.2'); finite",
        examples=["0", "0.1,-0.2"],
    )
    activation: Literal["none", "relu", "sigmoid", "tanh"] = Field(
        "none", description="σ applied to the output", examples=["relu"],
    )
    color: Literal["gray", "rgb"] = Field(
        "gray", description="gray: one luma channel (BT.601); rgb: three channels", examples=["gray"],
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the `random` preset", examples=[0])
    max_side: int | None = Field(
        None, ge=1, le=4096, description="working size of the image's longest side when it is uploaded "
        "with this request (default CONVLENS_WORKING_SIDE, at most CONVLENS_MAX_SIDE)", examples=[1024],
    )


class ConvolveParams(LayerParams):
    """Convolve the image with the layer."""

    values: bool = Field(False, description="add the raw output values (for small outputs)", examples=[False])
    format: Literal["json", "npy"] = Field(
        "json", examples=["json"],
        description="npy: the whole (J, H_out, W_out) float32 output as a .npy file",
    )


class FeatureMapParams(LayerParams):
    """Which feature map to draw."""

    index: int | None = Field(
        None, ge=0, le=15, description="the map to draw; omit for a labelled grid of all maps", examples=[0],
    )
    scale: int = Field(1, ge=1, le=16, description="nearest-neighbour zoom factor", examples=[1])


class ReceptiveFieldParams(LayerParams):
    """Which output unit to explain."""

    row: int = Field(0, ge=0, le=65535, description="output row m, 0..H_out-1", examples=[0])
    col: int = Field(0, ge=0, le=65535, description="output column n, 0..W_out-1", examples=[0])
    scale: int | None = Field(
        None, ge=1, le=16, description="zoom of the PNG (default: small images are enlarged)", examples=[4],
    )


class WeightUsageParams(LayerParams):
    """Weight usage and coverage."""

    scale: int = Field(1, ge=1, le=16, description="zoom of the PNG", examples=[1])
    max_weights: int = Field(
        4096, ge=0, le=65536, description="cap on the per-weight list in the JSON", examples=[4096],
    )


class DenseMatrixParams(LayerParams):
    """The layer as a dense weight-tied matrix, on a small crop of the image."""

    crop: str | list[int] | None = Field(
        None, description="top,left,height,width of the working image (height, width <= "
        "CONVLENS_MAX_DENSE_SIDE); default: the top-left corner of that size", examples=["0,0,8,8"],
    )
    scale: int = Field(1, ge=1, le=16, description="zoom of the PNG", examples=[4])


class GradientParams(LayerParams):
    """A loss of the layer's output and its gradient with respect to the shared weights."""

    loss: Literal["sum", "mse"] = Field(
        "sum", description="sum: L = Σ σ(z); mse: L = mean((σ(z) − target)²)", examples=["mse"],
    )
    target_kernels: str | None = Field(
        None, max_length=400, description="for mse: presets whose output on the same image is the target",
        examples=["sobel_y"],
    )
    target_weights: list | str | None = Field(
        None, description="for mse: target kernels as a nested list, same shape as `weights`",
        examples=[[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]],
    )
    weight: str | list[int] = Field(
        "0,0,0,0", description="the shared weight W[j, c, u, v] whose per-position contributions to "
        "show, as 'j,c,u,v'", examples=["0,0,1,1"],
    )
    values: bool = Field(False, description="add the raw contribution values (small outputs)",
                         examples=[False])
    format: Literal["json", "npy"] = Field(
        "json", examples=["json"],
        description="npy: the whole (H_out, W_out) float32 map of contributions as a .npy file",
    )
    scale: int = Field(1, ge=1, le=16, description="zoom of the PNG", examples=[1])


# ---------------------------------------------------------------- responses

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


def _attach_examples() -> None:
    """Give every response model a worked example (a real answer for a 6 x 8 image, openapi_examples.json)."""
    examples = json.loads((Path(__file__).with_name("openapi_examples.json")).read_text())
    for name, example in examples.items():
        model = globals()[name]
        model.model_config["json_schema_extra"] = {"examples": [example]}
        model.model_rebuild(force=True)


_attach_examples()
