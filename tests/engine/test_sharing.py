"""dense_matrix, parameter_counts, weight_usage and coverage against brute force."""

from __future__ import annotations

import numpy as np
import pytest
from cases import Case, case_id, random_cases
from reference import conv2d_ref

from engine import (
    MAX_DENSE_ENTRIES,
    conv2d,
    coverage,
    dense_matrix,
    parameter_counts,
    weight_usage,
)

DENSE_CASES = [
    Case(2, 3, 1, 5, 6, (3, 2), (2, 1), (1, 0), (1, 2)),
    Case(4, 2, 2, 6, 5, (2, 3), (1, 3), (2, 1), (2, 1)),
    Case(3, 3, 3, 4, 7, (1, 4), (3, 2), (0, 3), (1, 1)),
    Case(1, 1, 1, 10, 4, (2, 1), (3, 2), (0, 1), (1, 1)),  # stride > kernel
    Case(2, 2, 1, 5, 5, (5, 5), (1, 1), (0, 0), (1, 1)),  # 1x1 output
] + random_cases(15, seed=23, max_extra=4, one_output_every=5)


@pytest.mark.parametrize("case", DENSE_CASES, ids=case_id)
def test_dense_matrix_reproduces_conv2d(case: Case) -> None:
    x, wt, _ = case.arrays(seed=2)
    dm = dense_matrix(x.shape, wt, **case.kwargs())  # type: ignore[arg-type]
    j, h_out, w_out = dm.output_shape
    assert dm.shape == (j * h_out * w_out, x.size)
    assert dm.output_shape == (case.j, *case.out_hw)
    assert dm.weight_shape == wt.shape
    m = dm.toarray()
    assert m.shape == dm.shape
    np.testing.assert_allclose(m @ x.ravel(), conv2d_ref(x, wt, None, **case.kwargs()).ravel(),  # type: ignore[arg-type]
                               rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(m @ x.ravel(), conv2d(x, wt, **case.kwargs()).ravel(),  # type: ignore[arg-type]
                               rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("case", DENSE_CASES, ids=case_id)
def test_dense_matrix_columns_are_responses_to_single_pixels(case: Case) -> None:
    # Brute force: column k of M is conv2d of the k-th basis image, so M is fully determined.
    _, wt, _ = case.arrays(seed=4)
    shape = (case.c, case.h, case.w)
    dm = dense_matrix(shape, wt, **case.kwargs())  # type: ignore[arg-type]
    probe = np.zeros(dm.shape)
    e = np.zeros(shape)
    for k in range(e.size):
        e.flat[k] = 1.0
        probe[:, k] = conv2d(e, wt, **case.kwargs()).ravel()  # type: ignore[arg-type]
        e.flat[k] = 0.0
    np.testing.assert_array_equal(dm.toarray(), probe)


@pytest.mark.parametrize("case", DENSE_CASES, ids=case_id)
def test_every_non_zero_is_the_weight_it_is_tied_to(case: Case) -> None:
    _, wt, _ = case.arrays(seed=6)
    dm = dense_matrix((case.c, case.h, case.w), wt, **case.kwargs())  # type: ignore[arg-type]
    np.testing.assert_array_equal(dm.values, wt.ravel()[dm.tied])
    m = dm.toarray()
    np.testing.assert_array_equal(m[dm.rows, dm.cols], wt.ravel()[dm.tied])
    # No entry twice, and nothing outside the triplets (random weights are never exactly 0).
    assert len(set(zip(dm.rows.tolist(), dm.cols.tolist(), strict=True))) == dm.nnz
    assert np.count_nonzero(m) == dm.nnz
    assert dm.density == dm.nnz / m.size
    # The triplets from the formula, one loop per index.
    (sh, sw), (ph, pw), (dh, dw) = case.stride, case.padding, case.dilation
    j_total, cg, kh, kw = wt.shape
    h_out, w_out = case.out_hw
    jg = j_total // case.groups
    expected = set()
    for j in range(j_total):
        for mm in range(h_out):
            for n in range(w_out):
                for c in range(cg):
                    for u in range(kh):
                        for v in range(kw):
                            r, q = sh * mm + dh * u - ph, sw * n + dw * v - pw
                            if 0 <= r < case.h and 0 <= q < case.w:
                                ch = (j // jg) * cg + c
                                expected.add((
                                    (j * h_out + mm) * w_out + n,
                                    (ch * case.h + r) * case.w + q,
                                    ((j * cg + c) * kh + u) * kw + v,
                                ))
    got = set(zip(dm.rows.tolist(), dm.cols.tolist(), dm.tied.tolist(), strict=True))
    assert got == expected
    # Sorted by row, then column.
    assert np.all(np.diff(dm.rows * dm.shape[1] + dm.cols) > 0)


@pytest.mark.parametrize("case", DENSE_CASES, ids=case_id)
def test_parameter_counts_by_counting(case: Case) -> None:
    _, wt, _ = case.arrays(seed=8)
    shape = (case.c, case.h, case.w)
    counts = parameter_counts(shape, wt.shape, **case.kwargs())  # type: ignore[arg-type]
    dm = dense_matrix(shape, wt, **case.kwargs())  # type: ignore[arg-type]
    m = dm.toarray()
    h_out, w_out = case.out_hw
    assert counts.connections == dm.nnz == np.count_nonzero(m)
    assert counts.dense_weights == m.size
    assert counts.dense_biases == counts.untied_biases == m.shape[0]
    # Every shared weight is tied to some entry of M, unless its tap only ever reads padding.
    usage = weight_usage((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation)
    never_real = int((usage.real == 0).sum()) * case.j * (case.c // case.groups)
    assert counts.conv_weights == wt.size == len(np.unique(dm.tied)) + never_real
    assert counts.conv_biases == case.j
    assert counts.positions == h_out * w_out
    # The untied (locally connected) layer: one weight per (output unit, tap), counted by loops.
    untied = 0
    for _j in range(case.j):
        for _m in range(h_out):
            for _n in range(w_out):
                for _c in range(case.c // case.groups):
                    for _u in range(case.kernel[0]):
                        for _v in range(case.kernel[1]):
                            untied += 1
    assert counts.untied_weights == untied
    assert counts.conv == counts.conv_weights + counts.conv_biases
    assert counts.untied == counts.untied_weights + counts.untied_biases
    assert counts.dense == counts.dense_weights + counts.dense_biases


def test_parameter_counts_hand_worked() -> None:
    # RGB 32x32, eight 5x5 kernels, stride 1, no padding: 28x28 outputs.
    counts = parameter_counts((3, 32, 32), (8, 3, 5, 5))
    assert counts.conv_weights == 8 * 3 * 25 == 600
    assert counts.conv_biases == 8 and counts.conv == 608
    assert counts.positions == 784
    assert counts.untied_weights == 600 * 784
    assert counts.untied_biases == 8 * 784
    assert counts.dense_weights == 8 * 784 * 3 * 1024
    assert counts.connections == 600 * 784  # no padding: every tap always reads a real pixel
    # Depthwise 3x3 with padding 1 on 4x5: taps on the border read padding at some positions.
    counts = parameter_counts((2, 4, 5), (2, 1, 3, 3), padding=1, groups=2)
    assert counts.conv_weights == 18 and counts.positions == 20
    # Per axis, taps read real rows 3+4+3 = 10 (of 4 positions x 3) and real cols 4+5+4 = 13.
    assert counts.connections == 2 * 10 * 13


# ---- usage and coverage ---------------------------------------------------------------------

USAGE_CASES = [Case(1, 1, 1, c.h, c.w, c.kernel, c.stride, c.padding, c.dilation)
               for c in random_cases(30, seed=29, max_extra=6)] + [
    Case(1, 1, 1, 10, 11, (2, 1), (3, 4), (0, 0), (1, 1)),  # stride > kernel: skipped pixels
    Case(1, 1, 1, 7, 6, (3, 2), (2, 3), (3, 2), (2, 1)),
]


@pytest.mark.parametrize("case", USAGE_CASES, ids=case_id)
def test_weight_usage_against_brute_force(case: Case) -> None:
    usage = weight_usage((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation)
    h_out, w_out = case.out_hw
    (sh, sw), (ph, pw), (dh, dw) = case.stride, case.padding, case.dilation
    kh, kw = case.kernel
    real = np.zeros((kh, kw), dtype=np.int64)
    for u in range(kh):
        for v in range(kw):
            for m in range(h_out):
                for n in range(w_out):
                    r, q = sh * m + dh * u - ph, sw * n + dw * v - pw
                    real[u, v] += 0 <= r < case.h and 0 <= q < case.w
    np.testing.assert_array_equal(usage.real, real)
    np.testing.assert_array_equal(usage.padding, h_out * w_out - real)
    assert usage.total == h_out * w_out
    # The same counts through conv2d: a one-hot kernel on an all-ones image.
    ones = np.ones((1, case.h, case.w))
    for u in range(kh):
        for v in range(kw):
            onehot = np.zeros((1, 1, kh, kw))
            onehot[0, 0, u, v] = 1.0
            assert conv2d(ones, onehot, None, case.stride, case.padding, case.dilation).sum() == real[u, v]


@pytest.mark.parametrize("case", USAGE_CASES, ids=case_id)
def test_coverage_against_perturbation(case: Case) -> None:
    got = coverage((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation)
    assert got.shape == (case.h, case.w) and got.dtype == np.int64
    wt = np.random.default_rng(0).uniform(0.5, 1.5, (1, 1, *case.kernel))
    x = np.zeros((1, case.h, case.w))
    base = conv2d(x, wt, None, case.stride, case.padding, case.dilation)
    brute = np.zeros((case.h, case.w), dtype=np.int64)
    for r in range(case.h):
        for q in range(case.w):
            x[0, r, q] = 1.0
            brute[r, q] = np.count_nonzero(conv2d(x, wt, None, case.stride, case.padding,
                                                  case.dilation) != base)
            x[0, r, q] = 0.0
    np.testing.assert_array_equal(got, brute)
    # Each (output, real tap) pair reads one pixel: the coverage sums to the real tap count.
    usage = weight_usage((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation)
    assert got.sum() == usage.real.sum()


def test_coverage_is_zero_where_the_stride_skips_pixels() -> None:
    got = coverage((4, 10), (1, 2), (1, 3))
    np.testing.assert_array_equal(got[0], [1, 1, 0, 1, 1, 0, 1, 1, 0, 0])
    assert (got == got[0]).all()


def test_coverage_hand_worked_with_overlap() -> None:
    # 1x5 input, kernel 1x3, stride 1: middle pixels feed 3 outputs, edges 1 and 2.
    np.testing.assert_array_equal(coverage((1, 5), (1, 3)), [[1, 2, 3, 2, 1]])
    # With padding 1 the edge pixels feed 2 outputs.
    np.testing.assert_array_equal(coverage((1, 5), (1, 3), 1, (0, 1)), [[2, 3, 3, 3, 2]])


# ---- errors ---------------------------------------------------------------------------------

W = np.ones((2, 3, 3, 2))


def test_dense_matrix_refuses_above_max_entries() -> None:
    # (2 * 4 * 6) x (3 * 6 * 7) = 48 x 126 = 6048 entries.
    assert dense_matrix((3, 6, 7), W, max_entries=6048).shape == (48, 126)
    with pytest.raises(ValueError, match="`input_shape`"):
        dense_matrix((3, 6, 7), W, max_entries=6047)


def test_dense_matrix_default_limit() -> None:
    assert MAX_DENSE_ENTRIES == 1 << 24
    with pytest.raises(ValueError, match="`input_shape`"):
        dense_matrix((3, 64, 64), np.ones((8, 3, 3, 3)))


def test_dense_matrix_input_shape_wrong_length() -> None:
    with pytest.raises(ValueError, match="`input_shape`"):
        dense_matrix((6, 7), W)


def test_dense_matrix_no_channels() -> None:
    with pytest.raises(ValueError, match="`input_shape`"):
        dense_matrix((0, 6, 7), W)


def test_dense_matrix_input_hw_zero() -> None:
    with pytest.raises(ValueError, match="`input_hw`"):
        dense_matrix((3, 0, 7), W)


def test_dense_matrix_weight_wrong_ndim() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        dense_matrix((3, 6, 7), np.ones((3, 3, 2)))


def test_dense_matrix_weight_nan() -> None:
    w = W.copy()
    w[1, 2, 0, 1] = np.nan
    with pytest.raises(ValueError, match="`weight`"):
        dense_matrix((3, 6, 7), w)


def test_dense_matrix_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        dense_matrix((4, 6, 7), W)


def test_dense_matrix_groups_not_dividing() -> None:
    with pytest.raises(ValueError, match="`weight`"):
        dense_matrix((3, 6, 7), np.ones((2, 1, 3, 3)), groups=3)


def test_dense_matrix_groups_zero() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        dense_matrix((3, 6, 7), W, groups=0)


def test_dense_matrix_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        dense_matrix((3, 6, 7), W, stride=0)


def test_dense_matrix_padding_negative() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        dense_matrix((3, 6, 7), W, padding=(-1, 0))


def test_dense_matrix_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="`dilation`"):
        dense_matrix((3, 6, 7), W, dilation=0)


def test_dense_matrix_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        dense_matrix((3, 2, 7), W)


def test_parameter_counts_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="`input_shape`"):
        parameter_counts((6, 7), (2, 3, 3, 2))


def test_parameter_counts_weight_shape_wrong_length() -> None:
    with pytest.raises(ValueError, match="`weight_shape`"):
        parameter_counts((3, 6, 7), (2, 3, 3))


def test_parameter_counts_channel_mismatch() -> None:
    with pytest.raises(ValueError, match="`weight_shape`"):
        parameter_counts((4, 6, 7), (2, 3, 3, 2))


def test_parameter_counts_groups_not_dividing() -> None:
    with pytest.raises(ValueError, match="`weight_shape`"):
        parameter_counts((4, 6, 7), (3, 2, 3, 2), groups=2)


def test_parameter_counts_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        parameter_counts((3, 6, 1), (2, 3, 3, 2))


def test_weight_usage_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        weight_usage((6, 7), 3, 0)


def test_weight_usage_padding_negative() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        weight_usage((6, 7), 3, 1, -2)


def test_weight_usage_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        weight_usage((6, 7), (7, 1))


def test_coverage_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="`dilation`"):
        coverage((6, 7), 3, 1, 0, 0)


def test_coverage_same_padding_with_stride_two() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        coverage((6, 7), 3, 2, "same")


def test_coverage_input_hw_wrong_length() -> None:
    with pytest.raises(ValueError, match="`input_hw`"):
        coverage((6,), 3)


def test_parameter_counts_groups_zero() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        parameter_counts((3, 6, 7), (3, 3, 3, 2), groups=0)


def test_parameter_counts_groups_not_an_int() -> None:
    with pytest.raises(ValueError, match="`groups`"):
        parameter_counts((4, 6, 7), (2, 2, 3, 2), groups=2.0)  # type: ignore[arg-type]


def test_dense_matrix_and_counts_accept_numpy_integers() -> None:
    # As conv2d does: shapes and groups often come out of NumPy.
    dm = dense_matrix(np.array([2, 6, 7]), np.ones((2, 1, 3, 3)), groups=np.int64(2))  # type: ignore[arg-type]
    assert dm.shape == (2 * 4 * 5, 2 * 6 * 7)
    counts = parameter_counts(np.array([2, 6, 7]), np.array([2, 1, 3, 3]), groups=np.int64(2))  # type: ignore[arg-type]
    assert counts.connections == dm.nnz


def test_dense_matrix_input_shape_not_integers() -> None:
    with pytest.raises(ValueError, match="`input_shape`"):
        dense_matrix((2.5, 6, 7), np.ones((2, 2, 3, 3)))  # type: ignore[arg-type]
