"""The step length of SFW under its learning-rate rescalings, measured along real trainings (Zimmer, Spiegel &
Pokutta 2022, the section on gradient rescaling; the rescalings of Pokutta, Spiegel & Zimmer 2020, Sec. 3.2).

SFW moves ``theta <- theta + alpha (v - theta)`` with ``alpha = min(1, eta f)``, ``v`` the LMO vertex of the
momentum ``m``.  The displacement ``Delta = alpha (v - theta)`` has the length

* ``min(eta ||m||, ||theta - v||)`` under ``gradient`` rescaling (``f = ||m|| / ||theta - v||``): the length of the
  SGD step ``-eta m`` unless the step is clipped at ``alpha = 1``;
* ``min(eta, D) ||theta - v|| / D <= eta`` under ``diameter`` rescaling (``f = 1 / D``): independent of ``||m||``.

For an L2 ball of radius ``tau`` (the k-support ball at ``k = n``) the vertex is ``v = -tau m / ||m||``, so
``theta - v = theta + tau m_hat`` and an unclipped gradient-rescaled step is ``Delta = -eta ||m|| u`` with
``u = (theta - v) / ||theta - v||``.  Since ``| ||theta - v|| - tau | <= ||theta||``,

``||Delta + eta m|| / (eta ||m||) = ||u - m_hat|| <= |1 - ||theta - v|| / tau| + ||theta|| / tau <= 2 ||theta|| / tau``

(:func:`sgd_deviation_bound`): in a ball much larger than the weights the gradient-rescaled SFW step *is* the SGD
step with the same momentum, and the learning rate means what it means for SGD.  The diameter-rescaled step tends
to ``-(eta / 2) m_hat`` instead, a normalised-gradient step whose length ignores ``||m||``.

:func:`rescaling_trace` trains a network with SFW in per-tensor L2 balls of several widths and records, at every
step and for every tensor, the measured deviation from the SGD step next to the bound, and at the end the distance
of the SFW weights to those of SGD trained from the same initialisation on the same minibatches.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["sgd_deviation", "sgd_deviation_bound", "rescaling_trace", "summarize"]


def sgd_deviation(step: Tensor, m: Tensor, lr: float) -> float:
    """``||step + lr m|| / (lr ||m||)``: the distance of an SFW displacement from the SGD step ``-lr m`` with the
    same momentum, relative to the SGD step's length."""
    return float(torch.linalg.vector_norm(step + lr * m) / (lr * torch.linalg.vector_norm(m)))


def sgd_deviation_bound(theta_norm: float, radius: float) -> float:
    """``2 ||theta|| / tau``: the bound on :func:`sgd_deviation` of an unclipped gradient-rescaled SFW step in an L2
    ball of radius ``tau`` (module docstring)."""
    return 2.0 * theta_norm / radius


def _flat(params: Sequence[Tensor]) -> Tensor:
    return torch.cat([p.detach().reshape(-1) for p in params])


def _batches(n: int, batch_size: int, epochs: int, seed: int) -> list[Tensor]:
    gen = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(epochs):
        perm = torch.randperm(n, generator=gen)
        out += [perm[i : i + batch_size] for i in range(0, n, batch_size)]
    return out


