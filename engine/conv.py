"""conv2d forward, activations, and stride shown as decimation of the stride-1 output.

The forward pass is a banded im2col: for a strip of output rows at a time, the windows of
the padded input are copied into a reused cache-sized buffer of shape (C/g * kh * kw, rows * W_out)
and multiplied by the (J/g, C/g * kh * kw) weight matrix. Strips are split across threads, with
BLAS pinned to one thread inside them. No Python loop runs over individual output positions.

With few kernels that matmul is short (J rows) and runs at half BLAS's speed, and the copy
costs as much as the arithmetic. So the plan may fold kernel columns into the matmul instead
(ColumnPlan): neighbouring taps of a row read the same input shifted by one column, so one
copy serves F of them, the matmul gets F * J rows, and F shift-and-adds of its output finish
the sum. A small cost model (choose_fold) picks F per layer. (Measured in bench/engine.py:
shift-and-add over every tap, and a per-row im2col, were slower on every benchmark case.)
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided
from numpy.typing import ArrayLike, NDArray

from ._blas import single_threaded_blas, single_threaded_section
from .errors import ArgumentError, ArgumentTypeError
from .spec import ConvSpec, IntOrPair, PaddingArg, check_groups, spec_of

ACTIVATIONS = ("none", "relu", "sigmoid", "tanh")

# Floats per im2col strip buffer (2 MiB of float32 forward, 4 MiB backward, per thread): large
# enough for efficient matmuls, small enough to stay near the cache. Tuned with bench/engine.py.
STRIP_FLOATS = 1 << 19
BACKWARD_STRIP_FLOATS = 1 << 20
PARALLEL_PAD_FLOATS = 1 << 20  # inputs padded by all threads from this size on
def _threads_setting(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """Threads the engine uses: CONVLENS_THREADS (>= 1), else the CPU count, at most 4."""
    text = environ.get("CONVLENS_THREADS")
    if text is None:
        return max(1, min(4, os.cpu_count() or 1))
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"CONVLENS_THREADS must be an integer >= 1, got {text!r}")
    return value


_THREADS = _threads_setting()
_POOL: ThreadPoolExecutor | None = None


@dataclass(frozen=True)
class ConvCall:
    """Validated arguments of one conv call (private helper of the public functions)."""

    x: NDArray[np.floating]  # (C, H, W)
    weight: NDArray[np.floating]  # (J, C/groups, kh, kw)
    spec: ConvSpec
    groups: int
    out_hw: tuple[int, int]

    @property
    def group_sizes(self) -> tuple[int, int]:
        """(C/groups, J/groups)."""
        return self.x.shape[0] // self.groups, self.weight.shape[0] // self.groups


def _float_array(value: ArrayLike, name: str, ndim: int) -> NDArray[np.floating]:
    arr = np.asarray(value)
    if arr.dtype.kind not in "biuf":
        raise ArgumentTypeError(name, f"`{name}` must hold real numbers, got dtype {arr.dtype}")
    if arr.ndim != ndim:
        raise ArgumentError(name, f"`{name}` must have {ndim} dimensions, got shape {arr.shape}")
    if arr.dtype != np.float64:
        arr = arr.astype(np.float32, copy=False)
    if arr.size == 0:
        raise ArgumentError(name, f"`{name}` must not be empty, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ArgumentError(name, f"`{name}` must be finite: it holds NaN or infinite values")
    return arr


def prepare(
    x: ArrayLike,
    weight: ArrayLike,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    x_name: str = "x",
    spec: ConvSpec | None = None,
) -> ConvCall:
    """Check the arguments shared by conv2d and its relatives; raise naming the bad one."""
    xa = _float_array(x, x_name, 3)
    wa = _float_array(weight, "weight", 4)
    if xa.dtype != wa.dtype:
        dtype = np.result_type(xa, wa)
        xa, wa = xa.astype(dtype), wa.astype(dtype)
    groups = check_groups(groups)
    c, j = xa.shape[0], wa.shape[0]
    if c % groups or j % groups:
        raise ArgumentError("groups",
            f"`groups`={groups} must divide both the input channels ({c}) and the kernels ({j})"
        )
    if wa.shape[1] != c // groups:
        raise ArgumentError("weight",
            f"`weight` has {wa.shape[1]} input channels per kernel but the input has {c} "
            f"channels in {groups} group(s): expected weight of shape "
            f"({j}, {c // groups}, kh, kw), got {wa.shape}"
        )
    spec = spec_of((wa.shape[2], wa.shape[3]), stride, padding, dilation, spec)
    out_hw = spec.output_shape(xa.shape[1:])
    return ConvCall(xa, wa, spec, groups, out_hw)


def check_bias(bias: ArrayLike | None, j: int, dtype: np.dtype) -> NDArray[np.floating] | None:
    """Bias as a (J,) array of dtype, or None; raise naming `bias` on a bad shape."""
    if bias is None:
        return None
    b = np.asarray(bias)
    if b.ndim == 0:
        b = np.full(j, b)
    b = _float_array(b, "bias", 1).astype(dtype, copy=False)
    if b.shape != (j,):
        raise ArgumentError("bias", f"`bias` must have one value per kernel, shape ({j},), got {b.shape}")
    return b


def pad(x: NDArray[np.floating], padding: tuple[int, int]) -> NDArray[np.floating]:
    """Zero-pad (C, H, W) symmetrically by (p_h, p_w); no copy when there is no padding."""
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    out = np.zeros((x.shape[0], x.shape[1] + 2 * ph, x.shape[2] + 2 * pw), dtype=x.dtype)
    out[:, ph : ph + x.shape[1], pw : pw + x.shape[2]] = x
    return out


def padded_phases(
    x: NDArray[np.floating], padding: tuple[int, int], s_w: int, extra: int = 0
) -> NDArray[np.floating]:
    """x zero-padded, with its columns split by phase (column mod s_w): (s_w, C, Hp, ceil(Wp / s_w) + extra).

    Strided windows then read each phase with unit stride, which copies faster than gathering
    every s_w-th float. Phase f holds padded columns f, f + s_w, ...; with s_w == 1 and no
    extra this is pad(x)[None]. `extra` zero columns on the right of each phase let a folded
    plan read its zero-weight taps past the last real one.
    """
    pad_h, pad_w = padding
    if s_w == 1 and extra == 0 and pad_h == 0 and pad_w == 0:
        return x[None]
    c, h, w = x.shape
    hp = h + 2 * pad_h
    wq = -(-(w + 2 * pad_w) // s_w) + extra
    out = np.empty((s_w, c, hp, wq), dtype=x.dtype)
    # Each phase holds, from column q0 // s_w on, the pixels of padded columns q0, q0 + s_w, ...
    parts = []
    for phase in range(s_w):
        q0 = pad_w + (phase - pad_w) % s_w  # first padded column of this phase that holds a pixel
        parts.append((q0 // s_w, x[:, :, q0 - pad_w :: s_w]))

    def work(chunk: list[tuple[int, int]]) -> None:
        for r0, r1 in chunk:  # rows of the padded planes
            a, b = max(r0, pad_h), min(r1, pad_h + h)
            if a >= b:  # padding rows only
                out[:, :, r0:r1] = 0
                continue
            out[:, :, r0:a] = 0
            out[:, :, b:r1] = 0
            # Rows with pixels: zero only their padding columns (zeroing the whole row first wrote
            # every float twice, a pass over the input that bench/load.py's profile put at 6 %).
            for phase, (start, part) in enumerate(parts):
                stop = start + part.shape[2]
                out[phase, :, a:b, :start] = 0
                out[phase, :, a:b, stop:] = 0
                out[phase, :, a:b, start:stop] = part[:, a - pad_h : b - pad_h]

    # Large inputs are written by every thread (a 1024² RGB image: 1.7 ms on one).
    n = _THREADS if out.size >= PARALLEL_PAD_FLOATS else 1
    rows = -(-hp // n)
    run_chunks(work, [(r, min(r + rows, hp)) for r in range(0, hp, rows)])
    return out


@dataclass(frozen=True)
class ColumnPlan:
    """Kernel columns grouped by the phase they read, so each group is one unit-stride copy.

    Kernel column v reads padded column s_w*n + d_w*v = s_w*(n + offset) + phase, with
    (offset, phase) = divmod(d_w*v, s_w). The columns of one phase form an arithmetic
    progression, and so do their offsets, with the same offset step in every phase.

    A plan may also fold its columns: with fold F, the columns of a phase are taken F at a
    time, and each run of F (a block) is copied once, as the columns of its first tap. The
    matmul then has F times the rows (one per kernel and position i in the block) and the
    other F - 1 taps are shift-and-adds of its output by i * step columns. That trades copy
    and a short matmul (few kernels) for a taller, more efficient one.
    """

    order: tuple[int, ...]  # kernel columns v in buffer order (grouped by phase)
    groups: tuple[tuple[int, int, int, int], ...]  # (phase, blocks, first offset, offset step)
    blocks: tuple[tuple[int, ...], ...]  # kernel columns of each block, -1 past a phase's last
    fold: int = 1
    step: int = 1  # offset step between neighbouring taps of one phase

    @classmethod
    def of(cls, spec: ConvSpec, fold: int = 1) -> ColumnPlan:
        """Plan the columns of spec's kernel, taken `fold` taps per block."""
        kw, sw, dw = spec.kernel_size[1], spec.stride[1], spec.dilation[1]
        step = dw // math.gcd(dw, sw)
        order: list[int] = []
        groups = []
        blocks: list[tuple[int, ...]] = []
        for phase in range(sw):
            vs = [v for v in range(kw) if (dw * v) % sw == phase]
            if vs:
                order += vs
                n = -(-len(vs) // fold)
                groups.append((phase, n, (dw * vs[0]) // sw, fold * step))
                padded = vs + [-1] * (n * fold - len(vs))
                blocks += [tuple(padded[b * fold : (b + 1) * fold]) for b in range(n)]
        return cls(tuple(order), tuple(groups), tuple(blocks), fold, step)

    @property
    def extra(self) -> int:
        """Zero columns padded_phases must add on the right for this plan's zero-weight taps."""
        return (self.fold - 1) * self.step

    def width(self, w_out: int) -> int:
        """Columns per row in the buffer: W_out, plus the shifts of a folded plan."""
        return w_out + self.extra

    def weight_matrix(self, weight: NDArray[np.floating]) -> NDArray[np.floating]:
        """(fold * J, C * kh * blocks) matrix of weight (J, C, kh, kw) for buffers filled by this plan.

        Row i * J + j holds kernel j's taps at position i of each block (zero past a phase's end).
        """
        j, c, kh, _ = weight.shape
        out = np.zeros((self.fold, j, c, kh, len(self.blocks)), dtype=weight.dtype)
        for b, vs in enumerate(self.blocks):
            for i, v in enumerate(vs):
                if v >= 0:
                    out[i, :, :, :, b] = weight[:, :, :, v]
        return out.reshape(self.fold * j, c * kh * len(self.blocks))

    def unfold_weights(self, mat: NDArray[np.floating], cg: int, kh: int, kw: int) -> NDArray[np.floating]:
        """Inverse of weight_matrix: (fold * J, C * kh * blocks) back to (J, C, kh, kw).

        Entries of zero-weight slots (past a phase's last tap) are dropped.
        """
        m = mat.reshape(self.fold, -1, cg, kh, len(self.blocks))
        out = np.empty((m.shape[1], cg, kh, kw), dtype=mat.dtype)
        for b, vs in enumerate(self.blocks):
            for i, v in enumerate(vs):
                if v >= 0:
                    out[:, :, :, v] = m[i, :, :, :, b]
        return out

    def fill(
        self, cols: NDArray[np.floating], xq: NDArray[np.floating], spec: ConvSpec, row0: int
    ) -> None:
        """Copy into cols, shaped (C, kh, blocks, rows, width), the windows of rows row0...

        xq is padded_phases(x, ..., extra=self.extra); cols[c, u, b, r, n] = x_pad[c,
        s_h*(row0 + r) + d_h*u, s_w*n + d_w*v] for the first tap v of block b (without a fold,
        blocks are the columns in `order`).
        """
        c, kh, _, rows, width = cols.shape
        sh, dh = spec.stride[0], spec.dilation[0]
        i = 0
        for phase, count, off, step in self.groups:
            base = xq[phase, :, row0 * sh :, off:]
            s0, s1, s2 = base.strides
            last = (kh - 1) * dh + (rows - 1) * sh, (count - 1) * step + width - 1
            if last[0] >= base.shape[1] or last[1] >= base.shape[2]:
                raise RuntimeError("column plan reads outside the padded input")  # a bug, not input
            view = as_strided(
                base,
                shape=(c, kh, count, rows, width),
                strides=(s0, dh * s1, step * s2, sh * s1, s2),
                writeable=False,
            )
            np.copyto(cols[:, :, i : i + count], view)
            i += count


def strips(h_out: int, row_floats: int, *, backward: bool = False) -> list[tuple[int, int]]:
    """Split output rows into [start, stop) strips whose buffers hold about STRIP_FLOATS floats
    (BACKWARD_STRIP_FLOATS for the backward pass), given the floats one output row needs."""
    budget = BACKWARD_STRIP_FLOATS if backward else STRIP_FLOATS
    rows = max(1, budget // max(1, row_floats))
    return [(m, min(m + rows, h_out)) for m in range(0, h_out, rows)]


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(
            max_workers=max(1, _THREADS - 1), thread_name_prefix="convlens", initializer=single_threaded_blas
        )
    return _POOL


def run_chunks(work: Callable[[list[tuple[int, int]]], None], bands: list[tuple[int, int]]) -> None:
    """Call work(chunk) on contiguous runs of bands, one run per thread, the caller's included.

    The calling thread takes the first run itself, so only the others wait for a pool thread to
    wake up. BLAS stays on one thread until every run has finished (_blas.py).
    """
    n = max(1, min(_THREADS, len(bands)))
    size = -(-len(bands) // n)
    chunks = [bands[i : i + size] for i in range(0, len(bands), size)]
    if len(chunks) == 1:
        work(chunks[0])
        return
    with single_threaded_section():
        futures = [_pool().submit(work, chunk) for chunk in chunks[1:]]
        try:
            work(chunks[0])
        finally:
            wait(futures)
    for future in futures:
        future.result()


# Cost model of the folded forward pass, in multiply-adds per buffer column: a matmul row of
# M kernels costs max(M, 4) (BLAS runs short matmuls no faster), copying one buffer row 16,
# and shift-adding one matmul row 20. Fitted to 240 timed layers (C 1-3, J 1-32, kernel 3-9,
# stride 1-2, one fold each) on the 2-core benchmark machine: the fold it picks was within 4%
# of the fastest on average, against 23% for never folding.
_COPY_COST = 16
_SHIFT_ADD_COST = 20


def choose_fold(spec: ConvSpec, cg: int, jg: int, w_out: int) -> int:
    """The fold (see ColumnPlan) with the lowest modelled cost for this layer's forward pass."""
    kh = spec.kernel_size[0]

    def cost(fold: int) -> int:
        plan = ColumnPlan.of(spec, fold)
        k = cg * kh * len(plan.blocks)
        per_column = k * max(fold * jg, 4) + _COPY_COST * k + (_SHIFT_ADD_COST * fold * jg if fold > 1 else 0)
        return per_column * plan.width(w_out)

    longest = max(count for _, count, _, _ in ColumnPlan.of(spec).groups)
    return min(range(1, longest + 1), key=cost)


# Called in the worker thread on each finished strip of the output, (J/g, rows, W_out), while it
# is still in cache, with the index of the strip's first kernel.
Epilogue = Callable[[NDArray[np.floating], int], None]


def _im2col_forward(
    layer: ConvCall, fold: int | None = None, epilogue: Epilogue | None = None
) -> NDArray[np.floating]:
    x, weight, spec, groups = layer.x, layer.weight, layer.spec, layer.groups
    h_out, w_out = layer.out_hw
    cg, jg = layer.group_sizes
    kh = spec.kernel_size[0]
    plan = ColumnPlan.of(spec, choose_fold(spec, cg, jg, w_out) if fold is None else fold)
    f, width, nb = plan.fold, plan.width(w_out), len(plan.blocks)
    k = cg * kh * nb  # rows of the buffer
    xq = padded_phases(x, spec.padding, spec.stride[1], plan.extra)
    y = np.empty((weight.shape[0], h_out, w_out), dtype=x.dtype)
    w_mats = [plan.weight_matrix(weight[g * jg : (g + 1) * jg]) for g in range(groups)]
    z_rows = f * jg if f > 1 else 0
    bands = strips(h_out, (k + z_rows) * width)

    def work(chunk: list[tuple[int, int]]) -> None:
        rows_max = max(b - a for a, b in chunk)
        buf = np.empty(k * rows_max * width, dtype=x.dtype)
        zbuf = np.empty(z_rows * rows_max * width, dtype=x.dtype)
        for g in range(groups):
            xg = xq[:, g * cg : (g + 1) * cg]
            for a, b in chunk:
                rows = b - a
                cols = buf[: k * rows * width].reshape(cg, kh, nb, rows, width)
                plan.fill(cols, xg, spec, a)
                out = y[g * jg : (g + 1) * jg, a:b]
                if f == 1:
                    np.matmul(w_mats[g], cols.reshape(k, rows * width), out=out.reshape(jg, -1))
                else:
                    z = zbuf[: z_rows * rows * width].reshape(f, jg, rows, width)
                    np.matmul(w_mats[g], cols.reshape(k, rows * width), out=z.reshape(z_rows, -1))
                    step = plan.step
                    np.add(z[0, :, :, :w_out], z[1, :, :, step : step + w_out], out=out)
                    for i in range(2, f):
                        out += z[i, :, :, i * step : i * step + w_out]
                if epilogue is not None:
                    epilogue(out, g * jg)

    run_chunks(work, bands)
    return y


def conv2d(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> NDArray[np.floating]:
    """2-D convolution (cross-correlation, as PyTorch's conv2d).

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    weight : ndarray of shape (J, C / groups, kh, kw)
    bias : ndarray of shape (J,), a scalar, or None
    stride, dilation : int or (h, w) pair, >= 1
    padding : int or (h, w) pair >= 0, or 'same' / 'valid'
    groups : int dividing C and J; input channels and kernels are split into this many groups
    spec : a ConvSpec instead of stride, padding and dilation (its kernel_size must be (kh, kw))

    Returns
    -------
    y : ndarray of shape (J, H_out, W_out), float32 (float64 if an input is float64), with

        y[j, m, n] = b[j] + sum_c sum_u sum_v weight[j, c, u, v] * x_pad[g*C/groups + c,
                                                   s_h*m + d_h*u, s_w*n + d_w*v]

    where g = j // (J / groups), x_pad is x zero-padded by p on each side, and
    H_out = floor((H + 2 p_h - d_h (kh - 1) - 1) / s_h) + 1 (likewise W_out).
    """
    layer = prepare(x, weight, stride, padding, dilation, groups, spec=spec)
    b = check_bias(bias, layer.weight.shape[0], layer.x.dtype)
    if b is None:
        return _im2col_forward(layer)

    def add_bias(out: NDArray[np.floating], j0: int) -> None:
        out += b[j0 : j0 + out.shape[0], None, None]

    return _im2col_forward(layer, epilogue=add_bias)


@dataclass(frozen=True)
class FeatureMaps:
    """A layer's output σ(conv2d(x) + b), with each map's range and mean."""

    y: NDArray[np.floating]  # (J, H_out, W_out)
    minimum: NDArray[np.floating]  # (J,)
    maximum: NDArray[np.floating]  # (J,)
    mean: NDArray[np.float64]  # (J,), summed in float64 across strips


def conv_layer(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    activation: str = "none",
    *,
    spec: ConvSpec | None = None,
) -> FeatureMaps:
    """A whole conv layer, σ(conv2d(x) + b), and each feature map's min, max and mean.

    Arguments as in conv2d, and `activation` as in activate. The same numbers as
    activate(conv2d(...), activation) and its reductions, but the bias, σ and the statistics
    are applied to each strip of the output while the engine's threads still hold it in cache,
    instead of in three more passes over the whole output.
    """
    check_activation(activation)
    layer = prepare(x, weight, stride, padding, dilation, groups, spec=spec)
    j = layer.weight.shape[0]
    b = check_bias(bias, j, layer.x.dtype)
    parts: list[tuple[int, NDArray[np.floating], NDArray[np.floating], NDArray[np.float64]]] = []
    ones: dict[int, NDArray[np.floating]] = {}  # by length; setdefault keeps threads consistent

    def finish(out: NDArray[np.floating], j0: int) -> None:
        if b is not None:
            out += b[j0 : j0 + out.shape[0], None, None]
        _activate_in_place(out, activation)
        flat = out.reshape(out.shape[0], -1)
        n = flat.shape[1]
        vec = ones.get(n)
        if vec is None:
            vec = ones.setdefault(n, np.ones(n, dtype=flat.dtype))
        # The strip's sums as a BLAS matrix-vector product: 3x faster than np.sum, and summed
        # in float64 across strips.
        sums = (flat @ vec).astype(np.float64)
        parts.append((j0, flat.min(axis=1), flat.max(axis=1), sums))

    y = _im2col_forward(layer, epilogue=finish)
    lo = np.full(j, np.inf, dtype=y.dtype)
    hi = np.full(j, -np.inf, dtype=y.dtype)
    total = np.zeros(j)
    for j0, mins, maxs, sums in parts:  # list.append is atomic, so the threads' parts are all here
        sl = slice(j0, j0 + len(mins))
        np.minimum(lo[sl], mins, out=lo[sl])
        np.maximum(hi[sl], maxs, out=hi[sl])
        total[sl] += sums
    return FeatureMaps(y, lo, hi, total / (y.shape[1] * y.shape[2]))


def _activate_in_place(a: NDArray[np.floating], activation: str) -> None:
    """σ applied to a float array in place (see activate)."""
    if activation == "relu":
        np.maximum(a, 0, out=a)
    elif activation == "tanh":
        np.tanh(a, out=a)
    elif activation == "sigmoid":
        # e = exp(-|z|) never overflows; σ(z) = 1 / (1 + e) for z >= 0 and e / (1 + e) below.
        # Temporaries, not ufuncs in place on `a`: a strip can be a 1-D view with a large step,
        # and NumPy 2.4's np.negative(v, out=v) misreads such views (step 4 float32: it
        # negates neighbours instead).
        e = np.exp(-np.abs(a))
        r = 1 / (1 + e)
        np.copyto(a, np.where(a < 0, e * r, r))


def _as_float(y: ArrayLike) -> NDArray[np.floating]:
    a = np.asarray(y)
    return a if a.dtype.kind == "f" else a.astype(np.float64)


def check_activation(activation: str) -> None:
    """ValueError naming `activation` unless it is one of ACTIVATIONS."""
    if activation not in ACTIVATIONS:
        raise ArgumentError(
            "activation", f"`activation` must be one of {', '.join(ACTIVATIONS)}; got {activation!r}")


def activate(y: ArrayLike, activation: str = "none") -> NDArray[np.floating]:
    """Apply σ elementwise: 'none' (identity), 'relu', 'sigmoid' or 'tanh'."""
    check_activation(activation)
    a = _as_float(y)
    if activation == "none":
        return a
    out = np.array(a, copy=True)
    _activate_in_place(out, activation)
    return out


def activation_grad(y: ArrayLike, activation: str = "none") -> NDArray[np.floating]:
    """dσ/dz as a function of the pre-activation z = y, elementwise."""
    check_activation(activation)
    z = _as_float(y)
    if activation == "none":
        return np.ones_like(z)
    if activation == "relu":
        return (z > 0).astype(z.dtype)
    if activation == "sigmoid":
        s = activate(z, "sigmoid")
        return s * (1 - s)
    return 1 - np.tanh(z) ** 2  # tanh


@dataclass(frozen=True)
class Decimation:
    """Stride as decimation: the stride-1 output and the positions the stride keeps."""

    full: NDArray[np.floating]  # (J, H_full, W_full): the same layer at stride 1
    strided: NDArray[np.floating]  # (J, H_out, W_out) = full[:, ::s_h, ::s_w]
    kept_rows: NDArray[np.intp]  # (H_out,) indices into the full output's rows
    kept_cols: NDArray[np.intp]  # (W_out,)


def conv2d_decimated(
    x: ArrayLike,
    weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
) -> Decimation:
    """The strided conv computed as the stride-1 ("full") conv, then decimated.

    Output m of the strided layer reads rows s*m + d*u of the padded input, and output i of the
    stride-1 layer reads rows i + d*u, so strided[m] = full[s*m]: the stride only throws away
    outputs. Arguments and shapes as in conv2d; `strided` equals conv2d(...) exactly.
    """
    layer = prepare(x, weight, stride, padding, dilation, groups, spec=spec)
    s = layer.spec.stride
    full = conv2d(layer.x, layer.weight, bias, groups=layer.groups,
                  spec=ConvSpec(layer.spec.kernel_size, (1, 1), layer.spec.padding, layer.spec.dilation))
    rows = np.arange(0, full.shape[1], s[0])
    cols = np.arange(0, full.shape[2], s[1])
    return Decimation(full, full[:, :: s[0], :: s[1]], rows, cols)
