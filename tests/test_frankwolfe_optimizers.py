"""Stochastic Frank-Wolfe optimizers of the ``sfw`` chapter (brief sections 2.1-2.3 and 5)."""

from __future__ import annotations

import copy
import io
import math

import pytest
import torch
from companion import frankwolfe as fw
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

DT = torch.float64


def _params(*shapes, seed=0, scale=0.1):
    gen = torch.Generator().manual_seed(seed)
    return [nn.Parameter(scale * torch.randn(*s, generator=gen, dtype=DT)) for s in shapes]


def _set_grads(params, gen, zero_some=False):
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen, dtype=DT)
        if zero_some:
            p.grad[..., 0] = 0.0


REGION_MAKERS = {
    "l2": lambda n: fw.L2Ball(n, 0.5),
    "l1": lambda n: fw.L1Ball(n, 0.5),
    "l3": lambda n: fw.LpBall(n, 3.0, 0.5),
    "linf": lambda n: fw.LInfBall(n, 0.2),
    "linf0": lambda n: fw.LInfBall(n, 0.2, zero_gradient="zero"),
    "ksparse": lambda n: fw.KSparsePolytope(n, 0.3, 0.3),
    "knorm": lambda n: fw.KNormBall(n, 2, 0.7),
    "unit_simplex": lambda n: fw.UnitSimplex(n, 1.0),
    "probability_simplex": lambda n: fw.ProbabilitySimplex(n, 1.0),
    "permutahedron": lambda n: fw.Permutahedron(n, 0.1),
}


# ---------------------------------------------------------------------------------------------------------------------
# feasibility and step lengths (brief section 5)
# ---------------------------------------------------------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(sorted(REGION_MAKERS)),
    lr=st.floats(0.0, 1e3),
    rescale=st.sampled_from(fw.RESCALE_MODES),
    style=st.sampled_from(fw.MOMENTUM_STYLES),
    momentum=st.sampled_from([0.0, 0.9]),
    joint=st.booleans(),
    seed=st.integers(0, 10),
)
def test_iterates_stay_feasible_for_any_lr(kind, lr, rescale, style, momentum, joint, seed):
    params = _params((3, 4), (5,), (2,), seed=seed, scale=2.0)
    make = REGION_MAKERS[kind]
    if joint:
        constraints = make(sum(p.numel() for p in params))
    else:
        constraints = [make(p.numel()) for p in params]
    opt = fw.SFW(params, constraints, lr=lr, momentum=momentum, momentum_style=style, rescale=rescale)
    opt.make_feasible_()
    assert opt.is_feasible(1e-9)
    gen = torch.Generator().manual_seed(seed)
    for step in range(4):
        _set_grads(params, gen, zero_some=step % 2 == 0)
        opt.step()
        assert opt.is_feasible(1e-9)


def test_gradient_rescaling_step_length_is_lr_times_momentum_norm():
    params = _params((4, 3), (6,), seed=1, scale=0.01)
    regions = [fw.L2Ball(p.numel(), 100.0) for p in params]  # far from the boundary: alpha is never clamped
    opt = fw.SFW(params, regions, lr=0.05, momentum=0.9, rescale="gradient")
    g1 = [torch.randn(p.shape, dtype=DT) for p in params]
    g2 = [torch.randn(p.shape, dtype=DT) for p in params]
    for grads in (g1, g2):
        before = [p.detach().clone() for p in params]
        for p, g in zip(params, grads):
            p.grad = g.clone()
        opt.step()
        for p, b in zip(params, before):
            m = opt.state[p]["momentum_buffer"]
            assert float((p.detach() - b).norm()) == pytest.approx(0.05 * float(m.norm()), rel=1e-12)


def test_gradient_rescaling_uses_the_joint_norm_for_a_global_region():
    params = _params((4, 3), (6,), seed=2, scale=0.01)
    region = fw.L2Ball(18, 100.0)
    opt = fw.SFW(params, region, lr=0.05, momentum=0.0, rescale="gradient")
    gen = torch.Generator().manual_seed(0)
    _set_grads(params, gen)
    before = torch.cat([p.detach().reshape(-1).clone() for p in params])
    gnorm = float(torch.cat([p.grad.reshape(-1) for p in params]).norm())
    opt.step()
    after = torch.cat([p.detach().reshape(-1) for p in params])
    assert float((after - before).norm()) == pytest.approx(0.05 * gnorm, rel=1e-12)


