"""Images in: safe decoding of uploads (limits first) to RGB, and the engine's input (app/draw.py draws).

Decoding checks the upload's size and magic bytes before Pillow sees it, opens it with an explicit
list of formats, and checks the pixel count from the header before the full decode, so a
decompression bomb costs nothing. Everything returned to the engine is RGB uint8 (H, W, 3).

Decoding budgets its memory. Beyond Pillow's own decoded image (N pixels at 1 to 4 bytes each),
conversion to 8 bits goes band by band (BAND_PIXELS at a time, integer arithmetic for 16-bit
samples), gray stays one byte a pixel until the working image is built, and EXIF rotation and
downscaling happen on the 8-bit image. Decoding a 6000 x 6000 16-bit gray PNG to a full-size
working image raises the peak by 4.1 bytes a pixel (141 MiB), 3.1 (108 MiB) when downscaled to
1024: the 16-bit image, its 8-bit gray copy and the working image, where float64 temporaries
took 26 (895 MiB). tests/app/test_decode_memory.py holds these budgets.
"""

from __future__ import annotations

import io
import math
import threading
import warnings
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageOps

from .errors import ImageError
from .settings import Settings

FORMATS = ["PNG", "JPEG", "WEBP", "GIF"]
Color = Literal["gray", "rgb"]
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)  # ITU-R BT.601, as Pillow's "L"
BAND_PIXELS = 1 << 18  # pixels converted at a time: temporaries stay about a MiB whatever the image
GRAY_MODES = frozenset({"1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F"})  # become "L"
SAMPLE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})  # more than 8 bits a sample
# EXIF orientation -> the transposition that displays it upright, as ImageOps.exif_transpose
ORIENTATION = {
    2: Image.Transpose.FLIP_LEFT_RIGHT, 3: Image.Transpose.ROTATE_180, 4: Image.Transpose.FLIP_TOP_BOTTOM,
    5: Image.Transpose.TRANSPOSE, 6: Image.Transpose.ROTATE_270, 7: Image.Transpose.TRANSVERSE,
    8: Image.Transpose.ROTATE_90,
}


@dataclass(frozen=True)
class DecodedImage:
    """An upload decoded to RGB at its working size."""

    pixels: NDArray[np.uint8]  # (H, W, 3) RGB, the working image
    original_size: tuple[int, int]  # (width, height) as uploaded, after EXIF orientation
    format: str = "PNG"  # the detected format: PNG, JPEG, WEBP or GIF

    @property
    def size(self) -> tuple[int, int]:
        """(width, height) of the working image."""
        return (int(self.pixels.shape[1]), int(self.pixels.shape[0]))

    @property
    def width(self) -> int:
        """Working width."""
        return int(self.pixels.shape[1])

    @property
    def height(self) -> int:
        """Working height."""
        return int(self.pixels.shape[0])

    @property
    def downscaled(self) -> bool:
        """True when the working image is smaller than the upload."""
        return self.size != self.original_size


