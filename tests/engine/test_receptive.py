"""receptive_field and receptive_field_stack against brute force through conv2d and the
closed forms of Araujo, Norris and Sim (Distill 2019)."""

from __future__ import annotations

import numpy as np
import pytest
from cases import Case, case_id, random_cases

from engine import ConvSpec, conv2d, receptive_field, receptive_field_stack

RF_CASES = [
    Case(1, 1, 1, 5, 6, (3, 2), (2, 3), (1, 1), (1, 1)),
    Case(1, 1, 1, 9, 7, (2, 3), (3, 1), (2, 0), (2, 3)),
    Case(1, 1, 1, 10, 4, (1, 2), (3, 2), (0, 3), (1, 1)),  # stride > kernel
] + [Case(1, 1, 1, c.h, c.w, c.kernel, c.stride, c.padding, c.dilation)
     for c in random_cases(10, seed=17, max_extra=5)]


def _positive(shape: tuple[int, ...], seed: int) -> np.ndarray:
    """Weights in [0.5, 1.5]: a positive bump in an input can never cancel out."""
    return np.random.default_rng(seed).uniform(0.5, 1.5, shape)


def _reads(case: Case) -> np.ndarray:
    """(H_out, W_out, H, W) bool by perturbation: output (m, n) changes when pixel (r, q) does."""
    wt = _positive((1, 1, *case.kernel), 1)
    x = np.zeros((1, case.h, case.w))
    base = conv2d(x, wt, None, case.stride, case.padding, case.dilation)
    out = np.zeros((*base.shape[1:], case.h, case.w), dtype=bool)
    for r in range(case.h):
        for q in range(case.w):
            x[0, r, q] = 1.0
            out[:, :, r, q] = conv2d(x, wt, None, case.stride, case.padding, case.dilation)[0] != base[0]
            x[0, r, q] = 0.0
    return out


@pytest.mark.parametrize("case", RF_CASES, ids=case_id)
def test_receptive_field_against_perturbation(case: Case) -> None:
    reads = _reads(case)
    h_out, w_out = reads.shape[:2]
    kh, kw = case.kernel
    # Pixel ids 1..H*W tell which pixel a one-hot kernel picks; an all-ones image tells padding.
    ids = (np.arange(case.h * case.w, dtype=np.float64) + 1).reshape(1, case.h, case.w)
    picked = np.zeros((kh, kw, h_out, w_out))
    for u in range(kh):
        for v in range(kw):
            onehot = np.zeros((1, 1, kh, kw))
            onehot[0, 0, u, v] = 1.0
            picked[u, v] = conv2d(ids, onehot, None, case.stride, case.padding, case.dilation)[0]
    for m in range(h_out):
        for n in range(w_out):
            rf = receptive_field((case.h, case.w), case.kernel, case.stride, case.padding,
                                 case.dilation, m, n)
            assert rf.unit == (m, n)
            real = {(r, q) for _, _, r, q, pad in rf.taps if not pad}
            assert real == {tuple(p) for p in np.argwhere(reads[m, n])}
            assert len(rf.taps) == kh * kw
            for u, v, r, q, pad in rf.taps:
                assert pad == (picked[u, v, m, n] == 0)
                if not pad:
                    assert divmod(int(picked[u, v, m, n]) - 1, case.w) == (r, q)
                else:
                    assert not (0 <= r < case.h and 0 <= q < case.w)
            assert rf.in_padding.shape == (kh, kw)
            # The box spans the dilated kernel from the first tap.
            assert (rf.top, rf.left) == (int(rf.tap_rows[0]), int(rf.tap_cols[0]))
            assert (rf.height, rf.width) == (int(rf.tap_rows[-1]) - rf.top + 1,
                                             int(rf.tap_cols[-1]) - rf.left + 1)
            if real:
                rows = [r for r, _ in real]
                cols = [q for _, q in real]
                assert rf.clipped is not None
                t, left, hh, ww = rf.clipped
                assert t <= min(rows) and max(rows) < t + hh
                assert left <= min(cols) and max(cols) < left + ww
                assert (t, left) == (max(rf.top, 0), max(rf.left, 0))
                assert t + hh == min(rf.top + rf.height, case.h)
                assert left + ww == min(rf.left + rf.width, case.w)


def test_receptive_field_hand_worked() -> None:
    # 5x6 input, kernel 3x2, stride (2, 3), padding 1: unit (0, 0) starts one pixel into the padding.
    rf = receptive_field((5, 6), (3, 2), (2, 3), 1, 1, 0, 0)
    assert (rf.top, rf.left, rf.height, rf.width) == (-1, -1, 3, 2)
    assert rf.clipped == (0, 0, 2, 1)
    np.testing.assert_array_equal(rf.tap_rows, [-1, 0, 1])
    np.testing.assert_array_equal(rf.tap_cols, [-1, 0])
    np.testing.assert_array_equal(rf.in_padding, [[True, True], [True, False], [True, False]])
    # Unit (2, 1): rows 3..5 (5 is padding), cols 2..3.
    rf = receptive_field((5, 6), (3, 2), (2, 3), 1, 1, 2, 1)
    assert (rf.top, rf.left) == (3, 2)
    assert rf.clipped == (3, 2, 2, 2)
    assert rf.taps[-1] == (2, 1, 5, 3, True)
    assert rf.taps[0] == (0, 0, 3, 2, False)


