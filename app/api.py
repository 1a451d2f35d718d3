"""The REST API: one router, thin routes (parse the request, call the engine, encode the answer).

Every compute endpoint takes the same layer parameters as form fields, query parameters (GET, with
image_id) or a JSON body, read by `read_params` into the models of app/schemas.py. The layer's
output is computed once per (image, layer) and kept in app.state.outputs, so the JSON and the PNG
URLs it hands out share one convolution.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse
from numpy.typing import NDArray
from pydantic import BaseModel, ValidationError
from starlette.datastructures import UploadFile

from engine import (
    PRESETS,
    ConvSpec,
    activate,
    conv2d,
    conv2d_backward,
    conv_layer,
    coverage,
    dense_matrix,
    loss_grad,
    output_arithmetic,
    parameter_counts,
    receptive_field,
    weight_grad_contributions,
    weight_usage,
)
from engine.kernels import kernel_bank, spread_kernels

from . import images, schemas
from .images import DecodedImage, ImageError
from .settings import Settings
from .store import ImageStore, OutputCache

router = APIRouter(prefix="/api", tags=["api"])

P = TypeVar("P", bound=schemas.LayerParams)

# Limits of the geometry that the settings do not cover: they keep padded inputs bounded.
MAX_STRIDE = 64
MAX_PADDING = 64
MAX_DILATION = 16
MAX_URL_QUERY = 6000  # longer GET URLs (big custom weights) are replaced by data URIs

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


class ParamError(ValueError):
    """A bad request parameter, with the parameter's name."""

    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field_name
        self.detail = detail


# ---------------------------------------------------------------- reading requests

@dataclass
class Uploads:
    """Files that came with a multipart request."""

    image: bytes | None = None
    weights_file: bytes | None = None


async def read_params(request: Request, model: type[P]) -> tuple[P, Uploads]:
    """Query parameters, then the form or JSON body over them, validated into `model`."""
    settings: Settings = request.app.state.settings
    data: dict[str, Any] = dict(request.query_params)
    uploads = Uploads()
    if request.method == "POST":
        length = request.headers.get("content-length")
        if length and length.isdigit() and int(length) > settings.max_upload_bytes + (1 << 20):
            raise ImageError(413, f"`image`: the request is {int(length):,} bytes, over the limit of "
                             f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)")
        ctype = request.headers.get("content-type", "")
        if ctype.startswith("application/json"):
            try:
                body = await request.json()
            except (ValueError, RecursionError):
                raise ParamError("body", "the JSON body is not valid JSON") from None
            if not isinstance(body, dict):
                raise ParamError("body", "the JSON body must be an object of parameters")
            data.update(body)
        elif ctype.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            async with request.form(max_files=4, max_fields=64) as form:
                for key, value in form.multi_items():
                    if isinstance(value, UploadFile):
                        content = await _read_upload(value, settings, key)
                        if key == "image":
                            uploads.image = content
                        elif key == "weights_file":
                            uploads.weights_file = content
                    else:
                        data[key] = value
    data = {k: v for k, v in data.items() if not (isinstance(v, str) and v == "" and k != "kernels")}
    try:
        params = model.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else "body"
        raise ParamError(name, _explain(model, name, first)) from None
    return params, uploads


def _explain(model: type[BaseModel], name: str, error: Any) -> str:
    """A pydantic error as 'what is allowed' for `name`, in the words of the other 422s."""
    kind, got = error.get("type", ""), error.get("input")
    bounds = {"greater_than_equal": ">=", "less_than_equal": "<=", "greater_than": ">", "less_than": "<"}
    if kind in bounds:
        field = model.model_fields.get(name)
        metadata = field.metadata if field else []
        low = next((m.ge for m in metadata if getattr(m, "ge", None) is not None), None)
        high = next((m.le for m in metadata if getattr(m, "le", None) is not None), None)
        if low is not None and high is not None:
            return f"`{name}` must be in {low}..{high}, got {got!r}"
        limit = next(iter(error.get("ctx", {}).values()), "?")
        return f"`{name}` must be {bounds[kind]} {limit}, got {got!r}"
    if kind in ("int_parsing", "int_type", "int_from_float"):
        return f"`{name}` must be a whole number, got {got!r}"
    if kind in ("float_parsing", "float_type"):
        return f"`{name}` must be a number, got {got!r}"
    if kind in ("bool_parsing", "bool_type"):
        return f"`{name}` must be true or false, got {got!r}"
    return f"`{name}`: {error['msg']}"


async def _read_upload(upload: UploadFile, settings: Settings, field_name: str) -> bytes:
    content = await upload.read(settings.max_upload_bytes + 1)
    if len(content) > settings.max_upload_bytes:
        raise ImageError(413, f"`{field_name}`: the upload is over the limit of "
                         f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)", field_name)
    return content


