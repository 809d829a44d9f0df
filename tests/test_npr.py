"""Unit tests of companion.npr: exact PDE references, the low-rank network, batched evaluation, residuals."""

import math

import numpy as np
import pytest
import torch
from companion.npr import (
    DeepONet,
    FourierIC,
    FourierIC2D,
    HyperNetwork,
    LowRankMLP,
    Problem,
    batched_call,
    burgers_cole_hopf,
    burgers_reference,
    deeponet_matching,
    fine_tune,
    fourier_ic,
    fourier_ic2d,
    from_samples,
    grf_ic,
    grf_ic2d,
    grid,
    grid2d,
    heat_exact,
    heat_exact2d,
    num_params,
    predict,
    predict2d,
    predict_operator,
    random_networks,
    residual,
    residual2d,
    residual_of,
    residual_of2d,
    sensor_values,
    train_operator,
    wave_vectors,
)
from torch.func import functional_call

X, T = grid()


def _heat_torch(ic: FourierIC, nu: float):
    """The exact heat solution written in torch (float64), for autograd residuals."""
    a, b = torch.as_tensor(ic.a), torch.as_tensor(ic.b)
    w = 2 * math.pi * torch.arange(1, a.shape[1] + 1, dtype=torch.float64)

    def u(x, t):
        decay = torch.exp(-nu * w**2 * t[..., None])
        ph = x[..., None] * w
        return (decay * (a[:, None] * torch.sin(ph) + b[:, None] * torch.cos(ph))).sum(-1)

    return u


def _points(B, P=200, seed=0, t_min=0.0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(B, P, generator=g, dtype=torch.float64),
        t_min + (1 - t_min) * torch.rand(B, P, generator=g, dtype=torch.float64),
    )


def test_heat_exact_solves_the_pde_and_meets_the_initial_condition():
    nu, ic = 0.02, fourier_ic(5, K=4, sigma=1.0, rng=0)
    u = _heat_torch(ic, nu)
    x, t = _points(5)
    res = residual_of(Problem("heat", nu), u, x, t)
    assert res.abs().max() < 1e-10
    # the numpy reference is the same function on a grid, and equals u0 at t = 0
    ref = heat_exact(ic, X, T, nu)
    Xg, Tg = np.meshgrid(X, T)
    torch_grid = u(torch.as_tensor(Xg.ravel()).expand(5, -1), torch.as_tensor(Tg.ravel()).expand(5, -1))
    np.testing.assert_allclose(ref.reshape(5, -1), torch_grid.numpy(), atol=1e-12)
    np.testing.assert_allclose(ref[:, 0], ic(X), atol=1e-14)


def test_heat_decay_factors():
    # exp(-nu (2 pi k)^2 t) with nu = 0.02 (worked values of the chapter)
    ic = FourierIC(np.eye(8)[[0, 1, 2, 3, 7]], np.zeros((5, 8)))
    peak = heat_exact(ic, np.array([0.25 / np.arange(1, 9)[[0, 1, 2, 3, 7]]]).T.ravel(), np.array([1.0, 0.25]), 0.02)
    at_peak = np.array([peak[i, :, i] for i in range(5)])  # sin(2 pi k x) = 1 at x = 1/(4k)
    np.testing.assert_allclose(at_peak[:4, 0], [0.45404, 0.04250, 8.20e-4, 3.26e-6], rtol=2e-3)
    np.testing.assert_allclose(at_peak[[0, 1, 3, 4], 1], [0.82087, 0.45404, 0.04250, 3.26e-6], rtol=2e-3)


def test_spectral_burgers_matches_cole_hopf():
    """IF-RK4 with 256 modes and dt = 1e-3 against the exact Cole-Hopf solution (nu = 0.01): max error < 2e-5."""
    nu, ic = 0.01, fourier_ic(6, K=4, sigma=0.5, rng=3)
    t = np.array([0.0, 0.2, 0.5, 1.0])
    ref = burgers_reference(ic, X, t, nu)
    np.testing.assert_allclose(ref[:, 0], ic(X), atol=1e-13)
    for j in (1, 2, 3):
        exact = burgers_cole_hopf(ic, X, t[j], nu)
        assert np.abs(ref[:, j] - exact).max() < 2e-5, (t[j], np.abs(ref[:, j] - exact).max())
    # a wrong viscosity is far off: the comparison can fail
    assert np.abs(burgers_reference(ic, X, t, 0.02)[:, 3] - burgers_cole_hopf(ic, X, 1.0, nu)).max() > 1e-2


