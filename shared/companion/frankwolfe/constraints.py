"""Feasible regions for stochastic Frank-Wolfe training (Pokutta, Spiegel & Zimmer 2020; regions, LMOs and sizing
as in the official code, ``ZIB-IOL/StochasticFrankWolfe``, ``frankwolfe/pytorch/constraints.py``).

Every region is a compact convex set ``C`` in ``R^n``, *bound* to a tensor of ``n`` entries (or to the
concatenation of several tensors, for a global constraint).  All regions share one interface, in the spirit of
FrankWolfe.jl's ``compute_extreme_point``:

* :meth:`Region.lmo` -- the linear minimization oracle ``argmin_{v in C} <g, v>`` (same shape as ``g``);
* :attr:`Region.diameter` -- the L2 diameter ``D = max_{x, y in C} ||x - y||_2``;
* :meth:`Region.gauge` -- the Minkowski functional ``inf{t > 0 : x in t C}`` (``<= 1`` iff ``x`` is feasible for the
  regions that contain the origin);
* :meth:`Region.contains`, :meth:`Region.make_feasible` (gauge rescaling; *not* a projection) and
  :meth:`Region.project` (exact Euclidean projection).

The sizing helpers at the bottom follow the reference code: the per-layer diameter ``D_l = 2 w E||theta_l^init||_2``
where the expectation is estimated by re-running the layer's ``reset_parameters()`` 100 times, the ``radius`` and
``diameter`` modes, and the global variant ``D = 2 w sqrt(sum_l E||theta_l^init||^2)``.

Only constraints on the **parameters** are supported (as in the reference library; constraints on the outputs or the
objective are a different problem).
"""

from __future__ import annotations

import abc
import math
import numbers
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

__all__ = [
    "Region",
    "LpBall",
    "L1Ball",
    "L2Ball",
    "LInfBall",
    "KSparsePolytope",
    "KNormBall",
    "UnitSimplex",
    "ProbabilitySimplex",
    "Permutahedron",
    "REGIONS",
    "register_region",
    "batch_constants",
    "make_region",
    "resolve_k",
    "init_norms",
    "init_norm",
    "constraints_for",
    "iter_units",
    "make_feasible_",
    "max_gauge",
]


# ----------------------------------------------------------------------------------------------------------------------
# small helpers
# ----------------------------------------------------------------------------------------------------------------------


def _tiny(dtype: torch.dtype) -> float:
    """Smallest positive normal number of ``dtype``; used to guard divisions by ``||g|| ~ 0``."""
    return torch.finfo(dtype).tiny if dtype.is_floating_point else torch.finfo(torch.float32).tiny


def _norm_floor(dtype: torch.dtype, n: int) -> float:
    """Smallest L2 norm an oracle divides by (``||g|| ~ 0`` guard).  Squaring may flush tiny entries to zero, so a
    computed norm can underestimate the true one by up to ``sqrt(n * tiny)``; dividing by
    ``max(||g||, floor)`` with ``floor = sqrt(1e12 n tiny)`` keeps ``||tau g / max(||g||, floor)|| <= tau (1 + 1e-12)``
    and sends ``v`` to 0 as ``g`` goes to 0."""
    return math.sqrt(1e12 * max(n, 1) * _tiny(dtype))


def _work(x: Tensor) -> Tensor:
    """``x`` in a dtype in which norms are accurate (half precision is promoted to float32)."""
    return x.float() if x.dtype in (torch.float16, torch.bfloat16) else x


def resolve_k(k: int | float, n: int) -> int:
    """The integer K of a K-sparse / K-norm region over ``n`` entries.

    Convention: an ``int`` is an absolute count (``1 <= K <= n``); a ``float`` in ``(0, 1]`` is a fraction of ``n`` and
    gives ``K = max(1, floor(k * n))`` (as ``int(k * n)`` in the reference code, but robust to rounding such as
    ``0.29 * 100 = 28.999...``).  A float > 1 is rejected, so ``1`` (count) and ``1.0`` (all entries) are never
    confused -- an ambiguity of ``ZIB-IOL/compression-aware-SFW``, where ``k <= 1`` always means a fraction.
    """
    if isinstance(k, bool):
        raise TypeError("k must be an int (count) or a float in (0, 1] (fraction of n), not a bool")
    if isinstance(k, numbers.Integral):
        kk = int(k)
    elif isinstance(k, numbers.Real):
        kf = float(k)
        if not 0.0 < kf <= 1.0:
            raise ValueError(
                f"a float k is a fraction of n and must lie in (0, 1]; got {k!r} (pass an int for an absolute count)"
            )
        kk = max(1, math.floor(kf * n + 1e-9))
    else:
        raise TypeError(f"k must be an int or a float, got {type(k).__name__}")
    if not 1 <= kk <= n:
        raise ValueError(f"K = {kk} must lie in [1, n] with n = {n}")
    return kk


def _capped_threshold(a: Tensor, s: float, cap: float = math.inf) -> float:
    """The exact root ``lam`` of ``f(lam) = sum_i clamp(a_i - lam, 0, cap) = s``.

    ``f`` is non-increasing and piecewise linear with breakpoints ``a_i`` and ``a_i - cap``; we evaluate it at all
    breakpoints with prefix sums (O(n log n)) and interpolate on the bracketing linear piece.  This is the dual
    variable of the Euclidean projection onto ``{0 <= z <= cap, sum z = s}`` (the simplex for ``cap = inf``; Duchi et
    al. 2008) and serves the L1 ball, both simplices and the K-sparse polytope.
    """
    a = a.reshape(-1).to(torch.float64)
    n = a.numel()
    a_sorted, _ = torch.sort(a)
    prefix = torch.cat([a.new_zeros(1), torch.cumsum(a_sorted, 0)])
    finite = math.isfinite(cap)
    bps = torch.sort(torch.cat([a_sorted - cap, a_sorted]))[0] if finite else a_sorted

    lo = torch.searchsorted(a_sorted, bps, right=True)  # entries a_i <= t contribute 0
    if finite:
        hi = torch.maximum(torch.searchsorted(a_sorted, bps + cap, right=False), lo)  # a_i >= t + cap are capped
        fv = (prefix[hi] - prefix[lo]) - bps * (hi - lo) + cap * (n - hi).to(torch.float64)  # not float32!
    else:
        hi = torch.full_like(lo, n)
        fv = (prefix[hi] - prefix[lo]) - bps * (hi - lo)
    k = int((fv >= s).sum()) - 1  # f is non-increasing: index of the last breakpoint with f >= s
    fv = fv[max(k, 0) : k + 2].tolist() if k >= 0 else fv[:1].tolist()
    bl = bps[max(k, 0) : k + 2].tolist() if k >= 0 else bps[:1].tolist()
    if k < 0:
        if finite:
            raise ValueError(f"sum of clamp(a - lam, 0, {cap}) can never reach {s}")
        return bl[0] - (s - fv[0]) / n  # below the smallest breakpoint f has slope -n
    if len(bl) == 1:  # k is the last breakpoint: f = 0 beyond it
        return bl[0]
    (f0, f1), (t0, t1) = fv, bl
    if f0 <= f1:
        return t0
    return t0 + (f0 - s) * (t1 - t0) / (f0 - f1)


