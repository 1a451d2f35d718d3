"""The ConvLens web app: create_app() wires routes, templates, static files and error handlers."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from . import pages
from .docs import install_docs
from .errors import install_error_handlers
from .middleware import BodySizeLimit
from .routes import convolve, geometry, gradient, images, presets
from .settings import Settings
from .store import make_outputs, make_store


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

    @app.get("/healthz", tags=["meta"])
    async def healthz() -> dict[str, str]:
        """Alive: answered on the event loop, never behind the compute pool."""
        return {"status": "ok"}

    for module in (images, convolve, geometry, gradient, presets):
        app.include_router(module.router)
    install_error_handlers(app)
    app.add_middleware(BodySizeLimit)  # 413 for bodies over the upload limit, even chunked
    install_docs(app, settings)

    app.mount("/static", StaticFiles(directory=pages.STATIC_DIR), name="static")
    app.include_router(pages.router)
    return app


app = create_app()
