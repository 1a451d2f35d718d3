"""Every exception class of the app, and every handler: each failure as JSON {"detail", "field"}.

- ParamError: a bad request parameter found by the app (422).
- The engine's ArgumentError / ArgumentTypeError: 422 on the API field that the argument stands for.
- ImageError: an upload refused by decoding (413 too large, 415 not an image).
- ImageNotFound: an unknown image id (404: upload again); StoreUnavailable: the store is down (503).
- ServerBusy: the compute pool is full or the time budget ran out (503 with Retry-After).
- BodyTimeout: the body arrived too slowly (408).
- MemoryError: 503, the server is short of memory now (the cost check should refuse such work first).
- Anything else is a server bug: 500, logged with the request id, never a 422 that blames the client.

This module imports no other module of the app, so every module may raise these.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from engine import ArgumentError, ArgumentTypeError

log = logging.getLogger("convlens")

__all__ = ["BodyTimeout", "ImageError", "ImageNotFound", "ParamError", "ServerBusy", "StoreUnavailable",
           "api_field", "install_error_handlers"]

# The engine's argument names in the API's vocabulary.
ENGINE_FIELDS: Mapping[str, str] = {
    "weight": "weights", "x": "image", "input_hw": "image", "kernel_hw": "kernel_size",
    "index": "weight", "input_shape": "crop", "target": "target_kernels", "target_weight": "target_kernels",
    "size": "kernel_size", "unit": "row", "spec": "kernel_size",
}


class ImageError(Exception):
    """An upload that cannot be accepted: status_code is 413 (too large) or 415 (not an image)."""

    def __init__(self, status_code: int, detail: str, field: str = "image") -> None:
        super().__init__(detail)
        self.status_code = status_code
        self.detail = detail
        self.field = field


class ImageNotFound(LookupError):
    """An image id that is not (or no longer) in the cache: the client must upload again."""

    def __init__(self, image_id: str) -> None:
        super().__init__(image_id)
        self.image_id = image_id


class StoreUnavailable(RuntimeError):
    """The shared image store cannot be read or written now (Redis down, disk full): a 503, not a 404."""


class ServerBusy(Exception):
    """The compute pool is full, or a request ran past its time budget: 503 with Retry-After."""

    def __init__(self, detail: str, retry_after: int = 2) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


class ParamError(ValueError):
    """A bad request parameter, with the parameter's name (`field`) and what is allowed (`detail`)."""

    def __init__(self, field: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field
        self.detail = detail


class BodyTimeout(Exception):
    """The request body did not arrive in time: 408."""

    def __init__(self, seconds: int) -> None:
        super().__init__(seconds)
        self.detail = (f"the request body did not arrive within {seconds} s (CONVLENS_BODY_SECONDS); "
                       "check the connection and send it again")


def api_field(err: ArgumentError | ArgumentTypeError) -> str:
    """The API field an engine argument error is about."""
    return ENGINE_FIELDS.get(err.argument, err.argument)


def _error(status: int, detail: str, field: str | None, headers: Mapping[str, str] | None = None
           ) -> JSONResponse:
    return JSONResponse({"detail": detail, "field": field}, status_code=status, headers=headers)


async def param_error(request: Request, exc: Exception) -> JSONResponse:
    """A bad parameter found by the app: 422 naming it."""
    assert isinstance(exc, ParamError)
    return _error(422, exc.detail, exc.field)


async def engine_error(request: Request, exc: Exception) -> JSONResponse:
    """The engine refused an argument: 422 on the field it stands for."""
    assert isinstance(exc, ArgumentError | ArgumentTypeError)
    return _error(422, str(exc), api_field(exc))


async def image_error(request: Request, exc: Exception) -> JSONResponse:
    """Upload refused: 413 over a limit, 415 not a supported image."""
    assert isinstance(exc, ImageError)
    return _error(exc.status_code, exc.detail, exc.field)


async def not_found(request: Request, exc: Exception) -> JSONResponse:
    """Unknown or evicted image id: 404 telling the client to upload again."""
    assert isinstance(exc, ImageNotFound)
    return _error(404, f"`image_id`: unknown image {exc.image_id[:16]}… (the server may have dropped it); "
                  "upload the image again", "image_id")


async def store_unavailable(request: Request, exc: Exception) -> JSONResponse:
    """The image store cannot be reached now (Redis down, disk full): 503, try again."""
    log.warning("image store unavailable on %s: %s", request.url.path, exc)
    return _error(503, "the image store cannot be reached right now; try again in a moment", None,
                  {"Retry-After": "5"})


async def body_timeout(request: Request, exc: Exception) -> JSONResponse:
    """The body arrived too slowly: 408, and the connection is closed."""
    assert isinstance(exc, BodyTimeout)
    return _error(408, exc.detail, None, {"Connection": "close"})


async def server_busy(request: Request, exc: Exception) -> JSONResponse:
    """The compute pool is full or the time budget ran out: 503, try again after Retry-After."""
    assert isinstance(exc, ServerBusy)
    return _error(503, exc.detail, None, {"Retry-After": str(exc.retry_after)})


async def validation_error(request: Request, exc: Exception) -> JSONResponse:
    """FastAPI's own parameter validation, reshaped to {detail, field}."""
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    first = errors[0] if errors else {"loc": (), "msg": "invalid request"}
    loc = [str(p) for p in first.get("loc", ()) if p not in ("query", "body", "path", "header")]
    name = loc[0] if loc else "body"
    return _error(422, f"`{name}`: {first.get('msg', 'invalid')}", name)


async def http_error(request: Request, exc: Exception) -> JSONResponse:
    """Starlette's HTTP errors (404 path, 405 method, 400 bad multipart) with the same shape.

    A 405's Allow lists every method of the path (its GET and POST are separate routes, so
    Starlette's own header would name only one).
    """
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(getattr(exc, "headers", None) or {})
    if exc.status_code == 405:
        headers["Allow"] = ", ".join(allowed_methods(request))
    return _error(exc.status_code, str(exc.detail), None, headers)


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this request's path."""
    methods: set[str] = set()
    for route in request.app.routes:
        match, _ = route.matches(request.scope)  # PARTIAL: the path matches, the method does not
        if match != Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return sorted(methods)


async def out_of_memory(request: Request, exc: Exception) -> JSONResponse:
    """Out of memory: 503 (try again later); the cost check should have refused such work first."""
    log.warning("out of memory on %s", request.url.path)
    return _error(503, "the server is short of memory right now; try again in a moment, or ask for "
                  "less work (a smaller image, fewer kernels)", None, {"Retry-After": "5"})


async def unexpected(request: Request, exc: Exception) -> JSONResponse:
    """A server bug: a logged 500 with the request id."""
    request_id = request.headers.get("x-request-id") or getattr(request.state, "request_id", "-")
    log.exception("unexpected error on %s (request %s)", request.url.path, request_id)
    return _error(500, f"internal error ({type(exc).__name__}, request {request_id}); please report it", None)


def install_error_handlers(app: FastAPI) -> None:
    """Register every handler on app."""
    app.add_exception_handler(ParamError, param_error)
    app.add_exception_handler(ArgumentError, engine_error)
    app.add_exception_handler(ArgumentTypeError, engine_error)
    app.add_exception_handler(ImageError, image_error)
    app.add_exception_handler(ImageNotFound, not_found)
    app.add_exception_handler(ServerBusy, server_busy)
    app.add_exception_handler(BodyTimeout, body_timeout)
    app.add_exception_handler(MemoryError, out_of_memory)
    app.add_exception_handler(StoreUnavailable, store_unavailable)
    app.add_exception_handler(RequestValidationError, validation_error)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, unexpected)
