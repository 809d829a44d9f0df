"""Provers: algorithms that pick ``k`` features of a data point against a fixed Arthur (section 2 of the
paper; official ``feature_selection.py`` and ``stochastic_frank_wolfe.py``).

Every prover is called as ``prover(arthur, x, y, role)`` and returns a binary mask ``(B, d)`` with exactly
``k`` ones; ``role`` is ``"merlin"`` (minimise the cross-entropy of the true class) or ``"morgana"``
(maximise the Morgana loss, i.e. push Arthur towards the wrong class). Arthur is evaluated in ``eval()``
mode and never updated: his parameters, gradients and BatchNorm statistics are left as they were.
"""

from __future__ import annotations

import contextlib
import itertools
import math
from typing import Iterator

import torch
from torch import Tensor, nn

from ..frankwolfe import SFW, KSparsePolytope
from .core import apply_mask, prover_loss


@contextlib.contextmanager
def frozen(arthur: nn.Module) -> Iterator[nn.Module]:
    """Arthur in ``eval()`` mode with gradients off for his parameters; both restored on exit."""
    was = arthur.training
    flags = [p.requires_grad for p in arthur.parameters()]
    arthur.eval()
    for p in arthur.parameters():
        p.requires_grad_(False)
    try:
        yield arthur
    finally:
        for p, f in zip(arthur.parameters(), flags):
            p.requires_grad_(f)
        arthur.train(was)


def _losses(arthur: nn.Module, x: Tensor, y: Tensor, masks: Tensor, role: str, groups: Tensor | None) -> Tensor:
    return prover_loss(arthur(apply_mask(x, masks, groups)), y, role)


def topk_mask(scores: Tensor, k: int) -> Tensor:
    """The binary mask with ones at the ``k`` largest scores of every row (exactly ``k`` ones)."""
    idx = scores.topk(k, dim=-1).indices
    return torch.zeros_like(scores).scatter_(-1, idx, 1.0)


def all_subsets(d: int, k: int) -> Tensor:
    """All ``C(d, k)`` binary masks with ``k`` ones, as a ``(C(d, k), d)`` float tensor."""
    idx = torch.tensor(list(itertools.combinations(range(d), k)), dtype=torch.long).reshape(-1, k)
    return torch.zeros(len(idx), d).scatter_(1, idx, 1.0)


class BruteForce:
    """Exhaustive search over all ``C(d, k)`` masks, vectorised over (samples x subsets) in chunks of about
    ``rows`` forward rows (official ``EntropyCalculator``'s brute force, for tabular data). The optimal
    prover against the given Arthur: with it Morgana's relative success rate is 1 by construction."""

    def __init__(self, d: int, k: int, groups: Tensor | None = None, rows: int = 65536):
        self.d, self.k, self.groups, self.rows = d, k, groups, rows
        self.subsets = all_subsets(d, k)

    @torch.no_grad()
    def __call__(self, arthur: nn.Module, x: Tensor, y: Tensor, role: str) -> Tensor:
        S = self.subsets.to(x.device)
        best = torch.empty(len(x), dtype=torch.long, device=x.device)
        per = max(1, self.rows // len(S))
        split = _linear_head(arthur)
        with frozen(arthur):
            for s in range(0, len(x), per):
                xb, yb = x[s : s + per], y[s : s + per]
                b = len(xb)
                if split is None:
                    xr = xb.repeat_interleave(len(S), 0)
                    logits = arthur(apply_mask(xr, S.repeat(b, 1), self.groups))
                else:
                    logits = self._fast_logits(split, xb, S)
                loss = prover_loss(logits, yb.repeat_interleave(len(S)), role)
                best[s : s + b] = loss.reshape(b, len(S)).argmin(1)
        return S[best].clone()

    def _fast_logits(self, split: tuple[nn.Linear, nn.Module], xb: Tensor, S: Tensor) -> Tensor:
        """Logits of every (sample, subset) pair when Arthur starts with a linear layer: its pre-activation
        on ``m * x`` is ``b + sum_{f in S} W[:, cols(f)] x[cols(f)]``, so the per-feature contributions are
        computed once per sample and summed per subset (same numbers as the plain path up to rounding)."""
        first, rest = split
        groups = self.groups if self.groups is not None else torch.arange(self.d, device=xb.device)
        onehot = torch.zeros(len(groups), self.d, device=xb.device).scatter_(1, groups[:, None], 1.0)
        contrib = torch.einsum("hj,bj,jf->bfh", first.weight, xb, onehot)  # (b, d, H)
        idx = S.nonzero()[:, 1].reshape(len(S), self.k)  # (C, k) feature indices per subset
        h = contrib[:, idx, :].sum(2) + first.bias  # (b, C, H)
        return rest(h.reshape(-1, h.shape[-1]))


def _linear_head(arthur: nn.Module) -> tuple[nn.Linear, nn.Module] | None:
    """``(first linear layer, the rest)`` of a :class:`companion.models.small.MLP` Arthur without
    BatchNorm (``Flatten, Linear, ...``), else ``None``."""
    net = getattr(arthur, "net", None)
    if (
        not isinstance(net, nn.Sequential)
        or len(net) < 3
        or not isinstance(net[0], nn.Flatten)
        or not isinstance(net[1], nn.Linear)
        or any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net)
    ):
        return None
    return net[1], net[2:]


