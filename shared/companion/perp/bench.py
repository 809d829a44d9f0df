"""Benchmark: SparseGPT's time per layer against the layer size (``companion bench --micro sparsegpt``).

For a square ``d x d`` layer, SparseGPT (Frantar & Alistarh, 2023, Section 3.4) costs O(d^3): the Cholesky
factorisations of H and of H^-1 are O(d_in^3), and the sweep over the columns updates the remaining weights
lazily in blocks, O(d_out * d_in^2) in all. At small sizes the per-column Python loop (O(d_in) steps) and the
fixed costs dominate, so the measured exponent approaches 3 only as d grows; the report fits it on the largest
sizes and says where the time goes.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from .prune import sparsegpt_

__all__ = ["sparsegpt_layer_times", "sparsegpt_report"]


def sparsegpt_layer_times(
    sizes: Sequence[int] = (128, 256, 512, 1024, 2048),
    samples: int = 4096,
    sparsity: float = 0.5,
    repeats: int = 3,
    seed: int = 0,
    threads: int | None = 1,
) -> dict:
    """Median seconds of :func:`~companion.perp.prune.sparsegpt_` on a random ``d x d`` Linear with the Hessian
    ``2/N X^T X`` of ``samples`` random inputs, for each ``d`` in ``sizes`` (one thread by default, for stable
    numbers), the time of its two Cholesky factorisations alone, and the least-squares slopes of log(time)
    against log(d) over the three largest sizes."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(seed)
        seconds, factorisation = [], []
        for d in sizes:
            x = torch.randn(samples, d, generator=gen)
            hessian = 2.0 / samples * x.T.double() @ x.double()
            damped = hessian + 0.01 * hessian.diag().mean() * torch.eye(d, dtype=hessian.dtype)
            layer = nn.Linear(d, d, bias=False)
            with torch.no_grad():
                layer.weight.copy_(torch.randn(d, d, generator=gen))
            weight = layer.weight.detach().clone()
            runs, factor = [], []
            for _ in range(repeats):
                start = time.perf_counter()
                torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(damped)), upper=True)
                factor.append(time.perf_counter() - start)
                with torch.no_grad():
                    layer.weight.copy_(weight)
                start = time.perf_counter()
                sparsegpt_(layer, hessian, sparsity)
                runs.append(time.perf_counter() - start)
            seconds.append(statistics.median(runs))
            factorisation.append(statistics.median(factor))
    finally:
        torch.set_num_threads(previous)
    return {
        "sizes": list(sizes),
        "seconds": seconds,
        "factorisation_seconds": factorisation,
        "slope": _slope(sizes, seconds),
        "factorisation_slope": _slope(sizes, factorisation),
        "samples": samples,
        "threads": threads,
    }


def _slope(sizes: Sequence[int], seconds: Sequence[float], top: int = 3) -> float:
    """Least-squares slope of log(seconds) against log(size) over the ``top`` largest sizes."""
    top = min(top, len(sizes))
    if top < 2:
        return float("nan")
    return float(np.polyfit(np.log(sizes[-top:]), np.log(seconds[-top:]), 1)[0])


def sparsegpt_report(**kwargs) -> list[str]:
    """:func:`sparsegpt_layer_times` as printable lines."""
    out = sparsegpt_layer_times(**kwargs)
    lines = [f"SparseGPT time per d x d layer ({out['samples']} calibration rows, {out['threads']} thread):"]
    for d, s, f in zip(out["sizes"], out["seconds"], out["factorisation_seconds"]):
        lines.append(f"  d = {d:5d}: {1000 * s:10.1f} ms  (Cholesky factorisations {1000 * f:8.1f} ms)")
    lines.append(
        f"  log-log slope over the largest sizes: {out['slope']:.2f} in all, "
        f"{out['factorisation_slope']:.2f} for the factorisations (O(d^3) predicts 3; the column sweep, "
        "O(d^2 * blocksize) in a Python loop, dominates at these sizes)"
    )
    return lines
