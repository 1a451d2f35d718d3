"""Every limit is defined once, in Settings: raising CONVLENS_MAX_KERNELS to 24 and
CONVLENS_MAX_KERNEL_SIZE to 41 works end to end (API, no-JS page, OpenAPI bounds, presets)."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from apphelp import encode, make_pixels
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings

RAISED = {"CONVLENS_MAX_KERNELS": "24", "CONVLENS_MAX_KERNEL_SIZE": "41"}


@pytest.fixture
def raised() -> Iterator[TestClient]:
    with TestClient(create_app(Settings.from_env(RAISED))) as client:
        yield client


def _image(client: TestClient, side: int = 64) -> str:
    r = client.post("/api/images", files={"image": ("a.png", encode(make_pixels(side, side)), "image/png")})
    return str(r.json()["id"])


def test_the_api_takes_24_kernels_of_41(raised: TestClient) -> None:
    image_id = _image(raised)
    r = raised.post("/api/convolve", json={"image_id": image_id, "kernels": ",".join(["gaussian"] * 24),
                                           "kernel_size": 41, "padding": 20})
    assert r.status_code == 200, r.text
    assert r.json()["output_shape"] == [24, 64, 64]
    r = raised.post("/api/convolve", json={"image_id": image_id, "weights": [[[0.0] * 41] * 41] * 24})
    assert r.status_code == 200 and r.json()["layer"]["kernel_size"] == [41, 41]
    png = raised.get("/api/feature-maps.png", params={"image_id": image_id, "kernels": ",".join(["box"] * 24),
                                                      "index": 23})
    assert png.status_code == 200
    groups = raised.post("/api/convolve", json={"image_id": image_id, "color": "rgb", "groups": 3,
                                                "kernels": ",".join(["box"] * 24)})
    assert groups.status_code == 200


def test_one_past_the_raised_limits_is_refused_naming_the_limit(raised: TestClient) -> None:
    image_id = _image(raised)
    r = raised.post("/api/convolve", json={"image_id": image_id, "kernels": ",".join(["box"] * 25)})
    assert r.status_code == 422 and r.json()["field"] == "kernels" and "24" in r.json()["detail"]
    r = raised.post("/api/convolve", json={"image_id": image_id, "kernel_size": 42})
    assert r.status_code == 422 and r.json()["field"] == "kernel_size" and "1..41" in r.json()["detail"]


def test_the_defaults_refuse_what_the_raised_limits_allow(client: TestClient, image_id: str) -> None:
    r = client.post("/api/convolve", json={"image_id": image_id, "kernels": ",".join(["box"] * 24)})
    assert r.status_code == 422 and r.json()["field"] == "kernels"
    r = client.post("/api/convolve", json={"image_id": image_id, "kernel_size": 41})
    assert r.status_code == 422 and "1..31" in r.json()["detail"]


def test_openapi_documents_the_raised_bounds(raised: TestClient) -> None:
    schemas = raised.get("/openapi.json").json()["components"]["schemas"]
    layer = schemas["LayerParams"]["properties"]
    ints = [o for o in layer["kernel_size"]["anyOf"] if o.get("type") == "integer"]
    assert ints and ints[0]["maximum"] == 41
    assert layer["groups"]["maximum"] == 24
    assert schemas["FeatureMapParams"]["properties"]["index"]["anyOf"][0]["maximum"] == 23
    assert "1..24" in layer["kernels"]["description"] and "1..41" in layer["kernel_size"]["description"]
    query = raised.get("/openapi.json").json()["paths"]["/api/convolve"]["get"]["parameters"]
    stride = next(p for p in query if p["name"] == "kernel_size")
    assert any(o.get("maximum") == 41 for o in stride["schema"]["anyOf"])


def test_the_presets_endpoint_gives_41_wide_weights(raised: TestClient) -> None:
    body = raised.get("/api/presets", params={"size": "41"}).json()
    box = next(p for p in body["presets"] if p["name"] == "box")
    assert len(box["weights"]) == 41


def test_the_no_js_page_follows_the_raised_limits(raised: TestClient) -> None:
    html = raised.get("/", params={"sample": "checkerboard", "kernels": ",".join(["box"] * 24),
                                   "kernel_size": "41", "padding": "0"}).text
    assert "1×256×256 input → 24×216×216 output" in " ".join(html.split())
    assert "24 of 24" in html
    assert re.search(r'id="kernel_size"[^>]*max="41"', html) or 'data-max="41"' in html
    refused = raised.get("/", params={"sample": "checkerboard", "kernels": ",".join(["box"] * 25)}).text
    error = re.search(r'id="error-kernels"[^>]*>([^<]*)<', refused)
    assert error and "at most 24" in error.group(1)