def parse_pair(value: object, name: str, lo: int, hi: int) -> tuple[int, int]:
    """3, [3, 5], "3" or "3,5" as a pair of ints in lo..hi, or ParamError naming `name`."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):
            parts = [int(s) for s in value.replace(" ", "").split(",")]
        elif isinstance(value, int):
            parts = [value]
        elif isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
            parts = list(value)
        else:
            raise TypeError
        if len(parts) == 1:
            parts = parts * 2
        if len(parts) != 2:
            raise TypeError
    except (TypeError, ValueError):
        raise ParamError(name, f"`{name}` must be an int or a pair 'h,w' of ints, got {value!r}") from None
    if not (lo <= parts[0] <= hi and lo <= parts[1] <= hi):
        raise ParamError(name, f"`{name}` must be in {lo}..{hi}, got {value!r}")
    return parts[0], parts[1]


def parse_numbers(value: object, name: str) -> NDArray[np.float64]:
    """A JSON nested list (or its text) of finite numbers as a float64 array."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise ParamError(name, f"`{name}` must be a JSON nested list of numbers") from None
    try:
        arr = np.array(value, dtype=np.float64)
    except (TypeError, ValueError, RecursionError):
        raise ParamError(name, f"`{name}` must be a nested list of numbers of equal lengths") from None
    if arr.size == 0:
        raise ParamError(name, f"`{name}` must not be empty")
    if not np.isfinite(arr).all():
        raise ParamError(name, f"`{name}` must be finite numbers: it holds NaN or infinite values")
    return arr


def parse_bias(value: object, j: int) -> NDArray[np.float64]:
    """`bias` as J values: one number for all kernels or one per kernel."""
    if isinstance(value, str):
        try:
            values = [float(s) for s in value.split(",")]
        except ValueError:
            raise ParamError("bias", f"`bias` must be a number or {j} comma-separated numbers") from None
    elif isinstance(value, list):
        values = value
    else:
        values = [value]  # type: ignore[list-item]
    b = parse_numbers(values, "bias").ravel()
    if b.size == 1:
        b = np.full(j, b[0])
    if b.size != j:
        raise ParamError("bias", f"`bias` must be one value or one per kernel ({j}), got {b.size}")
    return b


# ---------------------------------------------------------------- the layer of a request

@dataclass
class Layer:
    """The image and the layer of one request, validated, with its cache key and GET query."""

    image_id: str
    image: DecodedImage
    color: str
    weight: NDArray[np.floating]  # (J, C/groups, kh, kw)
    bias: NDArray[np.float64]  # (J,)
    names: list[str]
    spec: ConvSpec
    groups: int
    activation: str
    query: dict[str, str] = field(default_factory=dict)  # canonical parameters for GET URLs
    cache: OutputCache | None = None  # where the engine input is kept between requests

    @cached_property
    def x(self) -> NDArray[np.float32]:
        """The engine input (C, H, W) in [0, 1], cached per (image, color)."""
        def make() -> NDArray[np.float32]:
            return images.to_input(self.image.pixels, self.color)  # type: ignore[arg-type]
        if self.cache is None:
            return make()
        return self.cache.get_or_compute(("input", self.image_id, self.color), make)

    @property
    def channels(self) -> int:
        """C of the input: 1 for gray, 3 for rgb."""
        return 1 if self.color == "gray" else 3

    @cached_property
    def key(self) -> tuple[object, ...]:
        """Identity of the layer's output, for the output cache."""
        digest = hashlib.sha256(self.weight.astype(np.float32).tobytes())
        digest.update(str(self.weight.shape).encode())
        digest.update(self.bias.astype(np.float32).tobytes())
        s = self.spec
        return (self.image_id, self.color, digest.hexdigest(), s.stride, s.padding, s.dilation,
                self.groups, self.activation)

    def conv_kwargs(self) -> dict[str, Any]:
        """stride, padding, dilation and groups for engine calls."""
        return {"stride": self.spec.stride, "padding": self.spec.padding,
                "dilation": self.spec.dilation, "groups": self.groups}

    @cached_property
    def _query_string(self) -> str:
        return urlencode(self.query)

    def url(self, path: str, **extra: object) -> str:
        """GET URL of an endpoint for this image and layer; `extra` adds parameters the layer has not."""
        clash = self.query.keys() & extra.keys()
        if clash:
            raise ValueError(f"url(): {sorted(clash)} are layer parameters")  # a bug in a caller
        more = urlencode({k: str(v) for k, v in extra.items()})
        return f"/api/{path}?{self._query_string}" + (f"&{more}" if more else "")


def load_image(params: schemas.LayerParams, uploads: Uploads, settings: Settings,
               store: ImageStore) -> tuple[str, DecodedImage]:
    """The uploaded image (decoded and stored) or the stored one named by image_id."""
    if uploads.image is not None:
        decoded = images.decode_upload(uploads.image, settings, params.max_side)
        return store.put(decoded), decoded
    if params.image_id is None:
        raise ParamError("image", "send the image as multipart field `image`, or `image_id` from "
                         "POST /api/images")
    return params.image_id, store.require(params.image_id)


