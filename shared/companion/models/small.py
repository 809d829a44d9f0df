"""Fully connected and convolutional networks sized for 8x8 digits and the 64-feature synthetic task."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """``in -> hidden[0] -> ... -> out`` with ReLU, optional BatchNorm1d after every hidden linear layer
    and optional dropout (the paper family's "Simple" MNIST net is 784-512-10 with dropout 0.2)."""

    def __init__(self, in_features: int = 64, hidden: Sequence[int] = (256, 256), num_classes: int = 10,
                 batch_norm: bool = False, dropout: float = 0.0):
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers.append(nn.Linear(width, h))
            if batch_norm:
                layers.append(nn.BatchNorm1d(h))
            layers.append(nn.ReLU())
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, num_classes))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class CNNBN(nn.Module):
    """conv3x3(1->c) BN ReLU, conv3x3(c->2c) BN ReLU, maxpool2, conv3x3(2c->2c) BN ReLU, global average
    pool, linear(2c->classes). With c = 32: 56,554 parameters, the CNN of the shared CPU testbed."""

    def __init__(self, in_channels: int = 1, width: int = 32, num_classes: int = 10):
        super().__init__()
        c = width

        def block(cin, cout):
            return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]

        self.features = nn.Sequential(*block(in_channels, c), *block(c, 2 * c), nn.MaxPool2d(2),
                                      *block(2 * c, 2 * c), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(2 * c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x))


def mlp(in_features: int = 64, hidden: Sequence[int] = (256, 256), num_classes: int = 10, dropout: float = 0.0) -> MLP:
    """The testbed MLP 64-256-256-10 (ReLU)."""
    return MLP(in_features, hidden, num_classes, batch_norm=False, dropout=dropout)


def mlp_bn(in_features: int = 64, hidden: Sequence[int] = (256, 256), num_classes: int = 10) -> MLP:
    """The testbed MLP with BatchNorm1d after every hidden layer."""
    return MLP(in_features, hidden, num_classes, batch_norm=True)


def cnn_bn(in_channels: int = 1, width: int = 32, num_classes: int = 10) -> CNNBN:
    """The testbed CNN for 1x8x8 inputs."""
    return CNNBN(in_channels, width, num_classes)


def num_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
