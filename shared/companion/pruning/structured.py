"""Compression operations without retraining (Zimmer, Spiegel & Pokutta 2022, Sec. 4; official code
``ZIB-IOL/compression-aware-SFW``, ``strategies/structured_strategies.py`` and ``metrics/``).

* :func:`filter_masks` / :func:`prune_filters_` -- per Conv2d layer, prune the fraction ``s`` of output filters
  with the smallest L1 norm (``torch.nn.utils.prune.ln_structured`` with ``n = 1``, ``dim = 0``; PFEC style);
* :class:`DecomposedConv2d` / :func:`low_rank` -- replace each Conv2d by the truncated SVD of its matricized weight,
  a ``k x k`` convolution to ``r`` channels followed by a ``1 x 1`` convolution to ``c_out``, keeping
  ``max(1, floor((1 - s) rank))`` singular values;
* :func:`relative_distance_to_pruned` -- ``||theta - prune_s(theta)|| / ||theta||`` over the prunable weights under
  global magnitude pruning, the quantity of the paper's distance figure.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from ..metrics import prunable_parameters
from .criteria import global_top
from .masks import Masks

__all__ = [
    "filter_masks",
    "prune_filters_",
    "DecomposedConv2d",
    "decompose_conv",
    "kept_rank",
    "low_rank",
    "relative_distance_to_pruned",
]


@torch.no_grad()
def filter_masks(model: nn.Module, fraction: float) -> Masks:
    """Masks pruning, in every ``nn.Conv2d``, the ``round(fraction c_out)`` output filters of smallest L1 norm
    (as ``ln_structured(n=1, dim=0)``; ties broken by index); other prunable weights stay dense."""
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    masks = dict(Masks.dense(model))
    for name, module in model.named_modules():
        if not isinstance(module, nn.Conv2d):
            continue
        w = module.weight
        c_out = w.shape[0]
        n_prune = int(round(fraction * c_out))
        keep = torch.ones_like(w, dtype=torch.bool)
        if n_prune:
            l1 = w.abs().reshape(c_out, -1).sum(1)
            keep[torch.argsort(l1, stable=True)[:n_prune]] = False
        masks[f"{name}.weight"] = keep
    return Masks(masks)


def prune_filters_(model: nn.Module, fraction: float) -> Masks:
    """:func:`filter_masks` applied in place (the pruned filters become exact zeros); returns the masks."""
    masks = filter_masks(model, fraction)
    masks.apply_(model)
    return masks


class DecomposedConv2d(nn.Module):
    """A Conv2d ``W`` (``c_out x c_in x k_h x k_w``) replaced by its rank-``r`` truncated SVD
    ``W ~ U_r S_r V_r^T`` (matricized as ``c_out x (c_in k_h k_w)``): ``first`` is a conv with the original kernel,
    stride, padding and dilation and weight ``sqrt(S_r) V_r^T`` (``r`` output channels), ``second`` a 1x1 conv with
    weight ``U_r sqrt(S_r)`` and the original bias.  At full rank it reproduces the layer up to round-off."""

    def __init__(self, conv: nn.Conv2d, rank: int):
        super().__init__()
        if conv.groups != 1:
            raise ValueError("grouped convolutions are not decomposed")
        c_out, c_in, kh, kw = conv.weight.shape
        full = min(c_out, c_in * kh * kw)
        if not 1 <= rank <= full:
            raise ValueError(f"rank {rank} must lie in [1, {full}]")
        with torch.no_grad():
            mat = conv.weight.detach().reshape(c_out, -1).double()
            u, s, vh = torch.linalg.svd(mat, full_matrices=False)
            root = s[:rank].sqrt()
            first = (root[:, None] * vh[:rank]).reshape(rank, c_in, kh, kw)
            second = (u[:, :rank] * root).reshape(c_out, rank, 1, 1)
        self.rank = rank
        self.first = nn.Conv2d(
            c_in, rank, (kh, kw), stride=conv.stride, padding=conv.padding, dilation=conv.dilation, bias=False
        ).to(conv.weight.device, conv.weight.dtype)
        self.second = nn.Conv2d(rank, c_out, 1, bias=conv.bias is not None).to(conv.weight.device, conv.weight.dtype)
        with torch.no_grad():
            self.first.weight.copy_(first.to(conv.weight.dtype))
            self.second.weight.copy_(second.to(conv.weight.dtype))
            if conv.bias is not None:
                self.second.bias.copy_(conv.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.second(self.first(x))


def decompose_conv(conv: nn.Conv2d, rank: int) -> DecomposedConv2d:
    """The rank-``rank`` :class:`DecomposedConv2d` of ``conv``."""
    return DecomposedConv2d(conv, rank)


def kept_rank(conv: nn.Conv2d, fraction_removed: float) -> int:
    """``max(1, floor((1 - s) rank))`` singular values kept when the fraction ``s`` is removed."""
    full = min(conv.weight.shape[0], conv.weight[0].numel())
    return max(1, math.floor((1.0 - fraction_removed) * full + 1e-9))


def low_rank(model: nn.Module, fraction_removed: float) -> nn.Module:
    """A copy of ``model`` with every ``nn.Conv2d`` replaced by its :class:`DecomposedConv2d` keeping
    :func:`kept_rank` singular values (``model`` itself is unchanged)."""
    if not 0.0 <= fraction_removed < 1.0:
        raise ValueError(f"fraction_removed must lie in [0, 1), got {fraction_removed}")
    out = copy.deepcopy(model)
    targets = [(name, m) for name, m in out.named_modules() if isinstance(m, nn.Conv2d)]
    for name, conv in targets:
        parent_name, _, child = name.rpartition(".")
        parent = out.get_submodule(parent_name) if parent_name else out
        setattr(parent, child, DecomposedConv2d(conv, kept_rank(conv, fraction_removed)))
    return out


@torch.no_grad()
def relative_distance_to_pruned(model: nn.Module, sparsity: float) -> float:
    """``||theta - prune_s(theta)||_2 / ||theta||_2`` over all prunable weights (linear and conv weights), where
    ``prune_s`` keeps the ``(1 - s)`` share of largest magnitudes globally (``relative_distance_to_pruned`` of
    the official code): the energy share of the weights global magnitude pruning would remove, square-rooted."""
    params = prunable_parameters(model)
    keep = global_top({name: w.abs().float() for name, w in params}, sparsity)
    removed = sum(float((w.double() * (1 - keep[name].double())).square().sum()) for name, w in params)
    total = sum(float(w.double().square().sum()) for _, w in params)
    return math.sqrt(removed / total) if total > 0 else 0.0