def _train_loss(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float(nn.functional.cross_entropy(model(x), y))


def rescaling_trace(
    split: Any,
    *,
    widths: Sequence[float],
    rescales: Sequence[str] = ("gradient", "diameter"),
    seed: int = 0,
    epochs: int = 3,
    lr: float = 0.05,
    momentum: float = 0.9,
    batch_size: int = 64,
    model_name: str = "mlp",
    model_options: dict[str, Any] | None = None,
    dtype: torch.dtype = torch.float64,
) -> dict[str, Any]:
    """Train ``model_name`` on ``split.train`` (a ``TensorDataset``) with SGD (momentum ``m <- mu m + g``, step
    ``-lr m``, no weight decay, constant ``lr``) and with SFW (the same undampened momentum) in per-tensor L2 balls of
    every width ``w`` (:func:`~companion.frankwolfe.constraints.constraints_for`, ``D_l = 2 w E||theta_l^init||``)
    under every rescaling, all from the same initialisation (``torch.manual_seed(seed)``) on the same minibatches.

    Returns ``{"sgd": {"train_loss", "test_acc", "travel"}, rescale: {w: stats}}`` with per run ``stats``:
    ``deviation`` and ``bound`` (arrays over steps x tensors of :func:`sgd_deviation` and
    :func:`sgd_deviation_bound`), ``length_ratio`` (``||Delta|| / (lr ||m||)``), ``clipped`` (boolean, the same
    shape: ``alpha = 1``), ``distance_to_sgd`` (``||theta_T - theta_T^SGD|| / ||theta_T^SGD - theta_0||``), ``train_loss``
    and ``test_acc``."""
    from .. import models
    from ..train import evaluate
    from .constraints import constraints_for, make_feasible_
    from .optimizers import SFW

    x, y = (t.to(dtype) if t.is_floating_point() else t for t in split.train.tensors)
    order = _batches(len(y), batch_size, epochs, seed)
    torch.manual_seed(seed)
    model0 = models.build(model_name, **dict(model_options or {})).to(dtype)
    theta0 = _flat(model0.parameters())

    def test_acc(model: nn.Module) -> float:
        xt, yt = split.test.tensors
        data = torch.utils.data.TensorDataset(xt.to(dtype), yt)
        return float(evaluate(model, data)["acc"])

    sgd_model = copy.deepcopy(model0)
    opt = torch.optim.SGD(sgd_model.parameters(), lr=lr, momentum=momentum, dampening=0.0, nesterov=False)
    for idx in order:
        opt.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(sgd_model(x[idx]), y[idx]).backward()
        opt.step()
    theta_sgd = _flat(sgd_model.parameters())
    travel = float(torch.linalg.vector_norm(theta_sgd - theta0))
    out: dict[str, Any] = {
        "sgd": {"train_loss": _train_loss(sgd_model, x, y), "test_acc": test_acc(sgd_model), "travel": travel}
    }
    for rescale in rescales:
        out[rescale] = {}
        for w in widths:
            model = copy.deepcopy(model0)
            groups = constraints_for(model, "l2", float(w))
            make_feasible_(groups)
            params, regions = groups[0]["params"], groups[0]["regions"]
            opt = SFW(groups, lr=lr, momentum=momentum, momentum_style="undampened", rescale=rescale)
            dev, bound, length, clip = [], [], [], []
            for idx in order:
                before = [p.detach().clone() for p in params]
                opt.zero_grad(set_to_none=True)
                nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
                opt.step()
                row_d, row_b, row_l, row_c = [], [], [], []
                for p, b, region in zip(params, before, regions):
                    m = opt.state[p]["momentum_buffer"]
                    step = p.detach() - b
                    m_norm = float(torch.linalg.vector_norm(m))
                    row_d.append(sgd_deviation(step, m, lr))
                    row_b.append(sgd_deviation_bound(float(torch.linalg.vector_norm(b)), region.radius))
                    row_l.append(float(torch.linalg.vector_norm(step)) / (lr * m_norm))
                    # alpha = 1: a gradient step shorter than lr ||m||, or lr >= D under diameter rescaling
                    row_c.append(row_l[-1] < 1.0 - 1e-9 if rescale == "gradient" else lr >= region.diameter)
                dev.append(row_d)
                bound.append(row_b)
                length.append(row_l)
                clip.append(row_c)
            theta = _flat(params)
            out[rescale][w] = {
                "deviation": np.asarray(dev),
                "bound": np.asarray(bound),
                "length_ratio": np.asarray(length),
                "clipped": np.asarray(clip, dtype=bool),
                "distance_to_sgd": float(torch.linalg.vector_norm(theta - theta_sgd)) / max(travel, 1e-300),
                "train_loss": _train_loss(model, x, y),
                "test_acc": test_acc(model),
            }
    return out


def summarize(trace: dict[str, Any], rescale: str, width: float) -> dict[str, float]:
    """Scalars of one run of :func:`rescaling_trace`: median and maximum deviation from the SGD step, the median
    bound, the largest ratio of deviation to bound over the unclipped steps (``<= 1`` when the bound holds; it
    applies to ``gradient`` rescaling), median length ratio, number of clipped steps, distance to SGD, training
    loss and test accuracy."""
    run = trace[rescale][width]
    dev, bound, free = run["deviation"], run["bound"], ~run["clipped"]
    return {
        "deviation_median": float(np.median(dev)),
        "deviation_max": float(dev.max()),
        "bound_median": float(np.median(bound)),
        "bound_ratio_max": float((dev[free] / bound[free]).max()) if free.any() else math.nan,
        "length_ratio_median": float(np.median(run["length_ratio"])),
        "clipped": float(run["clipped"].sum()),
        "distance_to_sgd": run["distance_to_sgd"],
        "train_loss": run["train_loss"],
        "test_acc": run["test_acc"],
    }
