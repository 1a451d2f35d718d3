"""Realistic Schemathesis cases: the rules a JSON Schema cannot state, each as it is documented.

A JSON Schema says what each field may hold, not how fields tie together: that a dilated kernel fits
the padded image, that groups divide the channels, which image ids exist. The OpenAPI descriptions
of those fields say it in words, and each function here applies one such rule to a schema-valid
case: it repairs the case to the nearest valid value or, where no value is near, leaves it out
(`Skip`). Shapes are worked out here with PyTorch's arithmetic, written out plainly,
never by asking the app.

A case's parameters are the query (GET) or the body (POST) as a dict, its JSON fields read from
their JSON text first (`typed_json`); pairs come as an int, a list or "h,w" text, as the document
allows.
"""

from __future__ import annotations

import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from engine import PRESETS

SAMPLE = Path(__file__).resolve().parents[2] / "static" / "samples" / "astronaut.png"
HEIGHT, WIDTH = 40, 56  # the photo every case sees: small (fast), not square (rows and columns differ)
FLOAT32_MAX = 3.4028234663852886e38
NPY_KERNEL = [[[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]]]  # weights_file: one 3 x 3 kernel
FORMATS = {"image/png": "PNG", "image/jpeg": "JPEG", "image/webp": "WEBP", "image/gif": "GIF"}
JSON_FIELDS = ("layers", "weights", "target_weights")  # carried as JSON text in queries and forms
Params = dict[str, Any]


class Skip(Exception):
    """The case breaks a documented rule that no nearby value mends: it is left out."""


