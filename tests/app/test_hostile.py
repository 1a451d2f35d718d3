"""The operations audit's findings, each with its status, its JSON detail and, for the bombs, a
memory bound measured while the request runs (tracemalloc sees every NumPy allocation)."""

from __future__ import annotations

import io
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest
from apphelp import encode, make_pixels
from fastapi.testclient import TestClient

import app.routes.convolve
from app.main import create_app
from app.settings import Settings

MiB = 1 << 20


def _peak(call: Callable[[], Any]) -> tuple[Any, int]:
    """call()'s result and the peak bytes traced while it ran."""
    tracemalloc.start()
    try:
        result = call()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def _check(r: Any, status: int, field: str | None) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"detail", "field"} and body["detail"]
    assert body["field"] == field
    return dict(body)


@pytest.fixture(scope="module")
def big() -> Iterator[tuple[TestClient, str]]:
    """A client and a 2048² photo-sized image (max_side raised), shared by the bomb tests."""
    with TestClient(create_app(Settings())) as client:
        png = encode(make_pixels(2048, 2048, seed=5))
        r = client.post("/api/images", files={"image": ("big.png", png, "image/png")},
                        data={"max_side": 4096})
        assert r.status_code == 201
        yield client, r.json()["id"]


@pytest.mark.parametrize(("path", "params"), [
    ("feature-maps.png", {"kernels": ",".join(["box"] * 16), "scale": 16}),
    ("feature-maps.png", {"kernels": "box", "index": 0, "scale": 16}),
    ("weight-usage.png", {"scale": 16}),
    ("receptive-field.png", {"scale": 16}),
    ("gradient.png", {"scale": 16}),
])
def test_png_scale_bombs_are_refused_before_any_work(big: tuple[TestClient, str], path: str,
                                                     params: dict[str, Any]) -> None:
    client, image_id = big
    r, peak = _peak(lambda: client.get(f"/api/{path}", params={"image_id": image_id, **params}))
    body = _check(r, 422, "scale")
    assert "CONVLENS_MAX_" in body["detail"] and "smaller `scale`" in body["detail"]
    assert peak < 64 * MiB, peak


def test_maps_inside_the_convolve_answer_are_costed_as_pngs() -> None:
    """png_data=true draws every map: its PNG pixels count against the same cap as feature-maps.png."""
    settings = Settings(max_png_pixels=100_000)
    with TestClient(create_app(settings)) as client:
        png = encode(make_pixels(256, 256, seed=1))
        image_id = client.post("/api/images", files={"image": ("p.png", png, "image/png")}).json()["id"]
        layer = {"image_id": image_id, "kernels": "box,sobel_x", "padding": 1}  # 2 maps of 256²: 131,072 px
        assert client.post("/api/convolve", json=layer).status_code == 200
        body = _check(client.post("/api/convolve", json={**layer, "png_data": True}), 422, "max_side")
        assert "CONVLENS_MAX_PNG_PIXELS" in body["detail"]
        one = client.post("/api/convolve", json={**layer, "kernels": "box", "png_data": True})
        assert one.status_code == 200 and one.json()["maps"][0]["png_data"].startswith("data:image/png")


def test_the_dense_matrix_at_its_entry_limit_is_refused_by_its_non_zeros(big: tuple[TestClient, str]) -> None:
    client, image_id = big
    r, peak = _peak(lambda: client.post("/api/dense-matrix", json={
        "image_id": image_id, "color": "rgb", "kernels": ",".join(["box"] * 16), "kernel_size": 31,
        "padding": 15, "crop": "0,0,32,32"}))
    assert "CONVLENS_MAX_DENSE_NONZEROS" in _check(r, 422, "crop")["detail"]
    assert peak < 64 * MiB, peak


def test_a_dense_matrix_under_the_limits_stays_small(big: tuple[TestClient, str]) -> None:
    client, image_id = big
    r, peak = _peak(lambda: client.post("/api/dense-matrix", json={
        "image_id": image_id, "color": "rgb", "kernels": "box,box,box,box", "kernel_size": 5, "padding": 2,
        "crop": "0,0,32,32"}))
    assert r.status_code == 200 and r.json()["nnz"] <= Settings().max_dense_nonzeros
    assert peak < Settings().max_request_bytes


