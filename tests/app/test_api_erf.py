"""/api/erf (+ .png, format=npy): the effective receptive field of one unit, against the engine."""

from __future__ import annotations

import io

import numpy as np
import pytest
from apphelp import encode, gray, make_pixels
from fastapi.testclient import TestClient
from PIL import Image

from engine import effective_receptive_field, receptive_box
from engine.kernels import kernel_bank

BOXES = [{"kernels": "box"}, {"kernels": "box"}, {"kernels": "box"}]


@pytest.fixture
def big(client: TestClient) -> tuple[str, np.ndarray]:
    pixels = make_pixels(32, 40, seed=4)
    r = client.post("/api/images", files={"image": ("p.png", encode(pixels), "image/png")})
    return str(r.json()["id"]), pixels


def engine_boxes() -> list[dict[str, object]]:
    return [{"weight": kernel_bank(["box"], 3, 1), "bias": np.zeros(1)} for _ in range(3)]


def test_erf_matches_the_engine(client: TestClient, big: tuple[str, np.ndarray]) -> None:
    image_id, pixels = big
    r = client.post("/api/erf", json={"image_id": image_id, "layers": BOXES, "row": 10, "col": 12})
    assert r.status_code == 200, r.text
    body = r.json()
    erf = effective_receptive_field(gray(pixels), engine_boxes(), (2, 0, 10, 12))
    assert body["unit"] == [2, 0, 10, 12] and body["layer_shape"] == [1, 26, 34]
    assert body["center"] == pytest.approx(list(erf.center)) and body["std"] == pytest.approx(list(erf.std))
    assert body["total"] == pytest.approx(erf.total, rel=1e-6)
    # three 3x3 box filters: the box is 7x7 around the unit, the spread sqrt(n (k^2 - 1) / 12) = sqrt(2)
    assert body["box"] == {"top": 10, "left": 12, "height": 7, "width": 7}
    assert body["center"] == pytest.approx([13, 15]) and body["std"] == pytest.approx([2**0.5] * 2, rel=1e-5)
    heat = np.load(io.BytesIO(client.get(body["npy"]).content))
    assert heat.shape == (32, 40) and heat.dtype == np.float32
    np.testing.assert_allclose(heat, erf.heatmap, rtol=1e-5, atol=1e-8)
    assert not heat[:10].any() and not heat[:, 19:].any()  # nothing outside the theoretical box


def test_erf_png(client: TestClient, big: tuple[str, np.ndarray]) -> None:
    image_id, _ = big
    body = client.post("/api/erf", json={"image_id": image_id, "layers": BOXES, "row": 1, "col": 2}).json()
    r = client.get(body["png"] + "&scale=2")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (80, 64)
    assert float(r.headers["X-Value-Max"]) == pytest.approx(body["max"])


def test_npy_directly_and_default_unit(client: TestClient, big: tuple[str, np.ndarray]) -> None:
    image_id, pixels = big
    r = client.post(
        "/api/erf", data={"image_id": image_id, "layers": '[{"kernels": "box"}]', "format": "npy"}
    )
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    heat = np.load(io.BytesIO(r.content))
    assert heat.shape == (32, 40) and np.count_nonzero(heat) == 9  # unit (0, 0): its 3x3 window


def test_erf_of_an_earlier_layer_and_channel(client: TestClient, big: tuple[str, np.ndarray]) -> None:
    image_id, pixels = big
    layers = [
        {"kernels": "sobel_x,sobel_y", "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel_size": 2},
        {"kind": "conv_transpose", "kernels": "box", "stride": 2},
    ]
    body = client.post(
        "/api/erf",
        json={
            "image_id": image_id,
            "layers": layers,
            "layer": 2,
            "channel": 1,
            "row": 5,
            "col": 6,
            "values": True,
        },
    ).json()
    x = gray(pixels)
    engine = [
        {"weight": kernel_bank(["sobel_x", "sobel_y"], 3, 1), "bias": np.zeros(2), "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel_size": 2},
        {
            "kind": "conv_transpose",
            "weight": kernel_bank(["box"], 3, 2).transpose(1, 0, 2, 3),
            "bias": np.zeros(1),
            "stride": 2,
        },
    ]
    erf = effective_receptive_field(x, engine, (2, 1, 5, 6))
    np.testing.assert_allclose(np.array(body["values"]), erf.heatmap, rtol=1e-5, atol=1e-7)
    box = receptive_box((32, 40), engine[:3], 5, 6)
    assert body["box"] == {"top": box.top, "left": box.left, "height": box.height, "width": box.width}
    last = client.post("/api/erf", json={"image_id": image_id, "layers": layers, "row": 0, "col": 0}).json()
    assert last["unit"][0] == 3 and last["layer_shape"] == [1, 33, 41]


def test_zero_heat_has_no_centre(client: TestClient, big: tuple[str, np.ndarray]) -> None:
    image_id, _ = big
    body = client.post("/api/erf", json={"image_id": image_id, "layers": [{"weights": [[[0]]]}]}).json()
    assert body["center"] is None and body["std"] is None and body["total"] == 0


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"layer": 3}, "layer"),
        ({"layer": -1}, "layer"),
        ({"channel": 1}, "channel"),
        ({"channel": 64}, "channel"),
        ({"row": 26}, "row"),
        ({"col": 34}, "col"),
        ({"col": -1}, "col"),
        ({"format": "tiff"}, "format"),
        ({"values": "maybe"}, "values"),
        ({"scale": 0}, "scale"),
        ({"layers": [{"kind": "maxpool"}]}, "layers[0].kernel_size"),
    ],
)
def test_bad_fields_are_422_naming_them(
    client: TestClient, big: tuple[str, np.ndarray], extra: dict[str, object], field: str
) -> None:
    image_id, _ = big
    r = client.post("/api/erf", json={"image_id": image_id, "layers": BOXES, **extra})
    assert r.status_code == 422 and r.json()["field"] == field, r.text


def test_values_over_the_limit(client: TestClient) -> None:
    pixels = make_pixels(300, 300)
    image_id = client.post("/api/images", files={"image": ("p.png", encode(pixels), "image/png")}).json()[
        "id"
    ]
    r = client.post("/api/erf", json={"image_id": image_id, "layers": BOXES, "values": True})
    assert r.status_code == 422 and r.json()["field"] == "values"
