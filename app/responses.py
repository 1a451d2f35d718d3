"""Pydantic models of every response of the REST API (shown in /docs and /openapi.json)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Literal

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
    png_data: str | None = Field(None, description="the same PNG as a data URI, when asked for with "
                                 "png_data=true")


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


class StepOut(BaseModel):
    """One step w ← w − lr·∂L/∂w: the shared layer's, and its untied twin's M separate ones."""

    lr: float = Field(description="the learning rate of the step")
    loss_before: float = Field(description="L at the current weights, the same for both layers")
    shared_loss_after: float = Field(
        description="L after W ← W − lr · Σ_p g_p for every shared weight: one step each, by the sum of "
        "its H_out·W_out contributions (biases held)")
    untied_loss_after: float = Field(
        description="L of the untied (locally connected) layer, started as a copy of W at every "
        "position p, after each copy's own step W_p ← W − lr · g_p: H_out·W_out separate steps, nothing "
        "summed")


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
    step: StepOut | None = Field(None, description="with `lr`: the loss before one step and after it, for "
                                 "the shared layer and for the untied one")


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
