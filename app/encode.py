"""Responses: JSON, PNG, .npy, with the headers that describe them.

Every function here runs in the compute pool with the handler, so a large body is serialised off
the event loop. JSON floats are finite (non-finite values are refused upstream; `finite` checks).
"""

from __future__ import annotations

import base64
import io
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from fastapi import Response
from numpy.typing import NDArray
from pydantic import BaseModel

from engine import AxisArithmetic, ParameterCounts

from . import draw, schemas
from .errors import ParamError
from .outputs import OutputCache

PNG_CACHE = "public, max-age=3600"
MAX_URL_QUERY = 6000  # a map URL longer than this (big inline weights) is handed out as a data URI


def data_uri(png: bytes) -> str:
    """PNG bytes as a data: URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode()


def png_link(url: str, values: NDArray[np.floating], png: bytes | None = None) -> str:
    """A map's GET URL, or, when the URL is too long to hand out, the map itself as a data URI
    (its `png`, when it is already encoded)."""
    if len(url) <= MAX_URL_QUERY:
        return url
    return data_uri(png if png is not None else draw.map_png(values)[0])


def json_response(body: BaseModel, headers: Mapping[str, str] | None = None, status_code: int = 200
                  ) -> Response:
    """A pydantic model as a JSON response, serialised here (in the worker thread)."""
    return Response(body.model_dump_json(), status_code=status_code, media_type="application/json",
                    headers=dict(headers or {}))


def npy_response(array: NDArray[np.floating], filename: str, headers: Mapping[str, str] | None = None
                 ) -> Response:
    """An array as a .npy download."""
    buf = io.BytesIO()
    np.save(buf, array)
    return Response(buf.getvalue(), media_type="application/octet-stream",
                    headers={"Content-Disposition": f'attachment; filename="{filename}"', **(headers or {})})


def png_response(data: bytes, headers: Mapping[str, str] | None = None) -> Response:
    """PNG bytes as a cacheable response."""
    return Response(data, media_type="image/png", headers={**(headers or {}), "Cache-Control": PNG_CACHE})


def cached_png(outputs: OutputCache, key: tuple[object, ...],
               render: Callable[[], tuple[bytes, dict[str, str]]]
               ) -> Response:
    """A PNG response, encoded once per key."""
    data, headers = outputs.get_or_compute(("png", *key), render)
    return png_response(data, headers)


def range_headers(lo: float, hi: float, c: draw.Colorized) -> dict[str, str]:
    """The value range of a map and of its colour bar, for the page's legends."""
    return {"X-Value-Min": repr(lo), "X-Value-Max": repr(hi), "X-Color-Min": repr(c.vmin),
            "X-Color-Max": repr(c.vmax), "X-Colormap": "diverging" if c.signed else "sequential"}


def server_timing(start: float, engine_seconds: float, computed: bool) -> dict[str, str]:
    """A Server-Timing header: the engine's share (0 when the output came from the cache) and the whole."""
    engine = f"engine;dur={engine_seconds * 1000:.1f}" if computed else 'engine;dur=0;desc="cached"'
    return {"Server-Timing": f"{engine}, total;dur={(time.perf_counter() - start) * 1000:.1f}"}


def require_finite(field: str, *arrays: NDArray[np.floating]) -> None:
    """Refuse (422 on `field`) results that overflowed float32, so every JSON number is finite."""
    if not all(np.isfinite(a).all() for a in arrays):
        raise ParamError(field, f"`{field}`: the result overflows float32 (about 3.4e38); use smaller "
                         "weights or bias")


def floats(a: NDArray[np.floating]) -> list[Any]:
    """An array as nested lists of Python floats."""
    return np.asarray(a, dtype=np.float64).tolist()


def pairs(runs: tuple[tuple[int, int], ...]) -> list[list[int]]:
    """Runs [start, stop) as lists."""
    return [[a, b] for a, b in runs]


def arithmetic_out(arithmetic: tuple[AxisArithmetic, ...]) -> list[schemas.AxisArithmeticOut]:
    """The output-size arithmetic of each axis, with its lines and the lines no output reads."""
    return [schemas.AxisArithmeticOut(**{**a.__dict__, "unused": pairs(a.unused), "steps": a.steps(),
                                         "formula_steps": a.formula_steps()}) for a in arithmetic]


def parameters_out(counts: ParameterCounts) -> schemas.ParametersOut:
    """Parameter counts with their totals."""
    return schemas.ParametersOut(**counts.__dict__, conv=counts.conv, untied=counts.untied,
                                 dense=counts.dense)
