"""Every public geometry, sharing, conv and grad function takes a ConvSpec (`spec=`) as well as
int-or-pair arguments, and gives the same answer either way; engine errors name their argument
as an attribute, not only in the text."""

from __future__ import annotations

import numpy as np
import pytest

from engine import (
    ArgumentError,
    ArgumentTypeError,
    ConvSpec,
    conv2d,
    conv2d_backward,
    conv_layer,
    coverage,
    dense_matrix,
    layer_gradient,
    loss_grad,
    output_arithmetic,
    output_shape,
    parameter_counts,
    receptive_field,
    weight_grad_contributions,
    weight_usage,
)

# Non-square kernel, unequal strides, padding and dilation (STYLE.md: square-only tests hide bugs).
SPEC = ConvSpec.make((3, 2), (2, 1), (1, 2), (1, 2))
ARGS = ((3, 2), (2, 1), (1, 2), (1, 2))
HW = (9, 11)


def _arrays(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, *HW))
    w = rng.standard_normal((4, 1, 3, 2))
    b = rng.standard_normal(4)
    return x, w, b


def test_geometry_functions_take_a_spec() -> None:
    assert output_shape(HW, spec=SPEC) == output_shape(HW, *ARGS)
    assert output_arithmetic(HW, spec=SPEC) == output_arithmetic(HW, *ARGS)
    a, b = weight_usage(HW, spec=SPEC), weight_usage(HW, *ARGS)
    assert (a.real == b.real).all() and (a.padding == b.padding).all() and a.total == b.total
    assert (coverage(HW, spec=SPEC) == coverage(HW, *ARGS)).all()
    rf, rf2 = receptive_field(HW, row=2, col=3, spec=SPEC), receptive_field(HW, *ARGS, 2, 3)
    assert (rf.top, rf.left, rf.height, rf.width) == (rf2.top, rf2.left, rf2.height, rf2.width)
    assert parameter_counts((2, *HW), (4, 1, 3, 2), groups=2, spec=SPEC) == \
        parameter_counts((2, *HW), (4, 1, 3, 2), *ARGS[1:], groups=2)


def test_conv_and_grad_functions_take_a_spec() -> None:
    x, w, b = _arrays()
    y = conv2d(x, w, b, groups=2, spec=SPEC)
    np.testing.assert_array_equal(y, conv2d(x, w, b, *ARGS[1:], groups=2))
    maps = conv_layer(x, w, b, groups=2, activation="tanh", spec=SPEC)
    np.testing.assert_allclose(maps.y, np.tanh(y), rtol=1e-12)
    g = np.random.default_rng(1).standard_normal(y.shape)
    for got, want in zip(conv2d_backward(x, w, g, groups=2, spec=SPEC),
                         conv2d_backward(x, w, g, *ARGS[1:], groups=2), strict=True):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(
        weight_grad_contributions(x, g, (3, 0, 2, 1), groups=2, spec=SPEC),
        weight_grad_contributions(x, g, (3, 0, 2, 1), *ARGS, groups=2))
    m = dense_matrix((2, *HW), w, groups=2, spec=SPEC)
    np.testing.assert_allclose(m.toarray() @ x.ravel(), conv2d(x, w, None, groups=2, spec=SPEC).ravel())


def test_a_spec_and_separate_arguments_together_are_refused() -> None:
    with pytest.raises(ArgumentError) as err:
        output_shape(HW, (3, 2), 2, spec=SPEC)
    assert err.value.argument == "spec"
    x, w, _ = _arrays()
    with pytest.raises(ArgumentError) as err:
        conv2d(x, w, stride=2, groups=2, spec=SPEC)
    assert err.value.argument == "spec"
    with pytest.raises(ArgumentTypeError) as terr:
        output_shape(HW, spec=(3, 3))  # type: ignore[arg-type]
    assert terr.value.argument == "spec"


def test_a_spec_whose_kernel_differs_from_the_weights_is_refused() -> None:
    x, w, _ = _arrays()
    with pytest.raises(ArgumentError) as err:
        conv2d(x, w, groups=2, spec=ConvSpec.make(3))
    assert err.value.argument == "spec"


