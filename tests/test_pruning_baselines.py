"""Prune-during-training baselines (companion.pruning.baselines): schedules, mechanics and end-to-end runs."""

from __future__ import annotations

import math

import pytest
import torch
from companion import data, metrics, models, pruning
from companion.pruning import baselines
from companion.pruning.baselines import STRATEGIES, gmp_sparsity, train_sparse
from companion.train import Callback, TrainState, fit
from torch import nn
from torch.nn.utils import parametrize

TARGET = 0.8
EPOCHS = 4


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def split():
    return data.synth(n_samples=1200, seed=0)


def small_mlp(seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return models.mlp(hidden=(32,))  # 64-32-10: 2368 prunable weights


def sgd(params, weight_decay: float = 1e-4):
    return torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=weight_decay)


def n_prunable(model: nn.Module) -> int:
    return sum(w.numel() for _, w in metrics.prunable_parameters(model))


def batch(split, n: int = 64):
    x, y = split.train.tensors
    return x[:n], y[:n]


# -- GMP schedule ---------------------------------------------------------------------------------------------
def test_gmp_sparsity_reproduces_the_reference_schedule():
    # brief §5 [derived]: T = 60, Δ = 5 → n = 11; s = 0.9
    reference = [0.2238, 0.4071, 0.5538, 0.6681, 0.7539, 0.8155, 0.8567, 0.8817, 0.8946, 0.8993, 0.9000]
    got = [gmp_sparsity(epoch, 0.9, 60, 5) for epoch in range(5, 60, 5)]
    assert got == pytest.approx(reference, abs=1e-4)
    assert gmp_sparsity(0, 0.9, 60, 5) == gmp_sparsity(4, 0.9, 60, 5) == 0.0
    assert gmp_sparsity(7, 0.9, 60, 5) == gmp_sparsity(5, 0.9, 60, 5)  # held between pruning steps
    assert gmp_sparsity(60, 0.9, 60, 5) == pytest.approx(0.9)
    with pytest.raises(ValueError, match="two pruning intervals"):
        gmp_sparsity(0, 0.9, 9, 5)


# -- end to end -----------------------------------------------------------------------------------------------
EXACT = {"gmp", "gmp-recovering", "dpf", "gsm", "lc", "dnw"}
CASES = {
    "gmp": lambda: baselines.GMP(TARGET, interval=1),
    "gmp-recovering": lambda: baselines.GMP(TARGET, interval=1, allow_recovering=True),
    "dpf": lambda: baselines.DPF(TARGET, interval=1, update_every=4),
    "gsm": lambda: baselines.GSM(TARGET),
    "lc": lambda: baselines.LC(TARGET),
    "dnw": lambda: baselines.DNW(TARGET),
    # the methods without a target get hyperparameters that sparsify this tiny, short run noticeably
    "str": lambda: baselines.STR(TARGET, s_initial=-3.2),
    "dst": lambda: baselines.DST(TARGET, penalty=1e-2),
    "cs": lambda: baselines.CS(TARGET, penalty=1e-4),
}


def test_every_strategy_is_tested_and_registered():
    assert set(STRATEGIES) == {"gmp", "dpf", "gsm", "lc", "dnw", "str", "dst", "cs"}
    assert {type(make()).name for make in CASES.values()} == set(STRATEGIES)
    assert all(STRATEGIES[key].name == key for key in STRATEGIES)


@pytest.mark.parametrize("case", list(CASES))
def test_strategy_trains_end_to_end_into_a_plain_sparse_model(case, split):
    model = small_mlp()
    dense_keys = set(model.state_dict())
    strategy = CASES[case]()
    run = train_sparse(strategy, model, sgd, split.train, EPOCHS, batch_size=64, eval_sets={"val": split.val})

    # a plain module again: no parametrizations left, the dense model's state-dict keys
    assert not any(parametrize.is_parametrized(m) for m in model.modules())
    assert set(model.state_dict()) == dense_keys
    # the masks are the model's exact zeros, and the sparsity is measured over prunable weights only
    implied = pruning.Masks.from_model(model)
    assert set(implied) == set(run.masks)
    assert all(torch.equal(implied[name], run.masks[name]) for name in implied)
    assert run.sparsity == pytest.approx(pruning.sparsity(model)["overall"])
    if case in EXACT:
        assert run.masks.zeros() == math.floor(TARGET * n_prunable(model))
    else:
        assert 0.0 < run.sparsity < 1.0  # achieved, not forced
    assert all(torch.isfinite(p).all() for p in model.parameters())
    # the history of fit, with the strategy's sparsity column and the throughput
    assert list(run.history["epoch"]) == list(range(1, EPOCHS + 1))
    assert "sparsity" in run.history and "val_acc" in run.history
    last = run.history.iloc[-1]
    assert run.samples_per_second == pytest.approx(last["samples"] / last["seconds"])


