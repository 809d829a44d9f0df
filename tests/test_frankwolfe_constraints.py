"""Feasible regions of the ``sfw`` chapter: LMOs, diameters, gauges, projections and sizing (brief sections 2.4,
2.5 and 5)."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from companion import frankwolfe as fw
from companion.frankwolfe import constraints as C
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

DT = torch.float64
G = torch.tensor([3.0, -1.0, 2.0, 0.5], dtype=DT)


def t(*values: float) -> torch.Tensor:
    return torch.tensor(values, dtype=DT)


# ---------------------------------------------------------------------------------------------------------------------
# worked example of brief section 5: g = (3, -1, 2, 0.5), tau = 1, n = 4
# ---------------------------------------------------------------------------------------------------------------------

WORKED = [
    (fw.L1Ball(4), t(-1, 0, 0, 0), -3.0),
    (fw.LInfBall(4), t(-1, 1, -1, -1), -6.5),
    (fw.L2Ball(4), t(-0.7947, 0.2649, -0.5298, -0.1325), -3.7749),
    (fw.LpBall(4, p=3), t(-0.8213, 0.4742, -0.6706, -0.3353), -4.4471),
    (fw.KSparsePolytope(4, k=1), t(-1, 0, 0, 0), -3.0),
    (fw.KSparsePolytope(4, k=2), t(-1, 0, -1, 0), -5.0),
    (fw.KSparsePolytope(4, k=4), t(-1, 1, -1, -1), -6.5),
    (fw.KNormBall(4, k=1), t(-1, 1, -1, -1), -6.5),
    (fw.KNormBall(4, k=2), t(-0.5, 0.5, -0.5, -0.5), -3.25),
    (fw.KNormBall(4, k=3), t(-1, 0, 0, 0), -3.0),
    (fw.KNormBall(4, k=4), t(-1, 0, 0, 0), -3.0),
    (fw.UnitSimplex(4), t(0, 1, 0, 0), -1.0),
    (fw.ProbabilitySimplex(4), t(0, 1, 0, 0), -1.0),
    (fw.Permutahedron(4), t(1, 4, 2, 3), 4.5),
]


@pytest.mark.parametrize("region, expected, value", WORKED, ids=[repr(w[0]) for w in WORKED])
def test_worked_lmo_example(region, expected, value):
    v = region.lmo(G)
    assert torch.allclose(v, expected, atol=5e-5)
    assert float(G @ v) == pytest.approx(value, abs=5e-5)


def test_worked_example_closed_forms():
    """The table's closed forms: ||g||_2 = 3.7749, <g, LMO_L3(g)> = -||g||_{1.5}, ||LMO_L3(g)||_3 = 1, and the
    K-norm alternatives quoted for K = 3, 4 (cube vertex values -2.1667 / -1.625)."""
    assert float(torch.linalg.vector_norm(G)) == pytest.approx(3.7749, abs=5e-5)
    v3 = fw.LpBall(4, p=3).lmo(G)
    assert float(G @ v3) == pytest.approx(-float(torch.linalg.vector_norm(G, ord=1.5)), abs=1e-12)
    assert float(torch.linalg.vector_norm(v3, ord=3)) == pytest.approx(1.0, abs=1e-12)
    for k, cube_value in [(3, -2.1667), (4, -1.625)]:
        cube = -torch.sign(G) / k
        assert float(G @ cube) == pytest.approx(cube_value, abs=5e-5)


@pytest.mark.parametrize(
    "region, diameter",
    [
        (fw.L2Ball(4), 2.0),
        (fw.L1Ball(4), 2.0),
        (fw.LInfBall(4), 4.0),
        (fw.LpBall(4, p=4), 2 * 4**0.25),
        (fw.KSparsePolytope(4, k=2), 2 * math.sqrt(2)),
        (fw.KNormBall(4, k=2), 2.0),
        (fw.UnitSimplex(4), math.sqrt(2)),
        (fw.ProbabilitySimplex(4), math.sqrt(2)),
    ],
)
def test_diameters_n4(region, diameter):
    assert region.diameter == pytest.approx(diameter, rel=1e-12)


def test_diameters_n4_table_values():
    """The brief's rounded values: L4 and K-sparse (K = 2) both 2.8284, simplices sqrt(2) = 1.4142."""
    assert round(fw.LpBall(4, p=4).diameter, 4) == 2.8284
    assert round(fw.KSparsePolytope(4, k=2).diameter, 4) == 2.8284
    assert round(fw.UnitSimplex(4).diameter, 4) == 1.4142


