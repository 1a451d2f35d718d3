"""A training stream's work: its setup (checked, costed, the target made), the run of the engine's
trainer a chunk at a time, and the NDJSON lines it makes (app/routes/train.py streams them).

A training slot (Trainings, CONVLENS_MAX_TRAININGS per process) is held from the start of a run to
the moment its generator is closed, however the stream ends.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Generator
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from fastapi import Request
from numpy.typing import NDArray
from prometheus_client import Counter, Gauge
from pydantic import BaseModel

from engine import (
    TrainReport,
    TrainResult,
    activate,
    conv2d,
    evaluate,
    make_target,
    shift_image,
    train,
    untied_conv2d,
)

from . import draw, images, schemas
from .encode import data_uri, floats
from .errors import ParamError
from .layer import LayerStack, target_weights
from .pages import SAMPLES, STATIC_DIR
from .params import Parsed
from .pool import ServerBusy
from .routes import Services
from .settings import Settings
from .weights import check_squares, magnitude

log = logging.getLogger("convlens.train")
SHIFT = (2, 3)  # the shifted test image: the training image moved 2 rows down, 3 columns right (np.roll)


class Trainings:
    """One app's training streams: how many run (at most CONVLENS_MAX_TRAININGS), and their metrics."""

    def __init__(self, settings: Settings, registry: Any) -> None:
        self.limit = settings.max_trainings
        self.running = 0
        self._lock = threading.Lock()
        self.steps = Counter("convlens_train_steps", "Training steps computed by POST /api/train (each: "
                             "forward, loss and gradient of the shared layer, and of the untied one)",
                             registry=registry)
        self.streams = Gauge("convlens_trainings", "POST /api/train streams running now", registry=registry)
        self.ended = Counter("convlens_train_streams", "POST /api/train streams ended, by how", ["end"],
                             registry=registry)

    def acquire(self) -> None:
        """Take a slot, or ServerBusy (503) when every one is taken."""
        with self._lock:
            if self.running >= self.limit:
                raise ServerBusy(f"{self.running} trainings are running, the most this server runs at once "
                                 "(CONVLENS_MAX_TRAININGS); try again when one has finished", retry_after=5)
            self.running += 1
        self.streams.inc()

    def release(self) -> None:
        with self._lock:
            self.running -= 1
        self.streams.dec()


_TRAININGS_LOCK = threading.Lock()


def trainings_of(request: Request) -> Trainings:
    """The app's Trainings, made on first use with the app's settings and metrics registry."""
    state = request.app.state
    with _TRAININGS_LOCK:
        if getattr(state, "trainings", None) is None:
            state.trainings = Trainings(state.settings, state.metrics.registry)
        trainings: Trainings = state.trainings
    return trainings


@dataclass(frozen=True)
class Setup:
    """A training run, built and checked before the stream starts."""

    stack: LayerStack
    hidden: NDArray[np.float32]  # (J, C/groups, kh, kw), the hidden kernels
    hidden_bias: NDArray[np.float32]  # (J,)
    x_second: NDArray[np.float32] | None  # (C, H, W), the second test image, fitted
    second_name: str | None
    params: schemas.TrainParams


def _second_image(params: schemas.TrainParams, services: Services, stack: LayerStack
                  ) -> tuple[NDArray[np.float32] | None, str | None]:
    """The second test image, fitted to the training image's size, and its name."""
    if params.test_image is not None and params.test_image_id is not None:
        raise ParamError("test_image_id", "give `test_image` (a sample) or `test_image_id`, not both")
    if params.test_image is not None:
        if params.test_image not in SAMPLES:
            raise ParamError("test_image", f"`test_image` must be one of {', '.join(SAMPLES)}, got "
                             f"{params.test_image!r}")
        data = (STATIC_DIR / "samples" / SAMPLES[params.test_image][0]).read_bytes()
        pixels, name = images.decode_upload(data, services.settings).pixels, params.test_image
    elif params.test_image_id is not None:
        pixels, name = services.store.require(params.test_image_id).pixels, params.test_image_id
    else:
        return None, None
    fitted = images.fit(pixels, stack.image.height, stack.image.width)
    return images.to_input(fitted, params.color), name


