"""The HTML page: GET / renders it (with server-side results, so it works without JavaScript);
POST / takes the no-JS form, stores an uploaded image and redirects (303) to the GET view.

Rendering only: the page reads its layer with the API's reader (app/params.py) and builds it with
the API's layer builder (app/layer.py), so its map links are the very URLs /api/convolve hands out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile

from engine import PRESETS, ArgumentError, ArgumentTypeError, output_arithmetic, parameter_counts

from . import schemas
from .draw import encode_png
from .errors import ImageError, ParamError, api_field
from .images import decode_upload
from .layer import LayerStack, build_stack
from .middleware import CSP
from .params import Uploads, all_errors, read_upload
from .settings import Settings
from .store import ImageStore

ROOT = Path(__file__).resolve().parent.parent
STATIC_DIR = ROOT / "static"
TEMPLATES_DIR = ROOT / "templates"
SAMPLES = {
    "astronaut": ("astronaut.png", "Astronaut photo"),
    "checkerboard": ("checkerboard.png", "Checkerboard + text"),
    "tiny": ("tiny.png", "Tiny 12×12"),
}
DEFAULT_SAMPLE = "astronaut"
LAYER_FIELDS = (
    "kernels", "weights", "kernel_size", "stride", "padding", "dilation", "groups", "bias",
    "activation", "color", "seed",
)
VIEW_FIELDS = ("tab", "unit", "weight", "crop", "step", "decimate", "zoom", "lens", "loss", "target", "lr",
               "sweep", "mode")
DEFAULTS = {
    "kernels": "sobel_x,sobel_y", "weights": "", "kernel_size": "3", "stride": "1", "padding": "1",
    "dilation": "1", "groups": "1", "bias": "0", "activation": "none", "color": "gray", "seed": "0",
}
ACTIVATIONS = ("none", "relu", "sigmoid", "tanh")
# Fields a learner types; sent empty, each is an error (never a silent default). Their words:
TYPED = {
    "kernel_size": "Type a kernel size: a whole number like 3, or two like 3,5 (rows,columns).",
    "stride": "Type a stride: a whole number of at least 1, or two like 1,2 (rows,columns).",
    "padding": "Type a padding: a whole number like 1, two like 1,2, or same.",
    "dilation": "Type a dilation: a whole number of at least 1, or two like 2,1 (rows,columns).",
    "bias": "Type a bias: a number such as 0 or 0.5, or one per kernel.",
}
EXPIRED = ("The image of this link is no longer on the server (it keeps images for a while only): "
           "upload it again to see it. Your other settings are kept; meanwhile this is the astronaut sample.")

templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
router = APIRouter(tags=["page"])


@dataclass
class PageResult:
    """What the server computes for the no-JS view: shapes, arithmetic, counts, map URLs."""

    input_shape: tuple[int, int, int]
    output_shape: tuple[int, int, int]
    arithmetic: list[dict[str, Any]]
    parameters: dict[str, int]
    maps: list[dict[str, str]] = field(default_factory=list)


def _settings(request: Request) -> Settings:
    return request.app.state.settings


def _store(request: Request) -> ImageStore:
    return request.app.state.store


def _load_sample(request: Request, name: str) -> str:
    """Put a built-in sample in the store and return its id."""
    data = (STATIC_DIR / "samples" / SAMPLES[name][0]).read_bytes()
    return _store(request).put(decode_upload(data, _settings(request)))


def describe_lines(runs: Sequence[tuple[int, int]], noun: str) -> str:
    """Unused input lines in words: a long regular run reads "1, 3, 5, …, 319 (every 2nd row, 160 in all)"."""
    def fmt(run: tuple[int, int]) -> str:
        return str(run[0]) if run[1] - run[0] == 1 else f"{run[0]}–{run[1] - 1}"

    total = sum(b - a for a, b in runs)
    plural = noun if total == 1 else f"{noun}s"
    if len(runs) <= 6:
        return f"{plural} {', '.join(map(fmt, runs))}"
    width, step = runs[0][1] - runs[0][0], runs[1][0] - runs[0][0]
    regular = all(b - a == width and (i == 0 or a - runs[i - 1][0] == step) for i, (a, b) in enumerate(runs))
    if regular:
        nth = {2: "2nd", 3: "3rd"}.get(step, f"{step}th")
        what = f"every {nth} {noun}" if width == 1 else f"{width} {noun}s out of every {step}"
        return f"{plural} {', '.join(map(fmt, runs[:3]))}, …, {fmt(runs[-1])} ({what}, {total:,} in all)"
    return f"{plural} {', '.join(map(fmt, runs[:4]))}, …, {', '.join(map(fmt, runs[-2:]))} ({total:,} in all)"


def _result(stack: LayerStack) -> PageResult:
    """Shapes, arithmetic, counts and map links of the built layer, as the API computes them."""
    layer = stack.layer
    arithmetic = []
    for a in output_arithmetic(stack.input_shape[1:], spec=layer.spec):
        steps = a.formula_steps()
        if a.unused:
            steps.append(f"input {describe_lines(a.unused, a.axis[:-1])} never read")
        arithmetic.append({"axis": a.axis, "size": a.size, "output": a.output, "unused": a.unused,
                           "steps": steps, "kernel": a.kernel, "stride": a.stride, "padding": a.padding,
                           "dilation": a.dilation})
    counts = parameter_counts(stack.input_shape, layer.weight.shape, groups=layer.groups, spec=layer.spec)
    h_out, w_out = layer.spec.output_shape(stack.input_shape[1:])
    return PageResult(
        stack.input_shape, (layer.kernels, h_out, w_out), arithmetic,
        {"conv": counts.conv, "untied": counts.untied, "dense": counts.dense,
         "conv_weights": counts.conv_weights, "positions": counts.positions},
        [{"name": layer.names[i], "png": stack.map_url(i)} for i in range(layer.kernels)],
    )


def _compute(request: Request, state: dict[str, str], image_id: str
             ) -> tuple[PageResult | None, dict[str, str]]:
    """The layer of the page's state, through the API's reader and builder; every bad field named."""
    settings = _settings(request)
    values: dict[str, Any] = {k: state[k] for k in LAYER_FIELDS if state.get(k)}
    params, errors = all_errors(schemas.ConvolveParams, {**values, "image_id": image_id}, settings)
    if params is None:
        return None, errors
    try:
        stack = build_stack(params, Uploads(), settings, _store(request), request.app.state.outputs)
        return _result(stack), {}
    except ParamError as err:
        return None, {err.field: err.detail}
    except (ArgumentError, ArgumentTypeError) as err:
        return None, {api_field(err): str(err)}


def _layer_query(state: dict[str, str]) -> dict[str, str]:
    q = {k: state[k] for k in LAYER_FIELDS if state.get(k)}
    if state.get("weights"):
        q.pop("kernels", None)
    return q


def _state_from(values: dict[str, str]) -> dict[str, str]:
    state = dict(DEFAULTS)
    for k in (*LAYER_FIELDS, *VIEW_FIELDS):
        if values.get(k) not in (None, ""):
            state[k] = str(values[k]).strip()
    return state


def _page(request: Request, context: dict[str, Any], status_code: int = 200) -> Response:
    response = templates.TemplateResponse(request, "index.html", context, status_code=status_code)
    response.headers["Content-Security-Policy"] = CSP
    return response


def _render(
    request: Request, values: dict[str, str], errors: dict[str, str] | None = None, status_code: int = 200
) -> Response:
    errors = dict(errors or {})
    state = _state_from(values)
    sample = values.get("sample", "")
    image_id = values.get("image_id", "")
    store = _store(request)
    notice = ""
    if image_id and image_id not in store:
        if sample in SAMPLES:
            image_id = ""
        else:
            notice = EXPIRED
            image_id = ""
            sample = DEFAULT_SAMPLE
    if not image_id:
        sample = sample if sample in SAMPLES else DEFAULT_SAMPLE
        image_id = _load_sample(request, sample)
    image = store.require(image_id)
    h, w = image.pixels.shape[:2]
    for name, words in TYPED.items():
        if name in values and not str(values[name]).strip():
            errors.setdefault(name, words)
    result, layer_errors = (None, {}) if errors else _compute(request, state, image_id)
    for name, detail in layer_errors.items():
        errors.setdefault(name, detail)
    errors = {name: detail.replace("`", "") for name, detail in errors.items()}
    settings = _settings(request)
    context = {
        "state": state,
        "image": {"id": image_id, "sample": sample,
                  "width": w, "height": h, "channels": 3,
                  "original_width": image.original_size[0], "original_height": image.original_size[1]},
        "samples": SAMPLES,
        "presets": list(PRESETS.values()),
        "preset_names": set(PRESETS),
        "limits": asdict(settings),
        "max_kernels": settings.max_kernels,
        "max_values": settings.max_values,
        "max_dense_side": settings.max_dense_side,
        "odd_only": {p.name for p in PRESETS.values() if p.odd_only},
        "selected": [n.strip() for n in state["kernels"].split(",") if n.strip()],
        "activations": ACTIVATIONS,
        "result": result,
        "errors": errors,
        "notice": notice,
        "query": urlencode({**({"sample": sample} if sample else {}), "image_id": image_id,
                            **_layer_query(state)}),
    }
    return _page(request, context, status_code)


@router.get("/", include_in_schema=False)
def index(request: Request) -> Response:
    """The page, with results rendered on the server for the current query string."""
    q = request.query_params
    values = {k: ",".join(q.getlist(k)) for k in q.keys()}
    return _render(request, values)


@router.post("/", include_in_schema=False)
async def submit(request: Request) -> Response:
    """The no-JS form: store an uploaded image, then redirect (303) to GET / with the state."""
    settings = _settings(request)
    values: dict[str, str] = {}
    try:
        async with request.form(max_files=2, max_fields=64) as form:
            for key in {*LAYER_FIELDS, *VIEW_FIELDS, "sample", "image_id"}:
                items = [str(v) for v in form.getlist(key) if isinstance(v, str) and v.strip()]
                if items:
                    values[key] = ",".join(items)
                elif key in TYPED and key in form:
                    values[key] = ""  # sent empty: reported, not replaced by a default
            upload = form.get("image")
            data = await read_upload(upload, settings, "image") \
                if isinstance(upload, UploadFile) and upload.filename else b""
        if data:
            decoded = await run_in_threadpool(decode_upload, data, settings)
            values["image_id"] = await run_in_threadpool(_store(request).put, decoded)
            values.pop("sample", None)
            values["uploaded"] = "1"
    except ImageError as exc:
        return await run_in_threadpool(_render, request, values, {exc.field: exc.detail}, exc.status_code)
    if values.get("sample") and not values.pop("uploaded", ""):
        values.pop("image_id", None)  # a sample picked in the form replaces the previous image
    query = {k: values[k] for k in ("image_id", "sample") if values.get(k)}
    query.update({k: values[k] for k in (*LAYER_FIELDS, *VIEW_FIELDS)
                  if values.get(k) or (k in TYPED and k in values)})
    return RedirectResponse("/?" + urlencode(query), status_code=303)


@router.get("/image/{image_id}.png", include_in_schema=False)
def image_png(request: Request, image_id: str) -> Response:
    """The stored working image as PNG, so the page can draw exactly the pixels the API uses."""
    image = _store(request).get(image_id)
    if image is None:
        return JSONResponse({"detail": "unknown image_id: upload the image again", "field": "image_id"},
                            status_code=404)
    return Response(encode_png(image.pixels), media_type="image/png",
                    headers={"Cache-Control": "private, max-age=3600"})