def build_weights(params: schemas.LayerParams, uploads: Uploads, settings: Settings, channels: int,
                  kernels_field: str = "kernels", weights_field: str = "weights",
                  kernels: str | None = None, weights: object = None,
                  ) -> tuple[NDArray[np.floating], list[str]]:
    """(J, C/groups, kh, kw) weights and names from `weights`, `weights_file` or preset `kernels`."""
    groups = params.groups
    if channels % groups:
        raise ParamError("groups", f"`groups`={groups} must divide the input channels ({channels}; "
                         "color=gray has 1, rgb 3)")
    cg = channels // groups
    names: list[str]
    raw: NDArray[np.floating] | None = None
    if weights_field == "weights" and uploads.weights_file is not None:
        try:
            raw = np.load(io.BytesIO(uploads.weights_file), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise ParamError("weights_file", f"`weights_file` is not a readable .npy file ({err})") from None
        if raw.dtype.kind not in "biuf":
            raise ParamError("weights_file", f"`weights_file` must hold real numbers, got dtype {raw.dtype}")
        if raw.ndim not in (3, 4):
            raise ParamError("weights_file", f"`weights_file` must have shape (J, C/groups, kh, kw) or "
                             f"(J, kh, kw), got {raw.shape}")
        raw = raw.astype(np.float64)
        if raw.size == 0 or not np.isfinite(raw).all():
            raise ParamError("weights_file", "`weights_file` must hold finite numbers and not be empty")
        weights_field = "weights_file"
    elif weights is not None:
        raw = parse_numbers(weights, weights_field)
    if raw is not None:
        if raw.ndim == 3:
            raw = spread_kernels(raw, cg)
        if raw.ndim != 4 or raw.shape[1] != cg:
            raise ParamError(weights_field, f"`{weights_field}` must have shape (J, {cg}, kh, kw) or "
                             f"(J, kh, kw) for {channels} channel(s) in {groups} group(s), got {raw.shape}")
        names = [f"kernel {j}" for j in range(raw.shape[0])]
        w = raw
    else:
        text = params.kernels if kernels is None else kernels
        names = [n.strip() for n in text.split(",") if n.strip()]
        if not names:
            raise ParamError(kernels_field, f"`{kernels_field}` must name at least one preset")
        if len(names) > settings.max_kernels:
            raise ParamError(kernels_field, f"`{kernels_field}`: at most {settings.max_kernels} kernels")
        unknown = [n for n in names if n not in PRESETS]
        if unknown:
            raise ParamError(kernels_field, f"`{kernels_field}`: unknown preset {unknown[0]!r}; choose "
                             f"from {', '.join(PRESETS)}")
        size = parse_pair(params.kernel_size, "kernel_size", 1, settings.max_kernel_size)
        w = kernel_bank(names, size, cg, params.seed)
    j, _, kh, kw = w.shape
    if j > settings.max_kernels:
        raise ParamError(weights_field, f"`{weights_field}`: at most {settings.max_kernels} kernels, got {j}")
    if max(kh, kw) > settings.max_kernel_size:
        raise ParamError(weights_field, f"`{weights_field}`: kernels up to {settings.max_kernel_size} "
                         f"on a side, got {kh}x{kw}")
    if j % groups:
        raise ParamError("groups", f"`groups`={groups} must divide the number of kernels ({j})")
    return w, names


def build_layer(params: schemas.LayerParams, uploads: Uploads, request: Request) -> Layer:
    """Everything about the request's image and layer, validated; ParamError names a bad field."""
    settings: Settings = request.app.state.settings
    image_id, image = load_image(params, uploads, settings, request.app.state.store)
    channels = 1 if params.color == "gray" else 3
    w, names = build_weights(params, uploads, settings, channels, weights=params.weights)
    stride = parse_pair(params.stride, "stride", 1, MAX_STRIDE)
    dilation = parse_pair(params.dilation, "dilation", 1, MAX_DILATION)
    if isinstance(params.padding, str) and params.padding.strip().lower() in ("same", "valid"):
        padding: object = params.padding.strip().lower()
    else:
        try:
            padding = parse_pair(params.padding, "padding", 0, MAX_PADDING)
        except ParamError as err:
            raise ParamError("padding", f"{err.detail}; or 'same' (stride 1) or 'valid'") from None
    spec = ConvSpec.make((w.shape[2], w.shape[3]), stride, padding, dilation)  # type: ignore[arg-type]
    h_out, w_out = spec.output_shape((image.height, image.width))  # 422 `kernel_size` if it does not fit
    if w.shape[0] * h_out * w_out > settings.max_output_values:
        raise ParamError("max_side", f"the output would hold {w.shape[0]} x {h_out} x {w_out} = "
                         f"{w.shape[0] * h_out * w_out:,} values, over the limit of "
                         f"{settings.max_output_values:,} (CONVLENS_MAX_OUTPUT_VALUES); use fewer kernels, "
                         "a stride, or a smaller max_side")
    bias = parse_bias(params.bias, w.shape[0])
    query = {"image_id": image_id, "color": params.color}
    if params.weights is None and uploads.weights_file is None:
        query |= {"kernels": ",".join(names), "kernel_size": f"{w.shape[2]},{w.shape[3]}",
                  "seed": str(params.seed)}
    else:
        query["weights"] = json.dumps(w.tolist(), separators=(",", ":"))
    query |= {
        "stride": "{},{}".format(*spec.stride), "padding": "{},{}".format(*spec.padding),
        "dilation": "{},{}".format(*spec.dilation), "groups": str(params.groups),
        "bias": ",".join(repr(float(b)) for b in bias), "activation": params.activation,
    }
    return Layer(image_id, image, params.color, w, bias, names, spec, params.groups, params.activation, query,
                 request.app.state.outputs)


# ---------------------------------------------------------------- computing (cached)

@dataclass(frozen=True)
class Output:
    """A layer's output σ(conv(x)) with per-map statistics."""

    y: NDArray[np.float32]  # (J, H_out, W_out)
    mins: NDArray[np.float32]  # (J,)
    maxs: NDArray[np.float32]
    means: NDArray[np.float64]
    seconds: float  # time the engine (conv, bias, σ and statistics) took when it was computed


def layer_output(layer: Layer, outputs: OutputCache) -> tuple[Output, bool]:
    """The layer's output, computed once per (image, layer) and cached; True if computed now."""
    computed = False

    def compute() -> Output:
        nonlocal computed
        computed = True
        x = layer.x
        t0 = time.perf_counter()
        # σ, the bias and each map's statistics are applied strip by strip inside the engine.
        maps = conv_layer(x, layer.weight.astype(np.float32), layer.bias.astype(np.float32),
                          **layer.conv_kwargs(), activation=layer.activation)
        return Output(maps.y, maps.minimum, maps.maximum, maps.mean, time.perf_counter() - t0)

    return outputs.get_or_compute(("output", *layer.key), compute), computed


def server_timing(start: float, out: Output, computed: bool) -> dict[str, str]:
    """A Server-Timing header: the engine's share (0 when the output came from the cache) and the whole."""
    engine = f"engine;dur={out.seconds * 1000:.1f}" if computed else 'engine;dur=0;desc="cached"'
    return {"Server-Timing": f"{engine}, total;dur={(time.perf_counter() - start) * 1000:.1f}"}


def npy_response(array: NDArray[np.floating], filename: str, headers: Mapping[str, str] | None = None
                 ) -> Response:
    """An array as a .npy download."""
    buf = io.BytesIO()
    np.save(buf, array)
    return Response(buf.getvalue(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})})


