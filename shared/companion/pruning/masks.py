"""Pruning masks that survive training, saving and averaging.

The book uses the plainest scheme that keeps models ordinary ``nn.Module``\\ s: a pruned weight is an
entry that is *exactly zero* in the parameter itself, and a :class:`Masks` object (parameter name -> bool
tensor, ``True`` = kept) remembers which entries must stay zero. Nothing is re-parametrised, so
``state_dict`` keys, ``torch.save``/``load_state_dict`` and parameter averaging (model soups) work as for
a dense model; :meth:`Masks.from_model` recovers the mask from a saved sparse model.

Prunable parameters are the weights of linear and convolutional layers
(:func:`companion.metrics.prunable_parameters`): biases and normalisation parameters are never pruned, and
sparsity is measured over prunable weights only (as in the official code of the pruning papers).
"""

from __future__ import annotations

from typing import Iterator, Mapping

import torch
from torch import nn

from ..metrics import prunable_parameters
from ..train import Callback, TrainState


class Masks(Mapping[str, torch.Tensor]):
    """Boolean keep-masks of the prunable weights of one model, keyed by parameter name."""

    def __init__(self, masks: Mapping[str, torch.Tensor]):
        self._masks = {name: m.detach().to(torch.bool) for name, m in masks.items()}
        self._multipliers: dict[tuple, torch.Tensor] = {}  # float copies per device/dtype (see apply_)

    # -- construction -------------------------------------------------------------------------------------
    @classmethod
    def dense(cls, model: nn.Module) -> "Masks":
        """All-``True`` masks (nothing pruned) for every prunable weight of ``model``."""
        return cls({name: torch.ones_like(w, dtype=torch.bool) for name, w in prunable_parameters(model)})

    @classmethod
    def from_model(cls, model: nn.Module) -> "Masks":
        """The masks implied by the exact zeros of ``model``'s prunable weights (e.g. after loading a
        pruned checkpoint)."""
        return cls({name: w.detach() != 0 for name, w in prunable_parameters(model)})

    # -- mapping protocol ---------------------------------------------------------------------------------
    def __getitem__(self, name: str) -> torch.Tensor:
        return self._masks[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._masks)

    def __len__(self) -> int:
        return len(self._masks)

    def __repr__(self) -> str:
        return f"Masks({len(self)} tensors, sparsity {self.sparsity():.4f})"

    # -- measures -----------------------------------------------------------------------------------------
    def numel(self) -> int:
        """Number of prunable weights."""
        return sum(m.numel() for m in self._masks.values())

    def zeros(self) -> int:
        """Number of pruned weights."""
        return sum(int((~m).sum()) for m in self._masks.values())

    def sparsity(self) -> float:
        """Fraction of pruned weights over all prunable weights."""
        return self.zeros() / max(self.numel(), 1)

    def layer_sparsity(self) -> dict[str, float]:
        """Fraction of pruned weights per prunable tensor."""
        return {name: float((~m).sum()) / m.numel() for name, m in self._masks.items()}

    def state_dict(self) -> dict[str, torch.Tensor]:
        """Plain dict of bool tensors (``torch.save`` it next to the model's ``state_dict``)."""
        return dict(self._masks)

    # -- enforcing ----------------------------------------------------------------------------------------
    def bind(self, model: nn.Module) -> list[tuple[nn.Parameter, torch.Tensor]]:
        """(parameter, 0/1 multiplier) pairs of ``model`` for :meth:`apply_bound`: resolve names once, not at
        every training step."""
        params = dict(prunable_parameters(model))
        missing = set(self._masks) - set(params)
        if missing:
            raise KeyError(f"masks name parameters the model does not have: {sorted(missing)}")
        return [(params[name], self._multiplier(name, params[name])) for name in self._masks]

    @staticmethod
    @torch.no_grad()
    def apply_bound(
        bound: list[tuple[nn.Parameter, torch.Tensor]], optimizer: torch.optim.Optimizer | None = None
    ) -> None:
        """Zero the pruned entries of bound parameters (and of their same-shaped optimizer state)."""
        for p, mask in bound:
            p.mul_(mask)
            if optimizer is not None:
                for value in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(value) and value.shape == p.shape:
                        value.mul_(mask)

    def apply_(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None) -> None:
        """Zero the pruned weights of ``model`` in place and, given an optimizer, every per-parameter state
        tensor of the same shape (momentum buffers, Adam moments), so that stale momentum cannot move a
        pruned weight away from zero again (``enforce_prunedness`` of the official code)."""
        self.apply_bound(self.bind(model), optimizer)

    def _multiplier(self, name: str, like: torch.Tensor) -> torch.Tensor:
        """The mask as 0/1 in ``like``'s dtype and device, cached: multiplying by a bool tensor costs several
        float multiplications on the CPU (type promotion), and apply_ runs after every training step."""
        key = (name, like.device, like.dtype)
        if key not in self._multipliers:
            self._multipliers[key] = self._masks[name].to(device=like.device, dtype=like.dtype)
        return self._multipliers[key]


class KeepMasked(Callback):
    """Training callback: apply ``masks`` when training starts and after every optimizer step, so pruned
    weights and their optimizer state stay exactly zero during retraining."""

    def __init__(self, masks: Masks):
        self.masks = masks
        self.bound: list[tuple[nn.Parameter, torch.Tensor]] | None = None  # resolved on first use

    def on_train_begin(self, state: TrainState) -> None:
        self.bound = None  # a new run may train another model
        self.on_step_end(state)

    def on_step_end(self, state: TrainState) -> None:
        if self.bound is None:
            self.bound = self.masks.bind(state.model)
        Masks.apply_bound(self.bound, state.optimizer)
