"""Evaluation: perplexity in the SparseGPT/Wanda convention and the "zero-shot" multiple-choice analog."""

from __future__ import annotations

import math

import torch


@torch.no_grad()
def perplexity(model, windows: torch.Tensor, batch_size: int = 64) -> float:
    """exp of the mean over non-overlapping windows of each window's mean next-token loss.

    The official code (after SparseGPT and Wanda) multiplies each window's mean over its seqlen − 1 shifted
    targets by seqlen and divides the sum by (windows · seqlen): the factor cancels, which is what we compute.
    A model with uniform logits over V symbols has perplexity exactly V."""
    model.eval()
    total, n = 0.0, 0
    for i in range(0, windows.shape[0], batch_size):
        x = windows[i : i + batch_size].to(next(model.parameters()).device)
        logits = model(input_ids=x).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none").mean(1)
        total += float(loss.double().sum())
        n += x.shape[0]
    return math.exp(total / n)