def prepare(parsed: Parsed[schemas.TrainParams], services: Services) -> Setup:
    """The layer, the hidden kernels and the test image, checked and costed; ParamError (422) names
    a field."""
    params, settings = parsed.params, services.settings
    reports = math.ceil(params.steps / params.every) + 2
    if reports > settings.max_train_reports:
        raise ParamError("every", f"`every`: {params.steps:,} steps reported every {params.every:,} make "
                         f"{reports:,} lines, over the limit of {settings.max_train_reports:,} "
                         "(CONVLENS_MAX_TRAIN_REPORTS); report less often")
    if params.noise > settings.max_output_magnitude:
        raise ParamError("noise", f"`noise` must be at most {settings.max_output_magnitude:.3g} "
                         "(CONVLENS_MAX_OUTPUT_MAGNITUDE)")
    stack = services.build(parsed, "train")
    layer = stack.layer
    hidden, field = target_weights(params, settings, stack.channels)
    if hidden is None:
        raise ParamError("target_kernels", "give the hidden kernels to learn: `target_kernels` (presets) "
                         "or `target_weights`")
    if hidden.shape != layer.weight.shape:
        raise ParamError(field, f"`{field}`: the hidden layer must have the layer's {layer.kernels} "
                         f"kernel(s) of {layer.weight.shape[2]}x{layer.weight.shape[3]}, got "
                         f"{hidden.shape[0]} of {hidden.shape[2]}x{hidden.shape[3]} (set `kernels` or "
                         "`weights` to its shape)")
    # The loss is an mse against the target's outputs: their squares must not overflow float32.
    bound = magnitude(hidden, layer.bias) + params.noise
    big_bias = float(np.abs(layer.bias).max()) > bound / 2
    check_squares(stack.output_values, bound, "bias" if big_bias else field)
    x_second, name = _second_image(params, services, stack)
    return Setup(stack, hidden, layer.bias, x_second, name, params)


def _finite(*values: float | NDArray[np.floating] | None) -> bool:
    return all(v is None or bool(np.isfinite(v).all()) for v in values)