def _isotonic_decreasing(y: list[float]) -> list[float]:
    """Pool-adjacent-violators: ``argmin_{v_1 >= ... >= v_n} ||v - y||_2``."""
    sums: list[float] = []
    counts: list[int] = []
    for value in y:
        sums.append(value)
        counts.append(1)
        while len(sums) > 1 and sums[-2] / counts[-2] < sums[-1] / counts[-1]:
            s, c = sums.pop(), counts.pop()
            sums[-1] += s
            counts[-1] += c
    out: list[float] = []
    for s, c in zip(sums, counts):
        out.extend([s / c] * c)
    return out


def _newton_increasing(
    fun: Callable[[Tensor], tuple[Tensor, Tensor]], lo: Tensor, hi: Tensor, x: Tensor, iters: int = 200
) -> Tensor:
    """Elementwise root of an increasing function with ``fun(lo) <= 0 <= fun(hi)`` (``rtsafe``): a Newton step
    when it stays inside the current bracket and shrinks fast enough, a bisection step otherwise, so the bracket at
    least halves every two iterations.  Elements freeze once their Newton correction is at round-off level."""
    dx_old = (hi - lo).abs()
    atol = 1e-16 * float(torch.maximum(hi.abs(), lo.abs()).max())  # accuracy relative to the problem's scale
    done = torch.zeros_like(x, dtype=torch.bool)
    for _ in range(iters):
        f, df = fun(x)
        pos = f > 0
        hi = torch.where(pos, x, hi)
        lo = torch.where(pos, lo, x)
        step = x - f / df
        converged = (f == 0) | ((step - x).abs() <= 1e-15 * x.abs() + atol) | (hi - lo <= 1e-15 * hi.abs() + atol)
        done = done | converged
        ok = (step >= lo) & (step <= hi) & torch.isfinite(step) & ((2 * f).abs() <= (dx_old * df).abs())
        new = torch.where(
            done,
            torch.where(converged & torch.isfinite(step) & (step >= lo) & (step <= hi), step, x),
            torch.where(ok, step, 0.5 * (lo + hi)),
        )
        dx_old = (new - x).abs()
        x = new
        if bool(done.all()):
            break
    return x


# ----------------------------------------------------------------------------------------------------------------------
# the interface
# ----------------------------------------------------------------------------------------------------------------------


