"""The HTML page: GET / renders it (with server-side results, so it works without JavaScript);
POST / takes the no-JS form, stores an uploaded image and redirects (303) to the GET view.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.datastructures import UploadFile

from engine import PRESETS, ConvSpec, output_arithmetic, parameter_counts, preset

from .images import ImageError, decode_upload, encode_png
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
VIEW_FIELDS = ("tab", "unit", "weight", "crop", "step", "decimate")
DEFAULTS = {
    "kernels": "sobel_x,sobel_y", "weights": "", "kernel_size": "3", "stride": "1", "padding": "1",
    "dilation": "1", "groups": "1", "bias": "0", "activation": "none", "color": "gray", "seed": "0",
}
ACTIVATIONS = ("none", "relu", "sigmoid", "tanh")
# script-src 'self': no inline scripts or handlers anywhere on the page.
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
FIELD_IN_MESSAGE = re.compile(r"`([a-z_]+)`")

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


def _store(request: Request) -> ImageStore:
    """The app's image store (app.state.store), created on first use if the app has none yet."""
    state = request.app.state
    store = getattr(state, "store", None)
    if store is None:
        settings: Settings = getattr(state, "settings", None) or Settings.from_env()
        store = state.store = ImageStore(settings.cache_bytes)
    return store


def _settings(request: Request) -> Settings:
    return getattr(request.app.state, "settings", None) or Settings.from_env()


def _load_sample(request: Request, name: str) -> str:
    """Put a built-in sample in the store and return its id."""
    data = (STATIC_DIR / "samples" / SAMPLES[name][0]).read_bytes()
    return _store(request).put(decode_upload(data, _settings(request)))


def _field_of(message: str, default: str) -> str:
    match = FIELD_IN_MESSAGE.search(message)
    return match.group(1) if match else default


def _pair(text: str, name: str) -> tuple[int, int]:
    parts = [t.strip() for t in text.split(",") if t.strip()]
    if not 1 <= len(parts) <= 2 or not all(re.fullmatch(r"-?\d+", t) for t in parts):
        raise ValueError(f"`{name}` must be a whole number or two separated by a comma, got {text!r}")
    nums = [int(t) for t in parts]
    return (nums[0], nums[-1])


