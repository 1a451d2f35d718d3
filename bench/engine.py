"""Benchmark of the NumPy engine against PyTorch's CPU conv2d, measured in the same run.

Prints, per case, the engine's forward and backward times, warm (the same shape repeated; the
median of several runs) and cold (the first call with a new shape, which is what a web request
with new settings meets; the median over three new shapes), the ratio to
torch.nn.functional.conv2d / torch autograd when torch is importable (an optional tool of this
script, never a dependency of the project), and the peak extra memory of the engine's forward
pass as a multiple of the output size (tracemalloc).

    .venv/bin/python bench/engine.py            # all cases
    .venv/bin/python bench/engine.py --quick    # fewer repeats
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from engine import conv2d, conv2d_backward  # noqa: E402

try:
    import torch
    import torch.nn.functional as F
except ImportError:  # torch is optional: without it only the engine's own times print
    torch = None


@dataclass(frozen=True)
class Case:
    name: str
    channels: int
    size: int
    kernels: int
    k: int
    stride: int = 1

    @property
    def padding(self) -> int:
        return self.k // 2


CASES = [
    Case("gray 1024² · one 3×3", 1, 1024, 1, 3),
    Case("gray 1024² · eight 3×3", 1, 1024, 8, 3),
    Case("RGB 1024² · eight 5×5", 3, 1024, 8, 5),
    Case("RGB 1024² · eight 7×7 s2 p3", 3, 1024, 8, 7, 2),
    Case("gray 4096² · one 3×3", 1, 4096, 1, 3),
]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def warm(fn: Callable[[], object], repeats: int) -> float:
    return statistics.median(timed(fn) for _ in range(repeats))


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    tracemalloc.start()
    tracemalloc.reset_peak()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak


def ms(t: float) -> str:
    return f"{t * 1e3:8.1f} ms"


COLD_SHAPES = 3  # cold times are the median of first calls on this many new shapes


def engine_calls(x: np.ndarray, w: np.ndarray, go: np.ndarray | None, kw: dict[str, int]):  # type: ignore[no-untyped-def]
    """(forward, backward) closures of the engine on these arrays."""
    def fwd() -> np.ndarray:
        return conv2d(x, w, None, **kw)

    def bwd() -> object:
        return conv2d_backward(x, w, go, **kw)

    return fwd, bwd


def torch_calls(x: np.ndarray, w: np.ndarray, go: np.ndarray, kw: dict[str, int]):  # type: ignore[no-untyped-def]
    """(forward, backward) closures of torch on these arrays; the backward's graph is built here."""
    assert torch is not None
    xt, wt = torch.from_numpy(x)[None], torch.from_numpy(w)
    xg, wg = xt.clone().requires_grad_(True), wt.clone().requires_grad_(True)
    yt = F.conv2d(xg, wg, None, **kw)
    gt = torch.from_numpy(go)[None]

    def fwd() -> object:
        with torch.no_grad():
            return F.conv2d(xt, wt, None, **kw)

    def bwd() -> object:
        return torch.autograd.grad(yt, (xg, wg), gt, retain_graph=True)

    return fwd, bwd


def first_calls(case: Case, w: np.ndarray, calls, rng: np.random.Generator) -> tuple[float, float]:  # type: ignore[no-untyped-def]
    """Median (forward, backward) time of the first call on COLD_SHAPES sizes not seen before.

    One first call is a single sample on a noisy machine; sizes just below the case's (new
    shapes for both libraries, same work within a fraction of a percent) give several.
    """
    fw, bw = [], []
    kw = {"stride": case.stride, "padding": case.padding}
    for i in range(1, COLD_SHAPES + 1):
        n = case.size - i
        x = rng.standard_normal((case.channels, n, n)).astype(np.float32)
        h_out = (n + 2 * case.padding - case.k) // case.stride + 1
        go = rng.standard_normal((case.kernels, h_out, h_out)).astype(np.float32)
        fwd, bwd = calls(x, w, go, kw)
        fw.append(timed(fwd))
        bw.append(timed(bwd))
    return statistics.median(fw), statistics.median(bw)


