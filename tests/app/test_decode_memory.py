"""app/images.py's decode_upload keeps its peak memory near the pixels it must hold.

Each case decodes one large upload in a fresh Python process and reads how far its peak resident
memory rose above the resident size just before decoding, so Pillow's own buffers count as much as
NumPy's. The peak is /proc/self/status's VmHWM, reset to the current size first where the kernel
allows (/proc/self/clear_refs); getrusage's ru_maxrss would not do, since Linux carries it over
exec from the parent, here the whole pytest process.

The budgets, in bytes per pixel of the upload (N pixels; the working image is 3 bytes a pixel):

- 16-bit gray, working image at full size: 6 (twice the working image). What must coexist is the
  16-bit image (2) and its 8-bit gray copy (1), then the gray copy and the working image (1 + 3);
  the rest is bands of BAND_PIXELS and allocator slack. Measured: 4.1. Before conversion went band
  by band in integers it was 26 (float64 temporaries): 895 MiB for this 85 kB file.
- 16-bit gray, downscaled to the default working side: 4. The 16-bit image and its gray copy (3);
  the working image itself is small. Measured: 3.1, where it was 26.
- Gray with alpha, palette with transparency, RGBA, at full size: 10. Pillow holds LA and RGBA at 4
  bytes a pixel, and the composited RGB at 4 more. Measured: 5.4 (LA), 7.2 (P), 8.4 (RGBA), where
  they were 17 to 20.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.typing import NDArray
from PIL import Image

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="reads the peak resident size from Linux's /proc/self/status")

ROOT = Path(__file__).resolve().parents[2]

CHILD = """
import json, sys
from app.images import decode_upload
from app.settings import Settings

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024  # kB

data = open(sys.argv[1], "rb").read()
side = int(sys.argv[2])
settings = Settings(max_side=max(side, Settings().max_side))
try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # the peak starts again from here (else it is an upper bound: still fine)
except OSError:
    pass
before = status("VmRSS")
out = decode_upload(data, settings, side)
print(json.dumps({"growth": status("VmHWM") - before, "shape": list(out.pixels.shape)}))
"""


def _peak_growth(path: Path, side: int) -> tuple[int, list[int]]:
    """Peak resident bytes added by decoding the file in a new process, and the working image's shape."""
    proc = subprocess.run([sys.executable, "-c", CHILD, str(path), str(side)], cwd=ROOT,
                          capture_output=True, text=True, timeout=120, check=True)
    result = json.loads(proc.stdout)
    return int(result["growth"]), list(result["shape"])


def _ramp(side: int) -> NDArray[np.uint8]:
    """(side, side) 0..255 left to right."""
    return np.tile((np.arange(side) * 255 // (side - 1)).astype(np.uint8), (side, 1))


def _save(tmp_path: Path, name: str, img: Image.Image, **kw: object) -> Path:
    path = tmp_path / f"{name}.png"
    img.save(path, **kw)
    return path


@pytest.fixture(scope="module")
def gray16(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 6000 x 6000 16-bit gray PNG (a ramp, so the file is ~85 kB)."""
    side = 6000
    ramp = np.tile((np.arange(side, dtype=np.uint32) * 65535 // (side - 1)).astype(np.uint16), (side, 1))
    img = Image.fromarray(ramp)
    assert img.mode == "I;16"
    return _save(tmp_path_factory.mktemp("memory"), "gray16", img)


def test_sixteen_bit_gray_at_full_size_peaks_under_twice_the_working_image(gray16: Path) -> None:
    growth, shape = _peak_growth(gray16, 6000)
    working = shape[0] * shape[1] * shape[2]
    assert shape == [6000, 6000, 3]
    assert growth < 2 * working, f"peak grew by {growth / 2**20:.0f} MiB, working image {working / 2**20:.0f}"


def test_sixteen_bit_gray_downscaled_peaks_under_four_bytes_a_pixel(gray16: Path) -> None:
    growth, shape = _peak_growth(gray16, 1024)
    assert shape == [1024, 1024, 3]
    assert growth < 4 * 6000 * 6000, f"peak grew by {growth / 2**20:.0f} MiB"


@pytest.mark.parametrize("mode", ["LA", "P", "RGBA"])
def test_transparent_images_peak_under_ten_bytes_a_pixel(mode: str, tmp_path: Path) -> None:
    side = 4000
    ramp = _ramp(side)
    if mode == "LA":
        img = Image.fromarray(np.stack([ramp, ramp.T], axis=-1), "LA")
        path = _save(tmp_path, mode, img)
    elif mode == "P":
        path = _save(tmp_path, mode, Image.fromarray(ramp).convert("P"), transparency=0)
    else:
        img = Image.fromarray(np.stack([ramp, ramp.T, ramp, ramp.T], axis=-1), "RGBA")
        path = _save(tmp_path, mode, img)
    growth, shape = _peak_growth(path, side)
    assert shape == [side, side, 3]
    assert growth < 10 * side * side, f"peak grew by {growth / 2**20:.0f} MiB"
