"""Tests of companion.frankwolfe.rescaling: the step length of SFW under gradient and diameter rescaling and the
bound on its deviation from the SGD step (the sfw-compression chapter's rescaling notebook)."""

from __future__ import annotations

import math

import pytest
import torch
from companion import frankwolfe as fw
from companion.frankwolfe import rescaling
from hypothesis import given, settings
from hypothesis import strategies as st

DT = torch.float64


def one_step(theta: torch.Tensor, m: torch.Tensor, radius: float, lr: float, rescale: str) -> torch.Tensor:
    """The displacement of one SFW step in an L2 ball (momentum 0: the direction is ``m`` itself)."""
    p = torch.nn.Parameter(theta.clone())
    opt = fw.SFW(
        [{"params": [p], "regions": [fw.L2Ball(p.numel(), radius=radius)]}], lr=lr, momentum=0.0, rescale=rescale
    )
    p.grad = m.clone()
    opt.step()
    return p.detach() - theta


def test_worked_deviation_theta_orthogonal_to_m():
    # theta = (0, 1), m = (1, 0), tau = 10: v = (-10, 0), theta - v = (10, 1); the step is -eta (10, 1)/sqrt(101)
    step = one_step(torch.tensor([0.0, 1.0], dtype=DT), torch.tensor([1.0, 0.0], dtype=DT), 10.0, 0.1, "gradient")
    assert torch.allclose(step, -0.1 * torch.tensor([10.0, 1.0], dtype=DT) / math.sqrt(101))
    dev = rescaling.sgd_deviation(step, torch.tensor([1.0, 0.0], dtype=DT), 0.1)
    assert dev == pytest.approx(math.sqrt(2 - 20 / math.sqrt(101)), rel=1e-12)
    assert dev <= rescaling.sgd_deviation_bound(1.0, 10.0) == 0.2


@given(st.integers(2, 40), st.floats(1.5, 1e4), st.floats(1e-3, 0.5), st.integers(0, 2**31 - 1))
@settings(max_examples=60, deadline=None)
def test_gradient_step_has_sgd_length_and_bounded_direction_error(n, radius, lr, seed):
    gen = torch.Generator().manual_seed(seed)
    theta = torch.randn(n, dtype=DT, generator=gen)
    theta *= torch.rand(1, dtype=DT, generator=gen).item() / float(torch.linalg.vector_norm(theta))  # ||theta|| < 1
    m = torch.randn(n, dtype=DT, generator=gen)
    step = one_step(theta, m, radius, lr, "gradient")
    length = float(torch.linalg.vector_norm(step))
    gap = float(torch.linalg.vector_norm(theta + radius * m / torch.linalg.vector_norm(m)))
    assert length == pytest.approx(min(lr * float(torch.linalg.vector_norm(m)), gap), rel=1e-10)
    if lr * float(torch.linalg.vector_norm(m)) < gap:  # unclipped
        bound = rescaling.sgd_deviation_bound(float(torch.linalg.vector_norm(theta)), radius)
        assert rescaling.sgd_deviation(step, m, lr) <= bound * (1 + 1e-9)
    # diameter rescaling: the length is lr ||theta - v|| / D, whatever ||m||
    step_d = one_step(theta, m, radius, lr, "diameter")
    assert float(torch.linalg.vector_norm(step_d)) == pytest.approx(lr * gap / (2 * radius), rel=1e-10)
    step_d2 = one_step(theta, 7.0 * m, radius, lr, "diameter")
    assert torch.allclose(step_d, step_d2, atol=1e-12)


def test_deviation_vanishes_like_one_over_radius():
    gen = torch.Generator().manual_seed(3)
    theta, m = torch.randn(20, dtype=DT, generator=gen), torch.randn(20, dtype=DT, generator=gen)
    devs = [rescaling.sgd_deviation(one_step(theta, m, r, 0.05, "gradient"), m, 0.05) for r in (1e2, 1e3, 1e4)]
    assert devs[0] / devs[1] == pytest.approx(10, rel=0.05) and devs[1] / devs[2] == pytest.approx(10, rel=0.01)
    dev_d = rescaling.sgd_deviation(one_step(theta, m, 1e4, 0.05, "diameter"), m, 0.05)
    assert dev_d > 0.1  # the diameter step tends to -(eta / 2) m / ||m||, not to -eta m


def test_rescaling_trace_on_a_small_problem():
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=120, n_features=6, n_informative=4, n_classes=3, random_state=0)
    ds = torch.utils.data.TensorDataset(torch.tensor(x, dtype=torch.float32), torch.tensor(y))

    class Split:
        train = test = ds

    opts = {"in_features": 6, "num_classes": 3, "hidden": [8]}
    trace = rescaling.rescaling_trace(
        Split, widths=[3.0, 300.0], seed=0, epochs=1, lr=0.05, batch_size=32, model_options=opts
    )
    assert set(trace) == {"sgd", "gradient", "diameter"}
    g3, g300 = (rescaling.summarize(trace, "gradient", w) for w in (3.0, 300.0))
    assert g3["length_ratio_median"] == pytest.approx(1.0) and g3["clipped"] == 0
    assert g3["bound_ratio_max"] <= 1.0 and g300["bound_ratio_max"] <= 1.0
    assert g300["distance_to_sgd"] < 0.1 * g3["distance_to_sgd"]
    assert rescaling.summarize(trace, "diameter", 300.0)["distance_to_sgd"] > 0.3
    assert trace["gradient"][3.0]["deviation"].shape == (4, 4)  # 4 steps x 4 tensors
