"""Which weights to prune: magnitude criteria and layer-wise allocations.

``select(model, sparsity, criterion)`` returns the :class:`~companion.pruning.masks.Masks` that keep the
highest-scoring weights. Criteria (the "Back to Basics" comparison of Zimmer et al., 2022):

- ``global``: one magnitude threshold over all prunable weights jointly (IMP of Han et al., 2015);
- ``uniform``: the same fraction in every layer (Zhu & Gupta, 2017);
- ``uniform_plus``: uniform, but the first layer stays dense and the last keeps at least 20 % (Gale et al., 2019);
- ``erk``: Erdős–Rényi-Kernel densities ∝ (c_out + c_in + k_h + k_w)/(c_out·c_in·k_h·k_w) (Evci et al., 2020);
- ``lamp``: layer-adaptive magnitude scores w_u² / Σ_{v ≥ u} w_v² ranked globally (Lee et al., 2021);
- ``random``: uniformly random scores ranked globally, the control.

Weights that are already pruned (an existing mask) stay pruned: pruning is cumulative, as in IMP. Selection
uses a partial selection on the scores (:func:`global_top`, no full sort of all weights), so the number of pruned weights is exact
even when magnitudes tie.
"""

from __future__ import annotations

import math
from typing import Mapping

import numpy as np
import torch
from torch import nn

from ..metrics import prunable_parameters
from .masks import Masks

CRITERIA = ("global", "uniform", "uniform_plus", "erk", "lamp", "random")
ALLOCATIONS = ("uniform", "uniform_plus", "erk")
UNIFORM_PLUS_LAST_MAX = 0.8  # the last layer keeps at least 20 % of its weights (Gale et al., 2019)


def _count(sparsity: float, n: int) -> int:
    """Number of weights to prune for a fraction ``sparsity`` of ``n`` (floor, robust to 0.7 * 1000 = 700.0000001)."""
    return min(n, max(0, math.floor(sparsity * n + 1e-9)))


