"""companion.pruning: masks, criteria, metrics, retraining schedules, IMP and BIMP (reference values from the
imp-retraining brief, section 5, and hand computations on a toy model)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from companion import data, models, pruning
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn


def toy() -> nn.Sequential:
    """Linear 4->8, 8->8, 8->2: 32 + 64 + 16 = 112 prunable weights."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 2))


def sgd(params, lr=0.1):
    return torch.optim.SGD(params, lr=lr, momentum=0.9, nesterov=True, weight_decay=1e-4)


# -- masks ------------------------------------------------------------------------------------------------------


def test_masks_stay_zero_through_steps_including_momentum():
    model = toy()
    opt = sgd(model.parameters())
    masks = pruning.prune_(model, 0.7)
    keep = pruning.KeepMasked(masks)
    from companion.train import TrainState

    state = TrainState(model, opt)
    keep.on_train_begin(state)
    x, y = torch.randn(32, 4), torch.randint(0, 2, (32,))
    for _ in range(5):
        opt.zero_grad()
        nn.functional.cross_entropy(model(x), y).backward()
        opt.step()
        keep.on_step_end(state)
    for name, w in model.named_parameters():
        if name in masks:
            assert torch.all(w[~masks[name]] == 0)
            assert torch.all(opt.state[w]["momentum_buffer"][~masks[name]] == 0)
    assert pruning.sparsity(model)["overall"] == pytest.approx(math.floor(0.7 * 112) / 112)


def test_masks_survive_fit_save_load_and_averaging(tmp_path):
    split = data.synth(n_samples=600, n_features=4, n_informative=3, n_redundant=0, n_classes=2, seed=0)
    models_ = []
    for seed in (0, 1):
        model = toy()
        masks = pruning.prune_(model, 0.5)  # the same mask for both (same initial weights)
        from companion.train import fit

        fit(
            model,
            sgd(model.parameters()),
            split.train,
            epochs=2,
            batch_size=32,
            callbacks=[pruning.KeepMasked(masks)],
            seed=seed,
        )
        models_.append(model)
    torch.save(models_[0].state_dict(), tmp_path / "m.pt")
    loaded = toy()
    loaded.load_state_dict(torch.load(tmp_path / "m.pt"))
    recovered = pruning.Masks.from_model(loaded)
    assert all(torch.equal(recovered[n], masks[n]) for n in masks)
    soup = toy()
    soup.load_state_dict({k: (models_[0].state_dict()[k] + models_[1].state_dict()[k]) / 2 for k in soup.state_dict()})
    for name, w in soup.named_parameters():
        if name in masks:
            assert torch.all(w[~masks[name]] == 0)


def test_masks_reject_foreign_parameter_names():
    with pytest.raises(KeyError, match="does not have"):
        pruning.Masks({"nope.weight": torch.ones(2, dtype=torch.bool)}).apply_(toy())


# -- criteria ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("sparsity", [0.0, 0.3, 0.5, 0.7, 0.9, 0.98, 1.0])
def test_global_criterion_hits_target_exactly_even_with_ties(sparsity):
    model = toy()
    with torch.no_grad():
        for _, w in pruning.criteria.prunable_parameters(model):
            w.fill_(0.5)  # every magnitude ties
    masks = pruning.select(model, sparsity)
    assert masks.zeros() == math.floor(sparsity * 112 + 1e-9)


def test_global_criterion_prunes_smallest_magnitudes_and_keeps_pruned_weights_pruned():
    model = toy()
    masks = pruning.prune_(model, 0.5)
    weights = torch.cat([w.detach().abs().flatten() for _, w in pruning.criteria.prunable_parameters(model)])
    kept = torch.cat([masks[n].flatten() for n in masks])
    assert weights[~kept].max() == 0
    dense_model = toy()
    original = torch.cat([w.detach().abs().flatten() for _, w in pruning.criteria.prunable_parameters(dense_model)])
    assert original[~kept].max() <= original[kept].min()
    more = pruning.select(model, 0.8, masks=masks)
    for n in masks:
        assert not torch.any(more[n] & ~masks[n])  # nothing regrows
    assert more.zeros() == math.floor(0.8 * 112)