class Region(abc.ABC):
    """A compact convex feasible region ``C`` in ``R^n`` with radius ``tau`` (as in Pokutta, Spiegel & Zimmer 2020).

    Subclasses implement :meth:`lmo`, :attr:`diameter`, :meth:`radius_for_diameter`, :meth:`gauge` and
    :meth:`project`.  ``options`` names the extra constructor arguments (``p``, ``k``, ...) that
    :func:`constraints_for` forwards; ``contains_origin`` says whether ``0`` lies in ``C`` (then gauge rescaling is
    well defined).

    Adding a region (e.g. the k-support or nuclear-norm balls of Zimmer et al. 2022): subclass, implement ``_lmo``
    (on the flattened tensor), ``diameter``, ``radius_for_diameter``, ``gauge`` and ``project``, and register it
    with ``@register_region("name")`` so that :func:`constraints_for` finds it.  Optional speed/structure hooks:
    ``_lmo_batch`` (many same-type LMOs with ``torch._foreach_*`` kernels), ``_fused_update`` (a whole Frank-Wolfe
    step without materialising ``v``) and :meth:`lmo_joint` (one region spanning several tensors; structured regions
    override it to use the tensor shapes).  Regions are immutable values: the optimizers cache per-region constants,
    so build a new region rather than changing ``radius`` in place.
    """

    name: ClassVar[str] = "region"
    options: ClassVar[tuple[str, ...]] = ()
    contains_origin: ClassVar[bool] = True

    def __init__(self, n: int, radius: float = 1.0):
        if int(n) != n or n < 1:
            raise ValueError(f"n must be a positive integer, got {n!r}")
        if not (radius > 0 and math.isfinite(radius)):
            raise ValueError(f"radius must be positive and finite, got {radius!r}")
        self.n = int(n)
        self.radius = float(radius)

    # --- sizing -------------------------------------------------------------------------------------------------------
    @property
    @abc.abstractmethod
    def diameter(self) -> float:
        """L2 diameter ``D`` of the region."""

    @classmethod
    @abc.abstractmethod
    def radius_for_diameter(cls, diameter: float, n: int, **options: Any) -> float:
        """The radius ``tau`` whose region over ``n`` entries has L2 diameter ``diameter``."""

    @classmethod
    def from_diameter(cls, n: int, diameter: float, **options: Any) -> "Region":
        """The region over ``n`` entries with the given L2 diameter."""
        return cls(n, radius=cls.radius_for_diameter(diameter, n, **options), **options)

    # --- oracle -------------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def _lmo(self, g: Tensor) -> Tensor:
        """LMO on a flat vector ``g`` of ``n`` entries."""

    def lmo(self, g: Tensor) -> Tensor:
        """``v = argmin_{v in C} <g, v>`` (same shape, dtype and device as ``g``).

        ``||g|| ~ 0`` never produces NaNs: every oracle then returns a feasible point (0 for the regions that contain
        the origin).  The result is always a new tensor (never a view of ``g``): the optimizers overwrite it in
        place, and subclasses must keep that contract."""
        if g.numel() != self.n:
            raise ValueError(f"{self!r} is bound to {self.n} entries, got a tensor with {g.numel()}")
        return self._lmo(g.reshape(-1)).reshape(g.shape)

    @classmethod
    def lmo_batch(
        cls, regions: Sequence["Region"], grads: Sequence[Tensor], norms: Tensor | None = None
    ) -> list[Tensor]:
        """LMOs of several regions of this class, one tensor each (batched with ``_foreach`` kernels where a
        subclass implements ``_lmo_batch``).  ``norms`` may carry the stacked L2 norms of ``grads`` when already
        known."""
        regions, grads = list(regions), list(grads)
        if len(regions) != len(grads):
            raise ValueError(f"{len(regions)} regions but {len(grads)} tensors")
        for r, g in zip(regions, grads):
            if g.numel() != r.n:
                raise ValueError(f"{r!r} is bound to {r.n} entries, got a tensor with {g.numel()}")
        return cls._lmo_batch(regions, grads, norms)

    @classmethod
    def _lmo_batch(cls, regions: list["Region"], grads: list[Tensor], norms: Tensor | None) -> list[Tensor]:
        """Unchecked body of :meth:`lmo_batch` (the optimizers validate sizes once, at construction)."""
        return [r._lmo(g.reshape(-1)).reshape(g.shape) for r, g in zip(regions, grads)]

    @classmethod
    def _fused_update(
        cls, regions: list["Region"], params: list[Tensor], ms: list[Tensor], lr: float, rescale: str
    ) -> bool:
        """Optional fused Frank-Wolfe update ``theta <- (1 - alpha) theta + alpha LMO(m)`` for per-tensor regions of
        this class that never materialises ``v``; returns ``False`` (the default) to use the generic path."""
        return False

    def lmo_joint(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """LMO of one region over the concatenation of ``tensors`` (a global constraint), split back into shapes."""
        v = self.lmo(_flat_cat(tensors))
        return _split_like(v, tensors)

    # --- membership ---------------------------------------------------------------------------------------------------
    @abc.abstractmethod
    def gauge(self, x: Tensor) -> float:
        """Minkowski functional ``inf{t > 0 : x in t C}`` (``inf`` if no such ``t``)."""

    def contains(self, x: Tensor, tol: float = 1e-6) -> bool:
        """Whether ``x`` lies in ``C`` up to the relative tolerance ``tol`` (``gauge(x) <= 1 + tol``)."""
        return self.gauge(x) <= 1.0 + tol

    def make_feasible(self, x: Tensor) -> Tensor:
        """Gauge rescaling: ``x`` if feasible, else ``x / gauge(x)`` (= ``tau x / ||x||`` for a norm
        ball). This is a radial map, **not** a Euclidean projection, and it keeps zero entries at zero."""
        gam = self.gauge(x)
        if gam > 1.0 and math.isfinite(gam):
            return x / gam
        if not math.isfinite(gam):
            return self.project(x)
        return x.clone()

    @abc.abstractmethod
    def project(self, x: Tensor) -> Tensor:
        """Exact Euclidean projection ``argmin_{y in C} ||y - x||_2``."""

    # --- joint (global) variants --------------------------------------------------------------------------------------
    def gauge_joint(self, tensors: Sequence[Tensor]) -> float:
        """:meth:`gauge` of the concatenation of ``tensors``."""
        return self.gauge(_flat_cat(tensors))

    def make_feasible_joint(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """:meth:`make_feasible` of the concatenation, split back."""
        return _split_like(self.make_feasible(_flat_cat(tensors)), tensors)

    def project_joint(self, tensors: Sequence[Tensor]) -> list[Tensor]:
        """:meth:`project` of the concatenation, split back."""
        return _split_like(self.project(_flat_cat(tensors)), tensors)

    def _check(self, x: Tensor) -> Tensor:
        if x.numel() != self.n:
            raise ValueError(f"{self!r} is bound to {self.n} entries, got a tensor with {x.numel()}")
        return _work(x.reshape(-1))

    def _extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        extra = self._extra_repr()
        return f"{type(self).__name__}(n={self.n}, radius={self.radius:.6g}{', ' + extra if extra else ''})"


_CONSTANTS: dict[tuple, Tensor] = {}


def batch_constants(
    regions: Sequence[Region], name: str, fn: Callable[[Region], float], dtype: torch.dtype, device: torch.device
) -> Tensor:
    """``torch.tensor([fn(r) for r in regions])``, cached per (name, regions, dtype, device) so that the optimizer
    step does not rebuild small constant tensors every iteration.  Regions are treated as immutable values (hashed
    by identity): build a new region instead of changing ``radius`` in place."""
    key = (name, tuple(regions), dtype, device)
    value = _CONSTANTS.get(key)
    if value is None:
        value = torch.tensor([fn(r) for r in regions], dtype=dtype, device=device)
        if len(_CONSTANTS) > 512:
            _CONSTANTS.clear()
        _CONSTANTS[key] = value
    return value


_DIAMETER_FACTORS: dict[tuple, tuple[list[Tensor], Tensor, Tensor]] = {}


def _l2_diameter_factors(
    regions: Sequence[Region], lr: float, dtype: torch.dtype, device: torch.device
) -> tuple[list[Tensor], Tensor, Tensor]:
    """For L2 balls under ``diameter`` rescaling: ``1 - alpha`` per tensor (as 0-dim tensors: that ``_foreach_mul_``
    overload is faster than a list of floats), ``-alpha tau = -min(tau, lr/2)`` and the norm floors; memoised for
    the last few learning rates (schedulers change the rate every step)."""
    key = (tuple(regions), lr, dtype, device)
    value = _DIAMETER_FACTORS.get(key)
    if value is None:
        keep = torch.tensor(
            [0.0 if lr >= r.diameter else 1.0 - lr / r.diameter for r in regions], dtype=dtype, device=device
        )
        num = torch.tensor([-min(r.radius, lr / 2.0) for r in regions], dtype=dtype, device=device)
        floors = torch.tensor([_norm_floor(dtype, r.n) for r in regions], dtype=dtype, device=device)
        value = (list(keep.unbind()), num, floors)
        if len(_DIAMETER_FACTORS) > 8:
            _DIAMETER_FACTORS.clear()
        _DIAMETER_FACTORS[key] = value
    return value


def _flat_cat(tensors: Sequence[Tensor]) -> Tensor:
    return torch.cat([t.reshape(-1) for t in tensors])


def _split_like(flat: Tensor, tensors: Sequence[Tensor]) -> list[Tensor]:
    parts = torch.split(flat, [t.numel() for t in tensors])
    return [part.reshape(t.shape) for part, t in zip(parts, tensors)]


REGIONS: dict[str, type[Region]] = {}


def register_region(*names: str) -> Callable[[type[Region]], type[Region]]:
    """Class decorator adding a region to :data:`REGIONS` under ``names`` (used by :func:`make_region`)."""

    def deco(cls: type[Region]) -> type[Region]:
        for name in names:
            REGIONS[name] = cls
        cls.name = names[0]
        return cls

    return deco


# ----------------------------------------------------------------------------------------------------------------------
# norm balls
# ----------------------------------------------------------------------------------------------------------------------


@register_region("lp")
class LpBall(Region):
    """``{x : ||x||_p <= tau}`` for ``1 < p < inf``.

    LMO: ``v_i = -tau sgn(g_i) |g_i|^(q-1) / ||g||_q^(q-1)`` with ``q = p/(p-1)``, so that
    ``<g, v> = -tau ||g||_q``.  Diameter: the exact ``2 tau max(1, n^(1/2 - 1/p))``; for ``p >= 2`` this is the
    usual ``2 tau n^(1/2-1/p)``.  For ``1 < p < 2`` the reference code sizes the radius with the ``p >= 2`` formula,
    which is not the diameter; we use the exact one (pass ``mode="radius"`` to reproduce the code).
    """

    options = ("p",)

    def __init__(self, n: int, p: float, radius: float = 1.0):
        super().__init__(n, radius)
        p = float(p)
        if not 1.0 < p < math.inf:
            raise ValueError(f"LpBall needs 1 < p < inf, got p = {p} (use L1Ball / LInfBall)")
        self.p = p
        self.q = p / (p - 1.0)

    @staticmethod
    def _diam_factor(n: int, p: float) -> float:
        return 2.0 * max(1.0, n ** (0.5 - 1.0 / p))

    @property
    def diameter(self) -> float:
        return self.radius * self._diam_factor(self.n, self.p)

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int, p: float) -> float:  # type: ignore[override]
        return diameter / cls._diam_factor(n, float(p))

    def _lmo(self, g: Tensor) -> Tensor:
        # Normalise by max|g| first so that |g|^(q-1) can neither overflow nor underflow.
        a = g.abs()
        scale = a.max().clamp_min(_tiny(g.dtype))
        w = (a / scale).pow(self.q - 1.0)
        denom = torch.linalg.vector_norm(a / scale, ord=self.q).pow(self.q - 1.0).clamp_min(_tiny(g.dtype))
        return -self.radius * torch.sign(g) * w / denom

    def gauge(self, x: Tensor) -> float:
        return float(torch.linalg.vector_norm(self._check(x), ord=self.p)) / self.radius

    def project(self, x: Tensor) -> Tensor:
        """Exact projection via the KKT system ``z_i + lam p z_i^(p-1) = |x_i|`` (``z = |y|``, ``lam >= 0`` with
        ``||z||_p = tau``), solved in float64 by safeguarded Newton iterations: per coordinate for ``z`` and on
        ``lam`` outside, with ``dz/dlam = -p z^(p-1) / (1 + lam p (p-1) z^(p-2))``."""
        flat = self._check(x).to(torch.float64) / self.radius
        a = flat.abs()
        p = self.p
        if float(torch.linalg.vector_norm(a, ord=p)) <= 1.0:
            return x.clone()

        def z_of(lam: Tensor) -> Tensor:
            if p >= 2.0:  # h convex in z: Newton from the right converges monotonically

                def h(z: Tensor) -> tuple[Tensor, Tensor]:
                    return z + lam * p * z.pow(p - 1.0) - a, 1.0 + lam * p * (p - 1.0) * z.pow(p - 2.0)

                return _newton_increasing(h, torch.zeros_like(a), a.clone(), a.clone())
            r = 1.0 / (p - 1.0)  # for p < 2 solve for w = z^(p-1), in which the equation is convex

            def hw(w: Tensor) -> tuple[Tensor, Tensor]:
                return w.pow(r) + lam * p * w - a, r * w.pow(r - 1.0) + lam * p

            top = a.pow(p - 1.0)
            return _newton_increasing(hw, torch.zeros_like(a), top, top.clone()).pow(r)

        def g(lam: Tensor) -> tuple[Tensor, Tensor]:  # 1 - ||z(lam)||_p^p, increasing in lam
            z = z_of(lam)
            dz = p * p * z.pow(2.0 * p - 2.0) / (1.0 + lam * p * (p - 1.0) * z.pow(p - 2.0))
            return (1.0 - z.pow(p).sum()).reshape(1), dz.sum().reshape(1)

        c = a.numel() ** (-1.0 / p)  # at lam_hi even the largest entry has z <= n^(-1/p), so ||z||_p <= 1
        lam_hi = max(0.0, float(a.max()) - c) / (p * c ** (p - 1.0))
        lo, hi = a.new_zeros(1), a.new_full((1,), lam_hi)
        lam = _newton_increasing(g, lo, hi, hi.clone())
        z = z_of(lam)
        z = z / max(1.0, float(torch.linalg.vector_norm(z, ord=p)))  # guard the last ulp
        return (torch.sign(flat) * z * self.radius).to(x.dtype).reshape(x.shape)

    def _extra_repr(self) -> str:
        return f"p={self.p:g}"


@register_region("l2")
class L2Ball(Region):
    """``{x : ||x||_2 <= tau}``. LMO ``-tau g/||g||_2`` (0 if ``g = 0``); diameter ``2 tau``; projection
    ``x min(1, tau/||x||)``.  With this region SFW is the Frank-Wolfe analogue of SGD with weight decay."""

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int) -> float:  # type: ignore[override]
        return diameter / 2.0

    def _lmo(self, g: Tensor) -> Tensor:
        norm = torch.linalg.vector_norm(g).clamp_min(_norm_floor(g.dtype, g.numel()))
        return g * (-self.radius / norm)

    @classmethod
    def _lmo_batch(cls, regions: list[Region], grads: list[Tensor], norms: Tensor | None) -> list[Tensor]:
        """All L2 LMOs with two ``_foreach`` kernels (one if ``norms`` is given) and no host synchronisation."""
        if norms is None:
            norms = torch.stack(torch._foreach_norm(grads))  # mixed dtypes are promoted
        dt, dev = norms.dtype, norms.device
        radii = batch_constants(regions, "-radius", lambda r: -r.radius, dt, dev)
        floors = batch_constants(regions, "norm_floor", lambda r: _norm_floor(dt, r.n), dt, dev)
        # Dividing by max(||g||, floor) keeps v feasible even when squaring underflowed (see _norm_floor) and gives
        # v -> 0 as g -> 0.
        return list(torch._foreach_mul(grads, list((radii / torch.maximum(norms, floors)).unbind())))

    @classmethod
    def _fused_update(
        cls, regions: list[Region], params: list[Tensor], ms: list[Tensor], lr: float, rescale: str
    ) -> bool:
        """``theta <- (1 - alpha) theta - (alpha tau / ||m||) m`` in two in-place ``_foreach`` kernels, for the
        rescalings whose ``alpha`` does not depend on ``theta`` (``none``, ``diameter``, ``fast_gradient``).
        With ``D = 2 tau``: ``alpha tau = min(tau, lr/2)`` (diameter) and ``min(tau, lr ||m||)`` (fast_gradient)."""
        if rescale == "gradient":
            return False
        # Mixed dtypes are fine: stacking promotes, and 0-dim scalars never promote the tensors they multiply.
        dt, dev = ms[0].dtype, ms[0].device
        if rescale == "diameter":  # the common case, with the fewest small-tensor operations
            keep, num, floors = _l2_diameter_factors(regions, max(lr, 0.0), dt, dev)
            coef = num / torch.maximum(torch.stack(torch._foreach_norm(ms)), floors)
            torch._foreach_mul_(params, keep)
            torch._foreach_addcmul_(params, ms, list(coef.unbind()))
            return True
        norms = torch.maximum(
            torch.stack(torch._foreach_norm(ms)),
            batch_constants(regions, "norm_floor", lambda r: _norm_floor(dt, r.n), dt, dev),
        )
        if rescale == "none":
            alpha = min(1.0, max(lr, 0.0))
            coef = batch_constants(regions, "-radius", lambda r: -r.radius, dt, dev) * alpha / norms
            keep: Any = 1.0 - alpha
        else:  # fast_gradient: alpha = clamp(lr ||m|| / tau, 0, 1)
            radii = batch_constants(regions, "radius", lambda r: r.radius, dt, dev)
            step = torch.minimum(norms * max(lr, 0.0), radii)  # alpha * tau
            keep = list((1.0 - step / radii).unbind())
            coef = -step / norms
        torch._foreach_mul_(params, keep)
        torch._foreach_addcmul_(params, ms, list(coef.unbind()))
        return True

    def gauge(self, x: Tensor) -> float:
        return float(torch.linalg.vector_norm(self._check(x))) / self.radius

    def project(self, x: Tensor) -> Tensor:
        norm = float(torch.linalg.vector_norm(self._check(x)))
        return x * (self.radius / norm) if norm > self.radius else x.clone()


