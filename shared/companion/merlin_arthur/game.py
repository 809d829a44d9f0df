"""The Merlin-Arthur game: pretraining Arthur, min-max training and its evaluation (section 2 of the paper;
official ``merlin_arthur_framework.py``, ``train_min_max*``)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..data.loaders import batches
from .core import (
    apply_mask,
    class_entropy,
    completeness_soundness,
    decisions,
    information_bound,
    morgana_criterion,
    precision_bound,
    precision_by_matching,
)
from .provers import AmortisedProver


@dataclass
class FeatureData:
    """A two-class data set for the game: inputs ``X`` (N, D), labels ``y`` in {0, 1}, ``d`` features and
    ``groups`` (column -> feature, ``None`` when every column is a feature), plus a train/test split."""

    X: Tensor
    y: Tensor
    d: int
    groups: Tensor | None
    train_idx: Tensor
    test_idx: Tensor
    name: str = ""
    shape: tuple[int, ...] | None = None  # image shape of one point, for figures

    @property
    def train(self) -> tuple[Tensor, Tensor]:
        return self.X[self.train_idx], self.y[self.train_idx]

    @property
    def test(self) -> tuple[Tensor, Tensor]:
        return self.X[self.test_idx], self.y[self.test_idx]


def pretrain_arthur(
    arthur: nn.Module, X: Tensor, y: Tensor, epochs: int = 10, batch_size: int = 64, lr: float = 1e-3, seed: int = 0
) -> nn.Module:
    """Regular training of Arthur on full inputs (official ``--approach regular``, then
    ``--pretrained_arthur``): cross-entropy of the true class, Adam."""
    opt = torch.optim.Adam(arthur.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    arthur.train()
    for _ in range(epochs):
        for xb, yb in batches(torch.utils.data.TensorDataset(X, y), batch_size, shuffle=True, generator=gen):
            opt.zero_grad(set_to_none=True)
            F.cross_entropy(arthur(xb), yb).backward()
            opt.step()
    return arthur


@dataclass
class GameHistory:
    """Per epoch: Arthur's mean loss on Merlin's features and on Morgana's."""

    merlin_loss: list[float] = field(default_factory=list)
    morgana_loss: list[float] = field(default_factory=list)


def train_min_max(
    arthur: nn.Module,
    merlin,
    morgana,
    X: Tensor,
    y: Tensor,
    gamma: float = 2.0,
    epochs: int = 10,
    batch_size: int = 64,
    lr: float = 1e-3,
    seed: int = 0,
    groups: Tensor | None = None,
) -> GameHistory:
    """Min-max training: per mini-batch Merlin and Morgana respond to the current (frozen, eval-mode)
    Arthur, then Arthur takes one Adam step on ``CE(A(M(x)), y) + gamma L_morg(A(M^(x)), y)``.

    An :class:`AmortisedProver` first takes its own optimisation step(s) on the batch (official U-Net
    selectors); the per-sample provers (brute force, greedy, SFW) best-respond from scratch. With
    ``gamma = 0`` Morgana plays no part in Arthur's objective (the Morgana-free baseline); she is then not
    even computed during training."""
    for prover in (merlin, morgana):  # an amortised prover trains where the data is
        if isinstance(prover, nn.Module):
            prover.to(X.device)
    opt = torch.optim.Adam(arthur.parameters(), lr=lr)
    gen = torch.Generator().manual_seed(seed)
    hist = GameHistory()
    for _ in range(epochs):
        sums, n = np.zeros(2), 0
        for xb, yb in batches(torch.utils.data.TensorDataset(X, y), batch_size, shuffle=True, generator=gen):
            if isinstance(merlin, AmortisedProver):
                merlin.fit_step(arthur, xb, yb, "merlin")
            m = merlin(arthur, xb, yb, "merlin")
            use_morgana = gamma != 0
            if use_morgana:
                if isinstance(morgana, AmortisedProver):
                    morgana.fit_step(arthur, xb, yb, "morgana")
                mh = morgana(arthur, xb, yb, "morgana")
            arthur.train()
            opt.zero_grad(set_to_none=True)
            l_m = F.cross_entropy(arthur(apply_mask(xb, m, groups)), yb)
            loss = l_m
            l_h = torch.zeros(())
            if use_morgana:
                l_h = morgana_criterion(arthur(apply_mask(xb, mh, groups)), yb)
                loss = l_m + gamma * l_h
            loss.backward()
            opt.step()
            sums += np.array([float(l_m.detach()), float(l_h.detach())]) * len(yb)
            n += len(yb)
        hist.merlin_loss.append(sums[0] / n)
        hist.morgana_loss.append(sums[1] / n)
    arthur.eval()
    return hist


def evaluate_game(arthur: nn.Module, merlin, morgana, data: FeatureData, batch_size: int = 256) -> dict:
    """Completeness and soundness on the test points, the precision bound with kappa = alpha = B = 1, and
    Merlin's measured precision and conditional entropy by matching his test features over the whole data
    set (train + test, as the official ``main_entropy.py``), with the MI lower bound beside the measured MI
    ``H(c) - E H(c | z)``. Returns the numbers and the masks. Evaluates on the CPU, where the data set
    lives: Arthur and an amortised prover trained on a GPU are moved there (in place)."""
    Xt, yt = data.test
    arthur.cpu().eval()
    for prover in (merlin, morgana):
        if isinstance(prover, nn.Module):
            prover.cpu()
    mk, mh = [], []
    for s in range(0, len(Xt), batch_size):
        mk.append(merlin(arthur, Xt[s : s + batch_size], yt[s : s + batch_size], "merlin"))
        mh.append(morgana(arthur, Xt[s : s + batch_size], yt[s : s + batch_size], "morgana"))
    mk, mh = torch.cat(mk), torch.cat(mh)
    cs = completeness_soundness(decisions(arthur, Xt, mk, data.groups), decisions(arthur, Xt, mh, data.groups), yt)
    match = precision_by_matching(data.X, data.y, Xt, mk, yt, data.groups)
    h_c = class_entropy(data.y.numpy())
    bound = precision_bound(cs["eps_c"], cs["eps_s"])
    out = {
        **cs,
        "bound": bound,
        "precision": float(match["precision"].mean()),
        "cond_entropy": float(match["entropy"].mean()),
        "mean_matches": float(match["count"].mean()),
        "mi_bound": information_bound(bound, h_c),
        "mi": h_c - float(match["entropy"].mean()),
        "n_test": int(len(yt)),
    }
    return {"metrics": out, "merlin_masks": mk, "morgana_masks": mh}