def _vertices(region) -> list[torch.Tensor]:
    """All vertices of a polytope region (small n) -- the exact diameter is the largest vertex distance."""
    n, tau = region.n, region.radius
    if isinstance(region, fw.KSparsePolytope):
        out = []
        for support in itertools.combinations(range(n), region.k):
            for signs in itertools.product([-1.0, 1.0], repeat=region.k):
                v = torch.zeros(n, dtype=DT)
                v[list(support)] = tau * torch.tensor(signs, dtype=DT)
                out.append(v)
        return out
    if isinstance(region, fw.KNormBall):
        return _vertices(fw.L1Ball(n, tau)) + _vertices(fw.LInfBall(n, tau / region.k))
    if isinstance(region, fw.L1Ball):
        return [s * tau * torch.eye(n, dtype=DT)[i] for i in range(n) for s in (-1.0, 1.0)]
    if isinstance(region, fw.LInfBall):
        return [tau * torch.tensor(s, dtype=DT) for s in itertools.product([-1.0, 1.0], repeat=n)]
    if isinstance(region, fw.UnitSimplex):
        return [torch.zeros(n, dtype=DT)] + [tau * torch.eye(n, dtype=DT)[i] for i in range(n)]
    if isinstance(region, fw.ProbabilitySimplex):
        return [tau * torch.eye(n, dtype=DT)[i] for i in range(n)]
    if isinstance(region, fw.Permutahedron):
        return [tau * torch.tensor(p, dtype=DT) for p in itertools.permutations(range(1, n + 1))]
    raise TypeError(region)


POLYTOPES = [
    fw.L1Ball(4, 1.5),
    fw.LInfBall(3, 0.5),
    fw.KSparsePolytope(4, 2, 0.7),
    fw.KSparsePolytope(5, 3),
    fw.KNormBall(4, 2),
    fw.KNormBall(5, 3, 2.0),
    fw.KNormBall(9, 2),
    fw.UnitSimplex(4, 2.0),
    fw.ProbabilitySimplex(3, 1.5),
    fw.Permutahedron(4),
    fw.Permutahedron(3, 0.5),
]


@pytest.mark.parametrize("region", POLYTOPES, ids=repr)
def test_polytope_diameter_is_max_vertex_distance(region):
    vs = torch.stack(_vertices(region))
    assert float(torch.cdist(vs, vs).max()) == pytest.approx(region.diameter, rel=1e-12)


@pytest.mark.parametrize("region", POLYTOPES, ids=repr)
def test_lmo_equals_best_vertex(region):
    """Brute force over all vertices: the oracle attains min_v <g, v>."""
    gen = torch.Generator().manual_seed(0)
    vs = torch.stack(_vertices(region))
    for _ in range(20):
        g = torch.randn(region.n, generator=gen, dtype=DT)
        assert float(g @ region.lmo(g)) == pytest.approx(float((vs @ g).min()), abs=1e-12)


def test_lp_diameter_exact_for_p_below_two():
    """For 1 < p < 2 the farthest points are the +-tau e_i (diameter 2 tau), not 2 tau n^(1/2-1/p)."""
    region = fw.LpBall(9, p=1.5, radius=2.0)
    assert region.diameter == pytest.approx(4.0)
    assert fw.LpBall(9, p=4, radius=2.0).diameter == pytest.approx(4.0 * 9**0.25)