def test_uniform_plus_allocation_equals_hand_computation():
    model = toy()
    assert pruning.layer_sparsities(model, 0.5, "uniform_plus") == pytest.approx(
        {"0.weight": 0.0, "2.weight": 0.7, "4.weight": 0.7}
    )
    # 0.6 * 112 = 67.2 zeros; uniform over layers 2-3 would need 0.84 > 0.8 in the last layer
    assert pruning.layer_sparsities(model, 0.6, "uniform_plus") == pytest.approx(
        {"0.weight": 0.0, "2.weight": (67.2 - 12.8) / 64, "4.weight": 0.8}
    )
    with pytest.raises(ValueError, match="cannot reach"):
        pruning.layer_sparsities(model, 0.95, "uniform_plus")


def test_erk_allocation_equals_hand_computation():
    model = toy()
    # raw scores (fan_out + fan_in) / (fan_out * fan_in): 12/32, 16/64, 10/16; eps = 56 / 38
    eps = 56 / 38
    assert pruning.layer_sparsities(model, 0.5, "erk") == pytest.approx(
        {"0.weight": 1 - eps * 12 / 32, "2.weight": 1 - eps * 16 / 64, "4.weight": 1 - eps * 10 / 16}
    )
    # at 20 % the last layer would exceed density 1: it becomes dense and eps is solved again
    eps = (0.8 * 32 + 0.8 * 64 - 0.2 * 16) / (12 + 16)
    got = pruning.layer_sparsities(model, 0.2, "erk")
    assert got == pytest.approx({"0.weight": 1 - eps * 12 / 32, "2.weight": 1 - eps * 16 / 64, "4.weight": 0.0})
    assert sum(s * n for s, n in zip(got.values(), (32, 64, 16))) == pytest.approx(0.2 * 112)


def test_lamp_scores_equal_hand_computation():
    w = torch.tensor([[3.0, -1.0], [4.0, 2.0]])
    expected = torch.tensor([[9 / 25, 1 / 30], [1.0, 4 / 29]], dtype=torch.float64)
    assert torch.allclose(pruning.lamp_scores(w), expected)


@pytest.mark.parametrize("criterion", pruning.CRITERIA)
def test_every_criterion_reaches_its_target(criterion):
    model = models.cnn_bn()
    masks = pruning.select(model, 0.9, criterion, generator=torch.Generator().manual_seed(0))
    assert masks.sparsity() == pytest.approx(0.9, abs=2e-3)
    if criterion in ("uniform", "uniform_plus", "erk"):
        targets = pruning.layer_sparsities(model, 0.9, criterion)
        for name, s in masks.layer_sparsity().items():
            assert s == pytest.approx(targets[name], abs=1 / masks[name].numel() + 1e-9)


def test_unknown_criterion_is_a_clear_error():
    with pytest.raises(ValueError, match="accepted: global, uniform"):
        pruning.select(toy(), 0.5, "l2")


def test_phase_rates_match_the_brief():
    assert pruning.phase_rate(0.9, 3) == pytest.approx(0.5358, abs=1e-4)
    assert [pruning.cumulative_sparsity(pruning.phase_rate(0.9, 3), j) for j in (1, 2, 3)] == pytest.approx(
        [0.5358, 0.7846, 0.9], abs=1e-4
    )
    assert pruning.phase_rate(0.98, 3) == pytest.approx(0.7286, abs=1e-4)
    assert pruning.phase_rate(0.9, 2) == pytest.approx(0.6838, abs=1e-4)
    assert [pruning.cumulative_sparsity(0.2, n) for n in (10, 14, 18)] == pytest.approx(
        [0.8926, 0.9560, 0.9820], abs=1e-4
    )


# -- metrics ----------------------------------------------------------------------------------------------------


