"""Realistic Schemathesis cases, continued: the rules of a `layers` stack, each as it is documented.

Each layer's fields must fit the output of the one before, which no JSON Schema can say. As in
tests/app/st_cases.py, each function repairs a schema-valid case to the nearest valid value or
leaves it out (`Skip`), and works the shapes out with PyTorch's arithmetic, written out plainly.
"""

from __future__ import annotations

from st_cases import (
    Params,
    Skip,
    conv_out,
    flat,
    number,
    padding_of,
    pair,
    pool_out,
    preset_sizes,
    presets,
    regular,
    scaled,
    shape,
    window_fits,
    working_size,
)


def stack_fits(p: Params, computed: bool, most_layers: int, most_channels: int) -> list[tuple[int, int, int]]:
    """`layers`: each layer's fields fit the output of the one before (its C follows the previous
    layer; groups divide its input and output channels; a pool's padding is at most k // 2;
    output_padding is below the stride or the dilation; every output is at least 1 x 1), and with
    maps computed, up to {max_stack_layers} layers of up to {max_stack_channels} maps. Returns the
    (C, H, W) of each layer's output."""
    layers = p.get("layers")
    if not isinstance(layers, list):
        return []
    if computed and len(layers) > most_layers:
        raise Skip("layers")
    c, (h, w) = (3 if p.get("color") == "rgb" else 1), working_size(p)
    shapes = []
    for spec in layers:
        c, h, w = _layer_out(spec, c, h, w)
        if h < 1 or w < 1 or (computed and c > most_channels):
            raise Skip("layers")
        shapes.append((c, h, w))
    p["layers"] = layers
    return shapes


