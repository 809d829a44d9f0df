"""Evaluation measures shared by the chapters: accuracy and (threshold) sparsity."""

from __future__ import annotations

import torch
from torch import nn


def accuracy(logits: torch.Tensor, targets: torch.Tensor) -> float:
    """Fraction of rows whose arg-max equals the target."""
    return (logits.argmax(dim=1) == targets).float().mean().item()


PRUNABLE_LAYERS = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)


def prunable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Linear and convolutional layers of ``model``, each with the name of its weight (``"<layer>.weight"``)."""
    return [
        (f"{name}.weight" if name else "weight", m)
        for name, m in model.named_modules()
        if isinstance(m, PRUNABLE_LAYERS)
    ]


def prunable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weights of linear and convolutional layers (biases and normalisation parameters excluded), the
    parameters over which sparsity is measured throughout the book."""
    return [(name, m.weight) for name, m in prunable_layers(model)]


@torch.no_grad()
def threshold_sparsity(model: nn.Module, relative: float = 1e-3, absolute: float = 0.0) -> dict[str, float]:
    """Share of near-zero weights per prunable layer and overall (key ``"overall"``).

    A weight counts as zero when ``|w| <= max(absolute, relative * max|w_layer|)``. Frank-Wolfe iterates
    are convex combinations of few vertices, so weights decay towards zero without reaching it exactly;
    a relative threshold per layer measures that (a convention of this book)."""
    out, zeros, total = {}, 0, 0
    for name, w in prunable_parameters(model):
        cut = max(absolute, relative * w.abs().max().item())
        z = int((w.abs() <= cut).sum().item())
        out[name] = z / w.numel()
        zeros, total = zeros + z, total + w.numel()
    out["overall"] = zeros / max(total, 1)
    return out
