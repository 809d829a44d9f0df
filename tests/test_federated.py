"""Unit tests of companion.federated: attacks, defences, ExpGuard, the round loop, AUROC."""

import math

import numpy as np
import pytest
import torch
from companion.federated import attacks as A
from companion.federated import defences as D
from companion.federated import loop as L
from companion.federated.data import FederatedTask, dirichlet_partition, iid_partition, make_task
from pandas.testing import assert_frame_equal
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score

# Paper Fig. 2 configuration: 3 classes, 4 honest clients (alpha = 3/7 with 3 byzantine clients).
HONEST = torch.tensor([[0.7, 0.2, 0.1], [0.6, 0.3, 0.1], [0.5, 0.3, 0.2], [0.8, 0.1, 0.1]])[:, None, :]


def test_vertices_of_lma_asf_fixed_cpa():
    mean = HONEST.mean(0)
    assert torch.allclose(mean, torch.tensor([[0.65, 0.225, 0.125]]))
    assert A.vertex("LMA", mean).tolist() == [[0.0, 0.0, 1.0]]  # least likely class
    assert A.vertex("CELMAX", mean).tolist() == [[0.0, 0.0, 1.0]]
    assert A.vertex("ASF", mean).tolist() == [[0.0, 1.0, 0.0]]  # second most likely
    assert A.vertex("fixed", mean).tolist() == [[1.0, 0.0, 0.0]]
    S = torch.tensor([[0.05, -0.02, -0.05], [-0.02, 0.04, -0.02], [-0.05, -0.02, 0.07]])
    assert A.vertex("CPA", mean, S).tolist() == [[0.0, 0.0, 1.0]]  # argmin of S's column of class 1
    S2 = torch.tensor([[0.05, -0.06, -0.01], [-0.06, 0.04, -0.02], [-0.01, -0.02, 0.07]])
    assert A.vertex("CPA", mean, S2).tolist() == [[0.0, 1.0, 0.0]]
    msgs = A.prediction_attack("LMA", HONEST, 3)
    agg = torch.cat([HONEST, msgs]).mean(0)
    assert torch.allclose(agg, torch.tensor([[0.37142857, 0.12857143, 0.5]]), atol=1e-6)
    assert agg.argmax().item() == 2  # the argmax flips from class 1 to class 3


def test_naive_is_one_hot_and_cpa_matrix_rows_sum_to_zero():
    g = torch.Generator().manual_seed(0)
    v = A.vertex("naive", torch.full((500, 4), 0.25), generator=g)
    assert torch.all(v.sum(1) == 1) and set(v.argmax(1).tolist()) == {0, 1, 2, 3}
    probs = torch.softmax(torch.randn(200, 5, generator=g), 1)
    S = A.cpa_matrix(probs)
    assert torch.allclose(S, S.T) and torch.allclose(S.sum(1), torch.zeros(5), atol=1e-6)


@pytest.mark.parametrize("name", ["LMA", "CPA"])
@pytest.mark.parametrize("weighting", ["intended", "code"])
def test_hips_messages_are_honest_vectors(name, weighting):
    g = torch.Generator().manual_seed(1)
    honest = torch.softmax(3 * torch.randn(6, 40, 5, generator=g), -1)
    S = A.cpa_matrix(honest.reshape(-1, 5))
    msg = A.prediction_attack(name, honest, 3, S=S, use_hips=True, hips_weighting=weighting)
    assert msg.shape == (3, 40, 5)
    for x in range(40):
        assert any(torch.equal(msg[0, x], honest[j, x]) for j in range(6))
    # the chosen honest vector is the best one for the objective
    mean = honest.mean(0)
    if name == "CPA":
        rows = S[mean.argmax(1)]
        val = (honest * rows).sum(-1)
        assert torch.allclose((msg[0] * rows).sum(-1), val.min(0).values)
    else:
        a = 3 / 9
        mix = (1 - a) * mean + a * honest if weighting == "intended" else a * mean + (1 - a) * honest
        obj = -(mean * mix.log()).sum(-1)
        assert torch.equal(msg[0], honest[obj.argmax(0), torch.arange(40)])


def test_partial_attack_sends_the_honest_mean_elsewhere():
    g = torch.Generator().manual_seed(2)
    honest = torch.softmax(torch.randn(5, 400, 4, generator=g), -1)
    msg = A.prediction_attack("LMA", honest, 2, sample_frac=0.5, generator=g)[0]
    is_mean = torch.isclose(msg, honest.mean(0)).all(1)
    assert 0.4 < is_mean.float().mean() < 0.6
    assert torch.all(msg[~is_mean].max(1).values == 1)