def _layer_out(spec: Params, c: int, h: int, w: int) -> tuple[int, int, int]:
    """One layer's output (C, H, W) from its input, repairing what a nearer value mends."""
    kind = spec.get("kind", "conv")
    if kind in ("relu", "sigmoid", "tanh"):
        return c, h, w
    if kind in ("conv", "conv_transpose") and spec.get("weights") is None and (
            spec.get("out_channels") is None or spec.get("kernels") is not None):
        sized = {"kernels": spec.get("kernels", "sobel_x"), "kernel_size": spec.get("kernel_size")}
        preset_sizes(sized)  # `kernels` in a layer: the sizes its presets take, as for the one layer
        if "kernel_size" in spec or sized["kernel_size"] != [3, 3]:
            spec["kernel_size"] = sized["kernel_size"]
    k = pair(spec.get("kernel_size"), (3, 3))
    d = pair(spec.get("dilation"), (1, 1))
    if kind in ("maxpool", "avgpool"):
        s = pair(spec.get("stride"), k)
        if spec.get("padding") in ("same", "valid"):
            spec["padding"] = 0
        asked = pair(spec.get("padding"), (0, 0))
        pool_pad = [min(asked[a], k[a] // 2) for a in range(2)]
        spec["padding"] = pool_pad
        ceil = bool(spec.get("ceil_mode", False))
        out = [pool_out(n, k[a], s[a], pool_pad[a], d[a], ceil) for a, n in enumerate((h, w))]
        if not all(window_fits(kind, n, k[a], s[a], pool_pad[a], d[a], out[a]) for a, n in enumerate((h, w))):
            raise Skip("layers")
        return c, out[0], out[1]
    weights = spec.get("weights")
    if weights is not None and spec.get("kernels") is not None:  # "`kernels` (presets) or `weights`"
        del spec["kernels"]
    if weights is not None:
        dims = shape(weights)
        if not regular(weights, dims):
            raise Skip("layers")
        k = (dims[-2], dims[-1])
        spec["kernel_size"] = list(k)
    g = number(spec.get("groups"), 1)
    if kind == "conv":
        j = _conv_out_channels(spec, dims if weights is not None else None, c, g)
    else:
        j = _transpose_out_channels(spec, dims if weights is not None else None, c, g)
    bias = spec.get("bias")
    if isinstance(bias, list) and len(bias) not in (1, j):  # "one number, or one per output channel"
        spec["bias"] = bias[0]
    s = pair(spec.get("stride"), (1, 1))
    if spec.get("padding") in ("same", "SAME") and (s != (1, 1) or kind != "conv" or any(
            (d[a] * (k[a] - 1)) % 2 for a in range(2))):
        spec["padding"] = 0
    pad = padding_of(spec.get("padding"), k, d)
    if kind == "conv":
        return j, conv_out(h, k[0], s[0], pad[0], d[0]), conv_out(w, k[1], s[1], pad[1], d[1])
    op = list(pair(spec.get("output_padding"), (0, 0)))
    op = [min(op[a], max(s[a], d[a]) - 1) for a in range(2)]
    if "output_padding" in spec:
        spec["output_padding"] = op
    out = [(n - 1) * s[a] - 2 * pad[a] + d[a] * (k[a] - 1) + op[a] + 1 for a, n in enumerate((h, w))]
    return j, out[0], out[1]


def _conv_out_channels(spec: Params, dims: tuple[int, ...] | None, c: int, g: int) -> int:
    if dims is not None:
        j = dims[0]
        if "out_channels" in spec:  # "with `weights` or `kernels`, the number of maps they make"
            spec["out_channels"] = j
        if len(dims) == 4 and dims[1] * g != c:
            fits = [d for d in range(1, c + 1) if c % d == 0 and j % d == 0 and dims[1] * d == c]
            if not fits:
                raise Skip("layers")
            g = fits[0]
    else:
        j = number(spec.get("out_channels"), 0) or len(presets(spec.get("kernels", "sobel_x")))
        if spec.get("kernels") is not None and spec.get("out_channels") is not None:
            spec["out_channels"] = len(presets(spec["kernels"]))
            j = spec["out_channels"]
    groups = [d for d in range(1, min(g, c) + 1) if c % d == 0 and j % d == 0][-1]
    if "groups" in spec or groups != 1:
        spec["groups"] = groups
    return j


def _transpose_out_channels(spec: Params, dims: tuple[int, ...] | None, c: int, g: int) -> int:
    if dims is not None:
        if len(dims) == 4:
            if dims[0] != c:
                raise Skip("layers")
            j_per = dims[1]
        else:
            j_per = dims[0]
        fits = [d for d in range(1, min(g, c) + 1) if c % d == 0]
        spec["groups"] = fits[-1]
        if "out_channels" in spec:  # "with `weights` or `kernels`, the number of maps they make"
            spec["out_channels"] = j_per * spec["groups"]
        return j_per * spec["groups"]
    j = number(spec.get("out_channels"), 0) or len(presets(spec.get("kernels", "sobel_x")))
    fits = [d for d in range(1, min(g, c) + 1) if c % d == 0 and j % d == 0]
    spec["groups"] = fits[-1]
    return j


def stack_output_bounded(p: Params, most: float) -> None:
    """`layers`: "a kernel's sum of |w| and |b| at most {max_output_magnitude}", through the stack:
    each layer's weights and bias are scaled down so that the bound carried from the input (values
    in [0, 1]) stays under it."""
    layers = p.get("layers")
    if not isinstance(layers, list):
        return
    bound = 1.0
    for spec in layers:
        if spec.get("kind", "conv") not in ("conv", "conv_transpose"):
            continue
        weights = spec.get("weights")
        total = sum(abs(v) for v in flat(weights)) if weights is not None else 1e3  # presets, random
        bias = spec.get("bias", 0.0)
        biggest = max(abs(float(b)) for b in (bias if isinstance(bias, list) else [bias]))
        if bound * total + biggest > most ** (1 / len(layers)):
            factor = (bound * total + biggest) / most ** (1 / len(layers)) * 1.01
            if weights is not None:
                spec["weights"] = scaled(weights, factor)
            spec["bias"] = scaled(bias, factor)
            total, biggest = total / factor, biggest / factor
        bound = bound * total + biggest


def stack_unit_inside(p: Params, shapes: list[tuple[int, int, int]]) -> None:
    """`layer`, `channel`/`index`, `row`, `col`: "0..L-1", "0..J-1" and the unit's position, inside
    that layer's output (wrapped into it)."""
    if not shapes:
        return
    layer = number(p.get("layer"), len(shapes) - 1) % len(shapes)
    if p.get("layer") is not None:
        p["layer"] = layer
    c, h, w = shapes[layer]
    for name, n in (("channel", c), ("index", c), ("row", h), ("col", w)):
        if p.get(name) is not None:
            p[name] = number(p[name], 0) % n