def test_burgers_linear_regime_and_time_step():
    nu, ic = 0.1, fourier_ic(3, K=4, sigma=1e-6, rng=1)
    t = np.array([0.0, 0.5])
    lin = heat_exact(ic, X, t, nu)
    assert np.abs(burgers_reference(ic, X, t, nu) - lin).max() < 1e-11  # quadratic term ~ amplitude^2
    ic = fourier_ic(3, K=4, sigma=0.5, rng=1)
    coarse, fine = burgers_reference(ic, X, t, 0.01), burgers_reference(ic, X, t, 0.01, dt=5e-4)
    assert np.abs(coarse - fine).max() < 1e-5


def test_pinn_residual_of_exact_solutions_is_zero_and_of_perturbed_ones_not():
    nu = 0.01
    lam, eps = nu * (2 * math.pi) ** 2, 0.5

    def burgers_exact(x, t):  # Cole-Hopf of phi = 1 + eps exp(-nu (2 pi)^2 t) cos(2 pi x)
        e = eps * torch.exp(-lam * t)
        return 4 * math.pi * nu * e * torch.sin(2 * math.pi * x) / (1 + e * torch.cos(2 * math.pi * x))

    x, t = _points(3)
    burgers = Problem("burgers", nu)
    assert residual_of(burgers, burgers_exact, x, t).abs().max() < 1e-12
    bumped = residual_of(burgers, lambda xx, tt: burgers_exact(xx, tt) + 1e-3 * tt * torch.sin(2 * math.pi * xx), x, t)
    assert bumped.abs().max() > 5e-4
    # the reparametrised residual u = u0 + t g with the g of the exact heat solution, and with a perturbed g
    heat, ic = Problem("heat", 0.02), fourier_ic(3, K=4, sigma=1.0, rng=5)
    a, b = torch.as_tensor(ic.a), torch.as_tensor(ic.b)
    u = _heat_torch(ic, 0.02)
    u0 = _heat_torch(ic, 0.0)
    x, t = _points(3, t_min=0.05)

    def g(xx, tt):
        return (u(xx, tt) - u0(xx, tt)) / tt

    assert residual(heat, g, a, b, x, t).abs().max() < 1e-9
    assert residual(heat, lambda xx, tt: g(xx, tt) + 1e-2 * torch.cos(2 * math.pi * xx), a, b, x, t).abs().max() > 5e-3


def test_low_rank_network_at_full_rank_equals_dense_network():
    torch.manual_seed(0)
    low = LowRankMLP(hidden=16, rank=16, frequencies=2).double()
    dense = LowRankMLP(hidden=16, rank=None, frequencies=2).double()
    with torch.no_grad():
        for name in ("w1", "b1", "b2", "w3", "b3"):
            getattr(dense, name).copy_(getattr(low, name))
        dense.w2.copy_(low.u @ low.v.T)
    x, t = _points(4)
    torch.testing.assert_close(low(x, t), dense(x, t), atol=1e-12, rtol=0)
    with torch.no_grad():
        dense.w2.add_(1e-3)
    assert (low(x, t) - dense(x, t)).abs().max() > 1e-6


def test_parameter_counts():
    assert num_params(LowRankMLP(32, None)) == 1217
    for r in (1, 2, 4, 8):
        assert num_params(LowRankMLP(32, r)) == 193 + 64 * r
        assert HyperNetwork(rank=r, widths=(256, 256)).regressed == 193 + 64 * r
        assert num_params(HyperNetwork(rank=r, widths=(256, 256))) == 82432 + 257 * (193 + 64 * r)
    npr = HyperNetwork(rank=4, widths=(64, 64), frequencies=4)
    don = deeponet_matching(num_params(npr), frequencies=4)
    assert abs(num_params(don) - num_params(npr)) / num_params(npr) < 0.01


