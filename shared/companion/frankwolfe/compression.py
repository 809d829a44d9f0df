"""Compression-aware training set-ups and their baselines (Zimmer, Spiegel & Pokutta 2022, Sec. 3-4; official code
``ZIB-IOL/compression-aware-SFW``: ``optimizers/optimizers.py`` for Prox-SGD, ``strategies/structured_strategies.py``
for the penalties).

* :func:`structured_constraints` -- parameter groups with a structured region (group k-support, nuclear, spectral
  k-support or spectral K-sparse) on every Conv2d weight and an L2 ball of the same width on every other tensor;
* :class:`Penalty` -- SGD + ``lam sum_filters ||W_f||_2`` (group lasso, ``Filter_Conv``) or ``lam sum_layers
  ||W||_*`` (nuclear-norm regularisation, ``Nuclear_Conv``) on the Conv2d weights, as a training callback;
* :class:`ProxSGD` -- SGD followed by SVD soft-thresholding ``S <- relu(S - lr lam)`` of every Conv2d weight
  (the proximal operator of ``lr lam ||W||_*``; a full SVD per layer and step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor, nn

from ..train import Callback, TrainState
from .constraints import L2Ball, _owned_parameters, init_norms
from .structured import GroupKSupportBall, NuclearBall, SpectralKSparsePolytope, SpectralKSupportBall

__all__ = [
    "STRUCTURED_KINDS",
    "conv_weights",
    "structured_constraints",
    "svd_soft_threshold",
    "group_lasso",
    "nuclear_norm",
    "Penalty",
    "ProxSGD",
]

STRUCTURED_KINDS = ("group_ksupport", "nuclear", "spectral_ksupport", "spectral_ksparse")


def conv_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, weight)`` of every ``nn.Conv2d`` of ``model``: the tensors structured regions and penalties act on."""
    return [(f"{name}.weight", m.weight) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _matrix(w: Tensor) -> Tensor:
    """A conv weight matricized as ``c_out x (c_in k_h k_w)`` (a view)."""
    return w.reshape(w.shape[0], -1)


def structured_constraints(
    model: nn.Module,
    kind: str,
    width: float = 10.0,
    k: int | float = 0.3,
    *,
    global_: bool = False,
    svd: str = "qr",
    draws: int = 100,
) -> list[dict[str, Any]]:
    """Parameter groups for :class:`~companion.frankwolfe.SFW`: the structured region ``kind`` on every Conv2d
    weight, an L2 ball on every other trainable tensor (linear layers, biases, BatchNorm), as in the official code.

    Sizes follow the reference rule ``D_l = 2 w E||theta_l^init||_2`` (``w = width``; ``draws`` re-initialisations,
    :func:`~companion.frankwolfe.constraints.init_norms`).  ``k`` counts filters (``group_ksupport``) or singular
    values (spectral kinds); a float is a fraction.  ``global_=True`` (``group_ksupport`` only) puts all filters of
    the network in one region of diameter ``2 w sqrt(sum_l E||W_l^init||^2)`` and selects ``k`` of them jointly.
    ``svd``: the top-k SVD mode of the spectral oracles (:func:`~companion.frankwolfe.structured.top_k_svd`).
    """
    if kind not in STRUCTURED_KINDS:
        raise ValueError(f"kind must be one of {STRUCTURED_KINDS}, got {kind!r}")
    if global_ and kind != "group_ksupport":
        raise ValueError("only the group k-support region has a global variant here")
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be positive, got {width!r}")
    owned = _owned_parameters(model)
    norms: dict[int, dict[str, float]] = {}

    def mean_norm(module: nn.Module, name: str) -> float:
        if id(module) not in norms:
            norms[id(module)] = init_norms(module, draws)
        return norms[id(module)][name]

    conv_p, conv_r, conv_sq, other_p, other_r = [], [], [], [], []
    for module, name, p in owned:
        diameter = 2.0 * width * mean_norm(module, name)
        if isinstance(module, nn.Conv2d) and name == "weight":
            conv_p.append(p)
            conv_sq.append(mean_norm(module, name) ** 2)
            n, shape = p.numel(), tuple(p.shape)
            if kind == "group_ksupport":
                conv_r.append(GroupKSupportBall.from_diameter(n, diameter, k=k, groups=shape[0]))
            elif kind == "nuclear":
                conv_r.append(NuclearBall.from_diameter(n, diameter, shape=shape, svd=svd))
            elif kind == "spectral_ksupport":
                conv_r.append(SpectralKSupportBall.from_diameter(n, diameter, k=k, shape=shape, svd=svd))
            else:
                conv_r.append(SpectralKSparsePolytope.from_diameter(n, diameter, k=k, shape=shape, svd=svd))
        else:
            other_p.append(p)
            other_r.append(L2Ball.from_diameter(p.numel(), diameter))
    if not conv_p:
        raise ValueError("the model has no Conv2d layer: structured regions need conv weights")
    groups: list[dict[str, Any]] = []
    if global_:
        sizes = [g for p in conv_p for g in [p[0].numel()] * p.shape[0]]
        region = GroupKSupportBall.from_diameter(sum(sizes), 2.0 * width * math.sqrt(sum(conv_sq)), k=k, groups=sizes)
        groups.append({"params": conv_p, "region": region})
    else:
        groups.append({"params": conv_p, "regions": conv_r})
    if other_p:
        groups.append({"params": other_p, "regions": other_r})
    return groups


# ----------------------------------------------------------------------------------------------------------------------
# penalties and Prox-SGD
# ----------------------------------------------------------------------------------------------------------------------


def svd_soft_threshold(w: Tensor, threshold: float) -> Tensor:
    """``U relu(S - threshold) V^T`` of the matricized ``w`` (the proximal operator of ``threshold ||W||_*``),
    reshaped back (a full SVD)."""
    u, s, vh = torch.linalg.svd(_matrix(w), full_matrices=False)
    return ((u * (s - threshold).clamp_min(0)) @ vh).reshape(w.shape)


def group_lasso(weights: Iterable[Tensor]) -> Tensor:
    """``sum_layers sum_filters ||W_f||_2`` (the ``Filter_Conv`` penalty of the official code)."""
    return sum(torch.linalg.vector_norm(_matrix(w), dim=1).sum() for w in weights)  # type: ignore[return-value]


def nuclear_norm(weights: Iterable[Tensor]) -> Tensor:
    """``sum_layers ||W||_*`` of the matricized weights (the ``Nuclear_Conv`` penalty)."""
    return sum(torch.linalg.svdvals(_matrix(w)).sum() for w in weights)  # type: ignore[return-value]


class Penalty(Callback):
    """Adds the (sub)gradient of ``lam * penalty`` of the model's Conv2d weights to their ``.grad`` after every
    backward pass (``before_backward`` of the official strategies; the loss itself is left unchanged).

    ``kind="group_lasso"``: ``lam W_f / ||W_f||_2`` per filter (0 for a zero filter); ``kind="nuclear"``:
    ``lam U V^T`` from a full SVD (the subgradient of ``||W||_*``, restricted to non-zero singular values).
    """

    KINDS = ("group_lasso", "nuclear")

    def __init__(self, kind: str, lam: float):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.kind, self.lam = kind, float(lam)
        self.weights: list[Tensor] | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.weights = [w for _, w in conv_weights(state.model)]

    @torch.no_grad()
    def on_after_backward(self, state: TrainState) -> None:
        assert self.weights is not None
        for w in self.weights:
            if w.grad is None:
                continue
            w.grad.add_(self.subgradient(w), alpha=self.lam)

    def subgradient(self, w: Tensor) -> Tensor:
        """A subgradient of the (unscaled) penalty of one conv weight."""
        mat = _matrix(w)
        if self.kind == "group_lasso":
            norms = torch.linalg.vector_norm(mat, dim=1, keepdim=True)
            return (mat / norms.clamp_min(torch.finfo(mat.dtype).tiny) * (norms > 0)).reshape(w.shape)
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        return ((u * (s > 0).to(mat.dtype)) @ vh).reshape(w.shape)


class ProxSGD(torch.optim.SGD):
    """Proximal SGD for ``loss + lam sum_layers ||W||_*``: an SGD step (momentum, weight decay as in
    ``torch.optim.SGD``) followed by ``W <- svd_soft_threshold(W, lr lam)`` on the tensors of ``prox_params``
    (the Conv2d weights) -- the Prox-SGD baseline of Zimmer et al. (2022), needing a full SVD per layer and step."""

    def __init__(self, params: Any, prox_params: Iterable[Tensor], lam: float, lr: float = 0.1, **sgd: Any):
        super().__init__(params, lr=lr, **sgd)
        self.prox_ids = {id(p) for p in prox_params}
        self.lam = float(lam)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) in self.prox_ids:
                    p.copy_(svd_soft_threshold(p, group["lr"] * self.lam))
        return loss