def test_flops_of_layers_with_known_counts():
    conv = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.Flatten(), nn.Linear(100, 5))
    counts = pruning.flops(conv, (3, 5, 5))
    assert counts.dense == 25 * 4 * 3 * 9 + 100 * 5
    with torch.no_grad():
        conv[0].weight[:2] = 0  # half the filters
        conv[2].weight.zero_()
    counts = pruning.flops(conv, (3, 5, 5))
    assert counts.nonzero == 25 * 2 * 3 * 9
    assert counts.speedup == pytest.approx((2700 + 500) / 1350)


# -- schedules --------------------------------------------------------------------------------------------------

PRE = np.array([0.1] * 50 + [0.01] * 25 + [0.001] * 25)  # a step schedule of 100 iterations


def test_schedule_values_at_chosen_iterations():
    llr = pruning.retrain_schedule("llr", PRE, 20)
    assert llr[0] == 0 and llr[1] == pytest.approx(0.05)  # half-cosine warm-up over 2 iterations
    assert llr[2] == pytest.approx(0.1) and llr[11] == pytest.approx(0.1 * (1 - 9 / 18))
    assert llr[-1] == pytest.approx(0.1 / 18)  # LinearLR: the value after the budget would be 0
    allr = pruning.retrain_schedule("allr", PRE, 20, d=0.5)
    assert np.allclose(allr, 0.5 * llr)
    clr = pruning.retrain_schedule("clr", PRE, 20)
    assert clr[2] == pytest.approx(0.1)
    assert clr[-1] == pytest.approx(0.001 + 0.099 * 0.5 * (1 + math.cos(math.pi * 17 / 18)))
    slr = pruning.retrain_schedule("slr", PRE, 20)
    assert slr[2] == 0.1 and slr[2 + 9] == 0.01 and slr[-1] == 0.001  # 9/18 of the way = 50 % of pretraining
    assert np.all(pruning.retrain_schedule("ft", PRE, 20) == 0.001)
    lrw = pruning.retrain_schedule("lrw", PRE, 40)
    assert np.array_equal(lrw, PRE[-40:]) and lrw[14] == 0.01 and lrw[15] == 0.001


@pytest.mark.parametrize("budget", [1, 10, 25])
def test_lrw_is_ft_while_the_budget_lies_in_the_last_phase(budget):
    """Zimmer et al. (2023) observe FT ~ LRW for short budgets: by construction, since the replayed tail of the
    step schedule sits at eta_min; from one iteration into the previous phase on they differ."""
    ft, lrw = (pruning.retrain_schedule(name, PRE, budget) for name in ("ft", "lrw"))
    assert np.array_equal(ft, lrw)
    longer = pruning.retrain_schedule("lrw", PRE, 26)
    assert longer[0] == 0.01 and not np.array_equal(longer, pruning.retrain_schedule("ft", PRE, 26))


@pytest.mark.parametrize("name", ["slr", "clr", "llr", "allr"])
@pytest.mark.parametrize("iterations", [10, 37, 200])
def test_warmups_cover_the_first_ten_percent_and_start_at_zero(name, iterations):
    lrs = pruning.retrain_schedule(name, PRE, iterations, d=0.3)
    n = int(0.1 * iterations)
    assert lrs[0] == 0 and np.all(np.diff(lrs[: n + 1]) > 0)
    assert lrs[n] == lrs.max()


def test_slr_contains_every_original_value_in_order():
    slr = pruning.retrain_schedule("slr", PRE, 60)[6:]
    assert list(dict.fromkeys(slr)) == [0.1, 0.01, 0.001]


def test_schedule_errors():
    with pytest.raises(ValueError, match="accepted: ft, lrw"):
        pruning.retrain_schedule("cosine", PRE, 10)
    with pytest.raises(ValueError, match="only 100 exist"):
        pruning.retrain_schedule("lrw", PRE, 101)


