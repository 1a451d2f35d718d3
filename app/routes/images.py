"""POST /api/images: decode and store an upload; its id names it in every later request."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool

from .. import images, schemas
from ..errors import ParamError
from ..images import DecodedImage
from ..params import read_values, validate
from ..settings import Settings
from . import ERRORS

router = APIRouter(prefix="/api", tags=["images"])


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
    """Decode and store an image; its id is the sha256 of the decoded pixels."""
    settings: Settings = request.app.state.settings
    values, uploads = await read_values(request, settings)
    params = validate(schemas.LayerParams, {k: v for k, v in values.items() if k == "max_side"}, settings)
    if uploads.image is None:
        raise ParamError("image", "send the file as multipart field `image`")

    def store() -> schemas.ImageInfo:
        image = images.decode_upload(uploads.image, settings, params.max_side)  # type: ignore[arg-type]
        return image_info(request.app.state.store.put(image), image)

    return await run_in_threadpool(store)
