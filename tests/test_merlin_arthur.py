"""Unit tests of companion.merlin_arthur: the AFC toy's exact values, the bound, the Morgana criterion,
the provers and precision by feature matching."""

import math

import numpy as np
import pytest
import torch
from companion import merlin_arthur as ma
from companion.data import DataRootError

# --- the AFC toy and the bounds --------------------------------------------------------------------------------------


def test_toy_values_match_the_analytic_ones():
    got, exact = ma.toy_measured(50, 0.05), ma.toy_closed_form(50, 0.05)
    assert got.keys() == exact.keys()
    for key in got:
        assert abs(got[key] - exact[key]) < 1e-9, key
    assert abs(got["precision_b"] - 2 / 7) < 1e-9 and round(got["precision_b"], 4) == 0.2857
    assert abs(got["precision"] - 9 / 14) < 1e-9 and round(got["precision"], 4) == 0.6429
    assert abs(got["bound_naive"] - 20 / 21) < 1e-9 and round(got["bound_naive"], 4) == 0.9524
    assert abs(got["bound_true"] - 2 / 7) < 1e-9 and round(got["bound_true"], 4) == 0.2857
    hb = lambda p: -(p * math.log2(p) + (1 - p) * math.log2(1 - p))  # noqa: E731
    assert abs(got["mi_bound_naive"] - (1 - hb(20 / 21))) < 1e-9 and round(got["mi_bound_naive"], 4) == 0.7238
    assert abs(got["mi"] - (1 - hb(2 / 7) / 2)) < 1e-9 and round(got["mi"], 4) == 0.5684
    assert got["kappa"] == 50 and got["eps_c"] == 0 and got["eps_s"] == 0.05


@pytest.mark.parametrize("m,q", [(10, 0.1), (20, 0.02), (5, 0.2)])
def test_toy_counts_follow_the_closed_form_on_other_grids(m, q):
    got, exact = ma.toy_measured(m, q), ma.toy_closed_form(m, q)
    assert all(abs(got[k] - exact[k]) < 1e-9 for k in got)
    assert got["precision"] < got["bound_naive"] and got["precision"] >= got["bound_true"] - 1e-12


def test_toy_rejects_inexact_sizes():
    with pytest.raises(ValueError):
        ma.toy_data(7, 0.05)


def test_bound_formula_and_information_bound():
    assert ma.precision_bound(0.0, 0.0) == 1.0
    assert abs(ma.precision_bound(0.1, 0.2) - (1 - 0.1 - 0.2 / 1.1)) < 1e-12
    # kappa / alpha scale eps_s, B only enters the denominator
    assert abs(ma.precision_bound(0.1, 0.05, kappa=2, alpha=0.5, B=2) - (1 - 0.1 - 0.2 / (0.9 + 0.1))) < 1e-12
    assert ma.information_bound(0.4) == 0.0
    assert abs(ma.information_bound(0.9) - (1 - ma.binary_entropy(0.9))) < 1e-12


def test_afc_kappa_is_one_without_other_class_points():
    X, y = ma.toy_data(10, 0.1)
    assert ma.afc_kappa(X, y, [(10, 1.0)], 1) == 1.0
    assert abs(ma.afc_kappa(X, y, [(i, 1.0) for i in range(10)], 0) - 10) < 1e-12


# --- losses and metrics ------------------------------------------------------------------------------------------------


def test_morgana_criterion_equals_reference_on_random_logits():
    g = torch.Generator().manual_seed(0)
    for scale in (0.1, 1.0, 5.0):
        z = torch.randn(512, 3, generator=g, dtype=torch.float64) * scale
        y = torch.randint(0, 2, (512,), generator=g)
        assert abs(float(ma.morgana_criterion(z, y) - ma.morgana_criterion_reference(z, y))) < 1e-6
        p = z.softmax(1)
        ref = -(p[torch.arange(512), y] + p[:, 2]).log()
        assert torch.allclose(ma.morgana_criterion(z, y, reduction="none"), ref, atol=1e-6)
    # stable where the reference underflows: the wrong class dominates by far
    z = torch.tensor([[0.0, 200.0, 0.0]])
    assert (
        torch.isfinite(ma.morgana_criterion(z, torch.tensor([0])))
        and float(ma.morgana_criterion(z, torch.tensor([0]))) > 150
    )


