"""The one request reader (app/params.py): query, form and JSON give equal models, and every
field's error names the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from app import schemas
from app.errors import ParamError
from app.params import all_errors, read_values, validate
from app.settings import Settings

LAYER = {"kernels": "sobel_x,box", "kernel_size": "3,5", "stride": "2,1", "padding": "1,2",
         "dilation": "1,2", "groups": "1", "bias": "0.5,-1", "activation": "relu", "color": "gray",
         "seed": "7"}
JSON_LAYER: dict[str, Any] = {"kernels": "sobel_x,box", "kernel_size": [3, 5], "stride": [2, 1],
                              "padding": [1, 2], "dilation": [1, 2], "groups": 1, "bias": [0.5, -1],
                              "activation": "relu", "color": "gray", "seed": 7}


def _echo_app() -> FastAPI:
    """An app whose one route reads the request with the reader and echoes the model."""
    app = FastAPI()
    app.state.settings = Settings()

    async def echo(request: Request) -> dict[str, Any]:
        values, uploads = await read_values(request, request.app.state.settings)
        params = validate(schemas.GradientParams, values, request.app.state.settings)
        return {"params": params.model_dump(mode="json"), "image": uploads.image is not None}

    app.add_api_route("/echo", echo, methods=["GET", "POST"])
    return app


def test_query_form_and_json_give_equal_models() -> None:
    client = TestClient(_echo_app())
    query = client.get("/echo", params={**LAYER, "weight": "1,0,2,4"}).json()
    form = client.post("/echo", data={**LAYER, "weight": "1,0,2,4"}).json()
    body = client.post("/echo", json={**JSON_LAYER, "weight": [1, 0, 2, 4]}).json()
    multipart = client.post("/echo", data={**LAYER, "weight": "1,0,2,4"},
                            files={"image": ("a.png", b"\x89PNG", "image/png")}).json()
    assert query["params"] == form["params"] == body["params"] == multipart["params"]
    assert multipart["image"] and not form["image"]
    p = query["params"]
    assert p["kernel_size"] == [3, 5] and p["stride"] == [2, 1] and p["padding"] == [1, 2]
    assert p["bias"] == [0.5, -1.0] and p["weight"] == [1, 0, 2, 4]


def test_a_query_under_a_form_is_overridden_by_the_form() -> None:
    client = TestClient(_echo_app())
    r = client.post("/echo?stride=3", data={"stride": "2"}).json()
    assert r["params"]["stride"] == [2, 2]


@pytest.mark.parametrize(("field", "value"), [
    ("kernel_size", "0"), ("kernel_size", "3,4,5"), ("kernel_size", "x"), ("stride", "0"), ("stride", "65"),
    ("padding", "-1"), ("padding", "wide"), ("dilation", "17"), ("groups", "0"), ("groups", "17"),
    ("bias", "a,b"), ("bias", "nan"), ("activation", "gelu"), ("color", "cmyk"), ("seed", "-1"),
    ("weights", "[[1,2],[3]]"), ("weights", "not json"), ("weights", "[[[[[1]]]]]"),
    ("weights", "[[[1e39]]]"),
    ("weight", "1,2"), ("weight", "-1,0,0,0"), ("crop", "0,0,8"), ("crop", "0,0,0,8"), ("scale", "0"),
    ("index", "16"), ("max_side", "0"), ("max_side", "4097"), ("loss", "l1"), ("row", "-1"),
    ("image_id", "abc"),
])
def test_every_fields_error_names_the_field(field: str, value: str) -> None:
    model = {"crop": schemas.DenseMatrixParams, "index": schemas.FeatureMapParams,
             "scale": schemas.FeatureMapParams}.get(field, schemas.GradientParams)
    with pytest.raises(ParamError) as err:
        validate(model, {field: value}, Settings())
    assert err.value.field == field
    assert f"`{field}`" in err.value.detail


def test_all_errors_reports_every_bad_field_at_once() -> None:
    params, errors = all_errors(schemas.ConvolveParams, {"stride": "0", "padding": "-2", "bias": "x"},
                                Settings())
    assert params is None
    assert set(errors) == {"stride", "padding", "bias"}


def test_bounds_come_from_the_settings() -> None:
    raised = Settings(max_kernel_size=41, max_kernels=24, max_stride=100)
    assert validate(schemas.LayerParams, {"kernel_size": "41", "stride": "100", "groups": "24"},
                    raised).kernel_size == (41, 41)
    for field, value, bound in (("kernel_size", "41", "1..31"), ("stride", "100", "1..64"),
                                ("groups", "24", "1..16")):
        with pytest.raises(ParamError) as err:
            validate(schemas.LayerParams, {field: value}, Settings())
        assert bound in err.value.detail


def test_padding_words_and_pairs_normalise() -> None:
    s = Settings()
    assert validate(schemas.LayerParams, {"padding": " SAME "}, s).padding == "same"
    assert validate(schemas.LayerParams, {"padding": "valid"}, s).padding == "valid"
    assert validate(schemas.LayerParams, {"padding": 2}, s).padding == (2, 2)
    assert validate(schemas.LayerParams, {"padding": [1, 3]}, s).padding == (1, 3)


@pytest.mark.parametrize("value", [5.0, "5.0", [5.0, "5"]])
def test_a_whole_number_written_as_a_float_is_a_whole_number(value: object) -> None:
    # JSON Schema's "integer" admits 5.0, and pydantic reads "5.0" as 5: so do pairs and bounded ints.
    params = validate(schemas.FeatureMapParams, {"kernel_size": value, "groups": 1.0, "scale": "2.0"},
                      Settings())
    assert params.kernel_size == (5, 5) and params.groups == 1 and params.scale == 2


@pytest.mark.parametrize("value", [2.5, "2.5", "x"])
def test_a_fractional_kernel_size_is_refused(value: object) -> None:
    with pytest.raises(ParamError) as err:
        validate(schemas.LayerParams, {"kernel_size": value}, Settings())
    assert err.value.field == "kernel_size"
