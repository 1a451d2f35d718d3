"""Schemathesis over the whole OpenAPI document, in-process, on a fixed seed and a bounded number of
examples per operation: no 5xx, and none of its checks fails, with every check on (status codes,
content types and headers as documented, response schemas, Allow on 405, invalid data refused, and
ST202: valid data accepted).

A JSON Schema says what each field may hold, not how fields tie together, and Schemathesis only knows
what the schema says. So the case hooks `filter_case` and `map_case` make each positive case
realistic with the rules of tests/app/st_cases.py, each quoting the OpenAPI description that states
it; negative cases are sent as generated:
- an uploaded `image` is a real photo (the astronaut, small and not square) in PNG, JPEG, WebP or
  GIF, and `weights_file` a real .npy kernel;
- `image_id` (and `test_image_id`) names that photo, uploaded once here, instead of an id that does
  not exist (a 404, which never reaches the layer);
- then the cross-field rules: presets get a kernel size they take, groups divide the channels and
  kernels, a dilated kernel fits the padded (and max_side-shrunk) image, weights, bias, target and lr
  stay under the output bounds, a unit, map, weight or crop lies inside what it names, a stack's
  layers fit one another, values and PNGs stay under their caps. A case is repaired to the nearest
  valid value, or left out (`filter_case`) where none is near.

Three things about Schemathesis 4.32 shape the hooks:
- it writes a query's JSON parameters as JSON text when it generates a case, and sends a urlencoded
  form's JSON fields as repeated keys (it ignores the form's `encoding`), so the hooks write the
  fields they repaired as JSON text, as the document says;
- it re-judges a case a hook changed, to know whether to expect a 2xx or a 4xx, but it takes a body
  holding a file for invalid (it cannot validate bytes) and a query's JSON text for text, so it would
  call repaired multipart and query cases negative and never check that they are accepted:
  `map_case` labels the repaired case itself, against the same schema, a file standing as text and
  JSON text as the JSON it carries;
- its coverage phase shares values between cases (negative ones too), so the hooks repair a copy;
  and it runs the hooks on the coverage and fuzzing phases only, so the test runs them on the
  examples phase.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
import st_cases as rules
import st_stack_cases as stack_rules
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis import GenerationMode
from schemathesis.core.parameters import ParameterLocation
from schemathesis.specs.openapi.utils import read_from_wire

from app.main import create_app
from app.settings import Settings

SETTINGS = Settings()
APP = create_app(SETTINGS)
schema = schemathesis.openapi.from_asgi("/openapi.json", APP)
EXAMPLES = 5

STORED_ID = TestClient(APP).post("/api/images", files={"image": ("a.png", rules.photo("image/png"))}
                                 ).json()["id"]

STACK_COMPUTED = ("/api/convolve", "/api/network", "/api/network-map.png", "/api/erf", "/api/erf.png")


def parameters(case: Any) -> dict[str, Any] | None:
    """The case's query (GET) or body (POST) as typed values, or None. The coverage phase sends a
    query as text ("3" for 3, JSON text for `layers`) and keeps the values it wrote it from."""
    if case.method == "GET":
        raw = case.meta.raw_containers.get(ParameterLocation.QUERY) if case.meta else None
        p = raw if isinstance(raw, dict) else case.query
    else:
        p = case.body
    return p if isinstance(p, dict) else None


def realistic(case: Any, p: dict[str, Any]) -> None:
    """Apply the rules to a positive case's parameters `p` (rules.Skip when one cannot be met)."""
    rules.typed_json(p, rules.JSON_FIELDS)
    for name in ("image_id", "test_image_id"):
        if p.get(name) is not None:
            p[name] = STORED_ID
    rules.real_uploads(p)
    rules.regular_weights(p)
    path = case.path
    if p.get("layers") is not None:
        computed = path in STACK_COMPUTED
        shapes = stack_rules.stack_fits(p, computed, SETTINGS.max_stack_layers, SETTINGS.max_stack_channels)
        stack_rules.stack_unit_inside(p, shapes)
        if path == "/api/convolve" and shapes:
            rules.values_fit(p, shapes[-1][1:], SETTINGS.max_values)
        if path == "/api/network-map.png":
            rules.scale_within(p, max((h * w for _, h, w in shapes), default=0), SETTINGS.max_png_pixels)
        stack_rules.stack_output_bounded(p, SETTINGS.max_output_magnitude)
    elif path.startswith("/api/") and path not in ("/api/presets", "/api/networks", "/api/images"):
        layer_rules(path, p)


