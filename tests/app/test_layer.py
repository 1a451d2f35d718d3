"""The one layer builder (app/layer.py): a validated request becomes the layer the engine runs."""

from __future__ import annotations

import io
from urllib.parse import parse_qsl, urlsplit

import numpy as np
import pytest
from apphelp import encode, make_pixels

from app import schemas
from app.errors import ParamError
from app.images import decode_upload
from app.layer import LayerStack, build_stack
from app.outputs import OutputCache
from app.params import Uploads, validate
from app.settings import Settings
from app.store import ImageStore
from app.weights import read_npy
from engine import ConvSpec, preset


def _build(settings: Settings | None = None, uploads: Uploads | None = None, **values: object) -> LayerStack:
    settings = settings or Settings()
    store = ImageStore(1 << 24)
    image_id = store.put(decode_upload(encode(make_pixels(12, 16)), settings))
    params = validate(schemas.ConvolveParams, {"image_id": image_id, **values}, settings)
    return build_stack(params, uploads or Uploads(), settings, store, OutputCache(1 << 24))


def test_a_preset_layer_carries_one_spec_and_its_weights() -> None:
    stack = _build(kernels="sobel_x,box", kernel_size="3", stride="2,1", padding="1,0", dilation="1",
                   bias="0.5,-1", activation="relu")
    layer = stack.layer
    assert layer.spec == ConvSpec((3, 3), (2, 1), (1, 0), (1, 1))
    assert layer.weight.shape == (2, 1, 3, 3) and layer.weight32.dtype == np.float32
    np.testing.assert_array_equal(layer.weight[0, 0], preset("sobel_x", 3).astype(np.float32))
    assert layer.bias.tolist() == [0.5, -1.0] and layer.names == ("sobel_x", "box")
    assert stack.x.shape == (1, 12, 16)


def test_rgb_weights_are_spread_over_the_channels_of_a_group() -> None:
    stack = _build(weights=[[[1, 2], [3, 4]]], color="rgb")
    np.testing.assert_allclose(stack.layer.weight[0], np.array([[1, 2], [3, 4]]) / 3 * np.ones((3, 1, 1)))
    assert stack.x.shape == (3, 12, 16)


def test_its_urls_read_back_into_the_same_layer() -> None:
    stack = _build(kernels="gaussian,random", kernel_size="5,3", stride="1,2", padding="2,1", seed="4",
                   bias="0.25")
    query = dict(parse_qsl(urlsplit(stack.url("convolve")).query))
    again = _build(**{k: v for k, v in query.items() if k != "image_id"})
    assert again.layer.digest == stack.layer.digest
    np.testing.assert_array_equal(again.layer.weight, stack.layer.weight)


def test_custom_weights_urls_read_back_too() -> None:
    w = np.random.default_rng(0).standard_normal((2, 1, 3, 2)).round(4)
    stack = _build(weights=w.tolist(), padding="1")
    query = dict(parse_qsl(urlsplit(stack.map_url(1)).query))
    assert query["index"] == "1"
    again = _build(**{k: v for k, v in query.items() if k not in ("image_id", "index")})
    assert again.layer.digest == stack.layer.digest


def test_the_key_changes_with_every_part_of_the_layer() -> None:
    base = _build(kernels="box")
    for change in ({"stride": "2"}, {"padding": "1"}, {"dilation": "2"}, {"bias": "1"},
                   {"activation": "tanh"}, {"kernels": "gaussian"}, {"color": "rgb"}):
        assert _build(**{"kernels": "box", **change}).key != base.key, change
    assert _build(kernels="box").key == base.key


def test_an_output_over_the_limit_is_refused_before_any_work() -> None:
    with pytest.raises(ParamError) as err:
        _build(Settings(max_output_values=100), kernels="box")
    assert err.value.field == "max_side" and "CONVLENS_MAX_OUTPUT_VALUES" in err.value.detail


def test_a_kernel_that_does_not_fit_names_its_field() -> None:
    from engine import ArgumentError

    with pytest.raises(ArgumentError) as err:
        _build(kernels="box", kernel_size="13")
    assert err.value.argument == "kernel_size"


def _npy(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array)
    return buf.getvalue()


def test_a_npy_header_is_checked_before_anything_is_allocated() -> None:
    # A header that declares 10**12 float64 values, followed by a few bytes: 8 TB if trusted.
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buf, {"descr": "<f8", "fortran_order": False, "shape": (1000, 1000, 1000, 1000)})
    bomb = buf.getvalue() + bytes(72)
    with pytest.raises(ParamError) as err:
        read_npy(bomb, Settings())
    assert err.value.field == "weights_file" and "declares shape" in err.value.detail


def test_a_npy_file_of_weights_builds_the_layer() -> None:
    w = np.random.default_rng(1).standard_normal((3, 1, 3, 3)).astype(np.float32)
    stack = _build(uploads=Uploads(weights_file=_npy(w)))
    np.testing.assert_array_equal(stack.layer.weight, w)
    assert stack.layer.presets is None
