"""conv2d, activations and conv2d_decimated against the plain-loop reference."""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np
import pytest
from cases import Case, case_id, random_cases
from reference import conv2d_ref

import engine
import engine.conv as conv_module
from engine import activate, activation_grad, conv2d, conv2d_decimated

CASES = random_cases(240, seed=1)
ONE_BY_ONE = [c for c in CASES if c.out_hw == (1, 1)]
# Single kernel on a single channel (shift-and-add path), and depthwise layers.
TAPS_CASES = [
    Case(1, 1, 1, 9, 8, (3, 5), (2, 3), (1, 2), (1, 2)),
    Case(1, 1, 1, 7, 10, (4, 1), (1, 2), (0, 3), (2, 1)),
    Case(1, 1, 1, 5, 5, (5, 5), (1, 1), (0, 0), (1, 1)),
    Case(3, 3, 3, 8, 11, (2, 3), (3, 1), (1, 0), (2, 3)),
    Case(2, 4, 2, 6, 7, (7, 2), (1, 4), (3, 1), (1, 1)),
]


def test_random_cases_cover_the_required_ranges() -> None:
    kernels = {k for c in CASES for k in c.kernel}
    strides = {s for c in CASES for s in c.stride}
    assert kernels == set(range(1, 8))
    assert strides == {1, 2, 3, 4}
    assert {p for c in CASES for p in c.padding} == {0, 1, 2, 3}
    assert {d for c in CASES for d in c.dilation} == {1, 2, 3}
    assert {c.c for c in CASES} == {1, 2, 3, 4} and {c.j for c in CASES} == {1, 2, 3, 4}
    assert {c.groups for c in CASES} >= {1, 2, 3, 4}
    assert any(c.kernel[0] != c.kernel[1] for c in CASES)
    assert any(c.stride[0] != c.stride[1] for c in CASES)
    assert {c.h % 2 for c in CASES} == {0, 1} and {c.w % 2 for c in CASES} == {0, 1}
    assert len(ONE_BY_ONE) >= 20
    assert all(min(c.out_hw) >= 1 for c in CASES)


