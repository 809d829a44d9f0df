"""Compression-aware regions of the ``sfw-compression`` chapter (Zimmer, Spiegel & Pokutta 2022): the exact
k-support norm, the LMOs of the k-support, group k-support and spectral regions, zeros that stay zero, the partial
SVD, the structured constraint builder and the baselines (penalties, Prox-SGD)."""

from __future__ import annotations

import math

import pytest
import torch
from companion import frankwolfe as fw
from companion.frankwolfe import compression, structured
from companion.models import cnn_bn
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

DT = torch.float64


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=DT)


def decaying(rows: int, cols: int, seed: int = 0) -> torch.Tensor:
    """A matrix with singular values 2^-i (a clear spectral gap)."""
    gen = torch.Generator().manual_seed(seed)
    u = torch.linalg.qr(torch.randn(rows, rows, generator=gen, dtype=DT))[0]
    v = torch.linalg.qr(torch.randn(cols, cols, generator=gen, dtype=DT))[0]
    r = min(rows, cols)
    return (u[:, :r] * 2.0 ** -torch.arange(r, dtype=DT)) @ v[:, :r].T


# ----------------------------------------------------------------------------------------------------------------------
# the worked k-support norms and LMOs
# ----------------------------------------------------------------------------------------------------------------------

NORMS = [
    ((3, 2, 1), 1, 0, 6.0),
    ((3, 2, 1), 2, 1, math.sqrt(18)),
    ((3, 2, 1), 3, 0, math.sqrt(14)),
    ((4, 1, 1), 2, 0, math.sqrt(20)),
    ((5, 4, 1, 1), 2, 1, 7.7782),
    ((1, 1, 1, 1), 2, 1, math.sqrt(8)),
]


@pytest.mark.parametrize("x, k, r, value", NORMS)
def test_worked_ksupport_norms(x, k, r, value):
    assert structured.ksupport_r(t(*x), k) == r
    assert fw.ksupport_norm(t(*x), k) == pytest.approx(value, abs=5e-5)
    assert fw.ksupport_norm(-t(*reversed(x)), k) == pytest.approx(value, abs=5e-5)  # sign and order free


@pytest.mark.parametrize(
    "k, expected, value",
    [(1, t(-1, 0, 0, 0), -3.0), (2, t(-0.8321, 0, -0.5547, 0), -math.sqrt(13)), (4, None, -3.7749)],
)
def test_worked_ksupport_lmo(k, expected, value):
    m = t(3, -1, 2, 0.5)
    v = fw.KSupportBall(4, k=k).lmo(m)
    if expected is None:
        expected = -m / torch.linalg.vector_norm(m)
    assert torch.allclose(v, expected, atol=5e-5)
    assert float(m @ v) == pytest.approx(value, abs=5e-5)


@given(st.lists(st.floats(-10, 10), min_size=1, max_size=12), st.data())
@settings(max_examples=60, deadline=None)
def test_ksupport_norm_extremes_and_duality(values, data):
    x = torch.tensor(values, dtype=DT)
    n = x.numel()
    assert fw.ksupport_norm(x, 1) == pytest.approx(float(x.abs().sum()), rel=1e-9, abs=1e-12)
    assert fw.ksupport_norm(x, n) == pytest.approx(float(torch.linalg.vector_norm(x)), rel=1e-9, abs=1e-12)
    k = data.draw(st.integers(1, n))
    # dual characterisation: <x, u> <= ||x||_k^sp ||top_k(u)||_2 for every u, with equality for u = -LMO(-x)
    u = torch.randn(n, dtype=DT, generator=torch.Generator().manual_seed(len(values)))
    top = torch.linalg.vector_norm(torch.topk(u.abs(), k).values)
    assert float(x @ u) <= fw.ksupport_norm(x, k) * float(top) + 1e-9
    # the norm decreases in k (the balls grow)
    if k < n:
        assert fw.ksupport_norm(x, k + 1) <= fw.ksupport_norm(x, k) + 1e-9


