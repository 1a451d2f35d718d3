"""POST /api/train: a shared layer, and its untied twin, learning hidden kernels live, as NDJSON.

The request is read, built and costed as every compute request is (app/params, app/layer,
app/cost: steps x the cost of a step, and the evaluation), so a bad field or too much work is a
422 before anything streams. The engine's trainer (engine/train.py) is a generator; the stream
advances it a chunk of about CHUNK_SECONDS at a time in the compute pool, so the event loop stays
free and the pool bounds how many chunks compute at once. Between chunks it sends the report lines
the chunk made, and checks that the client is still there and that CONVLENS_TRAIN_SECONDS has not
run out. A client that goes away stops the training: the generator is closed and its arrays freed.

Lines (application/x-ndjson: one JSON object per line, every number finite):

- every `every` steps, and at step 0 and the last: `step`, `loss`, `weights`, `grad` (with
  learn_bias also `bias`, `grad_bias`; with untied `untied_loss`): TrainReportLine;
- then `"done": true` with the learned and hidden weights, and `shared` and `untied` each with
  `parameters`, `train_loss` and `test_loss` {`shifted`, `second`}: TrainDoneLine;
- or instead of done, `"error": true` with `status`, `detail`, `field` and `step` when the loss
  diverges (422, `lr`) or the time budget runs out (503): TrainErrorLine.

/metrics counts the steps computed (convlens_train_steps_total) and the streams running
(convlens_trainings); one log line per stream tells how it ended.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.types import Receive, Scope, Send

from .. import schemas
from ..params import Parsed, reader
from ..pool import ComputePool, ServerBusy
from ..settings import Settings
from ..training import TrainingRun, start, trainings_of
from . import ERRORS, Services, _body

router = APIRouter(prefix="/api", tags=["train"])
READ = reader(schemas.TrainParams)
log = logging.getLogger("convlens.train")

NDJSON = "application/x-ndjson"
CHUNK_SECONDS = 0.1  # steps per chunk in the pool: the stream sends lines about ten times a second
BUSY_WAIT_SECONDS = 0.05  # a chunk that finds the pool full waits this long and asks again
ERROR_JSON = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorResponse"}}}
STREAM_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"model": schemas.TrainReportLine | schemas.TrainDoneLine | schemas.TrainErrorLine,
          "description": "NDJSON, one object per line: a TrainReportLine every `every` steps, then a "
          "TrainDoneLine (or a TrainErrorLine if the loss diverged or time ran out)"},
    # Errors before the stream starts are JSON, as on every endpoint (the stream's own type is NDJSON).
    **{status: {"description": response["description"], "content": ERROR_JSON} for status, response in {
        403: {"description": "a cross-site browser POST"},
        408: {"description": "the body did not arrive in time"},
        503: {"description": "the compute pool is full, or CONVLENS_MAX_TRAININGS streams are running: "
              "try again after Retry-After"},
        **ERRORS}.items()},
}


class NDJSONResponse(StreamingResponse):
    """A stream of JSON lines; `on_close` runs when the response ends, however it ends."""

    media_type = NDJSON

    def __init__(self, content: AsyncIterator[bytes], status_code: int = 200,
                 on_close: Callable[[], None] | None = None) -> None:
        super().__init__(content, status_code, {"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
        self.on_close = on_close

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            if self.on_close is not None:
                self.on_close()


async def _lines(request: Request, run: TrainingRun, pool: ComputePool, settings: Settings
                 ) -> AsyncIterator[bytes]:
    """The stream: a chunk of steps in the pool, its lines, and the checks between chunks."""
    deadline = run.started + settings.train_seconds
    try:
        while not run.finished:
            if await request.is_disconnected():
                run.stop("disconnected")
                return
            if time.perf_counter() > deadline:
                yield run.error_line(503, "the training took longer than its budget of "
                                     f"{settings.train_seconds} s (CONVLENS_TRAIN_SECONDS) and stopped at "
                                     f"step {run.step} of {run.setup.params.steps:,}; ask for fewer `steps`, "
                                     "a smaller image or untied=false", "steps", "time budget")
                return
            try:
                chunk = await pool.run(run.advance, CHUNK_SECONDS)
            except ServerBusy as busy:
                if run.computing:  # the chunk outlived the pool's budget: give up
                    yield run.error_line(503, busy.detail, None, "server busy")
                    return
                await asyncio.sleep(BUSY_WAIT_SECONDS)  # the pool is full: wait for a slot, as others do
                continue
            if chunk:
                yield chunk
    finally:
        run.stop("disconnected")


@router.post(
    "/train", response_class=NDJSONResponse, responses=STREAM_RESPONSES,
    openapi_extra=_body(schemas.TrainParams),
    summary="Train a shared layer and its untied twin to hidden kernels; NDJSON lines while it runs",
    description="Streams newline-delimited JSON (application/x-ndjson): a line every `every` steps, then a "
    "`done` line with each layer's train and test losses (`curl -N` shows it live). Refused with 422 "
    "before it starts when a field is bad or the work is over CONVLENS_MAX_WORK. Closing the connection "
    "stops the training. POST takes multipart or urlencoded form fields, or a JSON body.",
)
async def train_stream(request: Request, parsed: Parsed[schemas.TrainParams] = Depends(READ)  # noqa: B008
                       ) -> NDJSONResponse:
    """Train, streaming a line per report and a last line with the evaluation."""
    services = Services.of(request)
    pool: ComputePool = request.app.state.pool
    trainings = trainings_of(request)
    trainings.acquire()
    try:
        run = await pool.run(start, parsed, services, trainings)
    except BaseException:
        trainings.release()
        raise
    # However the response ends, the training stops; its slot is given back once the work has.
    return NDJSONResponse(_lines(request, run, pool, services.settings),
                          on_close=lambda: run.stop("disconnected"))
