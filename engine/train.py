"""Learning a shared kernel live, one update per weight, against an untied layer that cannot generalise.

A hidden layer makes the target, t = σ(conv2d(x, W*) + b*) (+ Gaussian noise), and a layer of
the same geometry learns it from a random start by gradient descent on

    L = mean((σ(z) - t)^2),  z = conv2d(x, W) + b,  over all J * H_out * W_out outputs.

Each shared weight W[j, c, u, v] gets one update per step, from one gradient: the sum over all
H_out * W_out positions of its contributions (grad.py). The untied (locally connected) layer
(untied.py) learns the same target in lockstep, from the same start tied to every position, with
the same optimizer and learning rate: there each weight's gradient is its one position's
contribution. It has H_out * W_out times the parameters, fits the training image at least as well,
and fails on the same image shifted by a few pixels, where each of its weights meets other pixels.

The input is fixed while training, so its windows are copied once (untied.patches), as P of shape
(G, M, K') with M = H_out * W_out positions and K' = C/groups * kh * kw taps plus a column of ones
for the bias (a weight on a constant 1). A step is then, per group,

    shared:  z = W' @ P^T            (J/G, M),   dL/dW' = dL/dz @ P        (J/G, K')
    untied:  z[j, m] = W'_m[j] . P[m],          dL/dW'_m[j] = dL/dz[j, m] * P[m]

two BLAS matmuls for the shared layer (no input gradient: the input does not learn), run strip by
strip of positions on the engine's threads so that each strip of P is still in cache for the
second; an einsum and an outer product for the untied one.
"""

from __future__ import annotations

import math
import operator
import sys
from collections.abc import Generator, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from .conv import (
    _THREADS,
    _float_array,
    activate,
    activation_grad,
    check_activation,
    check_bias,
    conv2d,
    pad,
    run_chunks,
)
from .errors import ArgumentError, ArgumentTypeError
from .sharing import parameter_counts
from .spec import ConvSpec, IntOrPair, PaddingArg, Pair, as_pair, check_groups, spec_of
from .untied import patches, untied_conv2d

OPTIMIZERS = ("sgd", "momentum", "adam")
MOMENTUM = 0.9  # momentum: v = 0.9 v + g, W -= lr v (PyTorch's SGD with momentum, no dampening)
ADAM_BETAS = (0.9, 0.999)  # Adam's decay rates of the gradient's mean and of its square
ADAM_EPS = 1e-8  # Adam: W -= lr m̂ / (sqrt(v̂) + eps), as torch.optim.Adam
# Copies of the parameters each optimizer keeps besides the weights and their gradient.
_STATE_COPIES = {"sgd": 0, "momentum": 1, "adam": 3}  # adam: m, v and one scratch buffer
# Output-sized arrays a step holds at once: z, then σ(z) - t and the temporaries of σ'(z).
_OUTPUT_COPIES = {"none": 1, "relu": 4, "tanh": 4, "sigmoid": 5}


def make_target(
    x: ArrayLike,
    hidden_weight: ArrayLike,
    bias: ArrayLike | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
    activation: str = "none",
    noise: float = 0.0,
    seed: int = 0,
) -> NDArray[np.floating]:
    """The output of a hidden layer, for a layer to learn.

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    hidden_weight : ndarray of shape (J, C / groups, kh, kw), the kernels to be learned
    bias : ndarray of shape (J,), a scalar, or None
    stride, padding, dilation, groups, spec : as in conv2d
    activation : σ, one of ACTIVATIONS
    noise : standard deviation of Gaussian noise added to the target, >= 0
    seed : seed of the noise

    Returns
    -------
    target : ndarray of shape (J, H_out, W_out), t = σ(conv2d(x, hidden_weight) + bias) + noise * N(0, 1)
    """
    check_activation(activation)
    sigma = _real(noise, "noise")
    if sigma < 0:
        raise ArgumentError("noise", f"`noise` must be >= 0, got {noise!r}")
    rng = np.random.default_rng(_seed(seed))
    t = activate(conv2d(x, hidden_weight, bias, stride, padding, dilation, groups, spec=spec), activation)
    if sigma > 0:
        t = t + (sigma * rng.standard_normal(t.shape)).astype(t.dtype)
    return t


