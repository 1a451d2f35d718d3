"""POST/GET /api/convolve: values against the engine and against hand-worked cases."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from apphelp import encode, gray
from fastapi.testclient import TestClient

import app.routes.convolve
from engine import FeatureMaps, activate, conv2d, conv_layer, output_shape, preset


def _convolve(client: TestClient, **params: object) -> dict:
    r = client.post("/api/convolve", json=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_presets_match_engine(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    body = _convolve(client, image_id=image_id, kernels="sobel_x,laplacian", padding=1, values=True)
    x = gray(pixels)
    w = np.stack([preset("sobel_x", 3), preset("laplacian", 3)])[:, None]
    y = conv2d(x, w.astype(np.float32), padding=1)
    np.testing.assert_allclose(np.array(body["values"]), y, rtol=1e-5, atol=1e-5)
    assert body["output_shape"] == [2, 12, 16] and body["input_shape"] == [1, 12, 16]
    for k, m in enumerate(body["maps"]):
        assert m["min"] == pytest.approx(float(y[k].min()), abs=1e-5)
        assert m["max"] == pytest.approx(float(y[k].max()), abs=1e-5)
        assert m["mean"] == pytest.approx(float(y[k].mean()), abs=1e-5)
    assert [m["name"] for m in body["maps"]] == ["sobel_x", "laplacian"]
    np.testing.assert_allclose(body["maps"][0]["weights"], [preset("sobel_x", 3)])


def test_hand_worked_box_on_3x3(client: TestClient) -> None:
    # A 3x3 gray image of values 0..8 / 255 (R = G = B), a 2x2 box kernel: each output is the window mean.
    px = np.repeat(np.arange(9, dtype=np.uint8).reshape(3, 3)[..., None], 3, axis=2)
    up = client.post("/api/images", files={"image": ("a.png", encode(px), "image/png")}).json()
    body = _convolve(client, image_id=up["id"], kernels="box", kernel_size=2, values=True)
    expected = np.array([[[2.0, 3.0], [5.0, 6.0]]]) / 255  # mean of (0,1,3,4)=2, (1,2,4,5)=3, ...
    np.testing.assert_allclose(body["values"], expected, rtol=1e-5)


def test_hand_worked_stride_and_arithmetic(client: TestClient, image_id: str) -> None:
    # rows: n=12, k=3, s=2, p=0: span 9, 9 // 2 = 4 rem 1, out 5; row 11 is never read.
    body = _convolve(client, image_id=image_id, kernels="box", stride=2)
    rows, cols = body["arithmetic"]
    assert (rows["span"], rows["quotient"], rows["remainder"], rows["output"]) == (9, 4, 1, 5)
    assert rows["unused"] == [[11, 12]]
    assert (cols["span"], cols["quotient"], cols["remainder"], cols["output"]) == (13, 6, 1, 7)
    assert body["output_shape"] == [1, 5, 7] == [1, *output_shape((12, 16), 3, 2)]
    assert any("never read" in s for s in rows["steps"])


def test_custom_weights_bias_activation(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    w = [[[0.5, -1.0], [0.25, 0.0]], [[1.0, 1.0], [-1.0, 2.0]]]  # J x kh x kw
    body = _convolve(client, image_id=image_id, weights=w, bias="0.1,-0.3", activation="relu",
                     stride="1,2", dilation="2,1", values=True)
    y = activate(conv2d(gray(pixels), np.array(w, np.float32)[:, None], np.array([0.1, -0.3], np.float32),
                        stride=(1, 2), dilation=(2, 1)), "relu")
    np.testing.assert_allclose(body["values"], y, rtol=1e-5, atol=1e-6)
    assert body["layer"]["stride"] == [1, 2] and body["layer"]["dilation"] == [2, 1]
    assert [m["bias"] for m in body["maps"]] == pytest.approx([0.1, -0.3])
    assert body["maps"][0]["name"] == "kernel 0"


def test_rgb_four_d_weights_and_groups(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((3, 1, 3, 3)).round(3)
    body = _convolve(client, image_id=image_id, weights=w.tolist(), color="rgb", groups=3, padding="same",
                     values=True)
    x = pixels.transpose(2, 0, 1).astype(np.float32) / 255
    np.testing.assert_allclose(body["values"], conv2d(x, w.astype(np.float32), padding=1, groups=3),
                               rtol=1e-4, atol=1e-5)
    assert body["input_shape"] == [3, 12, 16] and body["layer"]["padding"] == [1, 1]


def test_preset_on_rgb_acts_on_channel_mean(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    body = _convolve(client, image_id=image_id, kernels="identity", color="rgb", values=True)
    x = pixels.astype(np.float32).mean(axis=2) / 255
    np.testing.assert_allclose(body["values"][0], x[1:-1, 1:-1], rtol=1e-5)


def test_parameter_counts(client: TestClient, image_id: str) -> None:
    p = _convolve(client, image_id=image_id, kernels="sobel_x,sobel_y", padding=1)["parameters"]
    assert p["conv_weights"] == 18 and p["conv_biases"] == 2 and p["positions"] == 12 * 16
    assert p["untied_weights"] == 18 * 12 * 16
    assert p["dense_weights"] == 2 * 12 * 16 * 12 * 16
    assert p["conv"] == 20


def test_multipart_upload_with_form_fields(client: TestClient, png_bytes: bytes) -> None:
    r = client.post("/api/convolve", files={"image": ("a.png", png_bytes, "image/png")},
                    data={"kernels": "gaussian", "kernel_size": "5", "padding": "2"})
    assert r.status_code == 200
    assert r.json()["output_shape"] == [1, 12, 16] and r.json()["layer"]["kernel_size"] == [5, 5]


def test_get_with_image_id(client: TestClient, image_id: str) -> None:
    r = client.get("/api/convolve", params={"image_id": image_id, "kernels": "sharpen", "stride": "2"})
    assert r.status_code == 200 and r.json()["output_shape"] == [1, 5, 7]


def test_png_urls_are_get_urls_that_work(client: TestClient, image_id: str) -> None:
    body = _convolve(client, image_id=image_id, kernels="sobel_x,sobel_y")
    for m in body["maps"]:
        r = client.get(m["png"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert float(r.headers["X-Value-Min"]) == pytest.approx(m["min"])
    assert client.get(body["grid_png"]).status_code == 200


def test_custom_weight_urls_carry_weights(client: TestClient, image_id: str) -> None:
    body = _convolve(client, image_id=image_id, weights=[[[1, 2], [3, 4]]], bias=0.5)
    r = client.get(body["maps"][0]["png"])
    assert r.status_code == 200
    assert float(r.headers["X-Value-Max"]) == pytest.approx(body["maps"][0]["max"])


def test_conv_computed_once_for_json_and_pngs(client: TestClient, image_id: str,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []

    def counting(*args: object, **kwargs: object) -> FeatureMaps:
        calls.append(1)
        return conv_layer(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(app.routes.convolve, "conv_layer", counting)
    body = _convolve(client, image_id=image_id, kernels="sobel_x,sobel_y,box")
    for m in body["maps"]:
        assert client.get(m["png"]).status_code == 200
    assert len(calls) == 1


def test_npy_format(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    r = client.post("/api/convolve", data={"image_id": image_id, "kernels": "emboss", "format": "npy"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    y = np.load(io.BytesIO(r.content))
    assert y.dtype == np.float32 and y.shape == (1, 10, 14)
    np.testing.assert_allclose(y, conv2d(gray(pixels), preset("emboss", 3)[None, None].astype(np.float32)),
                               rtol=1e-5, atol=1e-6)


def test_npy_url_from_json(client: TestClient, image_id: str) -> None:
    body = _convolve(client, image_id=image_id)
    assert np.load(io.BytesIO(client.get(body["npy"]).content)).shape == tuple(body["output_shape"])


def test_weights_file_npy_upload(client: TestClient, png_bytes: bytes) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ones((2, 1, 3, 3)))
    files = {"image": ("a.png", png_bytes, "image/png"), "weights_file": ("w.npy", buf.getvalue(), "x")}
    r = client.post("/api/convolve", files=files)
    assert r.status_code == 200 and r.json()["output_shape"] == [2, 10, 14]


def test_weights_as_json_string_form_field(client: TestClient, image_id: str) -> None:
    r = client.post("/api/convolve", data={"image_id": image_id, "weights": json.dumps([[[1.0]]])})
    assert r.status_code == 200 and r.json()["output_shape"] == [1, 12, 16]


def test_values_omitted_by_default(client: TestClient, image_id: str) -> None:
    assert _convolve(client, image_id=image_id)["values"] is None


def test_random_preset_is_seeded(client: TestClient, image_id: str) -> None:
    a = _convolve(client, image_id=image_id, kernels="random", seed=3)["maps"][0]["weights"]
    b = _convolve(client, image_id=image_id, kernels="random", seed=3)["maps"][0]["weights"]
    c = _convolve(client, image_id=image_id, kernels="random", seed=4)["maps"][0]["weights"]
    assert a == b != c


def test_server_timing_shows_engine_then_cache(client: TestClient, image_id: str) -> None:
    params = {"image_id": image_id, "kernels": "box", "bias": "0.25"}
    first = client.post("/api/convolve", data=params).headers["Server-Timing"]
    second = client.post("/api/convolve", data=params).headers["Server-Timing"]
    assert first.startswith("engine;dur=") and "cached" not in first and "total;dur=" in first
    assert 'desc="cached"' in second


def test_big_custom_weights_get_data_uri_pngs(client: TestClient, image_id: str) -> None:
    w = np.random.default_rng(0).standard_normal((4, 1, 15, 15)).round(6).tolist()
    body = _convolve(client, image_id=image_id, weights=w, padding=7)
    assert all(m["png"].startswith("data:image/png;base64,") for m in body["maps"])


@pytest.fixture
def encoded(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The scale of every map PNG app.draw.map_png encodes during the test, in order."""
    import app.draw

    scales: list[int] = []
    real = app.draw.map_png

    def counting(values: np.ndarray, scale: int = 1) -> object:
        scales.append(scale)
        return real(values, scale)

    monkeypatch.setattr(app.draw, "map_png", counting)
    return scales