def test_allr_factor_worked_examples():
    out = pruning.allr_factor([torch.tensor([1.0, 2, 3, 4])], [torch.tensor([0.0, 0, 3, 4])], 0.5, 10, 100)
    assert out["d1"] == pytest.approx(1 / math.sqrt(3)) and out["d2"] == pytest.approx(0.1)
    assert out["d"] == pytest.approx(0.5774, abs=1e-4)  # eta0 = 0.05774 for eta_max = 0.1
    equal = pruning.allr_factor([torch.ones(4)], [torch.tensor([0.0, 0, 1, 1])], 0.5, 10, 100)
    assert equal["d1"] == pytest.approx(1.0)
    long_budget = pruning.allr_factor([torch.tensor([1.0, 2, 3, 4])], [torch.tensor([0.0, 0, 3, 4])], 0.5, 90, 100)
    assert long_budget["d"] == pytest.approx(0.9)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(-10, 10, allow_nan=False), min_size=2, max_size=40), st.floats(0.05, 0.95))
def test_allr_d1_lies_in_unit_interval(values, fraction):
    theta = torch.tensor(values, dtype=torch.float64)
    k = max(1, int(fraction * len(values)))
    pruned = theta.clone()
    pruned[torch.topk(theta.abs(), k, largest=False).indices] = 0
    d1 = pruning.allr_factor([theta], [pruned], k / len(values), 1, 10)["d1"]
    assert 0.0 <= d1 <= 1.0 + 1e-9


# -- IMP and BIMP -----------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_task():
    split = data.synth(n_samples=900, n_features=16, n_informative=8, n_redundant=2, n_classes=3, seed=0)
    torch.manual_seed(0)
    model = models.mlp(16, hidden=(32,), num_classes=3)
    pre = pruning.pretrain(model, sgd(model.parameters()), split.train, epochs=4, batch_size=50)
    return split, pre


def test_pretrained_records_every_lr_and_round_trips(small_task, tmp_path):
    _, pre = small_task
    assert pre.iterations == 4 * 12 and pre.lrs[0] == pytest.approx(0.1) and pre.lrs[-1] == pytest.approx(0.001)
    pre.save(tmp_path / "pre.pt")
    back = pruning.Pretrained.load(tmp_path / "pre.pt")
    assert np.array_equal(back.lrs, pre.lrs) and back.epochs == 4
    assert all(torch.equal(back.state_dict[k], v) for k, v in pre.state_dict.items())


@pytest.mark.parametrize("schedule", pruning.SCHEDULES)
def test_imp_phases_reach_the_target_and_keep_the_mask(small_task, schedule):
    split, pre = small_task
    model = models.mlp(16, hidden=(32,), num_classes=3)
    out = pruning.imp(
        model,
        pre,
        sgd,
        split.train,
        0.9,
        phases=3,
        epochs_per_phase=1,
        schedule=schedule,
        batch_size=50,
        eval_sets={"val": split.val},
    )
    n = sum(w.numel() for _, w in pruning.criteria.prunable_parameters(model))
    assert list(out.phases.sparsity) == pytest.approx([0.5358, 0.7846, math.floor(0.9 * n) / n], abs=2e-3)
    assert pruning.sparsity(model)["overall"] == out.masks.sparsity()
    assert {"pruned_val_acc", "val_acc", "d1", "d2", "d"} <= set(out.phases.columns)
    assert len(out.lrs) == 3 * 12 and out.samples == 3 * 600


def test_imp_splits_a_total_budget_and_allows_pruning_only(small_task):
    split, pre = small_task
    assert pruning.split_epochs(7, 3) == [2, 2, 3]
    out = pruning.imp(
        models.mlp(16, hidden=(32,), num_classes=3),
        pre,
        sgd,
        split.train,
        0.5,
        phases=1,
        epochs_per_phase=0,
        eval_sets={"val": split.val},
    )
    assert out.phases.val_acc[0] == out.phases.pruned_val_acc[0] and out.samples == 0
    with pytest.raises(ValueError, match="exactly one"):
        pruning.imp(models.mlp(16, hidden=(32,), num_classes=3), pre, sgd, split.train, 0.5)