def cached_png(outputs: OutputCache, key: tuple[object, ...], draw: Callable[[], tuple[bytes, dict[str, str]]]
               ) -> Response:
    """A PNG response, encoded once per key."""
    data, headers = outputs.get_or_compute(("png", *key), draw)
    return Response(data, media_type="image/png",
                    headers={**headers, "Cache-Control": "public, max-age=3600"})


def _range_headers(lo: float, hi: float, c: images.Colorized) -> dict[str, str]:
    return {"X-Value-Min": repr(lo), "X-Value-Max": repr(hi), "X-Color-Min": repr(c.vmin),
            "X-Color-Max": repr(c.vmax), "X-Colormap": "diverging" if c.signed else "sequential"}


def _ctx(request: Request) -> tuple[Settings, OutputCache]:
    return request.app.state.settings, request.app.state.outputs


def _json_text(value: object) -> str | None:
    """A JSON parameter as the text a URL carries: a string (form or query) is that JSON already."""
    if value is None:
        return None
    return value.strip() if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _floats(a: NDArray[np.floating]) -> list:
    return np.asarray(a, dtype=np.float64).tolist()


def _pairs(runs: tuple[tuple[int, int], ...]) -> list[list[int]]:
    return [[a, b] for a, b in runs]


# ---------------------------------------------------------------- routes

def image_info(image_id: str, image: DecodedImage) -> schemas.ImageInfo:
    """The JSON description of a stored image."""
    return schemas.ImageInfo(
        id=image_id, width=image.width, height=image.height, channels=3,
        original_width=image.original_size[0], original_height=image.original_size[1],
        downscaled=image.downscaled, format=image.format,
    )


@router.post("/images", status_code=201, response_model=schemas.ImageInfo, responses=ERRORS,
             openapi_extra={"requestBody": {"required": True, "content": {"multipart/form-data": {
                 "schema": {"type": "object", "required": ["image"], "properties": {
                     "image": {"type": "string", "format": "binary",
                               "description": "PNG, JPEG, WebP or GIF (first frame)"},
                     "max_side": schemas.LayerParams.model_json_schema()["properties"]["max_side"],
                 }}}}}})
