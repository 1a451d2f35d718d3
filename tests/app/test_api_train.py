"""POST /api/train: the NDJSON stream, its lines and numbers, its refusals, and its work over real HTTP.

In-process tests (TestClient) check what the lines hold and every 422. TestClient collects a whole
response before it returns, so the tests of timing and of a client that goes away run against a
real uvicorn server (tests/live_server.py) and read the stream line by line with httpx. The work a
server does is observed through /metrics: convlens_train_steps_total counts every step the trainer
computes, and convlens_trainings the streams running.
"""

from __future__ import annotations

import base64
import io
import json
import math
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from apphelp import encode, make_pixels
from fastapi.testclient import TestClient
from live_server import serve_app
from PIL import Image

from app.main import create_app
from app.settings import Settings
from engine import preset

ROOT = Path(__file__).resolve().parents[2]
SOBEL_X = preset("sobel_x", 3).tolist()


def noisy_pixels(height: int, width: int, seed: int = 0) -> np.ndarray:
    """(H, W, 3) uint8 white noise: its windows are well conditioned, so a kernel is learned fast."""
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _reject(value: str) -> float:
    raise AssertionError(f"a non-finite number in the stream: {value}")


def parse(line: str | bytes) -> dict[str, Any]:
    """One NDJSON line, refusing NaN and Infinity (which JSON has not)."""
    value = json.loads(line, parse_constant=_reject)
    assert isinstance(value, dict)
    return value


def lines_of(text: str) -> list[dict[str, Any]]:
    assert text.endswith("\n")
    return [parse(line) for line in text.splitlines()]


def upload(client: TestClient | httpx.Client, pixels: np.ndarray) -> str:
    r = client.post("/api/images", files={"image": ("x.png", encode(pixels), "image/png")})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


@pytest.fixture
def noise_id(client: TestClient) -> str:
    return upload(client, noisy_pixels(40, 48))


def train(client: TestClient, **fields: object) -> list[dict[str, Any]]:
    r = client.post("/api/train", data={k: str(v) for k, v in fields.items()})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/x-ndjson"
    return lines_of(r.text)


def test_the_stream_reports_every_n_steps_then_done(client: TestClient, noise_id: str) -> None:
    lines = train(client, image_id=noise_id, target_kernels="sobel_x", padding=1, steps=25, every=10)
    reports, done = lines[:-1], lines[-1]
    assert [r["step"] for r in reports] == [0, 10, 20, 25]  # step 0 and the last are always there
    for r in reports:
        assert set(r) == {"step", "loss", "weights", "grad", "bias", "grad_bias", "untied_loss"}
        assert np.shape(r["weights"]) == np.shape(r["grad"]) == (1, 1, 3, 3)
    assert reports[0]["loss"] == pytest.approx(reports[0]["untied_loss"])  # the same start
    assert reports[-1]["loss"] < reports[0]["loss"]
    assert done["done"] is True and done["steps"] == 25
    assert done["weights"] == reports[-1]["weights"]
    assert done["target_weights"] == [[SOBEL_X]] and done["target_bias"] == [0.0]
    assert done["shift"] == [2, 3] and done["test_image"] is None
    assert set(done["shared"]["test_loss"]) == {"shifted"}  # no second image was given
    h_out, w_out = 40, 48
    assert done["shared"]["parameters"] == 10 and done["untied"]["parameters"] == 10 * h_out * w_out


def test_the_shared_layer_learns_the_hidden_kernel(client: TestClient, noise_id: str) -> None:
    done = train(client, image_id=noise_id, target_kernels="sobel_x", padding=1, steps=300, every=300,
                 untied="false")[-1]
    # On white noise the windows' covariance is well conditioned: Adam at 0.05 gets within 1%.
    error = np.abs(np.array(done["weights"]) - np.array(done["target_weights"])).max() / 2
    assert error < 0.01
    assert done["untied"] is None
    assert done["shared"]["train_loss"] < 1e-5


