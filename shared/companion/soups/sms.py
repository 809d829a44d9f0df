"""Sparse Model Soups (Zimmer, Spiegel & Pokutta, ICLR 2024, Algorithm 1) and its baselines.

SMS runs IMP's prune–retrain phases, but every phase retrains m copies of the pruned model, each with its own
hyperparameters (batch order / seed, weight decay, retraining length or learning-rate schedule, Section 2.2 and
``ensemble_by`` of the official code), merges them into a soup (:mod:`companion.soups.merge`) and starts the next
phase from the soup. The copies start from one pruned model, so they share its mask and the soup keeps the
sparsity exactly. The m retrains of a phase are independent and run in worker processes when ``workers > 1``.

Baselines (Section 4, Table 1): IMP (m = 1), IMP_{m×} (IMP with m times the retraining epochs per phase, the same
total budget as SMS), IMP-RePrune (m independent IMP runs averaged after the last phase and pruned again to the
target) and the best and mean ingredient of the last phase. Pruning, schedules and masks are those of
:mod:`companion.pruning`; every model is evaluated after BatchNorm recalibration on the same 20 % prefix of the
training set (the official code recalibrates the IMP baselines too).
"""

from __future__ import annotations

import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from ..pruning.criteria import cumulative_sparsity, phase_rate, select
from ..pruning.imp import Pretrained
from ..pruning.masks import KeepMasked, Masks
from ..pruning.schedules import allr_factor, retrain_schedule
from ..train import evaluate, fit
from .merge import average_states, bn_subset, greedy_soup, recalibrate_bn, uniform_soup

ENSEMBLE_BY = ("seed", "weight_decay", "retrain_length", "retrain_schedule")
MERGES = ("uniform", "greedy")


@dataclass(frozen=True)
class Recipe:
    """How every retraining run is set up; picklable, so that worker processes can rebuild it. ``model`` builds a
    fresh network (a module-level function or a ``functools.partial`` of one). Retraining uses SGD with momentum,
    Nesterov when the weight decay is positive (as the official code), and the schedule ``schedule`` of
    :func:`companion.pruning.retrain_schedule` built from the pretraining learning rates (LLR by default)."""

    model: Callable[[], nn.Module]
    momentum: float = 0.9
    weight_decay: float = 1e-4
    batch_size: int = 128
    schedule: str = "llr"
    criterion: str = "global"
    bn_fraction: float = 0.2
    device: str = "cpu"


@dataclass(frozen=True)
class Variant:
    """One ingredient's hyperparameters; ``None`` keeps the recipe's / the phase's value. ``peak_lr`` rescales
    the retraining schedule to this peak (the ``retrain_schedule`` axis: LLR with another initial LR)."""

    seed: int = 0
    weight_decay: float | None = None
    epochs: int | None = None
    peak_lr: float | None = None


def variants(ensemble_by: str, values: Sequence[float], seed: int = 0) -> list[Variant]:
    """The m ingredients of one phase varied along ``ensemble_by`` (``ensemble_by`` × ``split_val`` of the
    official code): ``seed`` = seed + value (batch order), ``weight_decay`` = value, ``retrain_length`` = value
    epochs, ``retrain_schedule`` = LLR with initial learning rate value. All but ``seed`` keep the seed fixed."""
    if ensemble_by == "seed":
        return [Variant(seed=seed + int(v)) for v in values]
    if ensemble_by == "weight_decay":
        return [Variant(seed=seed, weight_decay=float(v)) for v in values]
    if ensemble_by == "retrain_length":
        return [Variant(seed=seed, epochs=int(v)) for v in values]
    if ensemble_by == "retrain_schedule":
        return [Variant(seed=seed, peak_lr=float(v)) for v in values]
    raise ValueError(f"unknown ensemble_by {ensemble_by!r}; accepted: {', '.join(ENSEMBLE_BY)}")


def phase_sparsities(target: float, phases: int) -> list[float]:
    """Sparsity after each of ``phases`` phases that each prune the same fraction 1 − (1 − s)^{1/P} of the
    remaining weights (90 % in 3 phases: 53.58 / 78.46 / 90 %)."""
    rate = phase_rate(target, phases)
    return [cumulative_sparsity(rate, j) for j in range(1, phases)] + [target]


