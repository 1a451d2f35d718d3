"""The layer geometry of well-known networks, as stacks for stack.layer_from_dict.

Each network is its main path of conv and pooling layers (kind, kernel_size, stride, padding,
dilation, groups, out_channels; no weights), with the input size it was trained on. Fully
connected heads, local response normalisation, batch norm and residual shortcuts change no
receptive field of the main path and are left out, and so are the relus (an activation keeps
the geometry): ResNet-50's main path is then 50 layers, within stack.MAX_GEOMETRY_LAYERS. The
small "learner" stack, meant to be run, keeps its relus.

The receptive fields of the last layer (stack size r and jump j, receptive_field_stack):

- AlexNet, pool5: r = 195, j = 32. The layout is the original's (Krizhevsky et al. 2012, as in
  Caffe's bvlc_alexnet without its two GPU groups, and CS231n), 227 x 227 input, conv1 11 x 11
  stride 4 with no padding; TF-Slim's alexnet_v2 has the same geometry (the 195 of Araujo et al.,
  Distill 2019), and torchvision's, with conv1 padded by 2, the same size and jump.
- VGG-16 (Simonyan and Zisserman 2015, configuration D), pool5: r = 212, j = 32.
- ResNet-50, main path: r = 427, j = 32 in torchvision's layout (v1.5: each stage's stride in
  the first bottleneck's 3 x 3 conv). In TF-Slim's resnet_v1_50 (the stride in the 3 x 3 conv
  of each stage's last unit, and no stride in stage 4's) it is r = 483, j = 32, the number in
  Araujo et al.'s table: network("resnet50_slim").
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from .errors import ArgumentError

LayerDict = Mapping[str, object]


@dataclass(frozen=True)
class Network:
    """A network's main path: its layers as dicts, their names, and the input it was made for."""

    name: str  # key in NETWORKS
    title: str  # human-readable name
    input_shape: tuple[int, int, int]  # (C, H, W) of the input it was trained on
    layers: tuple[LayerDict, ...]  # for stack.layer_from_dict
    layer_names: tuple[str, ...]  # one per layer, e.g. "conv1", "pool1", "relu1"
    layout: str  # whose layout this is, and what it was checked against


def _conv(out_channels: int, k: int, stride: int = 1, padding: int = 0, groups: int = 1) -> LayerDict:
    return {"kind": "conv", "out_channels": out_channels, "kernel_size": k, "stride": stride,
            "padding": padding, "groups": groups}


def _pool(k: int, stride: int, padding: int = 0) -> LayerDict:
    return {"kind": "maxpool", "kernel_size": k, "stride": stride, "padding": padding}


_RELU: LayerDict = {"kind": "relu"}


class _Builder:
    """Collects layers and their names; with relu, each conv gets a relu after it."""

    def __init__(self, relu: bool = False) -> None:
        self.layers: list[LayerDict] = []
        self.names: list[str] = []
        self.relu = relu

    def conv(self, name: str, out_channels: int, k: int, stride: int = 1, padding: int = 0) -> None:
        self.layers.append(_conv(out_channels, k, stride, padding))
        self.names.append(name)
        if self.relu:
            self.layers.append(_RELU)
            self.names.append(f"{name}.relu")

    def pool(self, name: str, k: int, stride: int, padding: int = 0) -> None:
        self.layers.append(_pool(k, stride, padding))
        self.names.append(name)

    def network(self, name: str, title: str, size: int, layout: str) -> Network:
        return Network(name, title, (3, size, size), tuple(self.layers), tuple(self.names), layout)