@pytest.mark.parametrize("kind", sorted(REGION_MAKERS))
def test_diameter_rescaling_step_is_at_most_lr(kind):
    params = _params((4, 3), (6,), seed=3, scale=1.0)
    regions = [REGION_MAKERS[kind](p.numel()) for p in params]
    opt = fw.SFW(params, regions, lr=0.05, momentum=0.0, rescale="diameter")
    opt.make_feasible_()
    gen = torch.Generator().manual_seed(1)
    for _ in range(5):
        _set_grads(params, gen)
        before = [p.detach().clone() for p in params]
        expected = [r.lmo(p.grad) for r, p in zip(regions, params)]
        opt.step()
        for p, b, v, r in zip(params, before, expected, regions):
            step = float((p.detach() - b).norm())
            assert step <= 0.05 * (1 + 1e-12)
            assert step == pytest.approx(min(1.0, 0.05 / r.diameter) * float((v - b).norm()), rel=1e-9, abs=1e-15)


def test_fast_gradient_and_none_rescaling_formulas():
    params = _params((5,), seed=4, scale=0.1)
    region = fw.LInfBall(5, 0.5)
    gen = torch.Generator().manual_seed(2)
    for rescale, lr in (("fast_gradient", 0.03), ("none", 0.2), ("none", 7.0)):
        p = copy.deepcopy(params)
        opt = fw.SFW(p, [region], lr=lr, momentum=0.0, rescale=rescale)
        _set_grads(p, gen)
        theta, g = p[0].detach().clone(), p[0].grad.clone()
        v = region.lmo(g)
        alpha = min(1.0, lr * float(g.norm()) / (region.diameter / 2)) if rescale == "fast_gradient" else min(1.0, lr)
        opt.step()
        assert torch.allclose(p[0].detach(), (1 - alpha) * theta + alpha * v, atol=1e-14)


@pytest.mark.parametrize("rescale", ["none", "diameter", "fast_gradient", "gradient"])
@pytest.mark.parametrize("lr", [0.003, 0.3, 50.0])
def test_l2_fused_update_matches_the_definition(rescale, lr):
    """The fused L2 path (no materialised v) equals theta + alpha (LMO(m) - theta) with alpha from section 2.1."""
    params = _params((4, 5), (3,), (2, 2), seed=12, scale=0.3)
    regions = [fw.L2Ball(p.numel(), 0.5 + 0.5 * i) for i, p in enumerate(params)]
    gen = torch.Generator().manual_seed(6)
    _set_grads(params, gen)
    params[2].grad.zero_()  # ||m|| = 0 must leave the tensor unchanged (v = 0, alpha = 0) or shrink it (v = 0)
    expected = []
    for p, r in zip(params, regions):
        theta, m = p.detach().clone(), p.grad.clone()
        v = r.lmo(m)
        factor = {
            "none": 1.0,
            "diameter": 1.0 / r.diameter,
            "fast_gradient": float(m.norm()) / (r.diameter / 2),
            "gradient": float(m.norm()) / max(float((theta - v).norm()), 1e-300),
        }[rescale]
        alpha = min(1.0, lr * factor)
        expected.append(theta + alpha * (v - theta))
    fw.frank_wolfe_update_(params, [p.grad for p in params], regions, lr=lr, rescale=rescale)
    for p, e in zip(params, expected):
        assert torch.allclose(p.detach(), e, atol=1e-14)


def test_global_region_update_matches_the_definition():
    params = _params((3, 2), (4,), seed=13)
    region = fw.LInfBall(10, 0.4)
    grads = [torch.randn(p.shape, dtype=DT) for p in params]
    theta = torch.cat([p.detach().reshape(-1) for p in params])
    m = torch.cat([g.reshape(-1) for g in grads])
    v = region.lmo(m)
    alpha = min(1.0, 0.2 * float(m.norm()) / float((theta - v).norm()))
    fw.frank_wolfe_update_(params, grads, region, lr=0.2, rescale="gradient")
    assert torch.allclose(torch.cat([p.detach().reshape(-1) for p in params]), theta + alpha * (v - theta), atol=1e-14)