def test_train_sparse_by_name_and_its_errors(split):
    run = train_sparse("dnw", small_mlp(), sgd, split.train, 1, sparsity=0.5)
    assert run.masks.zeros() == math.floor(0.5 * 2368)
    with pytest.raises(ValueError, match="needs a sparsity"):
        train_sparse("gsm", small_mlp(), sgd, split.train, 1)
    with pytest.raises(ValueError, match="unknown strategy"):
        train_sparse("snip", small_mlp(), sgd, split.train, 1, sparsity=0.5)
    with pytest.raises(ValueError, match="contradicts"):
        train_sparse(baselines.GSM(0.5), small_mlp(), sgd, split.train, 1, sparsity=0.9)
    with pytest.raises(ValueError, match="two pruning intervals"):
        train_sparse(baselines.GMP(0.5, interval=5), small_mlp(), sgd, split.train, 6)
    model = small_mlp()
    with pytest.raises(ValueError, match="prepare"):  # GSM's gradient mask needs the prunable layers
        fit(model, sgd(model.parameters()), split.train, 1, callbacks=[baselines.GSM(0.5)])
    strategy = baselines.CS(0.5)
    strategy.prepare(model)
    with pytest.raises(ValueError, match="number of training epochs"):  # β's schedule needs T
        fit(model, sgd(model.parameters()), split.train, 1, callbacks=[strategy])
    with pytest.raises(ValueError, match="already parametrized"):
        baselines.STR(0.5).prepare(model)


# -- mechanics ------------------------------------------------------------------------------------------------
def one_backward(strategy, split, weight_decay: float = 1e-4):
    """prepare, build the optimizer, start training and back-propagate one batch (no step)."""
    model = small_mlp()
    strategy.epochs = EPOCHS
    strategy.prepare(model)
    optimizer = sgd(model.parameters(), weight_decay)
    state = TrainState(model, optimizer, total_iterations=EPOCHS * 13)
    strategy.on_train_begin(state)
    x, y = batch(split)
    nn.functional.cross_entropy(model(x), y).backward()
    return model, state


def top_k_mask(scores: list[torch.Tensor], sparsity: float) -> list[torch.Tensor]:
    """Reference: keep the ⌈(1 − s)·N⌉ largest scores jointly (a full sort)."""
    flat = torch.cat([s.flatten() for s in scores])
    keep = flat.numel() - math.floor(sparsity * flat.numel())
    threshold = flat.sort(descending=True).values[keep - 1]
    return [s >= threshold for s in scores]


def test_gsm_applies_only_the_top_gradients_by_saliency(split):
    strategy = baselines.GSM(TARGET)
    model, state = one_backward(strategy, split)
    weights = [w for _, w in metrics.prunable_parameters(model)]
    before = [w.grad.clone() for w in weights]
    biases = [m.bias for m in model.modules() if isinstance(m, nn.Linear)]
    bias_before = [b.grad.clone() for b in biases]
    keep = top_k_mask([(w.detach() * g).abs() for w, g in zip(weights, before)], TARGET)
    strategy.on_after_backward(state)
    for w, g, k in zip(weights, before, keep):
        assert torch.equal(w.grad, g * k)
    n = n_prunable(model)
    assert sum(int((w.grad != 0).sum()) for w in weights) == n - math.floor(TARGET * n)
    assert all(torch.equal(b.grad, g) for b, g in zip(biases, bias_before))  # biases are never masked


def test_lc_cancels_weight_decay_on_the_largest_weights(split):
    wd = 1e-2
    strategy = baselines.LC(TARGET)
    model, state = one_backward(strategy, split, weight_decay=wd)
    weights = [w for _, w in metrics.prunable_parameters(model)]
    before = [w.grad.clone() for w in weights]
    keep = top_k_mask([w.detach().abs() for w in weights], TARGET)
    strategy.on_after_backward(state)
    for w, g, k in zip(weights, before, keep):
        assert torch.allclose(w.grad, g - wd * w.detach() * k)
        assert torch.equal(w.grad[~k], g[~k])  # small weights: untouched, so SGD's decay acts on them only