def test_ksupport_lmo_extremes():
    g = torch.randn(50, dtype=DT, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(fw.KSupportBall(50, k=1, radius=2.0).lmo(g), fw.L1Ball(50, radius=2.0).lmo(g))
    assert torch.allclose(fw.KSupportBall(50, k=50, radius=2.0).lmo(g), fw.L2Ball(50, radius=2.0).lmo(g))
    assert torch.allclose(fw.KSupportBall(50, k=1.0, radius=2.0).lmo(g), fw.L2Ball(50, radius=2.0).lmo(g))


# ----------------------------------------------------------------------------------------------------------------------
# LMO optimality and feasibility, for every new region (property tests)
# ----------------------------------------------------------------------------------------------------------------------


def regions(rows: int, cols: int, k: int, svd: str = "full") -> list[fw.Region]:
    n = rows * cols
    return [
        fw.KSupportBall(n, k=min(k, n), radius=1.5),
        fw.GroupKSupportBall(n, k=min(k, rows), groups=rows, radius=1.5),
        fw.NuclearBall(n, shape=(rows, cols), radius=1.5, svd=svd),
        fw.SpectralKSupportBall(n, k=min(k, rows, cols), shape=(rows, cols), radius=1.5, svd=svd),
        fw.SpectralKSparsePolytope(n, k=min(k, rows, cols), shape=(rows, cols), radius=1.5, svd=svd),
    ]


def random_feasible(region: fw.Region, gen: torch.Generator) -> torch.Tensor:
    """A random point of the region: a convex combination of LMO outputs (vertices) of random directions."""
    vs = [region.lmo(torch.randn(region.n, dtype=DT, generator=gen)) for _ in range(4)]
    w = torch.rand(4, dtype=DT, generator=gen)
    w = w / w.sum()
    return sum(wi * vi for wi, vi in zip(w, vs))


@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6), st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_lmo_optimal_and_feasible(rows, cols, k, seed):
    gen = torch.Generator().manual_seed(seed)
    g = torch.randn(rows * cols, dtype=DT, generator=gen)
    for region in regions(rows, cols, k):
        v = region.lmo(g)
        assert region.gauge(v) <= 1 + 1e-9, region
        assert torch.linalg.vector_norm(v) <= region.diameter / 2 * math.sqrt(1) * (1 + 1e-9) or isinstance(
            region, fw.SpectralKSparsePolytope
        )
        for _ in range(3):
            x = random_feasible(region, gen)
            assert region.gauge(x) <= 1 + 1e-9, region
            assert float(g @ v) <= float(g @ x) + 1e-9, region
        # v attains the dual norm: no scaled random direction of unit gauge does better
        y = torch.randn(rows * cols, dtype=DT, generator=gen)
        y = y / region.gauge(y)
        assert float(g @ v) <= float(g @ y) + 1e-9, region


# ----------------------------------------------------------------------------------------------------------------------
# Euclidean projections (prox of the squared k-support norm, on entries, group norms and singular values)
# ----------------------------------------------------------------------------------------------------------------------


@given(st.integers(1, 5), st.integers(1, 5), st.integers(1, 5), st.floats(0.1, 20.0), st.integers(0, 2**31 - 1))
@settings(max_examples=30, deadline=None)
def test_projection_feasible_idempotent_and_variational(rows, cols, k, scale, seed):
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(rows * cols, dtype=DT, generator=gen)
    x[torch.rand(rows * cols, generator=gen) < 0.3] = 0.0
    for region in regions(rows, cols, k):
        p = region.project(x)
        assert region.gauge(p) <= 1 + 1e-9, region
        assert torch.allclose(region.project(p), p, atol=1e-9), region  # idempotent on feasible points
        inside = random_feasible(region, gen)
        assert torch.allclose(region.project(inside), inside, atol=1e-12), region
        # <x - P(x), z - P(x)> <= 0 for feasible z: vertices (LMO outputs) and random points of the region
        zs = [region.lmo(torch.randn(rows * cols, dtype=DT, generator=gen)) for _ in range(4)]
        zs += [random_feasible(region, gen) for _ in range(4)]
        tol = 1e-9 * (1 + float(torch.linalg.vector_norm(x))) ** 2
        for z in zs:
            assert float((x - p) @ (z - p)) <= tol, region
        if isinstance(region, (fw.KSupportBall, fw.GroupKSupportBall)):
            assert bool((p[x == 0] == 0).all()), region  # zeros stay zero