def shift_image(x: ArrayLike, shift: IntOrPair) -> NDArray[np.floating]:
    """The image moved by (dy, dx) pixels, down and right, wrapping around (np.roll).

    A circular shift keeps every pixel of the image, only moved: the content is the same, and only
    which position sees which pixel changes. (Cropping and zero-padding instead would add a band
    of new zero pixels and a new edge, mixing a change of content into a test of position.)

    Parameters
    ----------
    x : ndarray of shape (C, H, W)
    shift : int or (dy, dx), may be negative

    Returns
    -------
    ndarray of shape (C, H, W) with out[c, i, k] = x[c, (i - dy) mod H, (k - dx) mod W]
    """
    xa = _float_array(x, "x", 3)
    dy, dx = as_pair(shift, "shift", -sys.maxsize)
    return np.roll(xa, (dy, dx), axis=(1, 2))


@dataclass(frozen=True)
class TrainReport:
    """One step of training, as the trainer yields it."""

    step: int  # updates made so far: 0 is the random start
    loss: float  # L = mean((σ(z) - t)^2) of the shared layer at these weights
    weight: NDArray[np.floating]  # (J, C/groups, kh, kw), the shared weights after `step` updates
    bias: NDArray[np.floating] | None  # (J,)
    grad_weight: NDArray[np.floating]  # (J, C/groups, kh, kw), dL/dW here: each the sum over all positions
    grad_bias: NDArray[np.floating] | None  # (J,)
    untied_loss: float | None  # the untied layer's L after as many updates, when it trains too


@dataclass(frozen=True)
class TrainResult:
    """The learned layers at the end of training, with their parameter counts and final losses."""

    weight: NDArray[np.floating]  # (J, C/groups, kh, kw), the learned shared weights
    bias: NDArray[np.floating] | None  # (J,)
    untied_weight: NDArray[np.floating] | None  # (H_out, W_out, J, C/groups, kh, kw), when untied
    untied_bias: NDArray[np.floating] | None  # (H_out, W_out, J)
    loss: float  # the shared layer's training loss at its final weights
    untied_loss: float | None  # the untied layer's
    parameters: int  # shared: J * C/groups * kh * kw (+ J biases)
    untied_parameters: int  # untied: H_out * W_out * J * C/groups * kh * kw (+ H_out * W_out * J)
    steps: int
    input_shape: tuple[int, int, int]  # (C, H, W) of the training image
    spec: ConvSpec
    groups: int
    activation: str


class _Optimizer:
    """One optimizer's state for one parameter array; step() updates it in place."""

    def __init__(self, kind: str, lr: float, param: NDArray[np.floating]) -> None:
        self.kind, self.lr, self.t = kind, lr, 0
        self.state = [np.zeros_like(param) for _ in range(_STATE_COPIES[kind])]

    def step(self, param: NDArray[np.floating], grad: NDArray[np.floating]) -> None:
        """One update from grad, which is used as scratch (overwritten)."""
        self.t += 1
        if self.kind == "sgd":  # W -= lr g
            grad *= self.lr
            param -= grad
        elif self.kind == "momentum":  # v = 0.9 v + g; W -= lr v
            (v,) = self.state
            v *= MOMENTUM
            v += grad
            np.multiply(v, self.lr, out=grad)
            param -= grad
        else:  # adam: m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2; W -= lr m̂ / (sqrt(v̂) + eps)
            m, v, s = self.state
            b1, b2 = ADAM_BETAS
            v *= b2
            np.square(grad, out=s)
            s *= 1 - b2
            v += s
            m *= b1
            grad *= 1 - b1
            m += grad
            np.sqrt(v, out=s)
            s *= 1 / math.sqrt(1 - b2**self.t)
            s += ADAM_EPS
            np.divide(m, s, out=s)
            s *= self.lr / (1 - b1**self.t)
            param -= s


# Positions per strip of the shared layer's fused step: its windows (K' floats each) and outputs
# (J each) stay in cache between the forward matmul and the gradient's.
STEP_STRIP_FLOATS = 1 << 17