def test_completeness_soundness_counts_bottom_as_sound():
    y = torch.tensor([0, 0, 1, 1])
    out = ma.completeness_soundness(torch.tensor([0, 2, 1, 1]), torch.tensor([2, 2, 0, 1]), y)
    assert out["eps_c"] == 0.5 and out["eps_s"] == 0.5
    assert out["completeness_avg"] == 0.75 and out["soundness_avg"] == 0.75


def test_precision_by_matching_on_a_hand_built_data_set():
    # 5 points, 3 features in {-1, +1}; the query reveals feature 0 = +1 (points 0, 1, 2 match; classes 1, 1, 0)
    X = torch.tensor([[1.0, 1.0, -1.0], [1.0, -1.0, -1.0], [1.0, 1.0, 1.0], [-1.0, 1.0, 1.0], [-1.0, -1.0, 1.0]])
    y = torch.tensor([1, 1, 0, 0, 0])
    masks = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    out = ma.precision_by_matching(X, y, X[[0, 2, 3]], masks, y[[0, 2, 3]])
    assert out["count"].tolist() == [3, 1, 3]
    assert np.allclose(out["precision"], [2 / 3, 1.0, 1.0])
    assert np.allclose(out["entropy"], [ma.binary_entropy(2 / 3), 0.0, 0.0])


def test_matching_with_one_hot_groups_matches_categories():
    groups = torch.tensor([0, 0, 1, 1])
    X = torch.tensor([[1.0, 0.0, 0.0, 1.0], [1.0, 0.0, 1.0, 0.0], [0.0, 1.0, 0.0, 1.0]])
    y = torch.tensor([1, 0, 0])
    out = ma.precision_by_matching(X, y, X[:1], torch.tensor([[1.0, 0.0]]), y[:1], groups)
    assert out["count"].tolist() == [2] and np.allclose(out["precision"], [0.5])


# --- provers -----------------------------------------------------------------------------------------------------------


def _arthur(d=6, bn=False, seed=0):
    torch.manual_seed(seed)
    return ma.arthur_mlp(d, hidden=(16,), batch_norm=bn)


def test_brute_force_equals_exhaustive_search():
    torch.manual_seed(1)
    A, d, k = _arthur(), 6, 2
    x = torch.randn(5, d).sign()
    y = torch.tensor([0, 1, 0, 1, 1])
    for role in ("merlin", "morgana"):
        got = ma.BruteForce(d, k, rows=7)(A, x, y, role)  # tiny chunks: exercises the chunking
        for i in range(len(x)):
            best, best_mask = math.inf, None
            for a in range(d):
                for b in range(a + 1, d):
                    m = torch.zeros(1, d)
                    m[0, [a, b]] = 1
                    with torch.no_grad():
                        loss = float(ma.prover_loss(A(ma.apply_mask(x[i : i + 1], m)), y[i : i + 1], role))
                    if loss < best:
                        best, best_mask = loss, m
            assert torch.equal(got[i], best_mask[0]), (role, i)


def test_greedy_and_sfw_masks_have_exactly_k_ones():
    A, d = _arthur(8), 8
    x = torch.randn(9, d).sign()
    y = torch.randint(0, 2, (9,))
    for k in (1, 3, 5):
        for prover in (ma.Greedy(d, k), ma.SFWProver(d, k, iterations=10), ma.AmortisedProver(d, d, k)):
            for role in ("merlin", "morgana"):
                m = prover(A, x, y, role)
                assert m.shape == (9, d) and set(m.unique().tolist()) <= {0.0, 1.0}
                assert (m.sum(1) == k).all()


def test_greedy_first_pick_is_the_best_single_feature():
    A, d = _arthur(), 6
    x = torch.randn(4, d).sign()
    y = torch.tensor([0, 1, 1, 0])
    assert torch.equal(ma.Greedy(d, 1)(A, x, y, "merlin"), ma.BruteForce(d, 1)(A, x, y, "merlin"))