@pytest.mark.parametrize("case", CASES + TAPS_CASES, ids=case_id)
def test_conv2d_matches_reference(case: Case) -> None:
    x, wt, b = case.arrays(seed=zlib.crc32(case_id(case).encode()))
    ref = conv2d_ref(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    assert ref.shape == (case.j, *case.out_hw)

    y64 = conv2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    assert y64.dtype == np.float64 and y64.shape == ref.shape
    np.testing.assert_allclose(y64, ref, rtol=1e-10, atol=1e-10)

    y32 = conv2d(x.astype(np.float32), wt.astype(np.float32), b.astype(np.float32),
                 **case.kwargs())  # type: ignore[arg-type]
    assert y32.dtype == np.float32 and y32.shape == ref.shape
    scale = max(1.0, float(np.abs(ref).max()))
    np.testing.assert_allclose(y32, ref, rtol=1e-4, atol=1e-4 * scale)


@pytest.mark.parametrize("case", ONE_BY_ONE[:5], ids=case_id)
def test_one_by_one_output_is_the_whole_window(case: Case) -> None:
    x, wt, b = case.arrays(seed=7)
    y = conv2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    assert y.shape == (case.j, 1, 1)
    np.testing.assert_allclose(y, conv2d_ref(x, wt, b, **case.kwargs()), rtol=1e-10,  # type: ignore[arg-type]
                               atol=1e-10)


def test_kernel_exactly_the_padded_size_gives_one_output() -> None:
    x = np.arange(2 * 3 * 4, dtype=np.float64).reshape(2, 3, 4)
    wt = np.ones((1, 2, 5, 4))
    y = conv2d(x, wt, padding=(1, 0))
    assert y.shape == (1, 1, 1)
    assert y[0, 0, 0] == x.sum()


@pytest.mark.parametrize("strip_floats", [1, 37, 200])
@pytest.mark.parametrize("case", CASES[1:60:6] + TAPS_CASES[:2], ids=case_id)
def test_multi_strip_and_threaded_forward(monkeypatch: pytest.MonkeyPatch, case: Case,
                                          strip_floats: int) -> None:
    # Tiny strips force many row bands, split across threads, on a small image.
    monkeypatch.setattr(conv_module, "STRIP_FLOATS", strip_floats)
    x, wt, b = case.arrays(seed=3)
    y = conv2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_allclose(y, conv2d_ref(x, wt, b, **case.kwargs()), rtol=1e-10,  # type: ignore[arg-type]
                               atol=1e-10)


@pytest.mark.parametrize("strip_floats", [50, conv_module.STRIP_FLOATS])
@pytest.mark.parametrize("case", CASES[::3] + TAPS_CASES, ids=case_id)
def test_every_column_fold_matches_reference(monkeypatch: pytest.MonkeyPatch, case: Case,
                                             strip_floats: int) -> None:
    # The forward pass may fold kernel columns into the matmul (ColumnPlan); every fold, up to
    # more than a phase holds (zero-weight taps read the extra padding), gives the same layer.
    monkeypatch.setattr(conv_module, "STRIP_FLOATS", strip_floats)
    x, wt, b = case.arrays(seed=5)
    ref = conv2d_ref(x, wt, None, **case.kwargs())  # type: ignore[arg-type]
    layer = conv_module.prepare(x, wt, **case.kwargs())  # type: ignore[arg-type]
    for fold in range(1, case.kernel[1] + 2):
        y = conv_module._im2col_forward(layer, fold)
        np.testing.assert_allclose(y, ref, rtol=1e-10, atol=1e-10, err_msg=f"fold {fold}")


def test_folded_plan_weight_matrix_places_each_tap_once() -> None:
    spec = engine.ConvSpec.make((2, 7), 2, 3, 1)
    plan = conv_module.ColumnPlan.of(spec, 4)
    # Phase 0 holds columns 0, 2, 4, 6 (one block), phase 1 holds 1, 3, 5 and an empty slot.
    assert plan.blocks == ((0, 2, 4, 6), (1, 3, 5, -1))
    assert plan.step == 1 and plan.extra == 3 and plan.width(10) == 13
    wt = np.arange(1, 1 + 3 * 2 * 2 * 7, dtype=np.float64).reshape(3, 2, 2, 7)
    m = plan.weight_matrix(wt).reshape(4, 3, 2, 2, 2)  # (i, j, c, u, block)
    assert sorted(m[m != 0].tolist()) == sorted(wt.ravel().tolist())
    assert m[1, 2, 1, 0, 0] == wt[2, 1, 0, 2] and m[3, :, :, :, 1].max() == 0


def test_identity_kernel_copies_the_input(rng: np.random.Generator) -> None:
    x = rng.standard_normal((1, 7, 6))
    wt = np.zeros((1, 1, 3, 5))
    wt[0, 0, 1, 2] = 1.0
    np.testing.assert_array_equal(conv2d(x, wt, padding=(1, 2)), x)


def test_height_and_width_are_not_swapped() -> None:
    # A 1x2 kernel [0, 1] on a 2x3 image reads the right-hand neighbour along a row.
    x = np.arange(6, dtype=np.float64).reshape(1, 2, 3)
    wt = np.array([[[[0.0, 1.0]]]])
    np.testing.assert_array_equal(conv2d(x, wt), [[[1, 2], [4, 5]]])
    # Stride (1, 2) keeps columns 0 and 2 of the padded input's windows.
    np.testing.assert_array_equal(conv2d(x, np.ones((1, 1, 1, 1)), stride=(1, 2)), [[[0, 2], [3, 5]]])


def test_noncontiguous_and_reversed_inputs(rng: np.random.Generator) -> None:
    base = rng.standard_normal((3, 14, 9))
    wt = rng.standard_normal((2, 3, 3, 2))
    for x in (base[:, ::2, :], base[:, :, ::-1], base.transpose(0, 2, 1), base[::-1]):
        np.testing.assert_allclose(conv2d(x, wt, stride=(2, 1), padding=(1, 2)),
                                   conv2d_ref(x, wt, None, (2, 1), (1, 2)), rtol=1e-10, atol=1e-10)


def test_dtypes() -> None:
    x = np.arange(2 * 5 * 4).reshape(2, 5, 4)  # int64
    wt = np.ones((1, 2, 2, 3), dtype=np.float32)
    y = conv2d(x, wt)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, conv2d_ref(x, wt))
    assert conv2d(x.astype(np.float64), wt).dtype == np.float64
    assert conv2d(x.astype(np.float32), wt.astype(np.float64)).dtype == np.float64
    assert conv2d(x.astype(np.float16), wt.astype(np.float16)).dtype == np.float32
    assert conv2d(x.astype(np.float32), wt, bias=np.ones(1)).dtype == np.float32


