"""Load, soak and overload of the real server (python -m app.serve) on 127.0.0.1, with 1 and 2 workers.

Each phase starts a fresh server on a free port with its own image store directory, uploads two
real photos (the astronaut sample and a 1024² photo-like JPEG), and drives it from this process with
a bounded number of concurrent clients (closed loop: each client sends its next request when the
last one answered), over a mix of endpoints whose parameters vary so the output cache does not
answer everything. It prints throughput, p50/p95/p99 latency, statuses by code, peak RSS per worker
process, and /healthz latency measured by a separate prober while the load runs.

Phases (all bounded in requests and time; traffic goes to 127.0.0.1 only):
- load, 1 worker and 2 workers: the same mix, the ratio of their throughputs (target >= 1.7x);
- image_id reuse with 2 workers: 200 requests on new connections naming an uploaded id (target 0 x 404);
- restart: the same id answers after the server is stopped and started on the same store;
- soak: 5,000 requests on 1 worker, RSS after warm-up against the end (target growth < 10 %);
- overload: 64 heavy requests at once on 1 worker: 503s answered within 100 ms, /healthz p99
  < 100 ms, peak RSS < 1.5 GB.

Each worker computes one request at a time with one engine thread (CONVLENS_COMPUTE_WORKERS=1,
CONVLENS_THREADS=1), so one worker process is one core's worth of compute and two workers can use
this machine's two cores.

    .venv/bin/python bench/load.py               # every phase (about 9 minutes on 2 cores)
    .venv/bin/python bench/load.py --quick       # fewer requests
    .venv/bin/python bench/load.py --only load   # some phases (reference, load, reuse, soak, overload)
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import httpx
import numpy as np
import uvloop
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from live_server import free_port  # noqa: E402

sys.path.insert(0, str(ROOT))
from app.memory import IDLE_SECONDS  # noqa: E402
from app.settings import Settings  # noqa: E402

SAMPLE = ROOT / "static" / "samples" / "astronaut.png"
KERNELS = ["box", "gaussian", "sobel_x", "sobel_y", "laplacian", "sharpen", "emboss", "identity"]


def photo_jpeg(side: int = 1024) -> bytes:
    """A photo-like RGB JPEG: smooth gradients, shapes and noise."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side] / side
    rgb = np.stack([200 * x, 180 * y, 120 + 100 * np.sin(8 * x + 5 * y)], axis=-1)
    rgb += rng.normal(0, 12, rgb.shape)
    buf = io.BytesIO()
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=90)
    return buf.getvalue()


@dataclass
class Server:
    base: str
    proc: subprocess.Popen[bytes]

    def pids(self) -> list[int]:
        """The worker processes (the server itself with one worker, its children with several)."""
        children = [int(p) for p in _children(self.proc.pid) if _is_worker(int(p))]
        return children or [self.proc.pid]

    def rss(self) -> dict[int, tuple[int, int]]:
        """Per worker: (VmRSS, VmHWM) in bytes."""
        out = {}
        for pid in self.pids():
            try:
                status = Path(f"/proc/{pid}/status").read_text()
            except OSError:
                continue
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            out[pid] = (int(fields["VmRSS"].split()[0]) * 1024, int(fields["VmHWM"].split()[0]) * 1024)
        return out


def _is_worker(pid: int) -> bool:
    """A uvicorn worker, not multiprocessing's resource tracker."""
    try:
        return b"resource_tracker" not in Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False


def _children(pid: int) -> list[str]:
    try:
        return Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        return []