def test_only_the_shared_layer_generalises_to_a_shifted_and_a_second_image(client: TestClient,
                                                                             noise_id: str) -> None:
    done = train(client, image_id=noise_id, target_kernels="sobel_x", padding=1, steps=300, every=300,
                 noise=0.05, test_image="checkerboard")[-1]
    shared, untied = done["shared"], done["untied"]
    assert done["test_image"] == "checkerboard"
    assert set(shared["test_loss"]) == set(untied["test_loss"]) == {"shifted", "second"}
    # The shared layer is at the noise floor 0.05² on every image; the untied one fits its training
    # positions (noise included) and fails everywhere else.
    for loss in shared["test_loss"].values():
        assert loss == pytest.approx(0.05**2, rel=0.25)
    assert untied["train_loss"] < 0.5 * shared["train_loss"]
    for loss in untied["test_loss"].values():
        assert loss > 10 * shared["test_loss"]["shifted"]


def test_without_a_learned_bias_the_lines_carry_none(client: TestClient, noise_id: str) -> None:
    lines = train(client, image_id=noise_id, target_kernels="sobel_x", steps=2, every=1, learn_bias="false",
                  untied="false")
    assert all("bias" not in r and "untied_loss" not in r for r in lines[:-1])
    assert lines[-1]["bias"] is None


def test_a_json_body_and_custom_target_weights(client: TestClient, noise_id: str) -> None:
    hidden = [[[0, 1, 0], [1, -4, 1], [0, 1, 0]]]
    r = client.post("/api/train", json={"image_id": noise_id, "weights": [[[0] * 3] * 3],
                                        "target_weights": hidden, "steps": 3, "every": 3, "seed": 7})
    lines = lines_of(r.text)
    assert [line.get("step") for line in lines] == [0, 3, None]
    assert lines[-1]["target_weights"] == [hidden]


def test_the_same_seed_gives_the_same_stream(client: TestClient, noise_id: str) -> None:
    fields = {"image_id": noise_id, "target_kernels": "gaussian", "steps": 5, "every": 1,
              "optimizer": "momentum",
              "seed": 3, "noise": 0.1}
    first, second = train(client, **fields), train(client, **fields)
    assert [line.get("weights") for line in first] == [line.get("weights") for line in second]
    assert train(client, **{**fields, "seed": 4})[0]["weights"] != first[0]["weights"]


def test_the_grad_is_the_gradient_of_api_gradient(client: TestClient, noise_id: str) -> None:
    # With no learned bias and no noise, the stream's loss and grad at a step are /api/gradient's mse
    # at those weights: the page fetches a weight's contributions that way.
    lines = train(client, image_id=noise_id, target_kernels="sobel_x", padding=1, steps=20, every=20,
                  learn_bias="false", untied="false")
    report = lines[1]
    r = client.post("/api/gradient", json={"image_id": noise_id, "weights": report["weights"], "padding": 1,
                                           "bias": 0, "loss": "mse", "target_kernels": "sobel_x",
                                           "weight": "0,0,1,2"})
    g = r.json()
    assert g["value"] == pytest.approx(report["loss"], rel=1e-4)
    np.testing.assert_allclose(g["grad_w"], report["grad"], rtol=1e-3, atol=1e-7)
    assert g["contributions"]["sum"] == pytest.approx(report["grad"][0][0][1][2], rel=1e-3, abs=1e-7)


def test_a_second_image_of_another_size_is_fitted_to_the_first(client: TestClient, noise_id: str) -> None:
    other = upload(client, noisy_pixels(30, 90, seed=5))
    done = train(client, image_id=noise_id, target_kernels="box", steps=5, every=5, test_image_id=other)[-1]
    assert done["test_image"] == other and "second" in done["untied"]["test_loss"]


def test_maps_are_pngs_of_the_output_size_on_one_scale(client: TestClient, noise_id: str) -> None:
    done = train(client, image_id=noise_id, target_kernels="sobel_x", stride=2, steps=10, every=10,
                 maps="true", test_image="tiny")[-1]
    assert [m["image"] for m in done["maps"]] == ["train", "shifted", "second"]
    for m in done["maps"]:
        assert m["min"] < 0 < m["max"] and m["colormap"] == "diverging"
        for key in ("target", "shared", "untied"):
            head, data = m[key].split(",", 1)
            assert head == "data:image/png;base64"
            assert Image.open(io.BytesIO(base64.b64decode(data))).size == (23, 19)  # (W_out, H_out)


