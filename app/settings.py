"""Limits and options, read once from CONVLENS_* environment variables, each with a default."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from typing import get_type_hints

ZERO_MEANS_AUTO = frozenset({"compute_workers"})  # integer settings whose 0 picks a value by itself


@dataclass(frozen=True)
class Settings:
    """Every limit of the service; override with CONVLENS_<FIELD NAME IN CAPITALS>."""

    max_upload_bytes: int = 20 * 1024 * 1024  # largest accepted upload, in bytes
    max_pixels: int = 40_000_000  # largest decoded image (width x height), checked from the header
    working_side: int = 1024  # longest side images are downscaled to unless `max_side` says more
    max_side: int = 4096  # largest `max_side` a request may ask for
    max_kernels: int = 16  # kernels per request
    max_kernel_size: int = 31  # largest kh or kw
    max_values: int = 65_536  # raw values per map returned by values=true
    max_output_values: int = 67_108_864  # largest layer output J x H_out x W_out (256 MiB of float32)
    max_dense_side: int = 32  # largest crop side for the dense matrix
    max_dense_entries: int = 16_777_216  # largest dense matrix (rows x columns)
    max_stride: int = 64  # largest stride on either axis
    max_padding: int = 64  # largest zero padding on either axis
    max_dilation: int = 16  # largest dilation on either axis
    max_scale: int = 16  # largest nearest-neighbour zoom factor of a PNG (`scale`)
    max_work: int = 20_000_000_000  # multiply-adds one request may ask for (about 1-3 s on 2 cores)
    max_request_bytes: int = 512 * 1024 * 1024  # memory one request may need at its peak, estimated first
    max_png_pixels: int = 33_554_432  # pixels of one PNG after zoom (about 100 MB of RGB)
    max_dense_nonzeros: int = 500_000  # non-zeros of the dense matrix M in one answer (JSON of ~50 MB)
    max_output_magnitude: int = 10**30  # largest |y| a layer may reach (sum |w| + |b|, x in [0, 1])
    max_stack_layers: int = 8  # layers of a stack whose maps are computed (network, erf, convolve)
    max_geometry_layers: int = 64  # layers of a stack whose geometry only is computed (receptive-field)
    max_stack_channels: int = 64  # largest number of maps (output channels) of one layer of a computed stack
    compute_workers: int = 0  # requests computing at once in one worker process (0 = the CPU count)
    queue_depth: int = 8  # requests that may wait for a compute slot; beyond that, 503 at once
    request_seconds: int = 30  # time budget of one request, waiting included (503 past it)
    header_seconds: int = 10  # a connection must send a request's headers within this time (make run)
    body_seconds: int = 60  # a request body must arrive within this time (408 past it)
    cache_bytes: int = 512 * 1024 * 1024  # per-process image cache (LRU) in front of the shared store
    store_dir: str = "~/.cache/convlens/images"  # image store on disk (~ is home), for all local workers
    store_bytes: int = 2 * 1024**3  # on-disk image store size (LRU by bytes); it survives restarts
    redis_url: str = ""  # redis://host:port/db: the image store in Redis, for every machine ("" = on disk)
    redis_ttl_seconds: int = 7 * 24 * 3600  # an image leaves Redis this long after its last upload or read
    output_cache_bytes: int = 320 * 1024 * 1024  # per-process outputs and PNGs (LRU): largest output + 64 MiB
    max_train_steps: int = 5000  # most `steps` (and `every`) of one POST /api/train
    max_train_reports: int = 1000  # most report lines of one training stream (steps / every + 2)
    train_seconds: int = 120  # time budget of one training stream; past it the stream ends with an error line
    max_trainings: int = 2  # training streams running at once in one worker process (503 beyond)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read CONVLENS_* variables over the defaults; ValueError names a bad variable.

        Integer fields must be whole numbers >= 1 (>= 0 for those whose 0 means "automatic", such as
        compute_workers); string fields take the variable's text as it is.
        """
        env = os.environ if environ is None else environ
        types = get_type_hints(cls)
        values: dict[str, int | str] = {}
        for f in fields(cls):
            key = f"CONVLENS_{f.name.upper()}"
            if key not in env:
                continue
            if types[f.name] is str:
                values[f.name] = env[key]
                continue
            try:
                number = int(env[key])
            except ValueError:
                raise ValueError(f"{key} must be an integer, got {env[key]!r}") from None
            least = 0 if f.name in ZERO_MEANS_AUTO else 1
            if number < least:
                raise ValueError(f"{key} must be >= {least}, got {number}")
            values[f.name] = number
        return cls(**values)  # type: ignore[arg-type]