@register_region("l1")
class L1Ball(Region):
    """``{x : ||x||_1 <= tau}``. LMO ``-tau sgn(g_i*) e_i*`` with ``i* = argmax |g_i|`` (first index on ties; 0 if
    ``g = 0``); diameter ``2 tau``; projection by the sort-based simplex algorithm (Duchi et al. 2008)."""

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int) -> float:  # type: ignore[override]
        return diameter / 2.0

    def _lmo(self, g: Tensor) -> Tensor:
        i = torch.argmax(g.abs()).reshape(1)
        v = torch.zeros_like(g)
        return v.scatter_(0, i, -self.radius * torch.sign(g.gather(0, i)))

    def gauge(self, x: Tensor) -> float:
        return float(self._check(x).abs().sum()) / self.radius

    def project(self, x: Tensor) -> Tensor:
        flat = self._check(x)
        a = flat.abs()
        if float(a.sum()) <= self.radius:
            return x.clone()
        lam = _capped_threshold(a, self.radius)
        return (torch.sign(flat) * (a - lam).clamp_min(0)).to(x.dtype).reshape(x.shape)


@register_region("linf")
class LInfBall(Region):
    """Hypercube ``{x : |x_i| <= tau}``. LMO ``-tau sgn(g)``; diameter ``2 tau sqrt(n)``; projection = clamping.

    Zero-gradient convention: with ``zero_gradient="positive"`` (default, as the paper-1 PyTorch
    code) coordinates with ``g_i = 0`` get ``+tau``, so the LMO always returns a vertex; with ``"zero"`` (the
    compression-aware convention of Zimmer et al. 2022) they get ``0``, which keeps pruned zeros at zero.  Both are
    minimisers, since such coordinates do not change ``<g, v>``.
    """

    options = ("zero_gradient",)

    def __init__(self, n: int, radius: float = 1.0, zero_gradient: str = "positive"):
        super().__init__(n, radius)
        if zero_gradient not in ("positive", "zero"):
            raise ValueError(f"zero_gradient must be 'positive' or 'zero', got {zero_gradient!r}")
        self.zero_gradient = zero_gradient

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius * math.sqrt(self.n)

    @classmethod
    def radius_for_diameter(
        cls,
        diameter: float,
        n: int,  # type: ignore[override]
        zero_gradient: str = "positive",
    ) -> float:
        return diameter / (2.0 * math.sqrt(n))

    def _lmo(self, g: Tensor) -> Tensor:
        if self.zero_gradient == "zero":
            return torch.sign(g).mul_(-self.radius)
        # sign(sign(g) - 1/2) is +1 where g > 0 and -1 elsewhere (g = 0 included); cheaper than torch.where.
        return torch.sign(g).sub_(0.5).sign_().mul_(-self.radius)

    @classmethod
    def _lmo_batch(cls, regions: list[Region], grads: list[Tensor], norms: Tensor | None) -> list[Tensor]:
        """All hypercube LMOs with ``_foreach`` kernels."""
        if len({r.zero_gradient for r in regions}) != 1:  # type: ignore[attr-defined]
            return super()._lmo_batch(regions, grads, norms)
        vs = torch._foreach_sign(grads)
        if regions[0].zero_gradient == "positive":  # type: ignore[attr-defined]
            torch._foreach_sub_(vs, 0.5)
            torch._foreach_sign_(vs)
        torch._foreach_mul_(vs, [-r.radius for r in regions])
        return list(vs)

    def gauge(self, x: Tensor) -> float:
        return float(self._check(x).abs().max()) / self.radius

    def project(self, x: Tensor) -> Tensor:
        return x.clamp(-self.radius, self.radius)

    def _extra_repr(self) -> str:
        return f"zero_gradient={self.zero_gradient!r}"


