"""Benchmark of the REST API over real HTTP against the bare work, measured in the same run.

For a 1024 x 1024 RGB JPEG and eight 3x3 kernels, then eight 7x7 kernels (color=rgb, padding k//2),
it prints the p50 / p95 latency of

- POST /api/convolve (JSON) with image_id: one convolution plus statistics, and
- the same JSON request followed by fetching all eight feature-map PNGs it links (fetched in
  parallel, as a browser does), end to end,

and, in this process, the reference times:

- engine: conv2d alone on the decoded image, and
- bare work: decode the JPEG + conv2d + one Pillow PNG encode per map at Pillow's default settings,

with the ratios JSON / engine and (JSON + PNGs) / bare work. Every HTTP request uses a slightly
different bias, so the server's output cache never answers a JSON request from an earlier one; the
PNG requests of one round do hit it, which is the point (the maps are not computed twice).

    .venv/bin/python bench/api.py              # 15 rounds per case
    .venv/bin/python bench/api.py --rounds 5 --warmup 0   # also shows a fresh process's first requests
"""

from __future__ import annotations

import argparse
import io
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.images import decode_upload, to_input  # noqa: E402
from app.settings import Settings  # noqa: E402
from engine import conv2d  # noqa: E402
from engine.kernels import kernel_bank  # noqa: E402

KERNELS = "box,gaussian,sobel_x,sobel_y,laplacian,sharpen,emboss,identity"


def make_jpeg(side: int = 1024) -> bytes:
    """A photo-like RGB JPEG: smooth gradients, a few shapes, and noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    rgb = np.stack([200 * x, 180 * y, 120 + 100 * np.sin(8 * x + 5 * y)], axis=-1)
    rgb[(x - 0.5) ** 2 + (y - 0.4) ** 2 < 0.04] = (240, 220, 90)
    rgb += rng.normal(0, 12, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def pct(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), in milliseconds."""
    return float(np.percentile(np.array(values) * 1000, q))


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server() -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "app.main:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        cwd=ROOT, env={**os.environ},
    )
    base = f"http://127.0.0.1:{port}"
    for _ in range(400):
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return proc, base
        except httpx.HTTPError:
            time.sleep(0.05)
    proc.kill()
    raise RuntimeError("uvicorn did not start")


