"""/api/weight-usage (and .png): per-weight usage counts and per-pixel coverage."""

from __future__ import annotations

import io

import numpy as np
from fastapi.testclient import TestClient
from PIL import Image

from app import draw
from engine import coverage


def test_hand_worked_counts_with_padding(client: TestClient, image_id: str) -> None:
    # 12x16, 3x3, padding 1: 192 positions; the corner tap (0, 0) reads padding on row 0 or col 0 of
    # the output: 16 + 12 - 1 = 27 positions.
    body = client.post("/api/weight-usage", json={"image_id": image_id, "padding": 1}).json()
    assert body["total"] == 192
    assert body["real"][0][0] == 192 - 27 and body["padding"][0][0] == 27
    assert body["real"][1][1] == 192 and body["padding"][1][1] == 0
    assert len(body["weights"]) == 9 and not body["weights_truncated"]
    assert body["weights"][0] == {"index": [0, 0, 0, 0], "real": 165, "padding": 27, "total": 192}


def test_coverage_stats_and_unused_lines(client: TestClient, image_id: str) -> None:
    # stride 2 on 12 rows with a 3-tap kernel: row 11 is never read; columns: 16 -> col 15 unused.
    body = client.post("/api/weight-usage", json={"image_id": image_id, "stride": 2}).json()
    cov = coverage((12, 16), 3, 2)
    c = body["coverage"]
    assert (c["min"], c["max"], c["zero_pixels"]) == (0, int(cov.max()), int((cov == 0).sum()))
    assert c["zero_rows"] == [[11, 12]] and c["zero_cols"] == [[15, 16]]


def test_weights_list_capped(client: TestClient, image_id: str) -> None:
    body = client.post("/api/weight-usage", json={"image_id": image_id, "kernels": "box,box",
                                                  "max_weights": 5}).json()
    assert len(body["weights"]) == 5 and body["weights_truncated"]
    assert body["weight_shape"] == [2, 1, 3, 3]


def test_coverage_png(client: TestClient, image_id: str) -> None:
    body = client.post("/api/weight-usage", json={"image_id": image_id, "stride": 2}).json()
    r = client.get(body["coverage"]["png"])
    img = np.asarray(Image.open(io.BytesIO(r.content)))
    assert img.shape == (12, 16, 3)
    np.testing.assert_array_equal(img[11, 0], draw.ZERO_COVERAGE)
    assert r.headers["X-Value-Max"] == repr(float(coverage((12, 16), 3, 2).max()))
