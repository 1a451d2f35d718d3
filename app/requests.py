"""The request models of the single-layer endpoints: the image and the conv layer (LayerParams), and
what each endpoint asks on top of it. app/requests_stack.py has those of stacks and training;
app/schemas.py gathers both with the response models.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from .fields import (
    Bias,
    Crop,
    Dilation,
    Groups,
    KernelSize,
    MapIndex,
    MaxSide,
    PaddingField,
    PresetText,
    Scale,
    Stride,
    WeightIndex,
    Weights,
)
from .layer_fields import Layers

ID_PATTERN = r"^[0-9a-f]{64}$"
Activation = Literal["none", "relu", "sigmoid", "tanh"]


class LayerParams(BaseModel):
    """The image and the conv layer: the same fields on every compute endpoint."""

    model_config = ConfigDict(extra="ignore")

    image_id: str | None = Field(
        None, pattern=ID_PATTERN, description="id from POST /api/images (sha256 of the decoded pixels); "
        "or upload the file as multipart field `image`",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    kernels: PresetText = Field(
        "sobel_x", max_length=400, description="comma-separated preset names, 1..{max_kernels} of them "
        "(see GET /api/presets: a preset with odd_only takes an odd kernel_size, and none smaller than "
        "its min_size); ignored when `weights` is given", examples=["sobel_x,sobel_y"],
    )
    weights: Weights | None = Field(
        None, description="kernels as a JSON nested list, J x C/groups x kh x kw, or J x kh x kw (the "
        "same kernel on every channel); J 1..{max_kernels}, kh and kw 1..{max_kernel_size}, finite "
        "float32 numbers, of equal lengths along each axis; a kernel's sum of |w| and |b| at most "
        "{max_output_magnitude}. Overrides `kernels`", examples=[[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]],
    )
    kernel_size: KernelSize = Field(
        (3, 3), description="preset kernel size: int or 'kh,kw', each 1..{max_kernel_size}; "
        "the dilated kernel d(k − 1) + 1 fits the padded image H + 2p on each axis",
        examples=[3, [3, 5]],
    )
    stride: Stride = Field((1, 1), description="int or 'sh,sw', each 1..{max_stride}", examples=[1, [2, 1]])
    padding: PaddingField = Field(
        (0, 0), description="int or 'ph,pw', each 0..{max_padding}, or 'same' (stride 1, odd effective "
        "kernel) or 'valid' (0)", examples=[1, "same"],
    )
    dilation: Dilation = Field((1, 1), description="int or 'dh,dw', each 1..{max_dilation}; the dilated "
                               "kernel d(k − 1) + 1 fits the padded image H + 2p", examples=[1, 2])
    groups: Groups = Field(1, description="groups dividing the channels (color=gray has 1, rgb 3) and the "
                           "kernels J, 1..{max_kernels}; 4-D weights have C/groups on their second axis",
                           examples=[1])
    bias: Bias = Field(
        (0.0,), description="one value for every kernel, or one per kernel ('0.1,-0.2'); finite, "
        "and with the weights within {max_output_magnitude} (see `weights`)",
        examples=[0, [0.1, -0.2]],
    )
    activation: Activation = Field("none", description="σ applied to the output", examples=["relu"])
    color: Literal["gray", "rgb"] = Field(
        "gray", description="gray: one luma channel (BT.601); rgb: three channels", examples=["gray"],
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the `random` preset", examples=[0])
    max_side: MaxSide | None = Field(
        None, description="working size of the image's longest side when it is uploaded with this "
        "request (default CONVLENS_WORKING_SIDE, at most {max_side})", examples=[1024],
    )


LAYERS_DOC = (
    "a stack of layers instead of the one layer: a JSON list of layer objects, each {\"kind\": conv | "
    "maxpool | avgpool | relu | sigmoid | tanh | conv_transpose, ...} with PyTorch's fields (kernel_size, "
    "stride, padding, dilation, groups, out_channels, output_padding, ceil_mode, count_include_pad, "
    "bias); kind defaults to conv. A conv layer's weights are `kernels` (presets) or `weights` (J x "
    "kh x kw, or conv J x C/groups x kh x kw, conv_transpose C x J/groups x kh x kw), random "
    "(PyTorch's init, from `seed`) with only `out_channels`, or else one `sobel_x`; its C follows the "
    "previous layer. Up to {max_stack_layers} layers when maps are computed ({max_geometry_layers} for "
    "geometry only), up to {max_stack_channels} maps a layer. GET /api/networks lists ready stacks"
)
LAYERS_EXAMPLE = [[{"kind": "conv", "kernels": "sobel_x,sobel_y", "padding": 1}, {"kind": "relu"},
                   {"kind": "maxpool", "kernel_size": 2}]]


def layers_field(required: bool = False) -> Any:
    """The `layers` field of a request model (a fresh FieldInfo for each model)."""
    return Field(... if required else None, description=LAYERS_DOC, examples=LAYERS_EXAMPLE)


class ConvolveParams(LayerParams):
    """Convolve the image with the layer."""

    layers: Layers | None = layers_field()

    values: bool = Field(False, description="add the raw output values, for maps of up to {max_values} "
                         "values (format=npy has them at any size)", examples=[False])
    png_data: bool = Field(
        False, description="put each map's PNG in the answer too, as a data URI in `maps[i].png_data` "
        "(encoded in parallel, and cached for the `png` URLs): one request brings every map. The page "
        "asks for this; a client that fetches no maps need not", examples=[False])
    format: Literal["json", "npy"] = Field(
        "json", examples=["json"],
        description="npy: the whole (J, H_out, W_out) float32 output as a .npy file",
    )


class FeatureMapParams(LayerParams):
    """Which feature map to draw."""

    index: MapIndex | None = Field(
        None, description="the map to draw, 0..J-1 (J at most {max_kernels}); omit for a labelled grid "
        "of all maps", examples=[0],
    )
    scale: Scale = Field(1, description="nearest-neighbour zoom factor, 1..{max_scale}", examples=[1])


class ReceptiveFieldParams(LayerParams):
    """Which output unit to explain."""

    layers: Layers | None = layers_field()

    row: int = Field(0, ge=0, le=65535, description="output row m, 0..H_out-1", examples=[0])
    col: int = Field(0, ge=0, le=65535, description="output column n, 0..W_out-1", examples=[0])
    scale: Scale | None = Field(
        None, description="zoom of the PNG, 1..{max_scale} (default: small images are enlarged)",
        examples=[4],
    )


class WeightUsageParams(LayerParams):
    """Weight usage and coverage."""

    scale: Scale = Field(1, description="zoom of the PNG, 1..{max_scale}", examples=[1])
    max_weights: int = Field(
        4096, ge=0, le=65536, description="cap on the per-weight list in the JSON", examples=[4096],
    )


class DenseMatrixParams(LayerParams):
    """The layer as a dense weight-tied matrix, on a small crop of the image."""

    crop: Crop | None = Field(
        None, description="top,left,height,width inside the working image (height, width <= "
        "{max_dense_side}, and no smaller than the dilated kernel with its padding; M at most "
        "{max_dense_entries} entries, {max_dense_nonzeros} of them non-zero); default: the top-left "
        "corner of that size", examples=[[0, 0, 8, 8]],
    )
    scale: Scale = Field(1, description="zoom of the PNG of M, 1..{max_scale}; the zoomed PNG at most "
                         "{max_png_pixels} pixels, within CONVLENS_MAX_REQUEST_BYTES", examples=[4])


class GradientParams(LayerParams):
    """A loss of the layer's output and its gradient with respect to the shared weights."""

    loss: Literal["sum", "mse", "unit"] = Field(
        "sum", description="sum: L = Σ σ(z); mse: L = mean((σ(z) − target)²) against the output of "
        "`target_kernels` or `target_weights` (needed then; its outputs' squares summed within float32); "
        "unit: L = σ(z)[j, row, col], one output unit",
        examples=["mse"],
    )
    target_kernels: PresetText | None = Field(
        None, max_length=400, description="for mse: presets whose output on the same image is the target, "
        "as many as the layer has kernels",
        examples=["sobel_y"],
    )
    target_weights: Weights | None = Field(
        None, description="for mse: target kernels as a nested list, same shape as `weights`",
        examples=[[[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]],
    )
    weight: WeightIndex = Field(
        (0, 0, 0, 0), description="the shared weight W[j, c, u, v] whose per-position contributions to "
        "show, as 'j,c,u,v'", examples=[[0, 0, 1, 1]],
    )
    row: int = Field(0, ge=0, le=65535, description="for loss=unit: the output row m", examples=[0])
    col: int = Field(0, ge=0, le=65535, description="for loss=unit: the output column n", examples=[0])
    values: bool = Field(False, description="add the raw contribution values, up to {max_values} of them "
                         "(H_out x W_out; format=npy has them at any size)", examples=[False])
    format: Literal["json", "npy"] = Field(
        "json", examples=["json"],
        description="npy: the whole (H_out, W_out) float32 map of contributions as a .npy file",
    )
    scale: Scale = Field(1, description="zoom of the PNG, 1..{max_scale}", examples=[1])
    lr: float | None = Field(
        None, gt=0, allow_inf_nan=False, description="take one step w ← w − lr·∂L/∂w and add `step`: the "
        "loss before, the shared layer's after, and the untied layer's after its H_out·W_out separate "
        "steps; > 0, and small enough that the stepped weights keep |y| within {max_output_magnitude}",
        examples=[0.01])


class PresetsParams(BaseModel):
    """Which size to give the presets' weights at."""

    size: KernelSize = Field((3, 3), description="kernel size, int or 'kh,kw', each 1..{max_kernel_size}",
                             examples=[3, [3, 5]])
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the `random` preset", examples=[0])
