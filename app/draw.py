"""Images out: colormaps with their colour bars' ranges, PNG encoding, and the overlays the API draws.

Signed maps use a diverging map (white at zero, symmetric about it), non-negative maps a perceptually
uniform sequential one. PNGs are written with zlib level 1 and its run-length strategy
(PNG_COMPRESS_LEVEL, PNG_STRATEGY): several times faster than the default for files about 20%
larger, which matters more to a page waiting for maps.
"""

from __future__ import annotations

import io
import math
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw

from .images import LUMA

PNG_COMPRESS_LEVEL = 1  # zlib level 1: several times faster than the default, files ~20% larger
# Run-length strategy: on feature maps 1.5-2x faster than level 1's deflate, files within about 12%
# (measured on the astronaut's sobel and gaussian maps); the page waits on these encodes.
PNG_STRATEGY = zlib.Z_RLE


def _interpolate(anchors: list[tuple[float, tuple[int, int, int]]], n: int = 256) -> NDArray[np.uint8]:
    """An (n, 3) uint8 table, linear in RGB between (position in [0, 1], colour) anchors."""
    pos = np.array([a for a, _ in anchors])
    rgb = np.array([c for _, c in anchors], dtype=np.float64)
    t = np.linspace(0.0, 1.0, n)
    table = np.stack([np.interp(t, pos, rgb[:, k]) for k in range(3)], axis=1)
    return np.round(table).astype(np.uint8)


# Diverging blue - white - red: negative values blue, zero exactly white, positive red.
DIVERGING = _interpolate([
    (0.0, (5, 48, 97)), (0.2, (42, 113, 178)), (0.4, (160, 202, 225)), (0.5, (255, 255, 255)),
    (0.6, (246, 180, 150)), (0.8, (196, 60, 60)), (1.0, (103, 0, 31)),
], 255)  # odd length, so index 127 is exactly zero; fits a PNG palette
# Sequential dark purple - blue - green - yellow, perceptually ordered like viridis.
SEQUENTIAL = _interpolate([
    (0.0, (68, 1, 84)), (0.25, (59, 82, 139)), (0.5, (33, 145, 140)), (0.75, (94, 201, 98)),
    (1.0, (253, 231, 37)),
])


@dataclass(frozen=True)
class Colorized:
    """A map turned into colour-table indices, with the table and the value range it stands for."""

    index: NDArray[np.uint8]  # (H, W) row of `table` for each pixel
    table: NDArray[np.uint8]  # (n <= 256, 3) the colormap
    vmin: float  # value shown by the first colour of the table
    vmax: float  # value shown by the last colour
    signed: bool  # True: diverging table centred on zero

    @property
    def rgb(self) -> NDArray[np.uint8]:
        """(H, W, 3) colours."""
        return self.table[self.index]


def color_range(lo: float, hi: float, signed: bool | None = None) -> tuple[float, float, bool]:
    """(vmin, vmax, signed) the colours of a map with values in [lo, hi] stand for.

    Signed (lo < 0 unless told): [-m, m] with m = max(|lo|, |hi|), so 0 is the middle colour.
    Otherwise [lo, hi]; a constant map gets a range of width 1.
    """
    if signed is None:
        signed = lo < 0
    if signed:
        m = max(abs(lo), abs(hi)) or 1.0
        return -m, m, True
    return lo, (hi if hi > lo else lo + 1.0), False


