"""The `layers` field: a stack of layer specs (conv, pools, activations, transposed conv), validated once.

Each spec is checked field by field with the engine's own rules (engine.layer_from_dict); an error
names the part of the field, as `layers[2].kernel_size`. Bounds come from the Settings, as for the
single-layer fields of app/fields.py.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import partial
from typing import Annotated, Any

from pydantic import PlainValidator, ValidationInfo, WithJsonSchema
from pydantic_core import PydanticCustomError

from engine import KINDS, PRESETS, StackLayerError, layer_from_dict
from engine.stack import FIELDS as STACK_FIELDS

from .fields import (
    _NUMBER,
    AS_JSON,
    INT_SCHEMA,
    LAYER_WEIGHTS_SCHEMA,
    PAIR_SCHEMA,
    PRESET_TEXT_SCHEMA,
    Pair,
    _check_finite,
    _ints,
    _limit_schema,
    _limited_int,
    _nested_numbers,
    _pair,
    _shape,
    field_error,
    settings_of,
)
from .settings import Settings

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


def _limited(setting: str, low: int, schema: dict[str, Any] = PAIR_SCHEMA) -> dict[str, Any]:
    return {**schema, "x-limit": {"setting": setting, "minimum": low, "offset": 0}}


PADDING_WORDS = {"anyOf": [*PAIR_SCHEMA["anyOf"], {"type": "string", "enum": ["same", "valid"]}],
                 "x-limit": {"setting": "max_padding", "minimum": 0, "offset": 0}}
# The fields of a layer spec, as _layer_value reads them. What ties fields together (a kernel that fits
# its input, groups that divide the channels, a pool's padding, output_padding) is in the descriptions.
LAYER_PROPERTIES: dict[str, dict[str, Any]] = {
    "kernel_size": {**_limited("max_kernel_size", 1), "description": "the dilated kernel d(k − 1) + 1 fits "
                    "the layer's padded input n + 2p on each axis (a conv_transpose's need not)"},
    "stride": _limited("max_stride", 1),
    "dilation": {**_limited("max_dilation", 1), "description": "a max pool's dilated windows each hold an "
                 "input pixel, not padding only"},
    "padding": PADDING_WORDS,  # 'same' and 'valid' are a conv's only
    "output_padding": {**_limited("max_stride", 0), "description": "each below the stride or the "
                       "dilation on its axis, as in PyTorch"},
    "groups": {"type": "integer", "minimum": 1, "description": "divides the layer's input channels and "
               "its output channels"},
    "out_channels": {"type": "integer", "minimum": 1, "description": "at most {max_stack_channels} when "
                     "the maps are computed; with `weights` or `kernels`, the number of maps they make"},
    "kernels": {"anyOf": [PRESET_TEXT_SCHEMA, {"type": "array", "minItems": 1, "x-limit-items": "max_kernels",
                                               "items": {"type": "string", "enum": list(PRESETS)}}]},
    "weights": LAYER_WEIGHTS_SCHEMA,
    "bias": {"anyOf": [_NUMBER, {"type": "array", "items": _NUMBER, "minItems": 1}]},
    "ceil_mode": {"type": "boolean"}, "count_include_pad": {"type": "boolean"},
}
POOL_NOTE = "; its padding is at most half its kernel size on each axis (k // 2), as in PyTorch"


def _kind_schema(kind: str) -> dict[str, Any]:
    """The JSON schema of one kind of layer spec: its own fields only (others are refused)."""
    schema: dict[str, Any] = {
        "type": "object", "additionalProperties": False,
        "properties": {"kind": {"type": "string", "enum": [kind]},
                       **{f: LAYER_PROPERTIES[f] for f in LAYER_FIELDS[kind]},
                       **({"padding": _limited("max_padding", 0)}
                          if kind != "conv" and "padding" in LAYER_FIELDS[kind] else {})},
        "required": [] if kind == "conv" else ["kind"],  # kind defaults to conv
        "description": f"a {kind} layer" + (POOL_NOTE if kind in ("maxpool", "avgpool") else ""),
    }
    if kind in ("maxpool", "avgpool"):
        schema["required"] = ["kind", "kernel_size"]
    return schema


LAYER_SCHEMA: dict[str, Any] = {"type": "object", "oneOf": [_kind_schema(kind) for kind in KINDS]}
# In a query or a form the list travels as JSON text (the parameter's content, the part's encoding).
Layers = Annotated[tuple[LayerSpec, ...], PlainValidator(_layers), AS_JSON, WithJsonSchema(
    {"type": "array", "items": LAYER_SCHEMA, "minItems": 1, "x-limit-items": "max_geometry_layers"})]
LayerIndex = Annotated[int, PlainValidator(_limited_int(0, "max_geometry_layers", -1)),
                       _limit_schema(INT_SCHEMA, "max_geometry_layers", 0, -1)]
ChannelIndex = Annotated[int, PlainValidator(_limited_int(0, "max_stack_channels", -1)),
                         _limit_schema(INT_SCHEMA, "max_stack_channels", 0, -1)]