def phase_rate(sparsity: float, phases: int) -> float:
    """Per-phase pruning rate p = 1 − (1 − s)^{1/J} of IMP with J phases (fraction of the *remaining*
    weights pruned in each phase), so that after J phases the sparsity is s."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if phases < 1:
        raise ValueError(f"phases must be >= 1, got {phases}")
    return 1.0 - (1.0 - sparsity) ** (1.0 / phases)


def cumulative_sparsity(rate: float, phase: int) -> float:
    """Sparsity after ``phase`` phases that each prune the fraction ``rate`` of the remaining weights: 1 − (1 − p)^j."""
    return 1.0 - (1.0 - rate) ** phase


def lamp_scores(weight: torch.Tensor) -> torch.Tensor:
    """LAMP scores of one layer (Lee et al., 2021, Eq. 2): for weights sorted by increasing magnitude,
    score(u) = w_u² / Σ_{v ≥ u} w_v². The largest weight of every layer scores 1, so no layer is emptied."""
    w2 = weight.detach().flatten().double() ** 2
    order = torch.argsort(w2)
    sorted_w2 = w2[order]
    tail = torch.flip(torch.cumsum(torch.flip(sorted_w2, [0]), 0), [0])  # Σ_{v >= u}
    scores = torch.empty_like(w2)
    scores[order] = sorted_w2 / tail.clamp_min(torch.finfo(torch.float64).tiny)
    return scores.view_as(weight)


def layer_sparsities(model: nn.Module, sparsity: float, allocation: str) -> dict[str, float]:
    """Target sparsity of every prunable layer for an overall ``sparsity`` under ``allocation``
    (``uniform``, ``uniform_plus`` or ``erk``); the layer sizes weight the sparsities to the overall one."""
    shapes = {name: tuple(w.shape) for name, w in prunable_parameters(model)}
    sizes = {name: math.prod(shape) for name, shape in shapes.items()}
    if allocation == "uniform":
        return {name: sparsity for name in shapes}
    if allocation == "uniform_plus":
        return _uniform_plus(sizes, sparsity)
    if allocation == "erk":
        return _erk(shapes, sizes, sparsity)
    raise ValueError(f"unknown allocation {allocation!r}; accepted: {', '.join(ALLOCATIONS)}")


def _uniform_plus(sizes: dict[str, int], sparsity: float) -> dict[str, float]:
    names = list(sizes)
    if len(names) < 2:
        raise ValueError("uniform_plus needs at least two prunable layers (a dense first and a last one)")
    first, last, middle = names[0], names[-1], names[1:-1]
    target = sparsity * sum(sizes.values())
    rest = sum(sizes[n] for n in names[1:])
    s = target / rest
    out = {first: 0.0, **{n: s for n in names[1:]}}
    if s > UNIFORM_PLUS_LAST_MAX:
        out[last] = UNIFORM_PLUS_LAST_MAX
        n_middle = sum(sizes[n] for n in middle)
        s_middle = (target - UNIFORM_PLUS_LAST_MAX * sizes[last]) / n_middle if n_middle else math.inf
        for n in middle:
            out[n] = s_middle
    if max(out.values()) > 1.0:
        raise ValueError(
            f"uniform_plus cannot reach sparsity {sparsity}: the dense first layer and the 20 % "
            f"kept in the last layer leave too few weights"
        )
    return out


def _erk(shapes: dict[str, tuple], sizes: dict[str, int], sparsity: float) -> dict[str, float]:
    """ERK (Evci et al., 2020, Appendix): density_l = ε·raw_l with raw_l = Σ dims / Π dims and ε chosen so
    that the kept weights add up to (1 − s)·N; layers whose density would exceed 1 are made dense and ε is
    solved again for the others."""
    raw = {name: sum(shape) / sizes[name] for name, shape in shapes.items()}
    dense: set[str] = set()
    while True:
        rhs = sum((1 - sparsity) * sizes[n] if n not in dense else -sparsity * sizes[n] for n in sizes)
        divisor = sum(raw[n] * sizes[n] for n in sizes if n not in dense)
        if divisor == 0:
            raise ValueError(f"erk cannot reach sparsity {sparsity}")
        eps = rhs / divisor
        largest = max(raw[n] for n in sizes if n not in dense)
        if eps * largest <= 1.0:
            break
        dense |= {n for n in sizes if n not in dense and raw[n] == largest}
    return {n: 0.0 if n in dense else 1.0 - eps * raw[n] for n in sizes}


def global_top(scores: Mapping[str, torch.Tensor], sparsity: float, min_pruned: int = 0) -> dict[str, torch.Tensor]:
    """0/1 masks (in the scores' dtype) keeping the largest scores over all tensors jointly, with exactly
    max(⌊s·N⌋, ``min_pruned``) entries dropped; ties are broken arbitrarily, the count is exact.

    Fast enough to run at every iteration (GMP, DNW and GSM select this way during training): on the CPU
    ``numpy.argpartition`` (introselect) finds the kept entries about ten times faster than ``torch.topk``,
    elsewhere ``torch.topk``; neither sorts all entries. Float rather than bool masks because multiplying by
    a bool tensor costs several float multiplications on the CPU (type promotion)."""
    flat = torch.cat([s.detach().flatten() for s in scores.values()])
    n = flat.numel()
    keep = n - max(_count(sparsity, n), min_pruned)
    kept = torch.zeros_like(flat)
    if keep == n:
        kept.fill_(1.0)
    elif keep > 0 and flat.device.type == "cpu":
        kept[torch.from_numpy(np.argpartition(flat.numpy(), n - keep)[n - keep :])] = 1.0
    elif keep > 0:
        kept[torch.topk(flat, keep, sorted=False).indices] = 1.0
    sizes = [s.numel() for s in scores.values()]
    return {name: part.view_as(s) for (name, s), part in zip(scores.items(), kept.split(sizes))}


@torch.no_grad()
def select(
    model: nn.Module,
    sparsity: float,
    criterion: str = "global",
    masks: Masks | None = None,
    generator: torch.Generator | None = None,
) -> Masks:
    """Masks that prune ``model`` to an overall ``sparsity`` under ``criterion`` (see the module docstring).

    ``masks`` are the current masks (already-pruned weights stay pruned, as in IMP's later phases); the
    weights are not changed (apply the result with :meth:`Masks.apply_`). For ``global``, ``lamp`` and
    ``random`` exactly ⌊s·N⌋ of the N prunable weights are pruned; per-layer allocations prune ⌊s_l·n_l⌋
    in each layer.
    """
    if criterion not in CRITERIA:
        raise ValueError(f"unknown pruning criterion {criterion!r}; accepted: {', '.join(CRITERIA)}")
    if not 0.0 <= sparsity <= 1.0:
        raise ValueError(f"sparsity must be in [0, 1], got {sparsity}")
    params = prunable_parameters(model)
    current = masks if masks is not None else Masks.dense(model)
    scores = {}
    for name, w in params:
        if criterion == "lamp":
            s = lamp_scores(w).float()
        elif criterion == "random":
            s = torch.rand(w.shape, generator=generator).to(w.device)
        else:
            s = w.detach().abs().float()
        scores[name] = s.masked_fill(~current[name].to(w.device), -math.inf)
    if criterion in ALLOCATIONS:  # the same selection within every layer, to the layer's own target
        targets = layer_sparsities(model, sparsity, criterion)
        return Masks(
            {
                name: global_top({name: scores[name]}, targets[name], int((~current[name]).sum()))[name] > 0
                for name, _ in params
            }
        )
    return Masks({name: m > 0 for name, m in global_top(scores, sparsity, current.zeros()).items()})


def prune_(
    model: nn.Module,
    sparsity: float,
    criterion: str = "global",
    masks: Masks | None = None,
    optimizer: torch.optim.Optimizer | None = None,
    generator: torch.Generator | None = None,
) -> Masks:
    """:func:`select` and apply in one call: zero the pruned weights (and optimizer state) and return the masks."""
    new = select(model, sparsity, criterion, masks, generator)
    new.apply_(model, optimizer)
    return new