@torch.no_grad()
def prune_phase(model: nn.Module, masks: Masks, target: float, rate: float, criterion: str = "global") -> tuple:
    """Prune ``model`` in place to the overall sparsity ``target`` (keeping ``masks``' pruned weights pruned) and
    return the new masks with ALLR's d₁ = ‖θ − θ_p‖ / (‖θ‖ √rate) of this prune (recomputed per phase from the
    model that is pruned, i.e. the soup)."""
    before = [p.detach().clone() for p in model.parameters()]
    new = select(model, target, criterion, masks)
    new.apply_(model)
    d1 = allr_factor(before, list(model.parameters()), rate, 1, 1)["d1"]
    return new, d1


def schedule_for(
    recipe: Recipe, pretrain_lrs: np.ndarray, iterations: int, d1: float, peak_lr: float | None = None
) -> np.ndarray:
    """Learning rate of every retraining iteration: ``recipe.schedule`` from the pretraining rates, with ALLR's
    d = min(1, max(d₁, T_rt / T)); ``peak_lr`` rescales the whole schedule so that its largest value is
    ``peak_lr``."""
    d = min(1.0, max(d1, iterations / len(pretrain_lrs)))
    lrs = retrain_schedule(recipe.schedule, pretrain_lrs, iterations, d=d)
    if peak_lr is not None:
        lrs = lrs * (peak_lr / lrs.max())
    return lrs


def retrain(
    model: nn.Module, masks: Masks, lrs: np.ndarray, train: Dataset, epochs: int, recipe: Recipe, variant: Variant
) -> dict[str, float]:
    """Retrain ``model`` in place for ``epochs`` with the mask enforced after every step (pruned weights and
    their momentum stay zero) and the per-iteration rates ``lrs``, then recalibrate its BatchNorm statistics.
    Returns the retraining samples and seconds."""
    wd = recipe.weight_decay if variant.weight_decay is None else variant.weight_decay
    optimizer = torch.optim.SGD(
        model.parameters(), lr=1.0, momentum=recipe.momentum, nesterov=wd > 0 and recipe.momentum > 0, weight_decay=wd
    )
    history = fit(
        model,
        optimizer,
        train,
        epochs,
        batch_size=recipe.batch_size,
        lr_schedule=lambda it, total: float(lrs[it]),
        callbacks=[KeepMasked(masks)],
        device=recipe.device,
        seed=variant.seed,
        eval_every=epochs,
        desc="retrain",
    )
    recalibrate_bn(model, bn_subset(train, recipe.bn_fraction), recipe.batch_size, recipe.device)
    last = history.iloc[-1]
    return {"samples": int(last["samples"]), "seconds": float(last["seconds"])}


