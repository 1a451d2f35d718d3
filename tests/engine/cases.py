"""Random layer configurations for the engine tests (no engine code here)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from reference import out_size


@dataclass(frozen=True)
class Case:
    """One layer configuration; every geometric field is an (h, w) pair."""

    c: int
    j: int
    groups: int
    h: int
    w: int
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    dilation: tuple[int, int]

    @property
    def weight_shape(self) -> tuple[int, int, int, int]:
        return (self.j, self.c // self.groups, *self.kernel)

    @property
    def out_hw(self) -> tuple[int, int]:
        return (
            out_size(self.h, self.kernel[0], self.stride[0], self.padding[0], self.dilation[0]),
            out_size(self.w, self.kernel[1], self.stride[1], self.padding[1], self.dilation[1]),
        )

    def kwargs(self) -> dict[str, object]:
        return {"stride": self.stride, "padding": self.padding, "dilation": self.dilation,
                "groups": self.groups}

    def arrays(self, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(x, weight, bias) in float64 holding float32-representable values."""
        rng = np.random.default_rng(seed)
        x = rng.standard_normal((self.c, self.h, self.w)).astype(np.float32).astype(np.float64)
        wt = rng.standard_normal(self.weight_shape).astype(np.float32).astype(np.float64)
        b = rng.standard_normal(self.j).astype(np.float32).astype(np.float64)
        return x, wt, b


def _axis(rng: np.random.Generator, k: int, one_output: bool, max_extra: int) -> tuple[int, int, int, int]:
    """(size, stride, padding, dilation) along one axis for kernel size k, the kernel fitting."""
    s = int(rng.integers(1, 5))
    p = int(rng.integers(0, 4))
    d = int(rng.integers(1, 4))
    eff = d * (k - 1) + 1
    if one_output:
        # A single output needs span = n + 2p - eff < s: less padding if even n = 1 is too big.
        while out_size(max(1, eff - 2 * p), k, s, p, d) > 1:
            p -= 1
        n = max(1, eff - 2 * p) + int(rng.integers(0, s))
        while out_size(n, k, s, p, d) > 1:
            n -= 1
    else:
        n = max(1, eff - 2 * p) + int(rng.integers(0, max_extra + 1))
    return n, s, p, d


def random_cases(count: int, seed: int, max_extra: int = 7, one_output_every: int = 10) -> list[Case]:
    """Random layers: kernel 1-7 per axis, stride 1-4, padding 0-3, dilation 1-3, C and J 1-4,
    groups dividing both; every `one_output_every`-th case has a 1x1 output."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(count):
        c, j = int(rng.integers(1, 5)), int(rng.integers(1, 5))
        divisors = [g for g in range(1, 5) if c % g == 0 and j % g == 0]
        groups = int(rng.choice(divisors))
        kh, kw = int(rng.integers(1, 8)), int(rng.integers(1, 8))
        one = one_output_every > 0 and i % one_output_every == 0
        h, sh, ph, dh = _axis(rng, kh, one, max_extra)
        w, sw, pw, dw = _axis(rng, kw, one, max_extra)
        cases.append(Case(c, j, groups, h, w, (kh, kw), (sh, sw), (ph, pw), (dh, dw)))
    return cases


def case_id(case: Case) -> str:
    return (
        f"C{case.c}J{case.j}g{case.groups}-{case.h}x{case.w}-k{case.kernel[0]}x{case.kernel[1]}"
        f"-s{case.stride[0]}x{case.stride[1]}-p{case.padding[0]}x{case.padding[1]}"
        f"-d{case.dilation[0]}x{case.dilation[1]}"
    )

