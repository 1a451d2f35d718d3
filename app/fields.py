"""Request field types that validate themselves: pairs, padding, bias, weights, crop, weight index.

Each is an Annotated type. Its plain validator accepts what a form, a query or a JSON body may carry
(3, "3,5" or [3, 5] for a pair) and returns one normal form (a tuple of ints for a pair). Bounds are
read from the Settings that app/params.py passes as validation context, never from a literal, and
the OpenAPI schema gets them from the same Settings (app/docs.py fills each `x-limit`). A bad value
raises FieldError with a message that names the field and says what is allowed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from engine import PRESETS

from .settings import Settings

Pair = tuple[int, int]
Padding = Pair | Literal["same", "valid"]
FLOAT32_MAX = 3.4028234663852886e38
MAX_NESTING = 4  # weights are J x C x kh x kw at most
LIMIT_PLACEHOLDER = re.compile(r"\{(max_[a-z_]+)\}")


def _jsonable(value: object) -> object:
    """A validated field's value as JSON data (tuples as lists)."""
    return list(value) if isinstance(value, tuple) else value


AS_JSON = PlainSerializer(_jsonable)


def field_error(message: str, field: str | None = None) -> PydanticCustomError:
    """A validation error whose text is `message` as it is (pydantic adds no prefix).

    `field` names the part of the value at fault when it is not the whole field (for example
    "layers[2].kernel_size"); the reader reports that name.
    """
    context: dict[str, Any] = {"message": message}
    if field is not None:
        context["field"] = field
    return PydanticCustomError("convlens", "{message}", context)


def settings_of(info: ValidationInfo) -> Settings:
    """The Settings the reader validates against (defaults when a model is validated directly)."""
    context = info.context or {}
    settings = context.get("settings")
    return settings if isinstance(settings, Settings) else Settings()


def _name(info: ValidationInfo) -> str:
    return info.field_name or "value"