# ----------------------------------------------------------------------------------------------------------------------
# K-sparse polytope and K-norm ball
# ----------------------------------------------------------------------------------------------------------------------


@register_region("ksparse")
class KSparsePolytope(Region):
    """``P_K(tau) = conv{v in {0, +-tau}^n : ||v||_0 = K} = B_1(K tau) cap B_inf(tau)``.

    LMO: ``-tau sgn(g_i)`` on the K entries of largest ``|g_i|`` (entries with ``g_i = 0`` stay 0), 0 elsewhere;
    diameter ``2 tau sqrt(K)``; gauge ``max(||x||_inf, ||x||_1 / K) / tau``.  ``K = 1`` is the L1 ball, ``K = n`` the
    hypercube.  ``k``: int count or float fraction of ``n`` (:func:`resolve_k`).
    """

    options = ("k",)

    def __init__(self, n: int, k: int | float, radius: float = 1.0):
        super().__init__(n, radius)
        self.k = resolve_k(k, self.n)

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius * math.sqrt(self.k)

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int, k: int | float) -> float:  # type: ignore[override]
        return diameter / (2.0 * math.sqrt(resolve_k(k, n)))

    def _lmo(self, g: Tensor) -> Tensor:
        if self.k == self.n:
            return torch.sign(g) * (-self.radius)
        idx = torch.topk(g.abs(), self.k, sorted=False).indices
        v = torch.zeros_like(g)
        return v.scatter_(0, idx, -self.radius * torch.sign(g.gather(0, idx)))

    def gauge(self, x: Tensor) -> float:
        a = self._check(x).abs()
        return max(float(a.max()), float(a.sum()) / self.k) / self.radius

    @staticmethod
    def _project_abs(a: Tensor, radius: float, k: int) -> Tensor:
        """Projection of a non-negative vector onto ``{0 <= z <= radius, sum z <= k radius}``."""
        z = a.clamp(max=radius)
        if float(z.sum()) <= k * radius:
            return z
        lam = _capped_threshold(a, k * radius, cap=radius)
        return (a - lam).clamp(0.0, radius)

    def project(self, x: Tensor) -> Tensor:
        """Exact projection: by sign symmetry ``P(x) = sgn(x) clamp(|x| - lam, 0, tau)`` with the dual variable
        ``lam >= 0`` of ``sum |.| <= K tau`` found exactly on its piecewise-linear equation."""
        flat = self._check(x)
        z = self._project_abs(flat.abs(), self.radius, self.k)
        return (torch.sign(flat) * z).to(x.dtype).reshape(x.shape)

    def _extra_repr(self) -> str:
        return f"k={self.k}"