def layer_rules(path: str, p: dict[str, Any]) -> None:
    """The rules of the one conv layer, and of what each endpoint asks of it."""
    if path.startswith(("/api/gradient", "/api/train")):
        rules.target_shape(p)
        rules.one_test_image(p)
    rules.preset_sizes(p)
    rules.groups_divide(p)
    rules.one_bias_or_one_per_kernel(p)
    rules.bounded_output(p, SETTINGS.max_output_magnitude)
    rules.kernel_fits(p)
    if path.startswith("/api/gradient"):
        rules.mse_needs_target(p)
    if path == "/api/train" or (path.startswith("/api/gradient") and p.get("loss") == "mse"):
        rules.mse_bounded(p)
    if path.startswith("/api/receptive-field") or (path.startswith("/api/gradient")
                                                   and p.get("loss") == "unit"):
        rules.unit_inside(p)
    if path == "/api/feature-maps.png":
        rules.map_inside(p)
    if path in ("/api/convolve", "/api/gradient"):
        rules.values_fit(p, rules.output_size(p), SETTINGS.max_values)
    if path.startswith("/api/gradient"):
        rules.weight_inside(p)
        rules.lr_bounded(p, SETTINGS.max_output_magnitude)
    if path.startswith("/api/dense-matrix"):
        entries = rules.crop_inside(p, SETTINGS.max_dense_side, SETTINGS.max_dense_entries,
                                    SETTINGS.max_dense_nonzeros)
        # M's PNG: an RGB canvas, its colour indices and its encoding, 9 bytes a pixel, within
        # CONVLENS_MAX_REQUEST_BYTES as the `scale` description says, and max_png_pixels
        rules.scale_within(p, entries, min(SETTINGS.max_png_pixels, SETTINGS.max_request_bytes // 9))


def _copy(value: Any) -> Any:
    """A copy of the dicts and lists in `value` (their items, such as Schemathesis's values, shared)."""
    if isinstance(value, dict):
        return {k: _copy(v) for k, v in value.items()}
    return [_copy(v) for v in value] if isinstance(value, list) else value


def _positive(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


@schema.hook
def filter_case(ctx: Any, case: Any) -> bool:
    """Leave out a positive case that breaks a documented rule no nearby value mends."""
    p = parameters(case)
    if not _positive(case) or p is None:
        return True
    try:
        realistic(case, _copy(p))
    except rules.Skip:
        return False
    return True


@schema.hook
def map_case(ctx: Any, case: Any) -> Any:
    """Repair a positive case to the nearest realistic one, send its JSON fields as the document says,
    and label it positive or negative by what it then sends."""
    p = parameters(case)
    if not _positive(case) or p is None:
        return case
    p = _copy(p)  # the coverage phase shares values between cases, negative ones too
    realistic(case, p)
    valid = meets_schema(case, p)
    if case.method == "GET" or case.media_type == "application/x-www-form-urlencoded":
        rules.json_text(p, rules.JSON_FIELDS)  # a query's `content`, a form's `encoding`
    if case.method == "GET":
        case.query = p
    else:
        case.body = p
    label(case, valid)
    return case


def meets_schema(case: Any, p: dict[str, Any]) -> bool:
    """Whether the repaired parameters `p` meet the operation's schema for them, a file part standing
    as text (any bytes are a `format: binary` string)."""
    typed = {k: "" if isinstance(getattr(v, "data", v), bytes) else v for k, v in p.items()}
    if case.method == "GET":  # the text of a number or a boolean reads as one, as the server reads it
        typed = read_from_wire(case.operation, ParameterLocation.QUERY, typed)
        return bool(case.operation.query.get_strict_validator().is_valid(typed))
    return bool(case.operation.get_body_for_media_type(case.media_type).get_validator().is_valid(typed))


def label(case: Any, valid: bool) -> None:
    """Label the repaired case as `meets_schema` found it. Schemathesis re-judges a case a hook changed,
    but it reads a body holding bytes as invalid (it cannot validate them), and a query's JSON text
    as text, so it would call most repaired multipart and query cases negative, expect a 4xx for
    them, and never check that they are accepted."""
    meta = case.meta  # Schemathesis's own judgement of the changed case, replaced here
    location = ParameterLocation.QUERY if case.method == "GET" else ParameterLocation.BODY
    if location in meta.components:
        meta.components[location].mode = GenerationMode.POSITIVE if valid else GenerationMode.NEGATIVE
    positive = all(info.mode == GenerationMode.POSITIVE for info in meta.components.values())
    meta.generation.mode = GenerationMode.POSITIVE if positive else GenerationMode.NEGATIVE


@pytest.mark.filterwarnings("ignore")
@schema.parametrize()
@settings(max_examples=EXAMPLES, derandomize=True, deadline=None, suppress_health_check=list(HealthCheck),
          database=None)
def test_the_api_conforms_to_its_openapi_document(case: Any) -> None:
    # Schemathesis runs the case hooks on the coverage and fuzzing phases, not on the examples phase.
    if case.meta is not None and case.meta.phase.name == "examples":
        if not filter_case(None, case):
            return
        map_case(None, case)
    # The server's own longest budget (a training stream's): on a busy machine an answer is slower,
    # not wrong (Schemathesis's 10 s timed out a 5000-step training that takes 1.6 s when idle).
    response = case.call_and_validate(timeout=SETTINGS.train_seconds)
    assert response.status_code < 500 or response.status_code == 503
