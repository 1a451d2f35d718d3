"""GET /api/presets: the named kernels and their weights at a size."""

from __future__ import annotations

from fastapi import APIRouter, Request

from engine import PRESETS, ArgumentError

from .. import schemas
from ..params import read_values, validate
from . import ERRORS, query_parameters

router = APIRouter(prefix="/api", tags=["presets"])


@router.get("/presets", response_model=schemas.PresetsResponse, responses=ERRORS,
            openapi_extra={"parameters": query_parameters(schemas.PresetsParams)})
async def presets(request: Request) -> schemas.PresetsResponse:
    """The kernel presets: names, descriptions, sizes, and their weights at `size` ('3' or '3,5')."""
    settings = request.app.state.settings
    values, _ = await read_values(request, settings)
    params = validate(schemas.PresetsParams, values, settings)
    out = []
    for p in PRESETS.values():
        try:
            weights: list[list[float]] | None = p.weights(params.size, params.seed,
                                                          settings.max_kernel_size).tolist()
        except ArgumentError:  # this preset has no such size (odd only, square only, ...)
            weights = None
        out.append(schemas.PresetOut(name=p.name, description=p.description, default_size=3,
                                     odd_only=p.odd_only, min_size=p.min_size, weights=weights))
    return schemas.PresetsResponse(size=list(params.size), presets=out)