def test_scalar_bias_is_added_to_every_map(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 6, 5))
    wt = rng.standard_normal((3, 2, 2, 3))
    np.testing.assert_allclose(conv2d(x, wt, bias=0.5), conv2d(x, wt) + 0.5, rtol=0, atol=1e-12)
    np.testing.assert_allclose(conv2d(x, wt, bias=[1.0, 2.0, 3.0]),
                               conv2d(x, wt) + np.array([1.0, 2.0, 3.0])[:, None, None], atol=1e-12)


def test_same_and_valid_padding(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 7, 8))
    wt = rng.standard_normal((3, 2, 3, 5))
    y = conv2d(x, wt, padding="same", dilation=(2, 1))
    assert y.shape == (3, 7, 8)
    np.testing.assert_allclose(y, conv2d_ref(x, wt, None, 1, (2, 2), (2, 1)), rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(conv2d(x, wt, padding="valid"), conv2d(x, wt, padding=0))


def test_groups_split_channels_and_kernels(rng: np.random.Generator) -> None:
    # groups=2: kernels 0-1 see channels 0-1, kernels 2-3 see channels 2-3.
    x = rng.standard_normal((4, 6, 7))
    wt = rng.standard_normal((4, 2, 3, 2))
    y = conv2d(x, wt, groups=2)
    np.testing.assert_allclose(y[:2], conv2d(x[:2], wt[:2]), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(y[2:], conv2d(x[2:], wt[2:]), rtol=1e-12, atol=1e-12)


# ---- activations ----------------------------------------------------------------------------

Z = np.array([-800.0, -30.0, -2.5, -1e-3, 0.0, 1e-3, 0.7, 3.0, 30.0, 800.0])


def test_activate_values() -> None:
    np.testing.assert_array_equal(activate(Z, "none"), Z)
    np.testing.assert_array_equal(activate(Z, "relu"), np.where(Z > 0, Z, 0.0))
    np.testing.assert_allclose(activate(Z, "tanh"), np.tanh(Z), rtol=1e-15)
    # No overflow warning (warnings are errors) at +-800, and the exact logistic elsewhere.
    sig = activate(Z, "sigmoid")
    mid = np.abs(Z) < 50
    np.testing.assert_allclose(sig[mid], 1 / (1 + np.exp(-Z[mid])), rtol=1e-14)
    assert sig[0] == 0.0 and sig[-1] == 1.0 and sig[4] == 0.5
    assert np.all(np.diff(sig) >= 0)


def test_activate_float32_keeps_dtype() -> None:
    z = Z.astype(np.float32)
    for name in engine.ACTIVATIONS:
        out = activate(z, name)
        assert out.dtype == np.float32, name
        assert np.isfinite(out).all()


def test_sigmoid_of_integer_input_is_not_truncated() -> None:
    # activate takes any array-like; an int array must not be rounded to 0 / 1.
    np.testing.assert_allclose(activate(np.array([0, 1, -1]), "sigmoid"),
                               1 / (1 + np.exp(-np.array([0.0, 1.0, -1.0]))), rtol=1e-12)


@pytest.mark.parametrize("name", ["none", "relu", "sigmoid", "tanh"])
def test_activation_grad_matches_finite_differences(name: str) -> None:
    z = Z[np.abs(Z) > 1e-2]  # away from relu's kink
    z = z[np.abs(z) < 50]
    h = 1e-6
    fd = (activate(z + h, name) - activate(z - h, name)) / (2 * h)
    np.testing.assert_allclose(activation_grad(z, name), fd, rtol=1e-6, atol=1e-9)


def test_activate_rejects_unknown_activation() -> None:
    with pytest.raises(ValueError, match="`activation`"):
        activate(Z, "softmax")


def test_activation_grad_rejects_unknown_activation() -> None:
    with pytest.raises(ValueError, match="`activation`"):
        activation_grad(Z, "gelu")


# ---- stride as decimation -------------------------------------------------------------------

DECIMATION_CASES = [c for c in CASES if c.stride != (1, 1)][:40]


@pytest.mark.parametrize("case", DECIMATION_CASES, ids=case_id)
def test_decimation_equals_strided_conv(case: Case) -> None:
    x, wt, b = case.arrays(seed=11)
    dec = conv2d_decimated(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    y = conv2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    full = conv2d(x, wt, b, 1, case.padding, case.dilation, case.groups)
    np.testing.assert_array_equal(dec.full, full)
    assert dec.strided.shape == y.shape
    np.testing.assert_allclose(dec.strided, y, rtol=1e-12, atol=1e-12)
    sh, sw = case.stride
    np.testing.assert_array_equal(dec.kept_rows, np.arange(y.shape[1]) * sh)
    np.testing.assert_array_equal(dec.kept_cols, np.arange(y.shape[2]) * sw)
    assert dec.kept_rows[-1] < full.shape[1] and dec.kept_cols[-1] < full.shape[2]
    np.testing.assert_array_equal(dec.strided, dec.full[:, dec.kept_rows][:, :, dec.kept_cols])


def test_decimation_single_kernel_single_channel(rng: np.random.Generator) -> None:
    # Equality to the last bit is not promised: the fast paths may sum the taps in another order
    # at stride 1 than at stride s (BLAS blocking), so this is checked to 1e-12 like the rest.
    x = rng.standard_normal((1, 13, 11))
    wt = rng.standard_normal((1, 1, 3, 4))
    dec = conv2d_decimated(x, wt, 0.25, stride=(3, 2), padding=(1, 2), dilation=(2, 1))
    np.testing.assert_allclose(dec.strided, conv2d(x, wt, 0.25, (3, 2), (1, 2), (2, 1)), rtol=1e-12,
                               atol=1e-12)


def test_decimation_with_stride_one_keeps_everything(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 5, 6))
    wt = rng.standard_normal((2, 2, 2, 3))
    dec = conv2d_decimated(x, wt)
    np.testing.assert_array_equal(dec.strided, dec.full)
    np.testing.assert_array_equal(dec.kept_rows, np.arange(4))
    np.testing.assert_array_equal(dec.kept_cols, np.arange(4))


def test_decimation_rejects_same_padding_with_stride() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        conv2d_decimated(np.ones((1, 5, 5)), np.ones((1, 1, 3, 3)), stride=2, padding="same")


# ---- errors: each its own test, each naming the argument ------------------------------------

X = np.ones((2, 6, 7))
W = np.ones((3, 2, 3, 2))


def test_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        conv2d(X, W, stride=0)


def test_stride_pair_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        conv2d(X, W, stride=(1, 0))


def test_stride_not_an_int() -> None:
    with pytest.raises(TypeError, match="`stride`"):
        conv2d(X, W, stride=1.5)  # type: ignore[arg-type]


def test_stride_triple() -> None:
    with pytest.raises(TypeError, match="`stride`"):
        conv2d(X, W, stride=(1, 1, 1))


def test_padding_negative() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        conv2d(X, W, padding=(0, -1))


def test_padding_unknown_string() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        conv2d(X, W, padding="full")  # type: ignore[arg-type]


def test_padding_same_with_stride_two() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        conv2d(X, np.ones((3, 2, 3, 3)), stride=2, padding="same")


def test_padding_same_with_even_kernel() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        conv2d(X, W, padding="same")


def test_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="`dilation`"):
        conv2d(X, W, dilation=0)


def test_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        conv2d(np.ones((3, 6, 7)), W)


def test_channel_mismatch_with_groups() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        conv2d(np.ones((4, 6, 7)), np.ones((2, 4, 3, 3)), groups=2)


def test_groups_not_dividing_channels() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        conv2d(np.ones((3, 6, 7)), np.ones((2, 1, 3, 3)), groups=2)


def test_groups_not_dividing_kernels() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        conv2d(X, np.ones((3, 1, 3, 3)), groups=2)


def test_groups_zero() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        conv2d(X, W, groups=0)


def test_groups_not_an_int() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        conv2d(X, W, groups=1.0)  # type: ignore[arg-type]


def test_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        conv2d(np.ones((2, 6, 3)), np.ones((1, 2, 3, 4)))


def test_dilated_kernel_larger_than_padded_input() -> None:
    # 3 rows fit 6, but dilated by 3 they span 7: the error names the dilation.
    with pytest.raises(ValueError, match="`dilation`"):
        conv2d(np.ones((2, 6, 3)), np.ones((1, 2, 3, 2)), dilation=(3, 1), padding=(0, 1))


def test_nan_in_x() -> None:
    x = X.copy()
    x[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="`x`"):
        conv2d(x, W)


def test_inf_in_x() -> None:
    x = X.copy()
    x[0, 0, 0] = -np.inf
    with pytest.raises(ValueError, match="`x`"):
        conv2d(x, W)


def test_nan_in_weight() -> None:
    w = W.copy()
    w[2, 1, 0, 1] = np.nan
    with pytest.raises(ValueError, match="`weight`"):
        conv2d(X, w)


def test_inf_in_weight() -> None:
    w = W.copy()
    w[0, 0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="`weight`"):
        conv2d(X, w)


def test_nan_in_bias() -> None:
    with pytest.raises(ValueError, match="`bias`"):
        conv2d(X, W, bias=[0.0, np.nan, 0.0])


def test_inf_scalar_bias() -> None:
    with pytest.raises(ValueError, match="`bias`"):
        conv2d(X, W, bias=np.inf)


def test_wrong_bias_shape() -> None:
    with pytest.raises(ValueError, match="`bias`"):
        conv2d(X, W, bias=np.zeros(2))


def test_bias_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`bias`"):
        conv2d(X, W, bias=np.zeros((3, 1)))


def test_x_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`x`"):
        conv2d(np.ones((6, 7)), W)


def test_weight_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        conv2d(X, np.ones((2, 3, 2)))


def test_x_empty() -> None:
    with pytest.raises(ValueError, match="`x`"):
        conv2d(np.ones((2, 0, 7)), W)


def test_x_complex() -> None:
    with pytest.raises(TypeError, match="`x`"):
        conv2d(X.astype(complex), W)


def test_weight_strings() -> None:
    with pytest.raises(TypeError, match="`weight`"):
        conv2d(X, np.full((3, 2, 3, 2), "a"))


# ---------------------------------------------------------------- conv_layer (fused σ and statistics)


@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("strip_floats", [40, conv_module.STRIP_FLOATS])
@pytest.mark.parametrize("case", CASES[2:240:40] + TAPS_CASES[3:], ids=case_id)
def test_conv_layer_matches_activate_of_reference(monkeypatch: pytest.MonkeyPatch, case: Case,
                                                   strip_floats: int, activation: str) -> None:
    # Small strips split the statistics over many pieces and both threads.
    monkeypatch.setattr(conv_module, "STRIP_FLOATS", strip_floats)
    x, wt, b = case.arrays(seed=21)
    x = 40 * x  # large pre-activations: sigmoid must neither overflow nor lose its tails
    expected = activate(conv2d_ref(x, wt, b, **case.kwargs()), activation)  # type: ignore[arg-type]
    got = engine.conv_layer(x, wt, b, **case.kwargs(), activation=activation)  # type: ignore[arg-type]
    np.testing.assert_allclose(got.y, expected, rtol=1e-10, atol=1e-12)
    flat = expected.reshape(case.j, -1)
    np.testing.assert_allclose(got.minimum, flat.min(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.maximum, flat.max(axis=1), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.mean, flat.mean(axis=1), rtol=1e-10, atol=1e-12)


def test_conv_layer_float32_statistics_and_no_bias(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 70, 90)).astype(np.float32)
    wt = rng.standard_normal((5, 3, 3, 3)).astype(np.float32)
    got = engine.conv_layer(x, wt, stride=2, padding=1, activation="relu")
    expected = np.maximum(conv2d(x, wt, stride=2, padding=1), 0)
    assert got.y.dtype == np.float32
    np.testing.assert_array_equal(got.y, expected)
    np.testing.assert_array_equal(got.minimum, expected.min(axis=(1, 2)))
    np.testing.assert_array_equal(got.maximum, expected.max(axis=(1, 2)))
    np.testing.assert_allclose(got.mean, expected.astype(np.float64).mean(axis=(1, 2)), rtol=1e-6)


def test_conv_layer_rejects_unknown_activation(rng: np.random.Generator) -> None:
    with pytest.raises(ValueError, match="`activation` must be one of none, relu, sigmoid, tanh"):
        engine.conv_layer(np.ones((1, 4, 4)), np.ones((1, 1, 3, 3)), activation="gelu")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("activation", ["none", "relu", "sigmoid", "tanh"])
@pytest.mark.parametrize("h", [4, 8])
def test_conv_layer_on_one_value_per_kernel_strips(monkeypatch: pytest.MonkeyPatch, h: int, activation: str,
                                                   dtype: type) -> None:
    # One-row strips of a one-column output are 1-D views with a step of H_out: NumPy 2.4's
    # in-place np.negative misreads steps of 4 (float32) and 8 (float64), which once broke sigmoid.
    monkeypatch.setattr(conv_module, "STRIP_FLOATS", 1)
    x = np.arange(1, h + 1, dtype=dtype).reshape(1, h, 1)
    wt = np.array([1, -1, 0.5], dtype=dtype).reshape(3, 1, 1, 1)
    got = engine.conv_layer(x, wt, activation=activation)
    expected = activate(conv2d_ref(x.astype(np.float64), wt.astype(np.float64)), activation)
    np.testing.assert_allclose(got.y, expected, rtol=1e-6)
    np.testing.assert_allclose(got.minimum, expected.min(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(got.mean, expected.mean(axis=(1, 2)), rtol=1e-6)


@pytest.mark.parametrize("parallel_from", [1, 1 << 30])
@pytest.mark.parametrize("s_w", [1, 2, 3])
@pytest.mark.parametrize("padding", [(0, 0), (1, 2), (3, 0)])
def test_padded_phases_against_np_pad(monkeypatch: pytest.MonkeyPatch, parallel_from: int, s_w: int,
                                      padding: tuple[int, int], rng: np.random.Generator) -> None:
    # Written in row bands by every thread (parallel_from=1) or by one: zeros around, pixels
    # of padded column q in phase q % s_w at q // s_w, and `extra` zero columns on the right.
    monkeypatch.setattr(conv_module, "PARALLEL_PAD_FLOATS", parallel_from)
    real_empty = np.empty

    def stale(*args: Any, **kwargs: Any) -> np.ndarray:  # memory as malloc may hand it back: not zero
        out = real_empty(*args, **kwargs)
        out.fill(np.nan if out.dtype.kind == "f" else 7)
        return out

    monkeypatch.setattr(conv_module.np, "empty", stale)
    x = rng.standard_normal((2, 7, 10))
    xp = np.pad(x, ((0, 0), (padding[0],) * 2, (padding[1],) * 2))
    for extra in (0, 2):
        got = conv_module.padded_phases(x, padding, s_w, extra)
        wq = -(-xp.shape[2] // s_w) + extra
        assert got.shape == (s_w, 2, xp.shape[1], wq)
        for phase in range(s_w):
            cols = xp[:, :, phase::s_w]
            np.testing.assert_array_equal(got[phase, :, :, : cols.shape[2]], cols)
            assert not got[phase, :, :, cols.shape[2] :].any()