async def upload_image(request: Request) -> schemas.ImageInfo:
    """Decode and cache an image; its id is the sha256 of the decoded pixels."""
    params, uploads = await read_params(request, schemas.LayerParams)
    if uploads.image is None:
        raise ParamError("image", "send the file as multipart field `image`")
    settings: Settings = request.app.state.settings
    image = await run_in_threadpool(images.decode_upload, uploads.image, settings, params.max_side)
    return image_info(request.app.state.store.put(image), image)


def _convolve(params: schemas.ConvolveParams, uploads: Uploads, request: Request) -> Response | BaseModel:
    start = time.perf_counter()
    settings, outputs = _ctx(request)
    layer = build_layer(params, uploads, request)
    out, computed = layer_output(layer, outputs)
    if params.format == "npy":
        return npy_response(out.y, "feature_maps.npy", server_timing(start, out, computed))
    j, h_out, w_out = out.y.shape
    if params.values and h_out * w_out > settings.max_values:
        raise ParamError("values", f"`values`: {h_out}x{w_out} = {h_out * w_out:,} values per map is over "
                         f"the limit of {settings.max_values:,} (CONVLENS_MAX_VALUES); use format=npy")
    x_shape = [layer.channels, layer.image.height, layer.image.width]
    arithmetic = output_arithmetic(x_shape[1:], layer.spec.kernel_size, layer.spec.stride,
                                   layer.spec.padding, layer.spec.dilation)
    counts = parameter_counts(x_shape, layer.weight.shape, **layer.conv_kwargs())
    maps = []
    for k in range(j):
        lo, hi = float(out.mins[k]), float(out.maxs[k])
        c_lo, c_hi, _ = images.color_range(lo, hi)
        url = layer.url("feature-maps.png", index=k)
        if len(url) > MAX_URL_QUERY:
            png, _ = images.map_png(out.y[k])
            url = "data:image/png;base64," + base64.b64encode(png).decode()
        maps.append(schemas.MapInfo(
            index=k, name=layer.names[k], weights=_floats(layer.weight[k]), bias=float(layer.bias[k]),
            min=lo, max=hi, mean=float(out.means[k]), color_min=c_lo, color_max=c_hi, png=url,
        ))
    body = schemas.ConvolveResponse(
        image=image_info(layer.image_id, layer.image),
        layer=schemas.LayerInfo(
            kernel_size=list(layer.spec.kernel_size), stride=list(layer.spec.stride),
            padding=list(layer.spec.padding), dilation=list(layer.spec.dilation), groups=layer.groups,
            activation=layer.activation, color=layer.color,
        ),
        input_shape=x_shape, output_shape=[j, h_out, w_out],
        arithmetic=[schemas.AxisArithmeticOut(**{**a.__dict__, "unused": _pairs(a.unused),
                                                 "steps": a.steps()}) for a in arithmetic],
        parameters=_parameters(counts),
        maps=maps, grid_png=layer.url("feature-maps.png"), npy=layer.url("convolve", format="npy"),
        values=_floats(out.y) if params.values else None,
    )
    return Response(body.model_dump_json(), media_type="application/json",
                    headers=server_timing(start, out, computed))


def _parameters(counts: Any) -> schemas.ParametersOut:
    return schemas.ParametersOut(**counts.__dict__, conv=counts.conv, untied=counts.untied,
                                 dense=counts.dense)


def _feature_maps_png(params: schemas.FeatureMapParams, uploads: Uploads, request: Request) -> Response:
    _, outputs = _ctx(request)
    layer = build_layer(params, uploads, request)
    out, _ = layer_output(layer, outputs)
    index, scale = params.index, params.scale
    if index is not None and index >= out.y.shape[0]:
        raise ParamError("index", f"`index` must be a map index in 0..{out.y.shape[0] - 1}, got {index}")

    def draw() -> tuple[bytes, dict[str, str]]:
        if index is None:
            labels = [f"{k}: {name}" for k, name in enumerate(layer.names)]
            data = images.grid_png(out.y, labels, scale)
            return data, {"X-Value-Min": repr(float(out.mins.min())),
                          "X-Value-Max": repr(float(out.maxs.max()))}
        data, c = images.map_png(out.y[index], scale)
        return data, _range_headers(float(out.mins[index]), float(out.maxs[index]), c)

    return cached_png(outputs, (*layer.key, "map", index, scale), draw)


