"""The effective receptive field, and the theoretical one through every layer kind: against the
n-fold box convolution's variance, finite differences, brute-force perturbation and torch."""

from __future__ import annotations

import numpy as np
import pytest
from reference import central_difference

from engine import (
    MAX_GEOMETRY_LAYERS,
    ArgumentError,
    StackLayerError,
    effective_receptive_field,
    receptive_box,
    receptive_field_stack,
    stack_cost,
    stack_forward,
)


@pytest.mark.parametrize("n", [1, 2, 4, 8])
def test_variance_of_stacked_box_filters(n: int) -> None:
    # n uniform 3x5 box filters at stride 1, no non-linearity: the gradient of a central unit is
    # the n-fold convolution of a box, whose variance per axis is n (k^2 - 1) / 12.
    kh, kw = 3, 5
    size = 2 * n * (kw - 1) + 9
    layers = [{"weight": np.full((1, 1, kh, kw), 1 / (kh * kw))} for _ in range(n)]
    x = np.zeros((1, size, size))
    shape = stack_cost(x.shape, layers).output_shapes[-1]
    erf = effective_receptive_field(x, layers, (n - 1, 0, shape[1] // 2, shape[2] // 2))
    assert erf.std is not None and erf.center is not None
    assert erf.std[0] ** 2 == pytest.approx(n * (kh**2 - 1) / 12, rel=1e-12)
    assert erf.std[1] ** 2 == pytest.approx(n * (kw**2 - 1) / 12, rel=1e-12)
    # Centred on the unit's box; the heat sums to 1 (each filter sums to 1) and fills the box.
    box = erf.box
    assert erf.center == pytest.approx((box.top + (box.height - 1) / 2, box.left + (box.width - 1) / 2))
    assert erf.total == pytest.approx(1.0)
    assert (box.height, box.width) == (n * (kh - 1) + 1, n * (kw - 1) + 1)
    inside = np.zeros(x.shape[1:], dtype=bool)
    inside[box.top : box.top + box.height, box.left : box.left + box.width] = True
    assert np.all(erf.heatmap[inside] > 0) and np.all(erf.heatmap[~inside] == 0)


def _nonlinear_stack(seed: int) -> tuple[np.ndarray, list[dict[str, object]]]:
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 13, 11))
    return x, [
        {"weight": rng.standard_normal((3, 2, 3, 2)), "bias": rng.standard_normal(3), "padding": (1, 1)},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel_size": (2, 3), "stride": (2, 1), "padding": (1, 1)},
        {"weight": rng.standard_normal((2, 3, 2, 3)), "stride": (1, 2), "dilation": (2, 1)},
        {"kind": "tanh"},
        {"kind": "avgpool", "kernel_size": 2, "stride": 1, "ceil_mode": True},
    ]


@pytest.mark.parametrize("unit", [(5, 1, 2, 1), (3, 0, 0, 2), (1, 2, 6, 5)])
def test_heatmap_is_the_absolute_input_gradient(unit: tuple[int, int, int, int]) -> None:
    x, layers = _nonlinear_stack(3)
    erf = effective_receptive_field(x, layers, unit)
    layer, j, m, n = unit
    numeric = central_difference(lambda: float(stack_forward(x, layers[: layer + 1])[-1][j, m, n]), x)
    np.testing.assert_allclose(erf.heatmap, np.abs(numeric).sum(axis=0), atol=1e-6)
    assert erf.unit == unit
    # No heat outside the theoretical box.
    box = erf.box
    outside = np.ones(x.shape[1:], dtype=bool)
    rows = slice(max(box.top, 0), max(box.top + box.height, 0))
    outside[rows, max(box.left, 0) : max(box.left + box.width, 0)] = False
    assert np.all(erf.heatmap[outside] == 0)


def test_heatmap_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    functional = torch.nn.functional
    x, layers = _nonlinear_stack(4)
    erf = effective_receptive_field(x, layers, (5, 0, 3, 2))
    xt = torch.from_numpy(x)[None].requires_grad_(True)
    w0, b0, w1 = (torch.from_numpy(np.asarray(layers[i][key])) for i, key in ((0, "weight"), (0, "bias"),
                                                                               (3, "weight")))
    y = functional.max_pool2d(functional.relu(functional.conv2d(xt, w0, b0, padding=1)), (2, 3), (2, 1), 1)
    y = functional.avg_pool2d(torch.tanh(functional.conv2d(y, w1, stride=(1, 2), dilation=(2, 1))), 2, 1,
                              ceil_mode=True)
    y[0, 0, 3, 2].backward()
    np.testing.assert_allclose(erf.heatmap, xt.grad.abs().sum(dim=1)[0].numpy(), atol=1e-12)


def test_dead_unit_has_no_centre() -> None:
    layers = [{"weight": np.ones((1, 1, 3, 3)), "bias": np.array([-100.0])}, {"kind": "relu"}]
    erf = effective_receptive_field(np.zeros((1, 6, 6)), layers, (1, 0, 1, 1))
    assert erf.total == 0 and erf.center is None and erf.std is None


