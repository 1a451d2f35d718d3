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
from functools import partial
from typing import Annotated, Any, Literal

from pydantic import PlainSerializer, PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from engine import KINDS, PRESETS, StackLayerError, layer_from_dict
from engine.stack import FIELDS as STACK_FIELDS

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


def _ints(value: object, name: str, what: str) -> list[int]:
    """An int, a list of ints or comma-separated text as a list of ints."""
    try:
        if isinstance(value, bool):
            raise TypeError
        if isinstance(value, str):
            return [int(s) for s in value.replace(" ", "").split(",")]
        if isinstance(value, int):
            return [value]
        if isinstance(value, list) and all(isinstance(v, int | str) and v is not True and v is not False
                                           for v in value):
            return [int(v) for v in value]  # a form or query repeats a field for each item
    except ValueError:
        pass
    except TypeError:
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
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                raise field_error(f"`{name}` must be a whole number, got {value!r}") from None
        elif isinstance(value, int) and not isinstance(value, bool):
            number = value
        elif isinstance(value, float) and value.is_integer():
            number = int(value)
        else:
            raise field_error(f"`{name}` must be a whole number, got {value!r}")
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
_ROWS = {"type": "array", "minItems": 1, "items": {"type": "array", "minItems": 1, "items": _NUMBER}}
# J x kh x kw or J x C/groups x kh x kw; equal lengths along each axis are checked by the reader.
WEIGHTS_SCHEMA = {"type": "array", "minItems": 1, "items": {"anyOf": [
    _ROWS, {"type": "array", "minItems": 1, "items": _ROWS}]}}
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

# ---------------------------------------------------------------- layers: a stack of layer specs

# The fields of a layer spec in the API, per kind: PyTorch's names (engine/stack.py's FIELDS), with
# the weights given as `kernels` (preset names) or `weights` (a nested list) instead of an array.
LAYER_FIELDS: dict[str, tuple[str, ...]] = {
    kind: tuple(f for f in STACK_FIELDS[kind] if f != "weight") + (("kernels", "weights") if kind in
                                                                     ("conv", "conv_transpose") else ())
    for kind in KINDS
}
LayerSpec = dict[str, Any]


def _named(field: str, check: Callable[[], Any]) -> Any:
    """check(), its FieldError reported on `field` (a part of `layers`)."""
    try:
        return check()
    except PydanticCustomError as err:
        message = err.context["message"] if err.context else str(err)
        raise field_error(str(message), field) from None


def _preset_list(value: object, name: str, settings: Settings) -> str:
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        raise field_error(f"`{name}` must be preset names, 'sobel_x,box' or a list of them, got {value!r}")
    names = [n.strip() for n in names if n.strip()]
    if not 1 <= len(names) <= settings.max_kernels:
        raise field_error(f"`{name}` must name 1..{settings.max_kernels} presets, got {len(names)}")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise field_error(f"`{name}`: unknown preset {unknown[0]!r}; choose from {', '.join(PRESETS)}")
    return ",".join(names)