def measure(case: Case, rng: np.random.Generator, repeats: int) -> None:
    """Time one case, engine then torch, and print its rows."""
    x = rng.standard_normal((case.channels, case.size, case.size)).astype(np.float32)
    w = rng.standard_normal((case.kernels, case.channels, case.k, case.k)).astype(np.float32)
    kw = {"stride": case.stride, "padding": case.padding}
    e_cold, b_cold = first_calls(case, w, engine_calls, rng)
    fwd, _ = engine_calls(x, w, None, kw)
    e_warm = warm(fwd, repeats)
    y = fwd()
    go = rng.standard_normal(y.shape).astype(np.float32)
    _, bwd = engine_calls(x, w, go, kw)
    b_warm = warm(bwd, max(3, repeats // 3))
    peak = peak_extra_bytes(fwd)
    out_bytes = y.nbytes
    row = {"fwd": (e_cold, e_warm), "bwd": (b_cold, b_warm)}
    ref: dict[str, tuple[float, float]] = {}
    if torch is not None:
        time.sleep(0.3)  # let spinning BLAS/OpenMP threads of the other library go idle
        t_cold, tb_cold = first_calls(case, w, torch_calls, rng)
        tfwd, tbwd = torch_calls(x, w, go, kw)
        t_warm = warm(tfwd, repeats)
        tb_warm = warm(tbwd, max(3, repeats // 3))
        ref = {"fwd": (t_cold, t_warm), "bwd": (tb_cold, tb_warm)}
        yt = tfwd()
        err = float(np.abs(yt.numpy()[0] - y).max() / (np.abs(y).max() + 1e-30))  # type: ignore[attr-defined]
    for kind in ("fwd", "bwd"):
        cold, hot = row[kind]
        line = f"{case.name if kind == 'fwd' else '':30} {kind:9} {ms(cold):>12} {ms(hot):>12}"
        if ref:
            r_cold, r_hot = ref[kind]
            line += f" {ms(r_cold):>12} {ms(r_hot):>12} {hot / r_hot:9.2f}x {cold / r_cold:17.2f}x"
        print(line)
    extra = f"{'':30} {'memory':9} peak extra {peak / 2**20:.1f} MiB = {peak / out_bytes:.2f}x output"
    if ref:
        extra += f"; max rel. difference to torch {err:.1e}"
    print(extra)


def measure_train_step(repeats: int) -> None:
    """One training step (forward, MSE loss, backward to the weights, SGD update) of a 3×3 shared
    layer with eight kernels on a 512² RGB image: engine.train against torch autograd + torch.optim.SGD.

    The engine's step is one next() of train(..., every=1) (a report per step, so the time includes
    reporting); torch's is zero_grad, conv, mse_loss, backward and step, from the same start weights.
    Both times are medians of at least 15 steps after a warm-up step; the losses of the two runs
    are compared step by step.
    """
    from engine import make_target, train

    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 512, 512)).astype(np.float32)
    hidden = (rng.standard_normal((8, 3, 3, 3)) / 5).astype(np.float32)
    target = make_target(x, hidden, padding=1)
    lr, steps = 0.05, max(15, repeats) + 1  # a step is a few ms: always enough of them for a median
    time.sleep(0.3)  # let the previous section's torch (OpenMP) threads go idle
    t0 = time.perf_counter()
    training = train(x, target, 3, padding=1, optimizer="sgd", lr=lr, steps=steps, every=1)
    start = next(training)  # the windows copied once, and step 0's forward and backward
    setup = time.perf_counter() - t0
    engine_losses = [start.loss]
    times = []
    for _ in range(steps):
        t0 = time.perf_counter()
        engine_losses.append(next(training).loss)
        times.append(time.perf_counter() - t0)
    e_step = statistics.median(times[1:])
    line = f"{'train step · RGB 512² · 8 3×3':30} {'sgd step':9} {ms(setup):>12} {ms(e_step):>12}"
    if torch is not None:
        time.sleep(0.3)
        layer = torch.nn.Conv2d(3, 8, 3, padding=1)
        with torch.no_grad():
            layer.weight.copy_(torch.from_numpy(start.weight))
            layer.bias.copy_(torch.from_numpy(start.bias))
        opt = torch.optim.SGD(layer.parameters(), lr=lr)
        xt, tt = torch.from_numpy(x)[None], torch.from_numpy(target)[None]
        torch_losses, t_times = [], []
        for _ in range(steps + 1):
            t0 = time.perf_counter()
            opt.zero_grad()
            loss = F.mse_loss(layer(xt), tt)
            loss.backward()
            opt.step()
            t_times.append(time.perf_counter() - t0)
            torch_losses.append(float(loss.detach()))
        t_step = statistics.median(t_times[2:])
        diff = max(abs(a - b) / b for a, b in zip(engine_losses, torch_losses, strict=True))
        line += (f" {'':>12} {ms(t_step):>12} {e_step / t_step:9.2f}x  (target <= 1.5x; "
                 f"losses agree to {diff:.1e})")
    print(line)
    print(f"{'':30} {'':9} (the engine's 'cold' column here is setup: im2col once, then step 0)")



# ---- network issue: a layer stack, transposed conv, pooling, the effective receptive field ----

VGG_LIKE = [  # RGB 512²: conv3×3(8) → relu → maxpool2 → conv3×3(16) → relu → maxpool2 → conv3×3(32)
    {"kernel_size": 3, "padding": 1, "out_channels": 8}, {"kind": "relu"},
    {"kind": "maxpool", "kernel_size": 2},
    {"kernel_size": 3, "padding": 1, "out_channels": 16}, {"kind": "relu"},
    {"kind": "maxpool", "kernel_size": 2},
    {"kernel_size": 3, "padding": 1, "out_channels": 32},
]
ERF_STACK = [  # six layers on a gray 1024² image
    {"kernel_size": 3, "padding": 1, "out_channels": 8}, {"kind": "relu"},
    {"kind": "maxpool", "kernel_size": 2},
    {"kernel_size": 3, "padding": 1, "out_channels": 8}, {"kind": "relu"},
    {"kernel_size": 3, "padding": 1, "out_channels": 8},
]


def _torch_stack(layers):  # type: ignore[no-untyped-def]
    """(run, params): the stack as torch functions of a (1, C, H, W) tensor, with its weights."""
    assert torch is not None
    params = [tuple(torch.from_numpy(a).requires_grad_(True) for a in (la.weight, la.bias))
              for la in layers if la.weight is not None]

    def run(y):  # type: ignore[no-untyped-def]
        it = iter(params)
        for la in layers:
            if la.kind == "conv":
                w, b = next(it)
                y = F.conv2d(y, w, b, la.stride, la.padding, la.dilation, la.groups)
            elif la.kind == "relu":
                y = F.relu(y)
            elif la.kind == "maxpool":
                y = F.max_pool2d(y, la.kernel_size, la.stride, la.padding, la.dilation, la.ceil_mode)
        return y

    return run, [t for pair in params for t in pair]


def _row(name: str, kind: str, engine_s: float, torch_s: float | None, note: str = "") -> None:
    line = f"{name:30} {kind:9} {'':>12} {ms(engine_s):>12}"
    if torch_s is not None:
        line += f" {'':>12} {ms(torch_s):>12} {engine_s / torch_s:9.2f}x"
    print(line + (f"  {note}" if note else ""))


def measure_network(repeats: int) -> None:
    """The network issue's cases, warm medians against torch in the same process:

    (a) the VGG_LIKE stack on a 512² RGB image, forward, and forward plus backward to the input
        and every weight and bias (stack_forward + stack_backward against torch autograd);
    (b) conv_transpose2d (16 → 8 maps, 4×4, stride 2, padding 1: 256² → 512²), max_pool2d 2×2
        and avg_pool2d 3×3 stride 2 padding 1 on 16 × 512², forward and backward;
    (c) the effective receptive field of the centre unit of ERF_STACK on a gray 1024² image
        (effective_receptive_field: forward as far as the last non-linearity, one backward to the
        input) against one stack_forward of that stack, and against torch autograd's same gradient.
    """
    from engine import (
        avg_pool2d,
        avg_pool2d_backward,
        conv_transpose2d,
        conv_transpose2d_backward,
        effective_receptive_field,
        init_weights,
        max_pool2d,
        max_pool2d_backward,
        stack_backward,
        stack_forward,
    )

    rng = np.random.default_rng(2)
    reps = max(3, repeats // 2)
    # (a)
    x = rng.standard_normal((3, 512, 512)).astype(np.float32)
    layers = init_weights(VGG_LIKE, 3, seed=0)
    outs = stack_forward(x, layers)
    go = rng.standard_normal(outs[-1].shape).astype(np.float32)

    def train_pass() -> None:
        stack_backward(x, layers, stack_forward(x, layers), go)

    e_fwd, e_all = warm(lambda: stack_forward(x, layers), repeats), warm(train_pass, reps)
    t_fwd = t_all = None
    note = ""
    if torch is not None:
        time.sleep(0.3)
        run, params = _torch_stack(layers)
        xt, gt = torch.from_numpy(x)[None].requires_grad_(True), torch.from_numpy(go)[None]
        with torch.no_grad():
            t_fwd = warm(lambda: run(torch.from_numpy(x)[None]), repeats)
        t_all = warm(lambda: torch.autograd.grad(run(xt), [xt, *params], gt), reps)
        err = float(np.abs(run(xt).detach().numpy()[0] - outs[-1]).max() / np.abs(outs[-1]).max())
        note = f"(target <= 1.5x; max rel. difference {err:.1e})"
    _row("VGG-like stack · RGB 512²", "fwd", e_fwd, t_fwd)
    _row("", "fwd+bwd", e_all, t_all, note)
    # (b)
    xs = rng.standard_normal((16, 256, 256)).astype(np.float32)
    wt = (rng.standard_normal((16, 8, 4, 4)) / 8).astype(np.float32)
    y = conv_transpose2d(xs, wt, None, 2, 1)
    gy = rng.standard_normal(y.shape).astype(np.float32)
    xp = rng.standard_normal((16, 512, 512)).astype(np.float32)
    g_max = rng.standard_normal(max_pool2d(xp, 2).shape).astype(np.float32)
    g_avg = rng.standard_normal(avg_pool2d(xp, 3, 2, 1).shape).astype(np.float32)
    cases = [
        ("conv_transpose2d 256²→512²", lambda: conv_transpose2d(xs, wt, None, 2, 1),
         lambda: conv_transpose2d_backward(xs, wt, gy, 2, 1)),
        ("max_pool2d 2×2 · 16 × 512²", lambda: max_pool2d(xp, 2), lambda: max_pool2d_backward(xp, g_max, 2)),
        ("avg_pool2d 3×3 s2 p1 · 16×512²", lambda: avg_pool2d(xp, 3, 2, 1),
         lambda: avg_pool2d_backward(xp, g_avg, 3, 2, 1)),
    ]
    refs: list[tuple[Callable[[], object], Callable[[], object]] | None] = [None] * len(cases)
    if torch is not None:
        xst, wtt, gyt = torch.from_numpy(xs)[None], torch.from_numpy(wt), torch.from_numpy(gy)[None]
        xpt = torch.from_numpy(xp)[None]
        xs_g, wt_g, xp_g = (t.clone().requires_grad_(True) for t in (xst, wtt, xpt))
        yt = F.conv_transpose2d(xs_g, wt_g, None, 2, 1)
        mt, at = F.max_pool2d(xp_g, 2), F.avg_pool2d(xp_g, 3, 2, 1)
        refs = [
            (lambda: F.conv_transpose2d(xst, wtt, None, 2, 1),
             lambda: torch.autograd.grad(yt, (xs_g, wt_g), gyt, retain_graph=True)),
            (lambda: F.max_pool2d(xpt, 2),
             lambda: torch.autograd.grad(mt, xp_g, torch.from_numpy(g_max)[None], retain_graph=True)),
            (lambda: F.avg_pool2d(xpt, 3, 2, 1),
             lambda: torch.autograd.grad(at, xp_g, torch.from_numpy(g_avg)[None], retain_graph=True)),
        ]
    for (name, fwd, bwd), ref in zip(cases, refs, strict=True):
        e_f, e_b = warm(fwd, repeats), warm(bwd, reps)
        t_f = t_b = None
        if ref is not None:
            time.sleep(0.3)
            with torch.no_grad():
                t_f = warm(ref[0], repeats)
            t_b = warm(ref[1], reps)
        _row(name, "fwd", e_f, t_f)
        _row("", "bwd", e_b, t_b)
    # (c)
    xe = rng.standard_normal((1, 1024, 1024)).astype(np.float32)
    erf_layers = init_weights(ERF_STACK, 1, seed=1)
    unit = (len(erf_layers) - 1, 0, 256, 256)
    e_one = warm(lambda: stack_forward(xe, erf_layers), reps)
    e_erf = warm(lambda: effective_receptive_field(xe, erf_layers, unit), reps)
    line = (f"{'ERF · 6 layers · gray 1024²':30} {'erf':9} {'':>12} {ms(e_erf):>12}   "
            f"{e_erf / e_one:.2f}x one forward ({ms(e_one).strip()})")
    if torch is not None:
        time.sleep(0.3)
        run, _ = _torch_stack(erf_layers)
        xet = torch.from_numpy(xe)[None].requires_grad_(True)
        t_erf = warm(lambda: torch.autograd.grad(run(xet)[0, unit[1], unit[2], unit[3]], xet), reps)
        line += f"; torch autograd {ms(t_erf).strip()}, {e_erf / t_erf:.2f}x"
    print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 repeats instead of 9")
    parser.add_argument("--network", action="store_true", help="only the network issue's cases")
    args = parser.parse_args()
    repeats = 3 if args.quick else 9
    rng = np.random.default_rng(0)
    if torch is not None:
        torch.set_num_threads(2)
        # Initialise torch once on an unrelated shape so "cold" below is a new shape only.
        F.conv2d(torch.zeros(1, 1, 8, 8), torch.zeros(1, 1, 3, 3))
    print(f"numpy {np.__version__}" + (f", torch {torch.__version__} (CPU)" if torch else ", no torch"))
    header = (f"{'case':30} {'':9} {'engine cold':>12} {'engine warm':>12} {'torch cold':>12} "
              f"{'torch warm':>12} {'warm ratio':>10} {'cold vs torch cold':>18}")
    print(header)
    if args.network:
        measure_network(repeats)
        return
    for case in CASES:
        measure(case, rng, repeats)
    measure_train_step(repeats)
    measure_network(repeats)

if __name__ == "__main__":
    main()
