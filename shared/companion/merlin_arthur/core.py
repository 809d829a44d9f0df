"""Arthur, masking, the Merlin and Morgana losses and the game's metrics (Wäldchen et al., AISTATS 2024).

Notation of the paper (section 2): a data point ``x`` with class ``c(x)``; a *feature* is a set of at most
``k`` (position, value) pairs of ``x``; Merlin ``M`` and Morgana ``M^`` select features, Arthur ``A`` maps a
feature to a class or to "don't know" (⊥). In the code a feature is a binary mask ``m`` over the input's
*features* (pixels, or whole one-hot blocks of a tabular input) and Arthur sees ``m * x``: 0 means hidden,
so 0 must never be a legal revealed value (binarised pixels are ±1, one-hot blocks contain a 1).
"""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..models.small import MLP

BOTTOM = 2  #: index of Arthur's "don't know" (⊥) logit; classes are 0 and 1


def arthur_mlp(in_features: int, hidden: Sequence[int] = (64, 64), batch_norm: bool = False) -> MLP:
    """Arthur as an MLP with three logits (class 0, class 1, ⊥), the official code's multi-class mode
    (``output_dim = 3``; ``models.py``'s ``UCICensusClassifier`` is a 3-layer MLP with hidden width 50)."""
    return MLP(in_features, hidden, num_classes=3, batch_norm=batch_norm)