@contextmanager
def serve(workers: int, store: Path, log: Path, queue: int = 32) -> Iterator[Server]:
    port = free_port()
    env = {**os.environ, "CONVLENS_STORE_DIR": str(store), "CONVLENS_COMPUTE_WORKERS": "1",
           "CONVLENS_THREADS": "1", "CONVLENS_QUEUE_DEPTH": str(queue), "OPENBLAS_NUM_THREADS": "1",
           "OMP_NUM_THREADS": "1"}
    with open(log, "ab") as out:
        command = [sys.executable, "-m", "app.serve", "--port", str(port), "--workers", str(workers)]
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    server = Server(f"http://127.0.0.1:{port}", proc)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{server.base}/healthz", timeout=1).status_code == 200 and \
                        len(server.pids()) >= (workers if workers > 1 else 1):
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the server did not start; see {log}")
            time.sleep(0.2)
        time.sleep(1 if workers > 1 else 0)  # every worker listening
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upload(base: str, data: bytes, name: str) -> str:
    r = httpx.post(f"{base}/api/images", files={"image": (name, data, "image/png")}, timeout=60)
    r.raise_for_status()
    return str(r.json()["id"])


def mix(ids: list[str], rng: random.Random) -> tuple[str, str, dict[str, object]]:
    """One request of the mix: a method, a path and its parameters, varied so caches miss often."""
    image_id = rng.choice(ids)
    kernels = ",".join(rng.sample(KERNELS, rng.choice([2, 4, 8])))
    layer = {"image_id": image_id, "kernels": kernels, "bias": rng.uniform(-1, 1),  # every output new
             "padding": 1, "color": rng.choice(["gray", "rgb"])}
    kind = rng.random()
    if kind < 0.45:
        return "POST", "/api/convolve", layer
    if kind < 0.65:
        return "GET", "/api/feature-maps.png", {**layer, "index": 0}
    if kind < 0.75:
        return "POST", "/api/receptive-field", {**layer, "row": rng.randrange(200), "col": rng.randrange(200)}
    if kind < 0.85:
        return "POST", "/api/weight-usage", layer
    if kind < 0.92:
        return "POST", "/api/gradient", {**layer, "kernels": "sobel_x", "weight": "0,0,1,1"}
    return "POST", "/api/dense-matrix", {**layer, "kernels": "box", "crop": "0,0,16,16"}


@dataclass
class Run:
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[int] = field(default_factory=Counter)
    seconds: float = 0.0

    def report(self, name: str) -> str:
        lat = sorted(self.latencies) or [0.0]

        def q(p: float) -> float:
            return lat[min(len(lat) - 1, int(p * len(lat)))] * 1000

        n = len(self.latencies)
        codes = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        return (f"{name:<24} {n:6d} req {n / self.seconds:7.1f} req/s  p50 {q(0.5):7.1f}  "
                f"p95 {q(0.95):7.1f}  p99 {q(0.99):7.1f} ms  [{codes}]")


def request_bytes(host: str, method: str, path: str, params: dict[str, object]) -> bytes:
    """One HTTP/1.1 request, written out whole before it is timed; the server closes after answering."""
    if method == "GET":
        query = f"?{urlencode({k: str(v) for k, v in params.items()})}" if params else ""
        target, body, kind = f"{path}{query}", b"", ""
    else:
        target, body = path, json.dumps(params).encode()
        kind = f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
    return f"{method} {target} HTTP/1.1\r\nHost: {host}\r\n{kind}Connection: close\r\n\r\n".encode() + body


class _Answer(asyncio.Protocol):
    """Writes one request and waits for the server to close the connection, keeping only the first
    bytes of the answer (its status line): a streams pair would copy every answer into a buffer."""

    def __init__(self, request: bytes, done: asyncio.Future[bytes]) -> None:
        self.request, self.done, self.head = request, done, b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        transport.write(self.request)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        if len(self.head) < 16:
            self.head += data[:16]

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(self.head)


