"""The untied (locally connected) layer against a plain loop, finite differences and conv2d;
a shared weight's gradient is the sum of its untied twin's per-position gradients."""

from __future__ import annotations

import numpy as np
import pytest
from cases import Case, case_id, random_cases
from reference import conv2d_ref, untied_conv2d_ref

from engine import (
    ArgumentError,
    ConvSpec,
    conv2d,
    conv2d_backward,
    shared_and_untied_grads,
    tie,
    untied_bytes,
    untied_conv2d,
    untied_conv2d_backward,
    weight_grad_contributions,
)

# Non-square kernels, unequal strides, padding and dilation, groups, 1x1 outputs (STYLE.md).
CASES = [
    Case(2, 3, 1, 7, 6, (3, 2), (2, 1), (1, 0), (1, 2)),
    Case(4, 2, 2, 6, 9, (2, 3), (1, 3), (2, 1), (2, 1)),
    Case(3, 3, 3, 5, 8, (1, 4), (3, 2), (0, 3), (1, 1)),
    Case(1, 1, 1, 9, 7, (4, 3), (2, 2), (1, 1), (1, 2)),
    Case(1, 2, 1, 5, 5, (5, 5), (1, 1), (0, 0), (1, 1)),  # 1x1 output
] + random_cases(8, seed=123, max_extra=4, one_output_every=4)

# Small enough for a finite difference per untied weight.
FD_CASES = [
    Case(2, 2, 2, 5, 4, (2, 3), (2, 1), (1, 1), (1, 1)),
    Case(1, 2, 1, 4, 6, (3, 2), (1, 2), (1, 0), (1, 2)),
    Case(3, 1, 1, 5, 5, (1, 2), (2, 3), (0, 1), (2, 1)),
]


def _untied_arrays(case: Case, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, untied weight, per-position bias) in float64."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((case.c, case.h, case.w))
    wt = rng.standard_normal((*case.out_hw, *case.weight_shape))
    b = rng.standard_normal((*case.out_hw, case.j))
    return x, wt, b


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_untied_conv2d_matches_the_plain_loop(case: Case) -> None:
    x, wt, b = _untied_arrays(case, seed=1)
    y = untied_conv2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    assert y.shape == (case.j, *case.out_hw) and y.dtype == np.float64
    np.testing.assert_allclose(y, untied_conv2d_ref(x, wt, b, **case.kwargs()), rtol=1e-12, atol=1e-12)  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES[:4], ids=case_id)