def _flag(value: object, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise field_error(f"`{name}` must be true or false, got {value!r}")


def _layer_weights(value: object, name: str, settings: Settings) -> list[Any]:
    weights = _nested_numbers(value, name)
    shape = _shape(weights)
    if len(shape) not in (3, 4):
        raise field_error(f"`{name}` must be J x kh x kw or 4-D (conv: J x C/groups x kh x kw; "
                          f"conv_transpose: C x J/groups x kh x kw), got shape {list(shape)}")
    if max(shape[-2:]) > settings.max_kernel_size:
        raise field_error(f"`{name}`: kernels up to {settings.max_kernel_size} on a side, got "
                          f"{shape[-2]}x{shape[-1]}")
    return weights


def _layer_value(key: str, value: object, name: str, settings: Settings) -> object:
    """One field of a layer spec in its normal form (pairs as [h, w]); FieldError naming it."""
    if key == "kernel_size":
        return list(_pair(value, name, 1, settings.max_kernel_size))
    if key in ("stride", "output_padding"):
        return list(_pair(value, name, 1 if key == "stride" else 0, settings.max_stride))
    if key == "dilation":
        return list(_pair(value, name, 1, settings.max_dilation))
    if key == "padding":
        if isinstance(value, str) and value.strip().lower() in ("same", "valid"):
            return value.strip().lower()
        return list(_pair(value, name, 0, settings.max_padding))
    if key in ("groups", "out_channels"):
        parts = _ints(value, name, "a whole number >= 1")
        if len(parts) != 1 or parts[0] < 1:
            raise field_error(f"`{name}` must be a whole number >= 1, got {value!r}")
        return parts[0]
    if key in ("ceil_mode", "count_include_pad"):
        return _flag(value, name)
    if key == "kernels":
        return _preset_list(value, name, settings)
    if key == "weights":
        return _layer_weights(value, name, settings)
    # bias: one number, or one per output channel
    if isinstance(value, int | float) and not isinstance(value, bool):
        values = [value]
    elif isinstance(value, list) and value and all(isinstance(v, int | float) and not isinstance(v, bool)
                                                   for v in value):
        values = value
    else:
        raise field_error(f"`{name}` must be a number or one number per output channel, got {value!r}")
    _check_finite([float(v) for v in values], name)
    return value


def geometry_of(spec: LayerSpec, default_kernel: Pair) -> dict[str, object]:
    """A layer spec as engine/stack.py's layer_from_dict takes it, without weights.

    A conv's kernel size and output channels come from its weights when it has them; with presets
    the channels are their number, and the size defaults to `default_kernel`.
    """
    geometry = {k: v for k, v in spec.items() if k not in ("kernels", "weights", "bias")}
    if spec["kind"] not in ("conv", "conv_transpose"):
        return geometry
    weights = spec.get("weights")
    if weights is not None:
        shape = _shape(weights)
        geometry.setdefault("kernel_size", list(shape[-2:]))
        groups = int(spec.get("groups", 1))
        if len(shape) == 3:
            geometry.setdefault("out_channels", shape[0])
        else:
            geometry.setdefault("out_channels", shape[0] if spec["kind"] == "conv" else shape[1] * groups)
    else:
        geometry.setdefault("kernel_size", list(default_kernel))
        if "out_channels" not in spec:
            geometry["out_channels"] = len(str(spec.get("kernels", "x")).split(","))
    return geometry


def _layer_spec(value: object, i: int, settings: Settings) -> LayerSpec:
    where = f"layers[{i}]"
    if not isinstance(value, dict):
        raise field_error(f"`{where}` must be an object of layer fields, such as "
                          '{"kind": "conv", "kernel_size": 3}', where)
    kind = value.get("kind", "conv")
    if kind not in KINDS:
        raise field_error(f"`{where}.kind` must be one of {', '.join(KINDS)}; got {kind!r}", f"{where}.kind")
    spec: LayerSpec = {"kind": kind}
    for key, item in value.items():
        if key == "kind" or item is None or (isinstance(item, str) and item == ""):
            continue
        name = f"{where}.{key}"
        if key not in LAYER_FIELDS[kind]:
            allowed = ", ".join(LAYER_FIELDS[kind]) or "none"
            raise field_error(f"`{name}` is not a field of a {kind} layer (its fields: {allowed})", name)
        spec[key] = _named(name, partial(_layer_value, key, item, name, settings))
    if "kernels" in spec and "weights" in spec:
        raise field_error(f"`{where}.kernels`: give `kernels` or `weights`, not both", f"{where}.kernels")
    try:  # PyTorch's rules that tie fields together (pool padding, output_padding, groups)
        layer_from_dict(geometry_of(spec, DEFAULT_KERNEL), i)
    except StackLayerError as err:
        raise field_error(str(err), err.field) from None
    return spec


DEFAULT_KERNEL: Pair = (3, 3)  # the kernel size of a conv layer of presets that names none


def _layers(value: object, info: ValidationInfo) -> tuple[LayerSpec, ...]:
    """A JSON list of layer specs, each checked on its own; at most CONVLENS_MAX_GEOMETRY_LAYERS."""
    settings = settings_of(info)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except (ValueError, RecursionError):
            raise field_error("`layers` must be a JSON list of layer objects, such as "
                              '[{"kind": "conv", "kernel_size": 3}, {"kind": "relu"}]') from None
    if not isinstance(value, list) or not value:
        raise field_error("`layers` must be a non-empty JSON list of layer objects")
    if len(value) > settings.max_geometry_layers:
        raise field_error(f"`layers` may hold at most {settings.max_geometry_layers} layers "
                          f"(CONVLENS_MAX_GEOMETRY_LAYERS), got {len(value)}")
    return tuple(_layer_spec(item, i, settings) for i, item in enumerate(value))


LAYER_SCHEMA: dict[str, Any] = {
    "type": "object", "properties": {
        "kind": {"type": "string", "enum": list(KINDS), "default": "conv"},
        **{name: PAIR_SCHEMA for name in ("kernel_size", "stride", "dilation", "output_padding")},
        "padding": {"anyOf": [*PAIR_SCHEMA["anyOf"], {"type": "string", "enum": ["same", "valid"]}]},
        "groups": {"type": "integer", "minimum": 1}, "out_channels": {"type": "integer", "minimum": 1},
        "kernels": {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]},
        "weights": {"type": "array", "items": {"type": "array"}},
        "bias": {"anyOf": [{"type": "number"}, {"type": "array", "items": {"type": "number"}}]},
        "ceil_mode": {"type": "boolean"}, "count_include_pad": {"type": "boolean"},
    },
}
Layers = Annotated[tuple[LayerSpec, ...], PlainValidator(_layers), AS_JSON, WithJsonSchema({"anyOf": [
    {"type": "array", "items": LAYER_SCHEMA, "minItems": 1, "x-limit-items": "max_geometry_layers"},
    {"type": "string", "description": "the same list as JSON text (forms and queries)"}]})]
LayerIndex = Annotated[int, PlainValidator(_limited_int(0, "max_geometry_layers", -1)),
                       _limit_schema(INT_SCHEMA, "max_geometry_layers", 0, -1)]
ChannelIndex = Annotated[int, PlainValidator(_limited_int(0, "max_stack_channels", -1)),
                         _limit_schema(INT_SCHEMA, "max_stack_channels", 0, -1)]


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
    limit = schema.pop("x-limit", None)
    if isinstance(limit, dict):
        high = getattr(settings, limit["setting"]) + limit.get("offset", 0)
        _bound(schema, limit["minimum"], high)
    if isinstance(schema.get("description"), str):
        schema["description"] = describe_limits(schema["description"], settings)
    for value in schema.values():
        fill_limits(value, settings)


def describe_limits(text: str, settings: Settings) -> str:
    """Text with each {max_...} placeholder replaced by that setting's value."""
    return LIMIT_PLACEHOLDER.sub(lambda m: f"{getattr(settings, m.group(1)):,}".replace(",", ""), text)


def _bound(schema: dict[str, Any], low: int, high: int) -> None:
    for option in schema.get("anyOf", [schema]):
        if option.get("type") == "integer":
            option.update(minimum=low, maximum=high)
        elif option.get("type") == "array" and option.get("items", {}).get("type") == "integer":
            option["items"] = {"type": "integer", "minimum": low, "maximum": high}
