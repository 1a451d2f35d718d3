"""Layer stacks: parsing and validation of layer dicts, the forward pass against the plain-loop
references composed by hand, the backward pass against finite differences, costs from shapes,
and, where it is installed, PyTorch autograd."""

from __future__ import annotations

import numpy as np
import pytest
from reference import (
    avg_pool2d_ref,
    central_difference,
    conv2d_ref,
    conv_transpose2d_ref,
    max_pool2d_ref,
)

from engine import (
    MAX_STACK_LAYERS,
    StackLayer,
    StackLayerError,
    init_weights,
    layer_from_dict,
    stack_backward,
    stack_cost,
    stack_forward,
    stack_input_grad,
)


def _stack(seed: int) -> tuple[np.ndarray, list[dict[str, object]]]:
    """An input and a stack of every kind, with non-square kernels, unequal strides, padding,
    dilation, groups, output_padding, ceil_mode and count_include_pad."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 11, 9))
    layers: list[dict[str, object]] = [
        {"weight": rng.standard_normal((4, 1, 3, 2)), "bias": rng.standard_normal(4), "stride": (1, 2),
         "padding": (1, 0), "dilation": (1, 2), "groups": 2},
        {"kind": "tanh"},
        {"kind": "maxpool", "kernel_size": (2, 3), "stride": (2, 1), "padding": (1, 1),
         "ceil_mode": True},
        {"kind": "conv_transpose", "weight": rng.standard_normal((4, 3, 2, 3)),
         "bias": rng.standard_normal(3), "stride": (2, 1), "padding": (0, 1), "output_padding": (1, 0)},
        {"kind": "sigmoid"},
        {"kind": "avgpool", "kernel_size": (3, 2), "stride": (1, 2), "padding": (1, 1), "ceil_mode": True,
         "count_include_pad": False},
        {"kind": "conv", "weight": rng.standard_normal((2, 3, 2, 2)), "padding": "same", "dilation": (2, 2)},
        {"kind": "relu"},
    ]
    return x, layers


def _forward_ref(x: np.ndarray, layers: list[dict[str, object]]) -> list[np.ndarray]:
    """The stack composed from the plain-loop references, field by field."""
    outs = []
    y = x
    for d in layers:
        kind = d.get("kind", "conv")
        if kind == "conv":
            wt = np.asarray(d["weight"])
            pad = d.get("padding", 0)
            if pad == "same":
                dil = d.get("dilation", (1, 1))
                pad = tuple(dd * (k - 1) // 2 for dd, k in zip(dil, wt.shape[2:], strict=True))  # type: ignore[call-overload]
            y = conv2d_ref(y, wt, d.get("bias"), d.get("stride", 1), pad, d.get("dilation", 1),  # type: ignore[arg-type]
                           d.get("groups", 1))  # type: ignore[arg-type]
        elif kind == "conv_transpose":
            y = conv_transpose2d_ref(y, d["weight"], d.get("bias"), d.get("stride", 1), d.get("padding", 0),  # type: ignore[arg-type]
                                     d.get("output_padding", 0), d.get("groups", 1), d.get("dilation", 1))  # type: ignore[arg-type]
        elif kind == "maxpool":
            y, _ = max_pool2d_ref(y, d["kernel_size"], d.get("stride"), d.get("padding", 0),  # type: ignore[arg-type]
                                  d.get("dilation", 1), d.get("ceil_mode", False))  # type: ignore[arg-type]
        elif kind == "avgpool":
            y = avg_pool2d_ref(y, d["kernel_size"], d.get("stride"), d.get("padding", 0),  # type: ignore[arg-type]
                               d.get("ceil_mode", False), d.get("count_include_pad", True))  # type: ignore[arg-type]
        elif kind == "relu":
            y = np.maximum(y, 0)
        elif kind == "sigmoid":
            y = 1 / (1 + np.exp(-y))
        else:
            y = np.tanh(y)
        outs.append(y)
    return outs


@pytest.mark.parametrize("seed", range(3))
def test_forward_matches_the_references_composed(seed: int) -> None:
    x, layers = _stack(seed)
    outs = stack_forward(x, layers)
    ref = _forward_ref(x, layers)
    assert len(outs) == len(layers)
    for got, want in zip(outs, ref, strict=True):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=1e-10)
    assert [o.shape for o in outs] == stack_cost(x.shape, layers).output_shapes


def test_backward_matches_finite_differences() -> None:
    x, layers = _stack(5)
    outs = stack_forward(x, layers)
    go = np.random.default_rng(6).standard_normal(outs[-1].shape)

    def loss() -> float:
        return float((stack_forward(x, layers)[-1] * go).sum())

    grad_x, grads = stack_backward(x, layers, outs, go)
    np.testing.assert_allclose(grad_x, central_difference(loss, x), atol=1e-6)
    for d, g in zip(layers, grads, strict=True):
        if "weight" not in d:
            assert g is None
            continue
        assert g is not None
        gw, gb = g
        # The stack keeps float64 weights as they are, so perturbing the dict's array moves it.
        np.testing.assert_allclose(gw, central_difference(loss, d["weight"]), atol=1e-6)  # type: ignore[arg-type]
        if d.get("bias") is None:
            assert gb is None
        else:
            np.testing.assert_allclose(gb, central_difference(loss, d["bias"]), atol=1e-6)  # type: ignore[arg-type]


def test_input_grad_equals_the_full_backward() -> None:
    x, layers = _stack(7)
    outs = stack_forward(x, layers)
    go = np.random.default_rng(8).standard_normal(outs[-1].shape)
    grad_x, _ = stack_backward(x, layers, outs, go)
    np.testing.assert_allclose(stack_input_grad(x, layers, outs, go), grad_x, atol=1e-10)


def test_input_grad_of_strided_convs_restores_unread_lines() -> None:
    # 10 rows, kernel 3, stride 4: rows 9 is never read, and its gradient is 0.
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 10, 7))
    layers = [{"weight": rng.standard_normal((2, 1, 3, 2)), "stride": (4, 3)}]
    outs = stack_forward(x, layers)
    go = np.ones(outs[-1].shape)
    grad_x, _ = stack_backward(x, layers, outs, go)
    np.testing.assert_allclose(stack_input_grad(x, layers, outs, go), grad_x, atol=1e-12)
    assert np.all(grad_x[0, 9] == 0)


def test_cost_from_shapes_hand_worked() -> None:
    layers = [
        {"kernel_size": (3, 5), "out_channels": 8, "padding": (1, 2), "groups": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel_size": 2},
        {"kind": "conv_transpose", "kernel_size": 4, "stride": 2, "padding": 1, "out_channels": 4,
         "groups": 2},
        {"kind": "avgpool", "kernel_size": 3, "stride": 1, "padding": 1},
    ]
    cost = stack_cost((3, 32, 30), layers)
    assert cost.output_shapes == [(8, 32, 30), (8, 32, 30), (8, 16, 15), (4, 32, 30), (4, 32, 30)]
    macs = [8 * 32 * 30 * 3 * 3 * 5, 8 * 32 * 30, 8 * 16 * 15 * 4, 8 * 16 * 15 * 2 * 16, 4 * 32 * 30 * 9]
    assert [c.multiply_adds for c in cost.layers] == macs
    assert cost.multiply_adds == sum(macs)
    assert [c.bytes for c in cost.layers] == [4 * int(np.prod(s)) for s in cost.output_shapes]
    assert [c.parameters for c in cost.layers] == [8 * 3 * 15, 0, 0, 8 * 2 * 16, 0]
    assert cost.layers[3].input_shape == (8, 16, 15)


def test_layer_defaults() -> None:
    pool = layer_from_dict({"kind": "maxpool", "kernel_size": (2, 3)})
    assert pool.stride == (2, 3) and pool.padding == (0, 0) and not pool.ceil_mode
    conv = layer_from_dict({"weight": np.ones((4, 2, 3, 1))})
    assert conv.kind == "conv" and conv.kernel_size == (3, 1) and conv.out_channels == 4
    assert conv.stride == (1, 1) and conv.groups == 1
    tr = layer_from_dict({"kind": "conv_transpose", "weight": np.ones((2, 3, 2, 2)), "groups": 2})
    assert tr.out_channels == 6
    assert layer_from_dict({"kind": "relu"}).kind == "relu"
    assert isinstance(layer_from_dict({"kind": None, "kernel_size": 1, "out_channels": 1}), StackLayer)
    same = layer_from_dict({"kernel_size": (3, 5), "padding": "same", "dilation": (1, 2), "out_channels": 1})
    assert same.padding == (1, 4)


def test_init_weights_like_pytorch() -> None:
    layers = init_weights([{"kernel_size": 3, "out_channels": 8}, {"kind": "relu"},
                           {"kind": "conv_transpose", "kernel_size": 2, "out_channels": 4, "groups": 2}], 3)
    assert layers[0].weight is not None and layers[0].weight.shape == (8, 3, 3, 3)
    assert np.abs(layers[0].weight).max() <= 1 / np.sqrt(27)
    assert layers[2].weight is not None and layers[2].weight.shape == (8, 2, 2, 2)
    assert layers[2].bias is not None and layers[2].bias.shape == (4,)
    assert layers[0].weight.dtype == np.float32
    # 6 -> conv 3x3: 4 -> transposed 2x2: (4 - 1) + 1 + 1 = 5
    assert stack_forward(np.ones((3, 6, 6), dtype=np.float32), layers)[-1].shape == (4, 5, 5)


# ---- errors: each names its field -----------------------------------------------------------

def _fails(field: str, fn, *args) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StackLayerError) as info:
        fn(*args)
    assert info.value.field == field
    assert info.value.argument == field
    assert str(info.value).startswith(f"`{field}`")


def test_unknown_kind() -> None:
    _fails("layers[0].kind", layer_from_dict, {"kind": "dropout"})


def test_field_of_another_kind() -> None:
    _fails("layers[3].dilation", layer_from_dict, {"kind": "avgpool", "kernel_size": 2, "dilation": 2}, 3)


def test_unknown_field() -> None:
    _fails("layers[1].kernel", layer_from_dict, {"kernel": 3}, 1)


def test_not_a_dict() -> None:
    _fails("layers[0]", layer_from_dict, [3, 1])


def test_pool_needs_kernel_size() -> None:
    _fails("layers[0].kernel_size", layer_from_dict, {"kind": "maxpool"})


def test_conv_needs_kernel_size_or_weight() -> None:
    _fails("layers[0].kernel_size", layer_from_dict, {"out_channels": 3})


def test_kernel_size_disagrees_with_weight() -> None:
    _fails("layers[0].kernel_size", layer_from_dict, {"weight": np.ones((1, 1, 3, 3)), "kernel_size": 2})


def test_out_channels_disagrees_with_weight() -> None:
    _fails("layers[0].out_channels", layer_from_dict, {"weight": np.ones((2, 1, 3, 3)), "out_channels": 3})


def test_stride_zero() -> None:
    _fails("layers[2].stride", layer_from_dict, {"kind": "maxpool", "kernel_size": 2, "stride": 0}, 2)


def test_kernel_size_not_a_pair() -> None:
    _fails("layers[0].kernel_size", layer_from_dict, {"kernel_size": (1, 2, 3), "out_channels": 1})


def test_pool_padding_over_half_the_kernel() -> None:
    _fails("layers[0].padding", layer_from_dict, {"kind": "avgpool", "kernel_size": 3, "padding": 2})


def test_same_padding_with_stride() -> None:
    _fails("layers[0].padding", layer_from_dict, {"kernel_size": 3, "stride": 2, "padding": "same",
                                                  "out_channels": 1})


def test_output_padding_too_large() -> None:
    _fails("layers[0].output_padding", layer_from_dict,
           {"kind": "conv_transpose", "kernel_size": 3, "stride": 2, "output_padding": 2, "out_channels": 1})


def test_groups_zero() -> None:
    _fails("layers[0].groups", layer_from_dict, {"kernel_size": 3, "out_channels": 2, "groups": 0})


def test_groups_do_not_divide_kernels() -> None:
    _fails("layers[0].groups", layer_from_dict, {"kernel_size": 3, "out_channels": 3, "groups": 2})


def test_ceil_mode_not_bool() -> None:
    _fails("layers[0].ceil_mode", layer_from_dict, {"kind": "maxpool", "kernel_size": 2, "ceil_mode": "no"})


def test_weight_wrong_ndim() -> None:
    _fails("layers[0].weight", layer_from_dict, {"weight": np.ones((3, 3))})


def test_weight_nan() -> None:
    _fails("layers[0].weight", layer_from_dict, {"weight": np.full((1, 1, 2, 2), np.nan)})


def test_bias_wrong_length() -> None:
    _fails("layers[0].bias", layer_from_dict, {"weight": np.ones((2, 1, 2, 2)), "bias": np.ones(3)})


def test_weight_does_not_fit_the_input_channels() -> None:
    _fails("layers[1].weight", stack_cost, (3, 8, 8),
           [{"kernel_size": 3, "out_channels": 4}, {"weight": np.ones((2, 3, 3, 3))}])


def test_groups_do_not_divide_the_input_channels() -> None:
    _fails("layers[0].groups", stack_cost, (3, 8, 8), [{"kernel_size": 3, "out_channels": 4, "groups": 2}])


def test_kernel_does_not_fit_a_later_layer() -> None:
    _fails("layers[1].kernel_size", stack_cost, (1, 8, 8),
           [{"kind": "maxpool", "kernel_size": 4}, {"kernel_size": 3, "out_channels": 1}])


def test_dilation_does_not_fit() -> None:
    _fails("layers[0].dilation", stack_cost, (1, 8, 8),
           [{"kernel_size": 3, "dilation": 4, "out_channels": 1}])


def test_max_pool_on_padding_only() -> None:
    _fails("layers[0].dilation", stack_cost, (1, 3, 1),
           [{"kind": "maxpool", "kernel_size": 2, "stride": (3, 2), "padding": (0, 1), "dilation": (1, 2)}])


def test_transposed_padding_too_large() -> None:
    _fails("layers[0].padding", stack_cost, (1, 1, 1),
           [{"kind": "conv_transpose", "kernel_size": 1, "padding": 1, "out_channels": 1}])


def test_conv_needs_out_channels_for_its_cost() -> None:
    _fails("layers[0].out_channels", stack_cost, (1, 4, 4), [{"kernel_size": 3}])


def test_forward_needs_weights() -> None:
    _fails("layers[0].weight", stack_forward, np.ones((1, 4, 4)), [{"kernel_size": 3, "out_channels": 1}])


def test_too_many_layers_to_run() -> None:
    _fails("layers", stack_forward, np.ones((1, 4, 4)), [{"kind": "relu"}] * (MAX_STACK_LAYERS + 1))


def test_empty_stack() -> None:
    _fails("layers", stack_cost, (1, 4, 4), [])


def test_x_not_three_dimensional() -> None:
    _fails("x", stack_forward, np.ones((4, 4)), [{"kind": "relu"}])


def test_grad_out_wrong_shape() -> None:
    x = np.ones((1, 4, 4))
    layers = [{"kind": "relu"}]
    _fails("grad_out", stack_backward, x, layers, stack_forward(x, layers), np.ones((1, 3, 3)))


def test_outputs_wrong_count() -> None:
    x = np.ones((1, 4, 4))
    _fails("outputs", stack_backward, x, [{"kind": "relu"}], [], np.ones((1, 4, 4)))


# ---- PyTorch --------------------------------------------------------------------------------

def test_matches_torch_autograd() -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, layers = _stack(10)
    outs = stack_forward(x, layers)
    go = np.random.default_rng(11).standard_normal(outs[-1].shape)
    grad_x, grads = stack_backward(x, layers, outs, go)
    xt = torch.from_numpy(x)[None].requires_grad_(True)
    params = []
    y = xt
    for d in layers:
        kind = d.get("kind", "conv")
        if kind in ("conv", "conv_transpose"):
            w = torch.from_numpy(np.asarray(d["weight"])).requires_grad_(True)
            b = d.get("bias")
            b = None if b is None else torch.from_numpy(np.asarray(b)).requires_grad_(True)
            params.append((w, b))
            if kind == "conv":
                y = functional.conv2d(y, w, b, d.get("stride", 1), d.get("padding", 0), d.get("dilation", 1),
                                      d.get("groups", 1))
            else:
                y = functional.conv_transpose2d(y, w, b, d.get("stride", 1), d.get("padding", 0),
                                                d.get("output_padding", 0), d.get("groups", 1),
                                                d.get("dilation", 1))
        elif kind == "maxpool":
            y = functional.max_pool2d(y, d["kernel_size"], d.get("stride"), d.get("padding", 0),
                                      d.get("dilation", 1), d.get("ceil_mode", False))
        elif kind == "avgpool":
            y = functional.avg_pool2d(y, d["kernel_size"], d.get("stride"), d.get("padding", 0),
                                      d.get("ceil_mode", False), d.get("count_include_pad", True))
        else:
            y = getattr(torch, kind)(y)
    np.testing.assert_allclose(outs[-1], y.detach().numpy()[0], atol=1e-10)
    y.backward(torch.from_numpy(go)[None])
    np.testing.assert_allclose(grad_x, xt.grad.numpy()[0], atol=1e-10)
    for (w, b), g in zip(params, [g for g in grads if g is not None], strict=True):
        np.testing.assert_allclose(g[0], w.grad.numpy(), atol=1e-10)
        if b is not None:
            np.testing.assert_allclose(g[1], b.grad.numpy(), atol=1e-10)