class ArthurCNN(nn.Module):
    """Arthur as a small CNN on square images with three logits (class 0, class 1, ⊥), a reduced form of
    the official MNIST ``SimpleCNN``: two 3x3 convolutions (``channels``) with ReLU and 2x2 max-pooling each,
    then a linear layer of width ``hidden`` and the three logits. No BatchNorm (see the chapter) and no
    dropout. It takes the flattened ``(B, H * W)`` inputs of the game and reshapes them to ``(B, 1, H, W)``;
    ``H`` and ``W`` must be divisible by 4."""

    def __init__(self, shape: tuple[int, int], channels: Sequence[int] = (16, 32), hidden: int = 64):
        super().__init__()
        h, w = shape
        if h % 4 or w % 4:
            raise ValueError(f"ArthurCNN needs an image shape divisible by 4, got {shape}")
        c1, c2 = channels
        self.shape = (h, w)
        self.features = nn.Sequential(
            nn.Conv2d(1, c1, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Sequential(
            nn.Flatten(), nn.Linear(c2 * (h // 4) * (w // 4), hidden), nn.ReLU(), nn.Linear(hidden, 3)
        )

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.features(x.reshape(-1, 1, *self.shape)))


def arthur_cnn(shape: tuple[int, int], channels: Sequence[int] = (16, 32), hidden: int = 64) -> ArthurCNN:
    """Arthur as :class:`ArthurCNN` (for the ``gpu`` profile's upsampled digits)."""
    return ArthurCNN(tuple(shape), channels, hidden)


ARTHURS = ("mlp", "cnn")


def make_arthur(
    name: str, in_features: int, hidden: Sequence[int] = (64, 64), shape: tuple[int, ...] | None = None
) -> nn.Module:
    """Arthur by name: ``mlp`` is :func:`arthur_mlp` with the hidden widths ``hidden`` (the book's Arthur,
    built exactly as ``arthur_mlp(in_features, hidden=tuple(hidden))``); ``cnn`` is :func:`arthur_cnn` on
    images of ``shape`` with the last hidden width as its linear layer."""
    if name == "mlp":
        return arthur_mlp(in_features, hidden=tuple(hidden))
    if name == "cnn":
        if shape is None or len(shape) != 2:
            raise ValueError("a CNN Arthur needs image data (a two-dimensional shape)")
        return arthur_cnn(shape, hidden=int(hidden[-1]))
    raise ValueError(f"unknown Arthur {name!r}; accepted: {', '.join(ARTHURS)}")


def expand_mask(mask: Tensor, groups: Tensor | None) -> Tensor:
    """A mask over features ``(..., d)`` as a mask over input columns ``(..., D)``: column ``j`` belongs to
    feature ``groups[j]`` (one-hot blocks of a tabular input); ``groups=None``: one column per feature."""
    return mask if groups is None else mask[..., groups]


def apply_mask(x: Tensor, mask: Tensor, groups: Tensor | None = None) -> Tensor:
    """``m * x + (1 - m) * 0``: the masked input Arthur sees (0 = hidden), as in the official
    ``merlin_arthur_framework.py`` without the optional noise background or mask channel."""
    return x * expand_mask(mask, groups)


def morgana_criterion(logits: Tensor, y: Tensor, reduction: str = "mean") -> Tensor:
    """The stable Morgana loss ``-log(p_y + p_⊥)`` with ``p = softmax(logits)`` (official
    ``utilities/metrics.py``, ``MorganaCriterion``): cross-entropy towards whichever of {y, ⊥} has the larger
    logit, minus the correction ``log(1 + exp(-|z_y - z_⊥|))``. Arthur minimises it on Morgana's features
    (he may say ⊥ but never the wrong class); Morgana maximises it."""
    z_y = logits.gather(1, y[:, None]).squeeze(1)
    z_b = logits[:, BOTTOM]
    top = torch.maximum(z_y, z_b)
    loss = torch.logsumexp(logits, dim=1) - top - F.softplus(-(z_y - z_b).abs())
    return _reduce(loss, reduction)


def morgana_criterion_reference(logits: Tensor, y: Tensor) -> Tensor:
    """The unstable reference form ``-log(p_y + p_⊥)`` (mean over the batch), for tests."""
    p = logits.softmax(1)
    return -(p.gather(1, y[:, None]).squeeze(1) + p[:, BOTTOM]).log().mean()


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    if reduction == "none":
        return loss
    if reduction == "mean":
        return loss.mean()
    if reduction == "sum":
        return loss.sum()
    raise ValueError(f"reduction must be none, mean or sum, got {reduction!r}")


def prover_loss(logits: Tensor, y: Tensor, role: str) -> Tensor:
    """Per-sample loss a prover *minimises*: Merlin the cross-entropy of the true class, Morgana
    ``-L_morg`` (she pushes Arthur towards the wrong class)."""
    if role == "merlin":
        return F.cross_entropy(logits, y, reduction="none")
    if role == "morgana":
        return -morgana_criterion(logits, y, reduction="none")
    raise ValueError(f"role must be 'merlin' or 'morgana', got {role!r}")


@torch.no_grad()
def decisions(
    arthur: nn.Module, x: Tensor, mask: Tensor, groups: Tensor | None = None, batch_size: int = 4096
) -> Tensor:
    """Arthur's decisions (0, 1 or ``BOTTOM``) on the masked inputs, in eval mode (mode restored)."""
    was = arthur.training
    arthur.eval()
    out = torch.cat(
        [
            arthur(apply_mask(x[i : i + batch_size], mask[i : i + batch_size], groups)).argmax(1)
            for i in range(0, len(x), batch_size)
        ]
    )
    arthur.train(was)
    return out


def completeness_soundness(merlin_dec: Tensor, morgana_dec: Tensor, y: Tensor) -> dict[str, float]:
    """Completeness and soundness as defined in section 2 (class-wise worst case) and as batch averages
    (the official metrics).

    ``eps_c = 1 - min_l P_{x in D_l}[A(M(x)) = c(x)]`` and ``eps_s = max_l P_{x in D_l}[A(M^(x)) = 1 - c(x)]``:
    only a wrong class counts against soundness, ⊥ is sound. Returns ``completeness`` (= 1 - eps_c),
    ``soundness`` (= 1 - eps_s), ``eps_c``, ``eps_s`` and the averaged ``completeness_avg``/``soundness_avg``.
    """
    y = y.long()
    ok = (merlin_dec == y).double()
    wrong = (morgana_dec == 1 - y).double()
    per_c = [float(ok[y == c].mean()) for c in (0, 1) if (y == c).any()]
    per_s = [float(wrong[y == c].mean()) for c in (0, 1) if (y == c).any()]
    eps_c, eps_s = 1.0 - min(per_c), max(per_s)
    return {
        "completeness": 1.0 - eps_c,
        "soundness": 1.0 - eps_s,
        "eps_c": eps_c,
        "eps_s": eps_s,
        "completeness_avg": float(ok.mean()),
        "soundness_avg": 1.0 - float(wrong.mean()),
    }


def binary_entropy(p: float) -> float:
    """``H_b(p)`` in bits (0 at p in {0, 1})."""
    if p <= 0.0 or p >= 1.0:
        return 0.0
    return -(p * math.log2(p) + (1 - p) * math.log2(1 - p))


def precision_bound(eps_c: float, eps_s: float, kappa: float = 1.0, alpha: float = 1.0, B: float = 1.0) -> float:
    """The main theorem's lower bound on Merlin's average precision:

    ``Pr_D(M) >= 1 - eps_c - kappa eps_s / alpha / (1 - eps_c + kappa eps_s / (alpha B))``

    with the asymmetric feature correlation ``kappa``, Morgana's relative success rate ``alpha`` and the
    class-imbalance factor ``B`` (1 for balanced classes; the book only uses balanced data). With
    ``kappa = alpha = B = 1`` it is ``1 - eps_c - eps_s / (1 - eps_c + eps_s)``."""
    r = kappa * eps_s / alpha
    denom = 1.0 - eps_c + r / B
    return 1.0 - eps_c - (r / denom if denom > 0 else math.inf)


def information_bound(precision_lb: float, class_entropy: float = 1.0) -> float:
    """The information bound ``E_x I(c(y); M(x) ⊆ y) >= H(c) - H_b(Pr_D(M))`` evaluated at a precision lower
    bound (bits). A bound below 1/2 guarantees nothing (``H_b`` is not monotone there): returns 0."""
    if precision_lb < 0.5:
        return 0.0
    return max(0.0, class_entropy - binary_entropy(precision_lb))


def class_entropy(y: Tensor | np.ndarray) -> float:
    """``H(c)`` of the labels in bits."""
    y = np.asarray(y)
    p = float((y == 1).mean())
    return binary_entropy(p)


@torch.no_grad()
def precision_by_matching(
    X: Tensor,
    y: Tensor,
    queries: Tensor,
    query_masks: Tensor,
    query_labels: Tensor,
    groups: Tensor | None = None,
    tol: float = 1e-5,
    chunk: int = 256,
) -> dict[str, np.ndarray]:
    """Precision and conditional entropy of features by matching them over a data set (official
    ``main_entropy.py`` / ``EntropyCalculator``, for both classes).

    For every query point ``x`` with mask ``m`` the feature ``z = M(x)`` is contained in a data point ``y`` iff
    ``m * y`` equals ``m * x`` on every column (squared distance at most ``tol``). Over the data set
    ``(X, y)``, ``p_c = #{y ⊇ z, c(y) = c} / #{y ⊇ z}``. Returns per query: ``precision`` = ``p_{c(x)}``
    (the inner probability of the average precision ``Pr_D(M)``), ``entropy`` = ``H(p)`` in bits, and
    ``count`` (matched points; a count of 1 means the feature only matches its own point).
    """
    Xf = X.double()
    prec, ent, cnt = [], [], []
    for s in range(0, len(queries), chunk):
        q = queries[s : s + chunk].double()
        m = expand_mask(query_masks[s : s + chunk].double(), groups)
        # sum_j m_j (X_nj - q_j)^2 as matrix products (exact for the book's small integer values)
        d = m @ (Xf * Xf).T - 2.0 * (m * q) @ Xf.T + (m * q * q).sum(1, keepdim=True)  # (Q, N)
        match = d <= tol
        n1 = (match & (y[None, :] == 1)).sum(1).double()
        n = match.sum(1).double()
        p1 = n1 / n.clamp_min(1)
        yl = query_labels[s : s + chunk].double()
        prec.append((yl * p1 + (1 - yl) * (1 - p1)).numpy())
        ent.append(np.array([binary_entropy(float(p)) for p in p1]))
        cnt.append(n.numpy())
    return {"precision": np.concatenate(prec), "entropy": np.concatenate(ent), "count": np.concatenate(cnt)}


def hoeffding_margin(n: int, delta: float = 0.05) -> float:
    """One-sided Hoeffding term ``sqrt(ln(1/delta) / (2 n))``: the mean of ``n`` independent values in [0, 1]
    is below its expectation by more than this with probability at most ``delta``."""
    return math.sqrt(math.log(1.0 / delta) / (2.0 * n))
