"""The one training and evaluation loop of the book.

``fit`` trains any ``nn.Module`` with any ``torch.optim.Optimizer`` on a dataset, with a per-iteration
learning-rate schedule, optional input augmentation, callbacks (used e.g. to keep pruning masks applied
or to record statistics) and per-epoch evaluation. Optimizers that need to re-evaluate the loss (variance
reduced Frank-Wolfe, line searches) declare ``needs_closure = True`` and get a closure, as in
``torch.optim.LBFGS``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

import pandas as pd
import torch
from torch import nn
from torch.utils.data import Dataset

from . import progress
from .data.loaders import batches

Schedule = Callable[[int, int], float]  # (iteration, total iterations) -> multiplier of the base lr


def schedule(name: str | Schedule | None, warmup: int = 0) -> Schedule:
    """Learning-rate multiplier per iteration: ``constant``, ``linear`` (to 0 at the end), ``cosine``,
    ``step`` (x0.1 at 50 % and 75 %), or a callable ``(it, total) -> factor``; optional linear warm-up."""
    if callable(name):
        base = name
    else:
        shapes: dict[str, Schedule] = {
            "constant": lambda it, total: 1.0,
            "linear": lambda it, total: 1.0 - it / total,
            "cosine": lambda it, total: 0.5 * (1.0 + math.cos(math.pi * it / total)),
            "step": lambda it, total: 0.1 ** ((it >= 0.5 * total) + (it >= 0.75 * total)),
        }
        key = name or "constant"
        if key not in shapes:
            raise ValueError(f"unknown schedule {name!r}; accepted: {', '.join(shapes)} or a callable")
        base = shapes[key]
    if warmup <= 0:
        return base
    return lambda it, total: base(it, total) * min(1.0, (it + 1) / warmup)


@dataclass
class TrainState:
    """What callbacks see: the model, the optimizer, and where training is."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    epoch: int = 0
    iteration: int = 0
    total_iterations: int = 0
    loss: float = float("nan")
    lrs: list[float] = field(default_factory=list)  # learning rate of the first param group per iteration
    stop: bool = False  # a callback may set this to end training early


class Callback:
    """Hooks of :func:`fit`; override what you need."""

    def on_train_begin(self, state: TrainState) -> None: ...

    def on_after_backward(self, state: TrainState) -> None:
        """Gradients are in ``.grad`` and the optimizer has not stepped yet: the place to edit gradients
        (gradient masks of pruning-during-training methods) or to add the gradient of a penalty."""

    def on_step_end(self, state: TrainState) -> None: ...

    def on_epoch_end(self, state: TrainState, row: dict) -> None: ...


class EpochMetric(Callback):
    """Adds ``row[name] = fn(model)`` to every evaluated epoch (e.g. sparsity during training)."""

    def __init__(self, name: str, fn: Callable[[nn.Module], float]):
        self.name, self.fn = name, fn

    def on_epoch_end(self, state: TrainState, row: dict) -> None:
        row[self.name] = self.fn(state.model)


def full_gradient(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device | str = "cpu",
    batch_size: int = 2048,
    loss_fn: Callable = nn.functional.cross_entropy,
) -> torch.Tensor:
    """Back-propagate the mean loss over the *whole* ``dataset`` into ``.grad`` (accumulated batch by batch)
    and return it: the full gradient that variance-reduced methods such as SVRF take at a snapshot."""
    n = len(dataset)
    total = torch.zeros((), device=device)
    for x, y in batches(dataset, batch_size):
        x, y = x.to(device), y.to(device)
        loss = loss_fn(model(x), y, reduction="sum") / n
        loss.backward()
        total += loss.detach()
    return total


@torch.no_grad()
def evaluate(
    model: nn.Module,
    dataset: Dataset,
    device: torch.device | str = "cpu",
    batch_size: int = 1024,
    loss_fn: Callable = nn.functional.cross_entropy,
) -> dict[str, float]:
    """Mean loss and accuracy of ``model`` on ``dataset`` (eval mode; the previous mode is restored)."""
    was_training = model.training
    model.eval()
    total_loss, correct, n = 0.0, 0, 0
    for x, y in batches(dataset, batch_size):
        x, y = x.to(device), y.to(device)
        out = model(x)
        total_loss += loss_fn(out, y, reduction="sum").item()
        correct += (out.argmax(1) == y).sum().item()
        n += len(y)
    model.train(was_training)
    return {"loss": total_loss / n, "acc": correct / n}