def _strip_positions(width: int, jg: int) -> int:
    """Positions per strip of the fused shared step, for K' = width and J/G = jg."""
    return max(256, STEP_STRIP_FLOATS // (width + 2 * jg))


class _Layer:
    """The parameters of one layer in the training layout, with its gradient and optimizer."""

    def __init__(self, params: NDArray[np.floating], untied: bool, optimizer: str, lr: float,
                 out_shape: tuple[int, int, int]) -> None:
        self.params = params  # shared (G, J/G, K'), untied (M, G, J/G, K')
        self.untied = untied
        self.grad = np.empty_like(params)
        # The untied layer's output (G, J/G, M); the shared layer works strip by strip instead.
        self.z = np.empty(out_shape if untied else (0,), dtype=params.dtype)
        self.optimizer = _Optimizer(optimizer, lr, params)

    def loss_and_grad(self, cols: NDArray[np.floating], target: NDArray[np.floating],
                      activation: str) -> float:
        """L at the current parameters; leaves dL/dparams in self.grad."""
        if not self.untied:
            return self._shared_loss_and_grad(cols, target, activation)
        z = self.z
        np.einsum("mgjk,gmk->gjm", self.params, cols, out=z)
        n = z.size
        loss, dz = _residual(z, target, activation)
        dz *= 2 / n  # dL/dz
        # Each weight's own contribution: dL/dz[j, m] * P[m].
        np.multiply(dz.transpose(2, 0, 1)[..., None], cols.transpose(1, 0, 2)[:, :, None, :],
                    out=self.grad)
        return loss / n

    def _shared_loss_and_grad(self, cols: NDArray[np.floating], target: NDArray[np.floating],
                              activation: str) -> float:
        """The shared step fused per strip of positions, on the engine's threads.

        For strip S: z_S = W' @ P_S^T, then the residual, its square sum and dL/dz_S, and
        dL/dW' += dL/dz_S @ P_S while P_S is still in cache. Each thread sums its strips; the
        threads' sums are added in strip order, so the result does not depend on timing.
        """
        g, jg, width = self.params.shape
        m = cols.shape[1]
        size = min(m, _strip_positions(width, jg))
        bands = [(a, min(a + size, m)) for a in range(0, m, size)]
        parts: dict[int, tuple[float, NDArray[np.floating]]] = {}
        params = self.params

        def work(chunk: list[tuple[int, int]]) -> None:
            total = 0.0
            grad = np.zeros_like(params)
            z = np.empty((g, jg, size), dtype=params.dtype)
            part = np.empty_like(params)
            for a, b in chunk:
                zs = z[:, :, : b - a]
                np.matmul(params, cols[:, a:b].transpose(0, 2, 1), out=zs)
                loss, dz = _residual(zs, target[:, :, a:b], activation)
                total += loss
                np.matmul(dz, cols[:, a:b], out=part)
                grad += part
            parts[chunk[0][0]] = (total, grad)

        run_chunks(work, bands)
        n = g * jg * m
        loss = 0.0
        self.grad[...] = 0
        for key in sorted(parts):
            loss += parts[key][0]
            self.grad += parts[key][1]
        self.grad *= 2 / n  # dL/dW' = (2 / n) * sum of residual * window
        return loss / n

    def update(self) -> None:
        self.optimizer.step(self.params, self.grad)


def _residual(z: NDArray[np.floating], target: NDArray[np.floating],
              activation: str) -> tuple[float, NDArray[np.floating]]:
    """(sum (σ(z) - t)^2, (σ(z) - t) σ'(z)); z itself becomes the residual when σ is the identity."""
    if activation == "none":
        d = np.subtract(z, target, out=z)
        flat = d.reshape(-1)
        return float(flat @ flat), d
    d = activate(z, activation)
    d -= target
    flat = d.reshape(-1)
    total = float(flat @ flat)
    d *= activation_grad(z, activation)
    return total, d


def _real(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.floating | np.integer):
        raise ArgumentTypeError(name, f"`{name}` must be a real number, got {value!r}")
    f = float(value)
    if not math.isfinite(f):
        raise ArgumentError(name, f"`{name}` must be finite, got {value!r}")
    return f


def _int(value: object, name: str, minimum: int) -> int:
    try:
        if isinstance(value, bool):
            raise TypeError
        i = operator.index(value)  # type: ignore[arg-type]
    except TypeError:
        raise ArgumentTypeError(name, f"`{name}` must be an int >= {minimum}, got {value!r}") from None
    if i < minimum:
        raise ArgumentError(name, f"`{name}` must be an int >= {minimum}, got {value!r}")
    return i


def _check_optimizer(optimizer: str) -> None:
    if optimizer not in OPTIMIZERS:
        raise ArgumentError(
            "optimizer", f"`optimizer` must be one of {', '.join(OPTIMIZERS)}; got {optimizer!r}")


def _seed(seed: object) -> int:
    return _int(seed, "seed", 0)


def train(
    x: ArrayLike,
    target: ArrayLike,
    kernel_size: IntOrPair | None = None,
    stride: IntOrPair = 1,
    padding: PaddingArg = 0,
    dilation: IntOrPair = 1,
    groups: int = 1,
    *,
    spec: ConvSpec | None = None,
    with_bias: bool = True,
    activation: str = "none",
    optimizer: str = "adam",
    lr: float = 0.01,
    steps: int = 200,
    every: int = 10,
    seed: int = 0,
    untied: bool = False,
) -> Generator[TrainReport, None, TrainResult]:
    """Fit a conv layer (and, with untied=True, its untied twin) to a target, step by step.

    Parameters
    ----------
    x : ndarray of shape (C, H, W), the training image
    target : ndarray of shape (J, H_out, W_out), for example make_target(x, hidden_weight, ...)
    kernel_size, stride, padding, dilation, groups, spec : the layer to learn, as in conv2d
    with_bias : learn a bias (J,) too (the untied layer: one per position, (H_out, W_out, J))
    activation : σ of the layer, one of ACTIVATIONS; the loss is mean((σ(z) - target)^2)
    optimizer : 'sgd' (W -= lr g), 'momentum' (v = 0.9 v + g; W -= lr v) or 'adam' (betas 0.9
        and 0.999, eps 1e-8: torch.optim.Adam's update)
    lr : learning rate, > 0, the same for both layers
    steps : number of updates, >= 0
    every : report every this many steps, >= 1; step 0 (the start) and the last are always reported
    seed : seed of the random start: weights and biases uniform in ±1/sqrt(C/groups * kh * kw),
        PyTorch's default for Conv2d. The untied layer starts from the same kernel at every position,
        so both layers compute the same output (and loss) at step 0.
    untied : also train the untied layer, in lockstep

    Returns
    -------
    A generator: it yields a TrainReport at the reported steps, and returns (StopIteration.value,
    or `result = yield from train(...)`) a TrainResult. Arguments are checked when train() is
    called, before any step; closing the generator stops the training. The same arguments give
    the same reports.

    Notes
    -----
    A shared weight's gradient is the sum of M = H_out * W_out contributions, and an untied weight's
    is one of them, so under the mean loss the untied gradients are about M times smaller. The
    untied layer still gets the same optimizer and learning rate: that is the honest comparison
    (both layers see the same loss), and it shows the cost of untying. With 'sgd' and 'momentum' the
    untied layer therefore learns about M times more slowly; Adam divides each gradient by its own
    running size, so there the untied layer moves as fast as the shared one and fits the training
    image, and only fails to generalise (see evaluate).
    """
    xa = _float_array(x, "x", 3)
    ta = _float_array(target, "target", 3)
    dtype = np.result_type(xa, ta)
    xa, ta = xa.astype(dtype, copy=False), ta.astype(dtype, copy=False)
    layer_spec = spec_of(kernel_size, stride, padding, dilation, spec)
    groups = check_groups(groups)
    c, j = xa.shape[0], ta.shape[0]
    if c % groups or j % groups:
        raise ArgumentError(
            "groups", f"`groups`={groups} must divide both the input channels ({c}) and the target's "
            f"maps ({j})")
    out_hw = layer_spec.output_shape(xa.shape[1:])
    if ta.shape[1:] != out_hw:
        raise ArgumentError(
            "target", f"`target` must have the layer's output shape ({j}, {out_hw[0]}, {out_hw[1]}), "
            f"got {ta.shape}")
    check_activation(activation)
    _check_optimizer(optimizer)
    rate = _real(lr, "lr")
    if rate <= 0:
        raise ArgumentError("lr", f"`lr` must be > 0, got {lr!r}")
    n_steps, n_every, n_seed = _int(steps, "steps", 0), _int(every, "every", 1), _seed(seed)
    for name, flag in (("with_bias", with_bias), ("untied", untied)):
        if not isinstance(flag, bool | np.bool_):
            raise ArgumentTypeError(name, f"`{name}` must be true or false, got {flag!r}")
    return _train(xa, ta, layer_spec, groups, bool(with_bias), activation, optimizer, rate, n_steps, n_every,
                  n_seed, bool(untied))


def _train(
    x: NDArray[np.floating], target: NDArray[np.floating], spec: ConvSpec, groups: int, with_bias: bool,
    activation: str, optimizer: str, lr: float, steps: int, every: int, seed: int, untied: bool,
) -> Generator[TrainReport, None, TrainResult]:
    """The training loop of train(), on checked arguments."""
    c_in, j = x.shape[0], target.shape[0]
    cg, jg = c_in // groups, j // groups
    kh, kw = spec.kernel_size
    k = cg * kh * kw
    width = k + with_bias  # K': the taps, and a constant 1 for the bias
    out_hw = spec.output_shape(x.shape[1:])
    m = out_hw[0] * out_hw[1]
    cols = np.empty((groups, m, width), dtype=x.dtype)  # (G, M, K')
    patches(pad(x, spec.padding), spec, groups, out_hw, (0, out_hw[0]), out=cols[:, :, :k])
    if with_bias:
        cols[:, :, k] = 1
    t = target.reshape(groups, jg, m)

    rng = np.random.default_rng(seed)
    bound = 1 / math.sqrt(k)
    start = np.empty((groups, jg, width), dtype=x.dtype)
    start[:, :, :k] = rng.uniform(-bound, bound, (j, cg, kh, kw)).reshape(groups, jg, k)
    if with_bias:
        start[:, :, k] = rng.uniform(-bound, bound, (groups, jg))
    shared = _Layer(start, False, optimizer, lr, (groups, jg, m))
    local = None
    if untied:
        local = _Layer(np.broadcast_to(start, (m, *start.shape)).copy(), True, optimizer, lr,
                       (groups, jg, m))

    def weights(a: NDArray[np.floating]) -> NDArray[np.floating]:
        return a[:, :, :k].reshape(j, cg, kh, kw).copy()

    def biases(a: NDArray[np.floating]) -> NDArray[np.floating] | None:
        return a[:, :, k].reshape(j).copy() if with_bias else None

    loss = untied_loss = math.nan
    for step in range(steps + 1):
        loss = shared.loss_and_grad(cols, t, activation)
        if local is not None:
            untied_loss = local.loss_and_grad(cols, t, activation)
        if step % every == 0 or step == steps:
            yield TrainReport(step, loss, weights(shared.params), biases(shared.params),
                              weights(shared.grad), biases(shared.grad),
                              untied_loss if local is not None else None)
        if step < steps:
            shared.update()
            if local is not None:
                local.update()

    counts = parameter_counts(x.shape, (j, cg, kh, kw), groups=groups, spec=spec)
    untied_w = untied_b = None
    if local is not None:  # views of the training layout (M, G, J/G, K'): no copy
        untied_w = local.params[..., :k].reshape(*out_hw, j, cg, kh, kw)
        untied_b = local.params[..., k].reshape(*out_hw, j) if with_bias else None
    return TrainResult(
        weights(shared.params), biases(shared.params), untied_w, untied_b, loss,
        untied_loss if local is not None else None,
        counts.conv_weights + (counts.conv_biases if with_bias else 0),
        counts.untied_weights + (counts.untied_biases if with_bias else 0),
        steps, (c_in, x.shape[1], x.shape[2]), spec, groups, activation)


def collect(training: Generator[TrainReport, None, TrainResult]) -> tuple[list[TrainReport], TrainResult]:
    """Run a train() generator to its end: (every report, the TrainResult)."""
    reports = []
    while True:
        try:
            reports.append(next(training))
        except StopIteration as stop:
            return reports, stop.value


def layer_losses(result: TrainResult, x: ArrayLike, target: ArrayLike) -> tuple[float, float | None]:
    """(shared, untied) loss mean((σ(z) - target)^2) of a TrainResult's layers on another input.

    x must have the training image's shape (C, H, W) (the untied layer has weights for those
    positions only), and target the output's shape (J, H_out, W_out). The untied loss is None
    when the untied layer was not trained.
    """
    xa = _float_array(x, "x", 3)
    if xa.shape != result.input_shape:
        raise ArgumentError(
            "x", f"`x` must have the training image's shape {result.input_shape} (the untied layer has "
            f"weights for its positions only), got {xa.shape}")
    ta = _float_array(target, "target", 3)
    j = result.weight.shape[0]
    expected = (j, *result.spec.output_shape(xa.shape[1:]))
    if ta.shape != expected:
        raise ArgumentError("target", f"`target` must have the output's shape {expected}, got {ta.shape}")

    def mse(z: NDArray[np.floating]) -> float:
        d = activate(z, result.activation) - ta
        return float(np.mean(d.astype(np.float64) ** 2))

    shared = mse(conv2d(xa, result.weight, result.bias, groups=result.groups, spec=result.spec))
    if result.untied_weight is None:
        return shared, None
    z = untied_conv2d(xa, result.untied_weight, result.untied_bias, groups=result.groups, spec=result.spec)
    return shared, mse(z)


@dataclass(frozen=True)
class LayerLosses:
    """One layer's size and its losses on the training image and on images it never saw."""

    parameters: int
    train_loss: float  # on the training image (its target, noise included), at the final weights
    shifted_loss: float  # on the training image shifted by `shift` (np.roll)
    second_loss: float | None  # on the second image, when one was given


@dataclass(frozen=True)
class Evaluation:
    """What was learned, what was hidden, and how each layer does on inputs it never saw."""

    weight: NDArray[np.floating]  # (J, C/groups, kh, kw), learned
    bias: NDArray[np.floating] | None  # (J,), learned
    target_weight: NDArray[np.floating]  # (J, C/groups, kh, kw), the hidden kernels
    target_bias: NDArray[np.floating] | None  # (J,)
    shift: Pair  # (dy, dx) of the shifted test image
    shared: LayerLosses
    untied: LayerLosses | None  # None when the untied layer was not trained


def evaluate(
    result: TrainResult,
    x: ArrayLike,
    hidden_weight: ArrayLike,
    hidden_bias: ArrayLike | None = None,
    *,
    shift: IntOrPair = (2, 3),
    x_second: ArrayLike | None = None,
    noise: float = 0.0,
    seed: int = 0,
) -> Evaluation:
    """Both layers on inputs they never saw: the training image shifted, and a second image.

    Parameters
    ----------
    result : the TrainResult of train(x, make_target(x, hidden_weight, hidden_bias, ...), ...)
    x : ndarray of shape (C, H, W), the training image
    hidden_weight, hidden_bias : the hidden layer that made the training target
    shift : (dy, dx), how far shift_image moves x for the first test (a circular shift)
    x_second : ndarray of x's shape, another image, or None
    noise : the noise of the test targets (each test gets its own draw, seeds seed + 1 and + 2)
    seed : the seed the training target's noise used

    Returns
    -------
    Evaluation. Each test target is the hidden layer's output on the test image (make_target with
    the result's geometry and σ). The shared layer applies its one kernel everywhere, so if it
    learned the hidden kernel its test losses match its train loss (the noise floor). The untied
    layer fitted each position to the pixels that position saw; shifted, every weight meets other
    pixels, and its test loss is many times its train loss.
    """
    xa = _float_array(x, "x", 3)
    hw = _float_array(hidden_weight, "hidden_weight", 4)
    if hw.shape != result.weight.shape:
        raise ArgumentError(
            "hidden_weight", f"`hidden_weight` must have the learned weights' shape {result.weight.shape}, "
            f"got {hw.shape}")
    dy_dx = as_pair(shift, "shift", -sys.maxsize)
    shifted = shift_image(xa, dy_dx)
    tests = [(shifted, _seed(seed) + 1)]
    if x_second is not None:
        xs = _float_array(x_second, "x_second", 3)
        if xs.shape != xa.shape:
            raise ArgumentError(
                "x_second", f"`x_second` must have the training image's shape {xa.shape}, got {xs.shape}")
        tests.append((xs, _seed(seed) + 2))
    shared_losses: list[float] = []
    untied_losses: list[float] = []
    for xt, test_seed in tests:
        t = make_target(xt, hw, hidden_bias, groups=result.groups, spec=result.spec,
                        activation=result.activation, noise=noise, seed=test_seed)
        shared_loss, untied_loss = layer_losses(result, xt, t)
        shared_losses.append(shared_loss)
        if untied_loss is not None:
            untied_losses.append(untied_loss)
    second = 1 if x_second is not None else None
    shared = LayerLosses(result.parameters, result.loss, shared_losses[0],
                         None if second is None else shared_losses[second])
    untied = None
    if result.untied_loss is not None:
        untied = LayerLosses(result.untied_parameters, result.untied_loss, untied_losses[0],
                             None if second is None else untied_losses[second])
    hb = check_bias(hidden_bias, hw.shape[0], hw.dtype)
    return Evaluation(result.weight, result.bias, hw, hb, dy_dx, shared, untied)


@dataclass(frozen=True)
class TrainCost:
    """The work and memory of a training run, from shapes alone."""

    multiply_adds: int  # forward and weight gradient, at steps + 1 points (the last is reported)
    peak_bytes: int  # largest memory the run holds at once: input windows, outputs, parameters and state


def train_cost(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    spec: ConvSpec,
    steps: int,
    untied: bool,
    *,
    groups: int = 1,
    with_bias: bool = True,
    optimizer: str = "adam",
    activation: str = "none",
    itemsize: int = 4,
) -> TrainCost:
    """Cost a train() call before running it.

    Parameters
    ----------
    input_shape : (C, H, W)
    weight_shape : (J, C / groups, kh, kw), the shared layer's weights
    spec : the layer's ConvSpec; groups, with_bias, optimizer, activation as in train
    steps : updates; each of the steps + 1 points computes a forward pass and a weight gradient
    untied : whether the untied layer trains too
    itemsize : bytes per float, 4 (float32) or 8 (float64)

    Returns
    -------
    TrainCost with, for K' = C/groups * kh * kw + with_bias and M = H_out * W_out,

        multiply_adds = (steps + 1) * 2 * J * K' * M * (2 if untied else 1)
        peak_bytes = itemsize * (C*H*W + C*Hp*Wp + G*M*K' + J*M + a * J*S
                                 + untied * (a * J*M + (2 + state) * J*K'*M))

    (the input and its padded copy, the windows P and the target; the shared layer's outputs and
    σ's temporaries for the S = min(M, threads * strip) positions its threads hold at once; the
    untied layer's outputs and σ's temporaries, weights, gradient and optimizer state: 0 copies
    for sgd, 1 momentum, 3 adam). a counts z and, when σ is not the identity, σ(z) - t and the
    temporaries of σ'(z): a = 1 for 'none', 4 for relu and tanh, 5 for sigmoid. A tracemalloc test
    keeps this an upper bound within 1.5x of the measured peak.
    """
    if not isinstance(spec, ConvSpec):
        raise ArgumentTypeError("spec", f"`spec` must be a ConvSpec, got {type(spec).__name__}")
    check_activation(activation)
    _check_optimizer(optimizer)
    if isinstance(itemsize, bool) or itemsize not in (4, 8):
        raise ArgumentError("itemsize", f"`itemsize` must be 4 or 8, got {itemsize!r}")
    n_steps = _int(steps, "steps", 0)
    counts = parameter_counts(input_shape, weight_shape, groups=groups, spec=spec)
    c_in, h, w = (int(v) for v in input_shape)
    j, cg, kh, kw = (int(v) for v in weight_shape)
    m = counts.positions
    width = cg * kh * kw + bool(with_bias)
    (ph, pw) = spec.padding
    per_pass = 2 * j * width * m
    outputs = _OUTPUT_COPIES[activation]
    held = min(m, _THREADS * _strip_positions(width, j // groups))
    floats = (c_in * h * w + c_in * (h + 2 * ph) * (w + 2 * pw) + groups * m * width + j * m
              + outputs * j * held)
    if untied:
        floats += outputs * j * m + (2 + _STATE_COPIES[optimizer]) * j * width * m
    return TrainCost((n_steps + 1) * per_pass * (2 if untied else 1), itemsize * floats)
