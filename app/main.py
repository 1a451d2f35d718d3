"""The ConvLens web app: create_app() wires routes, templates, static files, middleware and handlers."""

from __future__ import annotations

import os

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from . import pages
from .docs import install_docs
from .errors import install_error_handlers
from .memory import FREED
from .middleware import BodySizeLimit, SecurityHeaders
from .observe import Metrics, RequestLog
from .outputs import make_outputs
from .pool import ComputePool
from .routes import convolve, erf, geometry, gradient, images, network, presets, train
from .settings import Settings
from .store_backends import make_store


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the ASGI app; settings default to the environment (see app/settings.py)."""
    settings = settings or Settings.from_env()
    app = FastAPI(
        title="ConvLens",
        summary="See what a convolution layer does with its shared weights, on your own image.",
        version="0.1.0",
        docs_url=None,  # /docs is served offline by install_docs
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.store = make_store(settings)  # decoded images by id: on disk, or in Redis (store.py)
    app.state.outputs = make_outputs(settings)  # computed layer outputs, per process
    app.state.pool = ComputePool(settings.compute_workers, settings.queue_depth, settings.request_seconds,
                                 on_idle=FREED.idle, on_busy=FREED.busy)  # idle 1 s: free memory back
    app.state.metrics = Metrics()
    install_meta_routes(app)

    for module in (images, convolve, geometry, gradient, presets, network, erf, train):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)  # 413 for bodies over the upload limit, even chunked
    app.add_middleware(SecurityHeaders)  # nosniff, Referrer-Policy, CSP on HTML; 403 cross-site POSTs
    app.add_middleware(RequestLog)  # request id, metrics, one log line per request (outermost)
    install_docs(app, settings)

    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    app.include_router(pages.router)
    return app


def install_meta_routes(app: FastAPI) -> None:
    """/healthz, /readyz and /metrics: answered on the event loop, never behind the compute pool."""

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, str]:
        """Alive."""
        return {"status": "ok"}

    @app.get("/readyz", tags=["meta"], responses={503: {"description": "the compute queue is full"}})
    async def readyz(request: Request) -> JSONResponse:
        """Ready for more work: the compute pool's slots and queue (503 while it would refuse work), and
        the pid of the worker process that answered."""
        pool: ComputePool = request.app.state.pool
        full = pool.admitted >= pool.capacity
        body = {"status": "full" if full else "ready", "computing": pool.running, "waiting": pool.waiting,
                "workers": pool.workers, "queue": pool.queue, "rejected": pool.rejected,
                "timed_out": pool.timed_out, "pid": os.getpid()}
        return JSONResponse(body, status_code=503 if full else 200)

    @app.get("/metrics", tags=["meta"], response_class=Response,
             responses={200: {"content": {"text/plain": {}}, "description": "Prometheus text format"}})
    async def metrics(request: Request) -> Response:
        """Prometheus metrics of this worker process."""
        m: Metrics = request.app.state.metrics
        return Response(m.render(request.app.state), media_type=m.content_type)


FREED.tune_malloc()  # one heap, big blocks reused, its free top kept while busy (memory.py)
app = create_app()