@torch.no_grad()
def predict(
    model: nn.Module, dataset: Dataset, device: torch.device | str = "cpu", batch_size: int = 1024
) -> torch.Tensor:
    """Logits of ``model`` for every sample of ``dataset`` (eval mode), on the CPU."""
    was_training = model.training
    model.eval()
    out = torch.cat([model(x.to(device)).cpu() for x, *_ in batches(dataset, batch_size)])
    model.train(was_training)
    return out


def fit(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    train: Dataset,
    epochs: int,
    batch_size: int = 64,
    lr_schedule: str | Schedule | None = "constant",
    warmup: int = 0,
    eval_sets: dict[str, Dataset] | None = None,
    callbacks: Sequence[Callback] = (),
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None,
    loss_fn: Callable = nn.functional.cross_entropy,
    device: torch.device | str = "cpu",
    seed: int = 0,
    eval_every: int = 1,
    desc: str | None = None,
) -> pd.DataFrame:
    """Train ``model`` for ``epochs`` and return one row per evaluated epoch.

    Columns: ``epoch``, ``iteration``, ``samples`` (training samples processed, i.e. per-sample gradients of
    a plain stochastic method), ``lr``, ``batch_loss`` (mean minibatch loss over the epoch), ``seconds``
    (training time so far, evaluation excluded) and ``<name>_loss``/``<name>_acc`` for every evaluation
    set. The learning rate of every param group is ``base_lr * schedule(it, total)`` at iteration ``it``;
    base rates are read from the optimizer when ``fit`` starts. Batch order depends on ``seed`` only.
    """
    model.to(device)
    gen = torch.Generator()
    gen.manual_seed(seed)
    steps_per_epoch = math.ceil(len(train) / batch_size)
    total = epochs * steps_per_epoch
    shape = schedule(lr_schedule, warmup)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    state = TrainState(model, optimizer, total_iterations=total)
    needs_closure = getattr(optimizer, "needs_closure", False)
    eval_sets = eval_sets or {}
    for cb in callbacks:
        cb.on_train_begin(state)
    rows, elapsed, samples = [], 0.0, 0
    for epoch in progress(range(1, epochs + 1), desc=desc or "epochs", unit="epoch"):
        model.train()
        start, loss_sum, seen = time.perf_counter(), 0.0, 0
        for x, y in batches(train, batch_size, shuffle=True, generator=gen):
            factor = shape(state.iteration, total)
            for group, lr in zip(optimizer.param_groups, base_lrs):
                group["lr"] = lr * factor
            if augment is not None:
                x = augment(x, gen)
            x, y = x.to(device), y.to(device)

            def closure(x=x, y=y):
                optimizer.zero_grad(set_to_none=True)
                batch_loss = loss_fn(model(x), y)
                batch_loss.backward()
                for cb in callbacks:
                    cb.on_after_backward(state)
                return batch_loss

            if needs_closure:
                loss = optimizer.step(closure)
            else:
                loss = closure()
                optimizer.step()
            state.loss = float(loss.detach()) if torch.is_tensor(loss) else float(loss)
            state.lrs.append(optimizer.param_groups[0]["lr"])
            loss_sum += state.loss * len(y)
            seen += len(y)
            samples += len(y)
            state.iteration += 1
            for cb in callbacks:
                cb.on_step_end(state)
        elapsed += time.perf_counter() - start
        state.epoch = epoch
        if epoch % eval_every and epoch != epochs:
            continue
        row = {
            "epoch": epoch,
            "iteration": state.iteration,
            "samples": samples,
            "lr": state.lrs[-1],
            "batch_loss": loss_sum / seen,
            "seconds": elapsed,
        }
        for name, ds in eval_sets.items():
            for k, v in evaluate(model, ds, device, loss_fn=loss_fn).items():
                row[f"{name}_{k}"] = v
        for cb in callbacks:
            cb.on_epoch_end(state, row)
        rows.append(row)
        if state.stop:
            break
    return pd.DataFrame(rows)