def test_parameter_attacks_and_the_code_bug():
    g = torch.Generator().manual_seed(3)
    params = {"w": 3 * torch.randn(20, 10, generator=g), "b": torch.randn(10, generator=g)}
    scaled = A.parameter_attack("ParameterRandomVectorScaled", params, g)
    for k in params:
        assert math.isclose(scaled[k].norm().item(), params[k].norm().item(), rel_tol=1e-5)
        assert not torch.allclose(scaled[k], params[k])
    bug = A.parameter_attack("ParameterRandomVectorScaled", params, g, code_bug=True)
    assert all(torch.equal(bug[k], params[k]) for k in params)  # the official code's no-op
    rnd = A.parameter_attack("random", {"w": torch.zeros(100000)}, g)["w"]
    assert abs(rnd.std().item() - 1) < 0.02


def test_median_and_filter_on_a_known_set():
    Y = torch.cat([HONEST, torch.tensor([[0.0, 0.0, 1.0]]).expand(3, 1, 3)])
    agg, scores = D.median(Y)
    assert torch.allclose(agg, torch.tensor([[0.625, 0.125, 0.25]]))
    assert torch.all(scores[4:] > scores[:4].max())
    # two far outliers among 8 near-identical clients: the 0.7-quantile ('higher': the 8th smallest of 10
    # scores) keeps exactly the 8; the 0.8-quantile is the 9th smallest, an outlier, and keeps everybody
    Z = (
        torch.tensor([0.6, 0.3, 0.1]).repeat(8, 1)[:, None, :]
        + 0.01
        * torch.tensor([[1, -1, 0], [-1, 1, 0], [0, 1, -1], [0, -1, 1], [1, 0, -1], [-1, 0, 1], [0, 0, 0], [0, 0, 0]])[
            :, None, :
        ]
    )
    Z = torch.cat([Z, torch.tensor([[0.0, 0.0, 1.0]]).expand(2, 1, 3)])
    agg, scores = D.filter_(Z, quantile=0.7)
    assert torch.allclose(agg, Z[:8].mean(0), atol=1e-6)
    assert torch.allclose(D.filter_(Z, quantile=0.8)[0], Z.mean(0), atol=1e-6)
    assert torch.all(scores[8:] > scores[:8].max())
    agg_t, _ = D.filter_(Z, quantile=None, threshold=0.5)
    assert torch.allclose(agg_t, Z[:8].mean(0), atol=1e-6)
    agg_c, _ = D.cronus(Z)
    assert torch.allclose(agg_c, Z[:8].mean(0), atol=1e-6)


def test_cronus_constants():
    assert D.cronus_keep(7)[::2] == (3, 5) and math.isclose(D.cronus_keep(7)[1], 1 - 3 / 14)
    assert D.cronus_keep(10) == (4, 0.8, 8)
    assert D.cronus_keep(20)[::2] == (9, 15) and math.isclose(D.cronus_keep(20)[1], 0.775)


def test_geometric_median_matches_an_independent_minimiser():
    g = torch.Generator().manual_seed(4)
    Y = torch.softmax(2 * torch.randn(7, 3, 4, generator=g, dtype=torch.float64), -1)
    z = D.geometric_median(Y, max_iter=1000, ftol=1e-14)
    for x in range(3):
        pts = Y[:, x].numpy()
        res = minimize(
            lambda v: np.linalg.norm(pts - v, axis=1).sum(),
            pts.mean(0),
            method="Nelder-Mead",
            options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000},
        )
        assert np.allclose(z[x].numpy(), res.x, atol=1e-5)
    # robust to 3 of 7 points sent to a far vertex, unlike the mean
    agg, _ = D.geomedian(torch.cat([HONEST, torch.tensor([[0.0, 0.0, 1.0]]).expand(3, 1, 3)]))
    assert agg.argmax().item() == 0


def test_expguard_follows_the_exponential_weights_update():
    guard = D.ExpGuard(3, eta=2.0)
    s = [torch.tensor([0.1, 0.5, 0.0]), torch.tensor([0.2, 0.3, 0.1]), torch.tensor([0.0, 0.9, 0.4])]
    w = torch.ones(3, dtype=torch.float64)
    for st in s:
        w = w * torch.exp(-2.0 * st.double())
        assert torch.allclose(guard.update(st), w / w.sum())
    const = D.ExpGuard(2, eta=0.5)
    for t in range(1, 6):
        p = const.update(torch.tensor([0.8, 0.0], dtype=torch.float64))
        assert math.isclose(p[0].item() / p[1].item(), math.exp(-0.5 * 0.8 * t), rel_tol=1e-9)
    Y = torch.softmax(torch.randn(3, 5, 4), -1)
    guard2 = D.ExpGuard(3, eta=1.0, base="mean")
    agg, scores = guard2(Y)
    p = torch.softmax(-scores.double(), 0).float()
    assert torch.allclose(agg, (p[:, None, None] * Y).sum(0), atol=1e-6)