async def send(host: str, port: int, request: bytes) -> int:
    """Send a request on a new connection and read the answer to its end (the server closes the
    connection: Connection: close); its status code."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[bytes] = loop.create_future()
    transport, _ = await loop.create_connection(lambda: _Answer(request, done), host, port)
    try:
        head = await done
    finally:
        transport.close()
    return int(head.split(b" ", 2)[1])


async def closed_loop(base: str, ids: list[str], clients: int, requests: int, seed: int = 0) -> Run:
    """`clients` loops, each sending its next request of the mix when the last one answered.

    The requests are plain bytes on a new connection each, as from many users (the kernel then hands
    connections to every worker process; with keep-alive the first worker to accept would keep them
    all). The loops run on uvloop, as the server does, and `send` keeps only an answer's status line.
    A client that cheap (about 0.27 ms of CPU a request with its /healthz prober, where it took
    0.7-0.9 ms on asyncio's own loop with asyncio streams and an httpx prober, and httpx alone
    2.4 ms) leaves the machine's cores to the server, which is what is measured: with 2 workers,
    every millisecond the client spends is taken from them.
    """
    run = Run()
    left = requests
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    start = time.perf_counter()

    async def client(k: int) -> None:
        nonlocal left
        rng = random.Random(seed * 1000 + k)
        while left > 0:
            left -= 1
            request = request_bytes(url.netloc, *mix(ids, rng))
            t0 = time.perf_counter()
            status = await send(host, port, request)
            run.latencies.append(time.perf_counter() - t0)
            run.statuses[status] += 1

    await asyncio.gather(*(client(k) for k in range(clients)))
    run.seconds = time.perf_counter() - start
    return run


async def probe_health(base: str, stop: asyncio.Event, every: float = 0.05) -> list[float]:
    """/healthz latencies, sampled while the load runs, with the same cheap client as the load (httpx
    took 2.4 ms of CPU a probe, a third of the client's CPU, from the cores the server shares)."""
    out: list[float] = []
    url = urlsplit(base)
    host, port = url.hostname or "127.0.0.1", url.port or 80
    request = request_bytes(url.netloc, "GET", "/healthz", {})
    while not stop.is_set():
        t0 = time.perf_counter()
        await send(host, port, request)
        out.append(time.perf_counter() - t0)
        await asyncio.sleep(every)
    return out


async def load_with_probe(base: str, ids: list[str], clients: int, requests: int) -> tuple[Run, list[float]]:
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_health(base, stop))
    run = await closed_loop(base, ids, clients, requests)
    stop.set()
    return run, await prober


def pct(values: list[float], p: float) -> float:
    v = sorted(values) or [0.0]
    return v[min(len(v) - 1, int(p * len(v)))] * 1000


def load_run(tmp: Path, photos: list[tuple[bytes, str]], workers: int, requests: int, name: str) -> float:
    """One closed-loop run of the mix on a fresh server, 4 clients per worker; its 200s per second."""
    with serve(workers, tmp / f"store-load-{workers}", tmp / "server.log") as server:
        ids = [upload(server.base, data, name) for data, name in photos]
        uvloop.run(closed_loop(server.base, ids, 4 * workers, 40 * workers))  # warm-up: every worker
        run, health = uvloop.run(load_with_probe(server.base, ids, 4 * workers, requests))
        rss = ", ".join(f"{hwm / 2**20:.0f} MiB" for _, hwm in server.rss().values())
        print(run.report(name) + f"  healthz p99 {pct(health, 0.99):.1f} ms  peak RSS per worker: {rss}")
        return run.statuses[200] / run.seconds  # answers, not refusals


