"""Named kernel presets, generalised to any size where the idea carries over.

Each preset returns a (kh, kw) float64 array for cross-correlation (as conv2d applies it), so
sobel_x responds positively where brightness increases to the right.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from math import comb

import numpy as np
from numpy.typing import NDArray

from .errors import ArgumentError
from .spec import IntOrPair, Pair, as_pair

MAX_KERNEL_SIZE = 31  # default largest preset side; callers may pass another max_size


def _binomial(n: int) -> NDArray[np.float64]:
    """Row n - 1 of Pascal's triangle: the discrete Gaussian of length n."""
    return np.array([comb(n - 1, i) for i in range(n)], dtype=np.float64)


def _derivative(n: int) -> NDArray[np.float64]:
    """Central difference smoothed to length n (odd, >= 3): [-1, 0, 1] * binomial(n - 2)."""
    return np.convolve(_binomial(n - 2), [1.0, 0.0, -1.0])[::-1].copy()


def _gauss1d(n: int) -> NDArray[np.float64]:
    sigma = max(n / 6, 0.5)
    t = np.arange(n) - (n - 1) / 2
    g = np.exp(-(t**2) / (2 * sigma**2))
    return g / g.sum()


def _identity(k: Pair, seed: int) -> NDArray[np.float64]:
    out = np.zeros(k)
    out[k[0] // 2, k[1] // 2] = 1.0
    return out


def _box(k: Pair, seed: int) -> NDArray[np.float64]:
    return np.full(k, 1.0 / (k[0] * k[1]))


def _gaussian(k: Pair, seed: int) -> NDArray[np.float64]:
    return np.outer(_gauss1d(k[0]), _gauss1d(k[1]))


def _sobel_x(k: Pair, seed: int) -> NDArray[np.float64]:
    return np.outer(_binomial(k[0]), _derivative(k[1]))


def _sobel_y(k: Pair, seed: int) -> NDArray[np.float64]:
    return np.outer(_derivative(k[0]), _binomial(k[1]))


def _laplacian(k: Pair, seed: int) -> NDArray[np.float64]:
    if k == (3, 3):
        return np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float64)
    # Larger sizes: a Gaussian minus its centre tap scaled to zero sum, i.e. a discrete
    # Laplacian of Gaussian (negative centre, positive surround), scaled so the centre is -4.
    g = _gaussian(k, seed)
    centre = (k[0] // 2, k[1] // 2)
    out = g.copy()
    out[centre] = 0.0
    out[centre] = -out.sum()
    return out * (4 / -out[centre])


def _sharpen(k: Pair, seed: int) -> NDArray[np.float64]:
    return _identity(k, seed) - _laplacian(k, seed)


def _emboss(k: Pair, seed: int) -> NDArray[np.float64]:
    u = np.arange(k[0])[:, None] - k[0] // 2
    v = np.arange(k[1])[None, :] - k[1] // 2
    return (u + v).astype(np.float64) + _identity(k, seed)


def _random(k: Pair, seed: int) -> NDArray[np.float64]:
    rng = np.random.default_rng(seed)
    return rng.standard_normal(k) / np.sqrt(k[0] * k[1])


@dataclass(frozen=True)
class Preset:
    """A named kernel with the sizes it is defined for."""

    name: str
    description: str
    make: Callable[[Pair, int], NDArray[np.float64]]
    odd_only: bool = False  # True when the preset needs an odd size (a centre tap) on each axis
    min_size: int = 1
    square_only: bool = False

    def weights(self, size: IntOrPair = 3, seed: int = 0, max_size: int = MAX_KERNEL_SIZE
                ) -> NDArray[np.float64]:
        """The (kh, kw) kernel, kh and kw at most max_size; ValueError naming `kernel_size` otherwise."""
        k = as_pair(size, "kernel_size", 1)
        if max(k) > max_size:
            raise ArgumentError(
                "kernel_size", f"`kernel_size` must be at most {max_size}, got {k[0]}x{k[1]}")
        if self.odd_only and (k[0] % 2 == 0 or k[1] % 2 == 0):
            raise ArgumentError(
                "kernel_size", f"`kernel_size`: the {self.name} kernel needs an odd size, got {k[0]}x{k[1]}")
        if min(k) < self.min_size:
            raise ArgumentError("kernel_size",
                f"`kernel_size`: the {self.name} kernel needs a size of at least {self.min_size}, "
                f"got {k[0]}x{k[1]}"
            )
        if self.square_only and k[0] != k[1]:
            raise ArgumentError(
                "kernel_size", f"`kernel_size`: the {self.name} kernel must be square, got {k[0]}x{k[1]}")
        return self.make(k, seed)


PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        Preset("identity", "Copies the input: a single 1 at the centre.", _identity, odd_only=True),
        Preset("box", "Blurs: the mean of the window.", _box),
        Preset("gaussian", "Blurs smoothly: weights fall off from the centre (σ = size / 6).",
               _gaussian),
        Preset("sobel_x", "Vertical edges: brightness rising to the right is positive.", _sobel_x,
               odd_only=True, min_size=3),
        Preset("sobel_y", "Horizontal edges: brightness rising downwards is positive.", _sobel_y,
               odd_only=True, min_size=3),
        Preset("laplacian", "Blobs and edges in all directions: centre minus surround, sums to 0.",
               _laplacian, odd_only=True, min_size=3),
        Preset("sharpen", "Sharpens: the input plus its negated Laplacian.", _sharpen,
               odd_only=True, min_size=3),
        Preset("emboss", "Relief: a diagonal gradient plus the input.", _emboss, odd_only=True),
        Preset("random", "Random weights, N(0, 1/(kh·kw)), reproducible by seed.", _random),
    )
}


