"""/api/network, /api/network-map.png, /api/networks, and `layers` on /api/convolve and receptive-field."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from apphelp import encode, gray, make_pixels
from fastapi.testclient import TestClient
from PIL import Image

from app.main import create_app
from app.settings import Settings
from engine import NETWORKS, coverage, receptive_box, receptive_field_stack, stack_forward
from engine.kernels import kernel_bank

STACK = [
    {"kernels": "sobel_x,sobel_y", "padding": 1},
    {"kind": "relu"},
    {"kind": "maxpool", "kernel_size": 2},
    {"kernels": "box,gaussian", "kernel_size": [3, 5], "stride": [2, 1]},
]


def upload(client: TestClient, height: int, width: int) -> str:
    r = client.post(
        "/api/images", files={"image": ("p.png", encode(make_pixels(height, width)), "image/png")}
    )
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def engine_stack(pixels: np.ndarray) -> list[dict[str, object]]:
    """STACK as engine layers: the presets the app spreads over each layer's input channels."""
    return [
        {"weight": kernel_bank(["sobel_x", "sobel_y"], 3, 1), "bias": np.zeros(2), "padding": 1},
        {"kind": "relu"},
        {"kind": "maxpool", "kernel_size": 2},
        {"weight": kernel_bank(["box", "gaussian"], (3, 5), 2), "bias": np.zeros(2), "stride": (2, 1)},
    ]


def test_network_layer_by_layer(client: TestClient, image_id: str, pixels: np.ndarray) -> None:
    r = client.post("/api/network", json={"image_id": image_id, "layers": STACK})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["input_shape"] == [1, 12, 16]
    shapes = [layer["output_shape"] for layer in body["layers"]]
    assert shapes == [[2, 12, 16], [2, 12, 16], [2, 6, 8], [2, 2, 4]] and body["output_shape"] == [2, 2, 4]
    assert [layer["input_shape"] for layer in body["layers"]][1:] == shapes[:-1]  # C_in follows
    entries = receptive_field_stack(engine_stack(pixels))
    for layer, e in zip(body["layers"], entries, strict=True):
        assert layer["receptive_field"] == {
            "size": list(e.size),
            "jump": list(e.jump),
            "start": list(e.start),
        }
    assert [layer["parameters"]["weights"] for layer in body["layers"]] == [18, 0, 0, 60]
    assert body["parameters"] == 18 + 2 + 60 + 2
    ys = stack_forward(gray(pixels), engine_stack(pixels))
    for layer, y in zip(body["layers"], ys, strict=True):
        assert len(layer["maps"]) == y.shape[0]
        for k, m in enumerate(layer["maps"]):
            assert m["min"] == pytest.approx(float(y[k].min()), abs=1e-5)
            assert m["max"] == pytest.approx(float(y[k].max()), abs=1e-5)
            assert m["mean"] == pytest.approx(float(y[k].mean()), abs=1e-5)
    assert body["layers"][0]["maps"][1]["name"] == "sobel_y"


def test_map_png_urls_draw_each_layer(client: TestClient, image_id: str) -> None:
    body = client.post("/api/network", json={"image_id": image_id, "layers": STACK}).json()
    url = body["layers"][2]["maps"][1]["png"]
    assert url.startswith("/api/network-map.png?") and "layer=2" in url and "index=1" in url
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert Image.open(io.BytesIO(r.content)).size == (8, 6)
    assert float(r.headers["X-Value-Max"]) == pytest.approx(body["layers"][2]["maps"][1]["max"])
    zoomed = client.get(url + "&scale=3")
    assert Image.open(io.BytesIO(zoomed.content)).size == (24, 18)