@register_region("knorm")
class KNormBall(Region):
    """K-norm ball ``conv(B_1(tau) cup B_inf(tau/K)) = {x : sum of the K largest |x_i| <= tau}``, the dual of the
    K-sparse polytope (a convex hull of a union, not an intersection: FrankWolfe.jl issue #28 / PR #31).

    LMO: the better of the L1 vertex ``-tau sgn(g_i*) e_i*`` (value ``-tau ||g||_inf``) and the cube vertex
    ``-(tau/K) sgn(g)`` (value ``-tau ||g||_1 / K``); on a tie the sparser L1 vertex.  Diameter
    ``2 max(tau, tau sqrt(n)/K)``.  ``K = 1`` gives ``B_inf(tau)``, ``K = n`` the L1 ball ``B_1(tau)``.
    """

    options = ("k",)

    def __init__(self, n: int, k: int | float, radius: float = 1.0):
        super().__init__(n, radius)
        self.k = resolve_k(k, self.n)

    @property
    def diameter(self) -> float:
        return 2.0 * max(self.radius, self.radius * math.sqrt(self.n) / self.k)

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int, k: int | float) -> float:  # type: ignore[override]
        return diameter / (2.0 * max(1.0, math.sqrt(n) / resolve_k(k, n)))

    def _lmo(self, g: Tensor) -> Tensor:
        a = g.abs()
        i = torch.argmax(a).reshape(1)
        l1_vertex = torch.zeros_like(g).scatter_(0, i, -self.radius * torch.sign(g.gather(0, i)))
        cube_vertex = torch.sign(g) * (-self.radius / self.k)
        # Compare the two values without a host sync: the cube wins iff ||g||_1 / K > ||g||_inf.
        cube_better = a.sum() / self.k > a.max()
        return torch.where(cube_better, cube_vertex, l1_vertex)

    def gauge(self, x: Tensor) -> float:
        a = self._check(x).abs()
        return float(torch.topk(a, self.k, sorted=False).values.sum()) / self.radius

    def project(self, x: Tensor) -> Tensor:
        """Exact projection via Moreau's decomposition: the top-K norm ``h`` is the support function of
        ``P = P_K(1)``, so ``prox_{lam h}(x) = x - Proj_{lam P}(x)``; bisection on ``lam >= 0`` until
        ``h(prox) = tau`` (each inner projection is exact, see :class:`KSparsePolytope`)."""
        flat = self._check(x).to(torch.float64)
        a = flat.abs()

        def topk_sum(z: Tensor) -> float:
            return float(torch.topk(z, self.k, sorted=False).values.sum())

        if topk_sum(a) <= self.radius:
            return x.clone()

        def residual(lam: float) -> Tensor:
            return a - KSparsePolytope._project_abs(a, lam, self.k)

        lo, hi = 0.0, max(float(a.max()), float(a.sum()) / self.k)
        for _ in range(200):
            mid = 0.5 * (lo + hi)
            if topk_sum(residual(mid)) > self.radius:
                lo = mid
            else:
                hi = mid
            if hi - lo <= 1e-15 * hi:
                break
        z = residual(hi)
        z = z * min(1.0, self.radius / max(topk_sum(z), 1e-300))  # guard the last ulp
        return (torch.sign(flat) * z).to(x.dtype).reshape(x.shape)

    def _extra_repr(self) -> str:
        return f"k={self.k}"


# ----------------------------------------------------------------------------------------------------------------------
# simplices and permutahedron
# ----------------------------------------------------------------------------------------------------------------------


@register_region("unit_simplex")
class UnitSimplex(Region):
    """``{x : x >= 0, sum x <= tau}``. LMO ``tau e_argmin(g)`` if ``min g < 0``, else 0; diameter ``sqrt(2) tau``
    (``tau`` for ``n = 1``).  :meth:`make_feasible` rescales a non-negative ``x`` by its gauge ``sum x / tau`` and
    projects an ``x`` with negative entries (gauge ``inf``)."""

    @property
    def diameter(self) -> float:
        return self.radius * (math.sqrt(2.0) if self.n > 1 else 1.0)

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int) -> float:  # type: ignore[override]
        return diameter / (math.sqrt(2.0) if n > 1 else 1.0)

    def _lmo(self, g: Tensor) -> Tensor:
        i = torch.argmin(g).reshape(1)
        val = (g.gather(0, i) < 0).to(g.dtype) * self.radius
        return torch.zeros_like(g).scatter_(0, i, val)

    def gauge(self, x: Tensor) -> float:
        flat = self._check(x)
        if float(flat.min()) < 0:
            return math.inf
        return float(flat.sum()) / self.radius

    def contains(self, x: Tensor, tol: float = 1e-6) -> bool:
        flat = self._check(x)
        return float(flat.min()) >= -tol * self.radius and float(flat.clamp_min(0).sum()) <= self.radius * (1 + tol)

    def project(self, x: Tensor) -> Tensor:
        flat = self._check(x)
        z = flat.clamp_min(0)
        if float(z.sum()) <= self.radius:
            return z.to(x.dtype).reshape(x.shape)
        lam = _capped_threshold(flat, self.radius)
        return (flat - lam).clamp_min(0).to(x.dtype).reshape(x.shape)


@register_region("probability_simplex", "simplex")
class ProbabilitySimplex(Region):
    """``{x : x >= 0, sum x = tau}``. LMO ``tau e_argmin(g)``; diameter ``sqrt(2) tau`` (0 for ``n = 1``).  The
    region does not contain the origin: :meth:`make_feasible` normalises a non-negative non-zero ``x`` to
    ``tau x / sum x`` and projects otherwise; :meth:`gauge` is ``sum x / tau`` on the non-negative orthant (membership
    needs gauge exactly 1)."""

    contains_origin = False

    @property
    def diameter(self) -> float:
        return self.radius * math.sqrt(2.0) if self.n > 1 else 0.0

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int) -> float:  # type: ignore[override]
        if n == 1:
            raise ValueError("the probability simplex over 1 entry is a point; its diameter is 0")
        return diameter / math.sqrt(2.0)

    def _lmo(self, g: Tensor) -> Tensor:
        i = torch.argmin(g).reshape(1)
        return torch.zeros_like(g).scatter_(0, i, torch.full((1,), self.radius, dtype=g.dtype, device=g.device))

    def gauge(self, x: Tensor) -> float:
        flat = self._check(x)
        s = float(flat.sum())
        if float(flat.min()) < 0 or s <= 0:
            return math.inf
        return s / self.radius

    def contains(self, x: Tensor, tol: float = 1e-6) -> bool:
        flat = self._check(x)
        return float(flat.min()) >= -tol * self.radius and abs(float(flat.sum()) - self.radius) <= tol * self.radius

    def make_feasible(self, x: Tensor) -> Tensor:
        flat = self._check(x)
        s = float(flat.sum())
        if float(flat.min()) >= 0 and s > 0:
            return x * (self.radius / s)
        return self.project(x)

    def project(self, x: Tensor) -> Tensor:
        flat = self._check(x)
        lam = _capped_threshold(flat, self.radius)
        return (flat - lam).clamp_min(0).to(x.dtype).reshape(x.shape)