def split_run(tmp: Path, photos: list[tuple[bytes, str]], requests: int) -> float:
    """Two one-worker servers on two ports, 4 clients each: what a perfect balancer would give, since
    neither is ever idle while the other queues."""
    store = tmp / "store-split"
    with serve(1, store, tmp / "server.log") as a, serve(1, store, tmp / "server.log") as b:
        ids = [upload(a.base, data, name) for data, name in photos]
        for server in (a, b):
            uvloop.run(closed_loop(server.base, ids, 4, 40))

        async def both() -> list[Run]:
            return list(await asyncio.gather(*(closed_loop(s.base, ids, 4, requests // 2, seed=k)
                                               for k, s in enumerate((a, b)))))

        t0 = time.perf_counter()
        runs = uvloop.run(both())
        return sum(r.statuses[200] for r in runs) / (time.perf_counter() - t0)


def phase_load(tmp: Path, photos: list[tuple[bytes, str]], requests: int, rounds: int = 5) -> None:
    """1 worker, 2 workers and the perfect split, in turn, `rounds` times: the machine's speed drifts
    by 10-20 % from one minute to the next (rounds of one run measured 1.59-1.77x), so each ratio
    is of medians over 5 interleaved rounds."""
    rates: dict[str, list[float]] = {"1": [], "2": [], "split": []}
    for k in range(rounds):
        rates["1"].append(load_run(tmp, photos, 1, requests, f"load {k + 1}, 1 worker"))
        rates["2"].append(load_run(tmp, photos, 2, requests, f"load {k + 1}, 2 workers"))
        rates["split"].append(split_run(tmp, photos, requests))
        print(f"load {k + 1}, two one-worker servers, 4 clients each: {rates['split'][-1]:.1f} req/s")
    one, two, split = (statistics.median(rates[key]) for key in ("1", "2", "split"))
    print(f"throughput (200s per second, medians of {rounds}): 1 worker {one:.1f}, 2 workers {two:.1f}, "
          f"two one-worker servers {split:.1f}")
    print(f"2 workers / 1 worker: {two / one:.2f}x (target >= 1.7x); a perfect balancer: {split / one:.2f}x")


# The same mix through the app in this process, called as ASGI with no server, no sockets and no
# HTTP parsing: what the machine itself gives for this work with one process, and with two at once.
REFERENCE = """
import asyncio, json, sys, random, time
from urllib.parse import urlencode
sys.path.insert(0, {root!r})
sys.path.append({bench!r})  # after the root: bench/engine.py is not the engine
from app.main import create_app
from app.settings import Settings
from load import mix

app = create_app(Settings.from_env())

async def call(method, path, body=b"", query="", kind=b"application/json"):
    scope = {{"type": "http", "asgi": {{"version": "3.0"}}, "http_version": "1.1", "method": method,
             "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": query.encode(),
             "root_path": "", "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80),
             "headers": [(b"host", b"bench"), (b"content-type", kind),
                         (b"content-length", str(len(body)).encode())]}}
    sent, answer = [], {{}}
    async def receive():
        if not sent:
            sent.append(1)
            return {{"type": "http.request", "body": body, "more_body": False}}
        await asyncio.Event().wait()
    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
        elif message["type"] == "http.response.body":
            answer.setdefault("body", []).append(message.get("body", b""))
    await app(scope, receive, send)
    return answer["status"], b"".join(answer["body"])

async def upload(path, name):
    data = open(path, "rb").read()
    body = (b"--b\\r\\nContent-Disposition: form-data; name=\\"image\\"; filename=\\"" + name.encode()
            + b"\\"\\r\\nContent-Type: image/png\\r\\n\\r\\n" + data + b"\\r\\n--b--\\r\\n")
    status, out = await call("POST", "/api/images", body, kind=b"multipart/form-data; boundary=b")
    return json.loads(out)["id"]

async def one(ids, rng):
    method, path, params = mix(ids, rng)
    if method == "GET":
        return await call(method, path, query=urlencode({{k: str(v) for k, v in params.items()}}))
    return await call(method, path, json.dumps(params).encode())

async def main():
    ids = [await upload(p, n) for p, n in {photos!r}]
    rng = random.Random(int(sys.argv[1]))
    for _ in range(40):
        await one(ids, rng)
    t0 = time.perf_counter()
    for _ in range(int(sys.argv[2])):
        status, _ = await one(ids, rng)
        assert status == 200, status
    print(time.perf_counter() - t0)

asyncio.run(main())
"""


def phase_reference(tmp: Path, photos: list[tuple[bytes, str]], requests: int) -> float:
    """Throughput of the mix through the app in-process, one request at a time, in 1 process and in 2
    at once: the ratio is what this machine gives two processes for this work (they share its memory
    bandwidth and caches), the bound for the servers' ratio."""
    files = []
    for data, name in photos:
        path = tmp / name
        path.write_bytes(data)
        files.append((str(path), name))
    script = REFERENCE.format(root=str(ROOT), bench=str(ROOT / "bench"), photos=files)
    env = {**os.environ, "CONVLENS_STORE_DIR": str(tmp / "store-reference"), "CONVLENS_COMPUTE_WORKERS": "1",
           "CONVLENS_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    rates = {}
    for processes in (1, 2):
        procs = [subprocess.Popen([sys.executable, "-c", script, str(k), str(requests)], env=env,
                                  stdout=subprocess.PIPE, text=True) for k in range(processes)]
        seconds = [float(p.communicate()[0]) for p in procs]
        rates[processes] = processes * requests / max(seconds)
        print(f"in-process app, {processes} process(es) at once: {rates[processes]:6.1f} req/s")
    print(f"in-process app, 2 processes / 1: {rates[2] / rates[1]:.2f}x (this machine's bound for the mix)")
    return rates[2] / rates[1]


def phase_reuse_and_restart(tmp: Path, photos: list[tuple[bytes, str]]) -> None:
    store = tmp / "store-reuse"
    with serve(2, store, tmp / "server.log") as server:
        image_id = upload(server.base, *photos[1])
        statuses: Counter[int] = Counter()
        for k in range(200):
            with httpx.Client(base_url=server.base, timeout=30) as fresh:  # a new connection each time
                r = fresh.post("/api/receptive-field", json={"image_id": image_id, "row": k, "col": k})
                statuses[r.status_code] += 1
        print(f"image_id reuse, 2 workers, 200 new connections: {dict(statuses)} (target 0 x 404)")
    with serve(1, store, tmp / "server.log") as server:
        r = httpx.post(f"{server.base}/api/convolve", json={"image_id": image_id}, timeout=30)
        print(f"image_id after a restart on the same store: {r.status_code} (target 200)")


def cache_fill(base: str) -> float:
    """How full the server's output cache is, 0..1, from /metrics and its setting."""
    text = httpx.get(f"{base}/metrics", timeout=10).text
    held = float(next(line.split()[1] for line in text.splitlines()
                      if line.startswith("convlens_output_cache_bytes ")))
    return held / Settings.from_env().output_cache_bytes


def idle_rss(server: Server) -> int:
    """The worker's RSS once it has been idle for longer than it waits to give back free memory
    (app/memory.py), so that every sample is taken in the same state: what the worker holds."""
    time.sleep(IDLE_SECONDS + 0.5)
    (rss, _), = server.rss().values()
    return rss


def phase_soak(tmp: Path, photos: list[tuple[bytes, str]], requests: int) -> None:
    with serve(1, tmp / "store-soak", tmp / "server.log") as server:
        ids = [upload(server.base, data, name) for data, name in photos]
        warm = Run()
        for seed in range(1, 20):  # warm up until the output cache is nearly full (it is meant to fill)
            more = uvloop.run(closed_loop(server.base, ids, 4, 200, seed=100 + seed))
            warm.latencies += more.latencies
            if cache_fill(server.base) > 0.9:
                break
        before = idle_rss(server)
        run, marks = Run(), []
        for part in range(5):  # the soak in five parts, RSS after each
            more = uvloop.run(closed_loop(server.base, ids, 4, requests // 5, seed=2 + part))
            run.latencies += more.latencies
            run.statuses.update(more.statuses)
            run.seconds += more.seconds
            marks.append(idle_rss(server))
        after = marks[-1]
        (_, hwm), = server.rss().values()
        print("soak RSS after each fifth: " + ", ".join(f"{m / 2**20:.0f}" for m in marks) + " MiB")
        print(run.report(f"soak, {requests} requests") + f"  (after a warm-up of {len(warm.latencies)} that "
              f"filled the output cache to {cache_fill(server.base):.0%})")
        print(f"soak RSS after warm-up {before / 2**20:.0f} MiB -> end {after / 2**20:.0f} MiB "
              f"({(after / before - 1) * 100:+.1f} %, target < 10 %), peak {hwm / 2**20:.0f} MiB")


async def overload(base: str, image_id: str, n: int) -> tuple[Run, list[float], list[float]]:
    stop = asyncio.Event()
    prober = asyncio.create_task(probe_health(base, stop, every=0.02))
    await asyncio.sleep(0.2)
    run = Run()
    busy: list[float] = []
    heavy = {"image_id": image_id, "color": "rgb", "kernels": ",".join(KERNELS * 2), "kernel_size": 9,
             "padding": 4}
    start = time.perf_counter()

    async def one(k: int) -> None:
        async with httpx.AsyncClient(base_url=base, timeout=120) as http:
            t0 = time.perf_counter()
            r = await http.post("/api/gradient", json={**heavy, "bias": k / 1000})
            took = time.perf_counter() - t0
            run.latencies.append(took)
            run.statuses[r.status_code] += 1
            if r.status_code == 503:
                busy.append(took)

    await asyncio.gather(*(one(k) for k in range(n)))
    run.seconds = time.perf_counter() - start
    stop.set()
    return run, busy, await prober


def server_ms(log: Path, status: int) -> list[float]:
    """Seconds the server itself took for each answer of `status`, from its JSON request lines."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and f'"status":{status},' in line:
            out.append(json.loads(line)["ms"] / 1000)
    return out


def phase_overload(tmp: Path, photos: list[tuple[bytes, str]], n: int) -> None:
    log = tmp / "server-overload.log"
    with serve(1, tmp / "store-over", log, queue=8) as server:
        image_id = upload(server.base, *photos[1])
        run, busy, health = uvloop.run(overload(server.base, image_id, n))
        (_, hwm), = server.rss().values()
        print(run.report(f"overload, {n} heavy at once"))
        print(f"overload: 503s took p99 {pct(server_ms(log, 503), 0.99):.1f} ms in the server (target < 100) "
              f"(p99 {pct(busy, 0.99):.1f} ms seen by this client, which opens {n} connections at once)")
        print(f"overload: /healthz p99 "
              f"{pct(health, 0.99):.1f} ms over {len(health)} probes (target < 100), "
              f"peak RSS {hwm / 2**20:.0f} MiB (target < 1536)")


PHASES = ["reference", "load", "reuse", "soak", "overload"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="fewer requests in every phase")
    parser.add_argument("--only", nargs="+", choices=PHASES, default=PHASES, metavar="PHASE",
                        help=f"run only these phases, of {', '.join(PHASES)}")
    args = parser.parse_args()
    photos = [(SAMPLE.read_bytes(), "astronaut.png"), (photo_jpeg(), "photo.jpg")]
    with tempfile.TemporaryDirectory(prefix="convlens-load-") as tmp_name:
        tmp = Path(tmp_name)
        if "reference" in args.only:
            phase_reference(tmp, photos, 150 if args.quick else 400)
        if "load" in args.only:
            phase_load(tmp, photos, 150 if args.quick else 800, 1 if args.quick else 5)
        if "reuse" in args.only:
            phase_reuse_and_restart(tmp, photos)
        if "soak" in args.only:
            phase_soak(tmp, photos, 1000 if args.quick else 5000)
        if "overload" in args.only:
            phase_overload(tmp, photos, 64)
        logs = sorted(tmp.glob("server*.log"))
        lines = [line for log in logs for line in log.read_text(errors="replace").splitlines()]
        errors = [line for line in lines if '"status":5' in line and '"status":503' not in line]
        print(f"5xx other than 503 in the server logs: {len(errors)} (target 0)")


if __name__ == "__main__":
    main()
