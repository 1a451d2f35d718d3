"""Generate the built-in sample images in static/samples/ (run once; the outputs are committed).

    python scripts/make_samples.py [--astronaut PATH]

- astronaut.png: NASA photo of Eileen Collins (public domain), as shipped in scikit-image's
  bundled data (skimage/data/astronaut.png), resized to 320x320. Pass its path with
  --astronaut, or have scikit-image importable (it is not a dependency of ConvLens:
  `pip download --no-deps scikit-image` and unzip the wheel is enough).
- checkerboard.png: a synthetic 256x256 checkerboard with text, drawn here (CC0).
- tiny.png: a synthetic 12x12 image (an edge, a diagonal and a dot) for the dense-matrix view (CC0).
"""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

OUT = Path(__file__).resolve().parent.parent / "static" / "samples"


def find_astronaut(path: str | None) -> Path:
    """The astronaut PNG from --astronaut or from an importable scikit-image."""
    if path:
        return Path(path)
    spec = importlib.util.find_spec("skimage")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("astronaut: pass --astronaut PATH (skimage/data/astronaut.png from scikit-image)")
    return Path(next(iter(spec.submodule_search_locations))) / "data" / "astronaut.png"


def astronaut(path: Path) -> Image.Image:
    """The public-domain NASA photo, 320x320."""
    return Image.open(path).convert("RGB").resize((320, 320), Image.Resampling.LANCZOS)


def checkerboard() -> Image.Image:
    """A 256x256 checkerboard (32-pixel squares) with a white band of black text."""
    yy, xx = np.mgrid[0:256, 0:256]
    board = (((yy // 32) + (xx // 32)) % 2 * 200 + 28).astype(np.uint8)
    im = Image.fromarray(board, "L").convert("RGB")
    draw = ImageDraw.Draw(im)
    draw.rectangle((16, 100, 240, 156), fill=(255, 255, 255))
    font = ImageFont.load_default(size=34)
    draw.text((128, 128), "ConvLens", fill=(0, 0, 0), font=font, anchor="mm")
    draw.ellipse((180, 180, 236, 236), fill=(220, 40, 40))
    return im


def tiny() -> Image.Image:
    """A 12x12 gray image: a vertical edge, a diagonal line and one bright dot."""
    a = np.full((12, 12), 40, dtype=np.uint8)
    a[:, 6:] = 160  # vertical edge
    for i in range(12):
        a[i, i] = 255 if i < 6 else 0  # diagonal
    a[2, 9] = 255  # a dot
    return Image.fromarray(a, "L")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--astronaut", help="path to scikit-image's data/astronaut.png")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    images = {
        "astronaut.png": astronaut(find_astronaut(args.astronaut)),
        "checkerboard.png": checkerboard(),
        "tiny.png": tiny(),
    }
    for name, im in images.items():
        target = OUT / name
        im.save(target, "PNG", optimize=True)
        print(f"{target}: {im.size[0]}x{im.size[1]}, {target.stat().st_size:,} bytes")


if __name__ == "__main__":
    main()
