"""Losses of Pauls et al. (2024), section 3 and the official code (``training/losses/*.py``): L1, L2 and the
scaled Huber loss on sparse labels, their shift-resilient versions, and the SRTM slope filter.

Labels are (B, G, H, W): one channel per GEDI granule, heights in metres, 0 = no label. Predictions are
(B, H, W). The plain losses sum the granule channels first (the official code's convention: granules are
assumed not to overlap in a pixel) and average over the labelled pixels.

The shift-resilient loss (``ShiftLoss``): for every sample and granule, the labels are shifted rigidly by each
``s = (dx, dy)`` with ``max(|dx|, |dy|) <= radius`` (``y_s(i, j) = y(i + dy, j + dx)``, zeros shifted in from
outside the patch); the shift with the smallest **sum** of pointwise losses over the granule's labels is kept
(granules with fewer than ``min_measurements`` labels keep ``(0, 0)``), and the loss is the mean over the
labelled pixels of the kept residuals. The choice is an argmin, so gradients flow only through the prediction.
"""

from __future__ import annotations

import torch
from torch import nn

LOSSES = ("l1", "l2", "huber")


def pointwise(name: str, residual: torch.Tensor, delta: float = 3.0) -> torch.Tensor:
    """Pointwise loss of a residual: ``l1`` ``|r|``, ``l2`` ``r^2``, ``huber`` the smooth-L1 scaled by
    ``1/delta`` (``r^2 / (2 delta)`` for ``|r| < delta``, else ``|r| - delta / 2``; continuous at ``delta``)."""
    if name == "l1":
        return residual.abs()
    if name == "l2":
        return residual**2
    if name == "huber":
        a = residual.abs()
        return torch.where(a < delta, 0.5 * residual**2 / delta, a - 0.5 * delta)
    raise ValueError(f"unknown loss {name!r}; accepted: {', '.join(LOSSES)}")


def shifts(radius: int) -> list[tuple[int, int]]:
    """All shifts (dx, dy) with ``max(|dx|, |dy|) <= radius`` (9 for radius 1), (0, 0) in the middle."""
    return [(dx, dy) for dy in range(-radius, radius + 1) for dx in range(-radius, radius + 1)]


def shift_labels(labels: torch.Tensor, dx: int, dy: int) -> torch.Tensor:
    """``y_s(i, j) = y(i + dy, j + dx)`` over the last two axes, with 0 (no label) shifted in from outside."""
    out = torch.zeros_like(labels)
    h, w = labels.shape[-2:]
    src_r = slice(max(dy, 0), h + min(dy, 0))
    dst_r = slice(max(-dy, 0), h + min(-dy, 0))
    src_c = slice(max(dx, 0), w + min(dx, 0))
    dst_c = slice(max(-dx, 0), w + min(-dx, 0))
    out[..., dst_r, dst_c] = labels[..., src_r, src_c]
    return out


class PlainLoss(nn.Module):
    """L1, L2 or scaled Huber over the labelled pixels of the granule-summed labels (official ``l1_loss``,
    ``l2_loss``, ``huber_loss``)."""

    def __init__(self, name: str = "huber", delta: float = 3.0):
        super().__init__()
        pointwise(name, torch.zeros(1), delta)  # validate the name
        self.name, self.delta = name, delta

    def forward(self, pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        target = labels.sum(1)
        mask = target != 0
        if not mask.any():
            return pred.sum() * 0.0
        return pointwise(self.name, pred[mask] - target[mask], self.delta).mean()


class ShiftLoss(nn.Module):
    """The shift-resilient loss (see the module docstring). ``mode="sum"`` is the official argmin over sums
    (a shift that pushes labels out of the patch loses terms and is slightly favoured); ``mode="mean"``
    normalises by the number of labels that stay in the patch."""

    def __init__(
        self, name: str = "huber", radius: int = 1, min_measurements: int = 5, delta: float = 3.0, mode: str = "sum"
    ):
        super().__init__()
        pointwise(name, torch.zeros(1), delta)
        if mode not in ("sum", "mean"):
            raise ValueError(f"unknown mode {mode!r}; accepted: sum, mean")
        self.name, self.radius, self.min_measurements, self.delta, self.mode = (
            name,
            radius,
            min_measurements,
            delta,
            mode,
        )
        self.last_shifts: torch.Tensor | None = None  # (B, G, 2) chosen (dx, dy) of the last call

    def choose(self, pred: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The kept residual map (B, G, H, W), its label mask and the chosen shifts (B, G, 2) as (dx, dy)."""
        options = shifts(self.radius)
        shifted = torch.stack([shift_labels(labels, dx, dy) for dx, dy in options], 2)  # B, G, S, H, W
        mask = shifted != 0
        resid = torch.where(mask, pointwise(self.name, pred[:, None, None] - shifted, self.delta), 0.0)
        score = resid.sum((-2, -1))
        if self.mode == "mean":
            score = score / mask.sum((-2, -1)).clamp(min=1)
        best = score.detach().argmin(2)  # B, G
        centre = options.index((0, 0))
        few = (labels != 0).sum((-2, -1)) < self.min_measurements
        best = torch.where(few, torch.full_like(best, centre), best)
        idx = best[:, :, None, None, None].expand(-1, -1, 1, *labels.shape[-2:])
        kept = resid.gather(2, idx)[:, :, 0]
        kept_mask = mask.gather(2, idx)[:, :, 0]
        table = torch.tensor(options, device=labels.device)
        return kept, kept_mask, table[best]

    def forward(self, pred: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        kept, kept_mask, chosen = self.choose(pred, labels)
        self.last_shifts = chosen.detach()
        n = kept_mask.sum()
        if n == 0:
            return pred.sum() * 0.0
        return kept.sum() / n


def make_loss(name: str, shift: bool = False, radius: int = 1, **kwargs) -> nn.Module:
    """``PlainLoss(name)`` or ``ShiftLoss(name, radius)``; unknown names fail (the official ``main.py``
    default ``shift_huberf`` silently fell back to ``shift_l1``)."""
    return ShiftLoss(name, radius, **kwargs) if shift else PlainLoss(name, kwargs.get("delta", 3.0))


def slope_filter(labels, slope, max_degrees: float | None):
    """Labels with the pixels whose (SRTM) slope exceeds ``max_degrees`` set to 0 (no label); ``None`` keeps
    all. Works on numpy arrays and tensors; ``slope`` broadcasts against ``labels`` (e.g. (H, W) against
    (G, H, W))."""
    if max_degrees is None:
        return labels
    if isinstance(labels, torch.Tensor):
        return torch.where(torch.as_tensor(slope) > max_degrees, torch.zeros_like(labels), labels)
    import numpy as np

    return np.where(np.asarray(slope) > max_degrees, 0, labels).astype(labels.dtype)
