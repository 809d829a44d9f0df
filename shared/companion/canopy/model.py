"""The network: a small U-Net in the package (the paper uses ``segmentation_models_pytorch``'s U-Net with a
ResNet50 encoder, 14 input channels and one output channel; that library is optional here and imported only
when present), and tiled inference with overlap for whole scenes."""

from __future__ import annotations

import torch
from torch import nn


def _norm(kind: str, channels: int) -> nn.Module:
    if kind == "batch":
        return nn.BatchNorm2d(channels)
    if kind == "group":
        return nn.GroupNorm(min(4, channels), channels)
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"unknown norm {kind!r}; accepted: batch, group, none")


def _block(cin: int, cout: int, convs: int, norm: str = "batch") -> nn.Sequential:
    layers: list[nn.Module] = []
    for k in range(convs):
        layers += [nn.Conv2d(cin if k == 0 else cout, cout, 3, padding=1), _norm(norm, cout), nn.ReLU()]
    return nn.Sequential(*layers)


class UNet(nn.Module):
    """A U-Net (Ronneberger et al. 2015): ``depth`` levels of 3 x 3 convolutions + normalisation + ReLU
    (``convs`` per block, ``base * 2^level`` channels), 2 x 2 max pooling down, nearest upsampling and skip
    concatenations up, a 1 x 1 head to one channel (height in m). Input sides must be multiples of
    ``2^(depth - 1)``. The head's output is multiplied by ``scale`` (metres), which is the official option of
    rescaling the labels (there by 1/60) so that a freshly initialised network trains at unit scale.
    ``norm``: ``batch`` (as smp's U-Net), ``group`` (4 groups; the same in training and evaluation, so the
    prediction does not depend on the running statistics of the last batches) or ``none``. Output
    (B, H, W)."""

    def __init__(
        self,
        in_channels: int = 14,
        base: int = 8,
        depth: int = 3,
        convs: int = 1,
        scale: float = 20.0,
        norm: str = "batch",
    ):
        super().__init__()
        self.scale = scale
        widths = [base * 2**k for k in range(depth)]
        self.down = nn.ModuleList(
            [_block(in_channels if k == 0 else widths[k - 1], widths[k], convs, norm) for k in range(depth)]
        )
        self.up = nn.ModuleList([_block(widths[k] + widths[k + 1], widths[k], convs, norm) for k in range(depth - 1)])
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.factor = 2 ** (depth - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for k, block in enumerate(self.down):
            x = block(x if k == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        x = skips.pop()
        for block in reversed(self.up):
            x = block(torch.cat([nn.functional.interpolate(x, scale_factor=2.0, mode="nearest"), skips.pop()], 1))
        return self.scale * self.head(x)[:, 0]


class _Squeeze(nn.Module):
    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)[:, 0]


def make_model(
    name: str = "unet", in_channels: int = 14, base: int = 8, depth: int = 3, convs: int = 1, norm: str = "batch"
) -> nn.Module:
    """``unet``: :class:`UNet`; ``smp-unet-resnet50``: ``segmentation_models_pytorch.Unet(encoder_name="resnet50",
    in_channels, classes=1)`` as in the official ``runner.py`` (no pretrained weights: no downloads), which
    needs that optional package."""
    if name == "unet":
        return UNet(in_channels, base, depth, convs, norm=norm)
    if name == "smp-unet-resnet50":
        try:
            import segmentation_models_pytorch as smp
        except ImportError as exc:  # pragma: no cover - optional dependency
            raise ImportError("model 'smp-unet-resnet50' needs segmentation_models_pytorch (not installed)") from exc
        return _Squeeze(smp.Unet(encoder_name="resnet50", encoder_weights=None, in_channels=in_channels, classes=1))
    raise ValueError(f"unknown model {name!r}; accepted: unet, smp-unet-resnet50")


def num_params(model: nn.Module) -> int:
    """Number of parameters."""
    return sum(p.numel() for p in model.parameters())


def _starts(n: int, tile: int, stride: int) -> list[int]:
    if n <= tile:
        return [0]
    starts = list(range(0, n - tile, stride)) + [n - tile]
    return sorted(set(starts))


@torch.no_grad()
def predict_tiled(
    model: nn.Module, image: torch.Tensor, tile: int = 64, overlap: int = 32, batch_size: int = 16
) -> torch.Tensor:
    """Predict a (C, H, W) scene tile by tile: windows of ``tile`` px every ``tile - overlap`` px (the last
    one flush with the border), each contributing only its interior (``overlap / 2`` px are dropped at every
    side that is not the scene's border), so every pixel is taken from the tile in which it is farthest from a
    tile edge. Where the receptive field's radius is at most ``overlap / 2`` and tile positions are multiples
    of the network's down-sampling factor, this equals whole-image inference. Returns (H, W)."""
    was_training = model.training
    model.eval()
    c, h, w = image.shape
    stride = tile - overlap
    factor = getattr(model, "factor", 1)
    if stride <= 0 or stride % factor or tile % factor:
        raise ValueError(f"tile {tile} and stride {stride} must be positive multiples of {factor}")
    if h % factor or w % factor:
        raise ValueError(f"scene sides {h} x {w} must be multiples of {factor}")
    margin = overlap // 2
    rows, cols = _starts(h, tile, stride), _starts(w, tile, stride)
    windows = [(r, c0) for r in rows for c0 in cols]
    out = torch.zeros(h, w)
    for k in range(0, len(windows), batch_size):
        chunk = windows[k : k + batch_size]
        x = torch.stack([image[:, r : r + min(tile, h), c0 : c0 + min(tile, w)] for r, c0 in chunk])
        dev = next(model.parameters()).device
        pred = model(x.to(dev)).cpu()
        for (r, c0), p in zip(chunk, pred):
            # the part of this window closer to its centre than to any neighbour's
            r0 = 0 if r == rows[0] else margin
            c1 = 0 if c0 == cols[0] else margin
            r_end = p.shape[0] if r == rows[-1] else p.shape[0] - margin
            c_end = p.shape[1] if c0 == cols[-1] else p.shape[1] - margin
            out[r + r0 : r + r_end, c0 + c1 : c0 + c_end] = p[r0:r_end, c1:c_end]
    model.train(was_training)
    return out


def receptive_radius(depth: int, convs: int) -> int:
    """An upper bound on the U-Net's receptive-field radius in pixels: each 3 x 3 conv at level k adds 2^k,
    each pooling/upsampling pair adds up to 2^k of misalignment."""
    down = sum(convs * 2**k for k in range(depth))
    up = sum(convs * 2**k for k in range(depth - 1))
    return down + up + sum(2**k for k in range(depth))
