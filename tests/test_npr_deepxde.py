"""Our PI-DeepONet baseline (companion.npr.models.DeepONet) against DeepXDE's DeepONet (issue 17).

What is compared: DeepXDE 1.15's PyTorch ``DeepONetCartesianProd`` (points shared by all initial conditions) and
``DeepONet`` (one point per initial condition, our (B, P) layout flattened) are built with our layer sizes:
branch ``[m, width, ..., width, latent]`` and trunk ``[2 dims frequencies + 1, trunk_width, ..., latent]`` with
tanh, which is exactly DeepXDE's construction (tanh between layers, none after the branch's last layer, tanh on
the trunk's output, then sum_k b_k tr_k + a scalar bias). Our Fourier trunk features (sin 2 pi k x, cos 2 pi k x,
t) are given to DeepXDE's trunk by ``apply_feature_transform`` with our own ``features`` map, so DeepXDE receives
the raw points (x, t) (or (x1, x2, t)). Our weights and bias are copied into DeepXDE's network; then the forward
outputs g(x, t) must agree to 1e-6 (float32; measured: at most 1.8e-7 on outputs up to 0.7) on random and on the
chapter's sensor values (Fourier and GRF initial conditions, 1D and 2D), and the Burgers PINN residual of
u = u0 + t g (autograd derivatives in x and t) and its parameter gradients must agree to 1e-5 relative
(measured: 3.8e-6 on residuals up to 58, gradients 5e-7 relative), so that a training step would be the same.
Initialisation is not compared
(DeepXDE uses its ``kernel_initializer``, we use PyTorch's default); the weights are copied.

DeepXDE is imported with ``DDE_BACKEND=pytorch`` set, so it neither reads nor writes ``~/.deepxde/config.json``
(checked). Importing it moves PyTorch's default device to CUDA where CUDA exists; the fixture restores it.
"""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from companion.npr import DeepONet, Problem, fourier_ic, fourier_ic2d, grf_ic, grid, residual, sensor_values
from companion.npr.models import features
from companion.npr.physics import ic_tensors

os.environ.setdefault("DDE_BACKEND", "pytorch")

# (sensors, width, depth, latent, trunk_width, frequencies, dims)
CONFIGS = [(64, 48, 2, 32, 32, 4, 1), (16, 20, 3, 8, 12, 1, 1), (64, 40, 2, 16, 16, 2, 2)]
TOL = dict(atol=1e-6, rtol=1e-6)


@pytest.fixture(scope="module")
def dde():
    config = Path.home() / ".deepxde"
    existed = config.exists()
    device = torch.get_default_device()
    import deepxde

    torch.set_default_device(device)
    assert deepxde.backend.backend_name == "pytorch"
    assert config.exists() == existed, "importing deepxde wrote into the home folder"
    return deepxde


def _ours(cfg) -> DeepONet:
    m, w, depth, p, tw, f, dims = cfg
    torch.manual_seed(sum(cfg))
    net = DeepONet(m, w, depth, p, tw, f, dims)
    with torch.no_grad():
        net.bias.fill_(0.3)  # a non-zero bias, so that its copy is tested
    return net


def _theirs(dde, ours: DeepONet, cls: str):
    """DeepXDE's ``cls`` with our layer sizes, our trunk features and a copy of our weights."""
    branch = [ours.branch[i] for i in range(0, len(ours.branch), 2)]
    trunk = [ours.trunk[i] for i in range(0, len(ours.trunk), 2)]
    sizes_b = [branch[0].in_features] + [lin.out_features for lin in branch]
    sizes_t = [trunk[0].in_features] + [lin.out_features for lin in trunk]
    net = getattr(dde.nn.pytorch, cls)(sizes_b, sizes_t, "tanh", "Glorot normal")
    f, dims = ours.frequencies, ours.dims
    if dims == 1:
        net.apply_feature_transform(lambda xt: features(xt[:, 0], xt[:, 1], f))
    else:
        net.apply_feature_transform(lambda xt: features(xt[:, :2], xt[:, 2], f, 2))
    with torch.no_grad():
        for mine, lins in ((branch, net.branch.linears), (trunk, net.trunk.linears)):
            assert len(mine) == len(lins)
            for a, b in zip(mine, lins):
                b.weight.copy_(a.weight)
                b.bias.copy_(a.bias)
        net.b[0].copy_(ours.bias[0])
    assert sum(p.numel() for p in net.parameters()) == sum(p.numel() for p in ours.parameters())
    return net


def _sensors(cfg, kind: str) -> torch.Tensor:
    m, dims = cfg[0], cfg[6]
    if kind == "random":
        return torch.randn(5, m, generator=torch.Generator().manual_seed(m))
    if dims == 2:
        side = int(round(m**0.5))
        return sensor_values(fourier_ic2d(5, rng=1), side)
    return sensor_values((fourier_ic if kind == "fourier" else grf_ic)(5, rng=1), m)