def test_vmap_evaluation_equals_a_python_loop():
    torch.manual_seed(1)
    hyper = HyperNetwork(sensors=16, widths=(32,), hidden=8, rank=2, frequencies=2, out_scale=1.0)
    ic = fourier_ic(5, K=4, rng=2)
    s = sensor_values(ic, 16)
    theta = hyper(s)
    x, t = _points(5, 30)
    x, t = x.float(), t.float()
    batched = batched_call(hyper.template, theta, x, t)
    looped = torch.stack(
        [functional_call(hyper.template, {k: v[i] for k, v in theta.items()}, (x[i], t[i])) for i in range(5)]
    )
    torch.testing.assert_close(batched, looped, atol=1e-6, rtol=1e-6)
    assert (looped[0] - looped[1]).abs().max() > 1e-4  # rows really are different networks


@pytest.mark.parametrize("r", [1, 2, 4, 8])
def test_regressed_hidden_matrices_have_rank_r(r):
    torch.manual_seed(r)
    hyper = HyperNetwork(rank=r, widths=(32,), hidden=32, out_scale=1.0)
    theta = hyper(sensor_values(fourier_ic(4, rng=r)))
    w = theta["u"].double() @ theta["v"].double().transpose(1, 2)
    assert w.shape == (4, 32, 32)
    assert torch.linalg.matrix_rank(w).tolist() == [r] * 4
    full = HyperNetwork(rank=None, widths=(32,), hidden=32, out_scale=1.0)(sensor_values(fourier_ic(4, rng=r)))
    assert torch.linalg.matrix_rank(full["w2"].double()).tolist() == [32] * 4


def test_reparametrisation_meets_the_initial_condition_exactly():
    torch.manual_seed(0)
    hyper, don = HyperNetwork(rank=2, widths=(16,), out_scale=1.0), DeepONet(width=16)
    ic = fourier_ic(3, rng=0)
    s = sensor_values(ic)
    for model in (hyper, don):
        pred = predict(lambda xx, tt: model.solution(s, xx, tt), ic, X, np.array([0.0, 0.5]))
        np.testing.assert_array_equal(pred[:, 0], ic(X))
        assert np.abs(pred[:, 1] - ic(X)).max() > 1e-3


def test_sensor_interpolation_is_exact_above_nyquist():
    ic = fourier_ic(4, K=4, rng=0)
    back = from_samples(ic(np.arange(64) / 64))
    np.testing.assert_allclose(back.a[:, :4], ic.a, atol=1e-14)
    np.testing.assert_allclose(back(X), ic(X), atol=1e-13)
    aliased = from_samples(ic(np.arange(8) / 8))  # m = 2K: mode 4 is the Nyquist mode, lost
    assert np.abs(aliased(X) - ic(X)).max() > 1e-2


def test_samplers():
    ood = fourier_ic(2000, K=8, k_min=5, sigma=1.0, rng=0)
    assert np.all(ood.a[:, :4] == 0) and np.all(ood.b[:, :4] == 0)
    np.testing.assert_allclose(ood.a[:, 4].std(), 1.0, rtol=0.05)
    np.testing.assert_allclose(ood.a[:, 5].std(), 0.5, rtol=0.05)
    grf = grf_ic(4000, K=3, sigma=25.0, tau=5.0, alpha=2.0, rng=0)
    want = np.sqrt(2) * 25.0 / ((2 * np.pi * np.arange(1, 4)) ** 2 + 25.0)
    np.testing.assert_allclose(grf.a.std(0), want, rtol=0.05)


def test_fine_tuning_reduces_the_error_of_a_random_network():
    heat, ic = Problem("heat", 0.02), fourier_ic(2, K=1, sigma=1.0, rng=0)
    ref = heat_exact(ic, X, T, 0.02)
    template = LowRankMLP(16, 2)
    out = fine_tune(
        template, random_networks(2, 16, 2, seed=0), heat, ic, ref, steps=60, eval_steps=[0, 60], points=64, lr=1e-2
    )
    assert out.errors.shape == (2, 2)
    assert np.all(out.errors[1] < 0.5 * out.errors[0])


