"""Limits and options, read once from CONVLENS_* environment variables, each with a default."""

from __future__ import annotations

import os
from dataclasses import dataclass, fields


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
    cache_bytes: int = 512 * 1024 * 1024  # image cache size (LRU)

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        """Read CONVLENS_* variables over the defaults; ValueError names a bad variable."""
        env = os.environ if environ is None else environ
        values: dict[str, int] = {}
        for f in fields(cls):
            key = f"CONVLENS_{f.name.upper()}"
            if key in env:
                try:
                    values[f.name] = int(env[key])
                except ValueError:
                    raise ValueError(f"{key} must be an integer, got {env[key]!r}") from None
                if values[f.name] < 1:
                    raise ValueError(f"{key} must be >= 1, got {values[f.name]}")
        return cls(**values)