def test_bimp_uses_the_dense_phase_length_for_d2(small_task):
    split, _ = small_task
    torch.manual_seed(0)
    model = models.mlp(16, hidden=(32,), num_classes=3)
    out = pruning.bimp(
        model,
        sgd,
        split.train,
        0.8,
        total_epochs=6,
        dense_epochs=4,
        phases=2,
        batch_size=50,
        eval_sets={"val": split.val},
    )
    assert out.pretrained.lrs[0] == pytest.approx(0.1) and out.pretrained.lrs[-1] < 0.01  # linear dense phase
    assert list(out.imp.phases.epochs) == [1, 1]
    assert out.imp.phases.d2.tolist() == pytest.approx([1 / 4, 1 / 4])
    assert out.imp.masks.sparsity() == pytest.approx(0.8, abs=1e-3)
    assert out.samples_per_second > 0


def test_imp_wires_allr_by_hand(small_task):
    """ALLR in imp(): the peak LR of a phase is d * eta_max with d = min(1, max(d1, d2)), d1 from the weights
    before and after that phase's pruning at the *per-phase* rate, d2 = retraining / pretraining iterations."""
    split, pre = small_task
    model = models.mlp(16, hidden=(32,), num_classes=3)
    out = pruning.imp(model, pre, sgd, split.train, 0.75, phases=2, epochs_per_phase=1, schedule="allr", batch_size=50)
    rate = 1 - math.sqrt(1 - 0.75)  # 0.5 per phase
    # phase 1 by hand: global magnitude pruning of the pretrained weights to 50 %
    ref = models.mlp(16, hidden=(32,), num_classes=3)
    ref.load_state_dict(pre.state_dict)
    before = [p.detach().clone() for p in ref.parameters()]
    weights = [w for _, w in pruning.criteria.prunable_parameters(ref)]
    magnitudes = torch.cat([w.detach().abs().flatten() for w in weights])
    k = math.floor(rate * magnitudes.numel())
    threshold = magnitudes.sort().values[k - 1]
    with torch.no_grad():
        for w in weights:
            w[w.abs() <= threshold] = 0.0
    after = [p.detach() for p in ref.parameters()]
    removed = math.sqrt(sum(float((b - a).double().pow(2).sum()) for b, a in zip(before, after)))
    total = math.sqrt(sum(float(b.double().pow(2).sum()) for b in before))
    d1 = removed / (total * math.sqrt(rate))
    d2 = 12 / pre.iterations
    d = min(1.0, max(d1, d2))
    row = out.phases.iloc[0]
    assert row.rate == pytest.approx(rate) and row.d2 == pytest.approx(0.25)
    assert row.d1 == pytest.approx(d1, rel=1e-9) and row.d == pytest.approx(d, rel=1e-9)
    eta_max = float(pre.lrs.max())
    assert row.peak_lr == pytest.approx(d * eta_max, rel=1e-9)
    assert out.lrs[:12].max() == pytest.approx(d * eta_max) and out.lrs[0] == 0.0  # 1 warm-up step from 0
    second = out.phases.iloc[1]
    assert second.peak_lr == pytest.approx(second.d * eta_max) and out.lrs[12:].max() == pytest.approx(second.peak_lr)


def test_imp_keep_optimizer_builds_one_optimizer_for_all_phases(small_task):
    """The official code keeps one SGD optimizer (and its momentum) across phases; the default is one per phase."""
    split, pre = small_task
    for keep, expected in ((False, 3), (True, 1)):
        built = []

        def factory(params, built=built):
            built.append(sgd(params))
            return built[-1]

        model = models.mlp(16, hidden=(32,), num_classes=3)
        out = pruning.imp(model, pre, factory, split.train, 0.9, phases=3, epochs_per_phase=1, keep_optimizer=keep)
        assert len(built) == expected
        assert out.masks.sparsity() == pytest.approx(pruning.sparsity(model)["overall"])
        if keep:  # momentum carried over: the buffers exist and pruned weights stay exactly zero
            assert all(built[0].state[p].get("momentum_buffer") is not None for p in model.parameters())
