"""POST /api/images: upload once, get a content id; GET /healthz."""

from __future__ import annotations

import numpy as np
from apphelp import encode, make_pixels
from fastapi.testclient import TestClient

from app.store import image_id as content_id


def test_upload_returns_201_and_info(client: TestClient, png_bytes: bytes, pixels: np.ndarray) -> None:
    r = client.post("/api/images", files={"image": ("x.png", png_bytes, "image/png")})
    assert r.status_code == 201
    body = r.json()
    assert body == {"id": content_id(pixels), "width": 16, "height": 12, "channels": 3,
                    "original_width": 16, "original_height": 12, "downscaled": False, "format": "PNG"}


def test_same_pixels_same_id_across_formats(client: TestClient, pixels: np.ndarray) -> None:
    ids = {
        client.post("/api/images", files={"image": ("a", encode(pixels, fmt, **kw), "x")}).json()["id"]
        for fmt, kw in (("PNG", {}), ("WEBP", {"lossless": True}))
    }
    assert len(ids) == 1


def test_upload_downscales_with_max_side(client: TestClient) -> None:
    data = encode(make_pixels(40, 80))
    r = client.post("/api/images", files={"image": ("a.png", data, "image/png")}, data={"max_side": "20"})
    assert r.status_code == 201
    body = r.json()
    assert (body["width"], body["height"], body["original_width"], body["downscaled"]) == (20, 10, 80, True)


def test_uploaded_image_is_in_store(client: TestClient, image_id: str) -> None:
    assert image_id in client.app.state.store  # type: ignore[attr-defined]


def test_healthz(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
