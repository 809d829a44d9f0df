"""Sparse Model Soups (Zimmer, Spiegel & Pokutta, ICLR 2024): soups of sparse models that share one mask.

- :mod:`~companion.soups.merge`: uniform and greedy soups that keep the mask, BatchNorm recalibration;
- :mod:`~companion.soups.metrics`: prediction ensemble, ECE / MCE, worst-class accuracy, soup geometry;
- :mod:`~companion.soups.sms`: SMS phases (prune, retrain m varied copies, in parallel where workers are given,
  merge) and the baselines IMP, IMP_{m×} and IMP-RePrune; :func:`~companion.soups.one_shot`, one prune with a
  soup of m ingredients against one run m times as long (Fig. 4);
- :mod:`~companion.soups.data`: CIFAR-10-C / CIFAR-100-C for the ``paper`` profile, and a lazy Gaussian-noise copy
  of ImageNet's test split.

Builds on :mod:`companion.pruning` (masks, criteria, schedules, :class:`~companion.pruning.Pretrained`) and
:func:`companion.train.fit`.
"""

from __future__ import annotations

import torch

from .. import cache, repro
from ..pruning.imp import Pretrained, pretrain
from .data import NoisyImages, cifar_c
from .merge import GreedySoup, average_states, bn_subset, greedy_soup, recalibrate_bn, uniform_soup
from .metrics import (
    assess,
    calibration_errors,
    ensemble_probabilities,
    geometry,
    probabilities,
    worst_class_accuracy,
)
from .sms import (
    ENSEMBLE_BY,
    MERGES,
    OneShot,
    Recipe,
    RePrune,
    SmsResult,
    Variant,
    imp_mx,
    one_shot,
    phase_sparsities,
    prune_phase,
    reprune,
    retrain,
    retrain_candidates,
    schedule_for,
    sms,
    variants,
)

__all__ = [
    "average_states",
    "bn_subset",
    "recalibrate_bn",
    "uniform_soup",
    "greedy_soup",
    "GreedySoup",
    "calibration_errors",
    "worst_class_accuracy",
    "assess",
    "probabilities",
    "ensemble_probabilities",
    "geometry",
    "Recipe",
    "Variant",
    "variants",
    "ENSEMBLE_BY",
    "MERGES",
    "phase_sparsities",
    "prune_phase",
    "schedule_for",
    "retrain",
    "retrain_candidates",
    "sms",
    "SmsResult",
    "imp_mx",
    "reprune",
    "one_shot",
    "OneShot",
    "RePrune",
    "cifar_c",
    "NoisyImages",
    "pretrained",
]


def pretrained(
    recipe: Recipe, train, epochs: int, lr: float, seed: int, settings: dict, lr_schedule: str = "step"
) -> tuple[Pretrained, bool]:
    """The dense model every SMS run of a chapter starts from, trained once with SGD (momentum, Nesterov,
    ``recipe.weight_decay``, learning rate ``lr`` under ``lr_schedule``) and shared between notebooks through
    :func:`companion.cache.cached`, keyed by ``settings`` (which must name the data, the model and everything
    else that determines the result) plus epochs, lr, seed and schedule. Returns it and whether it was a hit."""

    def build():
        repro.seed_everything(seed)
        model = recipe.model()
        opt = torch.optim.SGD(
            model.parameters(), lr=lr, momentum=recipe.momentum, nesterov=True, weight_decay=recipe.weight_decay
        )
        p = pretrain(
            model,
            opt,
            train,
            epochs,
            lr_schedule=lr_schedule,
            batch_size=recipe.batch_size,
            device=recipe.device,
            seed=seed,
            eval_every=epochs,
        )
        return {"state_dict": p.state_dict, "lrs": torch.as_tensor(p.lrs), "epochs": epochs}

    key = {**settings, "epochs": epochs, "lr": lr, "seed": seed, "schedule": lr_schedule, "version": 1}
    out = cache.cached("sparse-model-soups", "pretrained", key, build)
    value = out.value
    return Pretrained(value["state_dict"], value["lrs"].numpy(), int(value["epochs"])), out.hit


from .testbed import Testbed, testbed  # noqa: E402

__all__ += ["Testbed", "testbed"]
