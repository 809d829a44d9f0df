"""What the paper measures on a soup besides test accuracy (Section 4 and the appendix tables; ``main.py`` /
``strategies`` of the official code): the prediction ensemble, calibration (ECE and MCE with 15 bins, computed by
``torchmetrics``' top-label calibration error as in the official code), worst-class accuracy, and the geometry of
the ingredients (pairwise L2 distances and angles, distances to their barycentre)."""

from __future__ import annotations

import itertools
import math
from typing import Mapping, Sequence

import torch
from torch import nn
from torch.utils.data import Dataset

from ..train import predict

N_BINS = 15


def calibration_errors(probs: torch.Tensor, targets: torch.Tensor, n_bins: int = N_BINS) -> dict[str, float]:
    """Expected and maximum calibration error of top-label confidences: with the predictions binned by
    confidence into ``n_bins`` equal bins of [0, 1], ``ECE = Σ_b (n_b / n)·|acc_b − conf_b|`` and
    ``MCE = max_b |acc_b − conf_b|`` (Guo et al., 2017). ``probs`` are probabilities (N, C); logits are accepted too
    (torchmetrics applies a softmax to values outside [0, 1])."""
    from torchmetrics.functional.classification import multiclass_calibration_error  # 2 s of imports: lazily

    num_classes = probs.shape[1]
    ece = multiclass_calibration_error(probs, targets, num_classes, n_bins=n_bins, norm="l1")
    mce = multiclass_calibration_error(probs, targets, num_classes, n_bins=n_bins, norm="max")
    return {"ece": float(ece), "mce": float(mce)}


def worst_class_accuracy(predictions: torch.Tensor, targets: torch.Tensor, num_classes: int) -> float:
    """The smallest per-class accuracy (recall) min_c #{i: ŷ_i = y_i = c} / #{i: y_i = c} over the classes that
    occur in ``targets`` (the paper's fairness measure)."""
    worst = math.inf
    for c in range(num_classes):
        members = targets == c
        if members.any():
            worst = min(worst, float((predictions[members] == c).float().mean()))
    return worst


def assess(probs: torch.Tensor, targets: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, ECE, MCE and worst-class accuracy of predicted probabilities (N, C)."""
    pred = probs.argmax(1)
    return {
        "acc": float((pred == targets).float().mean()),
        **calibration_errors(probs, targets),
        "worst_class_acc": worst_class_accuracy(pred, targets, num_classes),
    }


def probabilities(model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu") -> torch.Tensor:
    """Softmax outputs of ``model`` on ``dataset`` (eval mode, on the CPU)."""
    return torch.softmax(predict(model, dataset, device), dim=1)


def ensemble_probabilities(
    model: nn.Module, states: Sequence[Mapping[str, torch.Tensor]], dataset: Dataset, device="cpu"
) -> torch.Tensor:
    """The prediction ensemble: the mean of the m models' softmax outputs (m forward passes per input, the
    inference-cost reference a soup avoids). ``model`` is a scratch module that each state is loaded into."""
    total = None
    for state in states:
        model.load_state_dict(state)
        p = probabilities(model.to(device), dataset, device)
        total = p if total is None else total + p
    return total / len(states)


def _vector(state: Mapping[str, torch.Tensor], names: Sequence[str]) -> torch.Tensor:
    return torch.cat([state[n].detach().flatten().to(torch.float64) for n in names])


def geometry(states: Sequence[Mapping[str, torch.Tensor]], names: Sequence[str] | None = None) -> dict[str, float]:
    """Soup geometry of the official code's logging: pairwise L2 distances ‖θ_i − θ_j‖₂ and angles
    arccos(⟨θ_i, θ_j⟩ / (‖θ_i‖‖θ_j‖)) in degrees between the ingredients (max / min / mean over pairs), and the
    largest and smallest distance ‖θ_i − θ̄‖₂ of an ingredient to the barycentre θ̄ = (1/m) Σ θ_i. ``names``
    selects the tensors (default: every floating-point entry except BatchNorm running statistics)."""
    if names is None:
        names = [
            n for n, v in states[0].items() if v.is_floating_point() and not n.endswith(("running_mean", "running_var"))
        ]
    vecs = [_vector(s, names) for s in states]
    centre = torch.stack(vecs).mean(0)
    dists, angles = [], []
    for a, b in itertools.combinations(vecs, 2):
        dists.append(float((a - b).norm()))
        cos = float(a @ b / (a.norm() * b.norm()))
        angles.append(math.degrees(math.acos(max(-1.0, min(1.0, cos)))))
    to_centre = [float((v - centre).norm()) for v in vecs]
    out = {"max_to_centre": max(to_centre), "min_to_centre": min(to_centre)}
    if dists:
        out.update(
            max_distance=max(dists),
            min_distance=min(dists),
            mean_distance=sum(dists) / len(dists),
            max_angle=max(angles),
            min_angle=min(angles),
            mean_angle=sum(angles) / len(angles),
        )
    return out
