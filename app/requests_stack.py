"""The request models of stacks of layers (the network, its maps, the effective receptive field) and
of training; app/requests.py has LayerParams, which each of them extends.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field

from .fields import PresetText, ReportEvery, Scale, TrainSteps, Weights
from .layer_fields import ChannelIndex, LayerIndex, Layers
from .requests import ID_PATTERN, LayerParams, layers_field


def _one_of_present(**types: str) -> dict[str, Any]:
    """A JSON schema that needs at least one of the fields given, of its JSON type (not null)."""
    return {"anyOf": [{"required": [n], "properties": {n: {"type": t}}} for n, t in types.items()]}


class NetworkParams(LayerParams):
    """A stack of layers run on the image: every layer's maps, shapes and receptive field."""

    layers: Layers = layers_field(required=True)


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
