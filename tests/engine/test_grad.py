"""conv2d_backward, weight_grad_contributions and loss_grad against finite differences,
the dense route and plain loops."""

from __future__ import annotations

import numpy as np
import pytest
from cases import Case, case_id, random_cases
from reference import conv2d_ref, pad_ref

import engine.conv as conv_module
import engine.grad as grad_module
from engine import (
    ACTIVATIONS,
    conv2d,
    conv2d_backward,
    dense_matrix,
    loss_grad,
    weight_grad_contributions,
)

GRAD_CASES = [
    Case(2, 3, 1, 7, 6, (3, 2), (2, 1), (1, 0), (1, 2)),
    Case(4, 2, 2, 6, 9, (2, 3), (1, 3), (2, 1), (2, 1)),
    Case(3, 3, 3, 5, 8, (1, 4), (3, 2), (0, 3), (1, 1)),
    Case(1, 1, 1, 9, 7, (4, 3), (2, 2), (1, 1), (1, 2)),
    Case(2, 4, 2, 8, 5, (3, 1), (4, 1), (3, 0), (1, 1)),
    Case(1, 2, 1, 5, 5, (5, 5), (1, 1), (0, 0), (1, 1)),  # 1x1 output
    Case(3, 1, 1, 4, 7, (2, 2), (3, 4), (1, 2), (3, 2)),
] + random_cases(12, seed=99, max_extra=4, one_output_every=6)


def _linear_loss(x: np.ndarray, wt: np.ndarray, b: np.ndarray, go: np.ndarray, case: Case) -> float:
    """L = sum(grad_out * conv2d(x)), so that dL/dy = grad_out."""
    return float(np.sum(go * conv2d(x, wt, b, **case.kwargs())))  # type: ignore[arg-type]