@pytest.mark.parametrize(("call", "argument"), [
    (lambda: output_shape(HW, 3, 0), "stride"),
    (lambda: output_shape(HW, 3, 1, -1), "padding"),
    (lambda: output_shape(HW, 30, 1, 0), "kernel_size"),
    (lambda: output_shape(HW, 5, 1, 0, 4), "dilation"),
    (lambda: output_shape(HW, "3"), "kernel_size"),
    (lambda: conv2d(np.zeros((3, 5, 5)), np.zeros((2, 3, 3, 3)), groups=2), "groups"),
    (lambda: conv2d(np.zeros((1, 5, 5)), np.zeros((2, 1, 3, 3)), bias=[1, 2, 3]), "bias"),
    (lambda: receptive_field((5, 5), 3, row=9), "row"),
    (lambda: loss_grad(np.zeros((1, 2, 2)), loss="nope"), "loss"),
])
def test_engine_errors_carry_the_argument_name(call, argument: str) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises((ArgumentError, ArgumentTypeError)) as err:
        call()
    assert err.value.argument == argument
    assert f"`{argument}`" in str(err.value)


def _plain_loss(x, w, b, spec, activation, loss, target_w=None, unit=None):  # type: ignore[no-untyped-def]
    from engine import activate

    y = activate(conv2d(x, w, b, spec=spec), activation)
    if loss == "sum":
        return float(y.sum())
    if loss == "unit":
        return float(y[unit])
    t = activate(conv2d(x, target_w, b, spec=spec), activation)
    return float(np.mean((y - t) ** 2))


@pytest.mark.parametrize("loss", ["sum", "mse", "unit"])
@pytest.mark.parametrize("activation", ["none", "tanh"])
def test_layer_gradient_matches_finite_differences(loss: str, activation: str) -> None:
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 7, 8))
    w = rng.standard_normal((2, 1, 3, 2))
    b = rng.standard_normal(2)
    tw = rng.standard_normal(w.shape)
    spec = ConvSpec.make((3, 2), (2, 1), 1, (1, 2))
    unit = (1, 2, 3)
    g = layer_gradient(x, w, b, (1, 0, 2, 1), spec=spec, activation=activation, loss=loss,
                       target_weight=tw, unit=unit)
    assert g.loss == pytest.approx(_plain_loss(x, w, b, spec, activation, loss, tw, unit), rel=1e-12)
    eps = 1e-6
    numeric = np.zeros_like(w)
    for idx in np.ndindex(w.shape):
        wp, wm = w.copy(), w.copy()
        wp[idx] += eps
        wm[idx] -= eps
        numeric[idx] = (_plain_loss(x, wp, b, spec, activation, loss, tw, unit)
                        - _plain_loss(x, wm, b, spec, activation, loss, tw, unit)) / (2 * eps)
    np.testing.assert_allclose(g.grad_w, numeric, rtol=1e-5, atol=1e-8)
    assert g.contributions.sum() == pytest.approx(g.grad_w[1, 0, 2, 1], rel=1e-10, abs=1e-12)


def test_the_unit_loss_reaches_only_that_units_window() -> None:
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1, 9, 9))
    w = rng.standard_normal((1, 1, 3, 3))
    g = layer_gradient(x, w, None, (0, 0, 1, 1), spec=ConvSpec.make(3, 2, 1), loss="unit", unit=(0, 2, 1))
    nonzero = np.argwhere(g.contributions != 0)
    assert nonzero.tolist() == [[2, 1]]
    assert g.contributions[2, 1] == pytest.approx(x[0, 4, 2])  # s*m + d*u - p = 2*2 + 1 - 1


def test_layer_gradient_names_a_target_of_the_wrong_shape() -> None:
    x, w, b = _arrays()
    with pytest.raises(ArgumentError) as err:
        layer_gradient(x, w, b, (0, 0, 0, 0), groups=2, spec=SPEC, loss="mse",
                       target_weight=np.zeros((1, 1, 3, 3)))
    assert err.value.argument == "target_weight"