def photo(media_type: str) -> bytes:
    """The astronaut photo at HEIGHT x WIDTH, encoded as `media_type`."""
    with Image.open(SAMPLE) as im:
        small = im.convert("RGB").resize((WIDTH, HEIGHT), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    small.save(buf, FORMATS[media_type])
    return buf.getvalue()


def npy_kernel() -> bytes:
    """NPY_KERNEL as a .npy file, (1, 3, 3)."""
    buf = io.BytesIO()
    np.save(buf, np.array(NPY_KERNEL))
    return buf.getvalue()


PHOTOS = [photo(media_type) for media_type in FORMATS]


# ---------------------------------------------------------------- reading values as the API does

def pair(value: object, default: tuple[int, int]) -> tuple[int, int]:
    """An int, [h, w] or "h,w" as (h, w)."""
    if value is None:
        return default
    if isinstance(value, str):
        value = [int(float(v)) for v in value.split(",")]
    if isinstance(value, list):
        parts = [int(float(v)) for v in value]
        return (parts[0], parts[-1])
    return (int(value), int(value))  # type: ignore[call-overload]


def number(value: object, default: int) -> int:
    return default if value is None else int(float(value))  # type: ignore[arg-type]


def typed_json(p: Params, json_fields: tuple[str, ...]) -> None:
    """JSON fields given as JSON text (as a query carries them) as the JSON they carry: "null" is none."""
    for name in json_fields:
        if isinstance(p.get(name), str):
            try:
                p[name] = json.loads(p[name])
            except ValueError:
                pass


def shape(value: object) -> tuple[int, ...]:
    out = []
    while isinstance(value, list) and value:
        out.append(len(value))
        value = value[0]
    return tuple(out)


def regular(value: object, dims: tuple[int, ...]) -> bool:
    if not dims:
        return not isinstance(value, list)
    return isinstance(value, list) and len(value) == dims[0] and all(regular(v, dims[1:]) for v in value)


def presets(text: object) -> list[str]:
    names = text.split(",") if isinstance(text, str) else list(text or [])  # type: ignore[call-overload]
    return [n.strip() for n in names if n.strip()]


# ---------------------------------------------------------------- PyTorch's arithmetic

def conv_out(n: int, k: int, s: int, p: int, d: int) -> int:
    """floor((n + 2p − d(k − 1) − 1) / s) + 1."""
    return (n + 2 * p - d * (k - 1) - 1) // s + 1


def pool_out(n: int, k: int, s: int, p: int, d: int, ceil_mode: bool) -> int:
    """The pool's output size, with ceil_mode's rule that the last window starts inside the input."""
    span = n + 2 * p - d * (k - 1) - 1
    out = (-(-span // s) if ceil_mode else span // s) + 1
    if ceil_mode and (out - 1) * s >= n + p:
        out -= 1
    return out


def window_fits(kind: str, n: int, k: int, s: int, p: int, d: int, out: int) -> bool:
    """`kernel_size`: the dilated window "fits the layer's padded input"; `dilation`: "a max pool's
    dilated windows each hold an input pixel" (window i's taps are at i s + t d − p)."""
    if d * (k - 1) + 1 > n + 2 * p:
        return False
    return kind != "maxpool" or all(any(0 <= i * s + t * d - p < n for t in range(k)) for i in range(out))


def padding_of(value: object, k: tuple[int, int], d: tuple[int, int]) -> tuple[int, int]:
    if value == "same" or value == "SAME":
        return ((d[0] * (k[0] - 1)) // 2, (d[1] * (k[1] - 1)) // 2)
    if value == "valid" or value == "VALID":
        return (0, 0)
    return pair(value, (0, 0))


# ---------------------------------------------------------------- the rules of one conv layer

@dataclass
class Layer:
    """The one conv layer of a case's parameters, as the API reads it."""

    channels: int  # C: 1 for color=gray, 3 for rgb
    kernels: int  # J
    size: tuple[int, int]  # (kh, kw)
    from_weights: bool

    @classmethod
    def of(cls, p: Params) -> Layer:
        channels = 3 if p.get("color") == "rgb" else 1
        if p.get("weights_file") is not None:  # NPY_KERNEL, which overrides `weights`
            return cls(channels, 1, (3, 3), True)
        weights = p.get("weights")
        if weights is not None:
            dims = shape(weights)
            return cls(channels, dims[0], (dims[-2], dims[-1]), True)
        names = presets(p.get("kernels", "sobel_x"))
        return cls(channels, len(names), pair(p.get("kernel_size"), (3, 3)), False)


def real_uploads(p: Params) -> None:
    """`image`: "PNG, JPEG, WebP or GIF" (a photo, not the 1 x 1 file Schemathesis has at hand);
    `weights_file`: ".npy of the weights"."""
    if p.get("image") is not None and _bytes(p["image"]) not in PHOTOS:
        p["image"] = PHOTOS[len(_bytes(p["image"])) % len(PHOTOS)]  # PNG, JPEG, WebP or GIF
    if p.get("weights_file") is not None and not _bytes(p["weights_file"]).startswith(b"\x93NUMPY"):
        p["weights_file"] = npy_kernel()


def _bytes(value: object) -> bytes:
    data = getattr(value, "data", value)  # Schemathesis wraps generated bytes in Binary
    return data if isinstance(data, bytes) else b""


def json_text(p: Params, json_fields: tuple[str, ...]) -> None:
    """Fields the document carries as JSON text (a query parameter's `content`, a form part's
    `encoding`) are sent as the JSON text of their value (the reverse of `typed_json`)."""
    for name in json_fields:
        if p.get(name) is not None:
            p[name] = json.dumps(p[name])


def regular_weights(p: Params) -> None:
    """`weights`, `target_weights`: "of equal lengths along each axis", 3 or 4 deep."""
    for name in ("weights", "target_weights"):
        value = p.get(name)
        if value is not None and (len(shape(value)) not in (3, 4) or not regular(value, shape(value))):
            raise Skip(name)


def preset_sizes(p: Params) -> None:
    """`kernels`: presets that need an odd kernel_size, or one of at least 3 (GET /api/presets), get
    the nearest such size."""
    if p.get("weights") is not None:
        return
    names = presets(p.get("kernels", "sobel_x")) + presets(p.get("target_kernels"))
    k = list(pair(p.get("kernel_size"), (3, 3)))
    for a in range(2):
        least = max([PRESETS[n].min_size for n in names] + [1])
        k[a] = max(k[a], least)
        if any(PRESETS[n].odd_only for n in names) and k[a] % 2 == 0:
            k[a] = k[a] + 1 if k[a] < 31 else k[a] - 1
    p["kernel_size"] = k


def groups_divide(p: Params) -> None:
    """`groups`: "dividing channels and kernels" (color=gray has 1 channel, rgb 3): the largest such
    groups up to the one asked; 4-D weights must then have C/groups on their second axis."""
    layer = Layer.of(p)
    g = number(p.get("groups"), 1)
    weights = p.get("weights")
    fits = [d for d in range(1, g + 1) if layer.channels % d == 0 and layer.kernels % d == 0
            and (weights is None or len(shape(weights)) == 3 or shape(weights)[1] == layer.channels // d)]
    if not fits:
        raise Skip("groups")
    p["groups"] = fits[-1]


def kernel_sums(p: Params, kernels: str = "kernels", weights: str = "weights") -> list[float]:
    """Each kernel's sum of |w|: of the .npy kernel, of the nested list, or of the presets at
    `kernel_size` (spread over the channels, a preset keeps its sum)."""
    if weights == "weights" and p.get("weights_file") is not None:
        return [sum(abs(v) for v in flat(NPY_KERNEL))]
    values = p.get(weights)
    if values is not None:
        return [sum(abs(v) for v in flat(k)) for k in values]
    size, seed = pair(p.get("kernel_size"), (3, 3)), number(p.get("seed"), 0)
    return [float(np.abs(PRESETS[name].weights(size, seed + k)).sum())
            for k, name in enumerate(presets(p.get(kernels, "sobel_x")))]


def biases(p: Params) -> list[float]:
    bias = p.get("bias", 0.0)
    return [float(b) for b in (bias.split(",") if isinstance(bias, str) else
                               bias if isinstance(bias, list) else [bias])]


def bounded_output(p: Params, most: float) -> None:
    """`weights`, `bias`: "a kernel's sum of |w| and |b| at most {max_output_magnitude}": larger
    weights and bias are scaled down together to that bound (presets and a file keep their weights,
    so the bias alone is)."""
    sums, bias = kernel_sums(p), biases(p)
    total = max(sums) + max(abs(b) for b in bias)
    if total <= most:
        return
    factor = total / most * 1.01
    if p.get("weights") is not None and p.get("weights_file") is None:
        p["weights"] = scaled(p["weights"], factor)
    elif max(sums) * 1.01 < most:
        factor = max(abs(b) for b in bias) / (most - max(sums)) * 1.01
    else:
        raise Skip("kernels")
    p["bias"] = [b / factor for b in bias]


def mse_limit(p: Params) -> float:
    """`loss`=mse, and training's `target_weights`: "its outputs' squares (with the noise) summed
    within float32": the largest |y| that N = J x H_out x W_out outputs may reach, N (2|y|)² within
    float32's largest number."""
    h, w = output_size(p)
    return math.sqrt(FLOAT32_MAX / (Layer.of(p).kernels * h * w)) / 2


def mse_bounded(p: Params) -> None:
    """`loss`=mse, and training: |y| is bounded by the layer's weights and bias, plus the target's (and
    the `noise`); each gets a quarter of `mse_limit`, the last quarter is left for a step of `lr`."""
    quarter = mse_limit(p) / 4
    bounded_output(p, quarter)
    target = p.get("target_weights")
    if target is not None and max(kernel_sums(p, weights="target_weights")) > quarter:
        p["target_weights"] = scaled(target, max(kernel_sums(p, weights="target_weights")) / quarter * 1.01)
    if p.get("noise") is not None and float(p["noise"]) > quarter:
        p["noise"] = quarter


def lr_bounded(p: Params, most: float) -> None:
    """`lr`: "small enough that the stepped weights keep |y| within {max_output_magnitude}" (and, for
    mse, within `mse_limit`). Inputs in [0, 1] and σ' <= 1 bound each |∂L/∂w| by G = H_out W_out x
    2 max(1, |y| + |target|) for any loss, so a step moves a kernel's sum of |w| by at most lr G taps:
    a larger lr is lowered to fit the room the bound leaves."""
    if p.get("lr") is None:
        return
    layer, (h, w) = Layer.of(p), output_size(p)
    y = max(kernel_sums(p)) + max(abs(b) for b in biases(p))
    room, target = most - y, 0.0
    if p.get("loss") == "mse":
        target = max(kernel_sums(p, "target_kernels", "target_weights")) + max(abs(b) for b in biases(p))
        room = min(room, mse_limit(p) - y - target)
    taps = layer.channels // number(p.get("groups"), 1) * layer.size[0] * layer.size[1]
    steepest = room / (h * w * 2 * max(1.0, y + target) * taps)
    if float(p["lr"]) > steepest:
        p["lr"] = steepest / 1.01


def flat(value: Any) -> list[float]:
    return [v for item in value for v in flat(item)] if isinstance(value, list) else [float(value)]


def scaled(value: Any, factor: float) -> Any:
    return [scaled(v, factor) for v in value] if isinstance(value, list) else float(value) / factor


def one_test_image(p: Params) -> None:
    """`test_image_id`: "instead of `test_image`: not both" (the sample is kept)."""
    if p.get("test_image") is not None and p.get("test_image_id") is not None:
        p["test_image_id"] = None


def mse_needs_target(p: Params) -> None:
    """`loss`: mse compares with `target_kernels` or `target_weights` ("needed then"); without them,
    the nearest loss is sum."""
    if p.get("loss") == "mse" and p.get("target_kernels") is None and p.get("target_weights") is None:
        p["loss"] = "sum"


def one_bias_or_one_per_kernel(p: Params) -> None:
    """`bias`: "one value for every kernel, or one per kernel"."""
    bias = p.get("bias")
    if isinstance(bias, str):
        bias = bias.split(",")
    if isinstance(bias, list) and len(bias) not in (1, Layer.of(p).kernels):
        p["bias"] = bias[0]


def kernel_fits(p: Params) -> None:
    """`dilation`, `kernel_size`: the dilated kernel d(k − 1) + 1 fits the padded image H + 2p, and
    `padding`='same' needs stride 1 and an odd effective kernel. The dilation is lowered until it
    fits; 'same' that cannot hold becomes 0."""
    layer = Layer.of(p)
    d = list(pair(p.get("dilation"), (1, 1)))
    if p.get("padding") in ("same", "SAME"):
        odd = all((d[a] * (layer.size[a] - 1)) % 2 == 0 for a in range(2))
        if pair(p.get("stride"), (1, 1)) != (1, 1) or not odd:
            p["padding"] = 0
    pad = padding_of(p.get("padding"), layer.size, (d[0], d[1]))
    for a, n in enumerate(working_size(p)):
        while d[a] > 1 and d[a] * (layer.size[a] - 1) + 1 > n + 2 * pad[a]:
            d[a] -= 1
        if layer.size[a] > n + 2 * pad[a]:
            raise Skip("kernel_size")
    p["dilation"] = d
    if p.get("padding") in ("same", "SAME"):  # 'same' pads by d(k − 1) / 2: it follows the dilation
        odd = all((d[a] * (layer.size[a] - 1)) % 2 == 0 for a in range(2))
        if not odd:
            p["padding"] = 0


def working_size(p: Params) -> tuple[int, int]:
    """`max_side`: "working size of the image's longest side when it is uploaded with this request":
    (H, W) of the photo, shrunk to it as Pillow's resize is asked to (the stored photo keeps its size)."""
    side = number(p.get("max_side"), 0) if p.get("image") is not None else 0
    if not side or max(HEIGHT, WIDTH) <= side:
        return HEIGHT, WIDTH
    scale = side / max(HEIGHT, WIDTH)
    return max(1, round(HEIGHT * scale)), max(1, round(WIDTH * scale))


def output_size(p: Params) -> tuple[int, int]:
    layer = Layer.of(p)
    height, width = working_size(p)
    d, s = pair(p.get("dilation"), (1, 1)), pair(p.get("stride"), (1, 1))
    pad = padding_of(p.get("padding"), layer.size, d)
    return (conv_out(height, layer.size[0], s[0], pad[0], d[0]),
            conv_out(width, layer.size[1], s[1], pad[1], d[1]))


def values_fit(p: Params, size: tuple[int, int], most: int) -> None:
    """`values`: "for maps of up to {max_values} values (format=npy has them at any size)": for a larger
    map, the nearest is no values."""
    if size[0] * size[1] > most and p.get("format") != "npy" and "values" in p:
        p["values"] = False


def unit_inside(p: Params) -> None:
    """`row`, `col`: "0..H_out-1", "0..W_out-1" of the layer's output (wrapped into it)."""
    h, w = output_size(p)
    for name, n in (("row", h), ("col", w)):
        if name in p and p[name] is not None:
            p[name] = number(p[name], 0) % n


def map_inside(p: Params) -> None:
    """`index`: "the map to draw, 0..J-1"."""
    if p.get("index") is not None:
        p["index"] = number(p["index"], 0) % Layer.of(p).kernels


def weight_inside(p: Params) -> None:
    """`weight`: "the shared weight W[j, c, u, v]" of the layer: each index inside its axis."""
    if p.get("weight") is None:
        return
    layer = Layer.of(p)
    value = p["weight"]
    index = [int(v) for v in (value.split(",") if isinstance(value, str) else value)]
    axes = (layer.kernels, layer.channels // number(p.get("groups"), 1), *layer.size)
    p["weight"] = [i % n for i, n in zip(index, axes, strict=True)]


def crop_inside(p: Params, side: int, entries: int, nonzeros: int) -> int:
    """`crop`: "top,left,height,width inside the working image (height, width <= {max_dense_side},
    and no smaller than the dilated kernel with its padding; M at most {max_dense_entries} entries,
    {max_dense_nonzeros} of them non-zero)": clamped into the image, then made smaller until M fits.
    Returns M's entries."""
    value = p.get("crop")
    image_h, image_w = working_size(p)
    if value is None:
        top, left, height, width = 0, 0, min(image_h, side), min(image_w, side)
    else:
        top, left, height, width = [int(v) for v in (value.split(",") if isinstance(value, str) else value)]
    height, width = min(height, side, image_h), min(width, side, image_w)
    layer = Layer.of(p)
    d, s = pair(p.get("dilation"), (1, 1)), pair(p.get("stride"), (1, 1))
    pad = padding_of(p.get("padding"), layer.size, d)
    least = [d[a] * (layer.size[a] - 1) + 1 - 2 * pad[a] for a in range(2)]
    if least[0] > height or least[1] > width:
        raise Skip("crop")

    def matrix(h: int, w: int) -> tuple[int, int]:
        positions = (conv_out(h, layer.size[0], s[0], pad[0], d[0])
                     * conv_out(w, layer.size[1], s[1], pad[1], d[1]))
        taps = layer.channels // number(p.get("groups"), 1) * layer.size[0] * layer.size[1]
        return layer.kernels * positions * layer.channels * h * w, layer.kernels * positions * taps

    while matrix(height, width)[0] > entries or matrix(height, width)[1] > nonzeros:
        if height <= max(least[0], 1) and width <= max(least[1], 1):
            raise Skip("crop")
        if height >= width and height > max(least[0], 1):
            height -= 1
        else:
            width -= 1
    if value is not None or (height, width) != (min(image_h, side), min(image_w, side)):
        p["crop"] = [min(top, image_h - height), min(left, image_w - width), height, width]
    return matrix(height, width)[0]


def scale_within(p: Params, pixels: int, most: int) -> None:
    """`scale` of a PNG of `pixels` pixels: "the zoomed PNG at most {max_png_pixels} pixels" (M's, and
    a stack map's counted at the largest layer's size): lowered until pixels x scale² is at most
    `most`; left out where even no zoom is over."""
    scale = number(p.get("scale"), 1)
    while scale > 1 and pixels * scale**2 > most:
        scale -= 1
    if pixels * scale**2 > most:
        raise Skip("scale")
    if "scale" in p:
        p["scale"] = scale


def target_shape(p: Params) -> None:
    """`target_weights`: "same shape as `weights`" (or as the layer's kernels); `target_kernels`:
    "as many as the layer has kernels", made at `kernel_size`. A target of another shape becomes the
    layer's own kernels, the nearest target of its shape."""
    target = p.get("target_weights")
    layer = Layer.of(p)
    weights = p.get("weights")
    if target is not None:
        dims = shape(target)
        same = dims == shape(weights) if weights is not None else (
            (dims[0], *dims[-2:]) == (layer.kernels, *layer.size)
            and (len(dims) == 3 or dims[1] == layer.channels // number(p.get("groups"), 1)))
        if not same:
            p["target_weights"] = None
            p["target_kernels"] = p.get("kernels", "sobel_x") if weights is None else None
            if weights is not None:
                p["target_weights"] = weights
    elif p.get("target_kernels") is not None:
        if layer.from_weights:  # presets at kernel_size have the weights' shape only by chance
            p["target_kernels"] = None
            p["target_weights"] = weights if weights is not None else NPY_KERNEL
        elif len(presets(p["target_kernels"])) != layer.kernels:
            p["target_kernels"] = p.get("kernels", "sobel_x")