@pytest.mark.parametrize("key", ["dnw", "dpf"])
def test_masked_forward_with_straight_through_gradient(key, split):
    strategy = baselines.DNW(0.5) if key == "dnw" else baselines.DPF(0.5, interval=1)
    model = small_mlp()
    strategy.epochs = EPOCHS
    strategy.prepare(model)
    state = TrainState(model, sgd(model.parameters()), total_iterations=EPOCHS * 13)
    strategy.on_train_begin(state)
    if key == "dpf":
        state.iteration = 13  # one epoch completed: GMP's schedule at interval 1 asks for some sparsity
        strategy.on_step_end(state)
    layers = [m for m in model.modules() if isinstance(m, nn.Linear)]
    dense = [m.parametrizations.weight.original for m in layers]
    masks = [m.parametrizations.weight[0].mask.clone() for m in layers]
    assert 0 < 1 - sum(float(k.sum()) for k in masks) / sum(k.numel() for k in masks) <= 0.5
    # reference: an explicit forward with the masked weights as leaves
    x, y = batch(split)
    leaves = [(w.detach() * k).requires_grad_() for w, k in zip(dense, masks)]
    h = x
    for i, (m, w) in enumerate(zip(layers, leaves)):
        h = nn.functional.linear(h, w, m.bias.detach())
        h = torch.relu(h) if i < len(layers) - 1 else h
    nn.functional.cross_entropy(h, y).backward()
    out = model(x)
    assert torch.allclose(out, h.detach(), atol=1e-6)  # the forward pass uses the masked weights
    nn.functional.cross_entropy(out, y).backward()
    for w, leaf, k in zip(dense, leaves, masks):
        assert torch.allclose(w.grad, leaf.grad, atol=1e-7)  # straight-through: the gradient at m ⊙ w ...
        assert (w.grad[k == 0] != 0).any()  # ... also reaches the pruned dense weights


class ZeroChecker(Callback):
    """After every step (and after GMP's own hook), pruned weights and their momentum must be exactly zero."""

    def __init__(self, strategy):
        self.strategy, self.checked, self.masks_seen = strategy, 0, []

    def on_step_end(self, state):
        if self.strategy.keep is None:
            return
        masks = self.strategy.keep.masks
        for name, w in metrics.prunable_parameters(state.model):
            pruned = ~masks[name]
            assert (w[pruned] == 0).all()
            assert (state.optimizer.state[w]["momentum_buffer"][pruned] == 0).all()
        if not self.masks_seen or self.masks_seen[-1] is not masks:
            self.masks_seen.append(masks)
        self.checked += 1


def test_gmp_keeps_pruned_weights_and_momentum_at_zero_between_steps(split):
    strategy = baselines.GMP(TARGET, interval=1)
    checker = ZeroChecker(strategy)
    run = train_sparse(strategy, small_mlp(), sgd, split.train, EPOCHS, batch_size=64, callbacks=[checker])
    assert checker.checked > 2 * 13  # every step after the first pruning step
    n = n_prunable(small_mlp())
    # one pruning step per epoch 1, 2, 3 (= nΔ), each extending the previous mask, on the cubic schedule
    assert [m.zeros() for m in checker.masks_seen] == [
        math.floor(gmp_sparsity(e, TARGET, EPOCHS, 1) * n + 1e-9) for e in (1, 2, 3)
    ]
    for earlier, later in zip(checker.masks_seen, checker.masks_seen[1:]):
        assert all(torch.equal(later[k] & earlier[k], later[k]) for k in earlier)  # pruned stays pruned
    assert list(run.history["sparsity"]) == pytest.approx(
        [gmp_sparsity(e, TARGET, EPOCHS, 1) for e in (1, 2, 3, 4)], abs=1 / n
    )


