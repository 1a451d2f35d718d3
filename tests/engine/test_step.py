"""step_losses: one step w ← w − lr·g on a conv layer and on its untied twin, against a plain-loop
reference whose gradients come from finite differences; the identities that tie the two; its cost."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from cases import Case, case_id
from reference import central_difference, conv2d_ref, out_size, pad_ref, untied_conv2d_ref

import engine.untied
from engine import ArgumentError, ArgumentTypeError, ConvSpec, step_cost, step_losses

# RGB and gray, non-square kernels, unequal strides, padding, dilation, groups (STYLE.md); small
# enough for a finite difference per untied weight.
CASES = [
    Case(3, 2, 1, 5, 7, (2, 3), (2, 1), (1, 0), (1, 2)),  # RGB
    Case(1, 2, 1, 6, 5, (3, 2), (1, 2), (1, 1), (2, 1)),  # gray
    Case(4, 2, 2, 5, 4, (1, 2), (2, 3), (0, 1), (1, 1)),  # two groups
]
ACTIVATIONS = {"sum": "none", "mse": "tanh", "unit": "sigmoid"}
LR = 0.05


def _spec(case: Case) -> ConvSpec:
    return ConvSpec.make(case.kernel, case.stride, case.padding, case.dilation)


def _loss_ref(z: np.ndarray, loss: str, activation: str, target: np.ndarray, unit: tuple[int, int, int]
              ) -> float:
    """L of the pre-activation z, written from the formula."""
    y = {"none": z, "tanh": np.tanh(z), "sigmoid": 1 / (1 + np.exp(-z))}[activation]
    if loss == "sum":
        return float(y.sum())
    if loss == "mse":
        return float(np.mean((y - target) ** 2))
    return float(y[unit])


@pytest.mark.parametrize("loss", ["sum", "mse", "unit"])
@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_both_steps_match_a_plain_loop_layer_and_finite_differences(case: Case, loss: str) -> None:
    x, wt, b = case.arrays(7)
    activation = ACTIVATIONS[loss]
    kw = case.kwargs()
    h_out, w_out = case.out_hw
    target_weight = wt[::-1] * 0.5 + 0.1
    zt = conv2d_ref(x, target_weight, b, **kw)  # type: ignore[arg-type]
    target = {"none": zt, "tanh": np.tanh(zt), "sigmoid": 1 / (1 + np.exp(-zt))}[activation]
    unit = (case.j - 1, h_out // 2, w_out - 1)

    def shared_loss(k: np.ndarray) -> float:
        return _loss_ref(conv2d_ref(x, k, b, **kw), loss, activation, target, unit)  # type: ignore[arg-type]

    # The untied layer: its own kernel at every position, all starting as copies of the shared one.
    copies = np.broadcast_to(wt, (h_out, w_out, *wt.shape)).copy()
    per_position_bias = np.broadcast_to(b, (h_out, w_out, case.j))

    def untied_loss(w6: np.ndarray) -> float:
        z = untied_conv2d_ref(x, w6, per_position_bias, **kw)  # type: ignore[arg-type]
        return _loss_ref(z, loss, activation, target, unit)

    k = wt.copy()
    grad = central_difference(lambda: shared_loss(k), k)
    per_position = central_difference(lambda: untied_loss(copies), copies)
    np.testing.assert_allclose(per_position.sum(axis=(0, 1)), grad, rtol=1e-5, atol=1e-8)
    expected = (shared_loss(wt), shared_loss(wt - LR * grad), untied_loss(copies - LR * per_position))

    got = step_losses(x, wt, b, LR, spec=_spec(case), groups=case.groups, activation=activation, loss=loss,
                      target_weight=target_weight, unit=unit)
    np.testing.assert_allclose((got.loss_before, got.shared_loss_after, got.untied_loss_after), expected,
                               rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(got.weight_after, wt - LR * grad, rtol=1e-6, atol=1e-8)
    assert got.positions == h_out * w_out and got.lr == LR


@pytest.mark.parametrize("loss", ["sum", "mse", "unit"])
def test_with_one_output_position_the_two_steps_are_one(loss: str) -> None:
    # M = 1: the shared weight's sum has one term, which is the untied copy's own contribution.
    case = Case(3, 2, 1, 4, 5, (3, 2), (2, 3), (0, 0), (1, 3))
    assert case.out_hw == (1, 1)
    x, wt, b = case.arrays(3)
    got = step_losses(x, wt, b, 0.1, spec=_spec(case), activation="tanh", loss=loss,
                      target_weight=-wt, unit=(1, 0, 0))
    assert got.positions == 1
    assert got.shared_loss_after == pytest.approx(got.untied_loss_after, rel=1e-12, abs=1e-12)
    assert got.shared_loss_after != pytest.approx(got.loss_before, rel=1e-9)


def test_one_unit_loss_moves_both_layers_alike() -> None:
    # L = y[j, m, n]: only position (m, n) has a contribution, so the shared step is that copy's step.
    case = CASES[0]
    x, wt, b = case.arrays(5)
    got = step_losses(x, wt, b, 0.2, spec=_spec(case), activation="tanh", loss="unit", unit=(0, 1, 2))
    assert got.shared_loss_after == pytest.approx(got.untied_loss_after, rel=1e-12)


def _windows(x: np.ndarray, case: Case) -> np.ndarray:
    """(H_out, W_out, C, kh, kw): the padded pixels each position's taps read, by plain loops."""
    (sh, sw), (ph, pw), (dh, dw), (kh, kw) = case.stride, case.padding, case.dilation, case.kernel
    xp = pad_ref(x, ph, pw)
    h_out, w_out = out_size(x.shape[1], kh, sh, ph, dh), out_size(x.shape[2], kw, sw, pw, dw)
    win = np.zeros((h_out, w_out, x.shape[0], kh, kw))
    for m in range(h_out):
        for n in range(w_out):
            for c in range(x.shape[0]):
                for u in range(kh):
                    for v in range(kw):
                        win[m, n, c, u, v] = xp[c, sh * m + dh * u, sw * n + dw * v]
    return win