def test_positive_ksparse_lmo_and_projection():
    r = ma.PositiveKSparsePolytope(8, 2, d=4)
    g = torch.tensor([-3.0, 1.0, -1.0, -2.0, 0.5, 0.2, 0.1, -0.1])
    assert r.lmo(g).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]  # only negative entries, per row
    p = r.project(torch.tensor([2.0, 2.0, 2.0, -1.0, 0.2, 0.1, 0.0, 0.0]))
    assert r.contains(p) and float(p[:4].sum()) == pytest.approx(2.0)
    assert r.gauge(torch.tensor([-0.1, 0, 0, 0, 0, 0, 0, 0])) == math.inf


def test_prover_step_leaves_arthur_unchanged():
    A, d = _arthur(8, bn=True), 8
    A.train()
    A(torch.randn(32, d))  # non-trivial running statistics
    before = {k: v.clone() for k, v in A.state_dict().items()}
    x = torch.randn(16, d).sign()
    y = torch.randint(0, 2, (16,))
    amortised = ma.AmortisedProver(d, d, 3)
    for prover in (ma.SFWProver(d, 3, iterations=5), ma.Greedy(d, 3), ma.BruteForce(d, 2)):
        prover(A, x, y, "morgana")
    amortised.fit_step(A, x, y, "merlin")
    after = A.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)  # weights, BN running stats and counter
    assert A.training and all(p.requires_grad and p.grad is None for p in A.parameters())


def test_min_max_game_runs_and_evaluates():
    data = ma.binarised_digits(seed=0)
    A = _arthur(64)
    Xtr, ytr = data.train
    ma.pretrain_arthur(A, Xtr, ytr, epochs=1)
    merlin, morgana = ma.Greedy(64, 2), ma.Greedy(64, 2)
    hist = ma.train_min_max(A, merlin, morgana, Xtr, ytr, gamma=2.0, epochs=1)
    assert len(hist.merlin_loss) == 1
    out = ma.evaluate_game(A, merlin, morgana, data)["metrics"]
    assert 0 <= out["precision"] <= 1 and out["bound"] <= 1 and out["n_test"] == len(data.test_idx)


# --- data --------------------------------------------------------------------------------------------------------------


def test_datasets_are_balanced_and_zero_free():
    for data in (ma.binarised_digits(), ma.discretised_breast_cancer()):
        assert int((data.y == 0).sum()) == int((data.y == 1).sum())
        revealed = ma.expand_mask(torch.ones(1, data.d), data.groups)[0]
        per_feature = (
            torch.zeros(len(data.X), data.d).index_add_(1, data.groups, data.X.abs())
            if data.groups is not None
            else data.X.abs()
        )
        assert (per_feature > 0).all() and revealed.numel() == data.X.shape[1]
    assert ma.discretised_breast_cancer().X.shape == (424, 90)


def test_census_loader_on_a_small_csv(tmp_path):
    rows = [
        "39, State-gov, 77516, Bachelors, 13, Never-married, Adm-clerical, Not-in-family, White, Male, 2174, 0, 40, United-States, <=50K",
        "50, Self-emp-not-inc, 83311, Bachelors, 13, Married-civ-spouse, Exec-managerial, Husband, White, Male, 0, 0, 13, United-States, <=50K",
        "38, Private, 215646, HS-grad, 9, Divorced, Handlers-cleaners, Not-in-family, White, Female, 0, 0, 40, United-States, <=50K",
        "53, Private, 234721, 11th, 7, Married-civ-spouse, Handlers-cleaners, Husband, Black, Female, 0, 0, 40, United-States, <=50K",
        "28, Private, 338409, Bachelors, 13, Married-civ-spouse, Prof-specialty, Wife, Black, Female, 0, 0, 40, Cuba, <=50K",
        "37, ?, 284582, Masters, 14, Married-civ-spouse, Exec-managerial, Wife, White, Female, 0, 0, 40, United-States, <=50K",
        "31, Private, 45781, Masters, 14, Never-married, Prof-specialty, Not-in-family, White, Male, 14084, 0, 50, United-States, >50K",
    ]
    (tmp_path / "census").mkdir()
    (tmp_path / "census" / "adult.data").write_text("\n".join(rows) + "\n\n")
    data = ma.load("census", data_root=str(tmp_path), bins=2, test_fraction=0.34)
    assert data.d == 10 and len(data.y) == 6  # the row with '?' dropped; 3 male + 3 female kept
    assert data.X.shape[1] == len(data.groups) and int(data.groups.max()) == 9
    assert len(data.test_idx) == 2
    # one 1 per block: every feature revealed once
    assert torch.equal(torch.zeros(6, 10).index_add_(1, data.groups, data.X), torch.ones(6, 10))