def test_l2_step_is_weight_decay_plus_normalised_gradient_step():
    """Section 2.1: with an L2 ball, theta+ = (1 - alpha) theta - alpha tau m / ||m||."""
    params = _params((7,), seed=5)
    opt = fw.SFW(params, [fw.L2Ball(7, 2.0)], lr=0.4, momentum=0.0, rescale="diameter")
    params[0].grad = torch.randn(7, dtype=DT)
    theta, g = params[0].detach().clone(), params[0].grad.clone()
    opt.step()
    alpha = 0.4 / 4.0
    assert torch.allclose(params[0].detach(), (1 - alpha) * theta - alpha * 2.0 * g / g.norm(), atol=1e-15)


@pytest.mark.parametrize("style, expected", [("convex", (0.9, 0.1)), ("undampened", (0.9, 1.0))])
def test_momentum_buffer_after_two_gradients(style, expected):
    params = _params((3, 2), seed=6)
    opt = fw.SFW(params, [fw.L2Ball(6, 1.0)], lr=0.1, momentum=0.9, momentum_style=style)
    g1, g2 = torch.randn(3, 2, dtype=DT), torch.randn(3, 2, dtype=DT)
    params[0].grad = g1.clone()
    opt.step()
    assert torch.equal(opt.state[params[0]]["momentum_buffer"], g1)  # first call: m = g
    params[0].grad = g2.clone()
    opt.step()
    a, b = expected
    assert torch.allclose(opt.state[params[0]]["momentum_buffer"], a * g1 + b * g2, atol=1e-15)


def test_regions_are_indexed_per_parameter_even_without_gradients():
    """The reference code advanced its constraint index only over tensors with a gradient; here the third tensor
    keeps its own region when the second has no gradient."""
    params = _params((3,), (4,), (5,), seed=7)
    regions = [fw.L2Ball(3, 1.0), fw.L1Ball(4, 1.0), fw.LInfBall(5, 0.3)]
    opt = fw.SFW(params, regions, lr=0.5, momentum=0.0, rescale="none")
    params[0].grad = torch.randn(3, dtype=DT)
    params[2].grad = torch.randn(5, dtype=DT)
    untouched = params[1].detach().clone()
    theta2, g2 = params[2].detach().clone(), params[2].grad.clone()
    opt.step()
    assert torch.equal(params[1].detach(), untouched)
    assert torch.allclose(params[2].detach(), 0.5 * theta2 + 0.5 * regions[2].lmo(g2), atol=1e-15)


def test_region_validation():
    params = _params((3,), (4,))
    with pytest.raises(ValueError):
        fw.SFW(params, [fw.L2Ball(3)])  # one region missing
    with pytest.raises(ValueError):
        fw.SFW(params, [fw.L2Ball(3), fw.L2Ball(5)])  # size mismatch
    with pytest.raises(ValueError):
        fw.SFW(params)  # no regions at all
    with pytest.raises(ValueError):
        fw.SFW(params, [fw.L2Ball(3), fw.L2Ball(4)], rescale="weird")
    mapping = {params[0]: fw.L2Ball(3), params[1]: fw.L1Ball(4)}
    opt = fw.SFW(params, mapping)
    assert [type(r) for r in opt.param_groups[0]["regions"]] == [fw.L2Ball, fw.L1Ball]


# ---------------------------------------------------------------------------------------------------------------------
# convergence on convex problems with known optimum
# ---------------------------------------------------------------------------------------------------------------------


def _least_squares(seed=0, m=30, n=8):
    gen = torch.Generator().manual_seed(seed)
    A = torch.randn(m, n, generator=gen, dtype=DT)
    b = A @ torch.tensor([1.5, -2.0, 0.0, 0.5, 0.0, 0.0, 1.0, 0.0], dtype=DT)[:n] + 0.1 * torch.randn(
        m, generator=gen, dtype=DT
    )
    return A, b