def test_auroc_equals_sklearn():
    rng = np.random.default_rng(5)
    for _ in range(5):
        s = rng.integers(0, 4, 12).astype(float)  # with ties
        y = np.r_[np.ones(4), np.zeros(8)].astype(bool)
        assert math.isclose(L.auroc(s, y), roc_auc_score(y, s))


def test_local_epoch_split():
    assert L.local_epoch_split(4, 3) == [2, 1, 1]
    assert L.local_epoch_split(20, 10) == [2] * 10


def test_partitions():
    g = torch.Generator().manual_seed(6)
    parts = iid_partition(103, 10, g)
    assert [len(p) for p in parts] == [13] + [10] * 9
    assert sorted(torch.cat(parts).tolist()) == list(range(103))
    labels = torch.arange(10).repeat(30)
    parts = dirichlet_partition(labels, 5, 0.5, g)
    assert sorted(torch.cat(parts).tolist()) == list(range(300))


def _tiny_task(n=60, d=6, c=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=g)
    y = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    return FederatedTask(
        x, y, torch.randn(30, d, generator=g), torch.zeros(30, dtype=torch.long), x[:20], y[:20], c, "tiny"
    )


def test_fedavg_without_attackers_is_the_plain_average(monkeypatch):
    task = _tiny_task()
    captured = {}
    original = L.BatchedClients.epoch

    def spy(self, params, generator):
        out = original(self, params, generator)
        captured["clients"] = {k: v.clone() for k, v in out.items()}
        return out

    monkeypatch.setattr(L.BatchedClients, "epoch", spy)
    cfg = L.FLConfig(strategy="FedAvg", n_clients=4, rounds=1, local_epochs=1, hidden=(8,))
    out = L.run(task, cfg)
    for k, p in out["server"].named_parameters():
        assert torch.allclose(p, captured["clients"][k].mean(0), atol=1e-7)


def test_batched_local_training_equals_torch_sgd():
    # full-batch steps: the mini-batch order does not matter, so vmap'd SGD and torch.optim.SGD agree
    task = _tiny_task()
    for mode in ("batched", "sequential"):
        cfg = L.FLConfig(
            strategy="FedAvg", n_clients=3, rounds=2, local_epochs=2, batch_size=64, hidden=(8,), local_training=mode
        )
        out = L.run(task, cfg)
        params = torch.cat([p.detach().flatten() for p in out["server"].parameters()])
        if mode == "batched":
            ref = params
    assert torch.allclose(params, ref, atol=1e-5)


def test_feddistill_with_identical_honest_clients_targets_their_predictions(monkeypatch):
    task = _tiny_task()
    monkeypatch.setattr(L, "iid_partition", lambda n, k, g: [torch.arange(20)] * k)
    seen = {}
    original = D.aggregate

    def spy(name, Y, **kw):
        seen["Y"] = Y.clone()
        agg, s = original(name, Y, **kw)
        seen["agg"] = agg
        return agg, s

    monkeypatch.setattr(D, "aggregate", spy)
    cfg = L.FLConfig(n_clients=4, rounds=1, local_epochs=1, batch_size=64, hidden=(8,))
    L.run(task, cfg)
    Y = seen["Y"]
    assert torch.allclose(Y, Y[0].expand_as(Y), atol=1e-6)
    assert torch.allclose(seen["agg"], Y[0], atol=1e-6)


def test_feddistill_under_attack_runs_with_every_defence():
    task = _tiny_task()
    S = A.cpa_matrix(torch.softmax(torch.randn(50, 3), -1))
    for defence in ["mean", "median", "GM", "Filter", "Cronus", "ExpGuard"]:
        out = L.run(
            task,
            L.FLConfig(n_clients=5, alpha=0.4, attack="CPA", defence=defence, rounds=2, local_epochs=1, hidden=(8,)),
            S,
        )
        assert out["byzantine"].sum() == 2 and out["scores"].shape == (2, 5)
    assert out["weights"].shape == (2, 5)


def test_make_task_splits():
    t = make_task("digits", 0)
    assert (len(t.y_private), len(t.public_y), len(t.y_test)) == (898, 539, 360)
    s = make_task("synth", 0, n_samples=600, shifted_public=True)
    assert s.in_features == 32 and len(s.y_private) == 300


