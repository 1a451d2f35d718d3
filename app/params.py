"""The one request reader: query, form and JSON are read once into a model of app/schemas.py.

The API's routes and the HTML page both use it. `read_values` gathers the raw values and the
uploaded files of a request; `validate` turns values into a model with the Settings as context, so
every bound comes from there. A refusal is a ParamError naming the field; `all_errors` gives every
bad field at once, for the no-JS page.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from .errors import BodyTimeout, ImageError, ParamError
from .settings import Settings

M = TypeVar("M", bound=BaseModel)
BOUNDS = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
UPLOAD_FIELDS = ("image", "weights_file")
MAX_FORM_FIELDS = 64
MAX_FORM_FILES = 4


@dataclass
class Uploads:
    """Files that came with a multipart request."""

    image: bytes | None = None
    weights_file: bytes | None = None


@dataclass
class Parsed(Generic[M]):
    """A validated request: its model and its files."""

    params: M
    uploads: Uploads


async def read_values(request: Request, settings: Settings) -> tuple[dict[str, Any], Uploads]:
    """Query parameters, then the form or JSON body over them; empty text counts as absent.

    The body must arrive within CONVLENS_BODY_SECONDS (BodyTimeout, 408): a client that trickles it
    holds no compute slot, and not its connection forever.
    """
    try:
        async with asyncio.timeout(settings.body_seconds):
            return await _read_values(request, settings)
    except TimeoutError:
        raise BodyTimeout(settings.body_seconds) from None


async def _read_values(request: Request, settings: Settings) -> tuple[dict[str, Any], Uploads]:
    values: dict[str, Any] = _once(request.query_params.multi_items())
    uploads = Uploads()
    if request.method == "POST":
        _check_length(request, settings)
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            values.update(await _json_body(request))
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            async with request.form(max_files=MAX_FORM_FILES, max_fields=MAX_FORM_FIELDS) as form:
                fields = [(k, v) for k, v in form.multi_items() if not isinstance(v, UploadFile)]
                values.update(_once(fields))
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        content = await read_upload(value, settings, key)
                        if key in UPLOAD_FIELDS:
                            setattr(uploads, key, content)
    present = {k: v for k, v in values.items() if not (isinstance(v, str) and v == "" and k != "kernels")}
    return present, uploads


def _once(items: list[tuple[str, Any]]) -> dict[str, Any]:
    """Fields of a query or a form; a field given more than once is a list of its values (as OpenAPI
    writes an array in a form: bias=0.1&bias=-0.2 is [0.1, -0.2]), never a silently kept last one."""
    values: dict[str, Any] = {}
    for key, value in items:
        if key in values:
            earlier = values[key]
            values[key] = [*earlier, value] if isinstance(earlier, list) else [earlier, value]
        else:
            values[key] = value
    return values


def _check_length(request: Request, settings: Settings) -> None:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > settings.max_upload_bytes + (1 << 20):
        raise ImageError(413, f"`image`: the request is {int(length):,} bytes, over the limit of "
                         f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)")


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        raise ParamError("body", "the JSON body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ParamError("body", "the JSON body must be an object of parameters")
    return body


async def read_upload(upload: UploadFile, settings: Settings, field_name: str) -> bytes:
    """An uploaded file's bytes, refused with 413 past CONVLENS_MAX_UPLOAD_BYTES."""
    content = await upload.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise ImageError(413, f"`{field_name}`: the upload is over the limit of "
                         f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)", field_name)
    return content


def all_errors(model: type[M], values: dict[str, Any], settings: Settings) -> tuple[M | None, dict[str, str]]:
    """The model, or None and every bad field with its message (for the no-JS page).

    The text "null" (what a query or form carries for JSON null) means absent for a field that may be
    null; elsewhere it is an error like any other text that is not a value of the field.
    """
    values = {k: v for k, v in values.items() if not (v == "null" and _nullable(model, k))}
    try:
        return model.model_validate(values, context={"settings": settings}), {}
    except ValidationError as err:
        errors: dict[str, str] = {}
        for error in err.errors():
            name = _field_name(error)
            errors.setdefault(name, explain(model, name, error))
        return None, errors


def _nullable(model: type[BaseModel], name: str) -> bool:
    field = model.model_fields.get(name)
    return field is not None and not field.is_required() and field.default is None


def validate(model: type[M], values: dict[str, Any], settings: Settings) -> M:
    """The model of the values; ParamError naming the first bad field."""
    params, errors = all_errors(model, values, settings)
    if params is None:
        name, detail = next(iter(errors.items()))
        raise ParamError(name, detail)
    return params


def _field_name(error: Any) -> str:
    field = (error.get("ctx") or {}).get("field")
    if field:  # a field type that names a part of itself, e.g. "layers[2].kernel_size"
        return str(field)
    loc = error.get("loc") or ()
    return str(loc[0]) if loc else "body"


def explain(model: type[BaseModel], name: str, error: Any) -> str:
    """A pydantic error as 'what is allowed' for `name`, in the words of the other 422s."""
    kind, got = error.get("type", ""), error.get("input")
    if kind == "convlens":
        return str(error["msg"])
    if kind in BOUNDS:
        field = model.model_fields.get(name)
        metadata = field.metadata if field else []
        low = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), None)
        high = next((m.le for m in metadata if getattr(m, "le", None) is not None), None)
        if low is not None and high is not None:
            return f"`{name}` must be in {low}..{high}, got {got!r}"
        limit = next(iter(error.get("ctx", {}).values()), "?")
        return f"`{name}` must be {BOUNDS[kind]} {limit}, got {got!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"`{name}` must be a whole number, got {got!r}"
    if kind in ("float_parsing", "float_type"):
        return f"`{name}` must be a number, got {got!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"`{name}` must be true or false, got {got!r}"
    if kind == "literal_error":
        expected = error.get("ctx", {}).get("expected", "")
        return f"`{name}` must be one of {expected}, got {got!r}"
    return f"`{name}`: {error['msg']}"


def reader(model: type[M]) -> Callable[[Request], Coroutine[Any, Any, Parsed[M]]]:
    """A FastAPI dependency that reads and validates a request into `model`."""
    async def read(request: Request) -> Parsed[M]:
        settings: Settings = request.app.state.settings
        values, uploads = await read_values(request, settings)
        return Parsed(validate(model, values, settings), uploads)
    read.__name__ = f"read_{model.__name__}"
    return read
