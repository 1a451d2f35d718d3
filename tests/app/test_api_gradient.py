"""/api/gradient (and .png): a shared weight's gradient is the sum of its per-position contributions."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from apphelp import gray
from fastapi.testclient import TestClient
from PIL import Image

from engine import conv2d, conv2d_backward, loss_grad, preset


def test_sum_loss_matches_engine(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    body = client.post("/api/gradient", json={"image_id": image_id, "kernels": "sobel_x", "padding": 1,
                                              "weight": "0,0,1,2", "values": True}).json()
    x = gray(pixels)
    w = preset("sobel_x", 3)[None, None].astype(np.float32)
    z = conv2d(x, w, padding=1)
    value, gz = loss_grad(z, "none", "sum")
    _, gw, gb = conv2d_backward(x, w, gz, padding=1)
    assert body["value"] == pytest.approx(value, rel=1e-5)
    np.testing.assert_allclose(body["grad_w"], gw, rtol=1e-4)
    np.testing.assert_allclose(body["grad_b"], gb)
    assert body["grad_w_at_weight"] == pytest.approx(float(gw[0, 0, 1, 2]), rel=1e-5)
    assert body["contributions"]["sum"] == pytest.approx(body["grad_w_at_weight"], rel=1e-4)
    assert body["positions"] == 12 * 16 and body["contributions"]["shape"] == [12, 16]
    # loss = sum: dL/dy = 1, so the contribution at (m, n) is the input pixel tap (1, 2) reads.
    xp = np.pad(x[0], 1)
    np.testing.assert_allclose(body["contributions"]["values"], xp[1:13, 2:18], rtol=1e-5)


def test_grad_b_is_positions_for_sum_loss(client: TestClient, image_id: str) -> None:
    body = client.post("/api/gradient", json={"image_id": image_id, "kernels": "box,box"}).json()
    assert body["grad_b"] == [10 * 14, 10 * 14]


def test_mse_against_target_kernels(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    body = client.post("/api/gradient", json={"image_id": image_id, "kernels": "box", "loss": "mse",
                                              "target_kernels": "gaussian", "activation": "tanh"}).json()
    x = gray(pixels)
    w = preset("box", 3)[None, None].astype(np.float32)
    target = np.tanh(conv2d(x, preset("gaussian", 3)[None, None].astype(np.float32)))
    z = conv2d(x, w)
    value, gz = loss_grad(z, "tanh", "mse", target)
    _, gw, _ = conv2d_backward(x, w, gz)
    assert body["value"] == pytest.approx(value, rel=1e-4)
    np.testing.assert_allclose(body["grad_w"], gw, rtol=1e-3, atol=1e-9)
    assert body["contributions"]["sum"] == pytest.approx(body["grad_w_at_weight"], rel=1e-3, abs=1e-9)


def test_mse_target_identical_gives_zero_gradient(client: TestClient, image_id: str) -> None:
    body = client.post("/api/gradient", json={"image_id": image_id, "kernels": "box", "loss": "mse",
                                              "target_weights": [[[1 / 9] * 3] * 3]}).json()
    assert body["value"] == pytest.approx(0, abs=1e-10)
    assert np.abs(body["grad_w"]).max() < 1e-6


def test_contributions_png(client: TestClient, image_id: str) -> None:
    body = client.post("/api/gradient", json={"image_id": image_id, "loss": "mse", "target_kernels": "box",
                                              "weight": "0,0,2,2"}).json()
    r = client.get(body["contributions"]["png"])
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (14, 10)
    assert r.headers["X-Colormap"] == "diverging"


def test_mse_without_target_is_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/gradient", json={"image_id": image_id, "loss": "mse"})
    assert r.status_code == 422 and r.json()["field"] == "target_kernels"


def test_target_shape_mismatch_is_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/gradient", json={"image_id": image_id, "loss": "mse", "target_kernels": "box,box"})
    assert r.status_code == 422 and r.json()["field"] == "target_kernels"


def test_weight_index_out_of_range_is_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/gradient", json={"image_id": image_id, "weight": "0,0,3,0"})
    assert r.status_code == 422 and r.json()["field"] == "weight" and "u=3" in r.json()["detail"]


def test_weight_index_malformed_is_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/gradient", json={"image_id": image_id, "weight": "0,0,1"})
    assert r.status_code == 422 and r.json()["field"] == "weight"


def test_npy_format_is_the_whole_contributions_map(client: TestClient, image_id: str,
                                                   pixels: np.ndarray) -> None:
    layer = {"image_id": image_id, "kernels": "sobel_x", "padding": 1, "weight": "0,0,1,2"}
    r = client.post("/api/gradient", json={**layer, "format": "npy"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert 'filename="contributions.npy"' in r.headers["content-disposition"]
    got = np.load(io.BytesIO(r.content))
    assert got.dtype == np.float32 and got.shape == (12, 16)
    # loss = sum: each contribution is the input pixel that tap (1, 2) reads at that position.
    np.testing.assert_allclose(got, np.pad(gray(pixels)[0], 1)[1:13, 2:18], rtol=1e-6)
    body = client.post("/api/gradient", json=layer).json()
    assert float(got.sum(dtype=np.float64)) == pytest.approx(body["grad_w_at_weight"], rel=1e-5)
    # The JSON links the same file, for any size (values=true stops at CONVLENS_MAX_VALUES).
    again = client.get(body["contributions"]["npy"])
    assert again.status_code == 200
    np.testing.assert_array_equal(np.load(io.BytesIO(again.content)), got)


def test_npy_format_for_an_mse_loss_links_its_target(client: TestClient, image_id: str) -> None:
    layer = {"image_id": image_id, "kernels": "box", "loss": "mse", "target_kernels": "sobel_x",
             "weight": "0,0,1,1"}
    body = client.post("/api/gradient", json=layer).json()
    got = np.load(io.BytesIO(client.get(body["contributions"]["npy"]).content))
    assert "target_kernels=sobel_x" in body["contributions"]["npy"]
    assert float(got.sum(dtype=np.float64)) == pytest.approx(body["grad_w_at_weight"], rel=1e-4)
    assert float(got.min()) == pytest.approx(body["contributions"]["min"])


@pytest.mark.parametrize("how", ["form", "query", "json"])
def test_links_work_whatever_way_target_weights_came(client: TestClient, image_id: str, how: str) -> None:
    # A form field or query value is JSON text already; the links must carry it as it is.
    target = [[[0, 0, 0], [0, 1, 0], [0, 0, 0]]]
    layer = {"image_id": image_id, "kernels": "box", "loss": "mse", "weight": "0,0,1,1"}
    if how == "json":
        r = client.post("/api/gradient", json={**layer, "target_weights": target})
    elif how == "form":
        r = client.post("/api/gradient", data={**layer, "target_weights": json.dumps(target)})
    else:
        r = client.get("/api/gradient", params={**layer, "target_weights": json.dumps(target)})
    assert r.status_code == 200, r.text
    body = r.json()
    for link in (body["contributions"]["png"], body["contributions"]["npy"]):
        assert client.get(link).status_code == 200, link
    got = np.load(io.BytesIO(client.get(body["contributions"]["npy"]).content))
    assert float(got.sum(dtype=np.float64)) == pytest.approx(body["grad_w_at_weight"], rel=1e-4)