def preset(name: str, size: IntOrPair = 3, seed: int = 0, max_size: int = MAX_KERNEL_SIZE
           ) -> NDArray[np.float64]:
    """The (kh, kw) weights of a named preset.

    Parameters
    ----------
    name : one of PRESETS (identity, box, gaussian, sobel_x, sobel_y, laplacian, sharpen,
        emboss, random)
    size : int or (kh, kw), each 1..max_size
    seed : seed of the 'random' preset
    max_size : largest kh or kw accepted (the web app passes its CONVLENS_MAX_KERNEL_SIZE)

    Raises ValueError naming `kernels` for an unknown name, `kernel_size` for an unsupported size.
    """
    try:
        p = PRESETS[name]
    except KeyError:
        raise ArgumentError("kernels",
            f"`kernels`: unknown preset {name!r}; choose from {', '.join(PRESETS)}"
        ) from None
    return p.weights(size, seed, max_size)


def spread_kernels(kernels: NDArray[np.floating], in_channels: int) -> NDArray[np.floating]:
    """Turn 2-D kernels into conv weights that act on the mean of the input channels.

    Parameters
    ----------
    kernels : ndarray of shape (J, kh, kw)
    in_channels : C / groups, the channels each kernel reads

    Returns
    -------
    weight : ndarray of shape (J, C / groups, kh, kw) with weight[j, c] = kernels[j] / (C / groups),
    so a preset means the same on a gray (C = 1) and an RGB (C = 3) image: y = kernel * mean_c x_c.
    """
    k = np.asarray(kernels)
    if k.ndim != 3:
        raise ArgumentError("weights", f"`weights` of 2-D kernels must have shape (J, kh, kw), got {k.shape}")
    if isinstance(in_channels, bool) or not isinstance(in_channels, int) or in_channels < 1:
        raise ArgumentError("in_channels", f"`in_channels` must be an int >= 1, got {in_channels!r}")
    return np.repeat(k[:, None] / in_channels, in_channels, axis=1)


def kernel_bank(
    names: list[str], size: IntOrPair = 3, in_channels: int = 1, seed: int = 0,
    max_size: int = MAX_KERNEL_SIZE,
) -> NDArray[np.floating]:
    """Conv weights (J, C / groups, kh, kw) from preset names, each spread over the channels.

    The k-th 'random' kernel uses seed + k, so several random kernels differ. ValueError names
    `kernels` for an empty list or an unknown name, `kernel_size` for an unsupported size.
    """
    if not names:
        raise ArgumentError("kernels", "`kernels` must name at least one preset")
    stack = np.stack([preset(name, size, seed + k, max_size) for k, name in enumerate(names)])
    return spread_kernels(stack, in_channels)
