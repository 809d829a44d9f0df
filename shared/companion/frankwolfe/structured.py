"""Compression-aware feasible regions (Zimmer, Spiegel & Pokutta 2022, "Compression-aware Training of Neural
Networks using Frank-Wolfe", Sec. 3; the region families of the official code ``ZIB-IOL/compression-aware-SFW``,
``optimizers/constraints.py``, reimplemented from the paper's description).

* :class:`KSupportBall` -- the k-support norm ball ``conv{x : ||x||_0 <= k, ||x||_2 <= tau}`` (Argyriou, Foygel &
  Srebro 2012) with its exact norm (:func:`ksupport_norm`), for unstructured pruning;
* :class:`GroupKSupportBall` -- the same ball over contiguous groups of entries (the output filters of a Conv2d
  weight, per layer, or all filters of the network for a global region), for filter pruning;
* :class:`SpectralKSupportBall` (k = 1: :class:`NuclearBall`) and :class:`SpectralKSparsePolytope` -- the k-support
  ball and the K-sparse polytope applied to the singular values of the matricized weight
  ``c_out x (c_in k_h k_w)``, for low-rank decompositions.

Every LMO is proportional to a selection of the direction ``m``: entries (or filters, rows, columns) where ``m`` is
zero get zero, so pruned weights whose gradient is masked are never revived.  Gauge rescaling is a radial map and
keeps zeros too.  The spectral oracles need the top-k singular triplets: :func:`top_k_svd` computes them exactly
(full SVD), with ``torch.svd_lowrank`` or with a block power (subspace) iteration -- the ``qrpartial`` mode of the
official code -- which costs ``O(k m n)`` per iteration instead of a full SVD.

Frank-Wolfe never projects; the exact Euclidean projections (``project``, for projected-gradient baselines and
tests) go through the prox of the squared k-support norm (:func:`ksupport_sq_prox`, :func:`project_ksupport`),
applied to the entries, the group norms or the singular values.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from .constraints import KSparsePolytope, Region, _norm_floor, _tiny, _work, register_region, resolve_k

__all__ = [
    "SVD_METHODS",
    "ksupport_norm",
    "ksupport_r",
    "ksupport_sq_prox",
    "project_ksupport",
    "top_k_svd",
    "KSupportBall",
    "GroupKSupportBall",
    "SpectralKSupportBall",
    "NuclearBall",
    "SpectralKSparsePolytope",
]

SVD_METHODS = ("full", "lowrank", "qr")


# ----------------------------------------------------------------------------------------------------------------------
# the k-support norm
# ----------------------------------------------------------------------------------------------------------------------


def ksupport_r(x: Tensor, k: int) -> int:
    """Argyriou et al. (2012, Prop. 2.1)'s index ``r``: with ``z`` the sorted ``|x|`` (decreasing, 1-based,
    ``z_0 = +inf``), the unique ``r`` in ``{0, ..., k-1}`` with
    ``z_{k-r-1} > (1/(r+1)) sum_{i >= k-r} z_i >= z_{k-r}``."""
    z = torch.sort(_work(x.reshape(-1)).abs().to(torch.float64), descending=True)[0]
    d = z.numel()
    if not 1 <= k <= d:
        raise ValueError(f"k = {k} must lie in [1, {d}]")
    suffix = torch.flip(torch.cumsum(torch.flip(z, [0]), 0), [0])  # suffix[j] = sum_{i >= j} z_i (0-based)
    r = torch.arange(k, dtype=torch.float64)
    j = k - 1 - r.long()  # 0-based index of z_{k-r}
    tail = suffix[j] / (r + 1)
    prev = torch.where(j >= 1, z[(j - 1).clamp_min(0)], torch.full_like(tail, math.inf))
    tol = 1e-12 * float(z[0]) * (r + 1)  # at a tie both neighbouring r give the same norm
    ok = (prev > tail) & (tail >= z[j])
    if not bool(ok.any()):  # round-off at a tie: both neighbouring r give the same norm
        ok = (prev > tail - tol) & (tail >= z[j] - tol)
    hits = torch.nonzero(ok).reshape(-1)
    return int(hits[0]) if hits.numel() else k - 1


def ksupport_norm(x: Tensor, k: int) -> float:
    """The k-support norm ``||x||_k^sp = sqrt(sum_{i < k-r} z_i^2 + (sum_{i >= k-r} z_i)^2 / (r+1))`` of
    Argyriou et al. (2012, Prop. 2.1), ``z`` the decreasingly sorted ``|x|`` and ``r`` from :func:`ksupport_r`.
    ``k = 1`` gives ``||x||_1``, ``k = n`` gives ``||x||_2``; the norm is the gauge of
    :class:`KSupportBall` with radius 1 (the dual norm of ``u -> ||top_k(u)||_2``)."""
    z = torch.sort(_work(x.reshape(-1)).abs().to(torch.float64), descending=True)[0]
    r = ksupport_r(z, k)
    head = z[: k - r - 1]
    tail = z[k - r - 1 :]
    return math.sqrt(float((head * head).sum()) + float(tail.sum()) ** 2 / (r + 1))


# ----------------------------------------------------------------------------------------------------------------------
# partial SVD
# ----------------------------------------------------------------------------------------------------------------------


def top_k_svd(
    m: Tensor, k: int, method: str = "full", iters: int = 10, start: Tensor | None = None, oversample: int = 4
) -> tuple[Tensor, Tensor, Tensor]:
    """The ``k`` leading singular triplets ``U_k (r x k), S_k (k), V_k (c x k)`` of a matrix ``m``.

    ``method``: ``"full"`` -- ``torch.linalg.svd`` then truncation (exact, the reference for tests; the
    ``partial`` mode of the official code); ``"lowrank"`` -- ``torch.svd_lowrank`` with ``q = min(k + 4, rank)``
    and ``iters`` power iterations (randomised; a fixed generator is forked so results are reproducible);
    ``"qr"`` -- block power (subspace) iteration on a block of ``q = min(k + oversample, rank)`` columns,
    ``iters`` rounds of ``U = qr(m V)``, ``V = qr(m^T U)`` from ``start`` (default: a fixed random orthonormal
    block), then a ``q x q`` SVD of ``U^T m V`` truncated to ``k`` (the ``qrpartial`` mode of the official code,
    which uses no oversampling; a few extra columns make the leading ``k`` converge much faster).  Cost: ``O(iters k r c)`` against ``O(r c min(r, c))``
    for the full SVD.
    """
    if method not in SVD_METHODS:
        raise ValueError(f"method must be one of {SVD_METHODS}, got {method!r}")
    rows, cols = m.shape
    rank = min(rows, cols)
    if not 1 <= k <= rank:
        raise ValueError(f"k = {k} must lie in [1, {rank}]")
    w = _work(m)
    if method == "full" or k == rank:
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        return u[:, :k].to(m.dtype), s[:k].to(m.dtype), vh[:k].T.to(m.dtype)
    if method == "lowrank":
        with torch.random.fork_rng(devices=[w.device.index or 0] if w.is_cuda else []):
            torch.manual_seed(0)
            u, s, v = torch.svd_lowrank(w, q=min(k + 4, rank), niter=iters)
        return u[:, :k].to(m.dtype), s[:k].to(m.dtype), v[:, :k].to(m.dtype)
    q = min(k + oversample, rank)
    v = start if start is not None else _start_block(cols, q, w.dtype, w.device)
    for _ in range(iters):
        u = torch.linalg.qr(w @ v)[0]
        v = torch.linalg.qr(w.T @ u)[0]
    small_u, s, small_vh = torch.linalg.svd(u.T @ w @ v)
    return (u @ small_u[:, :k]).to(m.dtype), s[:k].to(m.dtype), (v @ small_vh[:k].T).to(m.dtype)


_STARTS: dict[tuple, Tensor] = {}


def _start_block(cols: int, k: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """A fixed ``cols x k`` orthonormal start block (Gaussian from a seeded generator, QR), cached per shape."""
    key = (cols, k, dtype, device)
    if key not in _STARTS:
        gen = torch.Generator().manual_seed(cols * 7919 + k)
        block = torch.randn(cols, k, generator=gen, dtype=torch.float64)
        _STARTS[key] = torch.linalg.qr(block)[0].to(dtype=dtype, device=device)
        if len(_STARTS) > 256:
            _STARTS.clear()
    return _STARTS[key]


# ----------------------------------------------------------------------------------------------------------------------
# Euclidean projections (Argyriou, Foygel & Srebro 2012, Alg. 1; McDonald, Pontil & Stamos 2016)
# ----------------------------------------------------------------------------------------------------------------------


def ksupport_sq_prox(x: Tensor, k: int, lam: float) -> Tensor:
    """The proximal map ``argmin_w 1/2 ||w - x||^2 + lam/2 (||w||_k^sp)^2`` of the squared k-support norm.

    With the variational form ``(||w||_k^sp)^2 = min {sum_i w_i^2 / t_i : 0 <= t_i <= 1, sum_i t_i <= k}``
    (McDonald, Pontil & Stamos 2016, the box norm with ``a = 0, c = 1``), minimising over ``w`` first gives
    ``w_i = x_i t_i / (t_i + lam)`` and leaves ``min_t sum_i x_i^2 lam / (t_i + lam)``, whose KKT conditions read
    ``t_i = clamp(s |x_i| - lam, 0, 1)`` with ``s`` the root of ``sum_i t_i = k`` (``s = inf`` if at most ``k``
    entries are non-zero).  So the largest entries shrink by ``1 / (1 + lam)``, the middle ones are soft-thresholded
    by ``lam / s`` and the rest are 0 -- Argyriou et al. (2012)'s Algorithm 1 with ``beta = 1 / lam``.  The
    piecewise-linear equation in ``s`` is solved exactly on its sorted breakpoints.  Zeros of ``x`` stay zero.
    """
    if lam < 0:
        raise ValueError(f"lam must be >= 0, got {lam}")
    flat = _work(x.reshape(-1)).to(torch.float64)
    a = flat.abs()
    nz = a > 0
    if lam == 0 or int(nz.sum()) <= k:
        return (flat / (1.0 + lam)).to(x.dtype).reshape(x.shape)
    an = a[nz]
    enter, full = lam / an, (1.0 + lam) / an  # t_i leaves 0 at s = enter_i and reaches 1 at s = full_i
    points = torch.cat([enter, full])
    slope_change = torch.cat([an, -an])
    order = torch.argsort(points)
    points, slope_change = points[order], slope_change[order]
    slope = torch.cumsum(slope_change, 0)  # slope of sum_i t_i(s) right of each breakpoint
    values = torch.cat([points.new_zeros(1), torch.cumsum(slope[:-1] * torch.diff(points), 0)])
    j = int(torch.searchsorted(values, torch.tensor([float(k)], dtype=torch.float64), right=False))
    j = min(max(j, 1), points.numel() - 1)  # values[j - 1] < k <= values[j]
    s = float(points[j - 1] + (k - values[j - 1]) / slope[j - 1])
    t = (s * a - lam).clamp(0.0, 1.0)
    w = flat * t / (t + lam)
    return w.to(x.dtype).reshape(x.shape)


BISECTION_STEPS = 2200  # a bound only: halving [0, 2^1024] reaches the smallest subnormal in about 2100


def project_ksupport(x: Tensor, k: int, radius: float, tol: float = 1e-13) -> Tensor:
    """Euclidean projection of ``x`` onto ``{w : ||w||_k^sp <= radius}``.

    Inside the ball ``x`` is returned; otherwise the Lagrangian of ``min 1/2 ||w - x||^2`` s.t.
    ``(||w||_k^sp)^2 <= radius^2`` shows ``P(x) = prox_{lam/2 ||.||_k^2}(x)`` (:func:`ksupport_sq_prox`) for the
    multiplier ``lam > 0`` with ``||P(x)||_k^sp = radius``; the norm of the prox decreases in ``lam``, so ``lam``
    is found by bisection (to relative precision ``tol``), and a final radial rescaling by at most ``1 + tol`` makes
    the result feasible.  ``k = 1`` gives the L1-ball projection, ``k = n`` the L2 one.
    """
    flat = _work(x.reshape(-1)).to(torch.float64)
    if ksupport_norm(flat, k) <= radius:
        return x.clone()
    lo, hi = 0.0, 1.0
    while ksupport_norm(ksupport_sq_prox(flat, k, hi), k) > radius:
        lo, hi = hi, 2.0 * hi
    # When x lies outside the ball by rounding only, lam* is ~0 and ``hi`` halves down to the smallest subnormal,
    # where ``hi - lo > tol * hi`` holds forever: stop when the midpoint is no new float. ``hi`` stays feasible.
    for _ in range(BISECTION_STEPS):
        mid = 0.5 * (lo + hi)
        if hi - lo <= tol * hi or mid in (lo, hi):
            break
        if ksupport_norm(ksupport_sq_prox(flat, k, mid), k) > radius:
            lo = mid
        else:
            hi = mid
    w = ksupport_sq_prox(flat, k, hi)
    norm = ksupport_norm(w, k)
    if norm > radius:
        w = w * (radius / norm)
    return w.to(x.dtype).reshape(x.shape)


# ----------------------------------------------------------------------------------------------------------------------
# k-support and group k-support balls
# ----------------------------------------------------------------------------------------------------------------------


@register_region("ksupport")
class KSupportBall(Region):
    """The k-support norm ball ``C_k(tau) = conv{x : ||x||_0 <= k, ||x||_2 <= tau}`` (Zimmer et al. 2022, Sec. 3.1).

    LMO: keep the ``k`` entries of largest ``|g_i|``, ``v = -tau top_k(g) / ||top_k(g)||_2`` (``<g, v> = -tau
    ||top_k(g)||_2``); entries with ``g_i = 0`` stay 0.  Diameter ``2 tau``.  Gauge: the exact k-support norm
    (:func:`ksupport_norm`) over ``tau``.  ``k = 1`` is the L1 ball, ``k = n`` the L2 ball; ``k`` is an int count or
    a float fraction of ``n`` (:func:`~companion.frankwolfe.constraints.resolve_k`).
    """

    options = ("k",)

    def __init__(self, n: int, k: int | float, radius: float = 1.0):
        super().__init__(n, radius)
        self.k = resolve_k(k, self.n)

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int, k: int | float) -> float:  # type: ignore[override]
        return diameter / 2.0

    def _lmo(self, g: Tensor) -> Tensor:
        if self.k < self.n:
            idx = torch.topk(g.abs(), self.k, sorted=False).indices
            sel = torch.zeros_like(g).scatter_(0, idx, g.gather(0, idx))
        else:
            sel = g.clone()
        norm = torch.linalg.vector_norm(sel).clamp_min(_norm_floor(g.dtype, self.k))
        return sel.mul_(-self.radius / norm)

    def gauge(self, x: Tensor) -> float:
        return ksupport_norm(self._check(x), self.k) / self.radius

    def project(self, x: Tensor) -> Tensor:
        """Exact Euclidean projection (:func:`project_ksupport`)."""
        return project_ksupport(self._check(x), self.k, self.radius).to(x.dtype).reshape(x.shape)

    def _extra_repr(self) -> str:
        return f"k={self.k}"


@register_region("group_ksupport")
class GroupKSupportBall(Region):
    """Group k-support ball over contiguous groups of entries: ``conv{x : at most k groups non-zero,
    ||x||_2 <= tau}`` (Zimmer et al. 2022, Sec. 3.2; groups = the output filters of a Conv2d weight).

    ``groups``: the number of equal contiguous groups (a Conv2d weight flattened row-major: its ``c_out``
    filters) or a sequence of group sizes (all filters of several conv layers, for a global region).
    LMO: the ``k`` groups of largest ``||g_group||_2`` keep their entries, ``v = -tau sel / ||sel||_2``; others are
    0.  Diameter ``2 tau``.  Gauge: the k-support norm of the vector of group norms over ``tau`` (the group
    k-support norm).  ``k``: int count or float fraction of the number of groups.
    """

    options = ("k", "groups")

    def __init__(self, n: int, k: int | float, groups: int | Sequence[int], radius: float = 1.0):
        super().__init__(n, radius)
        if isinstance(groups, int):
            if groups < 1 or n % groups:
                raise ValueError(f"{groups} equal groups do not divide {n} entries")
            sizes = [n // groups] * groups
        else:
            sizes = [int(s) for s in groups]
        if sum(sizes) != n or min(sizes) < 1:
            raise ValueError(f"group sizes {sizes[:5]}... must be positive and sum to n = {n}")
        self.sizes = tuple(sizes)
        self.num_groups = len(sizes)
        self.k = resolve_k(k, self.num_groups)
        self._equal = len(set(sizes)) == 1
        self._index: dict[torch.device, Tensor] = {}

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int, **options: Any) -> float:  # type: ignore[override]
        return diameter / 2.0

    def group_norms(self, x: Tensor) -> Tensor:
        """L2 norm of every group of the flat ``x``."""
        if self._equal:
            return torch.linalg.vector_norm(x.reshape(self.num_groups, -1), dim=1)
        dev = x.device
        if dev not in self._index:
            sizes = torch.tensor(self.sizes, device=dev)
            self._index[dev] = torch.repeat_interleave(torch.arange(self.num_groups, device=dev), sizes)
        sq = torch.zeros(self.num_groups, dtype=x.dtype, device=dev).index_add_(0, self._index[dev], x * x)
        return sq.sqrt()

    def _lmo(self, g: Tensor) -> Tensor:
        norms = self.group_norms(g)
        keep = torch.zeros_like(norms)
        keep[torch.topk(norms, self.k, sorted=False).indices] = 1.0
        if self._equal:
            sel = (g.reshape(self.num_groups, -1) * keep[:, None]).reshape(-1)
        else:
            sel = g * keep[self._index[g.device]]
        total = torch.sqrt((norms * norms * keep).sum()).clamp_min(_norm_floor(g.dtype, g.numel()))
        return sel.mul_(-self.radius / total)

    def gauge(self, x: Tensor) -> float:
        return ksupport_norm(self.group_norms(self._check(x)), self.k) / self.radius

    def project(self, x: Tensor) -> Tensor:
        """Exact Euclidean projection: the group norms ``nu`` are projected onto the k-support ball
        (:func:`project_ksupport`) and every group is rescaled by ``nu'_g / nu_g`` (the problem separates into
        the norms and the unchanged directions of the groups); zero groups stay zero."""
        flat = self._check(x).to(torch.float64)
        nu = self.group_norms(flat)
        scale = torch.where(nu > 0, project_ksupport(nu, self.k, self.radius) / nu.clamp_min(_tiny(nu.dtype)), 0.0)
        if self._equal:
            out = (flat.reshape(self.num_groups, -1) * scale[:, None]).reshape(-1)
        else:
            out = flat * scale[self._index[flat.device]]
        return out.to(x.dtype).reshape(x.shape)

    def _extra_repr(self) -> str:
        return f"k={self.k} of {self.num_groups} groups"


# ----------------------------------------------------------------------------------------------------------------------
# spectral regions
# ----------------------------------------------------------------------------------------------------------------------


class _Spectral(Region):
    """Base of the regions defined on the singular values of the matricized tensor (``shape = (rows, cols)``,
    a Conv2d weight as ``c_out x (c_in k_h k_w)``)."""

    options = ("k", "shape", "svd")

    def __init__(
        self,
        n: int,
        k: int | float,
        shape: Sequence[int] | None = None,
        radius: float = 1.0,
        svd: str = "qr",
        iters: int = 10,
    ):
        super().__init__(n, radius)
        if shape is None:
            raise ValueError(f"{type(self).__name__} needs the matrix shape (rows, cols) of the tensor it constrains")
        rows = int(shape[0])
        if rows < 1 or n % rows:
            raise ValueError(f"shape {tuple(shape)} does not matricize {n} entries")
        self.shape = (rows, n // rows)
        self.rank = min(self.shape)
        self.k = resolve_k(k, self.rank)
        if svd not in SVD_METHODS:
            raise ValueError(f"svd must be one of {SVD_METHODS}, got {svd!r}")
        self.svd, self.iters = svd, int(iters)

    @classmethod
    def radius_for_diameter(cls, diameter: float, n: int, **options: Any) -> float:  # type: ignore[override]
        probe = cls(n, radius=1.0, **options)
        return diameter / probe.diameter

    def singular_values(self, x: Tensor) -> Tensor:
        """All singular values of the matricized ``x`` (full SVD)."""
        return torch.linalg.svdvals(self._check(x).to(torch.float64).reshape(self.shape))

    def triplets(self, g: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """The top-k singular triplets of the matricized flat ``g`` (:func:`top_k_svd` with this region's mode)."""
        return top_k_svd(g.reshape(self.shape), self.k, self.svd, self.iters)

    def project(self, x: Tensor) -> Tensor:
        """Exact Euclidean projection: for a region defined by a symmetric gauge of the singular values, the
        projection keeps the singular vectors and projects the singular values (von Neumann's trace inequality),
        ``P(W) = U diag(P_s(sigma)) V^T`` with a full SVD in float64; zero rows and columns stay zero."""
        w = self._check(x).to(torch.float64).reshape(self.shape)
        u, s, vh = torch.linalg.svd(w, full_matrices=False)
        return ((u * self._project_values(s)) @ vh).to(x.dtype).reshape(x.shape)

    def _project_values(self, s: Tensor) -> Tensor:
        raise NotImplementedError

    def _extra_repr(self) -> str:
        return f"k={self.k} of rank {self.rank}, shape={self.shape}, svd={self.svd!r}"


@register_region("spectral_ksupport")
class SpectralKSupportBall(_Spectral):
    """Spectral k-support ball: the matrices whose singular values lie in the k-support ball of radius ``tau``
    (Zimmer et al. 2022, Sec. 3.3), ``conv{W : rank W <= k, ||W||_F <= tau}``.

    LMO: ``v = -tau U_k S_k V_k^T / ||S_k||_2`` from the top-k SVD of ``m`` (``<m, v> = -tau ||S_k||_2``).
    ``k = 1`` is the nuclear-norm ball (``-tau u_1 v_1^T``), ``k = rank`` the Frobenius ball (``-tau m/||m||_F``).
    Diameter ``2 tau``; gauge: the k-support norm of the singular values over ``tau``.  Zero rows or columns of
    ``m`` (pruned filters or input channels) stay zero in ``v``; isolated zero entries do not (low rank and
    entrywise sparsity are different structures).
    """

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius

    def _lmo(self, g: Tensor) -> Tensor:
        u, s, v = self.triplets(g)
        norm = torch.linalg.vector_norm(s).clamp_min(_norm_floor(g.dtype, self.k))
        return ((u * (s * (-self.radius / norm))) @ v.T).reshape(-1)

    def gauge(self, x: Tensor) -> float:
        return ksupport_norm(self.singular_values(x), self.k) / self.radius

    def _project_values(self, s: Tensor) -> Tensor:
        return project_ksupport(s, self.k, self.radius)


@register_region("nuclear")
class NuclearBall(SpectralKSupportBall):
    """Nuclear-norm ball ``{W : ||W||_* <= tau}``: :class:`SpectralKSupportBall` with ``k = 1``; LMO
    ``-tau u_1 v_1^T``; diameter ``2 tau``; gauge ``||W||_* / tau``."""

    options = ("shape", "svd")

    def __init__(
        self, n: int, shape: Sequence[int] | None = None, radius: float = 1.0, svd: str = "qr", iters: int = 20
    ):
        super().__init__(n, 1, shape, radius, svd, iters)

    def gauge(self, x: Tensor) -> float:
        return float(self.singular_values(x).sum()) / self.radius


@register_region("spectral_ksparse")
class SpectralKSparsePolytope(_Spectral):
    """Spectral K-sparse polytope: singular values in the K-sparse polytope ``B_1(K tau) cap B_inf(tau)``.

    LMO ``v = -tau U_K V_K^T``; diameter ``2 tau sqrt(K)``; gauge ``max(sigma_1, sum sigma / K) / tau``.
    """

    @property
    def diameter(self) -> float:
        return 2.0 * self.radius * math.sqrt(self.k)

    def _lmo(self, g: Tensor) -> Tensor:
        u, s, v = self.triplets(g)
        keep = (s > 0).to(g.dtype)  # a zero singular direction of m carries no information: leave it at 0
        return ((u * (keep * -self.radius)) @ v.T).reshape(-1)

    def gauge(self, x: Tensor) -> float:
        s = self.singular_values(x)
        return max(float(s.max()), float(s.sum()) / self.k) / self.radius

    def _project_values(self, s: Tensor) -> Tensor:
        return KSparsePolytope._project_abs(s, self.radius, self.k)
