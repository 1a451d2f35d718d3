"""app/images.py: safe decoding, colour handling, colormaps, PNG encoding and overlays."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from apphelp import encode, make_pixels
from numpy.typing import NDArray
from PIL import Image

from app import draw, images
from app.images import DecodedImage, ImageError, decode_upload
from app.settings import Settings


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF"])
def test_lossless_formats_decode_to_same_pixels(fmt: str, settings: Settings) -> None:
    px = make_pixels()
    kw = {"lossless": True} if fmt == "WEBP" else {}
    if fmt == "GIF":
        px = np.asarray(Image.fromarray(px).quantize(64).convert("RGB"))
    out = decode_upload(encode(px, fmt, **kw), settings)
    assert out.format == fmt
    np.testing.assert_array_equal(out.pixels, px)
    assert out.size == (16, 12) and out.original_size == (16, 12) and not out.downscaled


def test_jpeg_decodes_close(settings: Settings) -> None:
    px = make_pixels(32, 32)
    out = decode_upload(encode(px, "JPEG", quality=95), settings)
    assert out.pixels.shape == (32, 32, 3) and out.pixels.dtype == np.uint8
    assert np.abs(out.pixels.astype(int) - px).mean() < 8


def test_format_from_content_not_name(settings: Settings) -> None:
    # Bytes are sniffed; the file name never reaches the decoder.
    assert decode_upload(encode(make_pixels(), "JPEG"), settings).format == "JPEG"


def test_exif_orientation_applied(settings: Settings) -> None:
    px = np.zeros((10, 20, 3), np.uint8)
    px[:, :5] = 255  # white on the left
    img = Image.fromarray(px)
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90° clockwise to display
    out = decode_upload(encode(img, "JPEG", exif=exif.tobytes(), quality=95), settings)
    assert out.size == (10, 20) and out.original_size == (10, 20)
    assert out.pixels[:5].mean() > 200 and out.pixels[-5:].mean() < 50  # left became top


def test_transparency_composited_on_white(settings: Settings) -> None:
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0] = 255  # red, alpha 0 on the left half, 255 on the right
    rgba[:, 2:, 3] = 255
    out = decode_upload(encode(Image.fromarray(rgba, "RGBA")), settings)
    np.testing.assert_array_equal(out.pixels[:, :2], 255)
    assert (out.pixels[:, 2:] == [255, 0, 0]).all()


def test_half_transparent_blends(settings: Settings) -> None:
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 3] = 128  # black at half opacity over white
    out = decode_upload(encode(Image.fromarray(rgba, "RGBA")), settings)
    assert abs(int(out.pixels[0, 0, 0]) - 127) <= 1


def test_palette_with_transparency(settings: Settings) -> None:
    img = Image.new("P", (3, 3), 0)
    img.putpalette([0, 0, 0, 0, 255, 0] + [0] * 762)
    img.putpixel((1, 1), 1)
    out = decode_upload(encode(img, "PNG", transparency=0), settings)
    np.testing.assert_array_equal(out.pixels[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(out.pixels[1, 1], [0, 255, 0])


def test_sixteen_bit_gray_scaled_not_clipped(settings: Settings) -> None:
    values = np.array([[0, 32768, 65535]], dtype=np.uint16)
    out = decode_upload(encode(Image.fromarray(values)), settings)
    np.testing.assert_array_equal(out.pixels[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(out.pixels[..., 0], out.pixels[..., 2])


def test_gif_first_frame(settings: Settings) -> None:
    frames = [Image.new("RGB", (4, 4), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:])
    out = decode_upload(buf.getvalue(), settings)
    assert out.pixels[0, 0, 0] > 200 and out.pixels[0, 0, 2] < 50


def test_downscale_to_working_side(settings: Settings) -> None:
    out = decode_upload(encode(np.zeros((50, 200, 3), np.uint8)), settings, max_side=40)
    assert out.size == (40, 10) and out.original_size == (200, 50) and out.downscaled


def test_large_jpeg_downscaled_by_default() -> None:
    out = decode_upload(encode(np.full((600, 1300, 3), 90, np.uint8), "JPEG"), Settings(working_side=256))
    assert out.size == (256, 118) and out.original_size == (1300, 600)
    assert abs(int(out.pixels.mean()) - 90) <= 2


def test_max_side_over_setting_rejected(settings: Settings) -> None:
    with pytest.raises(ValueError, match="`max_side`"):
        decode_upload(encode(make_pixels()), settings, max_side=settings.max_side + 1)


def test_upload_over_byte_limit_is_413() -> None:
    with pytest.raises(ImageError) as err:
        decode_upload(encode(make_pixels()), Settings(max_upload_bytes=100))
    assert err.value.status_code == 413 and "CONVLENS_MAX_UPLOAD_BYTES" in err.value.detail


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose IHDR claims width x height, with a tiny (invalid) IDAT: a decompression bomb's header."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 10)) \
        + chunk(b"IEND", b"")


def test_pixel_limit_checked_from_header() -> None:
    with pytest.raises(ImageError) as err:
        decode_upload(_png_header_only(10_000, 10_000), Settings())
    assert err.value.status_code == 413 and "CONVLENS_MAX_PIXELS" in err.value.detail


def test_huge_header_beyond_pillow_bomb_limit_is_413() -> None:
    with pytest.raises(ImageError) as err:
        decode_upload(_png_header_only(60_000, 60_000), Settings())
    assert err.value.status_code == 413


def test_random_bytes_are_415(settings: Settings) -> None:
    with pytest.raises(ImageError) as err:
        decode_upload(np.random.default_rng(0).bytes(1000), settings)
    assert err.value.status_code == 415


def test_zip_renamed_png_is_415(settings: Settings) -> None:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("a.txt", "hello")
    with pytest.raises(ImageError) as err:
        decode_upload(buf.getvalue(), settings)
    assert err.value.status_code == 415


def test_truncated_png_is_415(settings: Settings) -> None:
    data = encode(make_pixels(64, 64))
    with pytest.raises(ImageError) as err:
        decode_upload(data[: len(data) // 2], settings)
    assert err.value.status_code == 415


def test_empty_upload_is_415(settings: Settings) -> None:
    with pytest.raises(ImageError) as err:
        decode_upload(b"", settings)
    assert err.value.status_code == 415


def test_to_input_gray_and_rgb() -> None:
    px = make_pixels(3, 5)
    g = images.to_input(px, "gray")
    assert g.shape == (1, 3, 5) and g.dtype == np.float32
    np.testing.assert_allclose(g[0], (px @ np.array([0.299, 0.587, 0.114])) / 255, rtol=1e-5)
    rgb = images.to_input(px, "rgb")
    np.testing.assert_allclose(rgb, px.transpose(2, 0, 1) / 255, rtol=1e-6)


def test_to_input_bad_color() -> None:
    with pytest.raises(ValueError, match="`color`"):
        images.to_input(make_pixels(), "cmyk")  # type: ignore[arg-type]


def test_diverging_white_at_zero_and_symmetric() -> None:
    c = draw.colorize(np.array([[-2.0, 0.0, 1.0]]))
    assert c.signed and (c.vmin, c.vmax) == (-2.0, 2.0)
    np.testing.assert_array_equal(c.rgb[0, 1], [255, 255, 255])
    np.testing.assert_array_equal(c.rgb[0, 0], draw.DIVERGING[0])  # -2 is the darkest blue
    assert c.rgb[0, 2, 0] > c.rgb[0, 2, 2]  # positive is red


def test_negatives_never_clamped_to_one_colour() -> None:
    c = draw.colorize(np.array([[-1.0, -0.5, -0.1]]))
    assert len({tuple(p) for p in c.rgb[0]}) == 3


def test_sequential_for_non_negative() -> None:
    c = draw.colorize(np.array([[0.0, 1.0, 3.0]]))
    assert not c.signed and (c.vmin, c.vmax) == (0.0, 3.0)
    np.testing.assert_array_equal(c.rgb[0, 0], draw.SEQUENTIAL[0])
    np.testing.assert_array_equal(c.rgb[0, 2], draw.SEQUENTIAL[-1])


def test_sequential_table_brightens_monotonically() -> None:
    luma = draw.SEQUENTIAL.astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luma) > -1.0)


def test_constant_map_does_not_divide_by_zero() -> None:
    c = draw.colorize(np.full((2, 2), 5.0))
    assert c.vmax > c.vmin


def test_encode_png_roundtrip_and_fast_level() -> None:
    px = make_pixels(8, 9)
    data = draw.encode_png(px)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), px)


def test_map_png_size_and_scale() -> None:
    data, _ = draw.map_png(np.zeros((3, 5)), scale=4)
    assert Image.open(io.BytesIO(data)).size == (20, 12)


def test_grid_png_holds_every_map() -> None:
    data = draw.grid_png(np.zeros((3, 4, 6)), ["a", "b", "c"])
    w, h = Image.open(io.BytesIO(data)).size
    assert w >= 2 * 6 and h >= 2 * 4


def test_receptive_field_overlay_marks_padding_and_taps() -> None:
    px = np.zeros((4, 4, 3), np.uint8)
    data = draw.draw_receptive_field(px, (1, 1), (-1, -1, 3, 3), [(-1, -1, True), (0, 0, False)], scale=8)
    img = np.asarray(Image.open(io.BytesIO(data)))
    assert img.shape == (48, 48, 3)
    np.testing.assert_array_equal(img[1, 40], draw.PAD_COLOR)  # padding ring, outside the box
    centre = img[8 + 4, 8 + 4]  # tap (0, 0) at zoomed (12, 12)
    np.testing.assert_array_equal(centre, draw.TAP_COLOR)


def test_coverage_overlay_marks_zero_pixels() -> None:
    counts = np.array([[0, 1], [2, 3]])
    data, c = draw.draw_coverage(np.zeros((2, 2, 3), np.uint8), counts)
    img = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(img[0, 0], draw.ZERO_COVERAGE)
    assert c.vmin == 0 and c.vmax == 3


def test_dense_matrix_drawing_zero_white_tied_same_colour() -> None:
    rows, cols, tied = np.array([0, 1]), np.array([0, 1]), np.array([2, 2])
    img = np.asarray(Image.open(io.BytesIO(draw.draw_dense_matrix((2, 3), rows, cols, tied, 4))))
    np.testing.assert_array_equal(img[0, 0], img[1, 1])
    np.testing.assert_array_equal(img[0, 1], [255, 255, 255])


def test_tied_palette_distinct() -> None:
    pal = draw.tied_palette(9)
    assert len({tuple(p) for p in pal}) == 9


def test_decoded_image_properties() -> None:
    px: NDArray[np.uint8] = np.zeros((3, 7, 3), np.uint8)
    d = DecodedImage(px, (14, 6))
    assert (d.width, d.height, d.size, d.downscaled) == (7, 3, (7, 3), True)


def test_map_png_is_palette_with_exact_colours() -> None:
    values = np.array([[-1.0, 0.0, 0.5]])
    data, c = draw.map_png(values)
    img = Image.open(io.BytesIO(data))
    assert img.mode == "P"
    np.testing.assert_array_equal(np.asarray(img.convert("RGB")), c.rgb)
    np.testing.assert_array_equal(c.rgb[0, 1], [255, 255, 255])


def test_concurrent_decodes(settings: Settings) -> None:
    from concurrent.futures import ThreadPoolExecutor

    blobs = [encode(make_pixels(20, 30, seed)) for seed in range(16)]
    with ThreadPoolExecutor(8) as pool:
        out = list(pool.map(lambda b: decode_upload(b, settings), blobs))
    for seed, d in enumerate(out):
        np.testing.assert_array_equal(d.pixels, make_pixels(20, 30, seed))


# ---------------------------------------------------------------- conversion to 8 bits, band by band

def _reference_rgb8(img: Image.Image) -> NDArray[np.uint8]:
    """The slow, obvious conversion: the whole image at once, samples scaled in float64, as decoding did.

    Any Pillow mode to (H, W, 3) uint8: palette and 16-bit handled, transparency composited on white.
    """
    mode = img.mode
    if mode == "P" or mode == "PA":
        img = img.convert("RGBA" if "transparency" in img.info or mode == "PA" else "RGB")
    elif mode in ("I", "I;16", "I;16B", "I;16L", "I;16N", "F"):
        arr = np.asarray(img, dtype=np.float64)
        peak = float(arr.max(initial=0))
        if mode.startswith("I;16") or (mode == "I" and peak > 255):
            top = 65535.0
        elif mode == "I":
            top = 255.0
        else:
            top = max(peak, 1.0)
        img = Image.fromarray(np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8))
    elif mode == "1":
        img = img.convert("L")
    if "transparency" in img.info and img.mode in ("L", "RGB"):
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "RGBa", "La"):
        rgba = img.convert("RGBA")
        img = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return np.asarray(img.convert("RGB"))


def _sample_images() -> dict[str, Image.Image]:
    """One small image of each mode an upload can decode to, 23 x 17 so bands split rows unevenly."""
    rng = np.random.default_rng(7)
    h, w = 17, 23
    u8 = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
    alpha = u8[..., 3].copy()
    alpha[:3] = 0  # some fully transparent, the rest anything
    alpha[3:6] = 255
    pal = Image.fromarray(u8[..., 0] % 16).convert("P")
    pal.putpalette(rng.integers(0, 256, 48, dtype=np.uint8).tolist())
    pal_t = pal.copy()
    pal_t.info["transparency"] = 3
    gray_t = Image.fromarray(u8[..., 0])
    gray_t.info["transparency"] = int(u8[0, 0, 0])
    rgb_t = Image.fromarray(u8[..., :3])
    rgb_t.info["transparency"] = tuple(int(v) for v in u8[0, 0, :3])
    i32 = rng.integers(-500, 70_000, (h, w)).astype(np.int32)
    return {
        "I;16": Image.fromarray(rng.integers(0, 65536, (h, w), dtype=np.uint16)),
        "I;16B": Image.frombytes("I;16B", (w, h), rng.integers(0, 65536, (h, w)).astype(">u2").tobytes()),
        "I wide": Image.fromarray(i32),
        "I narrow": Image.fromarray(np.clip(i32, -3, 255)),
        "F": Image.fromarray(rng.normal(3.0, 2.0, (h, w)).astype(np.float32)),
        "1": Image.fromarray(u8[..., 0] > 127),
        "L": Image.fromarray(u8[..., 0]),
        "L transparency": gray_t,
        "LA": Image.fromarray(np.stack([u8[..., 0], alpha], axis=-1), "LA"),
        "RGB": Image.fromarray(u8[..., :3]),
        "RGB transparency": rgb_t,
        "RGBA": Image.fromarray(np.dstack([u8[..., :3], alpha]), "RGBA"),
        "P": pal,
        "P transparency": pal_t,
        "PA": Image.merge("PA", (pal, Image.fromarray(alpha))),
        "CMYK": Image.fromarray(u8, "CMYK"),
    }


@pytest.mark.parametrize("band_pixels", [1, 50, 1 << 20])
@pytest.mark.parametrize("name", list(_sample_images()))
def test_banded_conversion_matches_the_whole_image_reference(name: str, band_pixels: int,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(images, "BAND_PIXELS", band_pixels)  # one row, two rows, the whole image
    img = _sample_images()[name]
    out = images._to_array(images._to_8bit(img))
    assert out.shape == (17, 23, 3) and out.dtype == np.uint8 and out.flags.writeable
    np.testing.assert_array_equal(out, _reference_rgb8(img))


def test_gray_modes_stay_one_byte_a_pixel_until_the_end() -> None:
    for name in ("I;16", "I wide", "F", "1", "LA", "L transparency"):
        assert images._to_8bit(_sample_images()[name]).mode == "L", name


def test_eight_bit_l_and_rgb_are_not_copied() -> None:
    for name in ("L", "RGB"):
        img = _sample_images()[name]
        assert images._to_8bit(img) is img


def test_sixteen_bit_downscaled_matches_converting_then_resizing() -> None:
    # Gray is resized as L and expanded after: the same pixels as resizing the RGB copy.
    rng = np.random.default_rng(3)
    values = rng.integers(0, 65536, (90, 130), dtype=np.uint16)
    out = decode_upload(encode(Image.fromarray(values)), Settings(working_side=40))
    ref = Image.fromarray(_reference_rgb8(Image.fromarray(values))).resize(
        (40, 28), Image.Resampling.LANCZOS, reducing_gap=3.0)
    np.testing.assert_array_equal(out.pixels, np.asarray(ref))


@pytest.mark.parametrize("orientation", [2, 3, 4, 5, 6, 7, 8])
def test_exif_orientation_of_a_transparent_png(orientation: int, settings: Settings) -> None:
    from PIL import ImageOps

    img = _sample_images()["RGBA"]
    exif = img.getexif()
    exif[0x0112] = orientation
    out = decode_upload(encode(img, "PNG", exif=exif.tobytes()), settings)
    shown = ImageOps.exif_transpose(Image.open(io.BytesIO(encode(img, "PNG", exif=exif.tobytes()))))
    np.testing.assert_array_equal(out.pixels, _reference_rgb8(shown))
    assert out.original_size == shown.size


def test_sixteen_bit_rgba_png_composited(settings: Settings) -> None:
    # 16-bit RGBA PNGs reach Pillow as 8-bit RGBA; half-transparent black over white is mid grey.
    raw = np.zeros((2, 3, 4), np.uint16)
    raw[..., 3] = 32768
    rows = b"".join(b"\x00" + raw[r].astype(">u2").tobytes() for r in range(2))
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 3, 2, 16, 6, 0, 0, 0))
           + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))
    out = decode_upload(png, settings)
    assert out.pixels.shape == (2, 3, 3) and abs(int(out.pixels[0, 0, 0]) - 127) <= 1


def test_a_flat_map_at_a_huge_value_is_drawn() -> None:
    # color_range widens a flat range by an amount below the ulp of 1e30: no ZeroDivisionError (a 500).
    from app.draw import colorize

    drawn = colorize(np.full((2, 3), 9.9e29, dtype=np.float32))
    assert drawn.index.shape == (2, 3)
