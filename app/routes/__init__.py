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
from ..outputs import OutputCache
from ..params import Parsed, reader
from ..settings import Settings
from ..store import ImageStore

M = TypeVar("M", bound=schemas.LayerParams)

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": schemas.ErrorResponse, "description": "a malformed body (a form or multipart that cannot "
          "be parsed) or request line"},
    403: {"model": schemas.ErrorResponse, "description": "a cross-site browser POST (Sec-Fetch-Site)"},
    404: {"model": schemas.ErrorResponse, "description": "unknown image_id: upload the image again"},
    408: {"model": schemas.ErrorResponse, "description": "the body did not arrive in time"},
    413: {"model": schemas.ErrorResponse, "description": "upload over the byte or pixel limit"},
    415: {"model": schemas.ErrorResponse, "description": "not a PNG, JPEG, WebP or GIF"},
    422: {"model": schemas.ErrorResponse, "description": "a bad parameter, or work over a limit, named in "
          "`field`"},
    503: {"model": schemas.ErrorResponse, "description": "the server is busy or short of memory: try again "
          "after Retry-After"},
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


def _branches(schema: dict[str, Any]) -> list[dict[str, Any]]:
    return list(schema.get("anyOf", [schema]))


def _is_json(schema: dict[str, Any]) -> bool:
    """Whether a field carries nested lists or objects: JSON text in a query or a form."""
    for branch in _branches(schema):
        if branch.get("type") == "object" or "$ref" in branch:
            return True
        items = _branches(branch.get("items", {})) if branch.get("type") == "array" else []
        if any(item.get("type") in ("array", "object") or "$ref" in item for item in items):
            return True
    return False


def _is_list(schema: dict[str, Any]) -> bool:
    return any(b.get("type") == "array" for b in _branches(schema))


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """The schema without its `null` branch (a field that may be None in a body)."""
    branches = [b for b in _branches(schema) if b.get("type") != "null"]
    if "anyOf" not in schema or len(branches) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k not in ("anyOf", "default")}, **branches[0]}


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    """The model's fields as query parameters: pairs as 'h,w' (form, not exploded), JSON as JSON text;
    a GET names its image by `image_id`."""
    params = []
    props = model.model_json_schema(ref_template="#/components/schemas/{model}")["properties"]
    for name, schema in props.items():
        required = name == "image_id" or model.model_fields[name].is_required()
        if required:  # a query has no null: a parameter it must have holds a value
            schema = _not_null(schema)
        param: dict[str, Any] = {"name": name, "in": "query", "required": required,
                                 "description": schema.get("description", "")}
        if _is_json(schema):
            param["content"] = {"application/json": {"schema": schema}}
        else:
            param["schema"] = schema
            if _is_list(schema):
                param |= {"style": "form", "explode": False}
        params.append(param)
    return params


FILE_PARTS = {
    "image": {"type": "string", "format": "binary", "description": "the image file (or `image_id`): PNG, "
              "JPEG, WebP or GIF (first frame)"},
    "weights_file": {"type": "string", "format": "binary", "description": ".npy of the weights, (J, kh, kw) "
                     "or (J, C/groups, kh, kw), as `weights`"},
}


def _body(model: type[BaseModel]) -> dict[str, Any]:
    """POST bodies: multipart (with the image file, or `image_id`), urlencoded or JSON (with `image_id`).

    The image is recognised by its content, whatever the part's type.
    """
    ref = {"$ref": f"#/components/schemas/{model.__name__}"}
    image_id = {"properties": {"image_id": {"type": "string", "pattern": schemas.ID_PATTERN}},
                "required": ["image_id"]}
    one_image = {"anyOf": [{"required": ["image"]}, image_id]}
    by_id = image_id
    props = model.model_json_schema(ref_template="#/components/schemas/{model}")["properties"]
    encoding = {name: {"contentType": "application/json"} for name, schema in props.items()
                if _is_json(schema)}
    form = {"schema": {"allOf": [ref, by_id]}, **({"encoding": encoding} if encoding else {})}
    return {"requestBody": {"required": True, "content": {
        "multipart/form-data": {"schema": {"type": "object", "properties": FILE_PARTS,
                                           "allOf": [ref, one_image]},
                                **({"encoding": encoding} if encoding else {})},
        "application/x-www-form-urlencoded": form,
        "application/json": {"schema": {"allOf": [ref, by_id]}},
    }}}


NPY_CONTENT = {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}


def _responses(model: type[BaseModel], response_model: type[BaseModel] | None
               ) -> dict[int | str, dict[str, Any]]:
    """The documented answers: a PNG, or JSON (and the .npy file of format=npy when the model has it)."""
    if response_model is None:
        return PNG_RESPONSE
    if "format" in model.model_fields:
        return {**ERRORS, 200: {"description": "JSON; with format=npy the array as a .npy file",
                                "content": NPY_CONTENT}}
    return ERRORS


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
            extra = {"parameters": query_parameters(model)} if method == "GET" else _body(model)
            router.add_api_route(
                f"/{path}", endpoint, methods=[method], summary=summary, name=f"{name}_{method.lower()}",
                operation_id=f"{name}_{method.lower()}", response_model=response_model,
                responses=_responses(model, response_model), openapi_extra=extra,
                response_class=JSONResponse if response_model else Response,
                description=f"{summary}\n\nGET takes the parameters as a query (with `image_id`); POST as "
                "multipart or urlencoded form fields, or a JSON body.",
            )
        return handler
    return register