def _points(n: int, dims: int, seed: int) -> torch.Tensor:
    """n random points (x, t) in [0, 1) x [0, 1] ((x1, x2, t) for dims = 2): (n, dims + 1)."""
    return torch.rand(n, dims + 1, generator=torch.Generator().manual_seed(seed))


def _split(pts: torch.Tensor, dims: int):
    return (pts[..., 0] if dims == 1 else pts[..., :2]), pts[..., -1]


@pytest.mark.parametrize(
    "cfg, kind",
    # the 2D chapter has Fourier initial conditions only
    [(c, k) for c in CONFIGS for k in ("random", "fourier", "grf") if not (c[6] == 2 and k == "grf")],
    ids=lambda v: v if isinstance(v, str) else f"m{v[0]}-w{v[1]}-d{v[2]}-p{v[3]}-f{v[5]}-{v[6]}d",
)
def test_forward_equals_deepxde_cartesian_product(dde, cfg, kind):
    """Shared points: DeepXDE's ``DeepONetCartesianProd((sensors (B, m), points (N, d)))`` is (B, N), ours the same
    points repeated per row."""
    ours = _ours(cfg)
    theirs = _theirs(dde, ours, "DeepONetCartesianProd")
    s, pts = _sensors(cfg, kind), _points(200, cfg[6], 0)
    if cfg[6] == 1 and kind != "random":  # the chapter's evaluation grid
        xg, tg = grid(32, 11)
        X, T = np.meshgrid(xg, tg, indexing="ij")
        pts = torch.as_tensor(np.stack([X.ravel(), T.ravel()], 1), dtype=torch.float32)
    B = s.shape[0]
    x, t = _split(pts.expand(B, *pts.shape), cfg[6])
    with torch.no_grad():
        mine, theirs_out = ours.solution(s, x, t), theirs((s, pts))
    assert mine.shape == theirs_out.shape == (B, pts.shape[0])
    assert mine.abs().max() > 0.1  # not a trivially small output
    torch.testing.assert_close(mine, theirs_out, **TOL)


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: f"m{c[0]}-f{c[5]}-{c[6]}d")
def test_forward_equals_deepxde_aligned(dde, cfg):
    """Points of our own layout (a different set per initial condition, (B, P)): DeepXDE's ``DeepONet`` on the
    pairs (sensors of row i, point (i, j)) flattened to B P rows."""
    ours = _ours(cfg)
    theirs = _theirs(dde, ours, "DeepONet")
    s = _sensors(cfg, "random")
    B, P = s.shape[0], 150
    pts = _points(B * P, cfg[6], 1).reshape(B, P, -1)
    x, t = _split(pts, cfg[6])
    with torch.no_grad():
        mine = ours.solution(s, x, t)
        theirs_out = theirs((s.repeat_interleave(P, 0), pts.reshape(B * P, -1))).reshape(B, P)
    torch.testing.assert_close(mine, theirs_out, **TOL)


def test_pinn_residual_and_its_gradients_equal_deepxde(dde):
    """The Burgers PINN residual of u = u0 + t g (g_t, g_x, g_xx by autograd through either network), its mean
    square and that loss's gradient with respect to every weight agree between ours and DeepXDE's copy."""
    cfg = CONFIGS[0]
    ours = _ours(cfg)
    theirs = _theirs(dde, ours, "DeepONet")
    ic = fourier_ic(4, rng=3)
    a, b = ic_tensors(ic)
    s = sensor_values(ic, cfg[0])
    B, P = s.shape[0], 64
    pts = _points(B * P, 1, 2).reshape(B, P, 2)
    problem = Problem("burgers", nu=0.01)

    def g_theirs(xx, tt):
        return theirs((s.repeat_interleave(P, 0), torch.stack([xx, tt], -1).reshape(B * P, 2))).reshape(B, P)

    r_ours = residual(problem, lambda xx, tt: ours.solution(s, xx, tt), a, b, pts[..., 0], pts[..., 1])
    r_theirs = residual(problem, g_theirs, a, b, pts[..., 0], pts[..., 1])
    torch.testing.assert_close(r_ours, r_theirs, atol=1e-5, rtol=1e-5)
    r_ours.pow(2).mean().backward()
    r_theirs.pow(2).mean().backward()
    pairs = [(ours.bias, theirs.b[0])]
    for mine, lins in ((ours.branch, theirs.branch.linears), (ours.trunk, theirs.trunk.linears)):
        for a_, b_ in zip([mine[i] for i in range(0, len(mine), 2)], lins):
            pairs += [(a_.weight, b_.weight), (a_.bias, b_.bias)]
    for p, q in pairs:
        scale = p.grad.abs().max().item()
        assert scale > 0
        torch.testing.assert_close(p.grad.reshape(q.shape), q.grad, atol=1e-5 * max(scale, 1.0), rtol=1e-4)