def test_cached_training_reuses_identical_runs_only(tmp_path):
    heat = Problem("heat", 0.02)

    def sampler(n, rng):
        return fourier_ic(n, K=2, rng=rng)

    def run(seed=0, steps=3, init=0):
        torch.manual_seed(init)
        model = HyperNetwork(sensors=8, widths=(8,), hidden=4, rank=1)
        from companion.npr import train_operator_cached

        out = train_operator_cached(
            model, heat, sampler, steps, batch=2, points=8, sensors=8, seed=seed, cache_dir=tmp_path
        )
        return out, torch.cat([p.detach().reshape(-1) for p in model.parameters()])

    first, p1 = run()
    again, p2 = run()
    assert not first.cached and again.cached
    torch.testing.assert_close(p1, p2, rtol=0, atol=0)
    assert not run(seed=1)[0].cached and not run(steps=4)[0].cached and not run(init=1)[0].cached


# --- 2D heat on the periodic unit square ------------------------------------------------------------------------


def _heat2d_torch(ic: FourierIC2D, nu: float):
    """The exact 2D heat solution written in torch (float64): x (..., 2), t (...)."""
    a, b = torch.as_tensor(ic.a), torch.as_tensor(ic.b)
    k = torch.as_tensor(ic.k, dtype=torch.float64)
    lam = nu * (2 * math.pi) ** 2 * (k**2).sum(1)

    def u(x, t):
        ph = 2 * math.pi * x @ k.T  # (B, P, M)
        decay = torch.exp(-lam * t[..., None])
        return (decay * (a[:, None] * torch.sin(ph) + b[:, None] * torch.cos(ph))).sum(-1)

    return u


def _points2d(B, P=200, seed=0, t_min=0.0):
    g = torch.Generator().manual_seed(seed)
    return (
        torch.rand(B, P, 2, generator=g, dtype=torch.float64),
        t_min + (1 - t_min) * torch.rand(B, P, generator=g, dtype=torch.float64),
    )


def _grid_points2d(B, n=16, times=(0.0, 0.25, 0.5, 1.0)):
    pts, tt = grid2d(n), np.asarray(times)
    x = torch.as_tensor(np.tile(pts, (len(tt), 1))).expand(B, -1, -1)
    t = torch.as_tensor(np.repeat(tt, len(pts))).expand(B, -1)
    return pts, tt, x, t


def test_wave_vectors_and_2d_samplers():
    k = wave_vectors(4)
    assert k.shape == (2 * 4 * 5, 2) and np.abs(k).max() == 4
    keys = {tuple(v) for v in k}
    assert len(keys) == len(k) and (0, 0) not in keys
    assert not any((-v[0], -v[1]) in keys for v in k)  # one of each pair +-k
    ic = fourier_ic2d(4000, K=4, sigma=1.0, rng=0)
    np.testing.assert_allclose(ic.a.std(0), 1.0 / np.sqrt((k**2).sum(1)), rtol=0.08)
    g = grf_ic2d(4000, K=3, rng=1)
    want = np.sqrt(2.0) * 25.0 * (4 * np.pi**2 * (g.k**2).sum(1) + 25.0) ** -2.0
    np.testing.assert_allclose(g.b.std(0), want, rtol=0.08)
    assert sensor_values(ic[:3], 12).shape == (3, 144)
    assert grid2d(8).shape == (64, 2)


def test_heat_exact2d_solves_the_pde_and_meets_the_initial_condition():
    nu, ic = 0.02, fourier_ic2d(4, K=4, sigma=1.0, rng=2)
    u = _heat2d_torch(ic, nu)
    heat2d = Problem("heat2d", nu)
    # on a grid of the unit square x times and at random points: residual at machine precision
    pts, tt, xg, tg = _grid_points2d(4)
    assert residual_of2d(heat2d, u, xg, tg).abs().max() < 1e-11
    x, t = _points2d(4)
    assert residual_of2d(heat2d, u, x, t).abs().max() < 1e-11
    # a wrong diffusivity fails the same check
    assert residual_of2d(Problem("heat2d", 0.03), u, x, t).abs().max() > 1e-2
    # the numpy reference is the same function, equals u0 at t = 0, and the Laplacian of u0 is exact
    ref = heat_exact2d(ic, pts, tt, nu)
    assert ref.shape == (4, len(tt), len(pts))
    np.testing.assert_allclose(ref.reshape(4, -1), u(xg, tg).numpy(), atol=1e-12)
    np.testing.assert_allclose(ref[:, 0], ic(pts), atol=1e-13)
    lap = residual_of2d(Problem("heat2d", 1.0), _heat2d_torch(ic, 0.0), xg[:, : len(pts)], tg[:, : len(pts)])
    np.testing.assert_allclose(-lap.detach().numpy(), ic(pts, laplacian=True), atol=1e-9)
    # one mode k = (1, 1) decays as exp(-nu 8 pi^2 t)
    one = FourierIC2D(np.eye(len(ic.k))[[ic.k.tolist().index([1, 1])]], np.zeros((1, len(ic.k))), ic.k)
    peak = heat_exact2d(one, np.array([[0.125, 0.125]]), np.array([1.0]), nu)
    np.testing.assert_allclose(peak.ravel(), [math.exp(-nu * 8 * math.pi**2)], rtol=1e-12)