def alexnet() -> Network:
    """AlexNet's conv and pooling layers at 227 x 227 (pool5: r = 195, j = 32)."""
    b = _Builder()
    b.conv("conv1", 96, 11, 4, 0)
    b.pool("pool1", 3, 2)
    b.conv("conv2", 256, 5, 1, 2)
    b.pool("pool2", 3, 2)
    b.conv("conv3", 384, 3, 1, 1)
    b.conv("conv4", 384, 3, 1, 1)
    b.conv("conv5", 256, 3, 1, 1)
    b.pool("pool5", 3, 2)
    return b.network(
        "alexnet", "AlexNet", 227,
        "Krizhevsky et al. 2012 (Caffe's bvlc_alexnet without groups): conv1 unpadded, as "
        "TF-Slim's alexnet_v2; pool5 r = 195, j = 32",
    )


def vgg16() -> Network:
    """VGG-16's 13 convs and 5 max pools at 224 x 224 (pool5: r = 212, j = 32)."""
    b = _Builder()
    for stage, (convs, channels) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)), 1):
        for i in range(1, convs + 1):
            b.conv(f"conv{stage}_{i}", channels, 3, 1, 1)
        b.pool(f"pool{stage}", 2, 2)
    return b.network("vgg16", "VGG-16", 224,
                     "Simonyan and Zisserman 2015, configuration D; pool5 r = 212, j = 32")


def resnet50(layout: str = "torchvision") -> Network:
    """ResNet-50's main path at 224 x 224: the stem and 16 bottlenecks (1x1, 3x3, 1x1 convs).

    layout "torchvision" puts each stage's stride in the 3x3 conv of its first bottleneck
    (r = 427, j = 32); "slim" (TF-Slim's resnet_v1_50) in the 3x3 conv of the last unit of
    stages 1 to 3 (r = 483, j = 32).
    """
    if layout not in ("torchvision", "slim"):
        raise ArgumentError("layout", f"`layout` must be 'torchvision' or 'slim', got {layout!r}")
    b = _Builder()
    b.conv("conv1", 64, 7, 2, 3)
    b.pool("maxpool", 3, 2, 1)
    stages = ((3, 64, 1), (4, 128, 2), (6, 256, 2), (3, 512, 2))
    for s, (blocks, width, stride) in enumerate(stages, 1):
        for i in range(blocks):
            if layout == "torchvision":
                step = stride if i == 0 else 1
            else:  # slim: stages 1-3 stride 2 at their last unit, stage 4 none
                step = 2 if s < 4 and i == blocks - 1 else 1
            name = f"layer{s}.{i}" if layout == "torchvision" else f"block{s}/unit_{i + 1}"
            b.conv(f"{name}.conv1", width, 1)
            b.conv(f"{name}.conv2", width, 3, step, 1)
            b.conv(f"{name}.conv3", 4 * width, 1)
    if layout == "torchvision":
        return b.network(
            "resnet50", "ResNet-50", 224,
            "torchvision (v1.5, stride in the first bottleneck's 3x3); main path r = 427, j = 32",
        )
    return b.network("resnet50_slim", "ResNet-50 (TF-Slim)", 224,
                     "TF-Slim resnet_v1_50 (stride in the last unit's 3x3); main path r = 483, j = 32")


def learner() -> Network:
    """A small stack to run: 3x3 convs of 8, 16 and 32 maps, each with a relu, and 2x2 max pools."""
    b = _Builder(relu=True)
    b.conv("conv1", 8, 3, 1, 1)
    b.pool("pool1", 2, 2)
    b.conv("conv2", 16, 3, 1, 1)
    b.pool("pool2", 2, 2)
    b.conv("conv3", 32, 3, 1, 1)
    return b.network("learner", "Learner", 128, "ConvLens's own: r = 18, j = 4")


NETWORKS: Mapping[str, Network] = MappingProxyType({
    net.name: net for net in (alexnet(), vgg16(), resnet50(), resnet50("slim"), learner())
})


def network(name: str) -> Network:
    """The network called `name` (a key of NETWORKS), or ArgumentError naming `name`."""
    try:
        return NETWORKS[name]
    except (KeyError, TypeError):
        raise ArgumentError("name", f"`name` must be one of {', '.join(NETWORKS)}; got {name!r}") from None
