"""One place that turns every failure into JSON {"detail", "field"} with the right status, never a 500."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .api import ParamError, error_field
from .images import ImageError
from .store import ImageNotFound

log = logging.getLogger("convlens")


def _error(status: int, detail: str, field: str | None) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status)


async def param_error(request: Request, exc: Exception) -> JSONResponse:
    """A bad parameter found by the app: 422 naming it."""
    assert isinstance(exc, ParamError)
    return _error(422, exc.detail, exc.field)


async def engine_error(request: Request, exc: Exception) -> JSONResponse:
    """ValueError or TypeError from the engine: 422, the field taken from the `name` in its message."""
    message = str(exc)
    return _error(422, message, error_field(message))


async def image_error(request: Request, exc: Exception) -> JSONResponse:
    """Upload refused: 413 over a limit, 415 not a supported image."""
    assert isinstance(exc, ImageError)
    return _error(exc.status_code, exc.detail, exc.field)


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    """Unknown or evicted image id: 404 telling the client to upload again."""
    assert isinstance(exc, ImageNotFound)
    return _error(404, f"`image_id`: unknown image {exc.image_id[:16]}… (the cache may have dropped it); "
                  "upload the image again", "image_id")


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation, reshaped to {detail, field}."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path", "header")]
    name = loc[0] if loc else "body"
    return _error(422, f"`{name}`: {first.get('msg', 'invalid')}", name)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors (404 path, 405 method, 400 bad multipart) with the same shape."""
    assert isinstance(exc, StarletteHTTPException)
    return JSONResponse({"detail": exc.detail, "field": None}, status_code=exc.status_code,
                        headers=getattr(exc, "headers", None))


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """Last resort: logged, and answered as JSON rather than a bare 500 page."""
    if isinstance(exc, MemoryError):
        return _error(413, "the request needs more memory than the server has; use a smaller image",
                      "image")
    log.exception("unexpected error on %s", request.url.path)
    return _error(500, f"internal error ({type(exc).__name__}); please report it", None)


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on app."""
    app.add_exception_handler(ParamError, param_error)
    app.add_exception_handler(ImageError, image_error)
    app.add_exception_handler(ImageNotFound, not_found)
    app.add_exception_handler(ValueError, engine_error)
    app.add_exception_handler(TypeError, engine_error)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)


class BodySizeLimit:
    """ASGI middleware: stop reading a request body past CONVLENS_MAX_UPLOAD_BYTES + 1 MiB (413).

    The Content-Length check in api.read_params refuses honest large requests at once; this one also
    catches chunked bodies that announce no length, before they are spooled to disk.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = scope["app"].state.settings
        limit = settings.max_upload_bytes + (1 << 20)
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ImageError(413, f"`image`: the request body is over the limit of "
                                     f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)")
            return message

        await self.app(scope, limited, send)
