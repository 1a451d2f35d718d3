"""static/convmath.js in the real page, checked against engine/ on odd shapes.

Each test imports the module the page serves (a dynamic `import('/static/convmath.js')`), runs
it on non-square kernels, unequal strides, padding and dilation, and compares with the engine:
the views draw what convmath.js computes, so convmath.js must compute what the engine does.
"""

from __future__ import annotations

import numpy as np
import pytest

from engine import ConvSpec, activate, conv2d, dense_matrix, output_shape, receptive_field

# (C, H, W), J, groups, (kh, kw), (sh, sw), (ph, pw), (dh, dw)
LAYERS = [
    ((1, 7, 9), 2, 1, (3, 2), (2, 1), (1, 2), (1, 2)),
    ((3, 8, 6), 3, 3, (2, 3), (1, 3), (0, 1), (2, 1)),
    ((2, 5, 11), 4, 2, (1, 4), (3, 2), (2, 0), (1, 3)),
    ((3, 9, 4), 2, 1, (4, 1), (2, 2), (3, 1), (1, 1)),
]


CONV = "(m, a) => m.conv2d(a.x, a.weight, a.opts)"


@pytest.fixture
def convmath(page):  # type: ignore[no-untyped-def]
    """The page, loaded, with convmath.js importable; evaluate(js, arg) runs `js(m, arg)`."""
    page.goto("/")
    page.wait_for_function("() => document.body.dataset.rendered")

    def evaluate(body: str, arg: object) -> object:
        js = f"async (arg) => {{ const m = await import('/static/convmath.js'); return ({body})(m, arg); }}"
        return page.evaluate(js, arg)

    yield evaluate
    assert page.console.errors == []


