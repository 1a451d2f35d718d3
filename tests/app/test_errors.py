"""Every refusal is JSON {"detail", "field"} with 413 / 415 / 422 / 404, and never a 500."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib
from collections.abc import Iterator

import numpy as np
import pytest
from apphelp import encode, make_pixels
from fastapi.testclient import TestClient

from app.main import create_app
from app.settings import Settings


def _check(r: object, status: int, field: str | None) -> dict:
    assert r.status_code == status, r.text  # type: ignore[attr-defined]
    body = r.json()  # type: ignore[attr-defined]
    assert set(body) == {"detail", "field"} and isinstance(body["detail"], str) and body["detail"]
    assert body["field"] == field
    return body


def _upload(client: TestClient, data: bytes, name: str = "x.png") -> object:
    return client.post("/api/images", files={"image": (name, data, "image/png")})


def _conv(client: TestClient, image_id: str, **params: object) -> object:
    return client.post("/api/convolve", json={"image_id": image_id, **params})


# ---------------------------------------------------------------- uploads: 413, 415

def test_upload_over_byte_limit_413() -> None:
    with TestClient(create_app(Settings(max_upload_bytes=1000))) as client:
        body = _check(_upload(client, encode(make_pixels(64, 64))), 413, "image")
    assert "1,000" in body["detail"]


def test_request_content_length_over_limit_413() -> None:
    with TestClient(create_app(Settings(max_upload_bytes=1000))) as client:
        r = client.post("/api/images", files={"image": ("x.png", b"\0" * 2_200_000, "image/png")})
    _check(r, 413, "image")


def test_decompression_bomb_header_413(client: TestClient) -> None:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    bomb = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 50_000, 50_000, 8, 2, 0, 0, 0)) \
        + chunk(b"IDAT", zlib.compress(b"\0" * 1000)) + chunk(b"IEND", b"")
    body = _check(_upload(client, bomb), 413, "image")
    assert "CONVLENS_MAX_PIXELS" in body["detail"]


def test_random_bytes_415(client: TestClient) -> None:
    _check(_upload(client, np.random.default_rng(1).bytes(5000)), 415, "image")


def test_zip_renamed_png_415(client: TestClient) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("evil.txt", "x" * 1000)
    _check(_upload(client, buf.getvalue(), "photo.png"), 415, "image")


def test_truncated_png_415(client: TestClient) -> None:
    data = encode(make_pixels(80, 80))
    _check(_upload(client, data[:300]), 415, "image")


def test_png_signature_then_garbage_415(client: TestClient) -> None:
    _check(_upload(client, b"\x89PNG\r\n\x1a\n" + b"garbage" * 20), 415, "image")


def test_svg_is_415(client: TestClient) -> None:
    _check(_upload(client, b"<svg xmlns='http://www.w3.org/2000/svg'/>", "a.svg"), 415, "image")


def test_upload_to_compute_endpoint_415(client: TestClient) -> None:
    r = client.post("/api/convolve", files={"image": ("a.png", b"not an image", "image/png")})
    _check(r, 415, "image")


def test_images_without_file_422(client: TestClient) -> None:
    _check(client.post("/api/images", data={"max_side": "10"}), 422, "image")


# ---------------------------------------------------------------- 404

def test_unknown_image_id_404(client: TestClient) -> None:
    body = _check(_conv(client, "a" * 64), 404, "image_id")
    assert "upload" in body["detail"]


def test_unknown_image_id_on_png_get_404(client: TestClient) -> None:
    _check(client.get("/api/feature-maps.png", params={"image_id": "b" * 64, "index": 0}), 404, "image_id")


def test_malformed_image_id_422(client: TestClient) -> None:
    _check(_conv(client, "not-a-hash"), 422, "image_id")


def test_no_image_at_all_422(client: TestClient) -> None:
    _check(client.post("/api/convolve", json={"kernels": "box"}), 422, "image")


def test_unknown_path_is_json_404(client: TestClient) -> None:
    assert client.get("/api/nope").json()["detail"] == "Not Found"


# ---------------------------------------------------------------- 422: layer parameters

def test_stride_zero_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, stride=0), 422, "stride")


def test_stride_not_a_number_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, stride="two"), 422, "stride")


def test_negative_padding_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, padding=-1), 422, "padding")


def test_padding_same_with_stride_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, padding="same", stride=2), 422, "padding")


def test_dilation_too_large_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, dilation=100), 422, "dilation")


def test_kernel_larger_than_padded_input_422(client: TestClient, image_id: str) -> None:
    body = _check(_conv(client, image_id, kernels="box", kernel_size=15), 422, "kernel_size")
    assert "12" in body["detail"]


def test_dilated_kernel_larger_than_input_422(client: TestClient, image_id: str) -> None:
    # The 3x3 box fits the image; dilated by 7 it spans 15 > 12 rows: the error names dilation.
    _check(_conv(client, image_id, kernels="box", dilation=7), 422, "dilation")


def test_kernel_size_over_limit_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, kernel_size=32), 422, "kernel_size")


def test_kernel_size_even_for_sobel_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, kernels="sobel_x", kernel_size=4), 422, "kernel_size")


def test_unknown_preset_422(client: TestClient, image_id: str) -> None:
    body = _check(_conv(client, image_id, kernels="sobel_x,blur9000"), 422, "kernels")
    assert "blur9000" in body["detail"] and "gaussian" in body["detail"]


def test_too_many_kernels_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, kernels=",".join(["box"] * 17)), 422, "kernels")


def test_empty_kernels_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, kernels=" , "), 422, "kernels")


def test_nan_weights_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/convolve", content=f'{{"image_id": "{image_id}", "weights": [[[NaN, 1]]]}}',
                    headers={"content-type": "application/json"})
    body = _check(r, 422, "weights")
    assert "NaN" in body["detail"]


def test_infinite_weights_in_form_422(client: TestClient, image_id: str) -> None:
    r = client.post("/api/convolve", data={"image_id": image_id, "weights": "[[[Infinity]]]"})
    _check(r, 422, "weights")


def test_wrong_weight_shape_422(client: TestClient, image_id: str) -> None:
    body = _check(_conv(client, image_id, weights=[[[[1.0]], [[2.0]]]]), 422, "weights")  # C=2 on gray
    assert "(J, 1, kh, kw)" in body["detail"]


def test_ragged_weights_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, weights=[[[1, 2], [3]]]), 422, "weights")


def test_weights_wrong_ndim_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, weights=[1, 2, 3]), 422, "weights")


def test_weights_not_json_422(client: TestClient, image_id: str) -> None:
    _check(client.post("/api/convolve", data={"image_id": image_id, "weights": "[[1,"}), 422, "weights")


def test_weights_kernel_too_big_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, weights=np.zeros((1, 1, 32)).tolist()), 422, "weights")


def test_weights_file_not_npy_422(client: TestClient, png_bytes: bytes) -> None:
    r = client.post("/api/convolve", files={"image": ("a.png", png_bytes, "image/png"),
                                            "weights_file": ("w.npy", b"garbage", "x")})
    _check(r, 422, "weights_file")


def test_weights_file_pickle_refused_422(client: TestClient, png_bytes: bytes) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    r = client.post("/api/convolve", files={"image": ("a.png", png_bytes, "image/png"),
                                            "weights_file": ("w.npy", buf.getvalue(), "x")})
    _check(r, 422, "weights_file")


def test_bias_wrong_count_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, kernels="box,box", bias="1,2,3"), 422, "bias")


def test_bias_nan_422(client: TestClient, image_id: str) -> None:
    _check(client.post("/api/convolve", data={"image_id": image_id, "bias": "nan"}), 422, "bias")


def test_bias_text_422(client: TestClient, image_id: str) -> None:
    _check(client.post("/api/convolve", data={"image_id": image_id, "bias": "abc"}), 422, "bias")


def test_unknown_activation_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, activation="gelu"), 422, "activation")


def test_unknown_color_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, color="cmyk"), 422, "color")


def test_groups_not_dividing_channels_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, color="rgb", groups=2, kernels="box,box"), 422, "groups")


def test_groups_not_dividing_kernels_422(client: TestClient, image_id: str) -> None:
    _check(_conv(client, image_id, color="rgb", groups=3, kernels="box,box"), 422, "groups")


def test_max_side_over_limit_422(client: TestClient, png_bytes: bytes) -> None:
    r = client.post("/api/images", files={"image": ("a.png", png_bytes, "image/png")},
                    data={"max_side": "99999"})
    _check(r, 422, "max_side")


def test_values_over_limit_422() -> None:
    with TestClient(create_app(Settings(max_values=10))) as client:
        r = client.post("/api/convolve", files={"image": ("a.png", encode(make_pixels()), "image/png")},
                        data={"values": "true"})
        body = _check(r, 422, "values")
    assert "npy" in body["detail"]


def test_index_out_of_range_422(client: TestClient, image_id: str) -> None:
    r = client.get("/api/feature-maps.png", params={"image_id": image_id, "index": 3})
    _check(r, 422, "index")


def test_scale_out_of_range_422(client: TestClient, image_id: str) -> None:
    _check(client.get("/api/feature-maps.png", params={"image_id": image_id, "scale": 0}), 422, "scale")


def test_bad_crop_422(client: TestClient, image_id: str) -> None:
    _check(client.post("/api/dense-matrix", json={"image_id": image_id, "crop": "0,0,50,50"}), 422, "crop")


def test_bad_json_body_422(client: TestClient) -> None:
    r = client.post("/api/convolve", content=b"{not json", headers={"content-type": "application/json"})
    _check(r, 422, "body")


def test_json_body_not_object_422(client: TestClient) -> None:
    r = client.post("/api/convolve", json=[1, 2])
    _check(r, 422, "body")


def test_unknown_loss_422(client: TestClient, image_id: str) -> None:
    _check(client.post("/api/gradient", json={"image_id": image_id, "loss": "l1"}), 422, "loss")


@pytest.mark.parametrize("path", ["convolve", "feature-maps.png", "receptive-field", "receptive-field.png",
                                  "weight-usage", "weight-usage.png", "dense-matrix", "dense-matrix.png",
                                  "gradient", "gradient.png"])
def test_every_endpoint_refuses_stride_zero(client: TestClient, image_id: str, path: str) -> None:
    _check(client.get(f"/api/{path}", params={"image_id": image_id, "stride": 0}), 422, "stride")


@pytest.mark.parametrize("seed", range(20))
def test_fuzzed_parameters_never_500(client: TestClient, image_id: str, seed: int) -> None:
    rng = np.random.default_rng(seed)
    junk: list[object] = [0, -1, 2, 31, 99, "x", "1,2,3", "", "same", [1], [1, 2], None, 1.5, "nan", [[1]]]
    params = {k: junk[int(rng.integers(len(junk)))] for k in
              ("kernel_size", "stride", "padding", "dilation", "groups", "bias", "index", "row", "col",
               "weights", "crop", "weight", "scale")}
    paths = ("convolve", "feature-maps.png", "receptive-field", "weight-usage", "dense-matrix", "gradient")
    for path in paths:
        r = client.post(f"/api/{path}", json={"image_id": image_id, **params})
        assert r.status_code in (200, 422), (path, params, r.text)
        if r.status_code == 422:
            assert r.json()["field"]


def test_output_over_limit_422() -> None:
    with TestClient(create_app(Settings(max_output_values=100))) as client:
        r = client.post("/api/convolve", files={"image": ("a.png", encode(make_pixels()), "image/png")})
        body = _check(r, 422, "max_side")
    assert "CONVLENS_MAX_OUTPUT_VALUES" in body["detail"]


def test_weights_file_over_limit_413() -> None:
    with TestClient(create_app(Settings(max_upload_bytes=500))) as client:
        r = client.post("/api/convolve", files={"image": ("a.png", encode(make_pixels(4, 4)), "image/png"),
                                                "weights_file": ("w.npy", b"\0" * 1000, "x")})
    _check(r, 413, "weights_file")


def test_deeply_nested_weights_422(client: TestClient, image_id: str) -> None:
    deep = "[" * 100_000 + "]" * 100_000
    _check(client.post("/api/convolve", data={"image_id": image_id, "weights": deep}), 422, "weights")


def test_deeply_nested_json_body_422(client: TestClient) -> None:
    deep = '{"weights": ' + "[" * 100_000 + "]" * 100_000 + "}"
    r = client.post("/api/convolve", content=deep, headers={"content-type": "application/json"})
    _check(r, 422, "body")


def test_chunked_body_over_limit_413() -> None:
    def chunks() -> Iterator[bytes]:
        head = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a.png\"\r\n"
                b"Content-Type: image/png\r\n\r\n")
        yield head
        for _ in range(40):
            yield b"\0" * 65536
        yield b"\r\n--b--\r\n"

    with TestClient(create_app(Settings(max_upload_bytes=1000))) as client:
        headers = {"content-type": "multipart/form-data; boundary=b"}
        r = client.post("/api/images", content=chunks(), headers=headers)
    assert "content-length" not in r.request.headers
    assert "request body" in _check(r, 413, "image")["detail"]  # stopped while reading


def test_weights_file_nan_422(client: TestClient, png_bytes: bytes) -> None:
    buf = io.BytesIO()
    np.save(buf, np.full((1, 1, 3, 3), np.nan))
    r = client.post("/api/convolve", files={"image": ("a.png", png_bytes, "image/png"),
                                            "weights_file": ("w.npy", buf.getvalue(), "x")})
    _check(r, 422, "weights_file")


def test_weights_file_wrong_ndim_422(client: TestClient, png_bytes: bytes) -> None:
    buf = io.BytesIO()
    np.save(buf, np.ones(9))
    r = client.post("/api/convolve", files={"image": ("a.png", png_bytes, "image/png"),
                                            "weights_file": ("w.npy", buf.getvalue(), "x")})
    _check(r, 422, "weights_file")


@pytest.mark.parametrize(("fields", "field", "words"), [
    ({"seed": "-1"}, "seed", "`seed` must be in 0..4294967295, got '-1'"),
    ({"groups": "0"}, "groups", "`groups` must be in 1..16, got '0'"),
    ({"groups": "two"}, "groups", "`groups` must be a whole number, got 'two'"),
    ({"scale": "99"}, "scale", "`scale` must be in 1..16, got '99'"),
])
def test_validation_errors_say_what_is_allowed(client: TestClient, image_id: str, fields: dict, field: str,
                                               words: str) -> None:
    path = "/api/weight-usage" if "scale" in fields else "/api/convolve"
    r = client.post(path, data={"image_id": image_id, **fields})
    assert r.status_code == 422 and r.json()["field"] == field
    assert r.json()["detail"] == words


def test_padding_words_are_case_blind_and_errors_name_them(client: TestClient, image_id: str) -> None:
    same = client.post("/api/convolve", data={"image_id": image_id, "kernels": "box", "padding": "SAME"})
    assert same.status_code == 200 and same.json()["layer"]["padding"] == [1, 1]
    valid = client.post("/api/convolve", data={"image_id": image_id, "kernels": "box", "padding": " Valid "})
    assert valid.status_code == 200 and valid.json()["layer"]["padding"] == [0, 0]
    r = client.post("/api/convolve", data={"image_id": image_id, "kernels": "box", "padding": "wide"})
    assert r.status_code == 422 and r.json()["field"] == "padding"
    assert "'same'" in r.json()["detail"] and "'valid'" in r.json()["detail"]
