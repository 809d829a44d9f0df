"""Fully connected and convolutional networks sized for 8x8 digits and the 64-feature synthetic task."""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn


class MLP(nn.Module):
    """``in -> hidden[0] -> ... -> out`` with ReLU, optional BatchNorm1d after every hidden linear layer
    and optional dropout (the paper family's "Simple" MNIST net is 784-512-10 with dropout 0.2)."""

    def __init__(
        self,
        in_features: int = 64,
        hidden: Sequence[int] = (256, 256),
        num_classes: int = 10,
        batch_norm: bool = False,
        dropout: float = 0.0,
    ):
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

        self.features = nn.Sequential(
            *block(in_channels, c),
            *block(c, 2 * c),
            nn.MaxPool2d(2),
            *block(2 * c, 2 * c),
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(),
        )
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


class _BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with an identity (or 1x1 conv) shortcut, pre-activation optional (WRN)."""

    def __init__(self, cin: int, cout: int, stride: int, preact: bool = False):
        super().__init__()
        self.preact = preact
        self.bn1 = nn.BatchNorm2d(cin if preact else cout)
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Identity() if stride == 1 and cin == cout else nn.Conv2d(cin, cout, 1, stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.preact:  # WRN: BN-ReLU-conv, BN-ReLU-conv
            out = torch.relu(self.bn1(x))
            shortcut = x if isinstance(self.shortcut, nn.Identity) else self.shortcut(out)
            out = self.conv2(torch.relu(self.bn2(self.conv1(out))))
            return out + shortcut
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet(nn.Module):
    """CIFAR-style residual network (He et al., 2016): a 3x3 stem and three stages of ``n`` basic blocks with
    ``width``, 2·``width``, 4·``width`` channels (strides 1, 2, 2), global average pooling, a linear head.
    Depth = 6n + 2: ResNet-56 is ``n = 9, width = 16``. With ``widen`` and ``preact`` it is the Wide ResNet
    of Zagoruyko & Komodakis (2016): WRN-28-10 is ``n = 4, width = 16, widen = 10, preact = True``."""

    def __init__(
        self,
        n: int = 9,
        width: int = 16,
        widen: int = 1,
        in_channels: int = 3,
        num_classes: int = 10,
        preact: bool = False,
    ):
        super().__init__()
        widths = [width * widen, 2 * width * widen, 4 * width * widen]
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.stem_bn = nn.Identity() if preact else nn.BatchNorm2d(width)
        blocks, cin = [], width
        for stage, cout in enumerate(widths):
            for i in range(n):
                blocks.append(_BasicBlock(cin, cout, 2 if stage > 0 and i == 0 else 1, preact))
                cin = cout
        self.blocks = nn.Sequential(*blocks)
        self.final_bn = nn.BatchNorm2d(cin) if preact else nn.Identity()
        self.classifier = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.stem(x)
        out = out if isinstance(self.stem_bn, nn.Identity) else torch.relu(self.stem_bn(out))
        out = self.blocks(out)
        if not isinstance(self.final_bn, nn.Identity):
            out = torch.relu(self.final_bn(out))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def resnet56(in_channels: int = 3, num_classes: int = 10) -> ResNet:
    """ResNet-56 for 32x32 CIFAR images (0.85 M parameters), the CIFAR-10 network of the pruning papers."""
    return ResNet(9, 16, 1, in_channels, num_classes)


def resnet_tiny(in_channels: int = 1, num_classes: int = 10) -> ResNet:
    """ResNet-8 (one block per stage, width 16): a residual network small enough for 8x8 digits on a CPU."""
    return ResNet(1, 16, 1, in_channels, num_classes)


def wrn28_10(in_channels: int = 3, num_classes: int = 100) -> ResNet:
    """Wide ResNet-28-10 (36.5 M parameters), the CIFAR-100 network of the pruning papers."""
    return ResNet(4, 16, 10, in_channels, num_classes, preact=True)


class _Bottleneck(nn.Module):
    """1x1 → 3x3 (stride here, "ResNet v1.5") → 1x1 conv-BN layers, 4x expansion, projection shortcut when the
    shape changes; the last BN of the block starts at zero weight when ``zero_init`` (Goyal et al., 2017)."""

    def __init__(self, cin: int, width: int, stride: int, zero_init: bool = False):
        super().__init__()
        cout = 4 * width
        self.conv1 = nn.Conv2d(cin, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, cout, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(cout)
        if zero_init:
            nn.init.zeros_(self.bn3.weight)
        self.shortcut = (
            nn.Identity()
            if stride == 1 and cin == cout
            else nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        out = torch.relu(self.bn2(self.conv2(out)))
        return torch.relu(self.bn3(self.conv3(out)) + self.shortcut(x))


class BottleneckResNet(nn.Module):
    """ImageNet residual network with bottleneck blocks (He et al., 2016, Table 1): a 7x7 stride-2 stem with 3x3
    max pooling, four stages of ``layers`` blocks with widths 64, 128, 256, 512 (outputs 4x that; strides 1, 2,
    2, 2), global average pooling and a linear head. ``layers = (3, 4, 6, 3)`` is ResNet-50, the ImageNet network
    of the pruning papers; the layout and parameter count (25 557 032 for 1000 classes) are those of the
    torchvision reference model, which the book does not install."""

    def __init__(
        self, layers=(3, 4, 6, 3), in_channels: int = 3, num_classes: int = 1000, zero_init_residual: bool = False
    ):
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(in_channels, 64, 7, 2, 3, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, 2, 1),
        )
        blocks, cin = [], 64
        for stage, (n, width) in enumerate(zip(layers, (64, 128, 256, 512))):
            for i in range(n):
                blocks.append(_Bottleneck(cin, width, 2 if stage > 0 and i == 0 else 1, zero_init_residual))
                cin = 4 * width
        self.blocks = nn.Sequential(*blocks)
        self.classifier = nn.Linear(cin, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.blocks(self.stem(x))
        return self.classifier(torch.flatten(nn.functional.adaptive_avg_pool2d(out, 1), 1))


def resnet50(in_channels: int = 3, num_classes: int = 1000) -> BottleneckResNet:
    """ResNet-50 for 224x224 ImageNet images (25.6 M parameters), the ImageNet network of the pruning papers."""
    return BottleneckResNet((3, 4, 6, 3), in_channels, num_classes)
