"""The REST API, one module per group of endpoints, and the one way a compute request goes through.

A compute route is registered by `compute_route` for GET (query, with image_id) and POST (form,
multipart or JSON). Its endpoint reads the request with app/params.py's reader, then runs the
handler in the compute pool: the handler builds the layer (app/layer.py), calls the engine once and
encodes the answer (app/encode.py), so nothing heavy runs on the event loop.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from .. import schemas
from ..layer import LayerStack, build_stack
from ..params import Parsed, reader
from ..settings import Settings
from ..store import ImageStore, OutputCache

M = TypeVar("M", bound=schemas.LayerParams)

ERRORS: dict[int | str, dict[str, Any]] = {
    404: {"model": schemas.ErrorResponse, "description": "unknown image_id: upload the image again"},
    413: {"model": schemas.ErrorResponse, "description": "upload over the byte or pixel limit"},
    415: {"model": schemas.ErrorResponse, "description": "not a PNG, JPEG, WebP or GIF"},
    422: {"model": schemas.ErrorResponse, "description": "a bad parameter, named in `field`"},
}
PNG_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"image/png": {}}, "description": "PNG; X-Value-Min / X-Value-Max headers"},
    **ERRORS,
}


@dataclass(frozen=True)
class Services:
    """What a handler may use: the settings, the image store and the output cache."""

    settings: Settings
    store: ImageStore
    outputs: OutputCache

    @classmethod
    def of(cls, request: Request) -> Services:
        """The app's services."""
        state = request.app.state
        return cls(state.settings, state.store, state.outputs)

    def build(self, parsed: Parsed[Any], work: str = "forward") -> LayerStack:
        """The request's layer stack (app/layer.py), validated, with `work` on it costed."""
        return build_stack(parsed.params, parsed.uploads, self.settings, self.store, self.outputs, work)


Handler = Callable[[Parsed[M], Services], Response]


def _query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    props = model.model_json_schema()["properties"]
    return [{"name": name, "in": "query", "required": False, "schema": schema,
             "description": schema.get("description", "")} for name, schema in props.items()]


def _body(model: type[BaseModel]) -> dict[str, Any]:
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    files = {"type": "object", "properties": {
        "image": {"type": "string", "format": "binary", "description": "the image file (or `image_id`)"},
        "weights_file": {"type": "string", "format": "binary", "description": ".npy of the weights"},
    }}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"allOf": [ref, files]}},
        "application/x-www-form-urlencoded": {"schema": ref},
        "application/json": {"schema": ref},
    }}}


def compute_route(router: APIRouter, path: str, model: type[M], response_model: type[BaseModel] | None,
                  summary: str) -> Callable[[Handler[M]], Handler[M]]:
    """Register a handler for GET and POST /api/<path>; it runs in the compute pool."""
    def register(handler: Handler[M]) -> Handler[M]:
        async def endpoint(request: Request, parsed: Parsed[M] = Depends(reader(model))) -> Response:  # noqa: B008
            timing: dict[str, float] = {}
            request.state.timing = timing
            return await request.app.state.pool.run(handler, parsed, Services.of(request), timing=timing)

        name = path.replace(".", "_").replace("-", "_")
        for method in ("GET", "POST"):
            extra = {"parameters": _query_parameters(model)} if method == "GET" else _body(model)
            router.add_api_route(
                f"/{path}", endpoint, methods=[method], summary=summary, name=f"{name}_{method.lower()}",
                operation_id=f"{name}_{method.lower()}", response_model=response_model,
                responses=ERRORS if response_model else PNG_RESPONSE, openapi_extra=extra,
                response_class=JSONResponse if response_model else Response,
                description=f"{summary}\n\nGET takes the parameters as a query (with `image_id`); POST as "
                "multipart or urlencoded form fields, or a JSON body.",
            )
        return handler
    return register