class Greedy:
    """Greedy forward selection: ``k`` rounds, each adding the feature whose addition gives the lowest
    prover loss (all candidates of all samples in one batched forward pass per round)."""

    def __init__(self, d: int, k: int, groups: Tensor | None = None):
        self.d, self.k, self.groups = d, k, groups

    @torch.no_grad()
    def __call__(self, arthur: nn.Module, x: Tensor, y: Tensor, role: str) -> Tensor:
        b, d = len(x), self.d
        mask = torch.zeros(b, d, device=x.device)
        eye = torch.eye(d, device=x.device)
        with frozen(arthur):
            xr, yr = x.repeat_interleave(d, 0), y.repeat_interleave(d)
            for _ in range(self.k):
                cand = (mask[:, None, :] + eye[None]).clamp_(max=1.0)  # (b, d, d)
                loss = _losses(arthur, xr, yr, cand.reshape(b * d, d), role, self.groups).reshape(b, d)
                loss = loss.masked_fill(mask.bool(), math.inf)  # never pick a feature twice
                mask.scatter_(1, loss.argmin(1, keepdim=True), 1.0)
        return mask


class PositiveKSparsePolytope(KSparsePolytope):
    """The positive k-sparse polytope ``{m in [0, tau]^d : ||m||_1 <= k tau}`` (the feasible masks of the
    official ``stochastic_frank_wolfe.py``), for ``rows`` independent masks of ``d`` entries stored in one
    tensor of ``n = rows * d`` entries (a product of polytopes, so that one SFW step updates a whole batch).

    LMO per row: ``tau`` on the ``k`` most negative gradient entries, and only where the gradient is
    negative (elsewhere 0). Reuses :class:`companion.frankwolfe.KSparsePolytope` for the projection."""

    def __init__(self, n: int, k: int, radius: float = 1.0, d: int | None = None):
        d = n if d is None else d
        if n % d:
            raise ValueError(f"n = {n} is not a multiple of the row length d = {d}")
        super().__init__(d, k, radius)  # validates k against one row
        self.n, self.d = n, d

    @property
    def diameter(self) -> float:
        rows = self.n // self.d
        return self.radius * math.sqrt(rows * min(2 * self.k, self.d))

    def _lmo(self, g: Tensor) -> Tensor:
        g = g.reshape(-1, self.d)
        idx = (-g).topk(self.k, dim=1).indices
        v = torch.zeros_like(g).scatter_(1, idx, self.radius)
        return (v * (g < 0)).reshape(-1)

    def gauge(self, x: Tensor) -> float:
        a = self._check(x).reshape(-1, self.d)
        if bool((a < 0).any()):
            return math.inf
        return max(float(a.max()), float(a.sum(1).max()) / self.k) / self.radius

    def project(self, x: Tensor) -> Tensor:
        rows = self._check(x).reshape(-1, self.d).clamp(min=0.0)
        out = torch.stack([self._project_abs(r, self.radius, self.k) for r in rows])
        return out.to(x.dtype).reshape(x.shape)


class SFWProver:
    """Per-sample mask optimisation by stochastic Frank-Wolfe over the positive k-sparse polytope, then
    top-k rounding (official ``--approach sfw``): the start is a vertex (top-k of a random draw), each step
    ``m <- (1 - lr) m + lr LMO(momentum of the gradient)`` with :class:`companion.frankwolfe.SFW`
    (momentum 0.9, ``rescale="none"``), ``iterations`` steps (the official default is 300 with early
    stopping; the book uses fewer, see the chapter)."""

    def __init__(
        self,
        d: int,
        k: int,
        groups: Tensor | None = None,
        iterations: int = 50,
        lr: float = 0.1,
        momentum: float = 0.9,
        seed: int = 0,
    ):
        self.d, self.k, self.groups = d, k, groups
        self.iterations, self.lr, self.momentum = iterations, lr, momentum
        self.gen = torch.Generator().manual_seed(seed)

    def __call__(self, arthur: nn.Module, x: Tensor, y: Tensor, role: str) -> Tensor:
        b = len(x)
        start = topk_mask(torch.rand(b, self.d, generator=self.gen), self.k).to(x.device)
        m = nn.Parameter(start)
        region = PositiveKSparsePolytope(b * self.d, self.k, d=self.d)
        opt = SFW([m], [region], lr=self.lr, momentum=self.momentum, rescale="none")
        with frozen(arthur), torch.enable_grad():
            for _ in range(self.iterations):
                opt.zero_grad(set_to_none=True)
                _losses(arthur, x, y, m, role, self.groups).sum().backward()
                opt.step()
        return topk_mask(m.detach() + 1e-6 * start, self.k)  # ties broken towards the start vertex


