"""output_shape, output_arithmetic, ConvSpec and padding resolution against hand-worked cases."""

from __future__ import annotations

import numpy as np
import pytest
from cases import case_id, random_cases
from reference import out_size, taps_read

from engine import ConvSpec, conv2d, output_arithmetic, output_shape, resolve_padding


@pytest.mark.parametrize(
    ("input_hw", "kernel", "stride", "padding", "dilation", "expected"),
    [
        ((7, 7), 3, 2, 1, 1, (4, 4)),  # (7 + 2 - 2 - 1) / 2 + 1 = 4
        ((224, 224), 7, 2, 3, 1, (112, 112)),  # ResNet's stem
        ((10, 7), (3, 5), (3, 2), (1, 0), (2, 1), (3, 2)),  # rows (10+2-4-1)//3+1, cols (7-4-1)//2+1
        ((8, 8), 3, 2, 0, 1, (3, 3)),  # 5 / 2 does not divide: floor
        ((10, 10), 2, 3, 0, 1, (3, 3)),  # stride > kernel
        ((5, 9), (5, 1), (1, 4), (0, 0), (1, 1), (1, 3)),
        ((1, 1), 1, 1, 0, 1, (1, 1)),
        ((1, 1), 3, 4, 1, 1, (1, 1)),
        ((6, 5), (2, 3), 1, (0, 1), (3, 2), (3, 3)),
    ],
)
def test_output_shape_hand_worked(input_hw, kernel, stride, padding, dilation, expected) -> None:  # type: ignore[no-untyped-def]
    assert output_shape(input_hw, kernel, stride, padding, dilation) == expected