def _central_difference(f, a: np.ndarray, h: float = 1e-5) -> np.ndarray:  # type: ignore[no-untyped-def]
    grad = np.zeros_like(a)
    for i in np.ndindex(a.shape):
        old = a[i]
        a[i] = old + h
        up = f()
        a[i] = old - h
        down = f()
        a[i] = old
        grad[i] = (up - down) / (2 * h)
    return grad


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_id)
def test_backward_matches_finite_differences(case: Case) -> None:
    x, wt, b = case.arrays(seed=5)
    go = np.random.default_rng(6).standard_normal((case.j, *case.out_hw))
    gx, gw, gb = conv2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    assert gx.shape == x.shape and gw.shape == wt.shape and gb.shape == b.shape
    assert gx.dtype == gw.dtype == gb.dtype == np.float64

    def loss() -> float:
        return _linear_loss(x, wt, b, go, case)

    np.testing.assert_allclose(gx, _central_difference(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, _central_difference(loss, wt), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gb, _central_difference(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", GRAD_CASES, ids=case_id)
def test_grad_w_is_the_sum_over_tied_entries_of_the_dense_matrix(case: Case) -> None:
    x, wt, _ = case.arrays(seed=8)
    go = np.random.default_rng(9).standard_normal((case.j, *case.out_hw))
    gx, gw, _ = conv2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    dm = dense_matrix(x.shape, wt, **case.kwargs())  # type: ignore[arg-type]
    # y = M x, so dL/dM[r, k] = grad_out[r] * x[k]; a shared weight's gradient sums its entries.
    dl_dm = go.ravel()[dm.rows] * x.ravel()[dm.cols]
    by_weight = np.bincount(dm.tied, weights=dl_dm, minlength=wt.size).reshape(wt.shape)
    np.testing.assert_allclose(gw, by_weight, rtol=1e-10, atol=1e-10)
    # And dL/dx = M^T grad_out.
    np.testing.assert_allclose(gx.ravel(), dm.toarray().T @ go.ravel(), rtol=1e-10, atol=1e-10)


def _backward_ref(x: np.ndarray, wt: np.ndarray, go: np.ndarray, case: Case):  # type: ignore[no-untyped-def]
    """Plain-loop backward from the formula: every (j, m, n, c, u, v) term once."""
    (sh, sw), (ph, pw), (dh, dw) = case.stride, case.padding, case.dilation
    xp = pad_ref(x, ph, pw)
    gxp = np.zeros_like(xp)
    gw = np.zeros_like(wt)
    j_total, cg, kh, kw = wt.shape
    jg = j_total // case.groups
    for j in range(j_total):
        for m in range(go.shape[1]):
            for n in range(go.shape[2]):
                for c in range(cg):
                    ch = (j // jg) * cg + c
                    for u in range(kh):
                        for v in range(kw):
                            r, q = sh * m + dh * u, sw * n + dw * v
                            gw[j, c, u, v] += go[j, m, n] * xp[ch, r, q]
                            gxp[ch, r, q] += go[j, m, n] * wt[j, c, u, v]
    return gxp[:, ph : ph + x.shape[1], pw : pw + x.shape[2]], gw, go.sum(axis=(1, 2))


@pytest.mark.parametrize("strip_floats", [1, 50, 1 << 18])
@pytest.mark.parametrize("case", GRAD_CASES[:7], ids=case_id)
def test_backward_matches_loops_with_any_strip_size(monkeypatch: pytest.MonkeyPatch, case: Case,
                                                     strip_floats: int) -> None:
    # Small strips force many row bands (with overlapping halos) split across threads.
    monkeypatch.setattr(conv_module, "BACKWARD_STRIP_FLOATS", strip_floats)
    x, wt, _ = case.arrays(seed=12)
    go = np.random.default_rng(13).standard_normal((case.j, *case.out_hw))
    got = conv2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    for a, b in zip(got, _backward_ref(x, wt, go, case), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("strip_floats", [50, 1 << 20])
@pytest.mark.parametrize("case", GRAD_CASES, ids=case_id)
def test_backward_with_every_column_fold_matches_loops(monkeypatch: pytest.MonkeyPatch, case: Case,
                                                       strip_floats: int) -> None:
    # The backward pass follows the forward's ColumnPlan fold (shifted copies of grad_out);
    # every fold, up to more taps than a phase holds, gives the same three gradients.
    monkeypatch.setattr(conv_module, "BACKWARD_STRIP_FLOATS", strip_floats)
    x, wt, _ = case.arrays(seed=14)
    go = np.random.default_rng(15).standard_normal((case.j, *case.out_hw))
    expected = _backward_ref(x, wt, go, case)
    layer = conv_module.prepare(x, wt, **case.kwargs())  # type: ignore[arg-type]
    for fold in range(1, case.kernel[1] + 2):
        got = grad_module._backward(layer, go, fold)
        for a, b in zip(got, expected, strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=f"fold {fold}")
        # Without dL/dx (layer_gradient, step_losses): the same dW and db.
        weights_only = grad_module._weight_backward(layer, go, fold)
        for a, b in zip(weights_only, expected[1:], strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-10, err_msg=f"fold {fold}")


def test_backward_float32(rng: np.random.Generator) -> None:
    case = GRAD_CASES[1]
    x, wt, _ = case.arrays(seed=1)
    go = rng.standard_normal((case.j, *case.out_hw))
    got = conv2d_backward(x.astype(np.float32), wt.astype(np.float32), go, **case.kwargs())  # type: ignore[arg-type]
    for a, b in zip(got, _backward_ref(x, wt, go, case), strict=True):
        assert a.dtype == np.float32
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(b).max())))


def test_bias_gradient_counts_every_position() -> None:
    # A shared bias is used at all H_out * W_out positions: with dL/dy = 1 its gradient is that count.
    x = np.ones((1, 7, 9))
    wt = np.ones((2, 1, 2, 3))
    _, gw, gb = conv2d_backward(x, wt, np.ones((2, 2, 5)), stride=(3, 2), padding=(0, 1))
    np.testing.assert_array_equal(gb, [10.0, 10.0])
    # Each weight's gradient counts the positions where its tap reads a real (here: 1) pixel.
    np.testing.assert_array_equal(gw[0, 0], [[8, 10, 8], [8, 10, 8]])


# ---- weight_grad_contributions --------------------------------------------------------------

@pytest.mark.parametrize("case", GRAD_CASES[:7], ids=case_id)
def test_contributions_sum_to_grad_w_for_every_weight(case: Case) -> None:
    x, wt, _ = case.arrays(seed=21)
    go = np.random.default_rng(22).standard_normal((case.j, *case.out_hw))
    _, gw, _ = conv2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    (sh, sw), (ph, pw), (dh, dw) = case.stride, case.padding, case.dilation
    xp = pad_ref(x, ph, pw)
    jg = case.j // case.groups
    cg = case.c // case.groups
    for index in np.ndindex(wt.shape):
        contrib = weight_grad_contributions(x, go, index, case.kernel, **case.kwargs())  # type: ignore[arg-type]
        assert contrib.shape == case.out_hw
        j, c, u, v = index
        loop = np.zeros(case.out_hw)
        for m in range(case.out_hw[0]):
            for n in range(case.out_hw[1]):
                loop[m, n] = go[j, m, n] * xp[(j // jg) * cg + c, sh * m + dh * u, sw * n + dw * v]
        np.testing.assert_allclose(contrib, loop, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(contrib.sum(), gw[index], rtol=1e-10, atol=1e-10)


def test_contributions_are_zero_where_the_tap_reads_padding() -> None:
    x = np.ones((1, 4, 4))
    go = np.ones((1, 4, 4))
    # Tap (0, 0) of a 3x3 kernel with padding 1 reads padding in output row 0 and column 0.
    contrib = weight_grad_contributions(x, go, (0, 0, 0, 0), 3, padding=1)
    expected = np.ones((4, 4))
    expected[0, :] = 0
    expected[:, 0] = 0
    np.testing.assert_array_equal(contrib, expected)


# ---- loss_grad ------------------------------------------------------------------------------

@pytest.mark.parametrize("loss", ["sum", "mse"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_loss_grad_matches_finite_differences(activation: str, loss: str, rng: np.random.Generator) -> None:
    z = rng.standard_normal((2, 3, 4))
    z[np.abs(z) < 0.05] = 0.3  # keep away from relu's kink
    target = rng.standard_normal(z.shape) if loss == "mse" else None
    value, grad = loss_grad(z, activation, loss, target)
    assert grad.shape == z.shape

    def f() -> float:
        return loss_grad(z, activation, loss, target)[0]

    np.testing.assert_allclose(grad, _central_difference(f, z, 1e-6), rtol=1e-6, atol=1e-9)
    y = {"none": z, "relu": np.maximum(z, 0), "sigmoid": 1 / (1 + np.exp(-z)), "tanh": np.tanh(z)}[activation]
    expected = y.sum() if loss == "sum" else np.mean((y - target) ** 2)
    assert value == pytest.approx(expected, rel=1e-12)


def test_loss_grad_through_the_layer(rng: np.random.Generator) -> None:
    # The whole chain: L(σ(conv2d(x))) differentiated by loss_grad then conv2d_backward.
    case = GRAD_CASES[0]
    x, wt, b = case.arrays(seed=31)
    target = rng.standard_normal((case.j, *case.out_hw))

    def f() -> float:
        return loss_grad(conv2d(x, wt, b, **case.kwargs()), "tanh", "mse", target)[0]  # type: ignore[arg-type]

    _, dz = loss_grad(conv2d(x, wt, b, **case.kwargs()), "tanh", "mse", target)  # type: ignore[arg-type]
    gx, gw, gb = conv2d_backward(x, wt, dz, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_allclose(gw, _central_difference(f, wt), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gx, _central_difference(f, x), rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(gb, _central_difference(f, b), rtol=1e-6, atol=1e-9)


def test_conv2d_ref_agrees_with_backward_ref_on_a_linear_loss(rng: np.random.Generator) -> None:
    # The loop references check each other: <grad_out, conv(x)> = <grad_x, x> for a linear map.
    case = GRAD_CASES[2]
    x, wt, _ = case.arrays(seed=41)
    go = rng.standard_normal((case.j, *case.out_hw))
    y = conv2d_ref(x, wt, None, **case.kwargs())  # type: ignore[arg-type]
    gx, gw, _ = _backward_ref(x, wt, go, case)
    assert np.sum(go * y) == pytest.approx(np.sum(gx * x), rel=1e-12)
    assert np.sum(go * y) == pytest.approx(np.sum(gw * wt), rel=1e-12)


# ---- errors ---------------------------------------------------------------------------------

X = np.ones((2, 6, 7))
W = np.ones((3, 2, 3, 2))
GO = np.ones((3, 4, 6))


def test_backward_accepts_the_right_grad_out() -> None:
    gx, gw, gb = conv2d_backward(X, W, GO)
    assert gx.shape == X.shape and gw.shape == W.shape and gb.shape == (3,)


def test_grad_out_wrong_shape() -> None:
    with pytest.raises(ValueError, match="`grad_out`"):
        conv2d_backward(X, W, np.ones((3, 6, 4)))


def test_grad_out_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`grad_out`"):
        conv2d_backward(X, W, np.ones((4, 6)))


def test_grad_out_nan() -> None:
    go = GO.copy()
    go[1, 2, 3] = np.nan
    with pytest.raises(ValueError, match="`grad_out`"):
        conv2d_backward(X, W, go)


def test_grad_out_inf() -> None:
    go = GO.copy()
    go[0, 0, 0] = np.inf
    with pytest.raises(ValueError, match="`grad_out`"):
        conv2d_backward(X, W, go)


def test_backward_nan_in_x() -> None:
    x = X.copy()
    x[0, 1, 1] = np.nan
    with pytest.raises(ValueError, match="`x`"):
        conv2d_backward(x, W, GO)


def test_backward_inf_in_weight() -> None:
    w = W.copy()
    w[0, 0, 0, 0] = -np.inf
    with pytest.raises(ValueError, match="`weight`"):
        conv2d_backward(X, w, GO)


def test_backward_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        conv2d_backward(X, W, GO, stride=(0, 1))


def test_backward_padding_negative() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        conv2d_backward(X, W, GO, padding=-1)


def test_backward_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="`dilation`"):
        conv2d_backward(X, W, GO, dilation=0)


def test_backward_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        conv2d_backward(np.ones((3, 6, 7)), W, GO)


def test_backward_groups_not_dividing() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        conv2d_backward(X, W, GO, groups=2)


def test_backward_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        conv2d_backward(np.ones((2, 2, 7)), W, GO)


def test_contributions_index_wrong_length() -> None:
    with pytest.raises(ValueError, match="`index`"):
        weight_grad_contributions(X, GO, (0, 0, 0), (3, 2))


def test_contributions_index_j_out_of_range() -> None:
    with pytest.raises(ValueError, match="`index`"):
        weight_grad_contributions(X, GO, (3, 0, 0, 0), (3, 2))


def test_contributions_index_c_out_of_range() -> None:
    with pytest.raises(ValueError, match="`index`"):
        weight_grad_contributions(X, GO, (0, 2, 0, 0), (3, 2))


def test_contributions_index_u_negative() -> None:
    with pytest.raises(ValueError, match="`index`"):
        weight_grad_contributions(X, GO, (0, 0, -1, 0), (3, 2))


def test_contributions_index_v_out_of_range() -> None:
    with pytest.raises(ValueError, match="`index`"):
        weight_grad_contributions(X, GO, (0, 0, 0, 2), (3, 2))


def test_contributions_grad_out_wrong_shape() -> None:
    with pytest.raises(ValueError, match="`grad_out`"):
        weight_grad_contributions(X, GO[:, :3], (0, 0, 0, 0), (3, 2))


def test_contributions_grad_out_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`grad_out`"):
        weight_grad_contributions(X, GO[0], (0, 0, 0, 0), (3, 2))


def test_contributions_grad_out_nan() -> None:
    go = GO.copy()
    go[2, 3, 5] = np.nan
    with pytest.raises(ValueError, match="`grad_out`"):
        weight_grad_contributions(X, go, (0, 0, 0, 0), (3, 2))


def test_contributions_x_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`x`"):
        weight_grad_contributions(X[0], GO, (0, 0, 0, 0), (3, 2))


def test_contributions_x_nan() -> None:
    x = X.copy()
    x[0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="`x`"):
        weight_grad_contributions(x, GO, (0, 0, 0, 0), (3, 2))


def test_contributions_groups_not_dividing() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        weight_grad_contributions(np.ones((3, 6, 7)), GO, (0, 0, 0, 0), (3, 2), groups=2)


def test_contributions_kernel_size_below_one() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        weight_grad_contributions(X, GO, (0, 0, 0, 0), (0, 2))


def test_contributions_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        weight_grad_contributions(X, GO, (0, 0, 0, 0), (3, 2), stride=0)


def test_loss_grad_unknown_loss() -> None:
    with pytest.raises(ValueError, match="`loss`"):
        loss_grad(np.zeros((1, 2, 2)), "none", "l1")


def test_loss_grad_unknown_activation() -> None:
    with pytest.raises(ValueError, match="`activation`"):
        loss_grad(np.zeros((1, 2, 2)), "swish", "sum")


def test_loss_grad_mse_needs_target() -> None:
    with pytest.raises(ValueError, match="`target`"):
        loss_grad(np.zeros((1, 2, 2)), "none", "mse")


def test_loss_grad_target_wrong_shape() -> None:
    with pytest.raises(ValueError, match="`target`"):
        loss_grad(np.zeros((1, 2, 2)), "relu", "mse", np.zeros((1, 2, 3)))


def test_contributions_index_not_a_sequence() -> None:
    with pytest.raises((ValueError, TypeError), match="`index`"):
        weight_grad_contributions(X, GO, 5, (3, 2))  # type: ignore[arg-type]


def test_contributions_index_not_integers() -> None:
    # (0, 0, 0.9, 0) must not be read silently as tap (0, 0, 0, 0).
    with pytest.raises((ValueError, TypeError), match="`index`"):
        weight_grad_contributions(X, GO, (0, 0, 0.9, 0), (3, 2))  # type: ignore[arg-type]


def test_contributions_accept_numpy_integers() -> None:
    # conv2d accepts groups=np.int64(2); its gradient view must too.
    x, go = np.ones((2, 6, 7)), np.ones((2, 4, 5))
    got = weight_grad_contributions(x, go, (np.int64(1), 0, 2, 2), 3, groups=np.int64(2))  # type: ignore[arg-type]
    np.testing.assert_array_equal(got, np.ones((4, 5)))
