"""The layer lists of AlexNet, VGG-16 and ResNet-50: receptive fields against the published
numbers (Araujo et al., Distill 2019, for TF-Slim's layouts) and shapes against the papers."""

from __future__ import annotations

import numpy as np
import pytest

from engine import (
    NETWORKS,
    ArgumentError,
    init_weights,
    network,
    receptive_field_stack,
    stack_cost,
    stack_forward,
)


def _last(name: str) -> tuple[tuple[int, int], tuple[int, int]]:
    entry = receptive_field_stack(list(network(name).layers))[-1]
    return entry.size, entry.jump


def test_vgg16_pool5() -> None:
    assert _last("vgg16") == ((212, 212), (32, 32))
    net = network("vgg16")
    assert stack_cost(net.input_shape, list(net.layers)).output_shapes[-1] == (512, 7, 7)


def test_alexnet_pool5_as_tf_slim() -> None:
    # conv1 11x11 stride 4 without padding, as TF-Slim's alexnet_v2 and the original.
    net = network("alexnet")
    assert _last("alexnet") == ((195, 195), (32, 32))
    assert net.input_shape == (3, 227, 227)
    shapes = stack_cost(net.input_shape, list(net.layers)).output_shapes
    # 227 -> 55 -> 27 -> 27 -> 13 -> 13 -> 13 -> 13 -> 6, the paper's sizes.
    assert [s[1] for s in shapes] == [55, 27, 27, 13, 13, 13, 13, 6]
    assert shapes[-1] == (256, 6, 6)


def test_resnet50_torchvision_main_path() -> None:
    assert _last("resnet50") == ((427, 427), (32, 32))
    net = network("resnet50")
    assert len(net.layers) == 50 and len(net.layer_names) == 50
    assert stack_cost(net.input_shape, list(net.layers)).output_shapes[-1] == (2048, 7, 7)


def test_resnet50_tf_slim_main_path() -> None:
    assert _last("resnet50_slim") == ((483, 483), (32, 32))


def test_learner_runs() -> None:
    net = network("learner")
    layers = init_weights(list(net.layers), net.input_shape[0])
    x = np.random.default_rng(0).standard_normal((3, 32, 40)).astype(np.float32)
    outs = stack_forward(x, layers)
    assert outs[-1].shape == (32, 8, 10)
    assert _last("learner") == ((18, 18), (4, 4))


@pytest.mark.parametrize("name", list(NETWORKS))
def test_every_network_costs_and_names_its_layers(name: str) -> None:
    net = NETWORKS[name]
    assert net.name == name and network(name) is net
    assert len(net.layer_names) == len(net.layers) == len(set(net.layer_names))
    cost = stack_cost(net.input_shape, list(net.layers))
    assert cost.multiply_adds > 0 and all(min(s) >= 1 for s in cost.output_shapes)
    assert net.layout


def test_vgg16_conv_parameters() -> None:
    # The 13 convs of VGG-16 hold 14,710,464 weights (without biases; 14,714,688 with).
    assert stack_cost((3, 224, 224), list(network("vgg16").layers)).parameters == 14_710_464


def test_unknown_network() -> None:
    with pytest.raises(ArgumentError, match="`name`") as info:
        network("lenet")
    assert info.value.argument == "name"