class TrainingRun:
    """One stream's training: the engine's generator, advanced a chunk at a time in the compute pool.

    The generator runs with every=1, so a chunk can end after any step; the lines are made for the
    request's `every`. stop() may come from the event loop while a chunk runs in a pool thread: the
    generator is closed by whichever of the two holds it last (a generator cannot be closed while
    it runs).
    """

    def __init__(self, setup: Setup, trainings: Trainings) -> None:
        self.setup = setup
        self.trainings = trainings  # its slot is given back when the generator is closed
        p, stack = setup.params, setup.stack
        layer = stack.layer
        self.target = make_target(stack.x, setup.hidden, setup.hidden_bias, groups=layer.groups,
                                  spec=layer.spec, activation=layer.activation, noise=p.noise, seed=p.seed)
        self._training: Generator[TrainReport, None, TrainResult] = train(
            stack.x, self.target, groups=layer.groups, spec=layer.spec, with_bias=p.learn_bias,
            activation=layer.activation, optimizer=p.optimizer, lr=p.lr, steps=p.steps, every=1,
            seed=p.seed, untied=p.untied)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._closed = False
        self.started = time.perf_counter()
        self.step = -1  # the last step computed
        self.finished = False  # the done (or error) line has been made
        self.end = "running"  # done, diverged, disconnected, time budget, server busy

    @property
    def computing(self) -> bool:
        """A chunk is running in the pool now."""
        return self._lock.locked()

    def advance(self, seconds: float) -> bytes:
        """Run steps for about `seconds` (the first chunk: up to its first line); the lines they made."""
        lines: list[bytes] = []
        # Overflow in a diverging run is found below and ends the stream with an error line.
        with self._lock, np.errstate(over="ignore", invalid="ignore"):
            if self._closed:
                return b""
            t0 = time.perf_counter()
            computed = 0
            try:
                while not self._stop.is_set():
                    try:
                        report = next(self._training)
                    except StopIteration as stop:
                        lines.append(self._done(stop.value))
                        break
                    computed += 1
                    self.step = report.step
                    if not _finite(report.loss, report.untied_loss, report.weight, report.grad_weight,
                                   report.bias, report.grad_bias):
                        lines.append(self._error(422, f"training diverged at step {report.step}: the loss "
                                                 "or the weights are no longer finite float32 numbers; "
                                                 "use a smaller `lr`", "lr", "diverged"))
                        break
                    if self._reported(report.step):
                        lines.append(self._report(report))
                    if time.perf_counter() - t0 >= seconds or (self.step == 0 and lines):
                        break
            finally:
                self.trainings.steps.inc(computed)
            if self.finished:
                self._close()
        self._close_if_stopped()
        return b"".join(lines)

    def _reported(self, step: int) -> bool:
        p = self.setup.params
        return step % p.every == 0 or step == p.steps

    def _report(self, r: TrainReport) -> bytes:
        line = schemas.TrainReportLine(
            step=r.step, loss=r.loss, weights=floats(r.weight), grad=floats(r.grad_weight),
            bias=None if r.bias is None else floats(r.bias),
            grad_bias=None if r.grad_bias is None else floats(r.grad_bias), untied_loss=r.untied_loss)
        return _line(line, exclude_none=True)

    def _error(self, status: int, detail: str, field: str | None, end: str) -> bytes:
        self.finished, self.end = True, end
        return _line(schemas.TrainErrorLine(status=status, detail=detail, field=field,
                                            step=max(self.step, 0)))

    def error_line(self, status: int, detail: str, field: str | None, end: str) -> bytes:
        """An error line that ends the stream, made on the event loop (no chunk is running)."""
        return self._error(status, detail, field, end)

    def _done(self, result: TrainResult) -> bytes:
        s, p = self.setup, self.setup.params
        x = s.stack.x
        ev = evaluate(result, x, s.hidden, s.hidden_bias, shift=SHIFT, x_second=s.x_second, noise=p.noise,
                      seed=p.seed)

        def out(losses: Any) -> schemas.TrainLayerOut:
            test = {"shifted": losses.shifted_loss}
            if losses.second_loss is not None:
                test["second"] = losses.second_loss
            return schemas.TrainLayerOut(parameters=losses.parameters, train_loss=losses.train_loss,
                                         test_loss=test)

        losses = [ev.shared.train_loss, ev.shared.shifted_loss, ev.shared.second_loss]
        if ev.untied is not None:
            losses += [ev.untied.train_loss, ev.untied.shifted_loss, ev.untied.second_loss]
        if not _finite(*losses):
            return self._error(422, "the trained layers' losses on the test images overflow float32; use a "
                               "smaller `lr` or smaller weights", "lr", "diverged")
        maps = self._maps(result) if p.maps else None
        self.finished, self.end = True, "done"
        return _line(schemas.TrainDoneLine(
            steps=result.steps, weights=floats(result.weight),
            bias=None if result.bias is None else floats(result.bias), target_weights=floats(s.hidden),
            target_bias=floats(s.hidden_bias), shift=list(SHIFT), test_image=s.second_name,
            shared=out(ev.shared), untied=None if ev.untied is None else out(ev.untied),
            seconds=round(time.perf_counter() - self.started, 3), maps=maps))

    def _maps(self, result: TrainResult) -> list[schemas.TrainMapsOut]:
        """Kernel 0's target (without noise) and both layers' outputs on each image, one scale per image."""
        s = self.setup
        layer = s.stack.layer
        tests: list[tuple[Literal["train", "shifted", "second"], NDArray[np.floating]]] = [
            ("train", s.stack.x), ("shifted", shift_image(s.stack.x, SHIFT))]
        if s.x_second is not None:
            tests.append(("second", s.x_second))
        maps = []
        for name, x in tests:
            target = make_target(x, s.hidden, s.hidden_bias, groups=layer.groups, spec=layer.spec,
                                 activation=layer.activation)[0]
            shared = activate(conv2d(x, result.weight, result.bias, groups=layer.groups, spec=layer.spec),
                              layer.activation)[0]
            untied = None
            if result.untied_weight is not None:
                z = untied_conv2d(x, result.untied_weight, result.untied_bias, groups=layer.groups,
                                  spec=layer.spec)
                untied = activate(z, layer.activation)[0]
            shown = [m for m in (target, shared, untied) if m is not None]
            lo = float(min(m.min() for m in shown))
            hi = float(max(m.max() for m in shown))
            pngs = []
            for m in shown:
                c = draw.colorize(m, vmin=lo, vmax=hi)
                pngs.append(data_uri(draw.encode_indexed_png(c.index, c.table)))
            maps.append(schemas.TrainMapsOut(
                image=name, target=pngs[0], shared=pngs[1], untied=pngs[2] if untied is not None else None,
                min=c.vmin, max=c.vmax, colormap="diverging" if c.signed else "sequential"))
        return maps

    def stop(self, end: str) -> None:
        """Stop the training (from any thread); the generator is closed now, or when its chunk ends."""
        if self.end == "running":
            self.end = end
        self._stop.set()
        self._close_if_stopped()

    def _close_if_stopped(self) -> None:
        if self._stop.is_set() and self._lock.acquire(blocking=False):
            try:
                self._close()
            finally:
                self._lock.release()

    def _close(self) -> None:
        if not self._closed:
            self._closed = True
            self._training.close()  # frees the windows, the untied weights and the optimizer state
            self.trainings.ended.labels(self.end).inc()
            self.trainings.release()  # the work has stopped: /metrics shows one training fewer
            total = self.setup.params.steps
            log.info("train: %s at step %d of %d after %.1f s", self.end, max(self.step, 0), total,
                     time.perf_counter() - self.started)


def _line(model: BaseModel, exclude_none: bool = False) -> bytes:
    return model.model_dump_json(exclude_none=exclude_none).encode() + b"\n"


def start(parsed: Parsed[schemas.TrainParams], services: Services, trainings: Trainings) -> TrainingRun:
    """A training run, checked, costed and with its target made, ready to stream (in the pool)."""
    return TrainingRun(prepare(parsed, services), trainings)
