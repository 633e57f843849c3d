"""Which device a run uses, and whether bf16 autocast is fast on it; shared by every command."""

from __future__ import annotations

import platform
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import torch

from selfsup.errors import SelfsupError


def resolve_device(name: str) -> torch.device:
    """`auto` picks CUDA when present; asking for CUDA on a machine without it is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise SelfsupError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SelfsupError(
            f"device {name!r} was asked for but no CUDA GPU is visible; use --device cpu"
        )
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise SelfsupError(
                f"device {name!r} does not exist: {torch.cuda.device_count()} GPU(s) visible"
            )
    return device


def bf16_is_fast(device: torch.device) -> bool:
    """Whether bf16 matmuls and convolutions run natively: CUDA, or a CPU with AVX512-BF16/AMX.

    On a Zen 4 CPU with AVX512-BF16, a ResNet-18 forward+backward ran 2.3x faster under bf16
    autocast than in fp32; on CPUs without these instructions bf16 is emulated and slower.
    """
    if device.type == "cuda":
        return True
    if device.type != "cpu":
        return False
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def mixed_precision(device: torch.device, enabled: bool) -> Any:
    """bf16 autocast for the forward pass where the hardware runs it fast, else a no-op."""
    if enabled and bf16_is_fast(device):
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return nullcontext()


def synchronize(device: torch.device) -> None:
    """Wait for queued work on a CUDA device (a no-op on CPU), before reading a clock."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what `platform` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def numba_without_openmp() -> None:
    """Run numba's parallel code (UMAP's maps, aeon's DTW) on numba's own thread pool, not on
    an OpenMP one: numba's OpenMP threads outlive the call and starve torch's, so every torch
    step after a map ran 20 to 70 times slower on 2 cores (the suite's autoregressive resume
    test: 3.4 s alone, 239 s after a report). Call before numba first runs in parallel; a
    layer already running is kept."""
    import numba

    if numba.config.THREADING_LAYER == "default":
        numba.config.THREADING_LAYER = "workqueue"