def test_filter_threshold_falls_back_to_the_mean_when_nobody_is_kept():
    Y = torch.softmax(torch.randn(5, 7, 3), -1)
    assert torch.allclose(D.filter_(Y, quantile=None, threshold=0.0)[0], Y.mean(0))


def _run_outputs(out):
    params = torch.cat([p.detach().cpu().flatten() for p in out["server"].parameters()])
    return out["acc"], out["scores"], out["weights"], params


@pytest.mark.parametrize(
    "cfg",
    [
        L.FLConfig(n_clients=5, alpha=0.4, attack="naive", defence="ExpGuard", rounds=2, local_epochs=1, hidden=(8,)),
        L.FLConfig(n_clients=5, alpha=0.4, attack="LMA", hips=True, sample_frac=0.5, rounds=2, hidden=(8,)),
        L.FLConfig(strategy="FedAvg", n_clients=5, alpha=0.2, attack="random", rounds=2, hidden=(8,)),
        L.FLConfig(n_clients=4, rounds=2, hidden=(8,), local_training="sequential", partition="dirichlet"),
    ],
)
def test_run_on_an_explicit_cpu_device_is_identical(cfg):
    task = _tiny_task()
    S = A.cpa_matrix(torch.softmax(torch.randn(50, 3, generator=torch.Generator().manual_seed(2)), -1))
    ref = _run_outputs(L.run(task, cfg, S))
    for device in ("cpu", torch.device("cpu")):
        out = L.run(task, cfg, S, device=device)
        assert out["scores"] is None or out["scores"].device.type == "cpu"
        got = _run_outputs(out)
        assert got[0] == ref[0]
        for a, b in zip(got[1:], ref[1:]):
            assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_run_on_the_gpu_follows_the_cpu_run():
    task = _tiny_task()
    cfg = L.FLConfig(n_clients=5, alpha=0.4, attack="LMA", defence="ExpGuard", rounds=2, hidden=(8,))
    cpu, gpu = L.run(task, cfg), L.run(task, cfg, device="cuda")
    assert next(gpu["server"].parameters()).is_cuda
    assert torch.equal(cpu["byzantine"], gpu["byzantine"])
    assert abs(cpu["final_acc"] - gpu["final_acc"]) <= 0.1
    assert torch.allclose(cpu["weights"], gpu["weights"], atol=1e-3)


def test_run_grid_caches_runs_and_loads_them_back(tmp_path, monkeypatch):
    from companion.federated import experiment as fx

    real_cached = fx.cache.cached
    monkeypatch.setattr(fx.cache, "cached", lambda *a, **k: real_cached(*a, root=tmp_path, **k))
    task = _tiny_task()
    variations = [dict(alpha=0.4, attack="LMA", defence="ExpGuard"), dict(alpha=0.0)]
    base = dict(n_clients=5, rounds=2, local_epochs=1, hidden=(8,))
    fresh, _ = fx.run_grid(task, variations, 2, base=base, cache_runs=False)
    first, outs = fx.run_grid(task, variations, 2, base=base)
    assert len(list(tmp_path.rglob("run-*.pt"))) == 4
    monkeypatch.setattr(fx, "run", lambda *a, **k: pytest.fail("a cached run was trained again"))
    again, outs2 = fx.run_grid(task, variations, 2, base=base)
    cols = ["final_acc", "auroc1", "p_byz"]
    assert_frame_equal(fresh[cols], first[cols])
    assert_frame_equal(first, again)
    assert torch.equal(outs[0]["weights"], outs2[0]["weights"])
    other = make_task("digits", 0)
    assert fx.task_fingerprint(task) != fx.task_fingerprint(other)


def test_run_key_drops_only_settings_the_run_does_not_use():
    from companion.federated.experiment import run_key

    a = L.FLConfig(attack="LMA", alpha=0.3, defence="mean", eta=5.0, filter_quantile=0.8)
    assert run_key(a) == run_key(L.FLConfig(attack="LMA", alpha=0.3, defence="mean"))
    g = L.FLConfig(attack="LMA", alpha=0.3, defence="ExpGuard")
    assert run_key(g) != run_key(L.FLConfig(attack="LMA", alpha=0.3, defence="ExpGuard", eta=5.0))
    assert run_key(g) != run_key(L.FLConfig(attack="LMA", alpha=0.3, defence="ExpGuard", filter_quantile=0.8))
    assert run_key(L.FLConfig(partition="dirichlet", beta=0.1)) != run_key(L.FLConfig(partition="dirichlet"))
    assert run_key(a) != run_key(L.FLConfig(attack="LMA", alpha=0.3, defence="mean", hips=True))