def test_a_gradient_over_the_work_cap_is_refused_before_running(big: tuple[TestClient, str],
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    import app.routes.gradient

    def never(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the gradient was computed")

    monkeypatch.setattr(app.routes.gradient, "layer_gradient", never)
    client, image_id = big
    r, peak = _peak(lambda: client.post("/api/gradient", json={
        "image_id": image_id, "color": "rgb", "kernels": ",".join(["box"] * 16), "kernel_size": 31,
        "padding": 15}))
    assert "CONVLENS_MAX_WORK" in _check(r, 422, "max_side")["detail"]
    assert peak < 64 * MiB


def test_a_gradient_over_the_memory_cap_is_refused_before_running(big: tuple[TestClient, str]) -> None:
    client, image_id = big
    r, peak = _peak(lambda: client.post("/api/gradient", json={
        "image_id": image_id, "kernels": ",".join(["box"] * 16), "padding": 1, "loss": "mse",
        "target_kernels": ",".join(["gaussian"] * 16)}))
    assert "CONVLENS_MAX_REQUEST_BYTES" in _check(r, 422, "max_side")["detail"]
    assert peak < 64 * MiB


def test_a_npy_header_declaring_a_huge_array_is_refused_unread(client: TestClient, image_id: str) -> None:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False,
                                               "shape": (1_000_000, 1_000_000, 1, 1)})
    r, peak = _peak(lambda: client.post("/api/convolve", data={"image_id": image_id},
                                        files={"weights_file": ("w.npy", buf.getvalue() + bytes(64), "x")}))
    assert "declares shape" in _check(r, 422, "weights_file")["detail"]
    assert peak < 16 * MiB


@pytest.mark.parametrize(("fields", "field"), [
    ({"weights": [[[1e38, 1e38, 1e38]] * 3]}, "weights"),
    ({"weights": [[[1e37] * 3] * 3]}, "weights"),
    ({"kernels": "box", "bias": "1e38"}, "bias"),
])
@pytest.mark.parametrize("path", ["convolve", "gradient", "feature-maps.png"])
def test_weights_that_would_overflow_float32_are_refused(client: TestClient, image_id: str, field: str,
                                                         fields: dict[str, Any], path: str) -> None:
    body = _check(client.post(f"/api/{path}", json={"image_id": image_id, **fields}), 422, field)
    assert "CONVLENS_MAX_OUTPUT_MAGNITUDE" in body["detail"]


def test_weights_past_float32_are_refused_on_weights(client: TestClient, image_id: str) -> None:
    r = client.post("/api/convolve", json={"image_id": image_id, "weights": [[[1e39]]]})
    body = _check(r, 422, "weights")
    assert "3.4e38" in body["detail"]


def test_large_but_safe_weights_give_finite_json(client: TestClient, image_id: str) -> None:
    r = client.post("/api/convolve", json={"image_id": image_id, "weights": [[[1e12] * 3] * 3],
                                           "values": True})
    assert r.status_code == 200
    assert all(np.isfinite([m["min"], m["max"], m["mean"]]).all() for m in r.json()["maps"])
    g = client.post("/api/gradient", json={"image_id": image_id, "weights": [[[1e12] * 3] * 3]})
    assert g.status_code == 200 and np.isfinite(g.json()["value"])


def test_a_deeply_nested_weights_query_on_the_page_is_a_field_error(client: TestClient) -> None:
    deep = "[" * 5000 + "1" + "]" * 5000
    r = client.get("/", params={"sample": "tiny", "weights": deep})
    assert r.status_code == 200 and 'id="error-weights"' in r.text
    assert "nested" in r.text or "JSON" in r.text


# ---------------------------------------------------------------- admission, budgets, errors

@pytest.fixture
def blocking(monkeypatch: pytest.MonkeyPatch) -> Iterator[threading.Event]:
    """Make every conv wait on an event, so tests can fill the compute pool."""
    release = threading.Event()
    real = app.routes.convolve.conv_layer

    def slow(*args: Any, **kwargs: Any) -> Any:
        release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(app.routes.convolve, "conv_layer", slow)
    yield release
    release.set()


def _convolve_in_thread(client: TestClient, image_id: str, seed: int, out: list[Any]) -> threading.Thread:
    t = threading.Thread(target=lambda: out.append(client.post(
        "/api/convolve", json={"image_id": image_id, "kernels": "random", "seed": seed})))
    t.start()
    return t


def test_a_full_pool_answers_503_at_once_and_health_stays_fast(blocking: threading.Event) -> None:
    with TestClient(create_app(Settings(compute_workers=1, queue_depth=1))) as client:
        image_id = client.post("/api/images", files={"image": ("a.png", encode(make_pixels()), "image/png")}
                               ).json()["id"]
        done: list[Any] = []
        threads = [_convolve_in_thread(client, image_id, seed, done) for seed in (1, 2)]
        deadline = time.monotonic() + 5
        while client.app.state.pool.admitted < 2 and time.monotonic() < deadline:  # type: ignore[attr-defined]
            time.sleep(0.01)
        r = client.post("/api/convolve", json={"image_id": image_id, "kernels": "random", "seed": 3})
        assert r.status_code == 503 and int(r.headers["retry-after"]) >= 1
        assert "busy" in r.json()["detail"]
        assert client.get("/healthz").status_code == 200
        # Both answers came while the two admitted requests were still held: neither waited on the pool.
        assert not done and client.app.state.pool.admitted == 2  # type: ignore[attr-defined]
        ready = client.get("/readyz")
        assert ready.status_code == 503 and ready.json()["status"] == "full"
        blocking.set()
        for t in threads:
            t.join(10)
        assert [x.status_code for x in done] == [200, 200]
        assert client.get("/readyz").status_code == 200
        assert "convlens_busy_total 1.0" in client.get("/metrics").text