def _reference_optimum(A, b, region, iters=4000):
    """Accelerated projected gradient (FISTA) with the exact projection -- an independent solver."""
    L = float(torch.linalg.matrix_norm(A, ord=2)) ** 2
    x = y = torch.zeros(A.shape[1], dtype=DT)
    t = 1.0
    for _ in range(iters):
        x_new = region.project(y - A.T @ (A @ y - b) / L)
        t_new = (1 + math.sqrt(1 + 4 * t * t)) / 2
        y = x_new + (t - 1) / t_new * (x_new - x)
        x, t = x_new, t_new
    return x


def test_frank_wolfe_solves_a_projection_onto_the_l1_ball():
    """min 1/2 ||x - c||^2 over ||x||_1 <= 1 with c = (2, -1.5, 0.2, 0): optimum (0.75, -0.25, 0, 0)."""
    c = torch.tensor([2.0, -1.5, 0.2, 0.0], dtype=DT)
    x = nn.Parameter(torch.zeros(4, dtype=DT))
    opt = fw.SFW([x], [fw.L1Ball(4, 1.0)], lr=1.0, momentum=0.0, rescale="none")
    for t in range(3000):
        opt.param_groups[0]["lr"] = 2.0 / (t + 2)  # the classic open-loop step size
        x.grad = x.detach() - c
        opt.step()
    assert torch.allclose(x.detach(), torch.tensor([0.75, -0.25, 0.0, 0.0], dtype=DT), atol=2e-3)


@pytest.mark.parametrize("kind", ["l1", "l2", "ksparse"])
def test_sfw_least_squares_converges_to_the_constrained_optimum(kind):
    A, b = _least_squares()
    region = {"l1": fw.L1Ball(8, 2.5), "l2": fw.L2Ball(8, 2.0), "ksparse": fw.KSparsePolytope(8, 2, 1.2)}[kind]
    x_star = _reference_optimum(A, b, region)

    def f(x):
        return 0.5 * float((A @ x - b).square().sum())

    x = nn.Parameter(torch.zeros(8, dtype=DT))
    opt = fw.SFW([x], [region], lr=1.0, momentum=0.0, rescale="none")
    for t in range(4000):
        opt.param_groups[0]["lr"] = 2.0 / (t + 2)
        x.grad = A.T @ (A @ x.detach() - b)
        opt.step()
    grad = A.T @ (A @ x.detach() - b)
    gap = float(grad @ (x.detach() - region.lmo(grad)))  # Frank-Wolfe gap >= f(x) - f*
    assert f(x.detach()) - f(x_star) <= 2e-3 * f(torch.zeros(8, dtype=DT))
    assert gap >= f(x.detach()) - f(x_star) - 1e-9
    assert float((x.detach() - x_star).norm()) <= 0.05 * (1 + float(x_star.norm()))


def test_projected_sgd_least_squares_matches_reference():
    A, b = _least_squares(seed=1)
    region = fw.L1Ball(8, 2.0)
    x_star = _reference_optimum(A, b, region)
    x = nn.Parameter(torch.zeros(8, dtype=DT))
    L = float(torch.linalg.matrix_norm(A, ord=2)) ** 2
    opt = fw.ProjectedSGD([x], [region], lr=1.0 / L)
    for _ in range(3000):
        x.grad = A.T @ (A @ x.detach() - b)
        opt.step()
        assert region.contains(x.detach(), 1e-12)
    assert torch.allclose(x.detach(), x_star, atol=1e-6)


