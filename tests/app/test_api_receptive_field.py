"""/api/receptive-field (and .png): the box, every dilated tap, and the taps on padding."""

from __future__ import annotations

import io

from fastapi.testclient import TestClient
from PIL import Image


def test_hand_worked_corner_unit_with_padding(client: TestClient, image_id: str) -> None:
    r = client.post("/api/receptive-field", json={"image_id": image_id, "kernels": "box", "padding": 1,
                                                  "row": 0, "col": 0})
    body = r.json()
    assert r.status_code == 200
    assert body["box"] == {"top": -1, "left": -1, "height": 3, "width": 3}
    assert body["clipped"] == {"top": 0, "left": 0, "height": 2, "width": 2}
    assert body["tap_rows"] == [-1, 0, 1] and body["tap_cols"] == [-1, 0, 1]
    on_pad = {(t["u"], t["v"]) for t in body["taps"] if t["padding"]}
    assert on_pad == {(0, 0), (0, 1), (0, 2), (1, 0), (2, 0)}
    assert body["output_shape"] == [12, 16]


def test_dilation_and_stride_spread_taps(client: TestClient, image_id: str) -> None:
    # unit (2, 3), stride (2, 1), dilation 2, kernel 3x2: rows 4 + 2u, cols 3 + 2v.
    body = client.post("/api/receptive-field", json={
        "image_id": image_id, "weights": [[[1, 1], [1, 1], [1, 1]]], "stride": "2,1", "dilation": 2,
        "row": 2, "col": 3}).json()
    assert body["tap_rows"] == [4, 6, 8] and body["tap_cols"] == [3, 5]
    assert body["box"] == {"top": 4, "left": 3, "height": 5, "width": 3}
    assert not any(t["padding"] for t in body["taps"]) and len(body["taps"]) == 6


def test_png_overlay(client: TestClient, image_id: str) -> None:
    body = client.post("/api/receptive-field", json={"image_id": image_id, "padding": 2, "row": 1,
                                                     "col": 1}).json()
    r = client.get(body["png"])
    assert r.status_code == 200
    w, h = Image.open(io.BytesIO(r.content)).size
    scale = min(16, 512 // 16)  # small images are enlarged, at most 16x
    assert (w, h) == ((16 + 4) * scale, (12 + 4) * scale)


def test_png_explicit_scale(client: TestClient, image_id: str) -> None:
    r = client.get("/api/receptive-field.png", params={"image_id": image_id, "scale": 2})
    assert Image.open(io.BytesIO(r.content)).size == (32, 24)


def test_unit_out_of_range_is_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/receptive-field", json={"image_id": image_id, "row": 10})
    assert r.status_code == 422 and r.json()["field"] == "row"