def test_a_request_past_its_time_budget_is_a_503(blocking: threading.Event, image_id: str) -> None:
    with TestClient(create_app(Settings(request_seconds=1))) as client:
        image_id = client.post("/api/images", files={"image": ("a.png", encode(make_pixels()), "image/png")}
                               ).json()["id"]
        r = client.post("/api/convolve", json={"image_id": image_id, "kernels": "random", "seed": 9})
        assert r.status_code == 503 and "CONVLENS_REQUEST_SECONDS" in r.json()["detail"]
        assert client.app.state.pool.running == 1  # type: ignore[attr-defined]  # answered, still computing
        blocking.set()


def test_memory_error_is_a_503_not_a_413_on_image(client: TestClient, image_id: str,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    def no_memory(*args: Any, **kwargs: Any) -> Any:
        raise MemoryError

    monkeypatch.setattr(app.routes.convolve, "conv_layer", no_memory)
    r = client.post("/api/convolve", json={"image_id": image_id, "kernels": "random", "seed": 11})
    assert _check(r, 503, None) and r.headers["retry-after"]


def test_a_server_bug_is_a_logged_500_with_the_request_id(image_id: str, monkeypatch: pytest.MonkeyPatch,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    def bug(*args: Any, **kwargs: Any) -> Any:
        raise ValueError("not an argument error: a bug")

    monkeypatch.setattr(app.routes.convolve, "conv_layer", bug)
    with TestClient(create_app(Settings()), raise_server_exceptions=False) as client:
        image_id = client.post("/api/images", files={"image": ("a.png", encode(make_pixels()), "image/png")}
                               ).json()["id"]
        r = client.post("/api/convolve", json={"image_id": image_id, "kernels": "random", "seed": 12},
                        headers={"X-Request-ID": "req-42"})
    assert _check(r, 500, None) and "req-42" in r.json()["detail"]
    assert any("req-42" in rec.getMessage() for rec in caplog.records)


# ---------------------------------------------------------------- headers

@pytest.mark.parametrize("path", ["/", "/docs", "/api/presets", "/healthz", "/static/app.js", "/openapi.json",
                                  "/api/nope", "/metrics"])
def test_every_response_carries_nosniff_and_referrer_policy(client: TestClient, path: str) -> None:
    r = client.get(path)
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["referrer-policy"] == "same-origin"
    assert r.headers["x-request-id"]


@pytest.mark.parametrize("path", ["/", "/docs"])
def test_html_carries_a_strict_csp_that_forbids_framing(client: TestClient, path: str) -> None:
    csp = client.get(path).headers["content-security-policy"]
    assert "frame-ancestors 'none'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp


def test_docs_has_no_inline_script(client: TestClient) -> None:
    import re

    html = client.get("/docs").text
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)


def test_a_cross_site_browser_post_is_refused_and_curl_is_not(client: TestClient, png_bytes: bytes) -> None:
    files = {"image": ("a.png", png_bytes, "image/png")}
    r = client.post("/api/images", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert _check(r, 403, None) and r.headers["x-content-type-options"] == "nosniff"
    same = client.post("/api/images", files=files, headers={"Sec-Fetch-Site": "same-origin"})
    assert same.status_code == 201
    assert client.post("/api/images", files=files).status_code == 201  # curl sends no Sec-Fetch-Site
    assert client.get("/api/presets", headers={"Sec-Fetch-Site": "cross-site"}).status_code == 200


def test_metrics_report_requests_latency_queue_cache_and_store(client: TestClient, image_id: str) -> None:
    client.post("/api/convolve", json={"image_id": image_id})
    text = client.get("/metrics").text
    for name in ("convlens_requests_total{", "convlens_request_seconds_bucket{", "convlens_queue_depth",
                 "convlens_busy_total", "convlens_output_cache_hits", "convlens_output_cache_misses",
                 "convlens_image_store_bytes", "convlens_compute_seconds_bucket{"):
        assert name in text, name
    assert 'method="POST",route="/api/convolve",status="200"' in text
    misses = _sample(text, "convlens_output_cache_misses")
    client.post("/api/convolve", json={"image_id": image_id})  # the same layer again: a hit
    again = client.get("/metrics").text
    assert _sample(again, "convlens_output_cache_hits") >= 1
    assert _sample(again, "convlens_output_cache_misses") == misses


def _sample(text: str, name: str) -> float:
    """The value of an unlabelled metric in Prometheus text."""
    import re

    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, name
    return float(match.group(1))