# ---------------------------------------------------------------------------------------------------------------------
# property tests for every region
# ---------------------------------------------------------------------------------------------------------------------

FACTORIES = {
    "l1": lambda n: fw.L1Ball(n, 1.3),
    "l2": lambda n: fw.L2Ball(n, 0.7),
    "l1.5": lambda n: fw.LpBall(n, 1.5, 1.1),
    "l3": lambda n: fw.LpBall(n, 3.0, 0.9),
    "linf": lambda n: fw.LInfBall(n, 0.5),
    "linf0": lambda n: fw.LInfBall(n, 0.5, zero_gradient="zero"),
    "ksparse": lambda n: fw.KSparsePolytope(n, max(1, n // 2), 0.8),
    "ksparse_frac": lambda n: fw.KSparsePolytope(n, 0.3, 1.2),
    "knorm": lambda n: fw.KNormBall(n, max(1, n // 3), 1.0),
    "knorm_n": lambda n: fw.KNormBall(n, n, 2.0),
    "unit_simplex": lambda n: fw.UnitSimplex(n, 1.5),
    "probability_simplex": lambda n: fw.ProbabilitySimplex(n, 0.8),
    "permutahedron": lambda n: fw.Permutahedron(n, 0.3),
}

vectors = st.integers(1, 9).flatmap(
    lambda n: st.lists(st.floats(-10, 10, allow_nan=False, width=64), min_size=n, max_size=n)
)
gradients = st.integers(1, 9).flatmap(
    lambda n: st.lists(st.one_of(st.just(0.0), st.floats(-10, 10, allow_nan=False, width=64)), min_size=n, max_size=n)
)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_lmo_is_optimal_and_feasible(name, data):
    """<g, LMO(g)> <= <g, x> for feasible x (made by make_feasible and by project), and LMO(g) is feasible."""
    g_list = data.draw(gradients)
    n = len(g_list)
    x_list = data.draw(st.lists(st.floats(-10, 10, allow_nan=False, width=64), min_size=n, max_size=n))
    region = FACTORIES[name](n)
    g, raw = torch.tensor(g_list, dtype=DT), torch.tensor(x_list, dtype=DT)
    v = region.lmo(g)
    assert v.shape == g.shape and torch.isfinite(v).all()
    assert region.contains(v, tol=1e-9)
    for x in (region.make_feasible(raw), region.project(raw)):
        assert region.contains(x, tol=1e-9)
        assert float(g @ v) <= float(g @ x) + 1e-9 * (1 + float(g.abs().sum()) * region.diameter)


@pytest.mark.parametrize("name", sorted(FACTORIES))
@settings(max_examples=40, deadline=None)
@given(x_list=vectors)
def test_projection_variational_inequality(name, x_list):
    """P(x) is the projection iff <x - P(x), y - P(x)> <= 0 for all feasible y; the maximum over y is attained at
    y = LMO(P(x) - x), which makes this an exact certificate.  Also: P is idempotent and feasible."""
    region = FACTORIES[name](len(x_list))
    x = torch.tensor(x_list, dtype=DT)
    p = region.project(x)
    assert region.contains(p, tol=1e-9)
    r = x - p
    certificate = float(r @ (region.lmo(-r) - p))
    assert certificate <= 1e-9 * (1.0 + float(r.norm()) * (region.diameter + float(p.norm())))
    assert torch.allclose(region.project(p), p, atol=1e-9)


@pytest.mark.parametrize("region", POLYTOPES, ids=repr)
def test_projection_against_all_vertices(region):
    """For a polytope, the variational inequality over all vertices certifies the projection."""
    gen = torch.Generator().manual_seed(1)
    vs = torch.stack(_vertices(region))
    for _ in range(10):
        x = 3 * torch.randn(region.n, generator=gen, dtype=DT)
        p = region.project(x)
        assert float(((vs - p) @ (x - p)).max()) <= 1e-10


def test_projection_matches_closed_forms():
    x = t(3.0, -4.0, 0.5)
    assert torch.allclose(fw.L2Ball(3, 1.0).project(x), x / float(x.norm()))
    assert torch.allclose(fw.LInfBall(3, 1.0).project(x), t(1.0, -1.0, 0.5))
    # L1: soft threshold with lambda = 1.25 for (2, -1.5, 0.2, 0) and tau = 1
    assert torch.allclose(fw.L1Ball(4, 1.0).project(t(2.0, -1.5, 0.2, 0.0)), t(0.75, -0.25, 0.0, 0.0))
    # probability simplex: the constant vector goes to the barycentre
    assert torch.allclose(fw.ProbabilitySimplex(4, 2.0).project(t(7, 7, 7, 7)), t(0.5, 0.5, 0.5, 0.5))
    # permutahedron: a constant vector goes to the centre (n+1)/2
    assert torch.allclose(fw.Permutahedron(4).project(t(9, 9, 9, 9)), t(2.5, 2.5, 2.5, 2.5))


def test_lmo_of_zero_gradient_is_finite_and_feasible():
    for name, make in FACTORIES.items():
        region = make(5)
        v = region.lmo(torch.zeros(5, dtype=DT))
        assert torch.isfinite(v).all() and region.contains(v, tol=1e-12), name
    for region in (
        fw.L1Ball(5),
        fw.L2Ball(5),
        fw.LpBall(5, 3),
        fw.KSparsePolytope(5, 2),
        fw.KNormBall(5, 2),
        fw.UnitSimplex(5),
        fw.LInfBall(5, zero_gradient="zero"),
    ):
        assert torch.equal(region.lmo(torch.zeros(5, dtype=DT)), torch.zeros(5, dtype=DT))


def test_lmo_returns_fresh_tensors():
    """Contract used by the optimizers, which overwrite LMO outputs in place."""
    g = torch.randn(2, 6, dtype=DT)
    for name, make in FACTORIES.items():
        region = make(12)
        for v in [region.lmo(g)] + type(region).lmo_batch([region], [g]) + region.lmo_joint([g[0], g[1]]):
            assert v.untyped_storage().data_ptr() != g.untyped_storage().data_ptr(), name


def test_lmo_keeps_shape_and_dtype():
    g = torch.randn(3, 4, 2)
    for make in FACTORIES.values():
        v = make(24).lmo(g)
        assert v.shape == g.shape and v.dtype == g.dtype


def test_lmo_batch_equals_single_lmos():
    gen = torch.Generator().manual_seed(3)
    grads = [torch.randn(s, generator=gen) for s in [(4, 3), (7,), (2, 2, 2)]]
    grads[1][2] = 0.0
    for make in (
        lambda n, r: fw.L2Ball(n, r),
        lambda n, r: fw.LInfBall(n, r),
        lambda n, r: fw.LInfBall(n, r, zero_gradient="zero"),
        lambda n, r: fw.L1Ball(n, r),
    ):
        regions = [make(g.numel(), 0.5 + i) for i, g in enumerate(grads)]
        batch = type(regions[0]).lmo_batch(regions, grads)
        for r, g, v in zip(regions, grads, batch):
            assert torch.allclose(v, r.lmo(g), atol=1e-6)


# ---------------------------------------------------------------------------------------------------------------------
# zero-gradient conventions, K-sparse and K-norm corner cases
# ---------------------------------------------------------------------------------------------------------------------


def test_linf_zero_gradient_conventions():
    g = t(2.0, 0.0, -1.0, 0.0)
    assert torch.equal(fw.LInfBall(4, 0.5).lmo(g), t(-0.5, 0.5, 0.5, 0.5))  # paper-1 PyTorch: +tau
    assert torch.equal(fw.LInfBall(4, 0.5, zero_gradient="zero").lmo(g), t(-0.5, 0.0, 0.5, 0.0))  # compression-aware
    with pytest.raises(ValueError):
        fw.LInfBall(4, zero_gradient="random")


@settings(max_examples=60, deadline=None)
@given(
    g_list=st.lists(
        st.floats(-10, 10, allow_nan=False, width=64).filter(lambda v: abs(v) > 1e-6),
        min_size=1,
        max_size=9,
        unique_by=abs,
    ),
    tau=st.floats(0.1, 5.0),
)
def test_ksparse_interpolates_between_l1_and_cube(g_list, tau):
    g = torch.tensor(g_list, dtype=DT)
    n = g.numel()
    assert torch.equal(fw.KSparsePolytope(n, 1, tau).lmo(g), fw.L1Ball(n, tau).lmo(g))
    assert torch.equal(fw.KSparsePolytope(n, n, tau).lmo(g), fw.LInfBall(n, tau).lmo(g))
    assert torch.equal(fw.KSparsePolytope(n, 1.0, tau).lmo(g), fw.LInfBall(n, tau).lmo(g))


@settings(max_examples=60, deadline=None)
@given(
    g_list=st.lists(
        st.floats(-10, 10, allow_nan=False, width=64).filter(lambda v: abs(v) > 1e-6),
        min_size=1,
        max_size=9,
        unique_by=abs,
    ),
    data=st.data(),
    tau=st.floats(0.1, 5.0),
)
def test_knorm_ball_pr31_properties(g_list, data, tau):
    """FrankWolfe.jl PR #31 style: the LMO is the better of the L1 and cube candidates, and the sum of the K largest
    |v_i| equals tau; K = 1 is the hypercube B_inf(tau), K = n the L1 ball."""
    g = torch.tensor(g_list, dtype=DT)
    n = g.numel()
    k = data.draw(st.integers(1, n))
    region = fw.KNormBall(n, k, tau)
    v = region.lmo(g)
    l1 = fw.L1Ball(n, tau).lmo(g)
    cube = fw.LInfBall(n, tau / k).lmo(g)
    assert float(g @ v) == pytest.approx(min(float(g @ l1), float(g @ cube)), abs=1e-12)
    assert torch.equal(v, l1) or torch.equal(v, cube)
    assert float(torch.topk(v.abs(), k).values.sum()) == pytest.approx(tau, rel=1e-12)
    x = torch.tensor(data.draw(st.lists(st.floats(-5, 5, width=64), min_size=n, max_size=n)), dtype=DT)
    assert fw.KNormBall(n, 1, tau).gauge(x) == pytest.approx(fw.LInfBall(n, tau).gauge(x), rel=1e-12)
    assert fw.KNormBall(n, n, tau).gauge(x) == pytest.approx(fw.L1Ball(n, tau).gauge(x), rel=1e-12)
    assert torch.equal(fw.KNormBall(n, 1, tau).lmo(g), fw.LInfBall(n, tau).lmo(g))
    assert torch.equal(fw.KNormBall(n, n, tau).lmo(g), fw.L1Ball(n, tau).lmo(g))


def test_ksparse_gauge_and_knorm_duality():
    x = t(0.5, -2.0, 1.0, 0.25)
    assert fw.KSparsePolytope(4, 2).gauge(x) == pytest.approx(max(2.0, 3.75 / 2))
    assert fw.KNormBall(4, 2).gauge(x) == pytest.approx(3.0)
    # support function of P_K(1) is the top-K norm: max_{v in P_K} <x, v> = -<x, LMO(-x)>
    assert float(x @ fw.KSparsePolytope(4, 2).lmo(-x)) == pytest.approx(3.0)


@pytest.mark.parametrize(
    "k, n, expected",
    [(1, 10, 1), (3, 10, 3), (0.3, 10, 3), (0.29, 100, 29), (1.0, 7, 7), (0.01, 10, 1), (np.int64(2), 5, 2)],
)
def test_resolve_k(k, n, expected):
    assert fw.resolve_k(k, n) == expected


@pytest.mark.parametrize("k", [0, 11, 1.5, -0.2, True, "3"])
def test_resolve_k_rejects(k):
    with pytest.raises((ValueError, TypeError)):
        fw.resolve_k(k, 10)


# ---------------------------------------------------------------------------------------------------------------------
# gauge rescaling vs projection
# ---------------------------------------------------------------------------------------------------------------------


def test_make_feasible_l2_halves_a_point_at_twice_the_radius():
    tau = 0.8
    x = t(3.0, -4.0, 0.0) * (2 * tau / 5.0)  # ||x|| = 2 tau
    region = fw.L2Ball(3, tau)
    assert torch.allclose(region.make_feasible(x), x / 2, atol=1e-15)
    inside = x / 4
    assert torch.equal(region.make_feasible(inside), inside)


def test_make_feasible_is_gauge_rescaling_not_projection():
    x = t(2.0, -1.5, 0.2, 0.0)
    region = fw.L1Ball(4, 1.0)
    assert torch.allclose(region.make_feasible(x), x / 3.7)
    assert not torch.allclose(region.make_feasible(x), region.project(x))
    cube = fw.LInfBall(4, 1.0)
    assert torch.allclose(cube.make_feasible(x), x / 2.0)
    assert torch.equal(cube.make_feasible(x) == 0, x == 0)  # zeros stay zero


def test_make_feasible_on_sets_without_the_origin():
    x = t(1.0, 3.0, 0.0)
    assert torch.allclose(fw.ProbabilitySimplex(3, 2.0).make_feasible(x), t(0.5, 1.5, 0.0))
    neg = t(-1.0, 3.0, 0.5)
    assert torch.allclose(fw.ProbabilitySimplex(3, 2.0).make_feasible(neg), fw.ProbabilitySimplex(3, 2.0).project(neg))
    assert torch.allclose(fw.UnitSimplex(3, 2.0).make_feasible(x), x / 2)
    assert fw.Permutahedron(3).contains(fw.Permutahedron(3).make_feasible(x))


def test_permutahedron_membership_is_majorisation():
    region = fw.Permutahedron(3)
    assert region.contains(t(2, 2, 2)) and region.contains(t(3, 1, 2)) and region.contains(t(2.5, 2.5, 1))
    assert not region.contains(t(3.5, 1.5, 1)) and not region.contains(t(2, 2, 2.1))
    assert region.gauge(t(4, 4, 4)) == pytest.approx(2.0)


# ---------------------------------------------------------------------------------------------------------------------
# sizing (section 2.5)
# ---------------------------------------------------------------------------------------------------------------------


def test_init_norm_matches_kaiming_uniform_and_restores_weights():
    torch.manual_seed(0)
    layer = nn.Linear(64, 256)
    before = {k: v.clone() for k, v in layer.state_dict().items()}
    rng_before = torch.get_rng_state()
    norms = fw.init_norms(layer)
    # Kaiming-uniform with a = sqrt(5): U(-1/8, 1/8) for fan_in 64, so E||W||^2 = 16384 / 192; bias U(-1/8, 1/8).
    assert norms["weight"] == pytest.approx(math.sqrt(16384 / 192), rel=0.01)
    assert norms["bias"] == pytest.approx(math.sqrt(256 / 192), rel=0.03)
    assert fw.init_norm(layer, "weight") == pytest.approx(norms["weight"])
    assert all(torch.equal(before[k], v) for k, v in layer.state_dict().items())
    assert torch.equal(torch.get_rng_state(), rng_before)
    with pytest.raises(KeyError):
        fw.init_norm(layer, "nope")


def test_init_norm_batchnorm_zero_bias_becomes_one():
    bn = nn.BatchNorm1d(16)
    with torch.no_grad():
        bn.bias.fill_(0.3)
    norms = fw.init_norms(bn, draws=5)
    assert norms["weight"] == pytest.approx(4.0)  # ones(16)
    assert norms["bias"] == 1.0  # zero-initialised: replaced by 1 as in the reference code
    assert torch.allclose(bn.bias, torch.full((16,), 0.3))


def _small_net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(6, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 3))


def test_constraints_for_per_layer_sizes_every_parameter():
    model = _small_net()
    groups = fw.constraints_for(model, kind="l2", width=5.0, draws=20)
    params, regions = groups[0]["params"], groups[0]["regions"]
    assert [id(p) for p in params] == [id(p) for p in model.parameters()]  # all parameters incl. BN and biases
    expected = {}
    for module in (model[0], model[1], model[3]):
        for name, norm in fw.init_norms(module, draws=20).items():
            expected[id(getattr(module, name))] = norm
    for p, r in zip(params, regions):
        assert isinstance(r, fw.L2Ball) and r.n == p.numel()
        assert r.diameter == pytest.approx(2 * 5.0 * expected[id(p)], rel=1e-12)


def test_constraints_for_modes_and_global():
    model = _small_net()
    by_radius = fw.constraints_for(model, kind="linf", width=0.3, mode="radius")[0]["regions"]
    assert all(r.radius == 0.3 for r in by_radius)
    by_diam = fw.constraints_for(model, kind="ksparse", width=2.0, mode="diameter", k=0.5)[0]["regions"]
    assert all(r.diameter == pytest.approx(2.0) for r in by_diam)
    glob = fw.constraints_for(model, kind="l2", width=3.0, global_=True, draws=20)
    region = glob[0]["region"]
    total = math.sqrt(sum(n**2 for m in (model[0], model[1], model[3]) for n in fw.init_norms(m, draws=20).values()))
    assert region.n == sum(p.numel() for p in model.parameters())
    assert region.diameter == pytest.approx(2 * 3.0 * total, rel=1e-12)
    lp = fw.constraints_for(model, kind="lp", p=3, width=1.0, mode="radius")[0]["regions"]
    assert all(r.p == 3 for r in lp)
    with pytest.raises(ValueError):
        fw.constraints_for(model, kind="l2", p=3)  # option not used by the region kind
    with pytest.raises(ValueError):
        fw.constraints_for(model, kind="l2", mode="width")


def test_constraints_for_with_a_kind_function():
    model = _small_net()

    def kind(module, name, param):
        return "l1" if isinstance(module, nn.Linear) and name == "weight" else "l2"

    regions = fw.constraints_for(model, kind=kind, width=1.0, mode="radius")[0]["regions"]
    assert [type(r).__name__ for r in regions] == ["L1Ball", "L2Ball", "L2Ball", "L2Ball", "L1Ball", "L2Ball"]


def test_make_feasible_groups_and_max_gauge():
    model = _small_net()
    groups = fw.constraints_for(model, kind="l1", width=0.05, mode="radius")
    assert fw.max_gauge(groups) > 1
    before = [p.detach().clone() for p in model.parameters()]
    fw.make_feasible_(groups)
    assert fw.max_gauge(groups) <= 1 + 1e-6
    for b, p in zip(before, model.parameters()):  # gauge rescaling keeps directions
        if float(b.norm()) == 0:
            assert float(p.detach().norm()) == 0  # zero tensors (BN biases) stay zero
            continue
        cos = float(torch.nn.functional.cosine_similarity(b.reshape(1, -1), p.detach().reshape(1, -1)))
        assert cos == pytest.approx(1.0, abs=1e-5)
    glob = fw.constraints_for(model, kind="l2", width=0.01, mode="radius", global_=True)
    fw.make_feasible_(glob)
    total = math.sqrt(sum(float(p.detach().norm()) ** 2 for p in model.parameters()))
    assert total == pytest.approx(0.01, rel=1e-5)


def test_make_region_registry():
    assert isinstance(fw.make_region("knorm", 10, radius=1.0, k=2), fw.KNormBall)
    r = fw.make_region("lp", 16, diameter=4.0, p=4)
    assert r.diameter == pytest.approx(4.0)
    with pytest.raises(ValueError):
        fw.make_region("nuclear", 4, radius=1.0)
    with pytest.raises(ValueError):
        fw.make_region("l2", 4)
    for name, cls in fw.REGIONS.items():
        assert cls.name in fw.REGIONS and issubclass(cls, fw.Region), name


# --- sizing against hand-computed values ---------------------------------------------------------------------------
# PyTorch initialises a Linear(n_in, n_out) weight and bias uniformly on [-b, b] with b = 1/sqrt(n_in) (Kaiming-uniform
# with a = sqrt(5) for the weight), so E||w||^2 = N b^2 / 3 for N entries and E||w|| = sqrt(N/3) b (1 - 1/(10 N) + ...)
# (the delta method with Var(w^2) = 4 b^4 / 45). A BatchNorm starts at weight 1 (norm sqrt(C)) and bias 0 (norm 0,
# which the reference code replaces by 1).


def _radii(groups):
    return [region.radius for region in groups[0]["regions"]]


def test_l2_sizing_matches_the_hand_computed_init_norms():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(64, 256), nn.ReLU(), nn.BatchNorm1d(256), nn.Linear(256, 10))
    w = 30.0
    radii = _radii(C.constraints_for(model, "l2", width=w, draws=400))
    b1, b2 = 1 / math.sqrt(64), 1 / math.sqrt(256)
    hand = [
        math.sqrt(256 * 64 / 3) * b1,  # first weight: 9.2376
        math.sqrt(256 / 3) * b1 * (1 - 1 / 2560),  # first bias: 1.1543
        math.sqrt(256),  # BatchNorm weight: exactly 16
        1.0,  # BatchNorm bias: 0 replaced by 1
        math.sqrt(10 * 256 / 3) * b2,  # last weight: 1.8257
        math.sqrt(10 / 3) * b2 * (1 - 1 / 100),  # last bias: 0.1130
    ]
    # L2 ball of diameter 2 w E||theta||: radius w E||theta||. Monte-Carlo error of 400 draws: < 1 % for the biases
    assert radii[2] == pytest.approx(w * 16.0, rel=1e-12) and radii[3] == pytest.approx(w, rel=1e-12)
    for r, h in zip(radii, hand):
        assert r == pytest.approx(w * h, rel=0.02)


def test_l1_and_radius_modes_against_hand_values():
    torch.manual_seed(1)
    model = nn.Linear(16, 4)
    l1 = _radii(C.constraints_for(model, "l1", width=2.0, mode="diameter"))
    assert l1 == [pytest.approx(1.0), pytest.approx(1.0)]  # an L1 ball of radius tau has L2 diameter 2 tau
    assert _radii(C.constraints_for(model, "l2", width=0.7, mode="radius")) == [0.7, 0.7]


def test_norms_by_shape_reproduces_the_official_dictionary():
    """The official code keys mean norms by shape: a BatchNorm weight takes its bias's norm (0 -> 1)."""
    model = nn.Sequential(nn.Linear(8, 32), nn.BatchNorm1d(32))
    ours = _radii(C.constraints_for(model, "l2", width=30.0))
    official = _radii(C.constraints_for(model, "l2", width=30.0, norms_by="shape"))
    # shapes: (32, 8) weight, (32,) bias, (32,) BN weight, (32,) BN bias: the last (32,) tensor, the BN bias, wins
    assert ours[2] == pytest.approx(30.0 * math.sqrt(32)) and official[2] == pytest.approx(30.0)
    assert official[1] == official[2] == official[3] == pytest.approx(30.0)
    assert official[0] == ours[0]
    with pytest.raises(ValueError, match="norms_by"):
        C.constraints_for(model, "l2", norms_by="name")