def test_missing_data_root_files_raise_one_line_errors(tmp_path):
    for name, missing in (("census", "adult.data"), ("mnist", "train-images-idx3-ubyte.gz")):
        with pytest.raises(DataRootError) as err:
            ma.load(name, data_root=str(tmp_path))
        assert missing in str(err.value) and "\n" not in str(err.value)
    with pytest.raises(DataRootError):
        ma.load("census")


def test_binarised_mnist_on_small_idx_files(tmp_path):
    import gzip
    import struct

    def write(name, arr):
        header = struct.pack(">BBBB", 0, 0, 8, arr.ndim) + b"".join(struct.pack(">i", s) for s in arr.shape)
        with gzip.open(tmp_path / "mnist" / name, "wb") as fh:
            fh.write(header + arr.astype(np.uint8).tobytes())

    (tmp_path / "mnist").mkdir()
    rng = np.random.default_rng(0)
    write("train-images-idx3-ubyte.gz", rng.integers(0, 256, (12, 28, 28)))
    write("train-labels-idx1-ubyte.gz", np.array([0, 1, 2] * 4))
    write("t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (6, 28, 28)))
    write("t10k-labels-idx1-ubyte.gz", np.array([0, 1, 3] * 2))
    data = ma.load("mnist", data_root=str(tmp_path), test_fraction=0.34)
    assert data.X.shape == (12, 784) and set(data.X.unique().tolist()) == {-1.0, 1.0}
    assert int(data.y.sum()) == 6 and data.shape == (28, 28)


def test_brute_force_fast_path_matches_the_plain_forward():
    # an MLP Arthur takes the per-feature first-layer path; wrapped in a Sequential it takes the plain one
    torch.manual_seed(3)
    data = ma.discretised_breast_cancer()
    A = ma.arthur_mlp(90, hidden=(16,))
    wrapped = torch.nn.Sequential(A)
    x, y = data.X[:7], data.y[:7]
    fast = ma.BruteForce(30, 2, data.groups)
    assert ma.provers._linear_head(A) is not None and ma.provers._linear_head(wrapped) is None
    for role in ("merlin", "morgana"):
        assert torch.equal(fast(A, x, y, role), fast(wrapped, x, y, role))


# --- the gpu profile's options: upsampled digits, CNN Arthur, CNN prover --------------------------------------------


@pytest.mark.parametrize("size", [16, 24])
def test_upsampled_digits_keep_labels_split_and_binarisation(size):
    small, big = ma.binarised_digits(), ma.binarised_digits(image_size=size)
    assert big.X.shape == (len(small.y), size * size) and big.d == size * size and big.shape == (size, size)
    assert torch.equal(big.y, small.y)
    assert torch.equal(big.train_idx, small.train_idx) and torch.equal(big.test_idx, small.test_idx)
    assert set(big.X.unique().tolist()) == {-1.0, 1.0}  # same ±1 binarisation, 0 still means hidden
    # bilinear upsampling, then the same threshold: a coarse copy of the 8x8 digit
    from sklearn.datasets import load_digits

    raw = load_digits()
    sel = np.isin(raw.target, (2, 4))
    up = ma.upsample_images(raw.data[sel], (8, 8), size)
    ref = torch.nn.functional.interpolate(
        torch.tensor(raw.data[sel]).reshape(-1, 1, 8, 8), size=(size, size), mode="bilinear", align_corners=False
    ).reshape(-1, size * size)
    assert np.allclose(up, ref.numpy())
    assert ma.load("digits", image_size=size).X.shape[1] == size * size
    assert torch.equal(ma.load("digits", image_size=8).X, small.X)
    with pytest.raises(ValueError):
        ma.load("breast_cancer", image_size=16)


def test_cnn_arthur_shapes_and_no_batch_norm():
    arthur = ma.make_arthur("cnn", 256, [64, 64], (16, 16))
    assert arthur(torch.randn(5, 256)).shape == (5, 3)
    assert ma.make_arthur("cnn", 64, [32], (8, 8))(torch.randn(2, 64)).shape == (2, 3)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in arthur.modules())
    torch.manual_seed(0)
    a = ma.make_arthur("mlp", 64, [64, 64])
    torch.manual_seed(0)
    b = ma.arthur_mlp(64, hidden=(64, 64))
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError):
        ma.make_arthur("cnn", 30, [64], None)
    with pytest.raises(ValueError):
        ma.make_arthur("cnn", 100, [64], (10, 10))


