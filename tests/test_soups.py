"""Sparse Model Soups (companion.soups): merges keep the mask, BN recalibration, calibration, SMS baselines."""

from __future__ import annotations

import functools
import math
import pickle

import numpy as np
import pytest
import torch
from companion import data, models, soups
from companion.data import DataRootError
from companion.pruning import Masks, Pretrained, select
from torch.optim.swa_utils import update_bn
from torch.utils.data import DataLoader, TensorDataset

MODEL = functools.partial(models.mlp_bn, in_features=16, hidden=(16, 16), num_classes=3)


@pytest.fixture(scope="module")
def split():
    return data.synth(
        n_samples=600, n_features=16, n_informative=8, n_redundant=2, n_classes=3, n_clusters_per_class=1, seed=0
    )


@pytest.fixture(scope="module")
def recipe():
    return soups.Recipe(MODEL, batch_size=64)


@pytest.fixture(scope="module")
def dense(split, recipe):
    torch.manual_seed(0)
    model = MODEL()
    lrs = np.full(10 * math.ceil(len(split.train) / 64), 0.1)
    return Pretrained({k: v.clone() for k, v in model.state_dict().items()}, lrs, 10)


def perturbed(model, masks, n, seed=0):
    """n copies of model's state with noise on every float entry, the mask applied."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        m = MODEL()
        m.load_state_dict(
            {
                k: v + 0.1 * torch.randn(v.shape, generator=g) if v.is_floating_point() else v
                for k, v in model.state_dict().items()
            }
        )
        masks.apply_(m)
        out.append(m.state_dict())
    return out


def test_soup_of_one_mask_has_exactly_that_mask():
    torch.manual_seed(1)
    model = MODEL()
    masks = select(model, 0.8)
    states = perturbed(model, masks, 4)
    soup = soups.uniform_soup(MODEL(), states, masks)
    got = Masks.from_model(soup)
    assert all(torch.equal(got[n], masks[n]) for n in masks)
    assert got.sparsity() == masks.sparsity()


def test_average_of_differently_masked_models_is_denser():
    """Two independent random 90 % masks: the average is 1 - 0.9**2 = 19 % dense (81 % sparse)."""
    torch.manual_seed(2)
    big = functools.partial(models.mlp_bn, in_features=64, hidden=(256, 256), num_classes=10)
    states = []
    for seed in (0, 1):
        m = big()
        select(m, 0.9, "random", generator=torch.Generator().manual_seed(seed)).apply_(m)
        states.append(m.state_dict())
    avg = big()
    avg.load_state_dict(soups.average_states(states))
    assert abs(Masks.from_model(avg).sparsity() - 0.81) < 0.01


def test_uniform_soup_of_identical_models_is_the_model(split):
    torch.manual_seed(3)
    model = MODEL()
    with torch.no_grad():
        model.net[2].running_mean.uniform_()  # non-trivial buffers
    soup = soups.uniform_soup(MODEL(), [model.state_dict()] * 3)
    for k, v in model.state_dict().items():
        assert torch.equal(soup.state_dict()[k], v), k
    bn = soups.bn_subset(split.train)
    soup = soups.uniform_soup(MODEL(), [model.state_dict()] * 3, bn_data=bn)
    soups.recalibrate_bn(model, bn)
    for k, v in model.state_dict().items():
        assert torch.equal(soup.state_dict()[k], v), k


def test_bn_recalibration_equals_update_bn(split):
    torch.manual_seed(4)
    a = MODEL()
    b = MODEL()
    b.load_state_dict(a.state_dict())
    subset = soups.bn_subset(split.train, 0.2)
    assert len(subset) == int(0.2 * len(split.train))
    assert torch.equal(subset.tensors[0], split.train.tensors[0][: len(subset)])  # the unshuffled prefix
    soups.recalibrate_bn(a, subset, batch_size=32)
    update_bn(DataLoader(TensorDataset(subset.tensors[0]), batch_size=32, shuffle=False), b)
    for k, v in a.state_dict().items():
        assert torch.allclose(v.float(), b.state_dict()[k].float(), atol=1e-6), k
    assert a.net[2].momentum == 0.1  # momentum restored


def test_greedy_soup_never_below_best_ingredient(split):
    torch.manual_seed(5)
    model = MODEL()
    masks = select(model, 0.5)
    states = perturbed(model, masks, 4, seed=5)
    out = soups.greedy_soup(MODEL(), states, split.val, masks, soups.bn_subset(split.train))
    assert out.val_acc >= max(out.ingredient_val_acc)
    assert out.chosen[0] == int(np.argmax(out.ingredient_val_acc))
    one = soups.greedy_soup(MODEL(), states[:1], split.val, masks)
    assert one.chosen == [0] and all(torch.equal(one.state[k], v) for k, v in states[0].items())


def test_ece_hand_built():
    # always confidence 1, right 7 times in 10: ECE = MCE = 0.3
    probs = torch.tensor([[1.0, 0.0]] * 10)
    targets = torch.tensor([0] * 7 + [1] * 3)
    out = soups.calibration_errors(probs, targets)
    assert out["ece"] == pytest.approx(0.3, abs=1e-6) and out["mce"] == pytest.approx(0.3, abs=1e-6)
    # confidence 0.8 and right 8 times in 10: perfectly calibrated
    probs = torch.tensor([[0.8, 0.2]] * 10)
    targets = torch.tensor([0] * 8 + [1] * 2)
    assert soups.calibration_errors(probs, targets)["ece"] == pytest.approx(0.0, abs=1e-6)
    # two bins: conf 0.9 right 1/2 (gap 0.4), conf 0.6 right 2/2 (gap 0.4) -> ECE 0.4, with weights 2/4 each
    probs = torch.tensor([[0.9, 0.1], [0.9, 0.1], [0.6, 0.4], [0.6, 0.4]])
    targets = torch.tensor([0, 1, 0, 0])
    out = soups.calibration_errors(probs, targets)
    assert out["ece"] == pytest.approx(0.4, abs=1e-6) and out["mce"] == pytest.approx(0.4, abs=1e-6)


def test_worst_class_accuracy_and_geometry():
    pred = torch.tensor([0, 0, 1, 1, 2, 0])
    target = torch.tensor([0, 0, 1, 2, 2, 2])
    assert soups.worst_class_accuracy(pred, target, 3) == pytest.approx(1 / 3)
    g = soups.geometry([{"w": torch.tensor([1.0, 0.0])}, {"w": torch.tensor([0.0, 1.0])}])
    assert g["mean_angle"] == pytest.approx(90.0) and g["max_distance"] == pytest.approx(math.sqrt(2))
    assert g["max_to_centre"] == pytest.approx(math.sqrt(2) / 2)


def test_phase_sparsities_and_variants():
    assert [round(s, 4) for s in soups.phase_sparsities(0.9, 3)] == [0.5358, 0.7846, 0.9]
    assert [round(s, 4) for s in soups.phase_sparsities(0.98, 3)] == [0.7286, 0.9263, 0.98]
    assert [v.seed for v in soups.variants("seed", [0, 1, 2], seed=10)] == [10, 11, 12]
    assert [v.epochs for v in soups.variants("retrain_length", [2, 3])] == [2, 3]
    assert [v.peak_lr for v in soups.variants("retrain_schedule", [0.05])] == [0.05]
    with pytest.raises(ValueError):
        soups.variants("momentum", [0.9])


def test_imp_mx_spends_m_times_the_epochs(split, recipe, dense):
    one = soups.imp_mx(recipe, dense, split.train, 0.7, phases=2, epochs=1, m=1)
    three = soups.imp_mx(recipe, dense, split.train, 0.7, phases=2, epochs=1, m=3)
    assert three.epochs == 3 * one.epochs == 6
    assert three.samples == 3 * one.samples == 6 * len(split.train)
    assert three.masks.sparsity() == pytest.approx(0.7, abs=1e-3)


def test_sms_keeps_the_mask_and_matches_parallel_workers(split, recipe, dense):
    cands = soups.variants("seed", [0, 1])
    out = soups.sms(recipe, dense, split.train, 0.7, 2, cands, 1, eval_sets={"val": split.val})
    assert out.epochs == 4 and len(out.candidates) == 2 and len(out.phases) == 2
    model = MODEL()
    model.load_state_dict(out.state)
    got = Masks.from_model(model)
    assert all(torch.equal(got[n], out.masks[n]) for n in out.masks)
    assert out.masks.sparsity() == pytest.approx(0.7, abs=1e-3)
    par = soups.sms(recipe, dense, split.train, 0.7, 2, cands, 1, workers=2)
    assert all(torch.equal(par.state[k], v) for k, v in out.state.items())
    greedy = soups.sms(
        recipe, dense, split.train, 0.7, 1, cands, 1, merge="greedy", val=split.val, eval_sets={"val": split.val}
    )
    row = greedy.phases.iloc[-1]
    assert row["val_acc"] >= max(row["val_candidates"])
    with pytest.raises(ValueError):
        soups.sms(recipe, dense, split.train, 0.7, 1, cands, 1, merge="greedy")


def test_reprune_mask_is_the_prune_of_the_average(recipe, split, dense):
    runs = [soups.imp_mx(recipe, dense, split.train, 0.8, 2, 1, seed=s) for s in (0, 1, 2)]
    out = soups.reprune(recipe, [r.state for r in runs], 0.8, split.train)
    avg = MODEL()
    avg.load_state_dict(soups.average_states([r.state for r in runs]))
    expected = select(avg, 0.8)
    assert all(torch.equal(out.masks[n], expected[n]) for n in expected)
    assert out.average_sparsity < 0.8  # the runs' masks differ
    final = MODEL()
    final.load_state_dict(out.state)
    assert Masks.from_model(final).sparsity() == pytest.approx(out.masks.sparsity())


def test_cifar_c_loader(tmp_path):
    rng = np.random.default_rng(0)
    (tmp_path / "cifar-100-python").mkdir()
    with open(tmp_path / "cifar-100-python" / "train", "wb") as fh:
        pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8), b"fine_labels": list(range(20))}, fh)
    folder = tmp_path / "CIFAR-100-C"
    folder.mkdir()
    with pytest.raises(DataRootError, match="gaussian_noise.npy"):
        soups.cifar_c(tmp_path, n_val=5)
    images = rng.integers(0, 256, (5 * 4, 32, 32, 3), dtype=np.uint8)
    np.save(folder / "gaussian_noise.npy", images)
    np.save(folder / "labels.npy", np.arange(20) % 100)
    import companion.soups.data as sd

    old = sd.PER_SEVERITY
    sd.PER_SEVERITY = 4
    try:
        ds = soups.cifar_c(tmp_path, severity=3, n_val=5)
    finally:
        sd.PER_SEVERITY = old
    x, y = ds.tensors
    assert x.shape == (4, 3, 32, 32) and y.tolist() == [8, 9, 10, 11]
    assert torch.isfinite(x).all()


def test_sms_on_budgeted_dense_phase_with_allr(split):
    """SMS on BIMP-like phases: a short dense phase with a linear schedule, then ALLR phases whose d1 is
    recomputed from each phase's soup (one value per phase, in [0, 1])."""
    from companion.pruning import pretrain

    recipe = soups.Recipe(MODEL, batch_size=64, schedule="allr")
    torch.manual_seed(6)
    model = MODEL()
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, nesterov=True)
    dense = pretrain(model, opt, split.train, 2, lr_schedule="linear", batch_size=64, eval_every=2)
    out = soups.sms(recipe, dense, split.train, 0.8, 2, soups.variants("seed", [0, 1]), 1)
    assert out.masks.sparsity() == pytest.approx(0.8, abs=1e-3)
    assert len(out.phases.d1) == 2 and all(0 <= d <= 1 for d in out.phases.d1)
    assert out.phases.d1.iloc[0] != out.phases.d1.iloc[1]