def colorize(values: NDArray[np.floating], signed: bool | None = None, vmin: float | None = None,
             vmax: float | None = None) -> Colorized:
    """Colour a (H, W) map: diverging and symmetric about 0 if it has negatives, else sequential.

    Signed maps use [-m, m] with m = max|value|, so 0 is white and negatives are never clamped.
    Non-negative maps use [min, max] (or the given vmin / vmax). See color_range.
    """
    v = np.asarray(values, dtype=np.float32)
    if v.ndim != 2:
        raise ValueError(f"`values` must be a 2-D map, got shape {v.shape}")
    lo = float(v.min()) if vmin is None else vmin
    hi = float(v.max()) if vmax is None else vmax
    c_lo, c_hi, signed = color_range(lo, hi, signed)
    if signed:
        mid = (len(DIVERGING) - 1) // 2
        idx = v * np.float32(mid / c_hi)
        idx += np.float32(mid + 0.5)  # + 0.5 then truncation rounds to nearest
        np.clip(idx, 0, 2 * mid, out=idx)
        return Colorized(idx.astype(np.uint8), DIVERGING, c_lo, c_hi, True)
    idx = v - np.float32(c_lo)
    span = c_hi - c_lo  # 0 for a flat map at a huge value (color_range's widening is below its ulp)
    idx *= np.float32(255 / span if span > 0 else 0.0)
    idx += np.float32(0.5)
    np.clip(idx, 0, 255, out=idx)
    return Colorized(idx.astype(np.uint8), SEQUENTIAL, c_lo, c_hi, False)


def upscale(rgb: NDArray[np.uint8], scale: int) -> NDArray[np.uint8]:
    """Nearest-neighbour upscaling of (H, W) or (H, W, 3) by an integer factor; pixels stay visible."""
    if scale == 1:
        return rgb
    return np.repeat(np.repeat(rgb, scale, axis=0), scale, axis=1)


def encode_png(rgb: NDArray[np.uint8]) -> bytes:
    """PNG bytes of an (H, W, 3) or (H, W) uint8 array, at zlib level 1 for speed."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL,
                                                    compress_type=PNG_STRATEGY)
    return buf.getvalue()


def encode_indexed_png(index: NDArray[np.uint8], table: NDArray[np.uint8]) -> bytes:
    """PNG bytes of a palette image: one byte per pixel, a third of RGB's, so much faster to encode."""
    img = Image.fromarray(np.ascontiguousarray(index))  # mode "L"
    img.putpalette(table.ravel().tolist())  # becomes mode "P"
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_STRATEGY)
    return buf.getvalue()


def map_png(values: NDArray[np.floating], scale: int = 1) -> tuple[bytes, Colorized]:
    """One feature map as a coloured (palette) PNG, see colorize, with its colour range."""
    c = colorize(values)
    return encode_indexed_png(upscale(c.index, scale), c.table), c


def grid_png(maps: NDArray[np.floating], labels: list[str], scale: int = 1, gap: int = 4) -> bytes:
    """All maps (J, H, W) as one labelled grid, each map coloured on its own range."""
    j, h, w = maps.shape
    h, w = h * scale, w * scale
    cols = math.ceil(math.sqrt(j))
    rows = math.ceil(j / cols)
    label_h = 14
    canvas = np.full((rows * (h + label_h + gap) + gap, cols * (w + gap) + gap, 3), 255, np.uint8)
    boxes = []
    for k in range(j):
        r, c = divmod(k, cols)
        top, left = gap + r * (h + label_h + gap) + label_h, gap + c * (w + gap)
        canvas[top : top + h, left : left + w] = upscale(colorize(maps[k]).rgb, scale)
        boxes.append((left, top - label_h))
    img = Image.fromarray(canvas)
    draw = ImageDraw.Draw(img)
    for (left, top), label in zip(boxes, labels, strict=True):
        draw.text((left, top + 1), label, fill=(0, 0, 0))
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_STRATEGY)
    return buf.getvalue()


# ---------------------------------------------------------------- overlays

PAD_COLOR = (200, 200, 200)
BOX_COLOR = (230, 50, 30)
TAP_COLOR = (20, 110, 230)
TAP_PAD_COLOR = (250, 160, 0)