def test_rgb_and_relu_layers_train_too(client: TestClient, noise_id: str) -> None:
    lines = train(client, image_id=noise_id, target_kernels="sobel_x,sobel_y", kernels="box,box", color="rgb",
                  activation="relu", steps=4, every=2, optimizer="sgd", lr=0.1)
    assert np.shape(lines[0]["weights"]) == (2, 3, 3, 3)
    assert lines[-1]["untied"]["parameters"] == 2 * (27 + 1) * 38 * 46


def test_a_diverging_run_ends_with_an_error_line_naming_lr(client: TestClient, noise_id: str) -> None:
    lines = train(client, image_id=noise_id, target_kernels="sobel_x", optimizer="sgd", lr=1e30, steps=50,
                  every=1)
    last = lines[-1]
    assert last["error"] is True and last["status"] == 422 and last["field"] == "lr"
    assert "diverged" in last["detail"] and last["step"] < 50
    assert not any(line.get("done") for line in lines)


def test_the_time_budget_ends_the_stream_with_an_error_line() -> None:
    app = create_app(Settings(train_seconds=1))
    with TestClient(app) as client:
        image = upload(client, noisy_pixels(192, 192))
        lines = train(client, image_id=image, target_kernels="sobel_x", steps=5000, every=500)
    last = lines[-1]
    assert last["error"] is True and last["status"] == 503 and last["field"] == "steps"
    assert "CONVLENS_TRAIN_SECONDS" in last["detail"] and 0 < last["step"] < 5000


# ---------------------------------------------------------------- refusals, before anything streams


def refused(client: TestClient, image_id: str, **fields: object) -> dict[str, Any]:
    r = client.post("/api/train", data={"image_id": image_id, "target_kernels": "sobel_x", "steps": "5",
                                        **{k: str(v) for k, v in fields.items()}})
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert set(body) == {"detail", "field"}
    return dict(body)


@pytest.mark.parametrize(("field", "value"), [
    ("steps", -1), ("steps", 5001), ("steps", "many"), ("every", 0), ("every", 5001), ("lr", 0),
    ("lr", -0.1), ("lr", "inf"), ("lr", "fast"), ("optimizer", "rmsprop"), ("noise", -1), ("noise", "nan"),
    ("untied", "maybe"), ("learn_bias", "perhaps"), ("seed", -1), ("test_image", "nope"),
    ("test_image_id", "abc"), ("target_kernels", "no_such_kernel"), ("maps", "sometimes"),
])
def test_a_bad_field_is_a_422_naming_it(client: TestClient, noise_id: str, field: str, value: object) -> None:
    body = refused(client, noise_id, **{field: value})
    assert body["field"] == field, body
    assert f"`{field}`" in body["detail"]


def test_the_hidden_kernels_are_needed(client: TestClient, noise_id: str) -> None:
    r = client.post("/api/train", data={"image_id": noise_id})
    assert r.status_code == 422 and r.json()["field"] == "target_kernels"


def test_the_hidden_kernels_must_have_the_layers_shape(client: TestClient, noise_id: str) -> None:
    body = refused(client, noise_id, target_kernels="sobel_x,sobel_y")
    assert body["field"] == "target_kernels" and "1 kernel(s) of 3x3" in body["detail"]
    body = refused(client, noise_id, target_weights=json.dumps([[[1, 2], [3, 4]]]))
    assert body["field"] == "target_weights"


def test_one_second_image_only(client: TestClient, noise_id: str) -> None:
    body = refused(client, noise_id, test_image="tiny", test_image_id=noise_id)
    assert body["field"] == "test_image_id"


def test_an_unknown_test_image_id_is_a_404(client: TestClient, noise_id: str) -> None:
    r = client.post("/api/train", data={"image_id": noise_id, "target_kernels": "box",
                                        "test_image_id": "0" * 64})
    assert r.status_code == 404 and r.json()["field"] == "image_id"