def test_unit_out_of_range() -> None:
    layers = [{"weight": np.ones((2, 1, 3, 3))}]
    for unit, part in [((1, 0, 0, 0), "layer"), ((0, 2, 0, 0), "channel"), ((0, 0, 4, 0), "row"),
                       ((0, 0, 0, -1), "col")]:
        with pytest.raises(ArgumentError, match=f"`unit` {part}") as info:
            effective_receptive_field(np.zeros((1, 6, 6)), layers, unit)
        assert info.value.argument == "unit"


def test_unit_not_four_ints() -> None:
    with pytest.raises(ArgumentError, match="`unit`"):
        effective_receptive_field(np.zeros((1, 6, 6)), [{"kind": "relu"}], (0, 0, 0))


# ---- the theoretical box through every kind -------------------------------------------------

def _reads(x_shape: tuple[int, int, int], layers: list[dict[str, object]]) -> np.ndarray:
    """(H_last, W_last, H, W) bool by perturbation: last-layer unit (m, n) of any channel changes
    when input pixel (r, q) does. Positive weights and a zero image: a bump never cancels."""
    x = np.zeros(x_shape)
    base = stack_forward(x, layers)[-1]
    out = np.zeros((*base.shape[1:], *x_shape[1:]), dtype=bool)
    for r in range(x_shape[1]):
        for q in range(x_shape[2]):
            x[:, r, q] = 1.0
            out[:, :, r, q] = (stack_forward(x, layers)[-1] != base).any(axis=0)
            x[:, r, q] = 0.0
    return out


def _positive(shape: tuple[int, ...], seed: int) -> np.ndarray:
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


STACKS = [
    [{"weight": _positive((2, 1, 3, 2), 0), "padding": (1, 0), "stride": (1, 2)}, {"kind": "relu"},
     {"kind": "maxpool", "kernel_size": (3, 2), "stride": (2, 1), "padding": (1, 1), "ceil_mode": True},
     {"weight": _positive((1, 2, 2, 3), 1), "padding": (0, 1)}],
    [{"kind": "avgpool", "kernel_size": (2, 3), "stride": (1, 2), "padding": (1, 1), "ceil_mode": True},
     {"kind": "sigmoid"}, {"weight": _positive((1, 1, 3, 3), 2), "stride": 2, "padding": 1}],
    [{"weight": _positive((1, 1, 2, 2), 3), "dilation": (2, 1)},
     {"kind": "maxpool", "kernel_size": 2, "stride": 1, "dilation": (1, 2)}],
]


@pytest.mark.parametrize("layers", STACKS)
def test_box_matches_perturbation_and_the_recurrences(layers: list[dict[str, object]]) -> None:
    h, w = 13, 12
    reads = _reads((1, h, w), layers)
    entry = receptive_field_stack(layers)[-1]
    dilated = any(np.any(np.asarray(d.get("dilation", 1)) > 1) for d in layers)
    for m in range(reads.shape[0]):
        for n in range(reads.shape[1]):
            box = receptive_box((h, w), layers, m, n)
            assert box.top == entry.start[0] + m * entry.jump[0]
            assert box.left == entry.start[1] + n * entry.jump[1]
            assert (box.height, box.width) == entry.size
            inside = np.zeros((h, w), dtype=bool)
            if box.clipped is not None:
                t, left, hh, ww = box.clipped
                inside[t : t + hh, left : left + ww] = True
            assert not (reads[m, n] & ~inside).any()
            if not dilated:
                np.testing.assert_array_equal(reads[m, n], inside)
            assert box.in_padding == box.area - int(inside.sum())


def test_box_through_a_transposed_conv_matches_perturbation() -> None:
    layers = [
        {"weight": _positive((1, 1, 3, 2), 4), "stride": (2, 1), "padding": (1, 0)},
        {"kind": "conv_transpose", "weight": _positive((1, 1, 3, 2), 5), "stride": (2, 3), "padding": (1, 0),
         "output_padding": (1, 0)},
        {"kind": "relu"},
    ]
    h, w = 9, 7
    reads = _reads((1, h, w), layers)
    gaps = 0
    for m in range(reads.shape[0]):
        for n in range(reads.shape[1]):
            box = receptive_box((h, w), layers, m, n)
            inside = np.zeros((h, w), dtype=bool)
            if box.clipped is not None:
                t, left, hh, ww = box.clipped
                inside[t : t + hh, left : left + ww] = True
            assert not (reads[m, n] & ~inside).any()
            if box.area == 0:
                gaps += 1
                assert not reads[m, n].any()
            elif 0 <= box.top and box.top + box.height <= h and 0 <= box.left and box.left + box.width <= w:
                rows, cols = np.nonzero(reads[m, n])
                assert (rows.min(), rows.max()) == (box.top, box.top + box.height - 1)
                assert (cols.min(), cols.max()) == (box.left, box.left + box.width - 1)
    assert gaps > 0  # stride 3 > kernel 2 along columns leaves output columns no input reaches


