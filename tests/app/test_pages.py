"""The HTML page (app/pages.py): server-rendered results, the no-JS form (POST/Redirect/GET), CSP."""

from __future__ import annotations

import io
import re
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

SAMPLES = Path(__file__).resolve().parents[2] / "static" / "samples"


def status_of(html: str) -> str:
    match = re.search(r'id="status"[^>]*>(.*?)</p>', html, re.S)
    assert match
    return " ".join(match.group(1).split())


def test_index_renders_the_default_sample_with_results(client: TestClient) -> None:
    res = client.get("/")
    assert res.status_code == 200
    assert "1×320×320 input → 2×320×320 output" in status_of(res.text)
    assert res.text.count('src="/api/feature-maps.png?image_id=') == 2
    assert "output = 319 + 1 = 320" in res.text


def test_index_sends_a_strict_csp_and_has_no_inline_script(client: TestClient) -> None:
    res = client.get("/")
    csp = res.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", res.text)
    assert not re.search(r"\son[a-z]+\s*=", res.text)


def test_index_names_a_bad_field_next_to_its_control(client: TestClient) -> None:
    res = client.get("/?sample=tiny&stride=0")
    assert res.status_code == 200
    error = re.search(r'id="error-stride"[^>]*>([^<]*)<', res.text)
    assert error and "stride" in error.group(1)


def test_post_redirects_to_the_get_view(client: TestClient) -> None:
    res = client.post("/", data={"sample": "checkerboard", "stride": "2", "kernels": ["sobel_x", "box"]},
                      follow_redirects=False)
    assert res.status_code == 303
    location = res.headers["location"]
    for part in ("sample=checkerboard", "stride=2", "kernels=sobel_x%2Cbox"):
        assert part in location
    page = client.get(location)
    assert "1×256×256 input → 2×128×128 output" in status_of(page.text)


def test_post_with_a_file_stores_it(client: TestClient) -> None:
    files = {"image": ("tiny.png", (SAMPLES / "tiny.png").read_bytes(), "image/png")}
    res = client.post("/", data={"sample": "astronaut"}, files=files, follow_redirects=False)
    assert res.status_code == 303
    assert "image_id=" in res.headers["location"] and "sample=" not in res.headers["location"]
    assert "1×12×12 input" in status_of(client.get(res.headers["location"]).text)


def test_post_with_a_file_that_is_not_an_image_shows_the_error(client: TestClient) -> None:
    files = {"image": ("notes.png", b"not an image at all", "image/png")}
    res = client.post("/", files=files, follow_redirects=False)
    assert res.status_code == 415
    error = re.search(r'id="error-image"[^>]*>([^<]*)<', res.text)
    assert error and error.group(1).strip()


def test_unknown_image_id_falls_back_with_a_notice(client: TestClient) -> None:
    res = client.get("/?image_id=" + "0" * 64)
    assert res.status_code == 200
    assert "upload it again" in res.text


def test_image_png_serves_the_working_image(client: TestClient) -> None:
    html = client.get("/?sample=tiny").text
    match = re.search(r'data-image-id="([0-9a-f]{64})"', html)
    assert match
    res = client.get(f"/image/{match.group(1)}.png")
    assert res.status_code == 200 and res.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(res.content)).size == (12, 12)
    missing = client.get("/image/" + "0" * 64 + ".png")
    assert missing.status_code == 404 and missing.json()["field"] == "image_id"


def test_samples_are_small_and_licensed() -> None:
    licence = (SAMPLES / "README.md").read_text()
    for name in ("astronaut.png", "checkerboard.png", "tiny.png"):
        assert (SAMPLES / name).stat().st_size < 300_000
        assert name in licence


def test_the_kernel_list_repeats_presets_and_drops_removed_ones(client: TestClient) -> None:
    html = client.get("/?sample=tiny&kernels=random,random,sobel_x").text
    assert html.count('<select name="kernels" aria-label="kernel') == 3
    assert "3 of 16" in html
    assert "3×12×12 output" in status_of(html)
    # Without JavaScript: "(remove)" is an empty value and the add select appends one.
    res = client.post("/", data={"sample": "tiny", "kernels": ["random", "", "sobel_x", "box"]},
                      follow_redirects=False)
    assert "kernels=random%2Csobel_x%2Cbox" in res.headers["location"]


def test_more_than_16_kernels_is_named_next_to_the_list(client: TestClient) -> None:
    html = client.get("/?sample=tiny&kernels=" + ",".join(["box"] * 17)).text
    error = re.search(r'id="error-kernels"[^>]*>([^<]*)<', html)
    assert error and "at most 16" in error.group(1)


def test_describe_lines_shortens_regular_runs() -> None:
    from app.pages import describe_lines

    assert describe_lines([(i, i + 1) for i in range(1, 320, 2)], "row") == \
        "rows 1, 3, 5, …, 319 (every 2nd row, 160 in all)"
    assert describe_lines([(3, 4)], "column") == "column 3"
    assert describe_lines([(0, 2), (5, 6)], "row") == "rows 0–1, 5"


def test_the_page_learns_the_values_limit_from_the_settings() -> None:
    # The Gradients tab lists contributions only up to CONVLENS_MAX_VALUES; it reads the limit
    # from the page, not from a constant of its own.
    from app.main import create_app
    from app.settings import Settings

    html = TestClient(create_app(Settings(max_values=100))).get("/").text
    assert 'data-max-values="100"' in html
    assert 'data-max-values="65536"' in TestClient(create_app()).get("/").text
