"""Step-time benchmark: SFW against ``torch.optim.SGD(momentum=0.9)`` on the same model and batch."""

from __future__ import annotations

import copy
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from .constraints import constraints_for, make_feasible_
from .optimizers import SFW

__all__ = ["step_time_ratio", "testbed_mlp", "spectral_step_ratio"]


def testbed_mlp() -> nn.Module:
    """The testbed MLP 64-256-256-10 with ReLU (``companion.models.mlp`` when available)."""
    try:
        from companion.models import mlp
    except ImportError:
        return nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.Linear(256, 256), nn.ReLU(), nn.Linear(256, 10))
    return mlp()


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def step_time_ratio(
    model_factory: Callable[[], nn.Module] | None = None,
    batch_size: int = 128,
    repeats: int = 300,
    constraint: str = "l2",
    rescale: str = "diameter",
    *,
    width: float = 30.0,
    warmup: int = 20,
    input_shape: Sequence[int] = (64,),
    num_classes: int = 10,
    device: str | torch.device = "cpu",
    seed: int = 0,
    threads: int | None = None,
    clock: str = "wall",
    **constraint_options: Any,
) -> dict[str, Any]:
    """Median wall-clock time of ``optimizer.step()`` and of a full iteration (zero_grad + forward + backward +
    step) for :class:`~companion.frankwolfe.SFW` (per-tensor ``constraint`` regions of width ``width``, momentum
    0.9, ``rescale``, lr 0.1) and for ``torch.optim.SGD(lr=0.1, momentum=0.9)``, on two copies of the same model
    and the same random batches.  The two optimizers alternate iteration by iteration so that both see the same
    machine load.

    Returns the medians in seconds (``sgd_step_s``, ``sfw_step_s``, ``sgd_iter_s``, ``sfw_iter_s``), the ratios
    ``step_ratio = sfw_step_s / sgd_step_s`` and ``iteration_ratio = sfw_iter_s / sgd_iter_s``, and the setup.
    ``threads`` temporarily sets ``torch.set_num_threads`` (on a shared, oversubscribed CPU one thread gives the
    most stable numbers); the caller's setting is restored afterwards.  ``clock="wall"`` (default) times with
    ``time.perf_counter``; ``clock="thread"`` uses the CPU time of the calling thread (``time.thread_time``), which
    ignores time the process spends descheduled on a busy machine but also misses work of intra-op worker threads,
    so use it with ``threads=1``.
    """
    if clock not in ("wall", "thread"):
        raise ValueError(f"clock must be 'wall' or 'thread', got {clock!r}")
    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        return _measure(
            model_factory,
            batch_size,
            repeats,
            constraint,
            rescale,
            width,
            warmup,
            input_shape,
            num_classes,
            device,
            seed,
            constraint_options,
            time.perf_counter if clock == "wall" else time.thread_time,
        )
    finally:
        torch.set_num_threads(previous_threads)


