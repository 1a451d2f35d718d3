"""/api/dense-matrix (and .png): the layer as a sparse weight-tied matrix M, M @ x = conv(x)."""

from __future__ import annotations

import io

import numpy as np
from apphelp import gray
from fastapi.testclient import TestClient
from PIL import Image

from engine import conv2d


def test_matrix_reproduces_convolution(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    w = [[[1.0, -2.0], [0.5, 3.0]]]
    body = client.post("/api/dense-matrix", json={"image_id": image_id, "weights": w, "crop": "2,3,5,6",
                                                  "padding": 1, "stride": 2}).json()
    x = gray(pixels)[:, 2:7, 3:9]
    m = np.zeros(body["shape"])
    e = body["entries"]
    m[e["rows"], e["cols"]] = e["values"]
    y = conv2d(x, np.array(w, np.float32)[:, None], padding=1, stride=2)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), rtol=1e-5, atol=1e-6)
    assert body["shape"] == [y.size, 30] and body["nnz"] == len(e["rows"])
    assert body["density"] == body["nnz"] / (y.size * 30)
    np.testing.assert_allclose(np.array(w).ravel()[e["tied"]], e["values"])
    assert body["crop"] == [2, 3, 5, 6] and body["input_shape"] == [1, 5, 6]


def test_hand_worked_1d_like_case(client: TestClient, image_id: str) -> None:
    # 1 row x 3 cols crop, kernel 1x2, valid: M is 2 x 3 = [[a b 0], [0 a b]], each weight tied twice.
    body = client.post("/api/dense-matrix", json={"image_id": image_id, "weights": [[[7, 9]]],
                                                  "crop": "0,0,1,3"}).json()
    e = body["entries"]
    assert body["shape"] == [2, 3] and body["nnz"] == 4
    triples = list(zip(e["rows"], e["cols"], e["tied"], strict=True))
    assert triples == [(0, 0, 0), (0, 1, 1), (1, 1, 0), (1, 2, 1)]
    assert body["parameters"]["conv_weights"] == 2 and body["parameters"]["dense_weights"] == 6


def test_default_crop_is_top_left_limit(client: TestClient, image_id: str) -> None:
    body = client.post("/api/dense-matrix", json={"image_id": image_id}).json()
    assert body["crop"] == [0, 0, 12, 16]


def test_png_colours_tied_weights(client: TestClient, image_id: str) -> None:
    body = client.post("/api/dense-matrix", json={"image_id": image_id, "weights": [[[7, 9]]],
                                                  "crop": "0,0,1,3", "scale": 2}).json()
    img = np.asarray(Image.open(io.BytesIO(client.get(body["png"]).content)))
    assert img.shape == (4, 6, 3)
    np.testing.assert_array_equal(img[0, 0], img[2, 2])  # weight 0 at (0, 0) and (1, 1)
    np.testing.assert_array_equal(img[0, 4], [255, 255, 255])  # a structural zero
    assert not np.array_equal(img[0, 0], img[0, 2])


def test_crop_over_limit_is_422_suggesting_crop(client: TestClient, image_id: str) -> None:
    r = client.post("/api/dense-matrix", json={"image_id": image_id, "crop": "0,0,12,16"})
    assert r.status_code == 200
    client.app.state.settings = type(client.app.state.settings)(max_dense_side=8)  # type: ignore[attr-defined]
    r = client.post("/api/dense-matrix", json={"image_id": image_id, "crop": "0,0,12,16"})
    assert r.status_code == 422 and r.json()["field"] == "crop"
    assert "8x8" in r.json()["detail"] and "crop=" in r.json()["detail"]


def test_matrix_over_entry_limit_is_422(client: TestClient, image_id: str) -> None:
    client.app.state.settings = type(client.app.state.settings)(max_dense_entries=100)  # type: ignore[attr-defined]
    r = client.post("/api/dense-matrix", json={"image_id": image_id})
    assert r.status_code == 422 and r.json()["field"] == "crop" and "100" in r.json()["detail"]


def test_a_kernel_too_big_for_the_crop_asks_for_a_larger_crop(client: TestClient, image_id: str) -> None:
    r = client.post("/api/dense-matrix", json={"image_id": image_id, "kernels": "box", "kernel_size": 9,
                                               "crop": "0,0,8,8"})
    assert r.status_code == 422 and r.json()["field"] == "crop"
    detail = r.json()["detail"]
    assert "8x8 crop is too small for this kernel" in detail and "larger crop, up to 32x32" in detail
    assert "CONVLENS" not in detail
    ok = client.post("/api/dense-matrix", json={"image_id": image_id, "kernels": "box", "kernel_size": 9,
                                                "crop": "0,0,10,10"})
    assert ok.status_code == 200 and ok.json()["output_shape"][1:] == [2, 2]
