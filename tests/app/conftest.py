"""Shared fixtures of the API tests: an app with default settings, a client, and small images."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest
from apphelp import encode, make_pixels
from fastapi import FastAPI
from fastapi.testclient import TestClient
from numpy.typing import NDArray

from app.main import create_app
from app.settings import Settings


@pytest.fixture
def settings() -> Settings:
    return Settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app) as c:
        yield c


@pytest.fixture
def pixels() -> NDArray[np.uint8]:
    return make_pixels()


@pytest.fixture
def png_bytes(pixels: NDArray[np.uint8]) -> bytes:
    return encode(pixels)


@pytest.fixture
def image_id(client: TestClient, png_bytes: bytes) -> str:
    r = client.post("/api/images", files={"image": ("sample.png", png_bytes, "image/png")})
    assert r.status_code == 201, r.text
    return str(r.json()["id"])