def test_too_many_report_lines_are_refused_on_every(noise_id: str) -> None:
    with TestClient(create_app(Settings(max_train_reports=10))) as client:
        image = upload(client, noisy_pixels(20, 20))
        body = refused(client, image, steps=100, every=5)
        assert body["field"] == "every" and "CONVLENS_MAX_TRAIN_REPORTS" in body["detail"]
        assert train(client, image_id=image, target_kernels="box", steps=100, every=20)[-1]["done"]


def test_work_over_the_cap_is_refused_on_steps_before_streaming() -> None:
    # 40 x 48 outputs, K' = 10, shared and untied: 2 * 2 * 10 * 1920 = 76,800 multiply-adds a step.
    with TestClient(create_app(Settings(max_work=10_000_000))) as client:
        image = upload(client, noisy_pixels(40, 48))
        body = refused(client, image, padding=1, steps=200)
        assert body["field"] == "steps" and "CONVLENS_MAX_WORK" in body["detail"]
        assert "fewer `steps`" in body["detail"]
        done = train(client, image_id=image, target_kernels="box", padding=1, steps=100, every=100)[-1]
        assert done["done"]
        assert train(client, image_id=image, target_kernels="box", padding=1, steps=200, every=200,
                     untied="false")[-1]["done"]


def test_memory_over_the_cap_is_refused_on_steps() -> None:
    with TestClient(create_app(Settings(max_request_bytes=2_000_000))) as client:
        image = upload(client, noisy_pixels(200, 200))
        body = refused(client, image, steps=1)
        assert body["field"] == "steps" and "CONVLENS_MAX_REQUEST_BYTES" in body["detail"]


def test_raised_limits_reach_the_fields() -> None:
    with TestClient(create_app(Settings(max_train_steps=20_000, max_train_reports=30_000))) as client:
        image = upload(client, noisy_pixels(8, 8))
        lines = train(client, image_id=image, target_kernels="box", steps=6000, every=3000, untied="false")
        assert lines[-1]["steps"] == 6000
        schema = client.get("/openapi.json").json()["components"]["schemas"]["TrainParams"]["properties"]
        assert schema["steps"]["maximum"] == 20_000 and schema["every"]["maximum"] == 20_000