@given(st.integers(1, 30), st.floats(0.1, 20.0), st.integers(0, 2**31 - 1))
@settings(max_examples=40, deadline=None)
def test_ksupport_projection_extremes_equal_l1_and_l2(n, scale, seed):
    x = scale * torch.randn(n, dtype=DT, generator=torch.Generator().manual_seed(seed))
    p1 = fw.KSupportBall(n, k=1, radius=1.5).project(x)
    assert torch.allclose(p1, fw.L1Ball(n, radius=1.5).project(x), atol=1e-9)
    pn = fw.KSupportBall(n, k=n, radius=1.5).project(x)
    assert torch.allclose(pn, fw.L2Ball(n, radius=1.5).project(x), atol=1e-9)
    # singleton groups reduce the group region to the vector one
    pg = fw.GroupKSupportBall(n, k=max(1, n // 3), groups=n, radius=1.5).project(x)
    assert torch.allclose(pg, fw.KSupportBall(n, k=max(1, n // 3), radius=1.5).project(x), atol=1e-12)


def test_ksupport_prox_closed_form_and_projection_worked_value():
    # prox of lam/2 ||.||_k^2 at k = n is x / (1 + lam); at k = 1, x = (3, 1), lam = 1, the optimality conditions
    # of 1/2 ||w - x||^2 + 1/2 ||w||_1^2 hold at w = (1.5, 0): w_1 - 3 + ||w||_1 = 0 and |0 - 1| <= ||w||_1
    x = t(3.0, -2.0, 1.0)
    assert torch.allclose(structured.ksupport_sq_prox(x, 3, 0.5), x / 1.5)
    w = structured.ksupport_sq_prox(t(3.0, 1.0), 1, 1.0)
    assert torch.allclose(w, t(1.5, 0.0))  # w_1 - 3 + ||w||_1 = 0 and |w_2 - 1| <= ||w||_1
    # the projection of (3, 2, 1) onto the k = 2 ball of radius sqrt(18)/2 is the prox with ||.||_2^sp = radius
    p = fw.KSupportBall(3, k=2, radius=math.sqrt(18) / 2).project(t(3.0, 2.0, 1.0))
    assert structured.ksupport_norm(p, 2) == pytest.approx(math.sqrt(18) / 2, rel=1e-10)
    assert torch.allclose(fw.KSupportBall(3, k=2).project(t(0.1, 0.2, 0.0)), t(0.1, 0.2, 0.0))


def test_spectral_projections_act_on_singular_values():
    w = 3.0 * decaying(4, 6)
    s = torch.linalg.svdvals(w)
    for region, values in [
        (fw.NuclearBall(24, shape=(4, 6), svd="full"), fw.L1Ball(4).project(s)),
        (fw.SpectralKSupportBall(24, k=4, shape=(4, 6), svd="full"), fw.L2Ball(4).project(s)),
        (fw.SpectralKSupportBall(24, k=2, shape=(4, 6), svd="full"), fw.KSupportBall(4, k=2).project(s)),
        (fw.SpectralKSparsePolytope(24, k=2, shape=(4, 6), svd="full"), fw.KSparsePolytope(4, k=2).project(s)),
    ]:
        p = region.project(w.reshape(-1)).reshape(4, 6)
        assert torch.allclose(torch.linalg.svdvals(p), torch.sort(values, descending=True)[0], atol=1e-10)
    z = w.clone()
    z[1] = 0.0
    z[:, 2] = 0.0
    p = fw.SpectralKSupportBall(24, k=2, shape=(4, 6), svd="full").project(z.reshape(-1)).reshape(4, 6)
    assert float(p[1].abs().max()) < 1e-12 and float(p[:, 2].abs().max()) < 1e-12


def test_gauge_is_one_on_vertices_and_make_feasible():
    gen = torch.Generator().manual_seed(3)
    for region in regions(5, 7, 3):
        v = region.lmo(torch.randn(region.n, dtype=DT, generator=gen))
        assert region.gauge(v) == pytest.approx(1.0, abs=1e-9), region
        x = 10 * torch.randn(region.n, dtype=DT, generator=gen)
        assert region.gauge(region.make_feasible(x)) == pytest.approx(1.0, abs=1e-9), region


def test_spectral_extremes_equal_nuclear_and_frobenius():
    m = torch.randn(6, 9, dtype=DT, generator=torch.Generator().manual_seed(2))
    n = m.numel()
    u, s, vh = torch.linalg.svd(m)
    nuclear = -2.0 * torch.outer(u[:, 0], vh[0])
    one = fw.SpectralKSupportBall(n, k=1, shape=m.shape, radius=2.0, svd="full").lmo(m.reshape(-1))
    assert torch.allclose(one.reshape(m.shape), nuclear, atol=1e-10)
    assert torch.allclose(fw.NuclearBall(n, shape=m.shape, radius=2.0, svd="full").lmo(m).reshape(m.shape), nuclear)
    full = fw.SpectralKSupportBall(n, k=6, shape=m.shape, radius=2.0).lmo(m.reshape(-1))
    assert torch.allclose(full, fw.L2Ball(n, radius=2.0).lmo(m.reshape(-1)), atol=1e-10)
    # gauges: nuclear norm and Frobenius norm
    assert fw.NuclearBall(n, shape=m.shape).gauge(m) == pytest.approx(float(s.sum()))
    assert fw.SpectralKSupportBall(n, k=6, shape=m.shape).gauge(m) == pytest.approx(float(torch.linalg.norm(m)))
    # spectral K-sparse: -tau U_K V_K^T, diameter 2 tau sqrt(K)
    ks = fw.SpectralKSparsePolytope(n, k=2, shape=m.shape, radius=2.0, svd="full")
    assert torch.allclose(ks.lmo(m).reshape(m.shape), -2.0 * u[:, :2] @ vh[:2], atol=1e-10)
    assert ks.diameter == pytest.approx(4.0 * math.sqrt(2))


def test_group_ksupport_selects_filters():
    w = torch.zeros(4, 3, dtype=DT)
    w[0], w[1], w[2], w[3] = 1.0, 3.0, 0.1, 2.0  # filter norms sqrt(3) * (1, 3, 0.1, 2)
    region = fw.GroupKSupportBall(12, k=2, groups=4, radius=1.0)
    v = region.lmo(w.reshape(-1)).reshape(4, 3)
    expected = torch.zeros(4, 3, dtype=DT)
    expected[1], expected[3] = 3.0, 2.0
    assert torch.allclose(v, -expected / torch.linalg.norm(expected))
    # the group norm is the k-support norm of the filter norms; k = all groups gives the L2 ball
    assert region.gauge(w.reshape(-1)) == pytest.approx(
        fw.ksupport_norm(torch.linalg.vector_norm(w, dim=1), 2), rel=1e-12
    )
    g = torch.randn(12, dtype=DT, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(fw.GroupKSupportBall(12, k=4, groups=4).lmo(g), fw.L2Ball(12).lmo(g))
    # unequal groups (a global region over two layers) agree with the equal-groups path
    uneq = fw.GroupKSupportBall(12, k=2, groups=[3, 3, 3, 3])
    assert torch.allclose(uneq.lmo(g), fw.GroupKSupportBall(12, k=2, groups=4).lmo(g))


# ----------------------------------------------------------------------------------------------------------------------
# zeros stay zero
# ----------------------------------------------------------------------------------------------------------------------


def test_zeros_stay_zero_through_lmo_rescaling_and_sfw_step():
    gen = torch.Generator().manual_seed(5)
    n = 40
    zero = torch.zeros(n, dtype=torch.bool)
    zero[::3] = True
    for region in (fw.KSupportBall(n, k=0.3), fw.KSupportBall(n, k=25)):
        g = torch.randn(n, dtype=DT, generator=gen).masked_fill(zero, 0.0)
        assert (region.lmo(g)[zero] == 0).all()
        x = (5 * torch.randn(n, dtype=DT, generator=gen)).masked_fill(zero, 0.0)
        assert (region.make_feasible(x)[zero] == 0).all()
        for rescale in ("diameter", "gradient", "fast_gradient"):
            p = torch.nn.Parameter(region.make_feasible(x).clone())
            opt = fw.SFW([p], [region], lr=0.5, momentum=0.9, momentum_style="undampened", rescale=rescale)
            for _ in range(3):
                p.grad = torch.randn(n, dtype=DT, generator=gen).masked_fill(zero, 0.0)
                opt.step()
            assert (p.detach()[zero] == 0).all(), (region, rescale)
            assert region.gauge(p.detach()) <= 1 + 1e-9
    # group k-support: a zero filter of the gradient stays a zero filter
    w = torch.randn(6, 5, dtype=DT, generator=gen)
    w[2] = 0
    for k in (2, 6):
        assert (fw.GroupKSupportBall(30, k=k, groups=6).lmo(w.reshape(-1)).reshape(6, 5)[2] == 0).all()
    # spectral regions: a zero row (pruned filter) or column of m stays zero
    m = torch.randn(6, 8, dtype=DT, generator=gen)
    m[1] = 0
    m[:, 4] = 0
    for region in regions(6, 8, 3, svd="qr")[2:]:
        v = region.lmo(m.reshape(-1)).reshape(6, 8)
        assert v[1].abs().max() < 1e-12 and v[:, 4].abs().max() < 1e-12, region


# ----------------------------------------------------------------------------------------------------------------------
# partial SVD
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["lowrank", "qr"])
def test_partial_svd_matches_full_on_leading_triplets(method):
    m = decaying(20, 30)
    u0, s0, v0 = fw.top_k_svd(m, 4, "full")
    u, s, v = fw.top_k_svd(m, 4, method, iters=10)
    assert torch.allclose(s, s0, rtol=1e-8)
    # singular vectors up to sign
    signs = torch.sign((u * u0).sum(0))
    assert torch.allclose(u * signs, u0, atol=1e-6)
    assert torch.allclose(v * signs, v0, atol=1e-6)
    with pytest.raises(ValueError):
        fw.top_k_svd(m, 21, method)


def test_spectral_lmo_with_partial_svd_matches_full():
    m = decaying(16, 24, seed=1).reshape(-1)
    exact = fw.SpectralKSupportBall(m.numel(), k=3, shape=(16, 24), svd="full").lmo(m)
    for svd in ("qr", "lowrank"):
        fast = fw.SpectralKSupportBall(m.numel(), k=3, shape=(16, 24), svd=svd).lmo(m)
        assert torch.allclose(fast, exact, atol=1e-6)


# ----------------------------------------------------------------------------------------------------------------------
# the constraint builder and the baselines
# ----------------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", compression.STRUCTURED_KINDS)
def test_structured_constraints_put_structure_on_convs_only(kind):
    torch.manual_seed(0)
    model = cnn_bn(width=4)
    groups = fw.structured_constraints(model, kind, width=5.0, k=0.5, draws=5)
    conv_group, other_group = groups
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    assert [p for p in conv_group["params"]] == [c.weight for c in convs]
    assert all(not isinstance(r, fw.L2Ball) for r in conv_group["regions"])
    assert all(isinstance(r, fw.L2Ball) for r in other_group["regions"])
    n_params = sum(1 for p in model.parameters())
    assert len(conv_group["params"]) + len(other_group["params"]) == n_params
    fw.make_feasible_(groups)
    opt = fw.SFW(groups, lr=0.1, momentum=0.9, momentum_style="undampened", rescale="gradient")
    x = torch.randn(8, 1, 8, 8)
    nn.functional.cross_entropy(model(x), torch.arange(8) % 10).backward()
    opt.step()
    assert fw.max_gauge(groups) <= 1 + 1e-5


def test_structured_constraints_global_group():
    model = cnn_bn(width=4)
    groups = fw.structured_constraints(model, "group_ksupport", width=5.0, k=3, global_=True, draws=5)
    region = groups[0]["region"]
    assert region.num_groups == 4 + 8 + 8 and region.k == 3
    with pytest.raises(ValueError):
        fw.structured_constraints(model, "nuclear", global_=True)
    with pytest.raises(ValueError):
        fw.structured_constraints(nn.Linear(3, 2), "nuclear")


def test_svd_soft_threshold_and_penalties():
    w = decaying(4, 18).reshape(4, 2, 3, 3)
    out = compression.svd_soft_threshold(w, 0.3)
    s_in = torch.linalg.svdvals(w.reshape(4, -1))
    s_out = torch.linalg.svdvals(out.reshape(4, -1))
    assert torch.allclose(s_out, (s_in - 0.3).clamp_min(0), atol=1e-12)
    # the penalty subgradients are the gradients of the penalties where those are differentiable
    for kind, fn in (("group_lasso", compression.group_lasso), ("nuclear", compression.nuclear_norm)):
        x = w.clone().requires_grad_(True)
        fn([x]).backward()
        assert torch.allclose(compression.Penalty(kind, 1.0).subgradient(w), x.grad, atol=1e-8), kind


def test_prox_sgd_shrinks_singular_values():
    torch.manual_seed(0)
    conv = nn.Conv2d(2, 4, 3, bias=False).double()
    opt = compression.ProxSGD(conv.parameters(), [conv.weight], lam=0.5, lr=0.1)
    before = torch.linalg.svdvals(conv.weight.detach().reshape(4, -1))
    conv.weight.grad = torch.zeros_like(conv.weight)
    opt.step()
    after = torch.linalg.svdvals(conv.weight.detach().reshape(4, -1))
    assert torch.allclose(after, (before - 0.05).clamp_min(0), atol=1e-12)


@pytest.mark.parametrize("method", compression.METHODS)
def test_every_method_trains_one_step(method):
    torch.manual_seed(0)
    model = cnn_bn(width=4)
    opt, callbacks = compression.build_optimizer(model, method, {"lr": 0.1, "k": 0.5, "width": 2.0})
    x, y = torch.randn(8, 1, 8, 8), torch.arange(8) % 10
    before = [p.detach().clone() for p in model.parameters()]
    nn.functional.cross_entropy(model(x), y).backward()
    for cb in callbacks:
        cb.on_train_begin(type("S", (), {"model": model})())
        cb.on_after_backward(None)
    opt.step()
    assert any(not torch.equal(b, p) for b, p in zip(before, model.parameters()))
    if method.startswith("sfw"):
        assert opt.is_feasible(1e-5)
    with pytest.raises(ValueError):
        compression.build_optimizer(model, "adam", {})


def test_compressed_accuracy_leaves_model_and_counts_levels():
    from companion.data import digits

    split = digits(seed=0, image=True)
    torch.manual_seed(0)
    model = cnn_bn(width=4)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    for op in compression.COMPRESSIONS:
        accs = compression.compressed_accuracy(model, split.test, op, [0.0, 0.5])
        assert len(accs) == 2 and all(0.0 <= a <= 1.0 for a in accs)
    assert all(torch.equal(state[k], v) for k, v in model.state_dict().items())
    # level 0 is the dense model for all three operations
    dense = compression.compressed_accuracy(model, split.test, "magnitude", [0.0])[0]
    assert compression.compressed_accuracy(model, split.test, "filters", [0.0])[0] == dense
    assert compression.compressed_accuracy(model, split.test, "low_rank", [0.0])[0] == pytest.approx(dense, abs=0.01)
    assert compression.mean_std([1.0, 3.0]) == "2.000 ± 1.000"


def test_spectral_step_benchmark_runs():
    from companion.frankwolfe.bench import spectral_step_ratio

    out = spectral_step_ratio(width=4, batch_size=8, repeats=2, warmup=1)
    assert out["step_ratio"] > 0 and out["sfw_spectral_step_s"] > 0 and out["prox_sgd_step_s"] > 0


def test_projection_of_points_outside_the_ball_by_rounding_only():
    # Points on or just outside the sphere (lam* ~ 0) come back feasible and unchanged, in bounded time (the
    # bisection stops when its midpoint is no new float instead of halving towards subnormals for ever).
    import numpy as np
    from companion.frankwolfe.structured import ksupport_norm, project_ksupport

    for seed in range(20):
        x = torch.randn(12, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
        for k in (1, 3, 12):
            norm = float(ksupport_norm(x, k))
            for radius in (np.nextafter(norm, 0.0), norm * (1 - 1e-15)):
                p = project_ksupport(x, k, radius)
                assert float(ksupport_norm(p, k)) <= radius and torch.allclose(p, x, atol=1e-12)