def test_one_shot_with_one_ingredient_is_the_longer_run(split, recipe, dense):
    """Fig. 4's comparison: with m = 1 the soup is its single ingredient and the 'm times longer' run retrains
    as long with the same seed, so all three accuracies are equal; with m = 2 both sides spend 2k epochs and the
    longer run is another model."""
    one = soups.one_shot(recipe, dense, split.train, 0.7, 1, [soups.Variant(seed=3)], split.test)
    assert one.soup == one.longer == one.ingredients[0]
    assert one.soup_epochs == one.longer_epochs == 1
    two = soups.one_shot(recipe, dense, split.train, 0.7, 1, soups.variants("seed", [0, 1]), split.test)
    assert two.soup_epochs == two.longer_epochs == 2
    assert len(two.ingredients) == 2 and two.longer != two.soup


def test_testbed_dense_phase_is_cached_and_linear(tmp_path, monkeypatch):
    """BIMP's dense phase comes from the cache under its own key (epochs, linear schedule): a second call hits,
    and its learning rates decay linearly (unlike the step-schedule pretraining)."""
    from companion import paths

    monkeypatch.setattr(paths, "runs_dir", lambda: tmp_path)
    tb = soups.testbed("synth", "mlp_bn", 0, 2, 0.1, 1e-4, 128, "cpu", n_samples=600, hidden=(8,))
    first, hit1 = tb.dense_phase(2)
    again, hit2 = tb.dense_phase(2)
    assert not hit1 and hit2
    assert all(torch.equal(first.state_dict[k], again.state_dict[k]) for k in first.state_dict)
    assert np.all(np.diff(first.lrs) < 0) and first.epochs == 2
    assert not np.array_equal(first.lrs, tb.pretrained.lrs)
