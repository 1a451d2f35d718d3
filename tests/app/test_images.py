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

from app import images
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
    c = images.colorize(np.array([[-2.0, 0.0, 1.0]]))
    assert c.signed and (c.vmin, c.vmax) == (-2.0, 2.0)
    np.testing.assert_array_equal(c.rgb[0, 1], [255, 255, 255])
    np.testing.assert_array_equal(c.rgb[0, 0], images.DIVERGING[0])  # -2 is the darkest blue
    assert c.rgb[0, 2, 0] > c.rgb[0, 2, 2]  # positive is red


def test_negatives_never_clamped_to_one_colour() -> None:
    c = images.colorize(np.array([[-1.0, -0.5, -0.1]]))
    assert len({tuple(p) for p in c.rgb[0]}) == 3


def test_sequential_for_non_negative() -> None:
    c = images.colorize(np.array([[0.0, 1.0, 3.0]]))
    assert not c.signed and (c.vmin, c.vmax) == (0.0, 3.0)
    np.testing.assert_array_equal(c.rgb[0, 0], images.SEQUENTIAL[0])
    np.testing.assert_array_equal(c.rgb[0, 2], images.SEQUENTIAL[-1])


def test_sequential_table_brightens_monotonically() -> None:
    luma = images.SEQUENTIAL.astype(float) @ [0.299, 0.587, 0.114]
    assert np.all(np.diff(luma) > -1.0)


def test_constant_map_does_not_divide_by_zero() -> None:
    c = images.colorize(np.full((2, 2), 5.0))
    assert c.vmax > c.vmin


def test_encode_png_roundtrip_and_fast_level() -> None:
    px = make_pixels(8, 9)
    data = images.encode_png(px)
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(data))), px)


def test_map_png_size_and_scale() -> None:
    data, _ = images.map_png(np.zeros((3, 5)), scale=4)
    assert Image.open(io.BytesIO(data)).size == (20, 12)


def test_grid_png_holds_every_map() -> None:
    data = images.grid_png(np.zeros((3, 4, 6)), ["a", "b", "c"])
    w, h = Image.open(io.BytesIO(data)).size
    assert w >= 2 * 6 and h >= 2 * 4


def test_receptive_field_overlay_marks_padding_and_taps() -> None:
    px = np.zeros((4, 4, 3), np.uint8)
    data = images.draw_receptive_field(px, (1, 1), (-1, -1, 3, 3), [(-1, -1, True), (0, 0, False)], scale=8)
    img = np.asarray(Image.open(io.BytesIO(data)))
    assert img.shape == (48, 48, 3)
    np.testing.assert_array_equal(img[1, 40], images.PAD_COLOR)  # padding ring, outside the box
    centre = img[8 + 4, 8 + 4]  # tap (0, 0) at zoomed (12, 12)
    np.testing.assert_array_equal(centre, images.TAP_COLOR)


def test_coverage_overlay_marks_zero_pixels() -> None:
    counts = np.array([[0, 1], [2, 3]])
    data, c = images.draw_coverage(np.zeros((2, 2, 3), np.uint8), counts)
    img = np.asarray(Image.open(io.BytesIO(data)))
    np.testing.assert_array_equal(img[0, 0], images.ZERO_COVERAGE)
    assert c.vmin == 0 and c.vmax == 3


def test_dense_matrix_drawing_zero_white_tied_same_colour() -> None:
    rows, cols, tied = np.array([0, 1]), np.array([0, 1]), np.array([2, 2])
    img = np.asarray(Image.open(io.BytesIO(images.draw_dense_matrix((2, 3), rows, cols, tied, 4))))
    np.testing.assert_array_equal(img[0, 0], img[1, 1])
    np.testing.assert_array_equal(img[0, 1], [255, 255, 255])


def test_tied_palette_distinct() -> None:
    pal = images.tied_palette(9)
    assert len({tuple(p) for p in pal}) == 9


def test_decoded_image_properties() -> None:
    px: NDArray[np.uint8] = np.zeros((3, 7, 3), np.uint8)
    d = DecodedImage(px, (14, 6))
    assert (d.width, d.height, d.size, d.downscaled) == (7, 3, (7, 3), True)


def test_map_png_is_palette_with_exact_colours() -> None:
    values = np.array([[-1.0, 0.0, 0.5]])
    data, c = images.map_png(values)
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
