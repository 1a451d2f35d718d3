"""Pydantic models of every request of the REST API, and a re-export of the response models.

Layer parameters arrive as form fields, query parameters (GET) or a JSON body; app/params.py reads
all three into the same model. The field types of app/fields.py validate themselves against the
Settings (a pair takes 3, [3, 5] or "3,5"); a {max_...} in a description is filled from the
Settings in /openapi.json.
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
    ReportEvery,
    Scale,
    Stride,
    TrainSteps,
    WeightIndex,
    Weights,
)
from .layer_fields import ChannelIndex, LayerIndex, Layers
from .responses import (
    AxisArithmeticOut,
    Box,
    ContributionsOut,
    ConvolveResponse,
    CoverageOut,
    DenseEntries,
    DenseMatrixResponse,
    ErrorResponse,
    GradientResponse,
    ImageInfo,
    LayerInfo,
    MapInfo,
    ParametersOut,
    PresetOut,
    PresetsResponse,
    ReceptiveFieldResponse,
    StepOut,
    Tap,
    WeightUsageEntry,
    WeightUsageResponse,
)
from .responses_stack import (
    ErfResponse,
    LayerCountsOut,
    NetworkLayerOut,
    NetworkMapOut,
    NetworkOut,
    NetworkResponse,
    NetworksResponse,
    PaddingOut,
    ReceptiveEntryOut,
    StackConvolveResponse,
    StackLayerOut,
    StackReceptiveFieldResponse,
    TrainDoneLine,
    TrainErrorLine,
    TrainLayerOut,
    TrainMapsOut,
    TrainReportLine,
)

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


def _layers_field(required: bool = False) -> Any:
    """The `layers` field of a request model (a fresh FieldInfo for each model)."""
    return Field(... if required else None, description=LAYERS_DOC, examples=LAYERS_EXAMPLE)


class ConvolveParams(LayerParams):
    """Convolve the image with the layer."""

    layers: Layers | None = _layers_field()

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

    layers: Layers | None = _layers_field()

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


def _one_of_present(**types: str) -> dict[str, Any]:
    """A JSON schema that needs at least one of the fields given, of its JSON type (not null)."""
    return {"anyOf": [{"required": [n], "properties": {n: {"type": t}}} for n, t in types.items()]}


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


class NetworkParams(LayerParams):
    """A stack of layers run on the image: every layer's maps, shapes and receptive field."""

    layers: Layers = _layers_field(required=True)


class NetworkMapParams(NetworkParams):
    """Which map of which layer of the stack to draw."""

    layer: LayerIndex | None = Field(None, description="the layer, 0..L-1 (default: the last)", examples=[0])
    index: ChannelIndex = Field(0, examples=[0],
                                description="the map of that layer, 0..J-1 (J at most {max_stack_channels})")
    scale: Scale = Field(1, description="nearest-neighbour zoom factor, 1..{max_scale}; the zoomed PNG at "
                         "most {max_png_pixels} pixels, counted at the largest layer's size", examples=[2])


class ErfParams(NetworkParams):
    """Which unit's effective receptive field to measure."""

    layer: LayerIndex | None = Field(None, description="the unit's layer, 0..L-1 (default: the last)",
                                     examples=[2])
    channel: ChannelIndex = Field(0, description="the unit's map (channel) j of that layer", examples=[0])
    row: int = Field(0, ge=0, le=65535, description="the unit's row m in that layer's output", examples=[4])
    col: int = Field(0, ge=0, le=65535, description="the unit's column n in that layer's output",
                     examples=[4])
    values: bool = Field(False, description="add the heatmap's values (for images of up to {max_values} "
                         "pixels); the .npy has them at any size", examples=[False])
    format: Literal["json", "npy"] = Field(
        "json", examples=["json"],
        description="npy: the (H, W) float32 heatmap over the input as a .npy file",
    )
    scale: Scale = Field(1, description="zoom of the PNG, 1..{max_scale}", examples=[1])


def _sample_names(schema: dict[str, Any]) -> None:
    """`test_image`'s JSON schema names the built-in samples (app/pages.py's list, read when the schema
    is made: pages imports this module)."""
    from .pages import SAMPLES

    schema["enum"] = [*SAMPLES, None]