def test_sum_loss_without_activation_by_hand() -> None:
    # L = Σ_j Σ_p (K_j · x_p + b_j) is linear in the weights, with x_p the window at position p.
    # Its gradient is g_p = x_p at each position, for every kernel j: dL/dK_j = Σ_p x_p = S.
    #   shared: K_j' = K_j − lr·S,   so  L' = L − lr · Σ_j S·S     = L − lr · J · |S|²
    #   untied: K_jp' = K_j − lr·x_p, so  L' = L − lr · Σ_j Σ_p x_p·x_p = L − lr · J · Σ_p |x_p|²
    # The shared drop over the untied one is |Σ_p x_p|² / Σ_p |x_p|², between 1 (no two windows
    # overlap in sign) and M (all windows equal); for pixels in [0, 1] it is at least 1, because
    # every cross term x_p·x_q is >= 0: the shared layer, summing, moves further.
    case = Case(3, 2, 1, 7, 6, (3, 2), (2, 1), (1, 2), (2, 1))
    rng = np.random.default_rng(11)
    x = rng.random((case.c, case.h, case.w))
    wt = rng.standard_normal(case.weight_shape)
    b = np.array([0.3, -0.1])
    win = _windows(x, case)
    m = win.shape[0] * win.shape[1]
    s = win.sum(axis=(0, 1))
    before = float(sum((wt[j] * win).sum() + m * b[j] for j in range(case.j)))
    shared = before - LR * case.j * float((s * s).sum())
    untied = before - LR * case.j * float((win * win).sum())
    got = step_losses(x, wt, b, LR, spec=_spec(case), loss="sum")
    assert (got.loss_before, got.shared_loss_after, got.untied_loss_after) == pytest.approx(
        (before, shared, untied), rel=1e-10)
    ratio = (got.loss_before - got.shared_loss_after) / (got.loss_before - got.untied_loss_after)
    assert 1 <= ratio <= m