@pytest.mark.parametrize("case", random_cases(60, seed=4), ids=case_id)
def test_output_shape_counts_the_window_positions(case) -> None:  # type: ignore[no-untyped-def]
    # Brute force: slide the dilated window over the padded input and count where it fits.
    got = output_shape((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation)
    counts = []
    for n, k, s, p, d in zip((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation,
                             strict=True):
        counts.append(sum(1 for start in range(0, n + 2 * p, s) if start + d * (k - 1) < n + 2 * p))
    assert got == tuple(counts)
    assert got == case.out_hw


def test_output_shape_same_padding_keeps_the_size() -> None:
    assert output_shape((9, 8), (3, 5), 1, "same") == (9, 8)
    assert output_shape((9, 8), (3, 5), 1, "same", (3, 2)) == (9, 8)
    assert output_shape((9, 8), (3, 5), (1, 1), "valid") == (7, 4)


def test_resolve_padding() -> None:
    assert resolve_padding("same", (3, 5), (1, 1), (1, 1)) == (1, 2)
    assert resolve_padding("same", (3, 5), (1, 1), (2, 3)) == (2, 6)
    assert resolve_padding("same", (1, 7), (1, 1), (1, 1)) == (0, 3)
    assert resolve_padding("valid", (7, 7), (2, 3), (1, 1)) == (0, 0)
    assert resolve_padding((2, 1), (3, 3), (2, 2), (1, 1)) == (2, 1)
    assert resolve_padding(3, (3, 3), (1, 1), (1, 1)) == (3, 3)


def test_same_padding_with_even_kernel_but_odd_effective_span() -> None:
    # Kernel 2 with dilation 2 spans 3 pixels: symmetric 'same' padding of 1 exists.
    assert resolve_padding("same", (2, 3), (1, 1), (2, 1)) == (1, 1)


def test_conv_spec_make_normalises_pairs() -> None:
    spec = ConvSpec.make([3, 5], 2, (1, 0), np.int64(2))
    assert spec == ConvSpec((3, 5), (2, 2), (1, 0), (2, 2))
    assert spec.effective_kernel == (5, 9)
    assert spec.output_shape((11, 12)) == (5, 2)  # (11+2-5)//2+1, (12-9)//2+1


# ---- the step-by-step arithmetic ------------------------------------------------------------

def test_arithmetic_even_division() -> None:
    rows, cols = output_arithmetic((7, 9), (3, 3), 2, 0, 1)
    assert (rows.axis, rows.size, rows.padded, rows.effective_kernel, rows.span) == ("rows", 7, 7, 3, 4)
    assert (rows.quotient, rows.remainder, rows.output, rows.unused) == (2, 0, 3, ())
    assert (cols.axis, cols.span, cols.quotient, cols.remainder, cols.output) == ("cols", 6, 3, 0, 4)
    assert rows.steps() == [
        "padded = 7 + 2·0 = 7",
        "effective kernel = 1·(3 − 1) + 1 = 3",
        "span = 7 − 3 = 4",
        "⌊4 / 2⌋ = 2, remainder 0",
        "output = 2 + 1 = 3",
    ]


def test_arithmetic_stride_does_not_divide() -> None:
    # 8 rows, kernel 3, stride 2: span 5 = 2·2 + 1, so the last row is never read.
    rows, cols = output_arithmetic((8, 6), (3, 2), (2, 2), 0, 1)
    assert (rows.span, rows.quotient, rows.remainder, rows.output) == (5, 2, 1, 3)
    assert rows.unused == ((7, 8),)
    assert rows.steps()[-1] == "input rows never read: 7"
    # 6 cols, kernel 2, stride 2: span 4, every column read.
    assert (cols.span, cols.quotient, cols.remainder, cols.output, cols.unused) == (4, 2, 0, 3, ())
    assert len(cols.steps()) == 5


def test_arithmetic_stride_larger_than_kernel_leaves_gaps() -> None:
    # 10 cols, kernel 2, stride 3: windows read 0-1, 3-4, 6-7; 2, 5 and 8-9 are skipped.
    rows, cols = output_arithmetic((4, 10), (1, 2), (1, 3), 0, 1)
    assert (cols.span, cols.quotient, cols.remainder, cols.output) == (8, 2, 2, 3)
    assert cols.unused == ((2, 3), (5, 6), (8, 10))
    assert cols.steps()[-1] == "input cols never read: 2, 5, 8–9"
    assert rows.output == 4 and rows.unused == ()


def test_arithmetic_with_padding_reads_every_line() -> None:
    rows, cols = output_arithmetic((5, 5), (3, 3), (2, 2), (1, 1), 1)
    assert (rows.padded, rows.span, rows.quotient, rows.remainder, rows.output) == (7, 4, 2, 0, 3)
    assert rows.unused == () and cols.unused == ()
    assert rows.steps()[0] == "padded = 5 + 2·1 = 7"


def test_arithmetic_dilation_skips_lines_between_taps() -> None:
    # 5 rows, kernel 2, dilation 3: windows read {0, 3} and {1, 4}; row 2 is never read.
    rows, _ = output_arithmetic((5, 5), (2, 1), 1, 0, (3, 1))
    assert (rows.effective_kernel, rows.span, rows.output) == (4, 1, 2)
    assert rows.unused == ((2, 3),)
    assert rows.steps()[1] == "effective kernel = 3·(2 − 1) + 1 = 4"


def test_arithmetic_padding_only_windows_can_leave_the_edge_unread() -> None:
    # 4 cols, kernel 1, stride 3, padding 2: span 7 gives windows at padded cols 0, 3 and 6, that is
    # input cols -2, 1 and 4; only col 1 is real, so 0 and 2-3 are never read.
    _, cols = output_arithmetic((3, 4), (1, 1), (1, 3), (0, 2), 1)
    assert (cols.padded, cols.span, cols.quotient, cols.remainder, cols.output) == (8, 7, 2, 1, 3)
    assert cols.unused == ((0, 1), (2, 4))


def test_arithmetic_same_padding() -> None:
    rows, cols = output_arithmetic((6, 7), (5, 3), 1, "same", (1, 2))
    assert (rows.padding, rows.output) == (2, 6)
    assert (cols.padding, cols.effective_kernel, cols.output) == (2, 5, 7)


def test_arithmetic_valid_padding() -> None:
    rows, cols = output_arithmetic((6, 7), (5, 3), 1, "valid")
    assert (rows.padding, rows.output, cols.padding, cols.output) == (0, 2, 0, 5)
    assert rows.unused == () and cols.unused == ()


@pytest.mark.parametrize("case", random_cases(60, seed=8, max_extra=12), ids=case_id)
def test_arithmetic_agrees_with_brute_force(case) -> None:  # type: ignore[no-untyped-def]
    arith = output_arithmetic((case.h, case.w), case.kernel, case.stride, case.padding, case.dilation)
    got_shape = conv2d(np.ones((1, case.h, case.w)), np.ones((1, 1, *case.kernel)), None, case.stride,
                       case.padding, case.dilation).shape[1:]
    for a, n, n_out, k, s, p, d in zip(arith, (case.h, case.w), got_shape, case.kernel, case.stride,
                                       case.padding, case.dilation, strict=True):
        assert a.output == n_out == out_size(n, k, s, p, d)
        assert a.quotient * s + a.remainder == a.span == n + 2 * p - d * (k - 1) - 1
        assert 0 <= a.remainder < s
        read = {i for taps in taps_read(n, n_out, k, s, p, d) for i in taps if 0 <= i < n}
        unused = {i for lo, hi in a.unused for i in range(lo, hi)}
        assert unused == set(range(n)) - read
        # Ranges are sorted, disjoint and maximal.
        for (_, hi), (lo, _) in zip(a.unused, a.unused[1:], strict=False):
            assert hi < lo


# ---- errors ---------------------------------------------------------------------------------

def test_output_shape_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        output_shape((5, 5), 3, (1, 0))


def test_output_shape_padding_negative() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        output_shape((5, 5), 3, 1, -1)


def test_output_shape_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="`dilation`"):
        output_shape((5, 5), 3, 1, 0, (0, 1))


def test_output_shape_kernel_below_one() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        output_shape((5, 5), (0, 3))


def test_output_shape_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        output_shape((5, 4), (3, 7), 1, (0, 1))


def test_output_shape_dilated_kernel_larger_than_padded_input() -> None:
    # A 3-tap kernel fits 5 rows; dilated by 3 it spans 7: the dilation is at fault.
    with pytest.raises(ValueError, match="^`dilation`: a 3 kernel with dilation 3x1 spans 7 rows"):
        output_shape((5, 9), 3, 1, 0, (3, 1))
    # Too big even undilated: the kernel size is.
    with pytest.raises(ValueError, match="^`kernel_size`: a 7 kernel with dilation 2"):
        output_shape((5, 9), 7, 1, 0, 2)


def test_output_shape_input_hw_wrong_length() -> None:
    with pytest.raises(ValueError, match="`input_hw`"):
        output_shape((3, 5, 5), 3)


def test_output_shape_input_hw_zero() -> None:
    with pytest.raises(ValueError, match="`input_hw`"):
        output_shape((0, 5), 1)


def test_output_shape_stride_float() -> None:
    with pytest.raises(TypeError, match="`stride`"):
        output_shape((5, 5), 3, 1.0)  # type: ignore[arg-type]


def test_output_shape_stride_bool() -> None:
    with pytest.raises(TypeError, match="`stride`"):
        output_shape((5, 5), 3, True)


def test_output_shape_padding_triple() -> None:
    with pytest.raises(TypeError, match="`padding`"):
        output_shape((5, 5), 3, 1, (1, 1, 1))


def test_output_shape_dilation_string() -> None:
    with pytest.raises(TypeError, match="`dilation`"):
        output_shape((5, 5), 3, 1, 0, "2")  # type: ignore[arg-type]


def test_output_shape_padding_unknown_string() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        output_shape((5, 5), 3, 1, "full")  # type: ignore[arg-type]


def test_output_shape_same_padding_with_stride_two() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        output_shape((5, 5), 3, 2, "same")


def test_output_shape_same_padding_with_unequal_stride() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        output_shape((5, 5), 3, (1, 2), "same")


def test_output_shape_same_padding_with_even_kernel() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        output_shape((5, 5), (3, 4), 1, "same")


def test_output_arithmetic_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        output_arithmetic((5, 4), (6, 3))


def test_output_arithmetic_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        output_arithmetic((5, 4), 3, 0)


def test_output_arithmetic_input_hw_wrong_length() -> None:
    with pytest.raises(ValueError, match="`input_hw`"):
        output_arithmetic((5,), 1)


def test_output_arithmetic_same_padding_with_stride_two() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        output_arithmetic((5, 5), 3, 2, "same")


def test_output_shape_input_hw_not_integers() -> None:
    # 5.7 rows must not be read silently as 5.
    with pytest.raises(ValueError, match="`input_hw`"):
        output_shape((5.7, 6), 3)  # type: ignore[arg-type]


def test_output_shape_accepts_numpy_shapes() -> None:
    assert output_shape(np.array([7, 9]), (3, 5)) == (5, 5)  # type: ignore[arg-type]
