"""Structured compression of the ``sfw-compression`` chapter: filter pruning by L1 norm, the truncated-SVD
decomposition of a conv layer into two convs, and the relative distance to the pruned model."""

from __future__ import annotations

import math

import pytest
import torch
from companion import pruning
from companion.models import cnn_bn
from torch import nn


def test_filter_masks_prune_smallest_l1_filters_per_layer():
    conv = nn.Conv2d(2, 5, 3, bias=False)
    with torch.no_grad():
        for i, scale in enumerate([3.0, 0.1, 2.0, 0.5, 1.0]):
            conv.weight[i] = scale
    model = nn.Sequential(conv, nn.Flatten(), nn.Linear(5 * 36, 2))
    masks = pruning.filter_masks(model, 0.4)  # round(0.4 * 5) = 2 filters: those of scale 0.1 and 0.5
    kept = masks["0.weight"].reshape(5, -1).all(1)
    assert kept.tolist() == [True, False, True, False, True]
    assert masks["2.weight"].all()  # linear layers are untouched
    pruning.prune_filters_(model, 0.4)
    assert (conv.weight[1] == 0).all() and (conv.weight[3] == 0).all() and (conv.weight[0] != 0).all()


def test_filter_pruning_counts_on_cnn():
    model = cnn_bn(width=8)
    masks = pruning.filter_masks(model, 0.5)
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            pruned = (~masks[f"{name}.weight"].reshape(m.weight.shape[0], -1).all(1)).sum()
            assert int(pruned) == round(0.5 * m.weight.shape[0])


def test_decomposed_conv_full_rank_reproduces_layer():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 6, 3, stride=2, padding=1, bias=True).double()
    x = torch.randn(2, 3, 9, 9, dtype=torch.float64)
    full = pruning.DecomposedConv2d(conv, 6)
    assert torch.allclose(full(x), conv(x), atol=1e-12)
    low = pruning.DecomposedConv2d(conv, 2)
    assert low.first.out_channels == 2 and low.second.kernel_size == (1, 1)
    # rank 2: the layer of the best rank-2 approximation of the matricized weight (Eckart-Young)
    u, s, vh = torch.linalg.svd(conv.weight.detach().reshape(6, -1), full_matrices=False)
    approx = nn.Conv2d(3, 6, 3, stride=2, padding=1).double()
    with torch.no_grad():
        approx.weight.copy_(((u[:, :2] * s[:2]) @ vh[:2]).reshape(conv.weight.shape))
        approx.bias.copy_(conv.bias)
    assert torch.allclose(low(x), approx(x), atol=1e-12)
    with pytest.raises(ValueError):
        pruning.DecomposedConv2d(conv, 7)


def test_low_rank_model_keeps_floor_of_rank_and_leaves_original():
    torch.manual_seed(0)
    model = cnn_bn(width=4).eval()
    x = torch.randn(3, 1, 8, 8)
    same = pruning.low_rank(model, 0.0)
    assert torch.allclose(same.eval()(x), model(x), atol=1e-5)
    small = pruning.low_rank(model, 0.5)
    ranks = [m.rank for m in small.modules() if isinstance(m, pruning.DecomposedConv2d)]
    assert ranks == [2, 4, 4]  # first conv 4 x 9 (rank 4), then 8 x 36 and 8 x 72 (rank 8)
    assert ranks == [max(1, math.floor(0.5 * r)) for r in (4, 8, 8)]
    assert all(not isinstance(m, pruning.DecomposedConv2d) for m in model.modules())
    tiny = pruning.low_rank(model, 0.99)
    assert [m.rank for m in tiny.modules() if isinstance(m, pruning.DecomposedConv2d)] == [1, 1, 1]


def test_relative_distance_to_pruned():
    model = nn.Sequential(nn.Linear(2, 2, bias=False), nn.Linear(2, 1, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[4.0, 1.0], [0.0, 2.0]]))
        model[1].weight.copy_(torch.tensor([[3.0, 1.0]]))
    # 6 weights, 50 %: the three smallest (0, 1, 1) go; energy 2 of 31
    assert pruning.relative_distance_to_pruned(model, 0.5) == pytest.approx(math.sqrt(2 / 31))
    assert pruning.relative_distance_to_pruned(model, 0.0) == 0.0
    assert pruning.relative_distance_to_pruned(model, 1.0) == pytest.approx(1.0)


def test_relative_distance_of_gaussian_and_uniform_weights():
    """The brief's derived initial values: sqrt(0.5608) = 0.749 for Gaussian and sqrt(0.9^3) = 0.854 for uniform
    weights at 90 % sparsity."""
    gen = torch.Generator().manual_seed(0)
    lin = nn.Linear(1000, 400, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.randn(400, 1000, generator=gen))
    assert pruning.relative_distance_to_pruned(lin, 0.9) == pytest.approx(0.749, abs=3e-3)
    with torch.no_grad():
        lin.weight.copy_(2 * torch.rand(400, 1000, generator=gen) - 1)
    assert pruning.relative_distance_to_pruned(lin, 0.9) == pytest.approx(0.9**1.5, abs=3e-3)