def test_2d_pinn_residual_of_the_exact_solution_is_zero_and_of_a_perturbed_one_not():
    nu, ic = 0.02, fourier_ic2d(3, K=3, sigma=1.0, rng=5)
    heat2d = Problem("heat2d", nu)
    u, u0 = _heat2d_torch(ic, nu), _heat2d_torch(ic, 0.0)
    x, t = _points2d(3, t_min=0.05)

    def g(xx, tt):  # u = u0 + t g for the exact u
        return (u(xx, tt) - u0(xx, tt)) / tt

    assert residual2d(heat2d, g, ic, x, t).abs().max() < 1e-9
    bumped = residual2d(heat2d, lambda xx, tt: g(xx, tt) + 1e-2 * torch.cos(2 * math.pi * xx[..., 1]), ic, x, t)
    assert bumped.abs().max() > 5e-3
    with pytest.raises(ValueError):
        residual2d(Problem("heat", nu), g, ic, x, t)


def test_batched_2d_evaluation_shapes_and_independence():
    torch.manual_seed(0)
    B, P, m = 3, 50, 12
    ic = fourier_ic2d(B, K=4, rng=1)
    s = sensor_values(ic, m)
    x = torch.rand(B, P, 2)
    t = torch.rand(B, P)
    hyper = HyperNetwork(m * m, (16, 16), hidden=32, rank=4, frequencies=2, dims=2)
    assert hyper.template.w1.shape == (32, 4 * 2 + 1)
    assert hyper.regressed == num_params(LowRankMLP(32, 4, 2, dims=2)) == (9 * 32 + 32) + 64 * 4 + 32 + 33
    out = hyper.solution(s, x, t)
    assert out.shape == (B, P)
    theta = hyper(s)
    for i in range(B):  # row i is network i at its own points
        one = functional_call(hyper.template, {k: v[i] for k, v in theta.items()}, (x[i], t[i]))
        torch.testing.assert_close(out[i], one, rtol=1e-5, atol=1e-6)
    don = deeponet_matching(num_params(hyper), m * m, frequencies=2, dims=2)
    assert don.solution(s, x, t).shape == (B, P)
    assert abs(num_params(don) - num_params(hyper)) <= 0.02 * num_params(hyper)
    # grid prediction (B, nt, P), and u = u0 at t = 0 exactly whatever the network
    pts, tt = grid2d(8), np.array([0.0, 0.5, 1.0])
    for model in (hyper, don):
        pred = predict_operator(model, ic, pts, tt, m)
        assert pred.shape == (B, 3, 64)
        np.testing.assert_allclose(pred[:, 0], ic(pts), atol=1e-12)
    assert predict2d(lambda xx, tt: xx[..., 0] * 0, ic, pts, tt).shape == (B, 3, 64)
    with pytest.raises(ValueError):
        LowRankMLP(dims=3)


def test_2d_operator_training_runs_and_lowers_the_loss():
    torch.manual_seed(0)
    hyper = HyperNetwork(8 * 8, (16, 16), hidden=16, rank=2, frequencies=1, dims=2)
    out = train_operator(
        hyper, Problem("heat2d", 0.02), lambda n, rng: fourier_ic2d(n, K=2, rng=rng), 30, 4, 64, 3e-3, 8
    )
    assert len(out.losses) == 30 and np.isfinite(out.losses).all()
    assert np.mean(out.losses[-5:]) < np.mean(out.losses[:5])
