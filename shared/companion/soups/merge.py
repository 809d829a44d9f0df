"""Merging models that share one sparse mask: uniform and greedy soups, BatchNorm recalibration.

Zimmer, Spiegel & Pokutta (ICLR 2024), Section 2 ("Merge" of Algorithm 1): the m retrained copies of one pruned
model share its mask, so their average has exactly that mask. The merge is either the uniform average
(``UniformEnsembling`` of the official code, ``strategies/ensembleStrategies.py``) or the greedy soup of Wortsman et
al. (2022) (``GreedySoup``): candidates sorted by validation accuracy, each added when the soup with it is at least
as accurate on the validation split. Averaged BatchNorm statistics do not describe the averaged network, so every
soup is recalibrated: the running statistics are reset and a fixed, unshuffled prefix (20 %) of the training set
is forwarded in train mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset, Subset, TensorDataset

from ..data.loaders import batches
from ..pruning.masks import Masks
from ..train import evaluate

State = Mapping[str, torch.Tensor]


def average_states(states: Sequence[State], masks: Masks | None = None) -> dict[str, torch.Tensor]:
    """Uniform average (1/m) Σ θ_i of ``state_dict``\\ s, accumulated in float64 (so the average of m identical
    models is that model bit for bit). Integer buffers (BatchNorm's ``num_batches_tracked``) are taken from the
    first state. With ``masks`` the pruned entries are set to exactly zero afterwards: the mask is copied, not
    averaged (with one shared mask the average of zeros is zero anyway)."""
    if not states:
        raise ValueError("average_states needs at least one state")
    out = {}
    for name, first in states[0].items():
        if first.is_floating_point():
            acc = torch.zeros_like(first, dtype=torch.float64)
            for state in states:
                acc += state[name].to(torch.float64)
            out[name] = (acc / len(states)).to(first.dtype)
        else:
            out[name] = first.clone()
    if masks is not None:
        for name, keep in masks.items():
            out[name] = out[name] * keep.to(device=out[name].device, dtype=out[name].dtype)
    return out


def bn_subset(train: Dataset, fraction: float = 0.2) -> Dataset:
    """The first ``fraction`` of ``train`` in its stored (unshuffled) order: the recalibration data of the
    official code (``bn_recalibration_frac`` = 0.2)."""
    n = max(1, int(fraction * len(train)))
    if isinstance(train, TensorDataset):
        return TensorDataset(*(t[:n] for t in train.tensors))
    return Subset(train, range(n))


@torch.no_grad()
def recalibrate_bn(
    model: nn.Module, data: Dataset, batch_size: int = 128, device: torch.device | str = "cpu"
) -> nn.Module:
    """Reset the running statistics of every BatchNorm layer and re-estimate them on ``data`` (forwarded in train
    mode, in order, without gradients). The momentum is set to ``None`` while forwarding, so the running mean and
    variance are the plain average of the per-batch statistics, as ``torch.optim.swa_utils.update_bn`` computes
    them; momenta and the train/eval mode are restored afterwards. Returns ``model``."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return model
    momenta = {m: m.momentum for m in norms}
    for m in norms:
        m.reset_running_stats()
        m.momentum = None
    was_training = model.training
    model.train()
    for x, *_ in batches(data, batch_size):
        model(x.to(device))
    for m in norms:
        m.momentum = momenta[m]
    model.train(was_training)
    return model


def uniform_soup(
    model: nn.Module,
    states: Sequence[State],
    masks: Masks | None = None,
    bn_data: Dataset | None = None,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """Load the uniform average of ``states`` (:func:`average_states`) into ``model`` and recalibrate its
    BatchNorm statistics on ``bn_data`` (skipped when ``None``). Returns ``model``."""
    model.load_state_dict(average_states(states, masks))
    model.to(device)
    if bn_data is not None:
        recalibrate_bn(model, bn_data, batch_size, device)
    return model


@dataclass
class GreedySoup:
    """Outcome of :func:`greedy_soup`: the soup's ``state_dict``, the indices of the chosen ingredients (best
    first), their order by validation accuracy, every ingredient's validation accuracy and the soup's."""

    state: dict[str, torch.Tensor]
    chosen: list[int]
    order: list[int]
    ingredient_val_acc: list[float]
    val_acc: float


def greedy_soup(
    model: nn.Module,
    states: Sequence[State],
    val: Dataset,
    masks: Masks | None = None,
    bn_data: Dataset | None = None,
    batch_size: int = 128,
    device: torch.device | str = "cpu",
) -> GreedySoup:
    """Greedy soup (Wortsman et al., 2022, Recipe 1; ``GreedySoup`` of the official code): sort the ingredients
    by validation accuracy (descending; ties keep their order), start from the best one and add the next one when
    the uniform soup of the chosen set plus it, after BatchNorm recalibration, is at least as accurate on ``val``
    as the current soup. The ingredients are evaluated as given (the SMS phases recalibrate them after
    retraining), so the result is never below the best ingredient on ``val``; with one ingredient chosen it *is*
    that ingredient. ``model`` ends up holding the soup."""
    accs = []
    for state in states:
        model.load_state_dict(state)
        accs.append(evaluate(model.to(device), val, device)["acc"])
    order = sorted(range(len(states)), key=lambda i: -accs[i])
    chosen, best = [order[0]], accs[order[0]]
    best_state = {k: v.clone() for k, v in states[order[0]].items()}
    for i in order[1:]:
        uniform_soup(model, [states[j] for j in chosen + [i]], masks, bn_data, batch_size, device)
        acc = evaluate(model, val, device)["acc"]
        if acc >= best:
            chosen.append(i)
            best = acc
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    return GreedySoup(best_state, chosen, order, accs, best)
