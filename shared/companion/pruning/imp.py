"""Iterative Magnitude Pruning (IMP) with budgeted retraining, and BIMP.

IMP (Han et al., 2015) starts from a trained dense model and runs J prune–retrain phases: each prunes the
fraction p = 1 − (1 − s)^{1/J} of the remaining weights (globally by magnitude unless another criterion is
given) and retrains with the mask fixed. Zimmer, Spiegel & Pokutta (ICLR 2023) treat retraining as budgeted
training: a linear schedule (LLR) or its adaptive variant ALLR makes short retraining work, and BIMP also
budgets the dense phase (train T₀ < T epochs with a linear schedule, then IMP+ALLR on the rest).

The official code finds the pretrained model and its per-iteration learning rates through the W&B API;
here :class:`Pretrained` carries the weights *and* the learning rate of every pretraining iteration, and is
passed to :func:`imp` in-process (or saved and loaded as one file).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from ..train import Callback, TrainState, evaluate, fit
from .criteria import cumulative_sparsity, phase_rate, select
from .masks import KeepMasked, Masks
from .schedules import allr_factor, retrain_schedule

OptimizerFactory = Callable[[Iterable[nn.Parameter]], torch.optim.Optimizer]


@dataclass
class Pretrained:
    """A trained dense model: its ``state_dict``, the learning rate of every training iteration (from which
    retraining schedules are built), its number of epochs and its per-epoch history."""

    state_dict: dict[str, torch.Tensor]
    lrs: np.ndarray
    epochs: int
    history: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def iterations(self) -> int:
        return len(self.lrs)

    def save(self, path: str | Path) -> None:
        """One file with weights, learning rates, epochs and history."""
        torch.save(
            {
                "state_dict": self.state_dict,
                "lrs": torch.as_tensor(self.lrs),
                "epochs": self.epochs,
                "history": self.history.to_dict("list"),
            },
            path,
        )

    @classmethod
    def load(cls, path: str | Path) -> "Pretrained":
        blob = torch.load(path, weights_only=True)
        return cls(blob["state_dict"], blob["lrs"].numpy(), int(blob["epochs"]), pd.DataFrame(blob["history"]))


class _State(Callback):
    """Keeps a handle on fit's TrainState so that the per-iteration learning rates can be read afterwards."""

    def on_train_begin(self, state: TrainState) -> None:
        self.state = state


def pretrain(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Dataset,
    epochs: int,
    lr_schedule: str = "step",
    **fit_kwargs,
) -> Pretrained:
    """Train ``model`` densely with :func:`companion.train.fit` and return it as :class:`Pretrained`
    (recording the learning rate of every iteration). The default ``step`` schedule (×0.1 at 50 % and 75 %)
    is the one under which FT, LRW and SLR differ from LLR; BIMP's dense phase uses ``linear``."""
    grab = _State()
    callbacks = [grab, *fit_kwargs.pop("callbacks", ())]
    history = fit(model, optimizer, train, epochs, lr_schedule=lr_schedule, callbacks=callbacks, **fit_kwargs)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return Pretrained(state, np.asarray(grab.state.lrs), epochs, history)


@dataclass
class ImpResult:
    """Outcome of :func:`imp`: final masks, one row per phase, the learning rate of every retraining
    iteration (concatenated over phases), and total retraining samples and seconds."""

    masks: Masks
    phases: pd.DataFrame
    lrs: np.ndarray
    samples: int
    seconds: float


def split_epochs(total: int, phases: int) -> list[int]:
    """A total retraining budget split evenly over the phases, the remainder going to the last phase
    (``n_epochs_to_split`` of the official code)."""
    base = total // phases
    return [base] * (phases - 1) + [total - base * (phases - 1)]


