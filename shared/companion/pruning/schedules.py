"""Retraining learning-rate schedules built from the stored per-iteration learning rate of the pretraining run.

Zimmer, Spiegel & Pokutta (ICLR 2023), Section 2 and the "LR schedules" figure. With η_max / η_min the
largest / final learning rate of the pretraining schedule (length T iterations) and T_rt retraining
iterations:

==========  =========================================================================================
``ft``      fine-tuning (Han et al., 2015): constant η_min
``lrw``     learning-rate rewinding (Renda et al., 2020): the last T_rt values of the original schedule
``slr``     scaled LR restarting (Le & Hua, 2021): warm-up to η_max, then the whole original schedule
            compressed into the remaining iterations
``clr``     cyclic LR restarting (Le & Hua, 2021): warm-up, then cosine from η_max to η_min
``llr``     linear LR restarting: warm-up, then linear from η_max to 0
``allr``    adaptive LLR: LLR started from η₀ = d·η_max, d = min(1, max(d₁, d₂)) (:func:`allr_factor`)
==========  =========================================================================================

Warm-ups cover the first 10 % of the retraining iterations and follow a half-cosine ramp from 0 to the
peak (as the official code, which implements it with ``CosineAnnealingLR``); the decays are written so
that the next value after the budget would be exactly η_min (CLR) or 0 (LLR, ALLR), as ``LinearLR`` does.
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

SCHEDULES = ("ft", "lrw", "slr", "clr", "llr", "allr")
WARMUP_FRACTION = 0.1


def warmup_length(iterations: int) -> int:
    """Warm-up iterations of a retraining run: 10 % of ``iterations``, rounded down."""
    return int(WARMUP_FRACTION * iterations)


def half_cosine_ramp(peak: float, n: int) -> np.ndarray:
    """``n`` values rising from 0 towards ``peak`` along a half cosine: peak·(1 − cos(π t / n)) / 2."""
    t = np.arange(n)
    return peak * (1.0 - np.cos(np.pi * t / max(n, 1))) / 2.0


def retrain_schedule(name: str, pretrain_lrs: Sequence[float], iterations: int, d: float = 1.0) -> np.ndarray:
    """Learning rate of every retraining iteration under schedule ``name`` (see the module docstring).

    ``pretrain_lrs`` is the learning rate of every pretraining iteration; ``d`` is ALLR's factor
    (ignored by the other schedules).
    """
    if name not in SCHEDULES:
        raise ValueError(f"unknown retraining schedule {name!r}; accepted: {', '.join(SCHEDULES)}")
    lrs = np.asarray(pretrain_lrs, dtype=float)
    if lrs.ndim != 1 or len(lrs) == 0:
        raise ValueError("pretrain_lrs must be a non-empty 1-d sequence (one learning rate per iteration)")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    eta_max, eta_min = float(lrs.max()), float(lrs[-1])
    if name == "ft":
        return np.full(iterations, eta_min)
    if name == "lrw":
        if iterations > len(lrs):
            raise ValueError(f"LRW replays the last {iterations} pretraining iterations, but only {len(lrs)} exist")
        return lrs[-iterations:].copy()
    peak = eta_max * min(1.0, d) if name == "allr" else eta_max
    n_warm = warmup_length(iterations)
    n_decay = iterations - n_warm
    i = np.arange(n_decay)
    if name == "slr":
        decay = lrs[(i * len(lrs)) // n_decay]
    elif name == "clr":
        decay = eta_min + (eta_max - eta_min) * 0.5 * (1.0 + np.cos(np.pi * i / n_decay))
    else:  # llr, allr
        decay = peak * (1.0 - i / n_decay)
    return np.concatenate([half_cosine_ramp(peak, n_warm), decay])


def _norm(tensors: Sequence[torch.Tensor]) -> float:
    return math.sqrt(sum(float(t.detach().double().pow(2).sum()) for t in tensors))


def allr_factor(
    before: Sequence[torch.Tensor],
    after: Sequence[torch.Tensor],
    pruned_fraction: float,
    retrain_iterations: int,
    pretrain_iterations: int,
) -> dict[str, float]:
    """ALLR's factor d = min(1, max(d₁, d₂)) (Zimmer et al., 2023, Section 3.1).

    d₁ = ‖θ − θ_p‖₂ / (‖θ‖₂·√s) measures how much of the norm pruning removed relative to the most it can
    remove when a fraction s of the weights is pruned (all magnitudes equal), so d₁ ∈ [0, 1];
    d₂ = T_rt / T is the retraining budget relative to the (dense) training budget. ``before``/``after``
    are all parameters of the model before and after pruning (weights, biases and normalisation
    parameters, as in the official code), ``pruned_fraction`` the fraction s pruned in this phase.
    """
    if not 0.0 < pruned_fraction <= 1.0:
        raise ValueError(f"pruned_fraction must be in (0, 1], got {pruned_fraction}")
    removed = _norm([b - a for b, a in zip(before, after)])
    total = _norm(before)
    d1 = removed / (total * math.sqrt(pruned_fraction)) if total > 0 else 0.0
    d2 = retrain_iterations / pretrain_iterations
    return {"d1": d1, "d2": d2, "d": min(1.0, max(d1, d2))}
