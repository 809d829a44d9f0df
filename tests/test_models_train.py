"""Models, the training loop, schedules and metrics."""

from __future__ import annotations

import math

import pytest
import torch
from companion import data, metrics, models, repro, train
from torch import nn


def test_model_shapes_and_sizes():
    assert models.num_parameters(models.mlp()) == 64 * 256 + 256 + 256 * 256 + 256 + 256 * 10 + 10
    assert models.num_parameters(models.cnn_bn()) == 56554
    assert models.cnn_bn()(torch.randn(4, 1, 8, 8)).shape == (4, 10)
    assert models.mlp_bn()(torch.randn(4, 64)).shape == (4, 10)
    with pytest.raises(ValueError, match="accepted: mlp, mlp_bn, cnn_bn"):
        models.build("resnet")


def test_residual_networks_have_the_published_sizes():
    # ResNet-56 has 0.85 M parameters (He et al., 2016), WRN-28-10 36.5 M (Zagoruyko & Komodakis, 2016)
    assert models.num_parameters(models.build("resnet56")) == 855578
    assert models.num_parameters(models.build("wrn28_10")) == 36536884
    assert models.resnet_tiny()(torch.randn(2, 1, 8, 8)).shape == (2, 10)
    assert models.resnet56()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(
    "name, at_half, at_end",
    [
        ("constant", 1.0, 1.0),
        ("linear", 0.5, 0.01),
        ("cosine", 0.5, 0.5 * (1 + math.cos(math.pi * 0.99))),
        ("step", 0.1, 0.01),
    ],
)
def test_schedules(name, at_half, at_end):
    f = train.schedule(name)
    assert f(0, 100) == pytest.approx(1.0)
    assert f(50, 100) == pytest.approx(at_half)
    assert f(99, 100) == pytest.approx(at_end)


def test_warmup_and_unknown_schedule():
    f = train.schedule("constant", warmup=4)
    assert [f(i, 10) for i in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]
    with pytest.raises(ValueError, match="unknown schedule"):
        train.schedule("exponential")


def _run(seed):
    repro.setup(seed)
    split = data.digits()
    model = models.mlp(hidden=(32,))
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    hist = train.fit(
        model,
        opt,
        split.train,
        epochs=3,
        batch_size=64,
        lr_schedule="linear",
        eval_sets={"test": split.test},
        seed=seed,
    )
    return hist, model


def test_fit_learns_and_is_reproducible():
    h1, m1 = _run(0)
    h2, m2 = _run(0)
    assert h1.drop(columns="seconds").equals(h2.drop(columns="seconds"))
    assert all(torch.equal(a, b) for a, b in zip(m1.parameters(), m2.parameters()))
    assert h1["test_acc"].iloc[-1] > 0.85  # digits is easy: a 64-32-10 MLP gets > 85 % in 3 epochs
    assert list(h1.columns[:6]) == ["epoch", "iteration", "samples", "lr", "batch_loss", "seconds"]
    assert h1["samples"].iloc[-1] == 3 * 1078
    assert h1["iteration"].iloc[-1] == 3 * math.ceil(1078 / 64)


def test_callbacks_see_every_step_and_can_stop():
    class Counter(train.Callback):
        steps = 0

        def on_step_end(self, state):
            Counter.steps += 1

        def on_epoch_end(self, state, row):
            state.stop = state.epoch == 2

    split = data.digits()
    model = models.mlp(hidden=(16,))
    hist = train.fit(model, torch.optim.SGD(model.parameters(), lr=0.1), split.train, epochs=5, callbacks=[Counter()])
    assert len(hist) == 2 and Counter.steps == 2 * math.ceil(1078 / 64)


def test_closure_optimizers_get_a_closure():
    class ClosureSGD(torch.optim.SGD):
        needs_closure = True
        calls = 0

        def step(self, closure=None):
            ClosureSGD.calls += 1
            loss = closure()
            super().step()
            return loss

    split = data.digits()
    model = models.mlp(hidden=(16,))
    train.fit(model, ClosureSGD(model.parameters(), lr=0.1), split.train, epochs=1)
    assert ClosureSGD.calls == math.ceil(1078 / 64)


def test_evaluate_and_threshold_sparsity():
    model = nn.Sequential(nn.Linear(4, 2, bias=False))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0, 1e-4, -2.0], [0.5, 0.0, 0.0, 3.0]]))
    sparsity = metrics.threshold_sparsity(model, relative=1e-3)
    assert sparsity["0.weight"] == pytest.approx(4 / 8) and sparsity["overall"] == pytest.approx(0.5)
    ds = torch.utils.data.TensorDataset(torch.eye(4), torch.tensor([0, 1, 0, 1]))
    result = train.evaluate(model, ds)
    assert result["acc"] == pytest.approx(metrics.accuracy(model(torch.eye(4)), torch.tensor([0, 1, 0, 1])))


def test_full_gradient_equals_gradient_of_the_mean_loss():
    split = data.digits()
    model = models.mlp(hidden=(8,))
    loss = train.full_gradient(model, split.train, batch_size=100)
    accumulated = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    X, y = split.train.tensors
    direct = nn.functional.cross_entropy(model(X), y)
    direct.backward()
    assert loss.item() == pytest.approx(direct.item(), rel=1e-5)
    for a, p in zip(accumulated, model.parameters()):
        assert torch.allclose(a, p.grad, atol=1e-6)


def test_epoch_metric_adds_a_column():
    split = data.digits()
    model = models.mlp(hidden=(8,))
    hist = train.fit(
        model,
        torch.optim.SGD(model.parameters(), lr=0.1),
        split.train,
        epochs=2,
        callbacks=[train.EpochMetric("sparsity", lambda m: metrics.threshold_sparsity(m)["overall"])],
    )
    assert list(hist["sparsity"].between(0, 1)) == [True, True]
