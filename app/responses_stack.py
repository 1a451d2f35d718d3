"""Pydantic models of the responses of the network and learning endpoints: /api/network, /api/erf,
stacks on /api/convolve and /api/receptive-field, /api/networks, and the lines of /api/train."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from .responses import Box, ImageInfo, PairOut


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
