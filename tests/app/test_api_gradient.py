"""/api/gradient (and .png): a shared weight's gradient is the sum of its per-position contributions."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from apphelp import gray
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from engine import ConvSpec, conv2d, conv2d_backward, loss_grad, preset, step_losses


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


# ---- lr: one step w ← w − lr·g, on the shared layer and on its untied twin ------------------

def test_lr_adds_the_step_the_engine_takes(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    # Two 3x2 kernels (non-square), unequal strides, padding and dilation, against two hidden ones.
    weights = [[[0.5, -0.25], [0.125, 1], [-1, 0.75]], [[0.2, 0.1], [0, -0.3], [0.4, 0.6]]]
    hidden = [[[1, 0], [0, 1], [1, 0]], [[0, -1], [0.5, 0], [0, 0.5]]]
    layer = {"image_id": image_id, "weights": json.dumps(weights), "stride": "1,2", "padding": 1,
             "dilation": "2,1", "activation": "tanh", "bias": "0.1,-0.2", "loss": "mse",
             "target_weights": json.dumps(hidden)}
    r = client.post("/api/gradient", data={**layer, "lr": "0.5"})  # a form, as the page sends
    assert r.status_code == 200, r.text
    body = r.json()
    x = gray(pixels)
    w = np.array(weights, dtype=np.float32)[:, None]
    target = np.array(hidden, dtype=np.float32)[:, None]
    bias = np.array([0.1, -0.2], dtype=np.float32)
    want = step_losses(x, w, bias, 0.5, spec=ConvSpec.make((3, 2), (1, 2), 1, (2, 1)), activation="tanh",
                       loss="mse", target_weight=target)
    step = body["step"]
    assert step["lr"] == 0.5
    assert (step["loss_before"], step["shared_loss_after"], step["untied_loss_after"]) == pytest.approx(
        (want.loss_before, want.shared_loss_after, want.untied_loss_after), rel=1e-6)
    assert step["loss_before"] == pytest.approx(body["value"], rel=1e-5)
    # A small step against the gradient lowers both; the two layers no longer agree after it.
    assert step["shared_loss_after"] < step["loss_before"] and step["untied_loss_after"] < step["loss_before"]
    assert step["shared_loss_after"] != pytest.approx(step["untied_loss_after"], rel=1e-6)


def test_lr_on_rgb_with_the_sum_loss(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    # Σy with σ = none: the shared step lowers L by lr·|Σ_p x_p|² per kernel, the untied one by
    # lr·Σ_p |x_p|² (tests/engine/test_step.py); for pixels >= 0 the shared drop is the larger.
    body = client.get("/api/gradient", params={"image_id": image_id, "kernels": "sobel_x", "color": "rgb",
                                               "loss": "sum", "lr": "1e-4"}).json()
    x = (pixels.astype(np.float32) / np.float32(255)).transpose(2, 0, 1)
    w = np.repeat(preset("sobel_x", 3)[None, None], 3, axis=1).astype(np.float32) / 3
    want = step_losses(x, w, np.zeros(1, np.float32), 1e-4, spec=ConvSpec.make(3))
    step = body["step"]
    assert step["untied_loss_after"] == pytest.approx(want.untied_loss_after, rel=1e-5, abs=1e-4)
    assert step["shared_loss_after"] == pytest.approx(want.shared_loss_after, rel=1e-5, abs=1e-4)
    shared_drop = step["loss_before"] - step["shared_loss_after"]
    assert shared_drop > step["loss_before"] - step["untied_loss_after"] > 0


def test_lr_with_one_unit_moves_both_layers_alike(client: TestClient, image_id: str) -> None:
    # L = y[j, m, n]: only that position contributes, so its copy's step is the shared step.
    body = client.post("/api/gradient", json={"image_id": image_id, "kernels": "sobel_x", "loss": "unit",
                                              "row": 2, "col": 5, "activation": "sigmoid", "lr": 2}).json()
    step = body["step"]
    assert step["shared_loss_after"] == pytest.approx(step["untied_loss_after"], rel=1e-6)
    assert step["shared_loss_after"] < step["loss_before"]


def test_no_lr_no_step(client: TestClient, image_id: str) -> None:
    body = client.post("/api/gradient", json={"image_id": image_id}).json()
    assert body["step"] is None


@pytest.mark.parametrize("lr", ["0", "-0.1", "abc", "nan", "inf"])
def test_bad_lr_is_422_naming_lr(client: TestClient, image_id: str, lr: str) -> None:
    r = client.post("/api/gradient", data={"image_id": image_id, "lr": lr})
    assert r.status_code == 422, (lr, r.text)
    assert r.json()["field"] == "lr" and "lr" in r.json()["detail"]


def test_an_lr_that_blows_the_weights_up_is_422_naming_lr(client: TestClient, image_id: str) -> None:
    r = client.post("/api/gradient", json={"image_id": image_id, "kernels": "box", "lr": 1e35})
    assert r.status_code == 422 and r.json()["field"] == "lr"
    assert "CONVLENS_MAX_OUTPUT_MAGNITUDE" in r.json()["detail"]


def test_the_step_is_costed_and_refused_over_the_cap(png_bytes: bytes) -> None:
    # One 3x3 kernel on the 12x16 image: F = 10·14·9 multiply-adds a forward pass. The gradient
    # costs 3F and the step 6F more, so a cap of 5F lets the gradient through and refuses the step.
    forward = 10 * 14 * 9
    with TestClient(create_app(Settings(max_work=5 * forward))) as c:
        image_id = c.post("/api/images", files={"image": ("a.png", png_bytes, "image/png")}).json()["id"]
        assert c.post("/api/gradient", json={"image_id": image_id}).status_code == 200
        r = c.post("/api/gradient", json={"image_id": image_id, "lr": 0.01})
    assert r.status_code == 422 and r.json()["field"] == "lr"
    assert "CONVLENS_MAX_WORK" in r.json()["detail"] and "no `lr`" in r.json()["detail"]