def test_a_shared_bias_is_added_at_every_position(case: Case) -> None:
    x, wt, _ = _untied_arrays(case, seed=2)
    b = np.arange(1.0, case.j + 1)
    per_position = np.broadcast_to(b, (*case.out_hw, case.j))
    np.testing.assert_array_equal(untied_conv2d(x, wt, b, **case.kwargs()),  # type: ignore[arg-type]
                                  untied_conv2d(x, wt, per_position, **case.kwargs()))  # type: ignore[arg-type]


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_tied_weights_give_conv2d_exactly(case: Case) -> None:
    # Small integers: every product and sum is exact in float64, whatever the order of the sums.
    rng = np.random.default_rng(3)
    x = rng.integers(-4, 5, (case.c, case.h, case.w)).astype(np.float64)
    wt = rng.integers(-4, 5, case.weight_shape).astype(np.float64)
    b = rng.integers(-4, 5, case.j).astype(np.float64)
    tied = tie(wt, case.out_hw)
    y = untied_conv2d(x, tied, b, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_array_equal(y, conv2d(x, wt, b, **case.kwargs()))  # type: ignore[arg-type]
    np.testing.assert_array_equal(y, conv2d_ref(x, wt, b, **case.kwargs()))  # type: ignore[arg-type]
    # And on real-valued data, to rounding.
    xr, wr, br = case.arrays(seed=4)
    np.testing.assert_allclose(untied_conv2d(xr, tie(wr, case.out_hw), br, **case.kwargs()),  # type: ignore[arg-type]
                               conv2d(xr, wr, br, **case.kwargs()), rtol=1e-12, atol=1e-12)  # type: ignore[arg-type]


def test_tie_is_a_read_only_view() -> None:
    w = np.ones((2, 1, 3, 2))
    tied = tie(w, (4, 5))
    assert tied.shape == (4, 5, 2, 1, 3, 2)
    assert np.shares_memory(tied, w) and not tied.flags.writeable


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


@pytest.mark.parametrize("case", FD_CASES, ids=case_id)
def test_backward_matches_finite_differences(case: Case) -> None:
    x, wt, b = _untied_arrays(case, seed=5)
    go = np.random.default_rng(6).standard_normal((case.j, *case.out_hw))
    gx, gw, gb = untied_conv2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    assert gx.shape == x.shape and gw.shape == wt.shape and gb.shape == b.shape

    def loss() -> float:  # L = sum(grad_out * y), so that dL/dy = grad_out
        return float(np.sum(go * untied_conv2d(x, wt, b, **case.kwargs())))  # type: ignore[arg-type]

    np.testing.assert_allclose(gx, _central_difference(loss, x), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gw, _central_difference(loss, wt), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(gb, _central_difference(loss, b), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_backward_to_x_matches_conv2d_backward_when_tied(case: Case) -> None:
    x, wt, _ = case.arrays(seed=7)
    go = np.random.default_rng(8).standard_normal((case.j, *case.out_hw))
    gx, _, _ = untied_conv2d_backward(x, tie(wt, case.out_hw), go, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_allclose(gx, conv2d_backward(x, wt, go, **case.kwargs())[0],  # type: ignore[arg-type]
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_the_shared_gradient_is_the_sum_of_the_untied_ones(case: Case) -> None:
    x, wt, _ = case.arrays(seed=9)
    go = np.random.default_rng(10).standard_normal((case.j, *case.out_hw))
    grads = shared_and_untied_grads(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    assert grads.untied_grad_w.shape == (*case.out_hw, *case.weight_shape)
    assert grads.untied_grad_b.shape == (*case.out_hw, case.j)
    tol = {"rtol": 1e-10, "atol": 1e-10}
    np.testing.assert_allclose(grads.untied_grad_w.sum(axis=(0, 1)), grads.shared_grad_w, **tol)
    np.testing.assert_allclose(grads.untied_grad_b.sum(axis=(0, 1)), grads.shared_grad_b, **tol)
    np.testing.assert_allclose(grads.grad_x, conv2d_backward(x, wt, go, **case.kwargs())[0],  # type: ignore[arg-type]
                               rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES[:5], ids=case_id)
def test_an_untied_gradient_is_its_positions_one_contribution(case: Case) -> None:
    x, wt, _ = case.arrays(seed=11)
    go = np.random.default_rng(12).standard_normal((case.j, *case.out_hw))
    grads = shared_and_untied_grads(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    last = (case.j - 1, case.c // case.groups - 1, case.kernel[0] - 1, case.kernel[1] - 1)
    for index in [(0, 0, 0, 0), last]:
        pieces = weight_grad_contributions(x, go, index, case.kernel, **case.kwargs())  # type: ignore[arg-type]
        np.testing.assert_array_equal(grads.untied_grad_w[(slice(None), slice(None), *index)], pieces)


def test_a_spec_gives_the_same_answer_as_the_separate_arguments() -> None:
    case = CASES[0]
    spec = ConvSpec.make(case.kernel, case.stride, case.padding, case.dilation)
    x, wt, b = _untied_arrays(case, seed=13)
    go = np.random.default_rng(14).standard_normal((case.j, *case.out_hw))
    np.testing.assert_array_equal(untied_conv2d(x, wt, b, spec=spec),
                                  untied_conv2d(x, wt, b, **case.kwargs()))  # type: ignore[arg-type]
    for a, c in zip(untied_conv2d_backward(x, wt, go, spec=spec),
                    untied_conv2d_backward(x, wt, go, **case.kwargs()), strict=True):  # type: ignore[arg-type]
        np.testing.assert_array_equal(a, c)


def test_float32_in_float32_out() -> None:
    case = CASES[1]
    x, wt, b = (a.astype(np.float32) for a in _untied_arrays(case, seed=15))
    y = untied_conv2d(x, wt, b, **case.kwargs())  # type: ignore[arg-type]
    assert y.dtype == np.float32
    np.testing.assert_allclose(y, untied_conv2d_ref(x, wt, b, **case.kwargs()), rtol=1e-4, atol=1e-4)  # type: ignore[arg-type]
    go = np.ones((case.j, *case.out_hw), dtype=np.float32)
    assert all(g.dtype == np.float32 for g in untied_conv2d_backward(x, wt, go, **case.kwargs()))  # type: ignore[arg-type]


def test_many_bands_give_the_same_answer(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.untied as untied_module

    case = Case(2, 2, 1, 11, 9, (3, 2), (1, 2), (1, 1), (2, 1))
    x, wt, b = _untied_arrays(case, seed=16)
    go = np.random.default_rng(17).standard_normal((case.j, *case.out_hw))
    whole = untied_conv2d(x, wt, b, **case.kwargs()), untied_conv2d_backward(x, wt, go, **case.kwargs())  # type: ignore[arg-type]
    monkeypatch.setattr(untied_module, "BAND_FLOATS", 1)  # one output row per band
    assert len(untied_module.bands(case.out_hw, 12)) == case.out_hw[0]
    np.testing.assert_allclose(untied_conv2d(x, wt, b, **case.kwargs()), whole[0], rtol=1e-13)  # type: ignore[arg-type]
    for a, c in zip(untied_conv2d_backward(x, wt, go, **case.kwargs()), whole[1], strict=True):  # type: ignore[arg-type]
        np.testing.assert_allclose(a, c, rtol=1e-13, atol=1e-13)


def test_untied_bytes_costs_the_weights_from_shapes() -> None:
    # The 512x512 gray image with eight 3x3 kernels of the issue: 512 * 512 * 8 * 9 floats.
    assert untied_bytes((1, 512, 512), (8, 1, 3, 3), padding=1, with_bias=False) == 512 * 512 * 8 * 9 * 4
    assert untied_bytes((1, 512, 512), (8, 1, 3, 3), padding=1) == 512 * 512 * 8 * 10 * 4
    case = CASES[1]
    _, wt, b = _untied_arrays(case, seed=18)
    spec = ConvSpec.make(case.kernel, case.stride, case.padding, case.dilation)
    got = untied_bytes((case.c, case.h, case.w), case.weight_shape, groups=case.groups, spec=spec, itemsize=8)
    assert got == wt.nbytes + b.nbytes


def test_untied_bytes_refuses_a_bad_itemsize() -> None:
    with pytest.raises(ArgumentError, match="`itemsize`") as info:
        untied_bytes((1, 8, 8), (1, 1, 3, 3), itemsize=2)
    assert info.value.argument == "itemsize"


def _expect(argument: str, fn, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ArgumentError, match=f"`{argument}`") as info:
        fn(*args, **kwargs)
    assert info.value.argument == argument


def test_weight_must_have_six_dimensions() -> None:
    _expect("weight", untied_conv2d, np.ones((1, 5, 5)), np.ones((1, 1, 3, 3)))


def test_weight_must_have_a_kernel_per_output_position() -> None:
    _expect("weight", untied_conv2d, np.ones((1, 5, 5)), np.ones((4, 3, 1, 1, 3, 3)))


def test_weight_channels_must_match_the_input() -> None:
    _expect("weight", untied_conv2d, np.ones((2, 5, 5)), np.ones((3, 3, 1, 1, 3, 3)))


def test_groups_must_divide_channels_and_kernels() -> None:
    _expect("groups", untied_conv2d, np.ones((2, 5, 5)), np.ones((3, 3, 3, 1, 3, 3)), groups=2)


def test_bias_must_be_shared_or_per_position() -> None:
    _expect("bias", untied_conv2d, np.ones((1, 5, 5)), np.ones((3, 3, 2, 1, 3, 3)), np.ones((3, 3)))
    _expect("bias", untied_conv2d, np.ones((1, 5, 5)), np.ones((3, 3, 2, 1, 3, 3)), np.ones(3))


def test_grad_out_must_have_the_output_shape() -> None:
    _expect("grad_out", untied_conv2d_backward, np.ones((1, 5, 5)), np.ones((3, 3, 1, 1, 3, 3)),
            np.ones((1, 3, 4)))


def test_spec_and_separate_arguments_are_not_both_given() -> None:
    _expect("spec", untied_conv2d, np.ones((1, 5, 5)), np.ones((2, 2, 1, 1, 3, 3)),
            stride=2, spec=ConvSpec.make(3, 2))


def test_spec_kernel_size_must_match_the_weight() -> None:
    _expect("spec", untied_conv2d, np.ones((1, 5, 5)), np.ones((3, 3, 1, 1, 3, 3)), spec=ConvSpec.make(2))


def test_tie_needs_a_positive_out_hw() -> None:
    _expect("out_hw", tie, np.ones((1, 1, 3, 3)), (0, 3))
    _expect("out_hw", tie, np.ones((1, 1, 3, 3)), (3,))