class AmortisedProver(nn.Module):
    """An amortised prover: an MLP that maps ``x`` to feature scores; the mask is the top-k of the scores,
    trained through the straight-through estimator (forward: the binary top-k mask; backward: the gradient
    of the mass-``k`` soft mask ``k softmax(scores)``, clipped to 1). A stand-in for the official U-Net
    (``--approach unet``), whose continuous mask is L1-normalised to mass k and binarised with top-k. It
    sees the whole ``x``, so it can encode the class in *where* it looks: the cheating that Morgana rules out.
    """

    def __init__(
        self,
        in_features: int,
        d: int,
        k: int,
        groups: Tensor | None = None,
        hidden: int = 64,
        lr: float = 1e-3,
        steps: int = 1,
        net: str = "mlp",
        shape: tuple[int, ...] | None = None,
        channels: int = 16,
    ):
        super().__init__()
        self.d, self.k, self.groups, self.steps = d, k, groups, steps
        if net == "mlp":
            self.net = nn.Sequential(nn.Linear(in_features, hidden), nn.ReLU(), nn.Linear(hidden, d))
        elif net == "cnn":
            self.net = score_cnn(d, shape, groups, channels)
        else:
            raise ValueError(f"unknown prover net {net!r}; accepted: {', '.join(PROVER_NETS)}")
        self.opt = torch.optim.Adam(self.net.parameters(), lr=lr)

    def soft_mask(self, x: Tensor) -> Tensor:
        s = self.net(x)
        soft = (self.k * s.softmax(1)).clamp(max=1.0)
        hard = topk_mask(s.detach(), self.k)
        return hard + soft - soft.detach()

    def fit_step(self, arthur: nn.Module, x: Tensor, y: Tensor, role: str) -> float:
        """``steps`` Adam steps of the prover on its objective against a frozen Arthur; returns the last loss."""
        loss = torch.zeros(())
        with frozen(arthur):
            for _ in range(self.steps):
                self.opt.zero_grad(set_to_none=True)
                loss = _losses(arthur, x, y, self.soft_mask(x), role, self.groups).mean()
                loss.backward()
                self.opt.step()
        return float(loss.detach())

    @torch.no_grad()
    def __call__(self, arthur: nn.Module, x: Tensor, y: Tensor, role: str) -> Tensor:  # type: ignore[override]
        return topk_mask(self.net(x), self.k)


PROVERS = ("brute", "greedy", "sfw", "amortised")
PROVER_NETS = ("mlp", "cnn")


def score_cnn(d: int, shape: tuple[int, ...] | None, groups: Tensor | None = None, channels: int = 16) -> nn.Module:
    """The amortised prover's convolutional score network (a small stand-in for the official U-Net): the
    flattened image ``(B, H * W)`` as ``(B, 1, H, W)``, two 3x3 convolutions with ``channels`` channels and
    ReLU (padding keeps the size), a 1x1 convolution to one score per pixel, flattened back to ``(B, d)``."""
    if groups is not None or shape is None or len(shape) != 2 or shape[0] * shape[1] != d:
        raise ValueError("a CNN prover needs image data: one feature per pixel and a two-dimensional shape")
    return nn.Sequential(
        nn.Unflatten(1, (1, *shape)),
        nn.Conv2d(1, channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, channels, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(channels, 1, 1),
        nn.Flatten(),
    )


def make_prover(name: str, d: int, k: int, in_features: int, groups: Tensor | None = None, seed: int = 0, **options):
    """A prover by name (``brute``, ``greedy``, ``sfw``, ``amortised``); the amortised prover takes
    ``net="cnn"`` and the image ``shape`` for its convolutional score network."""
    if name == "brute":
        return BruteForce(d, k, groups, **options)
    if name == "greedy":
        return Greedy(d, k, groups)
    if name == "sfw":
        return SFWProver(d, k, groups, seed=seed, **options)
    if name == "amortised":
        torch.manual_seed(seed)
        return AmortisedProver(in_features, d, k, groups, **options)
    raise ValueError(f"unknown prover {name!r}; accepted: {', '.join(PROVERS)}")
