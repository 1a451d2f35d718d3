"""Every curl example of README.md's "REST API" section, run verbatim against a real uvicorn server.

The examples are written for http://127.0.0.1:8000 and a picture photo.jpg in the current
directory. This test starts uvicorn on a free port, replaces that base URL by the real one (the only
substitution), generates photo.jpg with Pillow in a temporary directory, and runs each ```sh block
there with bash -e, in order, with $ID set as the upload example sets it. Each block must exit 0
(the examples use curl -f, so an HTTP error fails them); what it prints must be JSON, and every file
it writes must be a valid PNG or .npy.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from apphelp import encode, make_pixels
from live_server import serve_app
from PIL import Image

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
README_BASE = "http://127.0.0.1:8000"


def api_section() -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index("## REST API")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def curl_blocks() -> list[str]:
    return re.findall(r"```sh\n(.*?)```", api_section(), flags=re.S)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if shutil.which("curl") is None:
        if os.environ.get("CI"):
            pytest.fail("curl is needed to run the README examples")
        pytest.skip("curl is not installed")
    with serve_app(tmp_path_factory.mktemp("server") / "uvicorn.log") as base:
        yield base

def _json_values(text: str) -> list[object]:
    decoder, values, pos = json.JSONDecoder(), [], 0
    text = text.strip()
    while pos < len(text):
        value, end = decoder.raw_decode(text, pos)
        values.append(value)
        pos = end
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return values


def test_readme_has_an_example_for_every_endpoint() -> None:
    text = "\n".join(curl_blocks())
    for needle in ("/api/images", "/api/convolve", "kernels=", "format=npy", "/api/feature-maps.png",
                   "/api/receptive-field", "/api/weight-usage", "/api/dense-matrix", "/api/gradient",
                   "/api/presets"):
        assert needle in text, needle


def test_readme_limits_table_lists_every_setting() -> None:
    section = api_section()
    for name, value in Settings().__dict__.items():
        row = re.search(rf"\| `CONVLENS_{name.upper()}` \| (\d+|`[^`]*`)", section)
        assert row is not None, name
        assert row.group(1) == (f"`{value}`" if isinstance(value, str) else str(value)), name


def test_readme_curl_examples_run(server: str, tmp_path: Path) -> None:
    photo = make_pixels(96, 128, seed=3)
    (tmp_path / "photo.jpg").write_bytes(encode(photo, "JPEG", quality=92))
    env = {**os.environ}
    blocks = curl_blocks()
    assert len(blocks) >= 10
    outputs: list[object] = []
    for block in blocks:
        script = block.replace(README_BASE, server)
        before = set(tmp_path.iterdir())
        # The upload block defines ID; later blocks see it through the environment, as in one shell.
        proc = subprocess.run(["bash", "-e", "-c", script + '\necho "@@ID=${ID:-}"'], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0, f"{block}\n{proc.stderr}"
        stdout, _, id_line = proc.stdout.rpartition("@@ID=")
        if id_line.strip():
            env["ID"] = id_line.strip()
        outputs.extend(_json_values(stdout))
        for path in set(tmp_path.iterdir()) - before:
            data = path.read_bytes()
            if path.suffix == ".png":
                assert Image.open(io.BytesIO(data)).format == "PNG", path.name
            elif path.suffix == ".npy":
                assert np.load(io.BytesIO(data)).dtype == np.float32
            else:
                pytest.fail(f"unexpected file {path.name}")
    assert len(env.get("ID", "")) == 64
    upload = outputs[0]
    assert isinstance(upload, dict) and upload["id"] == env["ID"] and upload["width"] == 128
    error = outputs[-1]
    assert isinstance(error, dict) and error["field"] == "stride"
    kinds = {tuple(sorted(o)) for o in outputs if isinstance(o, dict)}
    assert len(kinds) >= 8  # upload, convolve, receptive field, usage, dense, gradient, presets, error
    assert np.load(tmp_path / "maps.npy").shape[0] == 2
    gradient = next(o for o in outputs if isinstance(o, dict) and "grad_w" in o)
    assert np.load(tmp_path / "contributions.npy").ndim == 2 and gradient["contributions"]["npy"]