def _weights_shape(state: dict[str, str], channels: int, groups: int) -> tuple[int, int, int, int]:
    """(J, C/groups, kh, kw) of the layer the state describes; ValueError naming the field."""
    if state["weights"]:
        try:
            w = np.asarray(json.loads(state["weights"]), dtype=np.float64)
        except (ValueError, TypeError):
            raise ValueError("`weights` must be a JSON list of numbers, J×kh×kw or J×C×kh×kw") from None
        if w.ndim == 3:
            return (w.shape[0], channels // groups, w.shape[1], w.shape[2])
        if w.ndim == 4:
            return (w.shape[0], w.shape[1], w.shape[2], w.shape[3])
        raise ValueError(f"`weights` must be J×kh×kw or J×C×kh×kw, got {w.ndim} dimensions")
    names = [n.strip() for n in state["kernels"].split(",") if n.strip()]
    if not names:
        raise ValueError("`kernels`: pick at least one kernel")
    if len(names) > 16:
        raise ValueError(f"`kernels`: at most 16 kernels, got {len(names)}")
    kh, kw = _pair(state["kernel_size"], "kernel_size")
    for name in set(names):
        preset(name, (kh, kw))
    return (len(names), channels // groups, kh, kw)


def _compute(state: dict[str, str], image_id: str, h: int, w: int) -> PageResult:
    """Shapes, arithmetic and parameter counts by the engine; ValueError names the bad field."""
    channels = 3 if state["color"] == "rgb" else 1
    if state["color"] not in ("gray", "rgb"):
        raise ValueError("`color` must be gray or rgb")
    if state["activation"] not in ACTIVATIONS:
        raise ValueError(f"`activation` must be one of {', '.join(ACTIVATIONS)}")
    try:
        groups = int(state["groups"])
    except ValueError:
        raise ValueError("`groups` must be a whole number") from None
    if groups < 1 or channels % groups:
        raise ValueError(f"`groups` must divide the {channels} input channel(s), got {groups}")
    shape = _weights_shape(state, channels, groups)
    kernel = (shape[2], shape[3])
    stride = _pair(state["stride"], "stride")
    dilation = _pair(state["dilation"], "dilation")
    word = state["padding"].strip().lower()
    padding: Any = word if word in ("same", "valid") else _pair(state["padding"], "padding")
    spec = ConvSpec.make(kernel, stride, padding, dilation)
    rows, cols = output_arithmetic((h, w), spec.kernel_size, spec.stride, spec.padding, spec.dilation)
    counts = parameter_counts((channels, h, w), shape, spec.stride, spec.padding, spec.dilation, groups)
    j = shape[0]
    params = {k: v for k, v in _layer_query(state).items()}
    maps = [
        {
            "name": _map_name(state, i),
            "png": "/api/feature-maps.png?" + urlencode({"image_id": image_id, **params, "index": i}),
        }
        for i in range(j)
    ]
    arithmetic = [
        {"axis": a.axis, "size": a.size, "output": a.output, "unused": a.unused,
         "steps": [f"input {describe_lines(a.unused, a.axis[:-1])} never read" if "never read:" in line
                   else line for line in a.steps()]}
        for a in (rows, cols)
    ]
    parameters = {
        "conv": counts.conv, "untied": counts.untied, "dense": counts.dense,
        "conv_weights": counts.conv_weights, "positions": counts.positions,
    }
    return PageResult((channels, h, w), (j, rows.output, cols.output), arithmetic, parameters, maps)


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


def _map_name(state: dict[str, str], i: int) -> str:
    if state["weights"]:
        return f"kernel {i}"
    names = [n.strip() for n in state["kernels"].split(",") if n.strip()]
    return names[i] if i < len(names) else f"kernel {i}"


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
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
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
            notice = "That image is no longer on the server: please upload it again. Showing a sample."
            image_id = ""
            sample = DEFAULT_SAMPLE
    if not image_id:
        sample = sample if sample in SAMPLES else DEFAULT_SAMPLE
        image_id = _load_sample(request, sample)
    image = store.require(image_id)
    h, w = image.pixels.shape[:2]
    result: PageResult | None = None
    try:
        result = _compute(state, image_id, h, w)
    except (ValueError, TypeError) as exc:
        errors[_field_of(str(exc), "kernels")] = str(exc).replace("`", "")
    selected = [n.strip() for n in state["kernels"].split(",") if n.strip()]
    context = {
        "state": state,
        "image": {"id": image_id, "sample": sample,
                  "width": w, "height": h, "channels": 3,
                  "original_width": image.original_size[0], "original_height": image.original_size[1]},
        "samples": SAMPLES,
        "presets": list(PRESETS.values()),
        "preset_names": set(PRESETS),
        "max_kernels": _settings(request).max_kernels,
        "max_values": _settings(request).max_values,
        "max_dense_side": _settings(request).max_dense_side,
        "odd_only": {p.name for p in PRESETS.values() if p.odd_only},
        "selected": selected,
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
    form = await request.form()
    values: dict[str, str] = {}
    for key in {*LAYER_FIELDS, *VIEW_FIELDS, "sample", "image_id"}:
        items = [str(v) for v in form.getlist(key) if isinstance(v, str) and v.strip()]
        if items:
            values[key] = ",".join(items)
    upload = form.get("image")
    try:
        if isinstance(upload, UploadFile) and upload.filename:
            data = await upload.read()
            await upload.close()
            if data:
                values["image_id"] = _store(request).put(decode_upload(data, _settings(request)))
                values.pop("sample", None)
                values["uploaded"] = "1"
    except ImageError as exc:
        return _render(request, values, {exc.field: exc.detail}, status_code=exc.status_code)
    finally:
        await form.close()
    if values.get("sample") and not values.pop("uploaded", ""):
        values.pop("image_id", None)  # a sample picked in the form replaces the previous image
    query = {k: values[k] for k in ("image_id", "sample") if values.get(k)}
    query.update({k: values[k] for k in (*LAYER_FIELDS, *VIEW_FIELDS) if values.get(k)})
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