def test_projected_sgd_equals_sgd_then_projection():
    params = _params((4,), (3,), seed=8, scale=1.0)
    ref = [p.detach().clone() for p in params]
    regions = [fw.L1Ball(4, 0.5), fw.LInfBall(3, 0.2)]
    opt = fw.ProjectedSGD(params, regions, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    ref_params = [nn.Parameter(r) for r in ref]
    sgd = torch.optim.SGD(ref_params, lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=True)
    gen = torch.Generator().manual_seed(3)
    for _ in range(5):
        _set_grads(params, gen)
        for rp, p in zip(ref_params, params):
            rp.grad = p.grad.clone()
        opt.step()
        sgd.step()
        with torch.no_grad():
            for rp, r in zip(ref_params, regions):
                rp.copy_(r.project(rp))
        for p, rp in zip(params, ref_params):
            assert torch.allclose(p.detach(), rp.detach(), atol=1e-14)


# ---------------------------------------------------------------------------------------------------------------------
# AdaSFW
# ---------------------------------------------------------------------------------------------------------------------


def test_adasfw_single_inner_step_formula():
    params = _params((6,), seed=9)
    region = fw.L1Ball(6, 0.4)
    opt = fw.AdaSFW(params, [region], lr=0.01, inner_steps=1, momentum=0.9)
    params[0].grad = torch.randn(6, dtype=DT)
    theta, m = params[0].detach().clone(), params[0].grad.clone()
    opt.step()
    H = m.abs() + 1e-8  # s = m * m after the first call
    v = region.lmo(m)  # d = m at y = theta
    w = theta - v
    gamma = min(1.0, max(0.0, 0.01 * float(m @ w) / float((H * w) @ w)))
    assert torch.allclose(params[0].detach(), theta - gamma * w, atol=1e-15)


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["l1", "l2", "linf", "ksparse", "knorm"]),
    lr=st.floats(1e-4, 1e3),
    inner=st.integers(1, 3),
    joint=st.booleans(),
)
def test_adasfw_iterates_stay_feasible(kind, lr, inner, joint):
    params = _params((3, 3), (4,), seed=10, scale=3.0)
    make = REGION_MAKERS[kind]
    constraints = make(13) if joint else [make(p.numel()) for p in params]
    opt = fw.AdaSFW(params, constraints, lr=lr, inner_steps=inner)
    opt.make_feasible_()
    gen = torch.Generator().manual_seed(4)
    for _ in range(3):
        _set_grads(params, gen)
        opt.step()
        assert opt.is_feasible(1e-9)


def test_adasfw_decreases_least_squares():
    A, b = _least_squares(seed=2)
    region = fw.L2Ball(8, 2.0)
    x_star = _reference_optimum(A, b, region)

    def f(x):
        return 0.5 * float((A @ x - b).square().sum())

    x = nn.Parameter(torch.zeros(8, dtype=DT))
    opt = fw.AdaSFW([x], [region], lr=0.5, inner_steps=5, momentum=0.0)
    for _ in range(1500):
        x.grad = A.T @ (A @ x.detach() - b)
        opt.step()
    assert f(x.detach()) - f(x_star) <= 1e-2 * (f(torch.zeros(8, dtype=DT)) - f(x_star))


# ---------------------------------------------------------------------------------------------------------------------
# reproducibility and checkpoints
# ---------------------------------------------------------------------------------------------------------------------


def _train_mlp(seed, steps=15, opt_state=None):
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
    groups = fw.constraints_for(model, kind="l2", width=10.0, draws=10)
    fw.make_feasible_(groups)
    opt = fw.SFW(groups, lr=0.1, rescale="gradient")
    x, y = torch.randn(32, 8), torch.randint(0, 3, (32,))
    trace = []
    for _ in range(steps):
        idx = torch.randperm(32)[:16]
        opt.zero_grad()
        nn.functional.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()
        trace.append(torch.cat([p.detach().reshape(-1).clone() for p in model.parameters()]))
    return model, opt, trace


def test_same_seed_same_iterates():
    _, opt, a = _train_mlp(0)
    _, _, b = _train_mlp(0)
    _, _, c = _train_mlp(1)
    assert all(torch.equal(u, v) for u, v in zip(a, b))
    assert not torch.equal(a[-1], c[-1])
    assert opt.is_feasible(1e-5)