def sniff_format(data: bytes) -> str | None:
    """The format named by the file's magic bytes (PNG, JPEG, WEBP, GIF), or None."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "PNG"
    if data.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "WEBP"
    return None


# warnings.catch_warnings() swaps process-wide state: one thread at a time (opening reads the header only).
_OPEN_LOCK = threading.Lock()


def _not_image(detail: str) -> ImageError:
    return ImageError(415, f"`image`: {detail}; upload a PNG, JPEG, WebP or GIF file")


def decode_upload(data: bytes, settings: Settings, max_side: int | None = None) -> DecodedImage:
    """Decode uploaded bytes into an RGB working image, enforcing every limit before the work.

    Parameters
    ----------
    data : the uploaded file's bytes
    settings : limits (max_upload_bytes, max_pixels, working_side, max_side)
    max_side : longest side of the working image; default settings.working_side

    Returns
    -------
    DecodedImage with pixels of shape (H, W, 3) uint8: EXIF orientation applied, transparency
    composited on white, palette and 16-bit images converted, downscaled so max(H, W) <= max_side.

    Raises ImageError: 413 over max_upload_bytes or max_pixels, 415 for anything not a PNG, JPEG,
    WebP or GIF (by content, not name) or a corrupt or truncated file. ValueError (422) for a bad
    max_side.
    """
    side = settings.working_side if max_side is None else max_side
    if isinstance(side, bool) or not isinstance(side, int) or not 1 <= side <= settings.max_side:
        raise ValueError(f"`max_side` must be an int in 1..{settings.max_side}, got {side!r}")
    if len(data) > settings.max_upload_bytes:
        raise ImageError(
            413, f"`image`: the upload is {len(data):,} bytes, over the limit of "
            f"{settings.max_upload_bytes:,} bytes (CONVLENS_MAX_UPLOAD_BYTES)",
        )
    if not data:
        raise _not_image("the file is empty")
    fmt = sniff_format(data)
    if fmt is None:
        raise _not_image("the content is not a supported image")
    try:
        with _OPEN_LOCK, warnings.catch_warnings():
            # Our own max_pixels check below replaces Pillow's global one.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img: Image.Image = Image.open(io.BytesIO(data), formats=[fmt])
    except Image.DecompressionBombError:
        raise _too_many_pixels(None, settings) from None
    except (OSError, SyntaxError, ValueError, EOFError):
        raise _not_image(f"the start of this {fmt} file cannot be read: it may be damaged") from None
    width, height = img.size
    if width < 1 or height < 1:
        raise _not_image(f"the image has no pixels ({width}x{height})")
    if width * height > settings.max_pixels:
        raise _too_many_pixels((width, height), settings)
    try:
        orientation = int(img.getexif().get(0x0112, 1))
    except Exception:  # a malformed EXIF block must not stop the decode
        orientation = 1
    original = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    try:
        if fmt == "JPEG" and max(width, height) > side:
            scale = side / max(width, height)
            img.draft("RGB", (math.ceil(width * scale), math.ceil(height * scale)))
        img.load()
        img = _to_8bit(img)  # the decoded original is freed here, before anything else is allocated
        if orientation in ORIENTATION:
            img = img.transpose(ORIENTATION[orientation])
    except Image.DecompressionBombError:
        raise _too_many_pixels((width, height), settings) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError):
        raise _not_image(f"this {fmt} file is damaged or cut short, so its pixels cannot be read") from None
    pixels = _to_array(_downscale(img, side))
    return DecodedImage(pixels, original, fmt)


def _too_many_pixels(size: tuple[int, int] | None, settings: Settings) -> ImageError:
    what = f"{size[0]}x{size[1]} = {size[0] * size[1]:,} pixels" if size else "too many pixels"
    return ImageError(
        413, f"`image`: the image is {what}, over the limit of {settings.max_pixels:,} pixels "
        "(CONVLENS_MAX_PIXELS)",
    )


def _bands(img: Image.Image) -> list[tuple[int, int, int, int]]:
    """Crop boxes of whole rows, about BAND_PIXELS each, covering the image top to bottom."""
    w, h = img.size
    rows = max(1, BAND_PIXELS // max(w, 1))
    return [(0, top, w, min(h, top + rows)) for top in range(0, h, rows)]


def _to_8bit(img: Image.Image) -> Image.Image:
    """Any Pillow mode to 8-bit "L" (gray modes) or "RGB", transparency composited on white.

    Converted band by band into one new image, so the temporaries are a band's; "L" and "RGB"
    without transparency are returned as they are.
    """
    if img.mode in ("L", "RGB") and "transparency" not in img.info:
        return img
    top = _sample_top(img)
    out = Image.new("L" if img.mode in GRAY_MODES else "RGB", img.size)
    for box in _bands(img):
        out.paste(_band_to_8bit(img.crop(box), top, out.mode), box[:2])
    return out


def _sample_top(img: Image.Image) -> float:
    """The sample value that becomes 255: 65535 for 16-bit, the brightest for float samples."""
    if img.mode.startswith("I;16"):
        return 65535
    if img.mode not in ("I", "F"):
        return 255
    peak = float(img.getextrema()[1])  # type: ignore[arg-type]  # (min, max) of a one-band image
    if img.mode == "I":
        return 65535 if peak > 255 else 255  # 16-bit samples, or 8-bit ones in an int32 image
    return max(peak, 1.0)  # float samples: stretch to the brightest


def _band_to_8bit(band: Image.Image, top: float, mode: str) -> Image.Image:
    """One band to `mode` ("L" or "RGB"): samples scaled by 255 / top, palettes expanded, alpha on white."""
    if band.mode in SAMPLE_MODES:
        band = Image.fromarray(_samples_to_uint8(np.asarray(band), top))
    elif band.mode in ("P", "PA"):
        band = band.convert("RGBA" if "transparency" in band.info or band.mode == "PA" else "RGB")
    elif band.mode == "1":
        band = band.convert("L")
    if "transparency" in band.info and band.mode in ("L", "RGB"):
        band = band.convert("RGBA")
    if band.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = band.convert("RGBA")
        band = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return band if band.mode == mode else band.convert(mode)  # gray on white stays gray: R = G = B


def _samples_to_uint8(samples: NDArray[np.generic], top: float) -> NDArray[np.uint8]:
    """Samples in [0, top] to round(255 * v / top) in uint8, clipped: integers stay integers."""
    if samples.dtype.kind == "f":
        v = samples.astype(np.float32)  # float samples arrive as float32; no wider
        v *= np.float32(255 / top)
        v += np.float32(0.5)
        np.clip(v, 0, 255, out=v)
        return v.astype(np.uint8)
    t = int(top)
    n = np.clip(samples, 0, t).astype(np.int32)  # 16-bit, or "I" clipped to [0, top <= 65535]
    n *= 255  # <= 16_711_425: fits
    n += t // 2  # + half, then floor division: round to nearest (v * 255 / top is never a half)
    n //= t
    return n.astype(np.uint8)


def _downscale(img: Image.Image, side: int) -> Image.Image:
    """The image with its longest side at most `side` (Lanczos), or itself."""
    w, h = img.size
    if max(w, h) > side:
        scale = side / max(w, h)
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        img = img.resize(size, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return img


def _to_array(img: Image.Image) -> NDArray[np.uint8]:
    """An "L" or "RGB" image as a new (H, W, 3) uint8 array, gray copied to all three channels, by bands."""
    w, h = img.size
    out = np.empty((h, w, 3), np.uint8)
    for box in _bands(img):
        band = np.asarray(img.crop(box))
        out[box[1] : box[3]] = band[..., None] if band.ndim == 2 else band
    return out


def to_input(pixels: NDArray[np.uint8], color: Color = "gray") -> NDArray[np.float32]:
    """Engine input from RGB pixels: (1, H, W) luma for 'gray' or (3, H, W) for 'rgb', in [0, 1]."""
    if color == "rgb":
        return np.ascontiguousarray(pixels.transpose(2, 0, 1), dtype=np.float32) / np.float32(255)
    if color == "gray":
        return (pixels.astype(np.float32) @ (LUMA / np.float32(255)))[None]
    raise ValueError(f"`color` must be 'gray' or 'rgb', got {color!r}")


# ---------------------------------------------------------------- colormaps

def fit(pixels: NDArray[np.uint8], height: int, width: int) -> NDArray[np.uint8]:
    """(H, W, 3) pixels scaled to cover (height, width) and centre-cropped to it (Lanczos): a second
    image the same shape as the first, for a layer that only has weights for that shape."""
    if pixels.shape[:2] == (height, width):
        return pixels
    img = ImageOps.fit(Image.fromarray(pixels), (width, height), Image.Resampling.LANCZOS)
    return _to_array(img)
