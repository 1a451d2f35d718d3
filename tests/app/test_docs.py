"""/docs works offline (Swagger UI served from the package) and /openapi.json documents every field."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from app import schemas
from app.docs import SWAGGER_DIR
from app.schemas import REQUEST_MODELS
from app.settings import Settings


def test_docs_page_uses_local_assets(client: TestClient) -> None:
    html = client.get("/docs").text
    urls = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html) + re.findall(r"url: '([^']+)'", html)
    assert urls
    for url in urls:
        assert not url.startswith(("http://", "https://", "//")), url
    assert "/docs-assets/swagger-ui-bundle.js" in html


@pytest.mark.parametrize("asset", ["swagger-ui-bundle.js", "swagger-ui.css"])
def test_docs_assets_served(client: TestClient, asset: str) -> None:
    r = client.get(f"/docs-assets/{asset}")
    assert r.status_code == 200 and len(r.content) > 10_000


def test_swagger_ui_renders_openapi_31(client: TestClient) -> None:
    # Swagger UI 5.x is needed for FastAPI's OpenAPI 3.1 documents.
    assert client.get("/openapi.json").json()["openapi"].startswith("3.1")
    assert SWAGGER_DIR is not None and SWAGGER_DIR.name.startswith("swagger-ui-5.")


def test_every_request_field_has_description_and_example(client: TestClient) -> None:
    schemas = client.get("/openapi.json").json()["components"]["schemas"]
    for model in REQUEST_MODELS:
        props = schemas[model.__name__]["properties"]
        assert set(props) == set(model.model_fields)
        for name, prop in props.items():
            assert prop.get("description"), (model.__name__, name)
            assert prop.get("examples"), (model.__name__, name)


def test_numeric_ranges_documented(client: TestClient) -> None:
    props = client.get("/openapi.json").json()["components"]["schemas"]["FeatureMapParams"]["properties"]
    assert props["scale"]["minimum"] == 1 and props["scale"]["maximum"] == 16


def test_every_endpoint_in_openapi(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/api/images", "/api/convolve", "/api/feature-maps.png", "/api/receptive-field",
                 "/api/receptive-field.png", "/api/weight-usage", "/api/weight-usage.png",
                 "/api/dense-matrix", "/api/dense-matrix.png", "/api/gradient", "/api/gradient.png",
                 "/api/presets"):
        assert path in paths, path
    post = paths["/api/convolve"]["post"]
    assert set(post["requestBody"]["content"]) >= {"multipart/form-data", "application/json"}
    assert {p["name"] for p in paths["/api/convolve"]["get"]["parameters"]} >= {"image_id", "stride"}
    assert "422" in post["responses"] and "404" in post["responses"]


def test_response_examples_are_valid_answers() -> None:
    examples = json.loads((Path(schemas.__file__).with_name("openapi_examples.json")).read_text())
    for name, example in examples.items():
        getattr(schemas, name).model_validate(example)


def test_every_response_model_has_an_example(client: TestClient) -> None:
    components = client.get("/openapi.json").json()["components"]["schemas"]
    for name in ("ImageInfo", "ConvolveResponse", "ReceptiveFieldResponse", "WeightUsageResponse",
                 "DenseMatrixResponse", "GradientResponse", "PresetsResponse", "ErrorResponse", "MapInfo"):
        assert components[name].get("examples"), name



def test_layer_specs_are_documented_per_kind_with_their_bounds(client: TestClient) -> None:
    props = client.get("/openapi.json").json()["components"]["schemas"]["NetworkParams"]["properties"]
    kinds = {o["properties"]["kind"]["enum"][0]: o for o in props["layers"]["items"]["oneOf"]}
    assert "ceil_mode" not in kinds["conv"]["properties"] and kinds["relu"]["additionalProperties"] is False
    size = kinds["maxpool"]["properties"]["kernel_size"]["anyOf"][0]
    assert size["maximum"] == Settings().max_kernel_size and "kernel_size" in kinds["maxpool"]["required"]


def test_preset_names_are_documented_as_a_pattern(client: TestClient) -> None:
    props = client.get("/openapi.json").json()["components"]["schemas"]["LayerParams"]["properties"]
    pattern = re.compile(props["kernels"]["pattern"])
    assert pattern.match("sobel_x, box") and pattern.match(",".join(["box"] * Settings().max_kernels))
    assert not pattern.match("sobel")
    assert not pattern.match(",".join(["box"] * (Settings().max_kernels + 1)))