def topk_mask_of(prover, x, k):
    return ma.topk_mask(prover.net(x).detach(), k)


@pytest.mark.parametrize("k", [1, 5, 16])
def test_cnn_prover_masks_have_exactly_k_ones(k):
    torch.manual_seed(0)
    prover = ma.make_prover("amortised", 256, k, 256, None, seed=0, net="cnn", shape=(16, 16))
    arthur = ma.make_arthur("cnn", 256, [32], (16, 16))
    x = torch.randn(7, 256).sign()
    y = torch.randint(0, 2, (7,))
    for role in ("merlin", "morgana"):
        mask = prover(arthur, x, y, role)
        assert mask.shape == (7, 256)
        assert set(mask.unique().tolist()) <= {0.0, 1.0} and (mask.sum(1) == k).all()
        soft = prover.soft_mask(x).detach()  # straight-through: its forward value is the hard mask
        assert torch.allclose(soft, topk_mask_of(prover, x, k), atol=1e-6)
    with pytest.raises(ValueError):
        ma.make_prover("amortised", 30, 2, 90, torch.arange(30).repeat_interleave(3), net="cnn", shape=None)


def test_cnn_prover_step_changes_the_prover_and_leaves_arthur_unchanged():
    torch.manual_seed(0)
    arthur = ma.make_arthur("cnn", 64, [32], (8, 8))
    arthur.train()
    before = {n: t.clone() for n, t in arthur.state_dict().items()}
    prover = ma.make_prover("amortised", 64, 4, 64, None, seed=0, net="cnn", shape=(8, 8), steps=2)
    net_before = [p.clone() for p in prover.net.parameters()]
    x, y = torch.randn(16, 64).sign(), torch.randint(0, 2, (16,))
    prover.fit_step(arthur, x, y, "merlin")
    prover.fit_step(arthur, x, y, "morgana")
    assert all(torch.equal(before[n], t) for n, t in arthur.state_dict().items())
    assert all(p.grad is None for p in arthur.parameters()) and arthur.training
    assert any(not torch.equal(a, b) for a, b in zip(net_before, prover.net.parameters()))


def test_cnn_game_runs_on_upsampled_digits():
    torch.manual_seed(0)
    data = ma.load("digits", image_size=16)
    X, y = data.train
    arthur = ma.make_arthur("cnn", data.d, [32], data.shape)
    ma.pretrain_arthur(arthur, X, y, epochs=1)
    merlin = ma.make_prover("amortised", data.d, 8, data.d, None, seed=0, net="cnn", shape=data.shape)
    morgana = ma.make_prover("greedy", data.d, 8, data.d, None)
    ma.train_min_max(arthur, merlin, morgana, X[:64], y[:64], epochs=1)
    m = ma.evaluate_game(arthur, merlin, morgana, data)["metrics"]
    assert 0.0 <= m["completeness"] <= 1.0 and 0.0 <= m["soundness"] <= 1.0 and 0.0 <= m["precision"] <= 1.0
