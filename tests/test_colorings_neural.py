"""The neural coloring search: initialisation, loss, metric and extraction on exact references."""

import math

import numpy as np
import pytest
import torch
from companion.colorings import neural
from companion.colorings.constructions import INV_SQRT5, coloring_b, soifer


def test_siren_initialisation_bounds():
    torch.manual_seed(0)
    m = neural.SirenMLP(n_colors=6, hidden=32, layers=4, omega0=30.0)
    first = m.hidden_layers[0]
    fan_in = first.in_features
    assert fan_in == 8  # (x, y) and six distances
    assert first.weight.abs().max() <= 30.0 / fan_in + 1e-6
    assert first.weight.abs().max() > 0.5 * 30.0 / fan_in  # really scaled by omega0
    for lin in list(m.hidden_layers[1:]) + [m.out]:
        assert lin.weight.abs().max() <= math.sqrt(6 / lin.in_features) + 1e-6
    out = m(torch.zeros(5, 2), neural.distance_vector(0.5))
    assert out.shape == (5, 6)


def test_sample_batch_geometry():
    cfg = neural.SearchConfig(n_anchors=16, n_circle=8, d_low=0.3, d_high=0.7)
    b = neural.sample_batch(cfg, torch.Generator().manual_seed(0))
    assert b["anchors"].shape == (96, 2) and b["circle"].shape == (96, 8, 2)
    assert (b["anchors"].abs() <= cfg.box).all()
    radius = (b["circle"] - b["anchors"][:, None, :]).norm(dim=-1)
    expected = b["distances"][torch.arange(96), b["colours"]]
    torch.testing.assert_close(radius, expected[:, None].expand(-1, 8), rtol=1e-5, atol=1e-6)
    # colours 1-5 at distance 1, the sixth within [d_low, d_high]
    assert torch.allclose(b["distances"][:, :5], torch.ones(96, 5))
    assert ((b["distances"][:, 5] >= 0.3) & (b["distances"][:, 5] <= 0.7)).all()


class _Constant(torch.nn.Module):
    def __init__(self, logits):
        super().__init__()
        self.logits = torch.as_tensor(logits, dtype=torch.float32)

    def forward(self, points, distances=None):
        return self.logits.expand(*points.shape[:-1], len(self.logits))


def test_loss_of_uniform_and_constant_colorings():
    cfg = neural.SearchConfig(n_anchors=8, n_circle=4)
    b = neural.sample_batch(cfg, torch.Generator().manual_seed(1))
    # uniform probabilities: every pair is monochromatic in colour k with probability 1/36
    assert neural.conflict_loss(_Constant(torch.zeros(6)), b).item() == pytest.approx(1 / 36, rel=1e-5)
    # one colour everywhere: loss = (1/6) * 1 (only that colour's anchors see a sure conflict)
    big = torch.tensor([30.0, 0, 0, 0, 0, 0])
    assert neural.conflict_loss(_Constant(big), b).item() == pytest.approx(1 / 6, rel=1e-4)
    # the hard maximum agrees for constant colorings
    assert neural.conflict_loss(_Constant(big), b, temperature=0).item() == pytest.approx(1 / 6, rel=1e-4)


def test_conflict_rate_on_exact_colorings():
    model = neural.PeriodicColoringModel(soifer())
    ok = neural.conflict_rate(model, neural.distance_vector(INV_SQRT5), grid_size=40, n_directions=32)
    bad = neural.conflict_rate(model, neural.distance_vector(0.30), grid_size=40, n_directions=32)
    assert ok < 0.01  # only boundary rounding can conflict at the valid distance
    assert bad > 0.1  # inside a diamond of diameter 0.447 many pairs are 0.30 apart
    const = _Constant(torch.tensor([30.0, 0, 0, 0, 0, 0]))
    assert neural.conflict_rate(const, neural.distance_vector(0.5), grid_size=20, n_directions=8) == 1.0


def test_training_reduces_the_loss():
    cfg = neural.SearchConfig(steps=300, n_anchors=64, n_circle=8, hidden=32, d_low=0.5, d_high=0.5)
    _, losses = neural.train_coloring(cfg, seed=0, progress=False)
    # below the first steps and below 1/36, the loss of the uniform probabilistic coloring
    assert np.mean(losses[-20:]) < 0.75 * np.mean(losses[:5])
    assert np.mean(losses[-20:]) < 1 / 36


def test_linear_warmup_schedule():
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    sched = neural.linear_warmup_schedule(opt, steps=100, warmup=0.1)
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs[0] == pytest.approx(0.1) and max(lrs) == pytest.approx(1.0) and lrs[-1] < 0.02


@pytest.mark.parametrize("make", [soifer, lambda: coloring_b(0.5)])
def test_extraction_recovers_the_period_lattice(make):
    col = make()
    img = neural.color_grid(neural.PeriodicColoringModel(col), neural.distance_vector(0.5), grid_size=240, box=3.0)
    L = neural.find_periods(img, 6.0 / 239, 6)
    # same lattice: equal cell area, and the true periods are integer combinations of the found ones
    assert abs(np.linalg.det(L)) == pytest.approx(col.cell_area, rel=0.02)
    coef = col.lattice @ np.linalg.inv(L)
    np.testing.assert_allclose(coef, np.round(coef), atol=0.05)
    grid = neural.extract_periodic_grid(img, 3.0, L, 6, cells=40)
    assert grid.agreement > 0.9


def test_empirical_interval_brackets_the_exact_one():
    col = coloring_b(0.5)
    img = neural.color_grid(neural.PeriodicColoringModel(col), neural.distance_vector(0.5), grid_size=240, box=3.0)
    iv = neural.raster_component_interval(img, 3.0, 5)
    px = 6.0 / 239
    exact_lo, exact_hi = 0.416238, 0.658762  # certified interval of B* (float ends)
    assert exact_lo - 2 * px <= iv["max_diameter"] <= exact_lo + 3 * px
    assert exact_hi - 3 * px <= iv["min_gap"] <= exact_hi + px