def bare_work(jpeg: bytes, k: int, settings: Settings) -> tuple[float, float]:
    """(engine only, decode + engine + one default PNG encode per map), seconds, one run."""
    t0 = time.perf_counter()
    image = decode_upload(jpeg, settings)
    x = to_input(image.pixels, "rgb")
    weight = kernel_bank(KERNELS.split(","), k, 3).astype(np.float32)
    bias = np.full(len(weight), 1e-7, np.float32)  # the same work as the HTTP requests, which vary the bias
    t1 = time.perf_counter()
    y = conv2d(x, weight, bias, padding=k // 2)
    t2 = time.perf_counter()
    for m in y:
        lo, hi = float(m.min()), float(m.max())
        u8 = ((m - lo) * (255 / ((hi - lo) or 1))).astype(np.uint8)
        Image.fromarray(u8).save(io.BytesIO(), format="PNG")  # Pillow's default zlib level
    t3 = time.perf_counter()
    return t2 - t1, (t1 - t0) + (t2 - t1) + (t3 - t2)


def run_case(base: str, image_id: str, jpeg: bytes, k: int, rounds: int, warmup: int,
             settings: Settings) -> dict:
    client = httpx.Client(base_url=base, timeout=120)
    fetchers = [httpx.Client(base_url=base, timeout=120) for _ in range(8)]
    pool = ThreadPoolExecutor(8)
    json_times: list[float] = []
    full_times: list[float] = []
    server_engine: list[float] = []  # the engine's time inside the server, from Server-Timing
    counter = iter(range(1, 10**9))

    def convolve() -> dict:
        r = client.post("/api/convolve", data={
            "image_id": image_id, "kernels": KERNELS, "kernel_size": str(k), "padding": str(k // 2),
            "color": "rgb", "bias": repr(1e-7 * next(counter)),
        })
        r.raise_for_status()
        timing = re.search(r"engine;dur=([\d.]+)", r.headers.get("Server-Timing", ""))
        if timing:
            server_engine.append(float(timing.group(1)) / 1000)
        return dict(r.json())

    def fetch(i_url: tuple[int, str]) -> int:
        r = fetchers[i_url[0]].get(i_url[1])
        r.raise_for_status()
        return len(r.content)

    # Warm up until the server's output cache has filled and started to evict: a fresh process first
    # touches new memory for every cached output, which in a VM costs page faults (measured here: the
    # first ~8 convolutions 2-3x slower); a long-running server is past that.
    for _ in range(warmup):
        convolve()
    for _ in range(2):
        bare_work(jpeg, k, settings)
    engine, bare = [], []
    # Interleaved, so a busy machine slows the reference and the HTTP runs alike.
    for _ in range(rounds):
        e, b = bare_work(jpeg, k, settings)
        engine.append(e)
        bare.append(b)
        json_times.append(timed(convolve))
        t0 = time.perf_counter()
        body = convolve()
        list(pool.map(fetch, enumerate(m["png"] for m in body["maps"])))
        full_times.append(time.perf_counter() - t0)
    pool.shutdown()
    client.close()
    for f in fetchers:
        f.close()
    return {"json": json_times, "full": full_times, "engine": engine, "bare": bare,
            "server_engine": server_engine[warmup:]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=12, help="JSON requests before timing")
    args = parser.parse_args()
    settings = Settings()
    jpeg = make_jpeg()
    proc, base = start_server()
    try:
        r = httpx.post(f"{base}/api/images", files={"image": ("photo.jpg", jpeg, "image/jpeg")}, timeout=60)
        r.raise_for_status()
        image_id = r.json()["id"]
        print(f"1024x1024 RGB JPEG ({len(jpeg) / 1e6:.2f} MB), eight kernels, color=rgb, padding k//2; "
              f"{args.warmup} warm-up requests, {args.rounds} rounds, {os.cpu_count()} CPUs; times in ms")
        header = (f"{'case':<10} {'engine p50':>10} {'bare p50':>9} {'JSON p50':>9} {'JSON p95':>9} "
                  f"{'+PNGs p50':>10} {'+PNGs p95':>10} {'JSON/engine':>12} {'+PNGs/bare':>11} "
                  f"{'srv engine p50':>15} {'JSON/srv engine':>16}")
        print(header)
        for k in (3, 7):
            t = run_case(base, image_id, jpeg, k, args.rounds, args.warmup, settings)
            e50, b50 = statistics.median(t["engine"]) * 1000, statistics.median(t["bare"]) * 1000
            j50, j95 = pct(t["json"], 50), pct(t["json"], 95)
            f50, f95 = pct(t["full"], 50), pct(t["full"], 95)
            s50 = statistics.median(t["server_engine"]) * 1000
            print(f"{'8 x ' + str(k) + 'x' + str(k):<10} {e50:>10.1f} {b50:>9.1f} {j50:>9.1f} {j95:>9.1f} "
                  f"{f50:>10.1f} {f95:>10.1f} {j50 / e50:>11.2f}x {f50 / b50:>10.2f}x "
                  f"{s50:>15.1f} {j50 / s50:>15.2f}x")
        print("targets: JSON/engine <= 1.5x, (JSON + all PNGs)/bare work <= 1.5x")
        print("srv engine: conv2d's time inside the server (Server-Timing header); JSON/srv engine is the "
              "HTTP + JSON overhead on top of it")
    finally:
        proc.terminate()
        proc.wait(timeout=10)


if __name__ == "__main__":
    main()