def test_openapi_declares_the_stream_and_every_status(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    post = doc["paths"]["/api/train"]["post"]
    assert "get" not in doc["paths"]["/api/train"]
    ok = post["responses"]["200"]["content"]
    assert list(ok) == ["application/x-ndjson"]
    refs = json.dumps(ok["application/x-ndjson"]["schema"])
    for name in ("TrainReportLine", "TrainDoneLine", "TrainErrorLine"):
        assert name in refs and name in doc["components"]["schemas"]
    assert {"403", "404", "408", "413", "415", "422", "503"} <= set(post["responses"])
    assert set(post["requestBody"]["content"]) >= {"multipart/form-data", "application/json"}
    props = doc["components"]["schemas"]["TrainParams"]["properties"]
    assert props["steps"]["maximum"] == Settings().max_train_steps and props["every"]["minimum"] == 1
    assert props["optimizer"]["enum"] == ["sgd", "momentum", "adam"]


# ---------------------------------------------------------------- over real HTTP


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    log = tmp_path_factory.mktemp("train-server") / "uvicorn.log"
    with serve_app(log) as base:
        yield base, log


def metric(http: httpx.Client, name: str) -> float:
    text = http.get("/metrics").text
    found = re.search(rf"^{name} ([0-9.e+]+)$", text, flags=re.M)
    return float(found.group(1)) if found else 0.0


def wait_for(condition: Any, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_lines_arrive_while_it_trains_and_a_disconnect_stops_the_work(server: tuple[str, Path]) -> None:
    base, _ = server
    steps = 5000  # about 5 ms a step on 256 x 256 with the untied layer: some 25 s in all
    with httpx.Client(base_url=base, timeout=30) as http:
        image = upload(http, noisy_pixels(256, 256))
        before = metric(http, "convlens_train_steps_total")
        fields = {"image_id": image, "target_kernels": "sobel_x", "padding": "1", "steps": str(steps),
                  "every": "20"}
        with http.stream("POST", "/api/train", data=fields) as r:
            assert r.status_code == 200 and r.headers["content-type"] == "application/x-ndjson"
            lines = r.iter_lines()
            first = parse(next(lines))
            assert first["step"] == 0  # (bench/api.py times the first line)
            # The first line came before the last step was computed: the server is still early on.
            assert metric(http, "convlens_train_steps_total") - before < steps / 2
            assert metric(http, "convlens_trainings") == 1
            assert parse(next(lines))["step"] == 20  # and the lines keep coming while it trains
        # The client closed the connection: the server stops training within a chunk or two.
        wait_for(lambda: metric(http, "convlens_trainings") == 0)
        stopped = metric(http, "convlens_train_steps_total") - before
        time.sleep(0.5)
        assert metric(http, "convlens_train_steps_total") - before == stopped
        assert stopped < steps / 2
        assert metric(http, 'convlens_train_streams_total{end="disconnected"}') >= 1


def test_a_full_run_streams_to_done_over_http(server: tuple[str, Path]) -> None:
    base, _ = server
    with httpx.Client(base_url=base, timeout=60) as http:
        image = upload(http, noisy_pixels(64, 64))
        arrived: list[tuple[float, dict[str, Any]]] = []
        t0 = time.perf_counter()
        with http.stream("POST", "/api/train", data={"image_id": image, "target_kernels": "sobel_x",
                                                     "padding": "1", "steps": "400", "every": "10"}) as r:
            for line in r.iter_lines():
                arrived.append((time.perf_counter() - t0, parse(line)))
    done = arrived[-1][1]
    assert done["done"] and len(arrived) == 42
    assert arrived[0][0] < arrived[-1][0]  # not all at once at the end
    error = np.abs(np.array(done["weights"]) - np.array(done["target_weights"])).max() / 2
    assert error < 0.01


def test_the_readme_curl_example_streams(server: tuple[str, Path], tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    base, _ = server
    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, flags=re.S) if "/api/train" in b)
    assert "curl -sSfN" in block
    with httpx.Client(base_url=base) as http:
        image = upload(http, make_pixels(96, 128, seed=3))
    proc = subprocess.Popen(["bash", "-e", "-c", block.replace("http://127.0.0.1:8000", base)],
                            env={"PATH": "/usr/bin:/bin", "ID": image}, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    with proc.stdout:
        lines = [parse(line) for line in proc.stdout]
    assert proc.wait(timeout=60) == 0
    assert [line.get("step") for line in lines[:-1]] == [0, 50, 100, 150, 200]
    done = lines[-1]
    assert done["done"] and done["test_image"] == "checkerboard"
    assert math.isfinite(done["untied"]["test_loss"]["second"])


@pytest.mark.parametrize(("fields", "field"), [
    ({"bias": 3.4e38}, "bias"),  # past CONVLENS_MAX_OUTPUT_MAGNITUDE, as /api/convolve says
    ({"bias": 1e19}, "bias"),  # under it, but even one output's square overflows float32 (> 9.2e18)
    ({"target_weights": json.dumps([[[[1e20, 0, 0], [0, 0, 0], [0, 0, 0]]]])}, "target_weights"),
])
def test_outputs_too_big_for_an_mse_are_refused_before_training(client: TestClient, noise_id: str,
                                                                fields: dict[str, Any], field: str) -> None:
    body = {"image_id": noise_id, "steps": 3, "target_kernels": "sobel_x", **fields}
    if "target_weights" in fields:
        del body["target_kernels"]
    r = client.post("/api/train", data=body)
    assert r.status_code == 422, r.text  # an answer, not a stream that diverges and blames `lr`
    detail = r.json()["detail"]
    assert r.json()["field"] == field and ("float32" in detail or "MAX_OUTPUT_MAGNITUDE" in detail)