def test_a_map_too_long_for_a_url_is_encoded_once_for_png_and_png_data(
        client: TestClient, image_id: str, encoded: list[int]) -> None:
    w = np.random.default_rng(0).standard_normal((4, 1, 15, 15)).round(6).tolist()
    body = _convolve(client, image_id=image_id, weights=w, padding=7, png_data=True)
    assert all(m["png"].startswith("data:image/png;base64,") and m["png"] == m["png_data"]
               for m in body["maps"])
    assert len(encoded) == 4


def test_png_data_carries_each_map_encoded_once_and_cached_for_its_url(
        client: TestClient, image_id: str, encoded: list[int]) -> None:
    body = _convolve(client, image_id=image_id, kernels="sobel_x,box,gaussian", bias=0.125, png_data=True)
    assert encoded == [1, 1, 1]
    for m in body["maps"]:
        head, data = m["png_data"].split(",", 1)
        assert head == "data:image/png;base64"
        r = client.get(m["png"])
        assert r.status_code == 200 and r.headers["content-type"] == "image/png"
        assert base64.b64decode(data) == r.content  # the very bytes the URL serves
    assert len(encoded) == 3  # the URLs were served from the cache: no map was encoded twice
    plain = _convolve(client, image_id=image_id, kernels="sobel_x", bias=0.25)
    assert len(encoded) == 3 and plain["maps"][0]["png_data"] is None  # nothing encoded unasked