def test_receptive_field_all_padding_has_no_clipped_box() -> None:
    # Kernel 1 with padding 2 at unit (0, 0) reads only padding.
    rf = receptive_field((3, 3), 1, 1, 2, 1, 0, 0)
    assert (rf.top, rf.left) == (-2, -2)
    assert rf.clipped is None
    assert rf.in_padding.all()


def test_receptive_field_accepts_numpy_indices() -> None:
    rf = receptive_field((6, 6), 3, 1, 0, 1, np.int64(2), np.int32(3))
    assert rf.unit == (2, 3) and (rf.top, rf.left) == (2, 3)


# ---- stacks ---------------------------------------------------------------------------------

def _closed_form(layers):  # type: ignore[no-untyped-def]
    """Distill's closed forms per axis after each depth L, with k_l the dilated kernel:
    r = 1 + sum_l (k_l - 1) prod_{i<l} s_i,  start = -sum_l p_l prod_{i<l} s_i,  jump = prod_l s_l."""
    out = []
    for depth in range(1, len(layers) + 1):
        entry = []
        for a in range(2):
            prods = [int(np.prod([layer[1][a] for layer in layers[:l_]])) for l_ in range(depth)]
            r = 1 + sum((d[a] * (k[a] - 1) + 1 - 1) * prods[l_]
                        for l_, (k, _, _, d) in enumerate(layers[:depth]))
            start = -sum(p[a] * prods[l_] for l_, (_, _, p, _) in enumerate(layers[:depth]))
            jump = int(np.prod([s[a] for _, s, _, _ in layers[:depth]]))
            entry.append((r, jump, start))
        out.append(entry)
    return out


def _random_stack(rng: np.random.Generator, depth: int):  # type: ignore[no-untyped-def]
    return [
        (
            (int(rng.integers(1, 8)), int(rng.integers(1, 8))),
            (int(rng.integers(1, 5)), int(rng.integers(1, 5))),
            (int(rng.integers(0, 4)), int(rng.integers(0, 4))),
            (int(rng.integers(1, 4)), int(rng.integers(1, 4))),
        )
        for _ in range(depth)
    ]


@pytest.mark.parametrize("seed", range(20))
def test_stack_matches_the_closed_forms(seed: int) -> None:
    rng = np.random.default_rng(seed)
    layers = _random_stack(rng, int(rng.integers(1, 6)))
    got = receptive_field_stack(layers)
    assert len(got) == len(layers)
    for entry, expected in zip(got, _closed_form(layers), strict=True):
        assert (entry.size[0], entry.jump[0], entry.start[0]) == expected[0]
        assert (entry.size[1], entry.jump[1], entry.start[1]) == expected[1]
        assert entry.center == (entry.start[0] + (entry.size[0] - 1) / 2,
                                entry.start[1] + (entry.size[1] - 1) / 2)


def test_stack_hand_worked() -> None:
    # Two 3x3 stride-1 layers see 5x5; then a 2x2 stride-2 pool-like layer: 5 + 1*1 = 6, jump 2.
    got = receptive_field_stack([(3, 1, 1), (3, 1, 1), (2, 2, 0)])
    assert [e.size for e in got] == [(3, 3), (5, 5), (6, 6)]
    assert [e.jump for e in got] == [(1, 1), (1, 1), (2, 2)]
    assert [e.start for e in got] == [(-1, -1), (-2, -2), (-2, -2)]
    # ResNet stem: 7x7 stride 2 padding 3, then 3x3 stride 2 padding 1.
    got = receptive_field_stack([ConvSpec.make(7, 2, 3), {"kernel_size": 3, "stride": 2, "padding": 1}])
    assert (got[-1].size, got[-1].jump, got[-1].start) == ((11, 11), (4, 4), (-5, -5))


def test_stack_same_padding_and_non_square() -> None:
    got = receptive_field_stack([((3, 5), 1, "same", (1, 2)), ((1, 3), (2, 1))])
    assert got[0].size == (3, 9) and got[0].start == (-1, -4)
    assert got[1].size == (3, 11) and got[1].jump == (2, 1) and got[1].start == (-1, -4)