def imp(
    model: nn.Module,
    pretrained: Pretrained,
    make_optimizer: OptimizerFactory,
    train: Dataset,
    sparsity: float,
    phases: int = 1,
    epochs_per_phase: int | None = None,
    total_epochs: int | None = None,
    schedule: str = "allr",
    criterion: str = "global",
    batch_size: int = 64,
    eval_sets: dict[str, Dataset] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    generator: torch.Generator | None = None,
    keep_optimizer: bool = False,
    **fit_kwargs,
) -> ImpResult:
    """Prune ``pretrained`` (loaded into ``model``) to ``sparsity`` in ``phases`` prune–retrain phases.

    Each phase prunes to the cumulative sparsity 1 − (1 − p)^j with p = 1 − (1 − s)^{1/J}, measures every
    evaluation set right after pruning (``pruned_<set>_acc``), builds the retraining schedule ``schedule``
    from ``pretrained.lrs`` (ALLR's factor is recomputed before every phase, Section 3.1 of the paper) and
    retrains with a fresh optimizer from ``make_optimizer`` and the mask enforced after every step.
    The budget is ``epochs_per_phase`` epochs per phase, or ``total_epochs`` split over the phases
    (:func:`split_epochs`); 0 epochs means prune only. Row columns: phase, sparsity, rate, epochs, d1, d2, d,
    peak_lr, pruned_<set>_acc, <set>_acc, <set>_loss, seconds.

    ``keep_optimizer=True`` builds the optimizer once and keeps it, with its momentum buffers, across the phases,
    as the official code does; the default starts every phase with a fresh one (the paper's description of each
    phase as a retraining from the pruned weights).
    """
    if (epochs_per_phase is None) == (total_epochs is None):
        raise ValueError("give exactly one of epochs_per_phase and total_epochs")
    budgets = [epochs_per_phase] * phases if epochs_per_phase is not None else split_epochs(total_epochs, phases)
    model.load_state_dict(pretrained.state_dict)
    model.to(device)
    eval_sets = eval_sets or {}
    extra_callbacks = list(fit_kwargs.pop("callbacks", ()))
    rate = phase_rate(sparsity, phases)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    masks, rows, all_lrs, samples, seconds = Masks.dense(model), [], [], 0, 0.0
    optimizer = None
    for j, epochs in enumerate(budgets, start=1):
        target = sparsity if j == phases else cumulative_sparsity(rate, j)
        before = [p.detach().clone() for p in model.parameters()]
        masks = select(model, target, criterion, masks, generator)
        masks.apply_(model)
        row = {"phase": j, "sparsity": masks.sparsity(), "rate": rate, "epochs": epochs}
        row.update({f"pruned_{name}_acc": evaluate(model, ds, device)["acc"] for name, ds in eval_sets.items()})
        iterations = epochs * steps_per_epoch
        if iterations:
            factor = allr_factor(before, list(model.parameters()), rate, iterations, pretrained.iterations)
            lrs = retrain_schedule(schedule, pretrained.lrs, iterations, d=factor["d"])
            if optimizer is None or not keep_optimizer:
                optimizer = make_optimizer(model.parameters())
            for group in optimizer.param_groups:  # the schedule gives absolute learning rates
                group["lr"] = 1.0
            history = fit(
                model,
                optimizer,
                train,
                epochs,
                batch_size=batch_size,
                lr_schedule=lambda it, total, lrs=lrs: float(lrs[it]),
                eval_sets=eval_sets,
                callbacks=[KeepMasked(masks), *extra_callbacks],
                device=device,
                seed=seed + j,
                eval_every=epochs,
                desc=f"phase {j}/{phases}",
                **fit_kwargs,
            )
            last = history.iloc[-1]
            row.update(factor, peak_lr=float(lrs.max()))
            row.update({k: float(last[k]) for k in history.columns if k.endswith(("_acc", "_loss"))})
            row["seconds"] = float(last["seconds"])
            samples += int(last["samples"])
            seconds += float(last["seconds"])
            all_lrs.append(lrs)
        else:
            row.update(
                {f"{name}_{k}": v for name, ds in eval_sets.items() for k, v in evaluate(model, ds, device).items()}
            )
            row["seconds"] = 0.0
        rows.append(row)
    lrs_out = np.concatenate(all_lrs) if all_lrs else np.zeros(0)
    return ImpResult(masks, pd.DataFrame(rows), lrs_out, samples, seconds)


@dataclass
class BimpResult:
    """Outcome of :func:`bimp`: the dense phase and the IMP phases, with the throughput of the whole run."""

    pretrained: Pretrained
    imp: ImpResult

    @property
    def samples_per_second(self) -> float:
        dense = self.pretrained.history.iloc[-1]
        return (int(dense["samples"]) + self.imp.samples) / (float(dense["seconds"]) + self.imp.seconds)


def bimp(
    model: nn.Module,
    make_optimizer: OptimizerFactory,
    train: Dataset,
    sparsity: float,
    total_epochs: int,
    dense_epochs: int,
    phases: int,
    batch_size: int = 64,
    eval_sets: dict[str, Dataset] | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
    criterion: str = "global",
    **fit_kwargs,
) -> BimpResult:
    """Budgeted IMP (Zimmer et al., 2023, Section 4): train densely for T₀ = ``dense_epochs`` of the total
    budget T = ``total_epochs`` with a linear schedule, then IMP with ALLR over the remaining T − T₀ epochs
    split into ``phases`` phases. ALLR's d₂ = T_rt / T₀ uses the dense phase's length, as in the official code."""
    if not 0 < dense_epochs < total_epochs:
        raise ValueError(f"dense_epochs must be in (0, total_epochs = {total_epochs}), got {dense_epochs}")
    optimizer = make_optimizer(model.parameters())
    dense = pretrain(
        model,
        optimizer,
        train,
        dense_epochs,
        lr_schedule="linear",
        batch_size=batch_size,
        device=device,
        seed=seed,
        eval_every=dense_epochs,
        **fit_kwargs,
    )
    result = imp(
        model,
        dense,
        make_optimizer,
        train,
        sparsity,
        phases,
        total_epochs=total_epochs - dense_epochs,
        schedule="allr",
        criterion=criterion,
        batch_size=batch_size,
        eval_sets=eval_sets,
        device=device,
        seed=seed,
        **fit_kwargs,
    )
    return BimpResult(dense, result)