def test_dst_step_surrogate_and_threshold_reset(split):
    x = torch.tensor([-2.0, -0.7, -0.1, 0.1, 0.3, 0.5, 1.5], requires_grad=True)
    y = baselines._LongTailedStep.apply(x)
    assert y.tolist() == [0, 0, 0, 1, 1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == pytest.approx([0.0, 0.4, 1.6, 1.6, 0.8, 0.4, 0.0])
    strategy = baselines.DST(TARGET, penalty=1e-3)
    model, state = one_backward(strategy, split)
    thresholds = [p.threshold for p in strategy.parametrizations.values()]
    assert all(t.grad is not None for t in thresholds)
    before = [t.grad.clone() for t in thresholds]
    strategy.on_after_backward(state)  # adds the gradient of λ Σ exp(−t) = −λ at t = 0
    assert all(torch.allclose(t.grad, b - 1e-3) for t, b in zip(thresholds, before))
    with torch.no_grad():
        thresholds[0].fill_(10.0)  # nothing survives in the first layer
        thresholds[1].fill_(1e-3)
    strategy.on_step_end(state)
    assert (thresholds[0] == 0).all() and (thresholds[1] == 1e-3).all()


def test_cs_anneals_the_temperature_per_epoch(split):
    strategy = baselines.CS(TARGET, beta_final=100.0)

    class Record(Callback):
        betas: list[float] = []

        def on_epoch_end(self, state, row):
            self.betas.append(next(iter(strategy.parametrizations.values())).beta)

    run = train_sparse(strategy, small_mlp(), sgd, split.train, EPOCHS, batch_size=64, callbacks=[Record()])
    assert Record.betas == pytest.approx([100.0 ** (e / EPOCHS) for e in range(1, EPOCHS + 1)])
    assert run.history["sparsity"].iloc[-1] == pytest.approx(run.sparsity)  # hard mask 1[m > 0] at the end


# --- forward formulas against hand computations ---------------------------------------------------------------------


def test_str_forward_is_the_soft_threshold_by_hand():
    """STR (Kusupati et al. 2020, Eq. 2): w~ = sign(w) relu(|w| - sigmoid(s)); sigmoid(0) = 0.5."""
    soft = baselines.STR(0.5, s_initial=0.0).make_parametrization(torch.zeros(1))
    w = torch.tensor([-1.25, -0.5, -0.25, 0.0, 0.3, 0.5, 2.0])
    assert soft(w).tolist() == pytest.approx([-0.75, 0.0, 0.0, 0.0, 0.0, 0.0, 1.5])
    soft_low = baselines.STR(0.5, s_initial=math.log(0.1 / 0.9)).make_parametrization(torch.zeros(1))
    assert soft_low(torch.tensor([0.35, -0.05])).tolist() == pytest.approx([0.25, 0.0])  # threshold 0.1


def test_cs_scaling_makes_the_initial_forward_the_identity_and_follows_the_temperature():
    """CS (Savarese et al. 2020): w~ = w sigmoid(beta m) / sigmoid(s_init)."""
    w = torch.tensor([[0.4, -2.0], [1.0, 0.0]])
    for s_init in (0.0, -1.0, 2.0):
        mask = baselines.CS(0.5, s_initial=s_init).make_parametrization(w)
        assert torch.allclose(mask(w), w, atol=1e-7)  # the scale 1/sigmoid(s_init) undoes the initial soft mask
    mask = baselines.CS(0.5, s_initial=0.0).make_parametrization(w)
    with torch.no_grad():
        mask.scores.copy_(torch.tensor([[1.0, -1.0], [0.0, 3.0]]))
    mask.beta = 2.0
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    hand = [[0.4 * sig(2.0) * 2, -2.0 * sig(-2.0) * 2], [1.0, 0.0]]
    assert mask(w).tolist() == [pytest.approx(row) for row in hand]


@pytest.mark.parametrize("cls", [baselines.DST, baselines.CS])
def test_loss_l2_adds_the_official_codes_extra_decay_gradient(cls):
    """loss_l2=True adds the gradient wd * theta of 0.5 wd ||theta||^2 to every decayed parameter."""
    torch.manual_seed(0)
    grads = {}
    for flag in (False, True):
        model = small_mlp()
        strategy = cls(0.7, loss_l2=flag)
        strategy.epochs = 1
        strategy.prepare(model)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, weight_decay=0.01)
        for p in model.parameters():
            p.grad = torch.zeros_like(p)
        strategy.on_after_backward(TrainState(model, optimizer))
        grads[flag] = [p.grad.clone() for p in model.parameters()]
        params = [p.detach().clone() for p in model.parameters()]
    for g_plain, g_l2, p in zip(grads[False], grads[True], params):
        assert torch.allclose(g_l2 - g_plain, 0.01 * p, atol=1e-7)
    assert cls(0.7).hyperparameters()["loss_l2"] is False