def test_the_untied_step_band_by_band_equals_one_band(monkeypatch: pytest.MonkeyPatch) -> None:
    case = Case(3, 4, 1, 30, 23, (3, 5), (1, 2), (2, 1), (2, 1))
    x, wt, b = case.arrays(9)
    x32, w32 = x.astype(np.float32), wt.astype(np.float32)
    kwargs = {"spec": _spec(case), "activation": "relu", "loss": "mse", "target_weight": w32[::-1]}
    whole = step_losses(x32, w32, b, 0.01, **kwargs)  # type: ignore[arg-type]
    monkeypatch.setattr(engine.untied, "BAND_FLOATS", 64)  # one output row per band
    banded = step_losses(x32, w32, b, 0.01, **kwargs)  # type: ignore[arg-type]
    assert banded.untied_loss_after == pytest.approx(whole.untied_loss_after, rel=1e-6)
    assert whole.untied_loss_after != whole.shared_loss_after


@pytest.mark.parametrize("lr", [0, -0.5])
def test_lr_must_be_positive(lr: float) -> None:
    x, wt, b = CASES[0].arrays(1)
    with pytest.raises(ArgumentError, match="`lr`") as err:
        step_losses(x, wt, b, lr, spec=_spec(CASES[0]))
    assert err.value.argument == "lr"


@pytest.mark.parametrize("lr", [float("nan"), float("inf")])
def test_lr_must_be_finite(lr: float) -> None:
    x, wt, b = CASES[0].arrays(1)
    with pytest.raises(ArgumentError, match="`lr`") as err:
        step_losses(x, wt, b, lr, spec=_spec(CASES[0]))
    assert err.value.argument == "lr"


@pytest.mark.parametrize("lr", [True, "0.1", None])
def test_lr_must_be_a_number(lr: object) -> None:
    x, wt, b = CASES[0].arrays(1)
    with pytest.raises(ArgumentTypeError, match="`lr`") as err:
        step_losses(x, wt, b, lr, spec=_spec(CASES[0]))  # type: ignore[arg-type]
    assert err.value.argument == "lr"


def test_mse_needs_its_target_weight() -> None:
    x, wt, b = CASES[0].arrays(1)
    with pytest.raises(ArgumentError) as err:
        step_losses(x, wt, b, 0.1, spec=_spec(CASES[0]), loss="mse")
    assert err.value.argument == "target_weight"


@pytest.mark.parametrize(("shape", "weight", "spec"), [
    ((3, 120, 130), (4, 3, 5, 5), ConvSpec.make(5, 1, 2, 1)),
    ((3, 64, 220), (8, 3, 15, 15), ConvSpec.make(15, (1, 1), 7, 1)),  # one row of copies > a band
    ((1, 200, 90), (2, 1, 3, 7), ConvSpec.make((3, 7), (2, 1), (1, 3), (2, 1))),
], ids=["rgb-5x5", "rgb-15x15", "gray-3x7"])
def test_step_cost_bounds_the_memory_it_holds(shape: tuple[int, int, int], weight: tuple[int, ...],
                                              spec: ConvSpec) -> None:
    rng = np.random.default_rng(0)
    x = rng.random(shape, dtype=np.float32)
    wt = (rng.standard_normal(weight) * 0.1).astype(np.float32)
    cost = step_cost(shape, weight, spec, with_target=True)
    tracemalloc.start()
    try:
        step_losses(x, wt, None, 0.01, spec=spec, loss="mse", target_weight=wt[::-1].copy())
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak <= cost.peak_bytes, (peak, cost.peak_bytes)
    h_out, w_out = spec.output_shape(shape[1:])
    forward = weight[0] * h_out * w_out * weight[1] * weight[2] * weight[3]
    assert cost.multiply_adds == 7 * forward