def layer_weights(case, seed: int):  # type: ignore[no-untyped-def]
    (c, h, w), j, groups, k, *_ = case
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((c, h, w))
    weight = rng.standard_normal((j, c // groups, *k))
    bias = rng.standard_normal(j)
    return x, weight, bias


@pytest.mark.parametrize("case", LAYERS)
def test_conv2d_is_the_engines_conv2d(convmath, case) -> None:  # type: ignore[no-untyped-def]
    _, _, groups, _, s, p, d = case
    x, weight, bias = layer_weights(case, 1)
    opts = {"bias": bias.tolist(), "stride": s, "padding": p, "dilation": d, "groups": groups}
    got = convmath(CONV, {"x": x.tolist(), "weight": weight.tolist(), "opts": opts})
    want = conv2d(x, weight, bias, stride=s, padding=p, dilation=d, groups=groups)
    assert np.asarray(got).shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", LAYERS)
def test_conv2d_with_padding_only_before_is_the_engine_on_the_padded_input(convmath, case) -> None:  # type: ignore[no-untyped-def]
    """The Sliding tab's corner: zeros before it, and after it only where the image ends."""
    _, _, groups, _, s, p, d = case
    x, weight, bias = layer_weights(case, 2)
    end = (0, p[1])
    opts = {"bias": bias.tolist(), "stride": s, "padding": p, "dilation": d, "groups": groups,
            "paddingEnd": end}
    got = convmath(CONV, {"x": x.tolist(), "weight": weight.tolist(), "opts": opts})
    padded = np.pad(x, ((0, 0), (p[0], end[0]), (p[1], end[1])))
    want = conv2d(padded, weight, bias, stride=s, padding=0, dilation=d, groups=groups)
    assert np.asarray(got).shape == want.shape
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["none", "relu", "sigmoid", "tanh"])
def test_activations_are_the_engines(convmath, name: str) -> None:  # type: ignore[no-untyped-def]
    y = np.linspace(-3, 3, 12).reshape(2, 2, 3)
    got = convmath("(m, a) => m.activateAll(a.y, a.name)", {"y": y.tolist(), "name": name})
    np.testing.assert_allclose(np.asarray(got), activate(y, name), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("case", LAYERS)
def test_output_sizes_and_effective_kernels_are_the_engines(convmath, case) -> None:  # type: ignore[no-untyped-def]
    (_, h, w), _, _, k, s, p, d = case
    got = convmath(
        """(m, a) => {
          const g = { kernel: a.k, stride: a.s, padding: a.p, dilation: a.d };
          return {
            eff: m.effectiveKernel(g),
            effAxes: [0, 1].map((i) => m.effectiveKernelSize(a.k[i], a.d[i])),
            out: [0, 1].map((i) => m.computeOutputSize(a.hw[i], a.k[i], a.s[i], a.p[i], a.d[i])),
            outBefore: [0, 1].map((i) => m.computeOutputSize(a.hw[i], a.k[i], a.s[i], a.p[i], a.d[i], 0)),
            box: (({ height, width }) => [height, width])(m.receptiveField(g, 0, 0, a.hw[0], a.hw[1])),
          };
        }""",
        {"hw": [h, w], "k": k, "s": s, "p": p, "d": d},
    )
    assert got["eff"] == got["effAxes"] == list(ConvSpec.make(k, s, p, d).effective_kernel)  # type: ignore[index]
    rf = receptive_field((h, w), k, s, p, d)
    assert got["box"] == [rf.height, rf.width]  # type: ignore[index]
    assert got["out"] == list(output_shape((h, w), k, s, p, d))  # type: ignore[index]
    # Padding before only: the engine's output on the input padded on one side.
    assert got["outBefore"] == list(output_shape((h + p[0], w + p[1]), k, s, 0, d))  # type: ignore[index]


@pytest.mark.parametrize("case", LAYERS)
def test_nearest_unit_inverts_the_engines_receptive_field(convmath, case) -> None:  # type: ignore[no-untyped-def]
    """Each input pixel (padding included) maps to the unit whose window is centred nearest it."""
    (_, h, w), _, _, k, s, p, d = case
    ho, wo = output_shape((h, w), k, s, p, d)
    pixels = [(r, q) for r in range(-p[0], h + p[0]) for q in range(-p[1], w + p[1])]
    got = convmath(
        """(m, a) => {
          const g = { kernel: a.k, stride: a.s, padding: a.p, dilation: a.d };
          return a.pixels.map(([r, q]) => m.nearestUnit(g, r, q, a.out));
        }""",
        {"k": k, "s": s, "p": p, "d": d, "out": [ho, wo], "pixels": pixels},
    )
    # Window centres from the engine, one axis at a time.
    fields = [receptive_field((h, w), k, s, p, d, row=m) for m in range(ho)]
    rows = [f.top + (f.height - 1) / 2 for f in fields]
    fields = [receptive_field((h, w), k, s, p, d, col=n) for n in range(wo)]
    cols = [f.left + (f.width - 1) / 2 for f in fields]
    for (r, q), (m, n) in zip(pixels, got, strict=True):  # type: ignore[arg-type]
        assert 0 <= m < ho and 0 <= n < wo
        assert abs(rows[m] - r) == min(abs(c - r) for c in rows), (r, q, m)
        assert abs(cols[n] - q) == min(abs(c - q) for c in cols), (r, q, n)


@pytest.mark.parametrize("case", LAYERS)
def test_dense_indices_are_the_engines_dense_matrix(convmath, case) -> None:  # type: ignore[no-untyped-def]
    """Rows of M are outputs (j, m, n), columns input pixels (c, r, q), tied weights (j, c, u, v)."""
    shape, j_total, groups, _, s, p, d = case
    _, weight, _ = layer_weights(case, 3)
    dm = dense_matrix(shape, weight, stride=s, padding=p, dilation=d, groups=groups)
    got = convmath(
        """(m, a) => a.rows.map((row, i) => {
          const out = m.unravelIndex(row, a.outShape);
          const pixel = m.unravelIndex(a.cols[i], a.inShape);
          const tied = m.unravelIndex(a.tied[i], a.weightShape);
          const back = [m.ravelIndex(out, a.outShape), m.ravelIndex(pixel, a.inShape),
            m.ravelIndex(tied, a.weightShape)];
          return { out, pixel, tied, back };
        })""",
        {"rows": dm.rows.tolist(), "cols": dm.cols.tolist(), "tied": dm.tied.tolist(),
         "outShape": list(dm.output_shape), "inShape": list(shape), "weightShape": list(dm.weight_shape)},
    )
    cg = shape[0] // groups
    jg = j_total // groups
    assert len(got) == dm.nnz > 0  # type: ignore[arg-type]
    for i, e in enumerate(got):  # type: ignore[arg-type]
        (j, m, n), (c, r, q), (wj, wc, u, v) = e["out"], e["pixel"], e["tied"]
        assert e["back"] == [dm.rows[i], dm.cols[i], dm.tied[i]]
        assert [j, m, n] == [int(t) for t in np.unravel_index(dm.rows[i], dm.output_shape)]
        assert wj == j and c == (j // jg) * cg + wc
        assert r == s[0] * m + d[0] * u - p[0] and q == s[1] * n + d[1] * v - p[1]
        assert dm.values[i] == weight[wj, wc, u, v]


def test_running_sum_is_the_cumulative_sum(convmath) -> None:  # type: ignore[no-untyped-def]
    values = np.random.default_rng(4).standard_normal(257)
    got = convmath("(m, a) => Array.from(m.runningSum(a))", values.tolist())
    np.testing.assert_allclose(got, np.cumsum(values), rtol=1e-12, atol=1e-12)