@register_region("permutahedron")
class Permutahedron(Region):
    """``conv{permutations of tau (1, 2, ..., n)}`` (``tau = 1``: the classical permutahedron of ``(1, ..., n)``).

    LMO: value ``n tau`` to the smallest ``g_i``, ``(n-1) tau`` to the next, ..., ``tau`` to the largest (stable on
    ties).  Diameter ``tau sqrt(n (n^2 - 1) / 3)`` (identity vs reversed order, by the rearrangement inequality).
    Membership = majorisation.  The region does not contain the origin, so :meth:`make_feasible` is the Euclidean
    projection (isotonic regression, Blondel et al. 2020, Prop. 3)."""

    contains_origin = False

    @staticmethod
    def _diam_factor(n: int) -> float:
        return math.sqrt(n * (n * n - 1) / 3.0)

    @property
    def diameter(self) -> float:
        return self.radius * self._diam_factor(self.n)

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int) -> float:  # type: ignore[override]
        if n == 1:
            raise ValueError("the permutahedron over 1 entry is a point; its diameter is 0")
        return diameter / cls._diam_factor(n)

    def _values_desc(self, like: Tensor) -> Tensor:
        return torch.arange(self.n, 0, -1, dtype=like.dtype, device=like.device) * self.radius

    def _lmo(self, g: Tensor) -> Tensor:
        order = torch.argsort(g, stable=True)  # ascending: smallest g gets the largest value
        return torch.empty_like(g).scatter_(0, order, self._values_desc(g))

    def contains(self, x: Tensor, tol: float = 1e-6) -> bool:
        flat = self._check(x).to(torch.float64)
        w = self._values_desc(flat)
        scale = float(w.sum())
        cx = torch.cumsum(torch.sort(flat, descending=True)[0], 0)
        cw = torch.cumsum(w, 0)
        return bool((cx <= cw + tol * scale).all()) and abs(float(cx[-1] - cw[-1])) <= tol * scale

    def gauge(self, x: Tensor) -> float:
        flat = self._check(x).to(torch.float64)
        t = float(flat.sum()) / float(self._values_desc(flat).sum())
        if t <= 0 or not self.contains(flat / t, tol=1e-9):
            return math.inf
        return t

    def make_feasible(self, x: Tensor) -> Tensor:
        return x.clone() if self.contains(x, tol=0.0) else self.project(x)

    def project(self, x: Tensor) -> Tensor:
        flat = self._check(x).to(torch.float64)
        w = self._values_desc(flat)
        order = torch.argsort(flat, descending=True, stable=True)
        s = flat[order]
        v = torch.tensor(_isotonic_decreasing((s - w).tolist()), dtype=torch.float64, device=flat.device)
        out = torch.empty_like(flat).scatter_(0, order, s - v)
        return out.to(x.dtype).reshape(x.shape)


def make_region(
    kind: str, n: int, *, radius: float | None = None, diameter: float | None = None, **options: Any
) -> Region:
    """A region of the registered ``kind`` (``l1``, ``l2``, ``lp``, ``linf``, ``ksparse``, ``knorm``,
    ``unit_simplex``, ``probability_simplex``, ``permutahedron``) over ``n`` entries, sized by exactly one of
    ``radius`` or ``diameter``; ``options`` are the class's extra arguments (``p``, ``k``, ``zero_gradient``)."""
    if kind not in REGIONS:
        raise ValueError(f"unknown region {kind!r}; known: {', '.join(sorted(REGIONS))}")
    if (radius is None) == (diameter is None):
        raise ValueError("give exactly one of radius and diameter")
    cls = REGIONS[kind]
    if radius is not None:
        return cls(n, radius=radius, **options)
    return cls.from_diameter(n, diameter, **options)


# ----------------------------------------------------------------------------------------------------------------------
# sizing
# ----------------------------------------------------------------------------------------------------------------------


@torch.no_grad()
def init_norms(module: nn.Module, draws: int = 100) -> dict[str, float]:
    """Mean L2 norm ``E||theta^init||_2`` of each parameter owned directly by ``module``.

    Re-runs ``module.reset_parameters()`` ``draws`` times (PyTorch defaults: Kaiming-uniform with ``a = sqrt(5)``
    for weights, uniform biases), averages the norms, and restores the module's parameters and buffers afterwards.
    The random draws come from a forked RNG, so the caller's random stream is left untouched.  A mean norm of 0
    (BatchNorm biases, zero-initialised tensors) is replaced by 1, as the reference code does.  A module without
    ``reset_parameters`` uses the norm of its current tensors (one draw).
    """
    params = dict(module.named_parameters(recurse=False))
    reset = getattr(module, "reset_parameters", None)
    if not callable(reset) or draws < 1:
        means = {name: float(torch.linalg.vector_norm(_work(p.detach()))) for name, p in params.items()}
    else:
        saved = {k: v.detach().clone() for k, v in module.state_dict(keep_vars=True).items()}
        devices = sorted({p.device.index or 0 for p in params.values() if p.is_cuda})
        totals = {name: torch.zeros((), dtype=torch.float64) for name in params}
        with torch.random.fork_rng(devices=devices):
            for _ in range(draws):
                reset()
                for name, p in params.items():
                    totals[name] += torch.linalg.vector_norm(_work(p.detach())).double().cpu()
        module.load_state_dict(saved)
        means = {name: float(t) / draws for name, t in totals.items()}
    return {name: (m if m > 0 else 1.0) for name, m in means.items()}


def init_norm(module: nn.Module, param_name: str, draws: int = 100) -> float:
    """``E||theta^init||_2`` of ``module.<param_name>`` (see :func:`init_norms`)."""
    norms = init_norms(module, draws)
    if param_name not in norms:
        raise KeyError(f"{type(module).__name__} has no parameter {param_name!r}; it has {sorted(norms)}")
    return norms[param_name]


_MODES = ("initialization", "radius", "diameter")


def _owned_parameters(model: nn.Module) -> list[tuple[nn.Module, str, nn.Parameter]]:
    seen: set[int] = set()
    out = []
    for module in model.modules():
        for name, p in module.named_parameters(recurse=False):
            if id(p) in seen or not p.requires_grad:
                continue
            seen.add(id(p))
            out.append((module, name, p))
    return out