def test_box_padding_hand_worked() -> None:
    # Two 3x3 convs with padding 1 see 5x5; unit (0, 0) starts two pixels into the padding.
    layers = [{"kernel_size": 3, "padding": 1, "out_channels": 1}] * 2
    box = receptive_box((6, 6), layers, 0, 0)
    assert (box.top, box.left, box.height, box.width) == (-2, -2, 5, 5)
    assert box.clipped == (0, 0, 3, 3)
    assert box.padding == (2, 0, 2, 0)
    assert box.in_padding == 25 - 9 and box.padding_fraction == pytest.approx(16 / 25)
    box = receptive_box((6, 6), layers, 5, 2)
    assert box.padding == (0, 2, 0, 0) and box.clipped == (3, 0, 3, 5)


def test_stack_entries_through_pools_and_activations() -> None:
    got = receptive_field_stack([
        {"kind": "conv", "kernel_size": 3, "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel_size": 2},
        {"kind": "avgpool", "kernel_size": (3, 1), "stride": (1, 2), "padding": (1, 0)},
    ])
    assert [e.size for e in got] == [(3, 3), (3, 3), (4, 4), (8, 4)]
    assert [e.jump for e in got] == [(1, 1), (1, 1), (2, 2), (2, 4)]
    assert [e.start for e in got] == [(-1, -1), (-1, -1), (-1, -1), (-3, -1)]
    assert [e.kind for e in got] == ["conv", "relu", "maxpool", "avgpool"]


def test_stack_refuses_a_transposed_conv() -> None:
    with pytest.raises(StackLayerError, match=r"`layers\[1\].kind`") as info:
        receptive_field_stack([(3, 1, 1), {"kind": "conv_transpose", "kernel_size": 2, "stride": 2}])
    assert info.value.field == "layers[1].kind"


def test_geometry_limit() -> None:
    assert len(receptive_field_stack([(1, 1)] * MAX_GEOMETRY_LAYERS)) == MAX_GEOMETRY_LAYERS
    with pytest.raises(StackLayerError, match="`layers`"):
        receptive_field_stack([(1, 1)] * (MAX_GEOMETRY_LAYERS + 1))


def test_box_unit_out_of_range() -> None:
    with pytest.raises(ArgumentError, match="`row`"):
        receptive_box((6, 6), [{"kind": "maxpool", "kernel_size": 2}], 3, 0)


def _random_stack(rng: np.random.Generator) -> list[dict]:
    """A random stack of convs, pools and activations: non-square kernels, strides, padding, dilation."""
    layers: list[dict] = []
    c = 2
    for _ in range(int(rng.integers(2, 6))):
        kind = str(rng.choice(["conv", "conv", "relu", "tanh", "maxpool", "avgpool"]))
        if kind == "conv":
            k = (int(rng.integers(1, 5)), int(rng.integers(1, 5)))
            d = (int(rng.integers(1, 3)), int(rng.integers(1, 3)))
            p = (int(rng.integers(0, k[0])), int(rng.integers(0, k[1])))
            j = int(rng.integers(1, 4))
            layers.append({"kind": "conv", "kernel_size": k, "stride": (int(rng.integers(1, 3)),
                           int(rng.integers(1, 3))), "padding": p, "dilation": d,
                           "weight": rng.standard_normal((j, c, *k))})
            c = j
        elif kind in ("maxpool", "avgpool"):
            k = (int(rng.integers(2, 4)), int(rng.integers(2, 4)))
            layers.append({"kind": kind, "kernel_size": k, "stride": (int(rng.integers(1, 3)),
                           int(rng.integers(1, 3))), "padding": (k[0] // 2, k[1] // 2)})
        else:
            layers.append({"kind": kind})
    return layers


@pytest.mark.parametrize("seed", range(40))
def test_the_erf_from_the_units_window_equals_the_whole_images(seed: int) -> None:
    # The ERF runs the stack on the part of the input the unit depends on; it must equal the
    # gradient of the whole stack on the whole image, interior units and edge units alike.
    from engine.stack import _unit_grad, as_layers, stack_cost

    rng = np.random.default_rng(seed)
    x = rng.standard_normal((2, 61, 47))
    layers = _random_stack(rng)
    try:
        j, h, w = stack_cost(x.shape, as_layers(layers, 8)).output_shapes[-1]
    except ValueError:
        pytest.skip("this random stack does not fit the image")
    for row, col in ((h // 2, w // 2), (0, 0), (h - 1, w - 1), (int(rng.integers(h)), int(rng.integers(w)))):
        erf = effective_receptive_field(x, layers, (len(layers) - 1, j - 1, row, col))
        whole = np.abs(_unit_grad(x, as_layers(layers, 8), (j - 1, row, col))).sum(axis=0)
        np.testing.assert_allclose(erf.heatmap, whole, rtol=1e-9, atol=1e-12)
