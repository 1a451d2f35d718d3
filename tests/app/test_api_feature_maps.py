"""GET/POST /api/feature-maps.png: one map at H_out x W_out (or scaled), or a labelled grid."""

from __future__ import annotations

import io

import numpy as np
import pytest
from apphelp import gray
from fastapi.testclient import TestClient
from PIL import Image

from app import draw
from engine import conv2d, preset


def _png(r: object) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(r.content)).convert("RGB"))  # type: ignore[attr-defined]


def test_one_map_has_output_size(client: TestClient, image_id: str) -> None:
    r = client.get("/api/feature-maps.png", params={"image_id": image_id, "kernels": "box", "index": 0})
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert _png(r).shape == (10, 14, 3)


def test_scale_is_nearest_neighbour(client: TestClient, image_id: str) -> None:
    base = _png(client.get("/api/feature-maps.png", params={"image_id": image_id, "index": 0}))
    big = _png(client.get("/api/feature-maps.png", params={"image_id": image_id, "index": 0, "scale": 3}))
    assert big.shape == (30, 42, 3)
    np.testing.assert_array_equal(big[::3, ::3], base)


def test_signed_map_uses_diverging_colours(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    r = client.post("/api/feature-maps.png", data={"image_id": image_id, "kernels": "sobel_x", "index": "0"})
    y = conv2d(gray(pixels), preset("sobel_x", 3)[None, None].astype(np.float32))[0]
    assert float(r.headers["X-Value-Min"]) == pytest.approx(float(y.min()), abs=1e-5)
    assert r.headers["X-Colormap"] == "diverging"
    m = max(abs(y.min()), abs(y.max()))
    assert float(r.headers["X-Color-Max"]) == pytest.approx(float(m), abs=1e-5)
    np.testing.assert_array_equal(_png(r), draw.colorize(y).rgb)


def test_non_negative_map_uses_sequential(client: TestClient, image_id: str) -> None:
    r = client.get("/api/feature-maps.png", params={"image_id": image_id, "kernels": "box", "index": 0})
    assert r.headers["X-Colormap"] == "sequential"


def test_grid_of_all_maps(client: TestClient, image_id: str) -> None:
    r = client.get("/api/feature-maps.png", params={"image_id": image_id, "kernels": "box,sobel_x,sobel_y"})
    h, w, _ = _png(r).shape
    assert h > 2 * 10 and w > 2 * 14


def test_png_response_cached_by_url(client: TestClient, image_id: str) -> None:
    params = {"image_id": image_id, "index": 0}
    a = client.get("/api/feature-maps.png", params=params)
    b = client.get("/api/feature-maps.png", params=params)
    assert a.content == b.content and "max-age" in a.headers["cache-control"]