def _receptive(params: schemas.ReceptiveFieldParams, uploads: Uploads, request: Request,
               png: bool) -> Response | BaseModel:
    layer = build_layer(params, uploads, request)
    hw = (layer.image.height, layer.image.width)
    s = layer.spec
    rf = receptive_field(hw, s.kernel_size, s.stride, s.padding, s.dilation, params.row, params.col)
    if png:
        scale = params.scale or images.auto_scale(*hw)
        taps = [(r, c, pad) for _, _, r, c, pad in rf.taps]
        data = images.draw_receptive_field(layer.image.pixels, s.padding,
                                           (rf.top, rf.left, rf.height, rf.width), taps, scale)
        return Response(data, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})
    clipped = None
    if rf.clipped is not None:
        top, left, height, width = rf.clipped
        clipped = schemas.Box(top=top, left=left, height=height, width=width)
    return schemas.ReceptiveFieldResponse(
        unit=list(rf.unit), output_shape=list(s.output_shape(hw)),
        box=schemas.Box(top=rf.top, left=rf.left, height=rf.height, width=rf.width), clipped=clipped,
        taps=[schemas.Tap(u=u, v=v, row=r, col=c, padding=p) for u, v, r, c, p in rf.taps],
        tap_rows=rf.tap_rows.tolist(), tap_cols=rf.tap_cols.tolist(),
        png=layer.url("receptive-field.png", row=params.row, col=params.col),
    )


def _weight_usage(params: schemas.WeightUsageParams, uploads: Uploads, request: Request,
                  png: bool) -> Response | BaseModel:
    layer = build_layer(params, uploads, request)
    hw = (layer.image.height, layer.image.width)
    s = layer.spec
    cov = coverage(hw, s.kernel_size, s.stride, s.padding, s.dilation)
    if png:
        data, c = images.draw_coverage(layer.image.pixels, cov, scale=params.scale)
        return Response(data, media_type="image/png", headers={
            **_range_headers(float(cov.min()), float(cov.max()), c), "Cache-Control": "public, max-age=3600"})
    usage = weight_usage(hw, s.kernel_size, s.stride, s.padding, s.dilation)
    arithmetic = output_arithmetic(hw, s.kernel_size, s.stride, s.padding, s.dilation)
    j, cg, kh, kw = layer.weight.shape
    n = min(j * cg * kh * kw, params.max_weights)
    entries = []
    for flat in range(n):
        jj, cc, u, v = (int(i) for i in np.unravel_index(flat, layer.weight.shape))
        entries.append(schemas.WeightUsageEntry(index=[jj, cc, u, v], real=int(usage.real[u, v]),
                                                padding=int(usage.padding[u, v]), total=usage.total))
    return schemas.WeightUsageResponse(
        kernel_size=list(s.kernel_size), weight_shape=[j, cg, kh, kw], total=usage.total,
        real=usage.real.tolist(), padding=usage.padding.tolist(), weights=entries,
        weights_truncated=n < j * cg * kh * kw,
        coverage=schemas.CoverageOut(
            min=int(cov.min()), max=int(cov.max()), zero_pixels=int((cov == 0).sum()),
            zero_rows=_pairs(arithmetic[0].unused), zero_cols=_pairs(arithmetic[1].unused),
            png=layer.url("weight-usage.png", scale=params.scale),
        ),
    )


