"""Shared fixtures of the engine tests."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture
def rng() -> np.random.Generator:
    """A seeded generator, so every run sees the same numbers."""
    return np.random.default_rng(20240601)