def test_state_dict_round_trip_continues_identically():
    params = _params((5,), (3,), seed=11)
    regions = [fw.L2Ball(5, 1.0), fw.KSparsePolytope(3, 2, 0.5)]
    opt = fw.SFW(params, regions, lr=0.1, momentum=0.9, rescale="gradient")
    gen = torch.Generator().manual_seed(5)
    grads = [[torch.randn(p.shape, generator=gen, dtype=DT) for p in params] for _ in range(4)]
    for g in grads[:2]:
        for p, gi in zip(params, g):
            p.grad = gi.clone()
        opt.step()
    buf = io.BytesIO()
    torch.save({"opt": opt.state_dict(), "params": [p.detach().clone() for p in params]}, buf)
    buf.seek(0)
    saved = torch.load(buf, weights_only=False)
    clone = [nn.Parameter(t) for t in saved["params"]]
    opt2 = fw.SFW(clone, regions, lr=0.1, momentum=0.9, rescale="gradient")
    opt2.load_state_dict(saved["opt"])
    for g in grads[2:]:
        for p, q, gi in zip(params, clone, g):
            p.grad, q.grad = gi.clone(), gi.clone()
        opt.step()
        opt2.step()
    assert all(torch.equal(p.detach(), q.detach()) for p, q in zip(params, clone))


# ---------------------------------------------------------------------------------------------------------------------
# variance-reduced variants (section 2.3)
# ---------------------------------------------------------------------------------------------------------------------


class _Regression:
    """Linear least squares with an analytic gradient, to check the estimators against their formulas."""

    def __init__(self, seed=0, n=12, d=5):
        gen = torch.Generator().manual_seed(seed)
        self.X = torch.randn(n, d, generator=gen, dtype=DT)
        self.y = torch.randn(n, generator=gen, dtype=DT)
        self.w = nn.Parameter(torch.zeros(d, dtype=DT))
        self.n = n

    def grad(self, w, idx):
        X, y = self.X[idx], self.y[idx]
        return X.T @ (X @ w - y) / len(idx)

    def closure(self, idx):
        def fn():
            self.w.grad = None  # a closure zeroes the gradients, as torch.optim expects
            X, y = self.X[idx], self.y[idx]
            loss = 0.5 * (X @ self.w - y).square().mean()
            loss.backward()
            return loss

        return fn


BATCHES = [torch.tensor(b) for b in ([0, 1, 2], [3, 4, 5], [6, 7, 8], [9, 10, 11], [0, 5, 10], [2, 4, 6])]


def _run_vr(opt_factory, exact=False):
    prob = _Regression()
    opt = opt_factory(prob)
    iterates, estimates = [], []
    full = torch.arange(prob.n)
    for t, idx in enumerate(BATCHES):
        iterates.append(prob.w.detach().clone())
        opt.step(prob.closure(full if exact else idx), batch_size=len(idx))
        estimates.append(opt.gradient_estimate()[0])
    iterates.append(prob.w.detach().clone())
    return prob, opt, iterates, estimates


def _full_closure(prob):
    return prob.closure(torch.arange(prob.n))


@pytest.mark.parametrize("name", ["svrf", "spider", "orgfw"])
def test_variance_reduced_variants_equal_deterministic_fw_with_exact_gradients(name):
    """With full-batch closures every estimator equals the true gradient, so the iterates are those of SFW without
    momentum."""
    factories = {
        "svrf": lambda p: fw.SVRF(
            [p.w],
            [fw.L1Ball(5, 1.0)],
            full_gradient=_full_closure(p),
            full_batch_size=p.n,
            snapshot_every=4,
            lr=0.3,
            rescale="gradient",
        ),
        "spider": lambda p: fw.SpiderFW(
            [p.w],
            [fw.L1Ball(5, 1.0)],
            large_gradient=_full_closure(p),
            large_batch_size=p.n,
            period=3,
            lr=0.3,
            rescale="gradient",
        ),
        "orgfw": lambda p: fw.ORGFW([p.w], [fw.L1Ball(5, 1.0)], rho=0.3, lr=0.3, rescale="gradient"),
    }
    prob, _, iterates, _ = _run_vr(factories[name], exact=True)
    ref = _Regression()
    sfw = fw.SFW([ref.w], [fw.L1Ball(5, 1.0)], lr=0.3, momentum=0.0, rescale="gradient")
    for _ in BATCHES:
        sfw.step(_full_closure(ref))
    assert torch.allclose(prob.w.detach(), ref.w.detach(), atol=1e-12)