def _whole(value: object) -> int:
    """A whole number given as an int, a float such as 5.0, or their text (as pydantic's int reads
    them, and as JSON Schema's "integer" admits 5.0); ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError(value)
    if isinstance(value, int):
        return value
    number = float(value.strip()) if isinstance(value, str) else value
    if isinstance(number, float) and number.is_integer():
        if isinstance(value, str):
            try:
                return int(value.strip())  # exact for long digit strings
            except ValueError:
                pass
        return int(number)
    raise ValueError(value)


def _ints(value: object, name: str, what: str) -> list[int]:
    """An int, a list of ints or comma-separated text as a list of ints."""
    try:
        if isinstance(value, str):
            return [_whole(s) for s in value.replace(" ", "").split(",")]
        if isinstance(value, list):
            return [_whole(v) for v in value]  # a form or query repeats a field for each item
        return [_whole(value)]
    except (ValueError, TypeError, OverflowError):
        pass
    raise field_error(f"`{name}` must be {what}, got {value!r}")


PAIR_WORDS = "a whole number, or two separated by a comma for rows and columns (like 2,1)"


def _pair(value: object, name: str, low: int, high: int) -> Pair:
    parts = _ints(value, name, PAIR_WORDS)
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2:
        raise field_error(f"`{name}` must be {PAIR_WORDS}, got {value!r}")
    if not (low <= parts[0] <= high and low <= parts[1] <= high):
        raise field_error(f"`{name}` must be in {low}..{high}, got {value!r}")
    return parts[0], parts[1]


def bounded_pair(low: int, setting: str) -> Callable[[object, ValidationInfo], Pair]:
    """A validator of pairs in low..Settings.<setting>."""
    def validate(value: object, info: ValidationInfo) -> Pair:
        return _pair(value, _name(info), low, getattr(settings_of(info), setting))
    return validate


def _padding(value: object, info: ValidationInfo) -> Padding:
    if isinstance(value, str) and value.strip().lower() in ("same", "valid"):
        return "same" if value.strip().lower() == "same" else "valid"
    try:
        return _pair(value, "padding", 0, settings_of(info).max_padding)
    except PydanticCustomError as err:
        raise field_error(f"{err.context['message'] if err.context else err}; "
                          "or 'same' (stride 1) or 'valid'") from None


def _bias(value: object, info: ValidationInfo) -> tuple[float, ...]:
    if isinstance(value, str):
        try:
            values = [float(s) for s in value.split(",")]
        except ValueError:
            raise field_error("`bias` must be a number or comma-separated numbers, one per kernel") from None
    elif isinstance(value, list):
        try:
            values = [float(v) if isinstance(v, str) else v for v in value]  # a form repeats the field
        except ValueError:
            raise field_error("`bias` must be a number or one number per kernel") from None
    elif isinstance(value, int | float) and not isinstance(value, bool):
        values = [value]
    else:
        raise field_error(f"`bias` must be a number or one number per kernel, got {value!r}")
    if not values or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in values):
        raise field_error("`bias` must be a number or one number per kernel")
    floats = tuple(float(v) for v in values)
    _check_finite(floats, "bias")
    return floats


def _check_finite(values: tuple[float, ...] | list[float], name: str) -> None:
    if not all(math.isfinite(v) for v in values):
        raise field_error(f"`{name}` must be finite numbers: it holds NaN or infinite values")
    if any(abs(v) > FLOAT32_MAX for v in values):
        raise field_error(f"`{name}` must be numbers of at most about 3.4e38 in size (float32)")


def _flatten(value: object, name: str, depth: int, out: list[float]) -> None:
    if isinstance(value, list):
        if depth >= MAX_NESTING:
            raise field_error(f"`{name}` must be nested at most {MAX_NESTING} deep (J x C x kh x kw)")
        for item in value:
            _flatten(item, name, depth + 1, out)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        out.append(float(value))
    else:
        raise field_error(f"`{name}` must be a JSON nested list of numbers, got an item {value!r}")


def _shape(value: object) -> tuple[int, ...]:
    shape = []
    while isinstance(value, list):
        shape.append(len(value))
        value = value[0] if value else None
    return tuple(shape)


def _weights(value: object, info: ValidationInfo) -> list[Any]:
    """A nested list of finite float32-range numbers, of equal lengths, 3 or 4 deep."""
    return _nested_numbers(value, _name(info))


def _nested_numbers(value: object, name: str) -> list[Any]:
    if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
        value = "[" + ",".join(value) + "]"  # a form repeated the field: one kernel's JSON per part
    if isinstance(value, str):
        if value.count("[") > 64 * 1024:
            raise field_error(f"`{name}` must be a JSON nested list of numbers")
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise field_error(f"`{name}` must be a JSON nested list of numbers") from None
    if not isinstance(value, list) or not value:
        raise field_error(f"`{name}` must be a non-empty JSON nested list of numbers")
    flat: list[float] = []
    _flatten(value, name, 0, flat)
    shape = _shape(value)
    if not flat or math.prod(shape) != len(flat) or not _regular(value, shape):
        raise field_error(f"`{name}` must be a nested list of numbers of equal lengths")
    _check_finite(flat, name)
    return value


def _regular(value: object, shape: tuple[int, ...]) -> bool:
    if not shape:
        return not isinstance(value, list)
    return isinstance(value, list) and len(value) == shape[0] and all(_regular(v, shape[1:]) for v in value)


def _four(value: object, name: str, what: str) -> tuple[int, int, int, int]:
    parts = _ints(value, name, what)
    if len(parts) != 4:
        raise field_error(f"`{name}` must be {what}, got {value!r}")
    return parts[0], parts[1], parts[2], parts[3]


def _crop(value: object, info: ValidationInfo) -> tuple[int, int, int, int]:
    top, left, height, width = _four(value, "crop", "'top,left,height,width' ints")
    if top < 0 or left < 0 or height < 1 or width < 1:
        raise field_error(f"`crop` must have top, left >= 0 and height, width >= 1, got {value!r}")
    return top, left, height, width


def _weight_index(value: object, info: ValidationInfo) -> tuple[int, int, int, int]:
    index = _four(value, "weight", "'j,c,u,v'")
    if min(index) < 0:
        raise field_error(f"`weight` must be 'j,c,u,v' of indices >= 0, got {value!r}")
    return index


def _limited_int(low: int, setting: str, offset: int = 0) -> Callable[[object, ValidationInfo], int]:
    """A validator of whole numbers in low..Settings.<setting> + offset."""
    def validate(value: object, info: ValidationInfo) -> int:
        name = _name(info)
        high = getattr(settings_of(info), setting) + offset
        try:
            number = _whole(value)
        except (ValueError, TypeError, OverflowError):
            raise field_error(f"`{name}` must be a whole number, got {value!r}") from None
        if not low <= number <= high:
            raise field_error(f"`{name}` must be in {low}..{high}, got {value!r}")
        return number
    return validate


def _limit_schema(base: dict[str, Any], setting: str, low: int, offset: int = 0) -> WithJsonSchema:
    return WithJsonSchema({**base, "x-limit": {"setting": setting, "minimum": low, "offset": offset}})


# Pairs are documented as an int or [h, w] (a query or form writes [h, w] as "h,w"); the reader also
# takes the text "h,w" in JSON.
PAIR_SCHEMA = {"anyOf": [{"type": "integer"}, {"type": "array", "items": {"type": "integer"},
                                                 "minItems": 2, "maxItems": 2}]}

KernelSize = Annotated[Pair, PlainValidator(bounded_pair(1, "max_kernel_size")), AS_JSON,
                       _limit_schema(PAIR_SCHEMA, "max_kernel_size", 1)]
Stride = Annotated[Pair, PlainValidator(bounded_pair(1, "max_stride")), AS_JSON,
                   _limit_schema(PAIR_SCHEMA, "max_stride", 1)]
Dilation = Annotated[Pair, PlainValidator(bounded_pair(1, "max_dilation")), AS_JSON,
                     _limit_schema(PAIR_SCHEMA, "max_dilation", 1)]
PaddingField = Annotated[Padding, PlainValidator(_padding), AS_JSON, _limit_schema(
    {"anyOf": [*PAIR_SCHEMA["anyOf"], {"type": "string", "enum": ["same", "valid", "SAME", "VALID"]}]},
    "max_padding", 0)]
Bias = Annotated[tuple[float, ...], PlainValidator(_bias), AS_JSON, WithJsonSchema({"anyOf": [
    {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX},
    {"type": "array", "items": {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX},
     "minItems": 1}]})]
_NUMBER = {"type": "number", "minimum": -FLOAT32_MAX, "maximum": FLOAT32_MAX}
# A kernel: kh rows of kw numbers, each 1..max_kernel_size.
_ROWS = {"type": "array", "minItems": 1, "x-limit-items": "max_kernel_size", "items": {
    "type": "array", "minItems": 1, "x-limit-items": "max_kernel_size", "items": _NUMBER}}
# J x kh x kw or J x C/groups x kh x kw; equal lengths along each axis are checked by the reader.
LAYER_WEIGHTS_SCHEMA = {"type": "array", "minItems": 1, "items": {"anyOf": [
    _ROWS, {"type": "array", "minItems": 1, "items": _ROWS}]},
    "description": "of equal lengths along each axis; C/groups is the layer's input channels / groups"}
WEIGHTS_SCHEMA = {**LAYER_WEIGHTS_SCHEMA, "x-limit-items": "max_kernels"}
Weights = Annotated[list[Any], PlainValidator(_weights), AS_JSON, WithJsonSchema(WEIGHTS_SCHEMA)]
QUAD_SCHEMA = {"type": "array", "items": {"type": "integer", "minimum": 0}, "minItems": 4, "maxItems": 4}
WeightIndex = Annotated[tuple[int, int, int, int], PlainValidator(_weight_index), AS_JSON,
                        WithJsonSchema(QUAD_SCHEMA)]
Crop = Annotated[tuple[int, int, int, int], PlainValidator(_crop), AS_JSON, WithJsonSchema(QUAD_SCHEMA)]
INT_SCHEMA = {"type": "integer"}
Groups = Annotated[int, PlainValidator(_limited_int(1, "max_kernels")),
                   _limit_schema(INT_SCHEMA, "max_kernels", 1)]
MapIndex = Annotated[int, PlainValidator(_limited_int(0, "max_kernels", -1)),
                     _limit_schema(INT_SCHEMA, "max_kernels", 0, -1)]
Scale = Annotated[int, PlainValidator(_limited_int(1, "max_scale")),
                  _limit_schema(INT_SCHEMA, "max_scale", 1)]
MaxSide = Annotated[int, PlainValidator(_limited_int(1, "max_side")),
                    _limit_schema(INT_SCHEMA, "max_side", 1)]
TrainSteps = Annotated[int, PlainValidator(_limited_int(0, "max_train_steps")),
                       _limit_schema(INT_SCHEMA, "max_train_steps", 0)]
ReportEvery = Annotated[int, PlainValidator(_limited_int(1, "max_train_steps")),
                        _limit_schema(INT_SCHEMA, "max_train_steps", 1)]

# Preset names as text, "sobel_x,box": 1..max_kernels of GET /api/presets' names (the pattern says it).
PRESET_TEXT_SCHEMA = {"type": "string", "maxLength": 400,
                      "x-limit-names": {"setting": "max_kernels", "names": list(PRESETS)}}
PresetText = Annotated[str, WithJsonSchema(PRESET_TEXT_SCHEMA)]

# ---------------------------------------------------------------- layers: a stack of layer specs

def fill_limits(schema: object, settings: Settings) -> None:
    """Replace every `x-limit` in a JSON schema by the bound it names, read from settings (in place).

    Integers get minimum and maximum; pairs get them on each integer; text keeps its pattern.
    """
    if isinstance(schema, list):
        for item in schema:
            fill_limits(item, settings)
        return
    if not isinstance(schema, dict):
        return
    items = schema.pop("x-limit-items", None)
    if isinstance(items, str):
        schema["maxItems"] = getattr(settings, items)
    names = schema.pop("x-limit-names", None)
    if isinstance(names, dict):
        schema["pattern"] = _names_pattern(names["names"], getattr(settings, names["setting"]))
    limit = schema.pop("x-limit", None)
    if isinstance(limit, dict):
        high = getattr(settings, limit["setting"]) + limit.get("offset", 0)
        _bound(schema, limit["minimum"], high)
    if isinstance(schema.get("description"), str):
        schema["description"] = describe_limits(schema["description"], settings)
    for value in schema.values():
        fill_limits(value, settings)


def _names_pattern(names: list[str], most: int) -> str:
    """Comma-separated names as the reader takes them: 1..most of them, spaces and empty items aside."""
    name = "(?:" + "|".join(re.escape(n) for n in names) + ")"
    return rf"^[\s,]*{name}(?:\s*(?:,\s*)+{name}){{0,{most - 1}}}[\s,]*$"


def describe_limits(text: str, settings: Settings) -> str:
    """Text with each {max_...} placeholder replaced by that setting's value."""
    return LIMIT_PLACEHOLDER.sub(lambda m: f"{getattr(settings, m.group(1)):,}".replace(",", ""), text)


def _bound(schema: dict[str, Any], low: int, high: int) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            option.update(minimum=low, maximum=high)
        elif option.get("type") == "array" and option.get("items", {}).get("type") == "integer":
            option["items"] = {"type": "integer", "minimum": low, "maximum": high}