def _measure(
    model_factory,
    batch_size,
    repeats,
    constraint,
    rescale,
    width,
    warmup,
    input_shape,
    num_classes,
    device,
    seed,
    constraint_options,
    now,
) -> dict[str, Any]:
    dev = torch.device(device)
    factory = model_factory or testbed_mlp
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed)
        model_sgd = factory().to(dev)
    model_sfw = copy.deepcopy(model_sgd)
    # A pool of random batches with random labels: training on one fixed batch drives the loss to 0 within a few
    # hundred steps, after which denormal gradients make the backward pass (not the optimizer) many times slower.
    pool = 32
    xs = torch.randn(pool, batch_size, *input_shape, generator=gen).to(dev)
    ys = torch.randint(0, num_classes, (pool, batch_size), generator=gen).to(dev)

    sgd = torch.optim.SGD(model_sgd.parameters(), lr=0.1, momentum=0.9)
    groups = constraints_for(model_sfw, kind=constraint, width=width, **constraint_options)
    make_feasible_(groups)
    sfw = SFW(groups, lr=0.1, momentum=0.9, rescale=rescale)
    loss_fn = nn.CrossEntropyLoss()

    times: dict[str, list[float]] = {"sgd_step": [], "sfw_step": [], "sgd_iter": [], "sfw_iter": []}
    for i in range(warmup + repeats):
        x, y = xs[i % pool], ys[i % pool]
        for name, model, opt in (("sgd", model_sgd, sgd), ("sfw", model_sfw, sfw)):
            _sync(dev)
            t0 = now()
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x), y).backward()
            _sync(dev)
            t1 = now()
            opt.step()
            _sync(dev)
            t2 = now()
            if i >= warmup:
                times[f"{name}_step"].append(t2 - t1)
                times[f"{name}_iter"].append(t2 - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    return {
        "sgd_step_s": med["sgd_step"],
        "sfw_step_s": med["sfw_step"],
        "step_ratio": med["sfw_step"] / med["sgd_step"],
        "sgd_iter_s": med["sgd_iter"],
        "sfw_iter_s": med["sfw_iter"],
        "iteration_ratio": med["sfw_iter"] / med["sgd_iter"],
        "constraint": constraint,
        "rescale": rescale,
        "batch_size": batch_size,
        "repeats": repeats,
        "n_params": sum(p.numel() for p in model_sgd.parameters()),
        "threads": torch.get_num_threads(),
        "device": str(dev),
        "clock": "wall" if now is time.perf_counter else "thread",
    }


def spectral_step_ratio(
    width: int = 32,
    batch_size: int = 64,
    repeats: int = 50,
    k: float = 0.3,
    svd: str = "qr",
    *,
    warmup: int = 5,
    seed: int = 0,
    threads: int | None = None,
) -> dict[str, Any]:
    """Median wall-clock time of one optimizer step of SFW with spectral k-support regions on the Conv2d weights
    (``svd`` top-k mode, L2 balls elsewhere; Zimmer et al. 2022) against one Prox-SGD step (SGD + full-SVD
    soft-thresholding of every conv weight), on two copies of the testbed CNN (``cnn_bn`` at ``width``) and the
    same random 1x8x8 batches, alternating iteration by iteration.  Returns ``sfw_spectral_step_s``,
    ``prox_sgd_step_s`` and ``step_ratio = sfw_spectral_step_s / prox_sgd_step_s`` with the setup."""
    from companion.models import cnn_bn

    from .compression import ProxSGD, conv_weights, structured_constraints

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        gen = torch.Generator().manual_seed(seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            model_sfw = cnn_bn(width=width)
        model_prox = copy.deepcopy(model_sfw)
        groups = structured_constraints(model_sfw, "spectral_ksupport", 2.0, k, svd=svd, draws=10)
        make_feasible_(groups)
        sfw = SFW(groups, lr=0.1, momentum=0.9, momentum_style="undampened", rescale="gradient")
        prox = ProxSGD(
            model_prox.parameters(), [w for _, w in conv_weights(model_prox)], lam=1e-2, lr=0.1, momentum=0.9
        )
        xs = torch.randn(8, batch_size, 1, 8, 8, generator=gen)
        ys = torch.randint(0, 10, (8, batch_size), generator=gen)
        loss_fn = nn.CrossEntropyLoss()
        times: dict[str, list[float]] = {"sfw": [], "prox": []}
        for i in range(warmup + repeats):
            for name, model, opt in (("sfw", model_sfw, sfw), ("prox", model_prox, prox)):
                opt.zero_grad(set_to_none=True)
                loss_fn(model(xs[i % 8]), ys[i % 8]).backward()
                t0 = time.perf_counter()
                opt.step()
                if i >= warmup:
                    times[name].append(time.perf_counter() - t0)
        sfw_s, prox_s = statistics.median(times["sfw"]), statistics.median(times["prox"])
        return {
            "sfw_spectral_step_s": sfw_s,
            "prox_sgd_step_s": prox_s,
            "step_ratio": sfw_s / prox_s,
            "svd": svd,
            "k": k,
            "cnn_width": width,
            "repeats": repeats,
            "threads": torch.get_num_threads(),
        }
    finally:
        torch.set_num_threads(previous_threads)
