"""Reproducibility: one call seeds everything, fixes the thread count and picks the device.

The native code paths (SIMD width, MKL branch, convolution library) are pinned by the kernel's environment,
which must be set before torch loads: see :mod:`companion.numerics`. :func:`setup` checks that it was and
warns in one line when it was not.
"""

from __future__ import annotations

import os
import random

import numpy as np
import torch

from . import numerics

# One intra-op thread: the book's models are tiny, and with two threads OpenMP's synchronisation costs more
# than it saves (measured: a digits MLP trains 4x faster on one thread, 9x when the other core is busy).
# A fixed count also keeps CPU reductions bit-stable, which nbval relies on. Larger runs pass threads=None.
DEFAULT_THREADS = 1


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"`` -> ``cuda`` when a GPU is visible, else ``cpu``; any other string is passed to torch.

    Raises ``ValueError`` for a CUDA device on a machine without one, so a GPU profile on a CPU box fails
    at once instead of silently running for hours on the CPU.
    """
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but no CUDA GPU is available (use 'auto' or 'cpu')")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators (all devices)."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def setup(
    seed: int = 0, device: str = "auto", threads: int | None = DEFAULT_THREADS, deterministic: bool = True
) -> torch.device:
    """Make a notebook reproducible and return its device.

    Seeds all generators, sets ``torch.set_num_threads(threads)`` (``None`` keeps torch's choice) and, with
    ``deterministic``, turns mkldnn (oneDNN) off so that CPU convolutions take ATen's im2col + GEMM path, whose
    GEMM is pinned by ``MKL_CBWR`` (oneDNN's blocking depends on the CPU's cache sizes), and warns once when
    the process was not started with :data:`companion.numerics.PINNED_ENV`. On a GPU it also asks torch for
    deterministic kernels (``warn_only`` so that ops without a deterministic variant still run) and sets the
    cuBLAS workspace variable that this needs; on the CPU, where one thread makes the kernels deterministic,
    that flag changes no result (checked on the book's notebooks) and would cost a second of imports.
    """
    dev = resolve_device(device)
    if threads is not None:
        torch.set_num_threads(threads)
    if deterministic:
        if dev.type == "cuda":
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        torch.backends.cudnn.benchmark = False
        torch.backends.mkldnn.enabled = False
        numerics.warn_if_unpinned()
    seed_everything(seed)
    return dev


def generator(seed: int) -> torch.Generator:
    """A fresh CPU ``torch.Generator`` seeded with ``seed`` (for data order and splits that must not
    depend on how much randomness the model initialisation consumed)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return g