def auto_scale(height: int, width: int, target: int = 512, limit: int = 16) -> int:
    """Integer zoom that brings a small image up to about `target` pixels on its long side."""
    return max(1, min(limit, target // max(height, width, 1)))


def draw_receptive_field(
    pixels: NDArray[np.uint8],
    padding: tuple[int, int],
    box: tuple[int, int, int, int],
    taps: list[tuple[int, int, bool]],
    scale: int = 1,
) -> bytes:
    """The input with its padding (grey), the receptive-field box and every kernel tap, as PNG.

    pixels (H, W, 3); padding (p_h, p_w); box (top, left, height, width) in input coordinates
    (may reach into the padding); taps as (row, col, on padding). Drawn at `scale` x zoom.
    """
    h, w = pixels.shape[:2]
    ph, pw = padding
    canvas = np.empty((h + 2 * ph, w + 2 * pw, 3), np.uint8)
    canvas[:] = PAD_COLOR
    canvas[ph : ph + h, pw : pw + w] = (pixels.astype(np.uint16) * 3 // 4 + 32).astype(np.uint8)
    img = Image.fromarray(upscale(canvas, scale))
    draw = ImageDraw.Draw(img)
    top, left, bh, bw = box
    y0, x0 = (top + ph) * scale, (left + pw) * scale
    line = max(1, scale // 4, max(h, w) // 256)
    draw.rectangle([x0, y0, x0 + bw * scale - 1, y0 + bh * scale - 1], outline=BOX_COLOR, width=line)
    radius = max(1, scale // 3, max(h, w) // 256)
    for r, c, on_pad in taps:
        cy, cx = (r + ph) * scale + scale // 2, (c + pw) * scale + scale // 2
        draw.ellipse([cx - radius, cy - radius, cx + radius, cy + radius],
                     fill=TAP_PAD_COLOR if on_pad else TAP_COLOR)
    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=PNG_COMPRESS_LEVEL, compress_type=PNG_STRATEGY)
    return buf.getvalue()


ZERO_COVERAGE = np.array([230, 0, 120], np.uint8)  # pixels no output reads


def draw_coverage(pixels: NDArray[np.uint8], counts: NDArray[np.integer], alpha: float = 0.7,
                  scale: int = 1) -> tuple[bytes, Colorized]:
    """Per-pixel coverage (H, W) as a sequential heatmap over the grey image; zeros in magenta."""
    c = colorize(counts.astype(np.float32), signed=False, vmin=0.0)
    gray = (pixels.astype(np.float32) @ LUMA)[..., None]
    mixed = (alpha * c.rgb + (1 - alpha) * gray).astype(np.uint8)
    mixed[counts == 0] = ZERO_COVERAGE
    return encode_png(upscale(mixed, scale)), c


def tied_palette(n: int) -> NDArray[np.uint8]:
    """n distinct colours (golden-ratio hues, alternating lightness), one per shared weight."""
    hue = (np.arange(n) * 0.618033988749895) % 1.0
    light = np.where(np.arange(n) % 2 == 0, 0.45, 0.6)
    sat = 0.75
    # HSL to RGB, vectorised.
    chroma = (1 - np.abs(2 * light - 1)) * sat
    hp = hue * 6
    x = chroma * (1 - np.abs(hp % 2 - 1))
    zeros = np.zeros(n)
    sector = hp.astype(int) % 6
    r = np.choose(sector, [chroma, x, zeros, zeros, x, chroma])
    g = np.choose(sector, [x, chroma, chroma, x, zeros, zeros])
    b = np.choose(sector, [zeros, zeros, x, chroma, chroma, x])
    m = light - chroma / 2
    return np.round(np.stack([r + m, g + m, b + m], axis=1) * 255).astype(np.uint8)


def draw_dense_matrix(shape: tuple[int, int], rows: NDArray[np.integer], cols: NDArray[np.integer],
                      tied: NDArray[np.integer], n_weights: int, scale: int = 1) -> bytes:
    """The dense matrix M (rows x cols pixels): each shared weight in its own colour, zeros white."""
    img = np.full((shape[0], shape[1], 3), 255, np.uint8)
    img[rows, cols] = tied_palette(max(n_weights, 1))[tied]
    return encode_png(upscale(img, scale))