def test_svrf_estimator_and_counter():
    prob, opt, it, est = _run_vr(
        lambda p: fw.SVRF(
            [p.w], [fw.L2Ball(5, 1.0)], full_gradient=_full_closure(p), full_batch_size=p.n, snapshot_every=4, lr=0.2
        )
    )
    full = torch.arange(prob.n)
    for t, idx in enumerate(BATCHES):
        snap = it[(t // 4) * 4]
        expected = prob.grad(it[t], idx) - prob.grad(snap, idx) + prob.grad(snap, full)
        assert torch.allclose(est[t], expected, atol=1e-12), t
    # snapshots at t = 0 and t = 4 (n each), two minibatch gradients on the other four steps
    assert opt.grad_evals == 2 * prob.n + 4 * 2 * 3


def test_spider_fw_estimator_and_counter():
    prob, opt, it, est = _run_vr(
        lambda p: fw.SpiderFW(
            [p.w], [fw.L2Ball(5, 1.0)], large_gradient=_full_closure(p), large_batch_size=p.n, period=3, lr=0.2
        )
    )
    full = torch.arange(prob.n)
    for t, idx in enumerate(BATCHES):
        if t % 3 == 0:
            expected = prob.grad(it[t], full)
        else:
            expected = est[t - 1] + prob.grad(it[t], idx) - prob.grad(it[t - 1], idx)
        assert torch.allclose(est[t], expected, atol=1e-12), t
    assert opt.grad_evals == 2 * prob.n + 4 * 2 * 3


def test_orgfw_estimator_and_counter():
    rho = lambda t: 1.0 / (t + 1)  # noqa: E731
    prob, opt, it, est = _run_vr(lambda p: fw.ORGFW([p.w], [fw.L2Ball(5, 1.0)], rho=rho, lr=0.2))
    for t, idx in enumerate(BATCHES):
        if t == 0:
            expected = prob.grad(it[0], idx)
        else:
            expected = prob.grad(it[t], idx) + (1 - rho(t + 1)) * (est[t - 1] - prob.grad(it[t - 1], idx))
        assert torch.allclose(est[t], expected, atol=1e-12), t
    assert opt.grad_evals == 3 + 5 * 2 * 3
    assert fw.orgfw_rho(1) == 1.0 and fw.orgfw_rho(8) == pytest.approx(0.25)


def test_variance_reduced_step_returns_current_loss_and_restores_parameters():
    prob = _Regression()
    opt = fw.ORGFW([prob.w], [fw.L2Ball(5, 1.0)], lr=0.2, batch_size=3)
    opt.step(prob.closure(BATCHES[0]))
    w = prob.w.detach().clone()
    idx = BATCHES[1]
    loss = opt.step(prob.closure(idx))
    assert float(loss.detach()) == pytest.approx(0.5 * float((prob.X[idx] @ w - prob.y[idx]).square().mean()))
    assert torch.allclose(prob.w.grad, prob.grad(w, idx))  # .grad holds the gradient at the current iterate
    with pytest.raises(ValueError):
        fw.ORGFW([nn.Parameter(torch.zeros(2))], [fw.L2Ball(2)]).step(lambda: None)  # no batch size to count


def test_sfw_counts_gradient_evaluations_when_told():
    prob = _Regression()
    opt = fw.SFW([prob.w], [fw.L2Ball(5, 1.0)])
    for idx in BATCHES:
        opt.step(prob.closure(idx), batch_size=len(idx))
    assert opt.grad_evals == 3 * len(BATCHES)


# ---------------------------------------------------------------------------------------------------------------------
# benchmark plumbing
# ---------------------------------------------------------------------------------------------------------------------


def test_step_time_ratio_reports_consistent_medians():
    res = fw.step_time_ratio(repeats=5, warmup=1, batch_size=16)
    assert res["n_params"] == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert res["step_ratio"] == pytest.approx(res["sfw_step_s"] / res["sgd_step_s"])
    assert res["iteration_ratio"] == pytest.approx(res["sfw_iter_s"] / res["sgd_iter_s"])
    assert 0 < res["sgd_step_s"] < res["sgd_iter_s"] and 0 < res["sfw_step_s"] < res["sfw_iter_s"]
