"""Kernel weights from a request: a .npy file (its header checked first), a nested list, or presets;
the bias; and the bound on what the weights can make a layer output."""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from engine import PRESETS
from engine.kernels import spread_kernels

from .errors import ParamError
from .fields import FLOAT32_MAX
from .settings import Settings


def read_npy(data: bytes, settings: Settings, name: str = "weights_file") -> NDArray[np.float64]:
    """A .npy file of real numbers, its header checked against the limits before anything is allocated."""
    buf = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(buf)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) \
            else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(buf)
    except (ValueError, OSError, EOFError, SyntaxError) as err:
        raise ParamError(name, f"`{name}` is not a readable .npy file ({err})") from None
    if dtype.hasobject or dtype.kind not in "biuf":
        raise ParamError(name, f"`{name}` must hold real numbers, got dtype {dtype}")
    if len(shape) not in (3, 4):
        raise ParamError(name, f"`{name}` must have shape (J, C/groups, kh, kw) or (J, kh, kw), got {shape}")
    most = settings.max_kernels * 3 * settings.max_kernel_size ** 2
    count = int(np.prod(shape, dtype=np.int64))
    if count > most or count * dtype.itemsize > len(data):
        side = settings.max_kernel_size
        raise ParamError(name, f"`{name}` declares shape {shape}: over {settings.max_kernels} kernels of "
                         f"{side}x{side}, or more than the file holds")
    buf.seek(0)
    try:
        raw = np.load(buf, allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise ParamError(name, f"`{name}` is not a readable .npy file ({err})") from None
    raw = raw.astype(np.float64)
    if raw.size == 0 or not np.isfinite(raw).all():
        raise ParamError(name, f"`{name}` must hold finite numbers and not be empty")
    if np.abs(raw).max() > np.finfo(np.float32).max:
        raise ParamError(name, f"`{name}` must hold numbers of at most about 3.4e38 in size (float32)")
    return raw


def shape_weights(raw: NDArray[np.floating], name: str, channels: int, groups: int) -> NDArray[np.floating]:
    """(J, kh, kw) or (J, C/groups, kh, kw) values as (J, C/groups, kh, kw) weights."""
    cg = channels // groups
    if raw.ndim == 3:
        raw = spread_kernels(raw, cg)
    if raw.ndim != 4 or raw.shape[1] != cg:
        raise ParamError(name, f"`{name}` must have shape (J, {cg}, kh, kw) or (J, kh, kw) for "
                         f"{channels} channel(s) in {groups} group(s), got {raw.shape}")
    return raw


def preset_names(text: str, settings: Settings, name: str = "kernels") -> list[str]:
    """Comma-separated preset names, checked: 1..max_kernels known presets."""
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise ParamError(name, f"`{name}` must name at least one preset")
    if len(names) > settings.max_kernels:
        raise ParamError(name, f"`{name}`: at most {settings.max_kernels} kernels, got {len(names)}")
    unknown = [n for n in names if n not in PRESETS]
    if unknown:
        raise ParamError(name, f"`{name}`: unknown preset {unknown[0]!r}; choose from {', '.join(PRESETS)}")
    return names


def check_bank(w: NDArray[np.floating], name: str, settings: Settings, groups: int) -> None:
    j, _, kh, kw = w.shape
    if j > settings.max_kernels:
        raise ParamError(name, f"`{name}`: at most {settings.max_kernels} kernels, got {j}")
    if max(kh, kw) > settings.max_kernel_size:
        raise ParamError(name, f"`{name}`: kernels up to {settings.max_kernel_size} on a side, got {kh}x{kw}")
    if j % groups:
        raise ParamError("groups", f"`groups`={groups} must divide the number of kernels ({j})")


def bias_of(values: Sequence[float], j: int) -> NDArray[np.float32]:
    """`bias` as J values: one number for all kernels or one per kernel."""
    if len(values) == 1:
        return np.full(j, values[0], dtype=np.float32)
    if len(values) != j:
        raise ParamError("bias", f"`bias` must be one value or one per kernel ({j}), got {len(values)}")
    return np.asarray(values, dtype=np.float32)


def magnitude(w: NDArray[np.floating], bias: NDArray[np.floating]) -> float:
    """The largest |y| a layer can output for inputs in [0, 1]: max over kernels of sum |w| + |b|."""
    return float((np.abs(w).sum(axis=(1, 2, 3)) + np.abs(bias)).max())


def check_squares(outputs: int, bound: float, field: str = "weights") -> None:
    """Refuse an mse whose sum of squares could overflow float32: over `outputs` values of |y| up to
    `bound`, N (2 |y|)^2 must stay finite."""
    advice = {"weights": "use smaller weights (or the target's)", "lr": "use a smaller `lr`"}.get(
        field, "use smaller numbers")
    limit = math.sqrt(FLOAT32_MAX / outputs) / 2
    if bound > limit:
        raise ParamError(field, f"`{field}`: loss=mse squares outputs that could reach {bound:.3g}; over "
                         f"{outputs:,} outputs their sum would overflow float32 past {limit:.3g}; {advice}")


def check_magnitude(w: NDArray[np.floating], bias: NDArray[np.floating], settings: Settings, name: str
                    ) -> None:
    """Refuse weights whose outputs could overflow float32 (CONVLENS_MAX_OUTPUT_MAGNITUDE)."""
    bound = magnitude(w, bias)
    if bound > settings.max_output_magnitude:
        field = "bias" if float(np.abs(bias).max()) > settings.max_output_magnitude else name
        raise ParamError(field, f"`{field}`: with these weights and bias the output could reach {bound:.3g}, "
                         f"over the limit of {settings.max_output_magnitude:.3g} "
                         "(CONVLENS_MAX_OUTPUT_MAGNITUDE); use smaller numbers")