class TrainParams(LayerParams):
    """Train the layer's shape, from a random start, to the output of hidden kernels; streamed as NDJSON."""

    model_config = ConfigDict(extra="ignore",  # the hidden kernels to learn are needed
                              json_schema_extra=_one_of_present(target_kernels="string",
                                                                target_weights="array"))

    target_kernels: PresetText | None = Field(
        None, max_length=400, description="the hidden kernels: presets (at `kernel_size`) whose output on "
        "the image is the target; J of them, as many as the layer has", examples=["sobel_x"],
    )
    target_weights: Weights | None = Field(
        None, description="the hidden kernels as a nested list, the shape of `weights` (J x C/groups x kh "
        "x kw, or J x kh x kw); overrides `target_kernels`; the loss is an mse, so its outputs' squares "
        "(with the noise) summed within float32",
        examples=[[[[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]]],
    )
    steps: TrainSteps = Field(200, description="updates, 0..{max_train_steps}", examples=[200])
    lr: float = Field(0.05, gt=0, allow_inf_nan=False, description="learning rate, > 0, the same for "
                      "both layers", examples=[0.05])
    optimizer: Literal["sgd", "momentum", "adam"] = Field(
        "adam", description="sgd: W −= lr·g; momentum: v = 0.9v + g, W −= lr·v; adam: torch.optim.Adam's "
        "update (betas 0.9, 0.999)", examples=["adam"],
    )
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the random start (uniform in ±1/√(C/groups"
                      "·kh·kw), as PyTorch), of the target's noise, and of the `random` preset", examples=[0])
    noise: float = Field(0.0, ge=0, allow_inf_nan=False, description="standard deviation of Gaussian noise "
                         "added to the target (and to each test target), at most {max_output_magnitude}",
                         examples=[0.0])
    untied: bool = Field(True, description="also train the untied (locally connected) layer: its own "
                         "kernel at every output position, from the same start, in lockstep", examples=[True])
    learn_bias: bool = Field(True, description="learn a bias too (untied: one per position); the hidden "
                             "layer's bias is `bias`", examples=[True])
    every: ReportEvery = Field(10, description="report every this many steps, 1..{max_train_steps}; step 0 "
                               "and the last are always reported", examples=[10])
    test_image: str | None = Field(
        None, max_length=64, json_schema_extra=_sample_names,
        description="the second test image: a built-in sample by name (as the page's "
        "sample list), fitted to the training image's size", examples=["checkerboard"],
    )
    test_image_id: str | None = Field(
        None, pattern=ID_PATTERN, description="the second test image: an id from POST /api/images, fitted "
        "to the training image's size (instead of `test_image`: not both)",
        examples=["9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"],
    )
    maps: bool = Field(False, description="add to the last line, for kernel 0, the target's and both "
                       "layers' outputs on the training, shifted and second images, as PNG data URIs",
                       examples=[False])


class PresetsParams(BaseModel):
    """Which size to give the presets' weights at."""

    size: KernelSize = Field((3, 3), description="kernel size, int or 'kh,kw', each 1..{max_kernel_size}",
                             examples=[3, [3, 5]])
    seed: int = Field(0, ge=0, le=2**32 - 1, description="seed of the `random` preset", examples=[0])


# Every request model, in the order /openapi.json lists them.
REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    LayerParams, ConvolveParams, FeatureMapParams, ReceptiveFieldParams, WeightUsageParams,
    DenseMatrixParams, GradientParams, TrainParams, NetworkParams, NetworkMapParams, ErfParams,
)

__all__ = [
    "TrainDoneLine", "TrainErrorLine", "TrainLayerOut", "TrainMapsOut", "TrainParams", "TrainReportLine",
    "REQUEST_MODELS", "AxisArithmeticOut", "Box", "ContributionsOut", "ConvolveParams", "ConvolveResponse",
    "CoverageOut", "DenseEntries", "DenseMatrixParams", "DenseMatrixResponse", "ErrorResponse",
    "FeatureMapParams", "GradientParams", "GradientResponse", "ImageInfo", "LayerInfo", "LayerParams",
    "MapInfo", "ParametersOut", "PresetOut", "PresetsParams", "PresetsResponse", "ReceptiveFieldParams",
    "ReceptiveFieldResponse", "Tap", "WeightUsageEntry", "WeightUsageParams", "WeightUsageResponse",
    "ErfParams", "ErfResponse", "LayerCountsOut", "NetworkLayerOut", "NetworkMapOut", "NetworkMapParams",
    "NetworkOut", "NetworkParams", "NetworkResponse", "NetworksResponse", "PaddingOut", "ReceptiveEntryOut",
    "StackConvolveResponse", "StackLayerOut", "StackReceptiveFieldResponse", "StepOut",
]