def _retrain_job(payload: tuple) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """One ingredient, in this process or a worker: rebuild the model, load the pruned state, retrain."""
    recipe, state, mask_tensors, lrs, train, epochs, variant, threads = payload
    if threads is not None:  # a worker process: one thread, the book's deterministic CPU kernels
        torch.set_num_threads(threads)
        torch.backends.mkldnn.enabled = False
    model = recipe.model()
    model.load_state_dict(state)
    model.to(recipe.device)
    stats = retrain(model, Masks(mask_tensors), lrs, train, epochs, recipe, variant)
    return {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, stats


def retrain_candidates(
    recipe: Recipe,
    state: dict[str, torch.Tensor],
    masks: Masks,
    pretrain_lrs: np.ndarray,
    d1: float,
    train: Dataset,
    epochs: int,
    candidates: Sequence[Variant],
    workers: int = 1,
    context: str = "fork",
) -> tuple[list[tuple[dict, dict]], float]:
    """Retrain one copy of the pruned ``state`` per variant (``variant.epochs`` overrides ``epochs``) and return
    the (state, stats) pairs in the variants' order and the wall-clock seconds. With ``workers > 1`` the copies
    train in a process pool (``context`` ``fork`` or ``spawn``; always ``spawn`` on a GPU), one thread each; the results are the same as
    in-process (same seeds, same single-thread kernels)."""
    steps = math.ceil(len(train) / recipe.batch_size)
    mask_tensors = {k: v.cpu() for k, v in masks.items()}  # workers receive CPU tensors
    payloads = []
    for v in candidates:
        n = v.epochs if v.epochs is not None else epochs
        lrs = schedule_for(recipe, pretrain_lrs, n * steps, d1, v.peak_lr)
        payloads.append((recipe, state, mask_tensors, lrs, train, n, v, None if workers <= 1 else 1))
    start = time.perf_counter()
    if workers <= 1:
        outs = [_retrain_job(p) for p in payloads]
    else:
        # CUDA cannot be re-initialised in a forked child: workers on a GPU are spawned
        ctx = multiprocessing.get_context("spawn" if torch.device(recipe.device).type == "cuda" else context)
        with ProcessPoolExecutor(max_workers=min(workers, len(payloads)), mp_context=ctx) as pool:
            outs = list(pool.map(_retrain_job, payloads))
    return outs, time.perf_counter() - start


@dataclass
class SmsResult:
    """Outcome of :func:`sms`: the final soup's ``state`` and ``masks``, one row per phase, the last phase's
    ingredient states, the retraining epochs and samples summed over every ingredient of every phase, and the
    wall-clock seconds spent retraining."""

    state: dict[str, torch.Tensor]
    masks: Masks
    phases: pd.DataFrame
    candidates: list[dict[str, torch.Tensor]] = field(default_factory=list)
    epochs: int = 0
    samples: int = 0
    wall: float = 0.0


def sms(
    recipe: Recipe,
    pretrained: Pretrained,
    train: Dataset,
    target: float,
    phases: int,
    candidates: Sequence[Variant],
    epochs: int,
    merge: str = "uniform",
    val: Dataset | None = None,
    eval_sets: dict[str, Dataset] | None = None,
    workers: int = 1,
    context: str = "fork",
) -> SmsResult:
    """Sparse Model Soups (Algorithm 1): from ``pretrained``, ``phases`` times prune by ``recipe.criterion`` to the
    next cumulative sparsity (the last one is ``target``), retrain one copy per variant in ``candidates`` for
    ``epochs`` (or the variant's own length), merge (``uniform``, or ``greedy`` by accuracy on ``val``) and go on
    from the soup. With one variant this is IMP. Row columns per phase: phase, sparsity, d1, epochs (of the
    ingredients, summed), wall, chosen (greedy), ``<set>_acc`` of the soup and ``<set>_candidates`` (every
    ingredient's accuracy) for every evaluation set."""
    if merge not in MERGES:
        raise ValueError(f"unknown merge {merge!r}; accepted: {', '.join(MERGES)}")
    if merge == "greedy" and val is None:
        raise ValueError("the greedy soup selects on a validation split: pass val")
    model = recipe.model()
    model.load_state_dict(pretrained.state_dict)
    model.to(recipe.device)
    masks, rate = Masks.dense(model), phase_rate(target, phases)
    bn = bn_subset(train, recipe.bn_fraction)
    eval_sets = eval_sets or {}
    rows, total_epochs, total_samples, total_wall = [], 0, 0, 0.0
    outs: list = []
    for j, goal in enumerate(phase_sparsities(target, phases), start=1):
        masks, d1 = prune_phase(model, masks, goal, rate, recipe.criterion)
        state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        outs, wall = retrain_candidates(
            recipe, state, masks, pretrained.lrs, d1, train, epochs, candidates, workers, context
        )
        states = [s for s, _ in outs]
        row = {"phase": j, "sparsity": masks.sparsity(), "d1": d1, "wall": wall}
        row["epochs"] = sum(v.epochs if v.epochs is not None else epochs for v in candidates)
        for name, ds in eval_sets.items():
            accs = []
            for s in states:
                model.load_state_dict(s)
                accs.append(evaluate(model, ds, recipe.device)["acc"])
            row[f"{name}_candidates"] = accs
        if len(states) == 1:
            model.load_state_dict(states[0])
            row["chosen"] = [0]
        elif merge == "uniform":
            uniform_soup(model, states, masks, bn, recipe.batch_size, recipe.device)
            row["chosen"] = list(range(len(states)))
        else:
            row["chosen"] = greedy_soup(model, states, val, masks, bn, recipe.batch_size, recipe.device).chosen
        for name, ds in eval_sets.items():
            row[f"{name}_acc"] = evaluate(model, ds, recipe.device)["acc"]
        rows.append(row)
        total_epochs += row["epochs"]
        total_samples += sum(st["samples"] for _, st in outs)
        total_wall += wall
    final = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return SmsResult(final, masks, pd.DataFrame(rows), [s for s, _ in outs], total_epochs, total_samples, total_wall)


def imp_mx(
    recipe: Recipe,
    pretrained: Pretrained,
    train: Dataset,
    target: float,
    phases: int,
    epochs: int,
    m: int = 1,
    seed: int = 0,
    eval_sets: dict[str, Dataset] | None = None,
) -> SmsResult:
    """IMP with m times the retraining epochs per phase (IMP_{m×}, the same total budget as SMS with m
    ingredients of ``epochs`` each); ``m = 1`` is plain IMP."""
    return sms(
        recipe, pretrained, train, target, phases, [Variant(seed=seed, epochs=m * epochs)], epochs, eval_sets=eval_sets
    )


@dataclass
class RePrune:
    """Outcome of :func:`reprune`: the re-pruned average, its masks, and the sparsity of the plain average before
    re-pruning (lower than the target when the runs' masks differ)."""

    state: dict[str, torch.Tensor]
    masks: Masks
    average_sparsity: float


def reprune(recipe: Recipe, states: Sequence[dict], target: float, train: Dataset) -> RePrune:
    """IMP-RePrune's merge: average m independently pruned models (their masks differ, so the average is denser),
    prune the average again by ``recipe.criterion`` to ``target`` and recalibrate BatchNorm. No retraining follows
    (the paper's Table 1 baseline as we read it)."""
    model = recipe.model()
    model.load_state_dict(average_states(states))
    model.to(recipe.device)
    average_sparsity = Masks.from_model(model).sparsity()
    masks = select(model, target, recipe.criterion)
    masks.apply_(model)
    recalibrate_bn(model, bn_subset(train, recipe.bn_fraction), recipe.batch_size, recipe.device)
    return RePrune({k: v.detach().cpu().clone() for k, v in model.state_dict().items()}, masks, average_sparsity)


def with_device(recipe: Recipe, device: torch.device | str) -> Recipe:
    """The recipe on another device."""
    return replace(recipe, device=str(device))


@dataclass
class OneShot:
    """Outcome of :func:`one_shot`: test accuracies (fractions) of the uniform soup, of the longer single run
    (IMP_{m×}), of every ingredient, and the retraining epochs each side spent (equal by construction)."""

    soup: float
    longer: float
    ingredients: list[float]
    soup_epochs: int
    longer_epochs: int


def one_shot(
    recipe: Recipe,
    pretrained: Pretrained,
    train: Dataset,
    sparsity: float,
    epochs: int,
    candidates: Sequence[Variant],
    test: Dataset,
    longer_seed: int | None = None,
) -> OneShot:
    """The comparison of Fig. 4: prune ``pretrained`` once (global magnitude) to ``sparsity``; retrain one copy
    per variant for ``epochs`` and merge them uniformly (the soup), and retrain a single copy for m · ``epochs``
    (IMP_{3×} in the paper's figure with m = 3: the same total retraining epochs as the soup). The longer run
    uses ``longer_seed`` (default: the first variant's seed). Both sides get the same ALLR d₁ and LLR-type
    schedule of their own length from :func:`schedule_for`, and BatchNorm recalibration before evaluation."""
    model = recipe.model()
    model.load_state_dict(pretrained.state_dict)
    model.to(recipe.device)
    masks, d1 = prune_phase(model, Masks.dense(model), sparsity, sparsity, recipe.criterion)
    pruned = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    outs, _ = retrain_candidates(recipe, pruned, masks, pretrained.lrs, d1, train, epochs, candidates)
    states = [s for s, _ in outs]
    ingredients = []
    for s in states:
        model.load_state_dict(s)
        ingredients.append(evaluate(model, test, recipe.device)["acc"])
    uniform_soup(model, states, masks, bn_subset(train, recipe.bn_fraction), recipe.batch_size, recipe.device)
    soup = evaluate(model, test, recipe.device)["acc"]
    m = len(candidates)
    seed = candidates[0].seed if longer_seed is None else longer_seed
    longer, _ = retrain_candidates(
        recipe, pruned, masks, pretrained.lrs, d1, train, epochs, [Variant(seed=seed, epochs=m * epochs)]
    )
    model.load_state_dict(longer[0][0])
    spent = sum(v.epochs if v.epochs is not None else epochs for v in candidates)
    return OneShot(soup, evaluate(model, test, recipe.device)["acc"], ingredients, spent, m * epochs)
