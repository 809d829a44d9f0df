"""Stochastic Frank-Wolfe optimizers for constrained network parameters (Pokutta, Spiegel & Zimmer 2020; official
code ``ZIB-IOL/StochasticFrankWolfe``, ``frankwolfe/pytorch/optimizers.py``).

* :class:`SFW` -- stochastic Frank-Wolfe with momentum and step-size rescaling (the undampened momentum
  and ``fast_gradient`` rescaling of Zimmer, Spiegel & Pokutta 2022 are flags);
* :class:`AdaSFW` -- the adaptive variant with ``K`` inner Frank-Wolfe steps on a diagonal quadratic
  (Combettes, Spiegel & Pokutta 2020);
* :class:`ProjectedSGD` -- SGD (momentum, weight decay) followed by the exact Euclidean projection;
* :class:`SVRF`, :class:`SpiderFW`, :class:`ORGFW` -- the variance-reduced stochastic Frank-Wolfe variants of the
  paper's comparison.  They evaluate minibatch gradients at stored parameter copies through a closure
  and count per-sample gradient evaluations in :attr:`grad_evals`.

Every optimizer takes parameter groups whose regions are given either per tensor (``"regions"``: one region per
parameter, aligned with ``"params"`` -- indexed per parameter, so a tensor without gradient can never shift the
constraints of the others) or for the whole group (``"region"``: one region over the concatenation of its tensors,
the global variant).  :func:`~companion.frankwolfe.constraints.constraints_for` builds such groups.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor
from torch.optim import Optimizer

from .constraints import Region, _tiny, batch_constants, iter_units
from .constraints import make_feasible_ as _make_feasible_

__all__ = [
    "RESCALE_MODES",
    "MOMENTUM_STYLES",
    "attach_regions",
    "frank_wolfe_update_",
    "SFW",
    "AdaSFW",
    "ProjectedSGD",
    "SVRF",
    "SpiderFW",
    "ORGFW",
    "orgfw_rho",
]

RESCALE_MODES = ("none", "diameter", "gradient", "fast_gradient")
MOMENTUM_STYLES = ("convex", "undampened")


# ----------------------------------------------------------------------------------------------------------------------
# parameter groups with regions
# ----------------------------------------------------------------------------------------------------------------------


def attach_regions(params: Any, constraints: Any = None) -> list[dict[str, Any]]:
    """Parameter groups with regions attached.

    ``params``: tensors or parameter groups (dicts).  ``constraints``: ``None`` (the groups already carry
    ``"regions"`` / ``"region"``), a sequence of regions aligned with all tensors in order, a mapping
    ``param -> region``, or a single :class:`Region` (one global region over all tensors of a single group).
    """
    if isinstance(params, Tensor):
        raise TypeError("params must be an iterable of tensors or of parameter groups, not a tensor")
    items = list(params)
    if not items:
        raise ValueError("optimizer got an empty parameter list")
    if isinstance(items[0], Mapping):
        groups = [dict(g) for g in items]
        for g in groups:
            g["params"] = [g["params"]] if isinstance(g["params"], Tensor) else list(g["params"])
    else:
        groups = [{"params": items}]
    if constraints is None:
        return groups
    if isinstance(constraints, Region):
        if len(groups) != 1:
            raise ValueError("a single global region needs a single parameter group")
        groups[0]["region"] = constraints
        groups[0].pop("regions", None)
    elif isinstance(constraints, Mapping):
        for g in groups:
            missing = [i for i, p in enumerate(g["params"]) if p not in constraints]
            if missing:
                raise ValueError(f"no region given for {len(missing)} parameter(s); every parameter needs one")
            g["regions"] = [constraints[p] for p in g["params"]]
            g.pop("region", None)
    else:
        regions = list(constraints)
        total = sum(len(g["params"]) for g in groups)
        if len(regions) != total:
            raise ValueError(f"{total} parameters but {len(regions)} regions")
        start = 0
        for g in groups:
            g["regions"] = regions[start : start + len(g["params"])]
            g.pop("region", None)
            start += len(g["params"])
    return groups


def _validate_group(group: dict[str, Any]) -> None:
    params = group["params"]
    if ("region" in group) == ("regions" in group):
        raise ValueError("each parameter group needs exactly one of 'regions' (per tensor) or 'region' (global)")
    if "region" in group:
        region = group["region"]
        if not isinstance(region, Region):
            raise TypeError(f"'region' must be a Region, got {type(region).__name__}")
        total = sum(p.numel() for p in params)
        if region.n != total:
            raise ValueError(f"global {region!r} is bound to {region.n} entries but the group has {total}")
    else:
        regions = list(group["regions"])
        if len(regions) != len(params):
            raise ValueError(f"{len(params)} parameters but {len(regions)} regions in a group")
        for p, r in zip(params, regions):
            if not isinstance(r, Region):
                raise TypeError(f"regions must be Region instances, got {type(r).__name__}")
            if r.n != p.numel():
                raise ValueError(f"{r!r} is bound to {r.n} entries but its parameter has {p.numel()}")
        group["regions"] = regions
    if len({p.device for p in params}) > 1:
        raise ValueError("all tensors of a parameter group must live on one device")


def _check_choice(name: str, value: Any, choices: Sequence[str]) -> str:
    value = "none" if value is None and "none" in choices else value
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _clamp01(x: float) -> float:
    return min(1.0, max(0.0, x))


def _stack(scalars: Sequence[Tensor]) -> Tensor:
    """Stack 0-dim tensors (promoting mixed dtypes to float32)."""
    if len({s.dtype for s in scalars}) > 1:
        scalars = [s.float() for s in scalars]
    return torch.stack(list(scalars))


# ----------------------------------------------------------------------------------------------------------------------
# the Frank-Wolfe update
# ----------------------------------------------------------------------------------------------------------------------


def _lmo_per_tensor(
    regions: Sequence[Region], directions: Sequence[Tensor], norms: Tensor | None = None
) -> list[Tensor]:
    """LMOs of per-tensor regions, batched per region class (``Region.lmo_batch``); ``norms``: the stacked L2
    norms of ``directions`` when already known."""
    if len({type(r) for r in regions}) == 1:
        return list(type(regions[0])._lmo_batch(regions, directions, norms))
    out: list[Tensor | None] = [None] * len(regions)
    by_cls: dict[type, list[int]] = {}
    for i, r in enumerate(regions):
        by_cls.setdefault(type(r), []).append(i)
    for cls, idx in by_cls.items():
        sub = None if norms is None else norms[idx]
        vs = cls._lmo_batch([regions[i] for i in idx], [directions[i] for i in idx], sub)
        for i, v in zip(idx, vs):
            out[i] = v
    return out  # type: ignore[return-value]


def frank_wolfe_update_(
    params: Sequence[Tensor],
    directions: Sequence[Tensor],
    regions: Sequence[Region] | Region,
    *,
    lr: float,
    rescale: str = "diameter",
) -> None:
    """One Frank-Wolfe step in place: ``v = LMO(m)``, ``theta <- (1 - alpha) theta + alpha v``.

    ``regions``: one region per tensor, or a single region over the concatenation of ``params`` (global).
    The step size is ``alpha = clamp(lr * f, 0, 1)`` with the rescale factor ``f``:

    * ``"none"``: ``f = 1`` (``lr`` itself must lie in [0, 1]);
    * ``"diameter"``: ``f = 1 / D`` -- the step length ``alpha ||theta - v||`` is at most ``lr``;
    * ``"gradient"``: ``f = ||m||_2 / ||theta - v||_2`` -- the step length is ``lr ||m||_2`` unless clamped,
      mimicking SGD (the rescaling Zimmer et al. 2022 found crucial);
    * ``"fast_gradient"``: ``f = ||m||_2 / (D / 2)`` (= ``||m|| / tau`` for norm balls) -- skips ``||theta - v||``
      (Zimmer et al. 2022).

    Norms are per tensor for per-tensor regions and over the concatenation for a global region.  The update is a
    convex combination of feasible points, so feasible iterates stay feasible for every ``lr``.  All tensors are
    processed with ``torch._foreach_*`` kernels and without host synchronisation.
    """
    rescale = _check_choice("rescale", rescale, RESCALE_MODES)
    with torch.no_grad():
        _fw_update(list(params), list(directions), regions, lr, rescale)


def _fw_update(
    params: list[Tensor], ms: list[Tensor], regions: Sequence[Region] | Region, lr: float, rescale: str
) -> None:
    """Body of :func:`frank_wolfe_update_` (grad mode left to the caller)."""
    if not params:
        return
    if rescale not in RESCALE_MODES:
        raise ValueError(f"rescale must be one of {RESCALE_MODES}, got {rescale!r}")
    joint = isinstance(regions, Region)
    if not joint:
        cls = type(regions[0])  # type: ignore[index]
        if all(type(r) is cls for r in regions) and cls._fused_update(  # type: ignore[union-attr]
            regions if isinstance(regions, list) else list(regions), params, ms, lr, rescale
        ):  # type: ignore
            return
    # ||m|| (per tensor) is needed by the gradient rescalings and by the L2 oracle: compute it once.
    m_norms = _stack(torch._foreach_norm(ms)) if rescale in ("gradient", "fast_gradient") else None
    if joint:
        vs = regions.lmo_joint(ms)  # type: ignore[union-attr]
        diameters = [regions.diameter] * len(params)  # type: ignore[union-attr]
    else:
        if not isinstance(regions, list):
            regions = list(regions)  # type: ignore[arg-type]
        vs = _lmo_per_tensor(regions, ms, m_norms)
        diameters = [r.diameter for r in regions]

    if rescale == "none":
        torch._foreach_lerp_(params, vs, _clamp01(lr))
        return
    if rescale == "diameter":
        lr = max(lr, 0.0)
        alphas = [1.0 if d <= lr else lr / d for d in diameters]  # clamp(lr / D, 0, 1); D = 0 gives 1
        torch._foreach_lerp_(params, vs, alphas[0] if joint else alphas)
        return

    dev = params[0].device
    assert m_norms is not None
    tiny = _tiny(m_norms.dtype)
    if joint:
        m_norms = torch.linalg.vector_norm(m_norms).reshape(1)
    if rescale == "fast_gradient":
        if joint:
            half = torch.full((1,), max(diameters[0] / 2.0, tiny), dtype=m_norms.dtype, device=dev)
        else:
            half = batch_constants(
                regions,
                "half_diameter",
                lambda r: max(r.diameter / 2.0, tiny),  # type: ignore
                m_norms.dtype,
                dev,
            )
        alpha = (m_norms * lr / half).clamp_(0.0, 1.0)
        weights = [alpha[0]] * len(params) if joint else list(alpha.unbind())
        torch._foreach_lerp_(params, vs, weights)
        return
    # "gradient": needs ||theta - v||; d = v - theta is formed in place in the (fresh) LMO outputs and reused for the
    # update theta + alpha d.
    ds = vs
    torch._foreach_sub_(ds, params)
    d_norms = _stack(torch._foreach_norm(ds))
    if joint:
        d_norms = torch.linalg.vector_norm(d_norms).reshape(1)
    alpha = (m_norms * lr / d_norms.clamp_min(tiny)).clamp_(0.0, 1.0)
    weights = [alpha[0]] * len(params) if joint else list(alpha.unbind())
    torch._foreach_addcmul_(params, ds, weights)


class _FrankWolfeBase(Optimizer):
    """Shared plumbing: region validation, feasibility helpers and the gradient-evaluation counter."""

    def __init__(self, params: Any, constraints: Any, defaults: dict[str, Any]):
        self._buffers: dict[int, list[Tensor]] = {}  # cached momentum buffer lists per group (see SFW._momentum)
        super().__init__(attach_regions(params, constraints), defaults)
        self.grad_evals = 0  # per-sample gradients evaluated (only counted when batch sizes are given)

    def add_param_group(self, param_group: dict[str, Any]) -> None:
        """Add a group; it must carry ``"regions"`` (per tensor) or ``"region"`` (global)."""
        super().add_param_group(param_group)
        _validate_group(self.param_groups[-1])

    @torch.no_grad()
    def make_feasible_(self) -> None:
        """Gauge-rescale every parameter into its region; call once before the first step."""
        _make_feasible_(self.param_groups)

    def is_feasible(self, tol: float = 1e-5) -> bool:
        """Whether every parameter lies in its region up to the relative tolerance ``tol``."""
        with torch.no_grad():
            for tensors, region, joint in iter_units(self.param_groups):
                x = torch.cat([t.reshape(-1) for t in tensors]) if joint else tensors[0]
                if not region.contains(x, tol):
                    return False
        return True

    def _count(self, batch_size: int | None, times: int = 1) -> None:
        if batch_size is not None:
            self.grad_evals += int(batch_size) * times

    def _evaluate(self, closure: Callable[[], Any] | None, batch_size: int | None) -> Any:
        """Run the optional ``closure`` (re-evaluating loss and gradients) and count ``batch_size`` gradients."""
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._count(batch_size)
        return loss


# ----------------------------------------------------------------------------------------------------------------------
# SFW
# ----------------------------------------------------------------------------------------------------------------------


class SFW(_FrankWolfeBase):
    """Stochastic Frank-Wolfe with momentum (Pokutta, Spiegel, Zimmer 2020).

    Per tensor ``theta`` with region ``C`` and gradient ``g``:

    1. momentum, first call ``m = g``; then ``momentum_style="convex"`` (paper 1): ``m <- mu m + (1 - mu) g``, or
       ``"undampened"`` (Zimmer et al. 2022): ``m <- mu m + g``;
    2. ``v = LMO_C(m)``;
    3. ``alpha = clamp(lr * f, 0, 1)`` with the ``rescale`` factor ``f`` of :func:`frank_wolfe_update_`
       (``none``: 1, ``diameter``: ``1/D``, ``gradient``: ``||m|| / ||theta - v||``, ``fast_gradient``:
       ``||m|| / (D/2)``);
    4. ``theta <- (1 - alpha) theta + alpha v``.

    Defaults follow the reference code: ``lr = 0.1``, ``momentum = 0.9`` (``rho = 0.1`` in the paper),
    ``rescale = "diameter"``.  Regions: ``constraints`` (see :func:`attach_regions`) or groups from
    :func:`~companion.frankwolfe.constraints.constraints_for`.  With per-tensor regions a tensor without gradient is
    simply skipped; with a global region a missing gradient counts as zero.  Make the initial point feasible first
    (:meth:`make_feasible_`).
    """

    def __init__(
        self,
        params: Any,
        constraints: Any = None,
        lr: float = 0.1,
        momentum: float = 0.9,
        momentum_style: str = "convex",
        rescale: str | None = "diameter",
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        defaults = dict(
            lr=lr,
            momentum=momentum,
            momentum_style=_check_choice("momentum_style", momentum_style, MOMENTUM_STYLES),
            rescale=_check_choice("rescale", rescale, RESCALE_MODES),
        )
        super().__init__(params, constraints, defaults)

    def _momentum(self, group: dict[str, Any], params: list[Tensor], grads: list[Tensor]) -> list[Tensor]:
        mu = group["momentum"]
        if mu == 0.0:
            return grads
        # Fast path: the buffers of a group whose tensors all had gradients last time are cached (the dict lookups
        # per parameter cost as much as a kernel launch).  load_state_dict / reset_momentum clear the cache.
        cached = self._buffers.get(id(group))
        if cached is not None and len(cached) == len(params) and params is group["params"]:
            if group["momentum_style"] == "convex":
                torch._foreach_lerp_(cached, grads, 1.0 - mu)
            else:
                torch._foreach_mul_(cached, mu)
                torch._foreach_add_(cached, grads)
            return cached
        states = [self.state[p] for p in params]
        bufs = [st.get("momentum_buffer") for st in states]
        if any(b is None for b in bufs):
            old_bufs, old_grads = [], []
            for i, (st, b, g) in enumerate(zip(states, bufs, grads)):
                if b is None:
                    bufs[i] = st["momentum_buffer"] = g.detach().clone()  # first call: m = g
                else:
                    old_bufs.append(b)
                    old_grads.append(g)
        else:
            old_bufs, old_grads = bufs, grads
        if old_bufs:
            if group["momentum_style"] == "convex":
                torch._foreach_lerp_(old_bufs, old_grads, 1.0 - mu)  # m + (1 - mu)(g - m) = mu m + (1 - mu) g
            else:
                torch._foreach_mul_(old_bufs, mu)
                torch._foreach_add_(old_bufs, old_grads)
        if params is group["params"]:
            self._buffers[id(group)] = bufs  # type: ignore[assignment]
        return bufs  # type: ignore[return-value]

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        """As :meth:`torch.optim.Optimizer.load_state_dict` (also drops cached momentum buffer lists)."""
        self._buffers.clear()
        super().load_state_dict(state_dict)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, batch_size: int | None = None) -> Any:
        """One SFW step on the current ``.grad``.  ``closure`` (optional) re-evaluates the loss and gradients
        first; ``batch_size`` (optional) adds that many per-sample gradients to :attr:`grad_evals`."""
        loss = self._evaluate(closure, batch_size)
        for group in self.param_groups:
            params = group["params"]
            grads = [p.grad for p in params]
            if "region" in group:
                if all(g is None for g in grads):
                    continue
                grads = [g if g is not None else torch.zeros_like(p) for p, g in zip(params, grads)]
                regions: Any = group["region"]
            elif any(g is None for g in grads):  # per-tensor regions: skip tensors without gradient
                keep = [i for i, g in enumerate(grads) if g is not None]
                if not keep:
                    continue
                params = [params[i] for i in keep]
                grads = [grads[i] for i in keep]
                regions = [group["regions"][i] for i in keep]
            else:
                regions = group["regions"]
            ms = self._momentum(group, params, grads)  # type: ignore[arg-type]
            _fw_update(params, ms, regions, group["lr"], group["rescale"])
        return loss

    def reset_momentum(self) -> None:
        """Forget the momentum buffers (e.g. after pruning, as the ``ZIB-IOL/compression-aware-SFW`` code allows)."""
        self._buffers.clear()
        for group in self.param_groups:
            for p in group["params"]:
                self.state[p].pop("momentum_buffer", None)


# ----------------------------------------------------------------------------------------------------------------------
# AdaSFW
# ----------------------------------------------------------------------------------------------------------------------


def _dot(xs: Sequence[Tensor], ys: Sequence[Tensor]) -> Tensor:
    return sum((torch.sum(x * y) for x, y in zip(xs, ys)), torch.zeros((), dtype=xs[0].dtype, device=xs[0].device))


class AdaSFW(_FrankWolfeBase):
    """Adaptive stochastic Frank-Wolfe (AdaGradSFW of Combettes, Spiegel, Pokutta 2020).

    Per region, with momentum ``m`` (as in :class:`SFW`):

    1. ``s <- s + m * m`` and ``H = sqrt(s) + delta`` (elementwise);
    2. from ``y = theta`` run ``inner_steps`` Frank-Wolfe steps on
       ``Q(y) = <m, y> + ||y - theta||_H^2 / (2 lr)``: ``d = m + H (y - theta) / lr``, ``v = LMO(d)``,
       ``gamma = clamp(lr <d, y - v> / <H (y - v), y - v>, 0, 1)`` (exact line search), ``y <- y + gamma (v - y)``;
    3. ``theta <- y``.

    Defaults: ``inner_steps = 2``, ``lr = 0.01``, ``delta = 1e-8``, ``momentum = 0.9``.
    """

    def __init__(
        self,
        params: Any,
        constraints: Any = None,
        lr: float = 0.01,
        inner_steps: int = 2,
        delta: float = 1e-8,
        momentum: float = 0.9,
        momentum_style: str = "convex",
    ):
        if lr <= 0:
            raise ValueError(f"invalid learning rate {lr}")
        if inner_steps < 1:
            raise ValueError("inner_steps must be >= 1")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"momentum must lie in [0, 1), got {momentum}")
        defaults = dict(
            lr=lr,
            inner_steps=int(inner_steps),
            delta=delta,
            momentum=momentum,
            momentum_style=_check_choice("momentum_style", momentum_style, MOMENTUM_STYLES),
        )
        super().__init__(params, constraints, defaults)

    _momentum = SFW._momentum

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, batch_size: int | None = None) -> Any:
        """One AdaSFW step on the current ``.grad`` (``closure`` and ``batch_size`` as in :meth:`SFW.step`)."""
        loss = self._evaluate(closure, batch_size)
        for group in self.param_groups:
            lr, delta = group["lr"], group["delta"]
            for tensors, region, joint in iter_units([group]):
                if all(p.grad is None for p in tensors):
                    continue
                grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in tensors]
                ms = self._momentum(group, tensors, grads)
                hs = []
                for p, m in zip(tensors, ms):
                    state = self.state[p]
                    if "sum_sq" not in state:
                        state["sum_sq"] = torch.zeros_like(p)
                    state["sum_sq"].addcmul_(m, m)
                    hs.append(state["sum_sq"].sqrt().add_(delta))
                ys = [p.detach().clone() for p in tensors]
                for _ in range(group["inner_steps"]):
                    ds = [m + h * (y - p) / lr for m, h, y, p in zip(ms, hs, ys, tensors)]
                    vs = region.lmo_joint(ds) if joint else [region.lmo(ds[0])]
                    yv = [y - v for y, v in zip(ys, vs)]
                    num = _dot(ds, yv)
                    den = _dot([h * w for h, w in zip(hs, yv)], yv)
                    gamma = (lr * num / den.clamp_min(_tiny(den.dtype))).clamp(0.0, 1.0)
                    for y, w in zip(ys, yv):
                        y.sub_(gamma * w)
                for p, y in zip(tensors, ys):
                    p.copy_(y)
        return loss


# ----------------------------------------------------------------------------------------------------------------------
# projected SGD
# ----------------------------------------------------------------------------------------------------------------------


class ProjectedSGD(_FrankWolfeBase):
    """SGD step (PyTorch semantics: weight decay, momentum with dampening, optional Nesterov), then the exact
    Euclidean projection of every tensor onto its region (L1 sort-based, L2 rescaling, L-inf
    clamping, the other regions as in :mod:`~companion.frankwolfe.constraints`)."""

    def __init__(
        self,
        params: Any,
        constraints: Any = None,
        lr: float = 0.1,
        momentum: float = 0.0,
        dampening: float = 0.0,
        weight_decay: float = 0.0,
        nesterov: bool = False,
    ):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError("lr, momentum and weight_decay must be non-negative")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay, nesterov=nesterov)
        super().__init__(params, constraints, defaults)

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None, batch_size: int | None = None) -> Any:
        """SGD step on the current ``.grad`` followed by the projection."""
        loss = self._evaluate(closure, batch_size)
        for group in self.param_groups:
            mu, damp, wd, lr = group["momentum"], group["dampening"], group["weight_decay"], group["lr"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                d_p = p.grad if wd == 0 else p.grad.add(p, alpha=wd)
                if mu != 0:
                    state = self.state[p]
                    buf = state.get("momentum_buffer")
                    if buf is None:
                        buf = state["momentum_buffer"] = d_p.detach().clone()
                    else:
                        buf.mul_(mu).add_(d_p, alpha=1.0 - damp)
                    d_p = d_p.add(buf, alpha=mu) if group["nesterov"] else buf
                p.add_(d_p, alpha=-lr)
            for tensors, region, joint in iter_units([group]):
                if joint:
                    for t, new in zip(tensors, region.project_joint(tensors)):
                        t.copy_(new)
                else:
                    tensors[0].copy_(region.project(tensors[0]))
        return loss


# ----------------------------------------------------------------------------------------------------------------------
# variance-reduced stochastic Frank-Wolfe
# ----------------------------------------------------------------------------------------------------------------------


class _VarianceReducedFW(_FrankWolfeBase):
    """Base of SVRF / SPIDER-FW / ORGFW: gradient estimates from closures at stored iterates, then a Frank-Wolfe
    step with the estimate in place of the momentum (no extra momentum)."""

    needs_closure = True  # companion.train.fit passes the minibatch closure to step()

    def __init__(
        self, params: Any, constraints: Any, lr: float, rescale: str | None, batch_size: int | None, **extra: Any
    ):
        if lr < 0:
            raise ValueError(f"invalid learning rate {lr}")
        defaults = dict(lr=lr, rescale=_check_choice("rescale", rescale, RESCALE_MODES), **extra)
        super().__init__(params, constraints, defaults)
        self.batch_size = batch_size
        self.steps = 0

    def _params(self) -> list[Tensor]:
        return [p for g in self.param_groups for p in g["params"]]

    def _batch(self, batch_size: int | None) -> int:
        b = batch_size if batch_size is not None else self.batch_size
        if b is None:
            raise ValueError("pass batch_size (to step or to the constructor) so gradient evaluations can be counted")
        return int(b)

    def _grads_now(self, fn: Callable[[], Any]) -> tuple[Any, list[Tensor]]:
        """Run ``fn`` (which back-propagates at the current parameters) and return its value and the gradients."""
        params = self._params()
        for p in params:
            p.grad = None
        with torch.enable_grad():
            value = fn()
        return value, [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p) for p in params]

    def _grads_at(self, fn: Callable[[], Any], values: Sequence[Tensor]) -> list[Tensor]:
        """Gradients of ``fn`` evaluated at the stored parameter ``values``; the parameters are restored after."""
        params = self._params()
        current = [p.detach().clone() for p in params]
        with torch.no_grad():
            torch._foreach_copy_(params, list(values))
        try:
            _, grads = self._grads_now(fn)
        finally:
            with torch.no_grad():
                torch._foreach_copy_(params, current)
        return grads

    @torch.no_grad()
    def _fw_step(self, estimates: Sequence[Tensor]) -> None:
        params = self._params()
        est = dict(zip(map(id, params), estimates))
        for group in self.param_groups:
            ps = group["params"]
            regions: Any = group["region"] if "region" in group else group["regions"]
            _fw_update(ps, [est[id(p)] for p in ps], regions, group["lr"], group["rescale"])
        self._last_estimate = list(estimates)  # kept for inspection (gradient_estimate)

    def gradient_estimate(self) -> list[Tensor]:
        """The gradient estimate used in the last step (one tensor per parameter, in group order)."""
        return [t.clone() for t in getattr(self, "_last_estimate", [])]

    def _snapshot_params(self) -> list[Tensor]:
        return [p.detach().clone() for p in self._params()]


class SVRF(_VarianceReducedFW):
    """Stochastic variance-reduced Frank-Wolfe (Hazan & Luo 2016).

    Every ``snapshot_every`` steps (e.g. once per epoch) the current iterate becomes the snapshot ``theta~`` and
    ``full_gradient()`` is called: it must back-propagate the *full* training loss at the current parameters into
    ``.grad`` (e.g. accumulate over the whole training set) and may return that loss; it counts ``full_batch_size``
    per-sample gradients.  In between, ``step(closure)`` uses

        ``g^ = g_B(theta) - g_B(theta~) + grad F(theta~)``

    where ``closure`` back-propagates the minibatch loss at the current parameters (it is called twice per step: at
    the snapshot and at ``theta``; it must evaluate the same minibatch both times, so avoid dropout).  At a snapshot
    step ``theta = theta~`` so ``g^ = grad F(theta~)`` exactly; the closure is then not called and ``step`` returns the
    value of ``full_gradient()``.  Counting: ``full_batch_size`` per snapshot, ``2 * batch_size`` per other step.
    """

    def __init__(
        self,
        params: Any,
        constraints: Any = None,
        *,
        full_gradient: Callable[[], Any],
        full_batch_size: int,
        snapshot_every: int | None,
        lr: float = 0.1,
        rescale: str | None = "diameter",
        batch_size: int | None = None,
    ):
        super().__init__(params, constraints, lr, rescale, batch_size)
        if snapshot_every is not None and snapshot_every < 1:
            raise ValueError("snapshot_every must be >= 1 or None")
        self.full_gradient = full_gradient
        self.full_batch_size = int(full_batch_size)
        self.snapshot_every = snapshot_every
        self._snapshot: list[Tensor] | None = None
        self._snapshot_grad: list[Tensor] | None = None

    def update_snapshot(self) -> Any:
        """Take the current parameters as snapshot and compute the full gradient there; returns its loss."""
        value, grads = self._grads_now(self.full_gradient)
        self._snapshot = self._snapshot_params()
        self._snapshot_grad = grads
        self.grad_evals += self.full_batch_size
        return value

    def step(self, closure: Callable[[], Any], batch_size: int | None = None) -> Any:  # type: ignore[override]
        """One SVRF step (see the class docstring); returns the loss at the current parameters."""
        if closure is None:
            raise ValueError("SVRF needs a closure that back-propagates the minibatch loss")
        due = self.snapshot_every is not None and self.steps % self.snapshot_every == 0
        if due or self._snapshot is None:
            loss = self.update_snapshot()
            estimates = [g.clone() for g in self._snapshot_grad]  # type: ignore[union-attr]
        else:
            b = self._batch(batch_size)
            g_snap = self._grads_at(closure, self._snapshot)
            loss, g_now = self._grads_now(closure)
            self.grad_evals += 2 * b
            estimates = torch._foreach_add(torch._foreach_sub(g_now, g_snap), self._snapshot_grad)
        self._fw_step(estimates)
        self.steps += 1
        return loss


class SpiderFW(_VarianceReducedFW):
    """SPIDER Frank-Wolfe (Yurtsever et al. 2019 / Xie et al. 2020).

    Every ``period`` steps (``q``; e.g. once per epoch) the estimate is reset to ``large_gradient()`` -- a callable
    that back-propagates a large-batch (or full) loss at the current parameters and may return it; it counts
    ``large_batch_size`` per-sample gradients, and ``step`` returns its value without calling the closure.  In
    between, with the same minibatch ``B_t`` at both points,

        ``g^_t = g^_{t-1} + g_B(theta_t) - g_B(theta_{t-1})``   (``2 * batch_size`` evaluations).
    """

    def __init__(
        self,
        params: Any,
        constraints: Any = None,
        *,
        large_gradient: Callable[[], Any],
        large_batch_size: int,
        period: int,
        lr: float = 0.1,
        rescale: str | None = "diameter",
        batch_size: int | None = None,
    ):
        super().__init__(params, constraints, lr, rescale, batch_size)
        if period < 1:
            raise ValueError("period must be >= 1")
        self.large_gradient = large_gradient
        self.large_batch_size = int(large_batch_size)
        self.period = int(period)
        self._estimate: list[Tensor] | None = None
        self._previous: list[Tensor] | None = None

    def step(self, closure: Callable[[], Any], batch_size: int | None = None) -> Any:  # type: ignore[override]
        """One SPIDER-FW step (see the class docstring); returns the loss at the current parameters."""
        if closure is None:
            raise ValueError("SpiderFW needs a closure that back-propagates the minibatch loss")
        if self.steps % self.period == 0 or self._estimate is None:
            loss, self._estimate = self._grads_now(self.large_gradient)
            self.grad_evals += self.large_batch_size
        else:
            b = self._batch(batch_size)
            g_prev = self._grads_at(closure, self._previous)  # type: ignore[arg-type]
            loss, g_now = self._grads_now(closure)
            self.grad_evals += 2 * b
            torch._foreach_add_(self._estimate, torch._foreach_sub(g_now, g_prev))
        self._previous = self._snapshot_params()
        self._fw_step(self._estimate)
        self.steps += 1
        return loss


def orgfw_rho(t: int) -> float:
    """Default ORGFW weight ``rho_t = t^(-2/3)`` (``t = 1, 2, ...``; ``rho_1 = 1``)."""
    return float(t) ** (-2.0 / 3.0)


class ORGFW(_VarianceReducedFW):
    """One-sample recursive-gradient Frank-Wolfe (Xie et al. 2020).

        ``g^_1 = g_B(theta_1)``,  ``g^_t = g_B(theta_t) + (1 - rho_t) (g^_{t-1} - g_B(theta_{t-1}))``

    with both minibatch gradients on the same batch ``B_t`` (``2 * batch_size`` evaluations, ``batch_size`` at
    ``t = 1``).  ``rho``: a constant in (0, 1] or a function of ``t`` (default :func:`orgfw_rho`, ``t^(-2/3)``).
    """

    def __init__(
        self,
        params: Any,
        constraints: Any = None,
        *,
        rho: float | Callable[[int], float] = orgfw_rho,
        lr: float = 0.1,
        rescale: str | None = "diameter",
        batch_size: int | None = None,
    ):
        super().__init__(params, constraints, lr, rescale, batch_size)
        if not callable(rho) and not 0.0 < float(rho) <= 1.0:
            raise ValueError("a constant rho must lie in (0, 1]")
        self.rho = rho
        self._estimate: list[Tensor] | None = None
        self._previous: list[Tensor] | None = None

    def _rho(self, t: int) -> float:
        return float(self.rho(t)) if callable(self.rho) else float(self.rho)

    def step(self, closure: Callable[[], Any], batch_size: int | None = None) -> Any:  # type: ignore[override]
        """One ORGFW step (see the class docstring); returns the loss at the current parameters."""
        if closure is None:
            raise ValueError("ORGFW needs a closure that back-propagates the minibatch loss")
        b = self._batch(batch_size)
        t = self.steps + 1
        if self._estimate is None:
            loss, self._estimate = self._grads_now(closure)
            self.grad_evals += b
        else:
            g_prev = self._grads_at(closure, self._previous)  # type: ignore[arg-type]
            loss, g_now = self._grads_now(closure)
            self.grad_evals += 2 * b
            keep = 1.0 - self._rho(t)
            diff = torch._foreach_sub(self._estimate, g_prev)
            torch._foreach_mul_(diff, keep)
            self._estimate = torch._foreach_add(g_now, diff)
        self._previous = self._snapshot_params()
        self._fw_step(self._estimate)
        self.steps += 1
        return loss