def parse_crop(value: object, image: DecodedImage, limit: int) -> tuple[int, int, int, int]:
    """`crop` as (top, left, height, width) inside the image, each side at most `limit`."""
    if value is None:
        return (0, 0, min(image.height, limit), min(image.width, limit))
    try:
        parts = [int(s) for s in value.split(",")] if isinstance(value, str) else [int(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise ParamError("crop", f"`crop` must be 'top,left,height,width' ints, got {value!r}") from None
    if len(parts) != 4:
        raise ParamError("crop", f"`crop` must be 'top,left,height,width', got {value!r}")
    top, left, height, width = parts
    if top < 0 or left < 0 or height < 1 or width < 1 or top + height > image.height \
            or left + width > image.width:
        raise ParamError("crop", f"`crop` {parts} must lie inside the {image.height}x{image.width} image")
    if height > limit or width > limit:
        raise ParamError("crop", f"`crop`: the dense matrix is drawn for inputs up to {limit}x{limit} "
                         f"(CONVLENS_MAX_DENSE_SIDE), got {height}x{width}; choose a smaller crop, "
                         f"e.g. crop=0,0,{min(limit, 16)},{min(limit, 16)}")
    return top, left, height, width


def _dense(params: schemas.DenseMatrixParams, uploads: Uploads, request: Request,
           png: bool) -> Response | BaseModel:
    settings, _ = _ctx(request)
    layer = build_layer(params, uploads, request)
    top, left, height, width = parse_crop(params.crop, layer.image, settings.max_dense_side)
    x = layer.x[:, top : top + height, left : left + width]
    try:
        layer.spec.output_shape((height, width))
    except ValueError as err:  # the kernel does not fit the crop: a larger crop may fit it
        reason = str(err).split(": ", 1)[-1]
        side = settings.max_dense_side
        raise ParamError("crop", f"`crop`: the {height}x{width} crop is too small for this kernel "
                         f"({reason}); choose a larger crop, up to {side}x{side}") from None
    try:
        m = dense_matrix(x.shape, layer.weight, max_entries=settings.max_dense_entries, **layer.conv_kwargs())
    except ValueError as err:
        raise ParamError("crop", f"{err} (CONVLENS_MAX_DENSE_ENTRIES)".replace("`input_shape`", "`crop`")) \
            from None
    if png:
        data = images.draw_dense_matrix(m.shape, m.rows, m.cols, m.tied, layer.weight.size, params.scale)
        return Response(data, media_type="image/png", headers={"Cache-Control": "public, max-age=3600"})
    counts = parameter_counts(x.shape, layer.weight.shape, **layer.conv_kwargs())
    return schemas.DenseMatrixResponse(
        shape=list(m.shape), nnz=m.nnz, density=m.density, crop=[top, left, height, width],
        input_shape=list(x.shape), output_shape=list(m.output_shape), weight_shape=list(m.weight_shape),
        entries=schemas.DenseEntries(rows=m.rows.tolist(), cols=m.cols.tolist(), tied=m.tied.tolist(),
                                     values=_floats(m.values)),
        parameters=_parameters(counts),
        png=layer.url("dense-matrix.png", crop=f"{top},{left},{height},{width}", scale=params.scale),
    )


def _gradient(params: schemas.GradientParams, uploads: Uploads, request: Request,
              png: bool) -> Response | BaseModel:
    settings, outputs = _ctx(request)
    layer = build_layer(params, uploads, request)
    try:
        index = [int(s) for s in params.weight.split(",")] if isinstance(params.weight, str) \
            else [int(v) for v in params.weight]
    except ValueError:
        raise ParamError("weight", f"`weight` must be 'j,c,u,v', got {params.weight!r}") from None
    if len(index) != 4:
        raise ParamError("weight", f"`weight` must be 'j,c,u,v', got {params.weight!r}")
    for name, i, n in zip("jcuv", index, layer.weight.shape, strict=True):
        if not 0 <= i < n:
            raise ParamError("weight", f"`weight`: {name}={i} is out of range 0..{n - 1} for weights of "
                             f"shape {list(layer.weight.shape)}")
    kw = layer.conv_kwargs()
    w32, b32 = layer.weight.astype(np.float32), layer.bias.astype(np.float32)

    def compute() -> tuple[float, NDArray[np.float32], NDArray[np.float32], NDArray[np.float32],
                           NDArray[np.float32]]:
        z = conv2d(layer.x, w32, b32, **kw)
        target = None
        if params.loss == "mse":
            if params.target_weights is None and params.target_kernels is None:
                raise ParamError("target_kernels", "loss=mse needs `target_kernels` or `target_weights`")
            tw, _ = build_weights(params, Uploads(), settings, layer.channels, "target_kernels",
                                  "target_weights", params.target_kernels or "", params.target_weights)
            if tw.shape[0] != w32.shape[0] or tw.shape[2:] != w32.shape[2:]:
                field_name = "target_weights" if params.target_weights is not None else "target_kernels"
                raise ParamError(field_name, f"`{field_name}`: the target layer must have the layer's "
                                 f"{w32.shape[0]} kernels of {w32.shape[2]}x{w32.shape[3]}, got "
                                 f"{tw.shape[0]} of {tw.shape[2]}x{tw.shape[3]}")
            target = activate(conv2d(layer.x, tw.astype(np.float32), b32, **kw), layer.activation)
        value, grad_z = loss_grad(z, layer.activation, params.loss, target)
        _, gw, gb = conv2d_backward(layer.x, w32, grad_z, **kw)
        contrib = weight_grad_contributions(layer.x, grad_z, index, w32.shape[2:], **kw)
        return value, gw, gb, contrib, grad_z

    key = ("grad", *layer.key, params.loss, params.target_kernels,
           _json_text(params.target_weights), tuple(index))
    value, gw, gb, contrib, _ = outputs.get_or_compute(key, compute)
    if png:
        def draw() -> tuple[bytes, dict[str, str]]:
            data, c = images.map_png(contrib, params.scale)
            return data, _range_headers(float(contrib.min()), float(contrib.max()), c)
        return cached_png(outputs, (*key, params.scale), draw)
    if params.format == "npy":
        return npy_response(contrib.astype(np.float32, copy=False), "contributions.npy")
    if params.values and contrib.size > settings.max_values:
        raise ParamError("values", f"`values`: {contrib.size:,} contributions is over the limit of "
                         f"{settings.max_values:,} (CONVLENS_MAX_VALUES)")
    j, c, u, v = index
    extra = {"loss": params.loss, "weight": ",".join(map(str, index))}
    if params.target_kernels:
        extra["target_kernels"] = params.target_kernels
    target_text = _json_text(params.target_weights)
    if target_text is not None:
        extra["target_weights"] = target_text
    return schemas.GradientResponse(
        loss=params.loss, value=value, grad_w=_floats(gw), grad_b=_floats(gb), weight=index,
        grad_w_at_weight=float(gw[j, c, u, v]), positions=int(contrib.size),
        contributions=schemas.ContributionsOut(
            min=float(contrib.min()), max=float(contrib.max()), sum=float(contrib.sum(dtype=np.float64)),
            shape=list(contrib.shape), png=layer.url("gradient.png", **extra),
            npy=layer.url("gradient", **extra, format="npy"),
            values=_floats(contrib) if params.values else None,
        ),
    )


# ---------------------------------------------------------------- registration

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


REQUEST_MODELS: list[type[BaseModel]] = []


def _register(path: str, model: type[P], handler: Callable[[P, Uploads, Request], Response | BaseModel],
              response_model: type[BaseModel] | None, summary: str) -> None:
    """Add GET (query, image_id) and POST (form or JSON) routes calling handler in a thread."""
    REQUEST_MODELS.append(model)
    responses = ERRORS if response_model else PNG_RESPONSE

    async def endpoint(request: Request) -> Any:
        params, uploads = await read_params(request, model)
        result = await run_in_threadpool(handler, params, uploads, request)
        return result

    name = path.replace(".", "_").replace("-", "_")
    for method in ("GET", "POST"):
        extra = {"parameters": _query_parameters(model)} if method == "GET" else _body(model)
        router.add_api_route(
            f"/{path}", endpoint, methods=[method], summary=summary, name=f"{name}_{method.lower()}",
            operation_id=f"{name}_{method.lower()}", response_model=response_model, responses=responses,
            openapi_extra=extra, response_class=Response if response_model is None else JSONResponse,
            description=f"{summary}\n\nGET takes the parameters as a query (with `image_id`); POST as "
            "multipart or urlencoded form fields, or a JSON body.",
        )


def _png(handler: Callable[[Any, Uploads, Request, bool], Response | BaseModel],
         png: bool) -> Callable[..., Any]:
    def call(params: Any, uploads: Uploads, request: Request) -> Response | BaseModel:
        return handler(params, uploads, request, png)
    return call


_register("convolve", schemas.ConvolveParams, _convolve, schemas.ConvolveResponse,
          "Convolve the image: shapes, output-size arithmetic, parameter counts, per-map stats and PNG "
          "URLs; format=npy gives the (J, H_out, W_out) float32 array")
_register("feature-maps.png", schemas.FeatureMapParams, _feature_maps_png, None,
          "One feature map (`index`) or a labelled grid of all, as PNG")
_register("receptive-field", schemas.ReceptiveFieldParams, _png(_receptive, False),
          schemas.ReceptiveFieldResponse, "The input box and kernel taps read by output unit (row, col)")
_register("receptive-field.png", schemas.ReceptiveFieldParams, _png(_receptive, True), None,
          "The receptive field drawn on the input: box, taps, padding")
_register("weight-usage", schemas.WeightUsageParams, _png(_weight_usage, False), schemas.WeightUsageResponse,
          "How many output positions each shared weight is used at; per-pixel coverage")
_register("weight-usage.png", schemas.WeightUsageParams, _png(_weight_usage, True), None,
          "Per-pixel coverage heatmap over the image (magenta: pixels no output reads)")
_register("dense-matrix", schemas.DenseMatrixParams, _png(_dense, False), schemas.DenseMatrixResponse,
          "The layer as a dense weight-tied matrix M (v = M u) for a small crop")
_register("dense-matrix.png", schemas.DenseMatrixParams, _png(_dense, True), None,
          "The dense matrix, each shared weight in its own colour, zeros white")
_register("gradient", schemas.GradientParams, _png(_gradient, False), schemas.GradientResponse,
          "Gradient of a loss w.r.t. each shared weight, and one weight's per-position contributions; "
          "format=npy gives the (H_out, W_out) float32 map of them")
_register("gradient.png", schemas.GradientParams, _png(_gradient, True), None,
          "The per-position contributions to one weight's gradient (diverging colormap)")


@router.get("/presets", response_model=schemas.PresetsResponse, responses=ERRORS)
def presets(size: str = "3", seed: int = 0) -> schemas.PresetsResponse:
    """The kernel presets: names, descriptions, sizes, and their weights at `size` ('3' or '3,5')."""
    pair = parse_pair(size, "size", 1, 31)
    out = []
    for p in PRESETS.values():
        try:
            weights: list[list[float]] | None = p.weights(pair, seed).tolist()
        except ValueError:
            weights = None
        out.append(schemas.PresetOut(name=p.name, description=p.description, default_size=3,
                                     odd_only=p.odd_only, min_size=p.min_size, weights=weights))
    return schemas.PresetsResponse(size=list(pair), presets=out)


def error_field(message: str, default: str = "body") -> str:
    """The parameter an engine message names in backticks, in the API's vocabulary."""
    match = re.search(r"`(\w+)`", message)
    if not match:
        return default
    return ENGINE_FIELDS.get(match.group(1), match.group(1))


ENGINE_FIELDS: Mapping[str, str] = {
    "weight": "weights", "x": "image", "input_hw": "image", "kernel_hw": "kernel_size",
    "index": "weight", "input_shape": "crop", "target": "target_kernels", "size": "kernel_size",
}