def test_output_is_computed_once_for_json_and_pngs(
    client: TestClient, image_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.routes import network

    calls = []
    real = network.stack_forward
    monkeypatch.setattr(network, "stack_forward", lambda x, layers: calls.append(1) or real(x, layers))
    body = client.post("/api/network", json={"image_id": image_id, "layers": STACK}).json()
    for layer in body["layers"]:
        assert client.get(layer["maps"][0]["png"]).status_code == 200
    assert calls == [1]


def test_convolve_with_layers_gives_the_last_output(
    client: TestClient, image_id: str, pixels: np.ndarray
) -> None:
    body = client.post("/api/convolve", json={"image_id": image_id, "layers": STACK, "values": True}).json()
    y = stack_forward(gray(pixels), engine_stack(pixels))[-1]
    assert body["output_shape"] == list(y.shape)
    assert [layer["output_shape"] for layer in body["layers"]][-1] == list(y.shape)
    np.testing.assert_allclose(np.array(body["values"]), y, atol=1e-5)
    npy = client.get(body["npy"])
    np.testing.assert_allclose(np.load(io.BytesIO(npy.content)), y, atol=1e-6)


def test_form_and_query_carry_layers_as_json_text(client: TestClient, image_id: str) -> None:
    text = json.dumps(STACK)
    form = client.post("/api/network", data={"image_id": image_id, "layers": text}).json()
    query = client.get("/api/network", params={"image_id": image_id, "layers": text}).json()
    assert form["layers"] == query["layers"]


def test_rgb_channels_follow_through_the_stack(client: TestClient, image_id: str) -> None:
    layers = [
        {"out_channels": 5, "kernel_size": 3},
        {"kind": "avgpool", "kernel_size": 2},
        {"kind": "conv_transpose", "kernels": "box", "stride": 2},
        {"kind": "tanh"},
    ]
    body = client.post("/api/network", json={"image_id": image_id, "color": "rgb", "layers": layers}).json()
    assert [layer["input_shape"][0] for layer in body["layers"]] == [3, 5, 5, 1]
    assert body["layers"][0]["parameters"] == {
        "weights": 5 * 3 * 9,
        "biases": 5,
        "multiply_adds": 5 * 10 * 14 * 27,
    }
    # from a transposed conv on, the jump is a fraction: no whole-pixel size, jump and start
    assert [layer["receptive_field"] is None for layer in body["layers"]] == [False, False, True, True]
    assert body["layers"][2]["output_shape"] == [1, 11, 15]


def test_receptive_field_with_layers_matches_the_engine(client: TestClient) -> None:
    image_id = upload(client, 40, 48)
    layers = [
        {"kernel_size": 5, "padding": 2, "stride": 2},
        {"kind": "maxpool", "kernel_size": 3, "stride": 2},
        {"kernel_size": 3, "dilation": 2, "padding": 1},
    ]
    body = client.post(
        "/api/receptive-field", json={"image_id": image_id, "layers": layers, "row": 1, "col": 2}
    ).json()
    box = receptive_box((40, 48), layers, 1, 2)
    assert body["box"] == {"top": box.top, "left": box.left, "height": box.height, "width": box.width}
    assert body["in_padding"] == box.in_padding and body["unit"] == [1, 2]
    top, bottom, left, right = box.padding
    assert body["padding"] == {"top": top, "bottom": bottom, "left": left, "right": right}
    last = receptive_field_stack(layers)[-1]
    assert body["layers"][-1]["receptive_field"]["size"] == list(last.size)
    assert body["box"]["top"] == last.start[0] + 1 * last.jump[0]
    png = client.get(body["png"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"


@pytest.mark.parametrize(
    ("name", "size", "jump"),
    [
        ("alexnet", 195, 32),
        ("vgg16", 212, 32),
        ("resnet50", 427, 32),
        ("resnet50_slim", 483, 32),
        ("learner", 18, 4),
    ],
)
def test_published_receptive_fields_through_the_api(
    client: TestClient, name: str, size: int, jump: int
) -> None:
    networks = {n["name"]: n for n in client.get("/api/networks").json()["networks"]}
    net = networks[name]
    assert net["receptive_field"]["size"] == [size, size] and net["receptive_field"]["jump"] == [jump, jump]
    assert len(net["layers"]) == len(NETWORKS[name].layers) == len(net["layer_names"])
    side = net["input_shape"][1]
    image_id = upload(client, side, side)
    r = client.post(
        "/api/receptive-field", json={"image_id": image_id, "layers": net["layers"], "color": "rgb"}
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["layers"][-1]["receptive_field"]["size"] == [size, size]
    assert body["layers"][-1]["receptive_field"]["jump"] == [jump, jump]
    assert body["output_shape"] == net["output_shape"][1:]


def test_networks_say_which_can_run(client: TestClient) -> None:
    networks = {n["name"]: n for n in client.get("/api/networks").json()["networks"]}
    assert networks["learner"]["runnable"] and not networks["vgg16"]["runnable"]
    assert "torchvision" in networks["resnet50"]["layout"] and "Slim" in networks["resnet50_slim"]["layout"]


def test_learner_preset_runs(client: TestClient) -> None:
    learner = next(n for n in client.get("/api/networks").json()["networks"] if n["name"] == "learner")
    image_id = upload(client, 32, 32)
    body = client.post("/api/network", json={"image_id": image_id, "layers": learner["layers"]}).json()
    assert body["output_shape"] == [32, 8, 8]
    assert body["layers"][-1]["receptive_field"] == {"size": [18, 18], "jump": [4, 4], "start": [-7, -7]}


def test_random_weights_follow_the_seed(client: TestClient, image_id: str) -> None:
    layers = [{"out_channels": 3, "kernel_size": 3}]
    a = client.post("/api/network", json={"image_id": image_id, "layers": layers, "seed": 1}).json()
    b = client.post("/api/network", json={"image_id": image_id, "layers": layers, "seed": 1}).json()
    c = client.post("/api/network", json={"image_id": image_id, "layers": layers, "seed": 2}).json()
    assert a["layers"][0]["maps"] == b["layers"][0]["maps"] != c["layers"][0]["maps"]


# ---------------------------------------------------------------- each field's 422


def post_layers(
    client: TestClient, image_id: str, layers: object, path: str = "/api/network"
) -> tuple[int, str]:
    r = client.post(path, json={"image_id": image_id, "layers": layers})
    return r.status_code, r.json().get("field") if r.status_code != 200 else ""


@pytest.mark.parametrize(
    ("layers", "field"),
    [
        ([{"kind": "pool"}], "layers[0].kind"),
        ([{"kind": "relu"}, {"kind": "maxpool"}], "layers[1].kernel_size"),
        ([{"stride": 0}], "layers[0].stride"),
        ([{"kernel_size": 99}], "layers[0].kernel_size"),
        ([{"padding": -1}], "layers[0].padding"),
        ([{"dilation": 99}], "layers[0].dilation"),
        ([{"kind": "relu", "stride": 2}], "layers[0].stride"),
        ([{"kind": "maxpool", "kernel_size": 2, "padding": 2}], "layers[0].padding"),
        ([{"kind": "conv_transpose", "stride": 2, "output_padding": 2}], "layers[0].output_padding"),
        ([{"kind": "avgpool", "kernel_size": 2, "ceil_mode": "maybe"}], "layers[0].ceil_mode"),
        ([{"kernels": "nope"}], "layers[0].kernels"),
        ([{"kernels": "box", "weights": [[[1]]]}], "layers[0].kernels"),
        ([{"weights": [[1, 2], [3]]}], "layers[0].weights"),
        ([{"weights": [[[1, 1]]]}, {"weights": [[[[1]], [[1]]]]}], "layers[1].weights"),
        ([{"kernels": "box", "bias": [1, 2]}], "layers[0].bias"),
        ([{"out_channels": 0, "kernel_size": 3}], "layers[0].out_channels"),
        ([{"out_channels": 3, "kernel_size": 3, "groups": 2}], "layers[0].groups"),
        ([{"kernels": "box"}, {"kernels": "box", "groups": 2}], "layers[1].groups"),
        ([{"kernel_size": 11}, {"kernel_size": 3}], "layers[1].kernel_size"),
        ([{"kernel_size": 3, "dilation": 7}], "layers[0].dilation"),
        ([{"out_channels": 65, "kernel_size": 1}], "layers[0]"),
        ([{"weights": [[[1e16]]]}, {"weights": [[[1e16]]]}], "layers[1].weights"),
        ([3], "layers[0]"),
        ([], "layers"),
        ("not json", "layers"),
        ([{"kind": "relu"}] * 9, "layers"),
    ],
)
def test_bad_layers_are_422_naming_the_field(
    client: TestClient, image_id: str, layers: object, field: str
) -> None:
    assert post_layers(client, image_id, layers) == (422, field)


def test_layers_is_needed_on_network(client: TestClient, image_id: str) -> None:
    r = client.post("/api/network", json={"image_id": image_id})
    assert r.status_code == 422 and r.json()["field"] == "layers"


def test_geometry_takes_long_stacks_but_not_over_its_limit(client: TestClient, image_id: str) -> None:
    assert post_layers(client, image_id, [{"kind": "relu"}] * 64, "/api/receptive-field") == (200, "")
    assert post_layers(client, image_id, [{"kind": "relu"}] * 65, "/api/receptive-field") == (422, "layers")
    assert post_layers(client, image_id, [{"kind": "relu"}] * 9, "/api/convolve") == (422, "layers")


def test_map_index_and_layer_are_checked(client: TestClient, image_id: str) -> None:
    query = {"image_id": image_id, "layers": json.dumps(STACK)}
    r = client.get("/api/network-map.png", params={**query, "layer": 4})
    assert r.status_code == 422 and r.json()["field"] == "layer"
    r = client.get("/api/network-map.png", params={**query, "layer": 0, "index": 2})
    assert r.status_code == 422 and r.json()["field"] == "index"
    r = client.post("/api/receptive-field", json={"image_id": image_id, "layers": STACK, "row": 2})
    assert r.status_code == 422 and r.json()["field"] == "row"


def test_raised_limits_reach_the_stack(image_id: str, png_bytes: bytes) -> None:
    with TestClient(create_app(Settings(max_stack_channels=128))) as c:
        r = c.post("/api/images", files={"image": ("p.png", png_bytes, "image/png")})
        r = c.post(
            "/api/network",
            json={"image_id": r.json()["id"], "layers": [{"out_channels": 100, "kernel_size": 1}]},
        )
        assert r.status_code == 200 and r.json()["output_shape"][0] == 100


def test_stack_over_the_work_cap_is_refused_before_running(
    png_bytes: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.routes import erf, network

    def never(*args: object) -> None:
        raise AssertionError("the stack ran")

    monkeypatch.setattr(network, "stack_forward", never)
    monkeypatch.setattr(erf, "effective_receptive_field", never)
    layers = [{"out_channels": 64, "kernel_size": 7, "padding": 3}] * 4
    with TestClient(create_app(Settings(max_work=10_000_000))) as c:
        image_id = c.post("/api/images", files={"image": ("p.png", png_bytes, "image/png")}).json()["id"]
        for path in ("/api/network", "/api/erf", "/api/convolve"):
            r = c.post(path, json={"image_id": image_id, "layers": layers})
            assert r.status_code == 422, path
            assert r.json()["field"] == "layers" and "CONVLENS_MAX_WORK" in r.json()["detail"]


def test_stack_over_the_memory_cap_is_refused() -> None:
    with TestClient(create_app(Settings(max_request_bytes=30_000_000))) as c:
        image_id = upload(c, 256, 256)
        few = c.post(
            "/api/network", json={"image_id": image_id, "layers": [{"out_channels": 4, "kernel_size": 1}]}
        )
        assert few.status_code == 200
        r = c.post(
            "/api/network", json={"image_id": image_id, "layers": [{"out_channels": 64, "kernel_size": 1}]}
        )
        assert r.status_code == 422 and r.json()["field"] == "layers"
        assert "CONVLENS_MAX_REQUEST_BYTES" in r.json()["detail"]


def test_openapi_documents_the_new_routes(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/api/network", "/api/network-map.png", "/api/erf", "/api/erf.png", "/api/networks"):
        assert path in paths, path
    assert set(paths["/api/network"]["post"]["responses"]) >= {"200", "404", "413", "415", "422"}
    assert "image/png" in paths["/api/network-map.png"]["get"]["responses"]["200"]["content"]
    props = doc["components"]["schemas"]["NetworkParams"]["properties"]
    assert props["layers"]["maxItems"] == 64  # a JSON list; forms and queries carry it as JSON text
    assert "StackConvolveResponse" in json.dumps(paths["/api/convolve"]["post"]["responses"]["200"])


def test_dense_matrix_counts_the_transposed_convs_contributions(client: TestClient, image_id: str) -> None:
    body = client.post(
        "/api/dense-matrix",
        json={"image_id": image_id, "kernels": "box,sobel_x", "stride": 2, "padding": 1, "crop": "0,0,8,8"},
    ).json()
    counts = np.array(body["transposed_coverage"])
    np.testing.assert_array_equal(counts, 2 * coverage((8, 8), 3, 2, 1))  # J = 2 kernels read each pixel
    assert counts[2, 2] == 2 and counts[1, 1] == 2 * 4 and counts[1, 2] == 2 * 2  # the checkerboard
