"""Measures of a pruned model: exact sparsity and theoretical speedup.

Theoretical speedup follows the pruning papers of this book (and ShrinkBench, whose FLOP counter the
official code uses): dense FLOPs / non-zero FLOPs, where the FLOPs of a linear or convolutional layer are
its multiply-accumulates for one input sample; a pruned weight saves its multiply-accumulate at every
position the layer is applied to. Other layers (normalisation, activations, pooling) and biases are not
counted: they are the same for dense and sparse models and negligible next to the weight layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from ..metrics import prunable_layers, threshold_sparsity


def sparsity(model: nn.Module) -> dict[str, float]:
    """Fraction of exactly-zero prunable weights per layer and overall (key ``"overall"``)."""
    return threshold_sparsity(model, relative=0.0, absolute=0.0)


@dataclass(frozen=True)
class Flops:
    """Multiply-accumulates of one forward pass of one sample: dense and counting only non-zero weights."""

    dense: int
    nonzero: int

    @property
    def speedup(self) -> float:
        """Theoretical speedup dense / non-zero (``inf`` when every weight is pruned)."""
        return self.dense / self.nonzero if self.nonzero else float("inf")


@torch.no_grad()
def flops(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu") -> Flops:
    """Count the FLOPs of ``model`` on one input of shape ``input_shape`` (without the batch dimension)
    with forward hooks on its linear and convolutional layers: a layer applied at P output positions
    costs P·numel(weight) dense and P·nnz(weight) non-zero multiply-accumulates (P = 1 for linear layers,
    H_out·W_out for 2-d convolutions)."""
    counts = {"dense": 0, "nonzero": 0}

    def hook(module: nn.Module, inputs, output) -> None:
        positions = (
            output[0, 0].numel() if not isinstance(module, nn.Linear) else output[0].numel() // module.weight.shape[0]
        )
        counts["dense"] += positions * module.weight.numel()
        counts["nonzero"] += positions * int((module.weight != 0).sum())

    handles = [m.register_forward_hook(hook) for _, m in prunable_layers(model)]
    was_training = model.training
    model.eval()
    try:
        model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return Flops(counts["dense"], counts["nonzero"])
