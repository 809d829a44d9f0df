"""Compression-aware training set-ups and their baselines (Zimmer, Spiegel & Pokutta 2022, Sec. 3-4; official code
``ZIB-IOL/compression-aware-SFW``: ``optimizers/optimizers.py`` for Prox-SGD, ``strategies/structured_strategies.py``
for the penalties).

* :func:`structured_constraints` -- parameter groups with a structured region (group k-support, nuclear, spectral
  k-support or spectral K-sparse) on every Conv2d weight and an L2 ball of the same width on every other tensor;
* :class:`Penalty` -- SGD + ``lam sum_filters ||W_f||_2`` (group lasso, ``Filter_Conv``) or ``lam sum_layers
  ||W||_*`` (nuclear-norm regularisation, ``Nuclear_Conv``) on the Conv2d weights, as a training callback;
* :class:`ProxSGD` -- SGD followed by SVD soft-thresholding ``S <- relu(S - lr lam)`` of every Conv2d weight
  (the proximal operator of ``lr lam ||W||_*``; a full SVD per layer and step).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from ..train import Callback, TrainState
from .constraints import L2Ball, _owned_parameters, init_norms
from .structured import GroupKSupportBall, NuclearBall, SpectralKSparsePolytope, SpectralKSupportBall

__all__ = [
    "STRUCTURED_KINDS",
    "conv_weights",
    "structured_constraints",
    "svd_soft_threshold",
    "group_lasso",
    "nuclear_norm",
    "Penalty",
    "ProxSGD",
]

STRUCTURED_KINDS = ("group_ksupport", "nuclear", "spectral_ksupport", "spectral_ksparse")


def conv_weights(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """``(name, weight)`` of every ``nn.Conv2d`` of ``model``: the tensors structured regions and penalties act on."""
    return [(f"{name}.weight", m.weight) for name, m in model.named_modules() if isinstance(m, nn.Conv2d)]


def _matrix(w: Tensor) -> Tensor:
    """A conv weight matricized as ``c_out x (c_in k_h k_w)`` (a view)."""
    return w.reshape(w.shape[0], -1)


def structured_constraints(
    model: nn.Module,
    kind: str,
    width: float = 10.0,
    k: int | float = 0.3,
    *,
    global_: bool = False,
    svd: str = "qr",
    draws: int = 100,
) -> list[dict[str, Any]]:
    """Parameter groups for :class:`~companion.frankwolfe.SFW`: the structured region ``kind`` on every Conv2d
    weight, an L2 ball on every other trainable tensor (linear layers, biases, BatchNorm), as in the official code.

    Sizes follow the reference rule ``D_l = 2 w E||theta_l^init||_2`` (``w = width``; ``draws`` re-initialisations,
    :func:`~companion.frankwolfe.constraints.init_norms`).  ``k`` counts filters (``group_ksupport``) or singular
    values (spectral kinds); a float is a fraction.  ``global_=True`` (``group_ksupport`` only) puts all filters of
    the network in one region of diameter ``2 w sqrt(sum_l E||W_l^init||^2)`` and selects ``k`` of them jointly.
    ``svd``: the top-k SVD mode of the spectral oracles (:func:`~companion.frankwolfe.structured.top_k_svd`).
    """
    if kind not in STRUCTURED_KINDS:
        raise ValueError(f"kind must be one of {STRUCTURED_KINDS}, got {kind!r}")
    if global_ and kind != "group_ksupport":
        raise ValueError("only the group k-support region has a global variant here")
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be positive, got {width!r}")
    owned = _owned_parameters(model)
    norms: dict[int, dict[str, float]] = {}

    def mean_norm(module: nn.Module, name: str) -> float:
        if id(module) not in norms:
            norms[id(module)] = init_norms(module, draws)
        return norms[id(module)][name]

    conv_p, conv_r, conv_sq, other_p, other_r = [], [], [], [], []
    for module, name, p in owned:
        diameter = 2.0 * width * mean_norm(module, name)
        if isinstance(module, nn.Conv2d) and name == "weight":
            conv_p.append(p)
            conv_sq.append(mean_norm(module, name) ** 2)
            n, shape = p.numel(), tuple(p.shape)
            if kind == "group_ksupport":
                conv_r.append(GroupKSupportBall.from_diameter(n, diameter, k=k, groups=shape[0]))
            elif kind == "nuclear":
                conv_r.append(NuclearBall.from_diameter(n, diameter, shape=shape, svd=svd))
            elif kind == "spectral_ksupport":
                conv_r.append(SpectralKSupportBall.from_diameter(n, diameter, k=k, shape=shape, svd=svd))
            else:
                conv_r.append(SpectralKSparsePolytope.from_diameter(n, diameter, k=k, shape=shape, svd=svd))
        else:
            other_p.append(p)
            other_r.append(L2Ball.from_diameter(p.numel(), diameter))
    if not conv_p:
        raise ValueError("the model has no Conv2d layer: structured regions need conv weights")
    groups: list[dict[str, Any]] = []
    if global_:
        sizes = [g for p in conv_p for g in [p[0].numel()] * p.shape[0]]
        region = GroupKSupportBall.from_diameter(sum(sizes), 2.0 * width * math.sqrt(sum(conv_sq)), k=k, groups=sizes)
        groups.append({"params": conv_p, "region": region})
    else:
        groups.append({"params": conv_p, "regions": conv_r})
    if other_p:
        groups.append({"params": other_p, "regions": other_r})
    return groups


# ----------------------------------------------------------------------------------------------------------------------
# penalties and Prox-SGD
# ----------------------------------------------------------------------------------------------------------------------


def svd_soft_threshold(w: Tensor, threshold: float) -> Tensor:
    """``U relu(S - threshold) V^T`` of the matricized ``w`` (the proximal operator of ``threshold ||W||_*``),
    reshaped back (a full SVD)."""
    u, s, vh = torch.linalg.svd(_matrix(w), full_matrices=False)
    return ((u * (s - threshold).clamp_min(0)) @ vh).reshape(w.shape)


def group_lasso(weights: Iterable[Tensor]) -> Tensor:
    """``sum_layers sum_filters ||W_f||_2`` (the ``Filter_Conv`` penalty of the official code)."""
    return sum(torch.linalg.vector_norm(_matrix(w), dim=1).sum() for w in weights)  # type: ignore[return-value]


def nuclear_norm(weights: Iterable[Tensor]) -> Tensor:
    """``sum_layers ||W||_*`` of the matricized weights (the ``Nuclear_Conv`` penalty)."""
    return sum(torch.linalg.svdvals(_matrix(w)).sum() for w in weights)  # type: ignore[return-value]


class Penalty(Callback):
    """Adds the (sub)gradient of ``lam * penalty`` of the model's Conv2d weights to their ``.grad`` after every
    backward pass (``before_backward`` of the official strategies; the loss itself is left unchanged).

    ``kind="group_lasso"``: ``lam W_f / ||W_f||_2`` per filter (0 for a zero filter); ``kind="nuclear"``:
    ``lam U V^T`` from a full SVD (the subgradient of ``||W||_*``, restricted to non-zero singular values).
    """

    KINDS = ("group_lasso", "nuclear")

    def __init__(self, kind: str, lam: float):
        if kind not in self.KINDS:
            raise ValueError(f"kind must be one of {self.KINDS}, got {kind!r}")
        self.kind, self.lam = kind, float(lam)
        self.weights: list[Tensor] | None = None

    def on_train_begin(self, state: TrainState) -> None:
        self.weights = [w for _, w in conv_weights(state.model)]

    @torch.no_grad()
    def on_after_backward(self, state: TrainState) -> None:
        assert self.weights is not None
        for w in self.weights:
            if w.grad is None:
                continue
            w.grad.add_(self.subgradient(w), alpha=self.lam)

    def subgradient(self, w: Tensor) -> Tensor:
        """A subgradient of the (unscaled) penalty of one conv weight."""
        mat = _matrix(w)
        if self.kind == "group_lasso":
            norms = torch.linalg.vector_norm(mat, dim=1, keepdim=True)
            return (mat / norms.clamp_min(torch.finfo(mat.dtype).tiny) * (norms > 0)).reshape(w.shape)
        u, s, vh = torch.linalg.svd(mat, full_matrices=False)
        return ((u * (s > 0).to(mat.dtype)) @ vh).reshape(w.shape)


class ProxSGD(torch.optim.SGD):
    """Proximal SGD for ``loss + lam sum_layers ||W||_*``: an SGD step (momentum, weight decay as in
    ``torch.optim.SGD``) followed by ``W <- svd_soft_threshold(W, lr lam)`` on the tensors of ``prox_params``
    (the Conv2d weights) -- the Prox-SGD baseline of Zimmer et al. (2022), needing a full SVD per layer and step."""

    def __init__(self, params: Any, prox_params: Iterable[Tensor], lam: float, lr: float = 0.1, **sgd: Any):
        super().__init__(params, lr=lr, **sgd)
        self.prox_ids = {id(p) for p in prox_params}
        self.lam = float(lam)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:  # type: ignore[override]
        loss = super().step(closure)
        for group in self.param_groups:
            for p in group["params"]:
                if id(p) in self.prox_ids:
                    p.copy_(svd_soft_threshold(p, group["lr"] * self.lam))
        return loss


# ----------------------------------------------------------------------------------------------------------------------
# one training run of the chapter's comparisons
# ----------------------------------------------------------------------------------------------------------------------

METHODS = (
    "sgd",
    "sfw_ksparse",
    "sfw_ksupport",
    "sgd_group_lasso",
    "sfw_group_ksupport",
    "sgd_nuclear",
    "prox_sgd",
    "sfw_spectral",
)


def build_optimizer(
    model: nn.Module, method: str, settings: dict[str, Any]
) -> tuple[torch.optim.Optimizer, list[Callback]]:
    """The optimizer (and penalty callbacks) of one ``method`` of :data:`METHODS` for ``model``.

    ``settings`` keys (with defaults): ``lr`` (0.1), ``momentum`` (0.9), ``weight_decay`` (SGD, 5e-4),
    ``nesterov`` (True), ``lam`` (penalty / prox strength, 5e-4), ``width`` (w, 10), ``k`` (0.3), ``rescale``
    (``"gradient"``; the K-sparse baseline of Miao et al. uses ``"diameter"``), ``svd`` (``"qr"``). SFW uses the
    undampened momentum of Zimmer et al. (2022); unstructured SFW regions cover every tensor (per tensor), the
    structured ones Conv2d weights only (:func:`structured_constraints`)."""
    from .constraints import constraints_for, make_feasible_
    from .optimizers import SFW

    if method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    lr, mom = settings.get("lr", 0.1), settings.get("momentum", 0.9)
    lam, width, k = settings.get("lam", 5e-4), settings.get("width", 10.0), settings.get("k", 0.3)
    if method.startswith("sgd") or method == "prox_sgd":
        sgd = dict(
            lr=lr,
            momentum=mom,
            nesterov=settings.get("nesterov", True),
            weight_decay=settings.get("weight_decay", 5e-4 if method == "sgd" else 1e-4),
        )
        if method == "prox_sgd":
            return ProxSGD(model.parameters(), [w for _, w in conv_weights(model)], lam=lam, **sgd), []
        callbacks: list[Callback] = []
        if method == "sgd_group_lasso":
            callbacks.append(Penalty("group_lasso", lam))
        elif method == "sgd_nuclear":
            callbacks.append(Penalty("nuclear", lam))
        return torch.optim.SGD(model.parameters(), **sgd), callbacks
    if method == "sfw_ksparse":
        groups = constraints_for(model, "ksparse", width, k=k)
    elif method == "sfw_ksupport":
        groups = constraints_for(model, "ksupport", width, k=k)
    elif method == "sfw_group_ksupport":
        groups = structured_constraints(model, "group_ksupport", width, k, global_=settings.get("global", False))
    else:
        groups = structured_constraints(model, "spectral_ksupport", width, k, svd=settings.get("svd", "qr"))
    make_feasible_(groups)
    opt = SFW(groups, lr=lr, momentum=mom, momentum_style="undampened", rescale=settings.get("rescale", "gradient"))
    return opt, []


def train_run(
    model: nn.Module,
    method: str,
    split: Any,
    *,
    epochs: int,
    seed: int,
    settings: dict[str, Any] | None = None,
    batch_size: int = 64,
    distance_sparsity: float | None = None,
    device: torch.device | str = "cpu",
) -> dict[str, Any]:
    """Train ``model`` in place with ``method`` (:func:`build_optimizer`) on ``split.train`` for ``epochs`` with the
    linear learning-rate decay of the official code's ``(Linear, lr)`` schedule; returns what the cache stores:
    the ``state_dict`` (on the CPU), the per-epoch ``history`` (columns of :func:`companion.train.fit` as lists,
    with ``distance`` = :func:`~companion.pruning.structured.relative_distance_to_pruned` at
    ``distance_sparsity`` when given, and the value at initialisation in ``distance0``) and
    ``seconds_per_epoch`` (training time only)."""
    from ..pruning.structured import relative_distance_to_pruned
    from ..train import EpochMetric, fit

    settings = dict(settings or {})
    opt, callbacks = build_optimizer(model, method, settings)
    out: dict[str, Any] = {}
    if distance_sparsity is not None:
        out["distance0"] = relative_distance_to_pruned(model, distance_sparsity)
        callbacks = [*callbacks, EpochMetric("distance", lambda m: relative_distance_to_pruned(m, distance_sparsity))]
    history = fit(
        model,
        opt,
        split.train,
        epochs=epochs,
        batch_size=batch_size,
        lr_schedule="linear",
        eval_sets={"test": split.test},
        callbacks=callbacks,
        device=device,
        seed=seed,
    )
    out["state_dict"] = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    out["history"] = {c: [float(x) for x in history[c]] for c in history.columns}
    out["seconds_per_epoch"] = float(history["seconds"].iloc[-1]) / epochs
    return out


COMPRESSIONS = ("magnitude", "filters", "low_rank")


@torch.no_grad()
def compressed_accuracy(
    model: nn.Module, dataset: Any, operation: str, levels: Iterable[float], device: torch.device | str = "cpu"
) -> list[float]:
    """Test accuracy of ``model`` compressed at each level **without retraining** (a copy; ``model`` is unchanged):
    ``"magnitude"`` -- global magnitude pruning of the prunable weights to sparsity ``s``; ``"filters"`` -- the
    fraction ``s`` of filters with smallest L1 norm per Conv2d; ``"low_rank"`` -- every Conv2d truncated to
    ``max(1, floor((1 - s) rank))`` singular values (:mod:`companion.pruning.structured`)."""
    import copy

    from ..pruning.criteria import prune_
    from ..pruning.structured import low_rank, prune_filters_
    from ..train import evaluate

    if operation not in COMPRESSIONS:
        raise ValueError(f"operation must be one of {COMPRESSIONS}, got {operation!r}")
    out = []
    for s in levels:
        if operation == "low_rank":
            small = low_rank(model, s)
        else:
            small = copy.deepcopy(model)
            if operation == "magnitude":
                prune_(small, s)
            else:
                prune_filters_(small, s)
        out.append(evaluate(small, dataset, device)["acc"])
    return out


def cached_run(
    model_name: str,
    method: str,
    split: Any,
    *,
    seed: int,
    epochs: int,
    settings: dict[str, Any] | None = None,
    model_options: dict[str, Any] | None = None,
    distance_sparsity: float | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
    version: int = 1,
) -> tuple[nn.Module, dict[str, Any]]:
    """:func:`train_run` of a fresh ``companion.models.build(model_name, **model_options)`` (initialised under
    ``torch.manual_seed(seed)``), through the shared on-disk cache (namespace ``sfw-compression``), so that the
    chapter's notebooks train each configuration once.  The key covers every argument, the split's sizes and the
    source of the training code (and, through the cache, the numerical environment).  Returns the trained model and the stored run."""
    import hashlib
    from pathlib import Path

    from .. import cache, models

    here = Path(__file__).resolve().parent
    digest = hashlib.sha256()
    for path in (
        here / "compression.py",
        here / "structured.py",
        here / "constraints.py",
        here / "optimizers.py",
        here.parent / "pruning" / "structured.py",
        here.parent / "train.py",
    ):
        digest.update(path.read_bytes())

    settings, model_options = dict(settings or {}), dict(model_options or {})
    key = {
        "version": version,
        "model": model_name,
        "model_options": model_options,
        "method": method,
        "seed": seed,
        "epochs": epochs,
        "settings": settings,
        "data": [split.name, list(split.sizes())] if hasattr(split, "sizes") else str(split),
        "distance_sparsity": distance_sparsity,
        "device": str(device),
        "batch_size": batch_size,
        "code": digest.hexdigest()[:16],
    }

    def build() -> dict[str, Any]:
        torch.manual_seed(seed)
        model = models.build(model_name, **model_options).to(device)
        return train_run(
            model,
            method,
            split,
            epochs=epochs,
            seed=seed,
            settings=settings,
            distance_sparsity=distance_sparsity,
            device=device,
            batch_size=batch_size,
        )

    run = cache.cached("sfw-compression", f"{model_name}-{method}", key, build).value
    model = models.build(model_name, **model_options)
    model.load_state_dict(run["state_dict"])
    return model.to(device), run


def testbed_options(model_name: str, split: Any, **extra: Any) -> dict[str, Any]:
    """Constructor options of ``companion.models.build(model_name)`` that fit ``split`` (input channels or
    features, number of classes) plus ``extra`` (e.g. ``width`` of ``cnn_bn``)."""
    shape = tuple(split.input_shape)
    if model_name.startswith("mlp"):
        return {"in_features": math.prod(shape), "num_classes": split.num_classes, **extra}
    return {"in_channels": shape[0], "num_classes": split.num_classes, **extra}


def compare(
    model_name: str,
    methods: dict[str, tuple[str, dict[str, Any]]],
    split: Any,
    *,
    seeds: Iterable[int],
    epochs: int,
    operation: str,
    levels: Sequence[float],
    model_options: dict[str, Any] | None = None,
    distance_sparsity: float | None = None,
    device: torch.device | str = "cpu",
    batch_size: int = 64,
) -> dict[str, dict[str, Any]]:
    """Train every ``label: (method, settings)`` of ``methods`` for every seed (:func:`cached_run`) and compress
    each trained model at ``levels`` (:func:`compressed_accuracy`).  Returns per label: ``acc`` (seeds x levels),
    ``dense`` (test accuracy before compression, per seed), ``seconds_per_epoch`` (per seed) and ``runs``."""
    out: dict[str, dict[str, Any]] = {}
    for label, (method, settings) in methods.items():
        accs, dense, secs, runs = [], [], [], []
        for seed in seeds:
            model, run = cached_run(
                model_name,
                method,
                split,
                seed=seed,
                epochs=epochs,
                settings=settings,
                model_options=model_options,
                distance_sparsity=distance_sparsity,
                device=device,
                batch_size=batch_size,
            )
            accs.append(compressed_accuracy(model, split.test, operation, levels, device))
            dense.append(run["history"]["test_acc"][-1])
            secs.append(run["seconds_per_epoch"])
            runs.append(run)
        out[label] = {
            "acc": np.array(accs),
            "dense": np.array(dense),
            "seconds_per_epoch": np.array(secs),
            "runs": runs,
        }
    return out


def mean_std(values: Any, digits: int = 3) -> str:
    """``"mean ± std"`` of ``values`` (population std over seeds, ``ddof = 0``)."""
    arr = np.asarray(values, dtype=float)
    return f"{arr.mean():.{digits}f} ± {arr.std():.{digits}f}"


def robustness_table(results: dict[str, dict[str, Any]], levels: Sequence[float], level_name: str) -> Any:
    """A DataFrame with one row per method: dense accuracy and the accuracy at every compression level, each as
    ``mean ± std`` over seeds."""
    import pandas as pd

    rows = []
    for label, res in results.items():
        row = {"method": label, "dense": mean_std(res["dense"])}
        for j, s in enumerate(levels):
            row[f"{level_name} {s:.0%}"] = mean_std(res["acc"][:, j])
        rows.append(row)
    return pd.DataFrame(rows).set_index("method")