def constraints_for(
    model: nn.Module,
    kind: str | Callable[[nn.Module, str, Tensor], str] = "l2",
    width: float = 30.0,
    mode: str = "initialization",
    *,
    p: float | None = None,
    k: int | float | None = None,
    global_: bool = False,
    draws: int = 100,
    norms_by: str = "tensor",
    **options: Any,
) -> list[dict[str, Any]]:
    """Parameter groups with one feasible region per parameter tensor -- **all** trainable parameters, biases and
    BatchNorm included, as paper 1 does -- ready for :class:`~companion.frankwolfe.SFW`.

    ``mode`` decides what ``width`` means:

    * ``"initialization"``: ``width`` is the factor ``w`` and the L2 diameter is ``D_l = 2 w E||theta_l^init||_2``
      (:func:`init_norms`, ``draws`` draws), or globally ``D = 2 w sqrt(sum_l E||theta_l^init||_2^2)``;
    * ``"diameter"``: ``width`` is ``D`` itself; ``"radius"``: ``width`` is the radius ``tau``.

    ``norms_by`` decides whose mean norm a tensor gets in the ``"initialization"`` mode: ``"tensor"`` (default)
    its own; ``"shape"`` the official code's behaviour, which stores the mean norms in a dictionary keyed by the
    tensor's *shape*, so a later tensor of the same shape overwrites an earlier one's norm (a BatchNorm weight
    then takes the norm of its bias, a zero replaced by 1: ``D = 2 w`` instead of ``2 w sqrt(C)``).

    ``kind`` is a registered region name or a function ``(module, param_name, param) -> name`` (e.g. structured
    regions for conv weights and L2 balls elsewhere).  ``p`` / ``k`` / ``options`` go to the region classes that
    accept them.  Returns ``[{"params": [...], "regions": [...]}]`` (per-tensor) or, with ``global_=True``,
    ``[{"params": [...], "region": R}]`` with one region over the concatenation of all parameters.
    """
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    if norms_by not in ("tensor", "shape"):
        raise ValueError(f"norms_by must be 'tensor' or 'shape', got {norms_by!r}")
    if not (width > 0 and math.isfinite(width)):
        raise ValueError(f"width must be positive, got {width!r}")
    owned = _owned_parameters(model)
    if not owned:
        raise ValueError("the model has no trainable parameters")
    opts = {key: val for key, val in {"p": p, "k": k, **options}.items() if val is not None}
    used: set[str] = set()

    def build(kind_name: str, n: int, norm_sq: float) -> Region:
        if kind_name not in REGIONS:
            raise ValueError(f"unknown region {kind_name!r}; known: {', '.join(sorted(REGIONS))}")
        cls = REGIONS[kind_name]
        cls_opts = {key: val for key, val in opts.items() if key in cls.options}
        used.update(cls_opts)
        if mode == "radius":
            return cls(n, radius=width, **cls_opts)
        diameter = width if mode == "diameter" else 2.0 * width * math.sqrt(norm_sq)
        return cls.from_diameter(n, diameter, **cls_opts)

    norms_cache: dict[int, dict[str, float]] = {}

    def own_norm(module: nn.Module, name: str) -> float:
        if mode != "initialization":
            return 1.0
        if id(module) not in norms_cache:
            norms_cache[id(module)] = init_norms(module, draws)
        return norms_cache[id(module)][name]

    by_shape = {tuple(prm.shape): own_norm(mod, name) for mod, name, prm in owned} if norms_by == "shape" else {}

    def mean_norm(module: nn.Module, name: str) -> float:
        if by_shape:
            return by_shape[tuple(getattr(module, name).shape)]
        return own_norm(module, name)

    params = [prm for _, _, prm in owned]
    if global_:
        if not isinstance(kind, str):
            raise ValueError("a global constraint needs one region kind (a string)")
        total_sq = sum(mean_norm(mod, name) ** 2 for mod, name, _ in owned)
        region = build(kind, sum(prm.numel() for prm in params), total_sq)
        groups: list[dict[str, Any]] = [{"params": params, "region": region}]
    else:
        regions = []
        for mod, name, prm in owned:
            kind_name = kind if isinstance(kind, str) else kind(mod, name, prm)
            regions.append(build(kind_name, prm.numel(), mean_norm(mod, name) ** 2))
        groups = [{"params": params, "regions": regions}]
    unused = set(opts) - used
    if unused:
        raise ValueError(f"options {sorted(unused)} are not accepted by the chosen region kind(s)")
    return groups


# ----------------------------------------------------------------------------------------------------------------------
# applying regions to parameter groups
# ----------------------------------------------------------------------------------------------------------------------


def iter_units(obj: Any) -> Iterable[tuple[list[Tensor], Region, bool]]:
    """The (tensors, region, joint) units of parameter groups, an optimizer, or a mapping ``param -> region``.

    ``joint`` is ``True`` for a group-wide region (``"region"`` key) spanning all its tensors and ``False`` for a
    per-tensor region (``"regions"`` key, then ``tensors`` has one entry)."""
    if isinstance(obj, torch.optim.Optimizer):
        groups: Iterable[Any] = obj.param_groups
    elif isinstance(obj, nn.Module):
        raise TypeError(
            "a module carries no regions: pass the groups returned by constraints_for(model, ...), "
            "the optimizer, or a mapping param -> region"
        )
    elif isinstance(obj, Mapping):
        groups = [{"params": list(obj.keys()), "regions": list(obj.values())}]
    else:
        groups = obj
    for group in groups:
        params = list(group["params"])
        if "region" in group:
            yield params, group["region"], True
        elif "regions" in group:
            regions = list(group["regions"])
            if len(regions) != len(params):
                raise ValueError(f"{len(params)} parameters but {len(regions)} regions in a group")
            for prm, reg in zip(params, regions):
                yield [prm], reg, False
        else:
            raise ValueError("a parameter group needs a 'regions' list or a global 'region'")


@torch.no_grad()
def make_feasible_(obj: Any) -> None:
    """Make every parameter feasible in place by gauge rescaling (``theta <- tau theta / ||theta||_C``
    when outside).  ``obj``: parameter groups from :func:`constraints_for`, an optimizer, or a mapping
    ``param -> region``."""
    for tensors, region, joint in iter_units(obj):
        if joint:
            for t, new in zip(tensors, region.make_feasible_joint(tensors)):
                t.copy_(new)
        else:
            tensors[0].copy_(region.make_feasible(tensors[0]))


@torch.no_grad()
def max_gauge(obj: Any) -> float:
    """The largest gauge over all units of ``obj`` (``<= 1`` means every parameter is feasible for regions that
    contain the origin)."""
    return max(
        region.gauge_joint(tensors) if joint else region.gauge(tensors[0]) for tensors, region, joint in iter_units(obj)
    )