STACKS = [
    [((3, 2), (1, 2), (1, 0), (1, 1)), ((2, 3), (2, 1), (0, 1), (1, 2)), ((3, 3), (1, 1), (1, 1), (2, 1))],
    [((3, 3), (2, 2), (1, 1), (1, 1)), ((3, 3), (2, 2), (1, 1), (1, 1))],
    [((1, 4), (3, 1), (0, 2), (1, 1)), ((2, 1), (1, 3), (1, 0), (3, 1))],
]


@pytest.mark.parametrize("layers", STACKS)
def test_stack_against_composed_conv2d(layers) -> None:  # type: ignore[no-untyped-def]
    h, w = 23, 21
    weights = [_positive((1, 1, *k), i) for i, (k, _, _, _) in enumerate(layers)]

    def forward(x: np.ndarray) -> np.ndarray:
        for wt, (_, s, p, d) in zip(weights, layers, strict=True):
            x = conv2d(x, wt, None, s, p, d)
        return x[0]

    x = np.zeros((1, h, w))
    base = forward(x)
    reads = np.zeros((*base.shape, h, w), dtype=bool)
    for r in range(h):
        for q in range(w):
            x[0, r, q] = 1.0
            reads[:, :, r, q] = forward(x) != base
            x[0, r, q] = 0.0
    entry = receptive_field_stack(layers)[-1]
    dilated = any(d != (1, 1) for _, _, _, d in layers)
    for m in range(base.shape[0]):
        for n in range(base.shape[1]):
            top = entry.start[0] + m * entry.jump[0]
            left = entry.start[1] + n * entry.jump[1]
            box = np.zeros((h, w), dtype=bool)
            box[max(top, 0) : max(top + entry.size[0], 0), max(left, 0) : max(left + entry.size[1], 0)] = True
            seen = reads[m, n]
            # Every pixel that moves the unit lies in the box (and with no dilation fills it).
            assert not (seen & ~box).any()
            if not dilated:
                np.testing.assert_array_equal(seen, box)
            if 0 <= top and top + entry.size[0] <= h and 0 <= left and left + entry.size[1] <= w:
                rows, cols = np.nonzero(seen)
                assert (rows.min(), rows.max()) == (top, top + entry.size[0] - 1)
                assert (cols.min(), cols.max()) == (left, left + entry.size[1] - 1)


# ---- errors ---------------------------------------------------------------------------------

def test_row_out_of_range() -> None:
    with pytest.raises(ValueError, match="`row`"):
        receptive_field((5, 6), 3, 1, 0, 1, 3, 0)


def test_row_negative() -> None:
    with pytest.raises(ValueError, match="`row`"):
        receptive_field((5, 6), 3, 1, 0, 1, -1, 0)


def test_row_bool() -> None:
    with pytest.raises(ValueError, match="`row`"):
        receptive_field((5, 6), 3, 1, 0, 1, True, 0)


def test_row_float() -> None:
    with pytest.raises(ValueError, match="`row`"):
        receptive_field((5, 6), 3, 1, 0, 1, 1.0, 0)  # type: ignore[arg-type]


def test_col_out_of_range() -> None:
    with pytest.raises(ValueError, match="`col`"):
        receptive_field((5, 6), (3, 2), (1, 2), 0, 1, 0, 3)


def test_col_negative() -> None:
    with pytest.raises(ValueError, match="`col`"):
        receptive_field((5, 6), 3, 1, 0, 1, 0, -2)


def test_receptive_field_stride_below_one() -> None:
    with pytest.raises(ValueError, match="`stride`"):
        receptive_field((5, 6), 3, 0)


def test_receptive_field_padding_negative() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        receptive_field((5, 6), 3, 1, -1)


def test_receptive_field_dilation_below_one() -> None:
    with pytest.raises(ValueError, match="`dilation`"):
        receptive_field((5, 6), 3, 1, 0, 0)


def test_receptive_field_kernel_larger_than_padded_input() -> None:
    with pytest.raises(ValueError, match="`kernel_size`"):
        receptive_field((5, 2), 3)


def test_receptive_field_same_padding_with_stride_two() -> None:
    with pytest.raises(ValueError, match="`padding`"):
        receptive_field((5, 6), 3, 2, "same")


def test_receptive_field_input_hw_wrong_length() -> None:
    with pytest.raises(ValueError, match="`input_hw`"):
        receptive_field((1, 5, 6), 3)


def test_stack_empty() -> None:
    with pytest.raises(ValueError, match="`layers`"):
        receptive_field_stack([])


def test_stack_bad_layer_names_its_index() -> None:
    with pytest.raises(ValueError, match=r"`layers`\[1\].*`stride`"):
        receptive_field_stack([(3, 1), (3, 0)])


def test_stack_bad_keyword() -> None:
    with pytest.raises(ValueError, match=r"`layers`\[0\]"):
        receptive_field_stack([{"kernel": 3}])


def test_stack_same_padding_with_stride_two() -> None:
    with pytest.raises(ValueError, match=r"`layers`\[0\].*`padding`"):
        receptive_field_stack([(3, 2, "same")])
