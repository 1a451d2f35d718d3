"""GET /api/presets: names, descriptions, sizes and weights."""

from __future__ import annotations

import numpy as np
from fastapi.testclient import TestClient

from engine import PRESETS, preset


def test_all_presets_with_weights(client: TestClient) -> None:
    body = client.get("/api/presets").json()
    assert [p["name"] for p in body["presets"]] == list(PRESETS)
    sobel = next(p for p in body["presets"] if p["name"] == "sobel_x")
    assert sobel["weights"] == [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] and sobel["description"]


def test_non_square_size(client: TestClient) -> None:
    body = client.get("/api/presets", params={"size": "3,5"}).json()
    assert body["size"] == [3, 5]
    gauss = next(p for p in body["presets"] if p["name"] == "gaussian")
    np.testing.assert_allclose(gauss["weights"], preset("gaussian", (3, 5)))


def test_unsupported_size_gives_null_weights(client: TestClient) -> None:
    body = client.get("/api/presets", params={"size": "2"}).json()
    assert next(p for p in body["presets"] if p["name"] == "sobel_x")["weights"] is None
    assert next(p for p in body["presets"] if p["name"] == "box")["weights"] is not None


def test_bad_size_is_422(client: TestClient) -> None:
    r = client.get("/api/presets", params={"size": "40"})
    assert r.status_code == 422 and r.json()["field"] == "size"
