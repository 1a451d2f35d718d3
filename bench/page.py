"""Benchmark of the page as a user feels it, in real Chromium, against the bare API in the same run.

On a 1024 x 1024 RGB photo-like JPEG with eight 3x3 kernels (color=rgb, padding 1) it prints

- load → first map: from navigation start until the first feature map has loaded;
- stepper click → every map drawn: a click on the stride's + button (applied at once, with no
  debounce) until every map has loaded at its new size and the page has rendered, median of 10;
- the bare round trip: POST /api/convolve (JSON) from the same page with fetch(), for the same
  stride, right after each click;

and the ratio click / round trip (target: at most 4). Each click raises the stride (2, 3, … 11),
and each reference request uses another bias, so neither is ever answered from the server's
output cache: both pay for one convolution.

    .venv/bin/python bench/page.py             # 10 clicks
    .venv/bin/python bench/page.py --clicks 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT / "bench"))

from api import KERNELS, make_jpeg  # noqa: E402
from live_server import serve_app  # noqa: E402

CHROMIUM = os.environ.get("CONVLENS_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run"]

FIRST_MAP = """() => new Promise((resolve) => {
  const tick = () => {
    const img = document.querySelector('#maps img.fmap');
    if (img && img.complete && img.naturalWidth > 0) resolve(performance.now());
    else requestAnimationFrame(tick);
  };
  tick();
})"""

CLICK = """([expected]) => new Promise((resolve) => {
  const before = Number(document.body.dataset.rendered || 0);
  const button = document.querySelector("button.step[data-target='stride'][data-delta='1']");
  const t0 = performance.now();
  button.click();
  const tick = () => {
    const maps = [...document.querySelectorAll('#maps img.fmap')];
    const done = Number(document.body.dataset.rendered || 0) > before && maps.length === 8
      && maps.every((i) => i.complete && i.naturalWidth === expected && parseFloat(i.style.width) > 0);
    if (done) resolve(performance.now() - t0);
    else requestAnimationFrame(tick);
  };
  tick();
})"""

REFERENCE = """async ([body]) => {
  const t0 = performance.now();
  const res = await fetch('/api/convolve', {
    method: 'POST', body: new URLSearchParams(body), headers: { Accept: 'application/json' },
  });
  await res.json();
  return performance.now() - t0;
}"""


def out_size(n: int, k: int, s: int, p: int) -> int:
    return (n + 2 * p - (k - 1) - 1) // s + 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clicks", type=int, default=10)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp, serve_app(Path(tmp) / "uvicorn.log") as base:
        files = {"image": ("photo.jpg", make_jpeg(), "image/jpeg")}
        info = httpx.post(f"{base}/api/images", files=files).json()
        image_id, side = info["id"], info["width"]
        layer = {"kernels": KERNELS, "kernel_size": "3", "padding": "1", "color": "rgb"}
        query = "&".join(f"{k}={v}" for k, v in {"image_id": image_id, **layer, "stride": "1"}.items())
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{base}/?{query}")
            first_map = page.evaluate(FIRST_MAP)
            page.wait_for_function(
                "() => document.body.dataset.rendered && !document.body.hasAttribute('data-busy')")
            clicks, refs = [], []
            for i in range(args.clicks):
                stride = i + 2
                expected = out_size(side, 3, stride, 1)
                clicks.append(page.evaluate(CLICK, [expected]))
                page.wait_for_function("() => !document.body.hasAttribute('data-busy')")
                body = {"image_id": image_id, **layer, "stride": str(stride),
                        "bias": f"{0.001 * (i + 1):.3f}"}
                refs.append(page.evaluate(REFERENCE, [body]))
            browser.close()
    click, ref = statistics.median(clicks), statistics.median(refs)
    print(f"1024x1024 RGB, 8 kernels 3x3, {args.clicks} stride clicks (2..{args.clicks + 1})")
    print(f"load -> first map            {first_map:8.1f} ms")
    print(f"stepper click -> maps drawn  {click:8.1f} ms median  "
          f"(min {min(clicks):.1f}, max {max(clicks):.1f})")
    print(f"bare POST /api/convolve JSON {ref:8.1f} ms median  (min {min(refs):.1f}, max {max(refs):.1f})")
    print(f"ratio click / round trip     {click / ref:8.2f}x  (target <= 4x)")
    if errors:
        print("page errors:", *errors, sep="\n  ")


if __name__ == "__main__":
    main()
