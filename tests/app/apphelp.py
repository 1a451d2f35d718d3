"""Helpers shared by the API tests: deterministic pictures and their encodings."""

from __future__ import annotations

import io

import numpy as np
from numpy.typing import NDArray
from PIL import Image


def make_pixels(height: int = 12, width: int = 16, seed: int = 0) -> NDArray[np.uint8]:
    """A deterministic RGB test picture (H, W, 3): gradients plus noise."""
    rng = np.random.default_rng(seed)
    rows = np.linspace(0, 200, height)[:, None]
    cols = np.linspace(0, 255, width)[None, :]
    base = np.stack([rows + 0 * cols, cols + 0 * rows, (rows + cols) / 2], axis=-1)
    return np.clip(base + rng.integers(0, 40, (height, width, 3)), 0, 255).astype(np.uint8)


def encode(pixels: NDArray[np.uint8] | Image.Image, fmt: str = "PNG", **kw: object) -> bytes:
    """Bytes of an image file in the given format."""
    img = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def gray(pixels: NDArray[np.uint8]) -> NDArray[np.float32]:
    """The engine input the app builds for color=gray: (1, H, W) BT.601 luma in [0, 1]."""
    luma = np.array([0.299, 0.587, 0.114], dtype=np.float32) / np.float32(255)
    return (pixels.astype(np.float32) @ luma)[None]
