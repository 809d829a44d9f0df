"""The federated round loop for FedAvg and FedDistill (paper Sec. 2; official code ``strategies.py``,
``runners/ScratchRunner.py``), with the byzantine clients of :mod:`.attacks` and the defences of
:mod:`.defences`.

Clients of one round are independent. ``local_training="batched"`` trains all honest clients at once: their
parameters are stacked along a leading client axis and one SGD step of every client is one
``torch.func.vmap`` of ``torch.func.functional_call`` (the forward pass of every client) followed by one
backward pass. ``"sequential"`` trains
them one after another with :func:`companion.train.fit` and ``torch.optim.SGD``: the same method, for
comparison of speed (the two follow different mini-batch orders).

Every tensor of a run (data, client and server models, messages, weights) lives on the ``device`` given
to :func:`run`; the random draws (splits, mini-batch orders, attacks) come from CPU generators and are
moved there, so that a run on a GPU follows the same random choices as on the CPU.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from scipy.stats import rankdata
from torch.func import functional_call, vmap
from torch.utils.data import TensorDataset

from .. import train
from ..models import mlp
from . import attacks as A
from . import defences as D
from .data import FederatedTask, dirichlet_partition, iid_partition

STRATEGIES = ("FedDistill", "FedAvg")
MEMORY_DEFENCES = ("ExpGuard", "FilterExp")


@dataclass
class FLConfig:
    """One federated run. Defaults are the book's CPU analog: 10 clients, 10 rounds, 2 local epochs per
    round (SGD lr 0.05, momentum 0.9, batch 32, linear decay to 0 over all rounds), 2 server distillation
    epochs per round (SGD lr 0.1, momentum 0.9, batch 128, the official code's defaults, linear decay over
    all rounds), MLP with one hidden layer of 128 units.

    ``attack``: ``"none"`` or a name of :data:`.attacks.ATTACKS`; ``defence``: a name of
    :data:`.defences.DEFENCES` or ``"ExpGuard"``/``"FilterExp"`` (exponential weights over ``memory_base``
    with step ``eta``). ``keep_momentum=True`` keeps each client's momentum buffer across rounds, as the
    official code does by creating the client optimiser once; by default every round starts a fresh
    optimiser from the broadcast model (only the learning-rate decay runs across rounds).
    """

    strategy: str = "FedDistill"
    n_clients: int = 10
    alpha: float = 0.0
    rounds: int = 10
    local_epochs: int = 2
    server_epochs: int = 2
    batch_size: int = 32
    server_batch_size: int = 128
    lr: float = 0.05
    server_lr: float = 0.1
    momentum: float = 0.9
    hidden: tuple[int, ...] = (128,)
    attack: str = "none"
    defence: str = "mean"
    eta: float = 1.0
    memory_base: str = "Filter"
    filter_quantile: float = 0.9
    hips: bool = False
    sample_frac: float = 1.0
    hips_weighting: str = "intended"
    scaled_random_code_bug: bool = False
    keep_momentum: bool = False
    partition: str = "iid"
    beta: float = 0.5
    local_training: str = "batched"
    seed: int = 0
    extra: dict = field(default_factory=dict)

    @property
    def n_byzantine(self) -> int:
        return int(math.floor(self.alpha * self.n_clients + 1e-9))


def local_epoch_split(total: int, rounds: int) -> list[int]:
    """Local epochs per round: ``total`` split evenly over ``rounds``, the remainder to the first rounds
    (official code); 4 over 3 rounds gives 2, 1, 1."""
    base, rest = divmod(total, rounds)
    return [base + (r < rest) for r in range(rounds)]


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy with soft targets, ``-mean_x sum_c target_c log softmax(logits)_c`` (server
    distillation, paper Sec. 2)."""
    return F.cross_entropy(logits, target)


def auroc(scores, is_byzantine) -> float:
    """Area under the ROC curve of separating byzantine (positive) from honest clients by their outlier
    score (higher = more suspicious): the Mann-Whitney statistic with ties counted one half."""
    s = np.asarray(scores, dtype=float).ravel()
    y = np.asarray(is_byzantine, dtype=bool).ravel()
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError("AUROC needs at least one byzantine and one honest client")
    ranks = rankdata(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


class BatchedClients:
    """SGD with momentum for many clients at once (``torch.func``): parameters ``[h, ...]``, each client
    with its own data, mini-batch order, learning-rate decay and momentum buffer. Clients with fewer samples
    are padded; a client whose epoch is over skips the remaining steps of the others. Data, momentum buffers
    and learning-rate counters live on ``device``; the mini-batch orders are drawn on the CPU generator."""

    def __init__(
        self,
        model,
        data: list[tuple[torch.Tensor, torch.Tensor]],
        batch_size,
        lr,
        momentum,
        total_epochs,
        device: torch.device | str = "cpu",
    ):
        self.model, self.batch_size, self.lr, self.momentum = model, batch_size, lr, momentum
        self.device = torch.device(device)
        self.sizes = torch.tensor([len(y) for _, y in data])
        m = max(int(self.sizes.max()), 1)
        d = data[0][0].shape[1:]
        self.X = torch.zeros(len(data), m, *d, device=self.device)
        self.Y = torch.zeros(len(data), m, dtype=torch.long, device=self.device)
        for i, (x, y) in enumerate(data):
            self.X[i, : len(y)], self.Y[i, : len(y)] = x.to(self.device), y.to(self.device)
        self.steps = torch.ceil(self.sizes / batch_size).long()
        self.total = (total_epochs * self.steps).clamp_min(1).double().to(self.device)
        self.it = torch.zeros(len(data), dtype=torch.float64, device=self.device)
        self.buf: dict[str, torch.Tensor] | None = None

        self._forward = vmap(lambda p, x: functional_call(model, p, (x,)))

    def _grads(self, params, x, y, w):
        # The sum over clients of each client's mean loss: its gradient with respect to the stacked
        # parameters is every client's own gradient. (vmap of the forward pass and one backward pass was
        # twice as fast as vmap(grad(...)) for the book's MLP on the CPU.)
        leaves = {k: v.detach().requires_grad_() for k, v in params.items()}
        out = self._forward(leaves, x)
        ce = F.cross_entropy(out.flatten(0, 1), y.flatten(), reduction="none").view_as(w)
        loss = ((ce * w).sum(1) / w.sum(1).clamp_min(1.0)).sum()
        return dict(zip(leaves, torch.autograd.grad(loss, list(leaves.values()))))

    def epoch(self, params: dict[str, torch.Tensor], generator: torch.Generator) -> dict[str, torch.Tensor]:
        h, b = len(self.sizes), self.batch_size
        s_max = int(self.steps.max())
        idx = torch.full((h, max(s_max, 1) * b), -1, dtype=torch.long)
        for i, n in enumerate(self.sizes.tolist()):
            idx[i, :n] = torch.randperm(n, generator=generator)
        idx = idx.to(self.device)
        rows = torch.arange(h, device=self.device)[:, None]
        if self.buf is None:
            self.buf = {k: torch.zeros_like(v) for k, v in params.items()}
        for k in range(s_max):
            sel = idx[:, k * b : (k + 1) * b]
            w = (sel >= 0).float()
            active = w.sum(1) > 0
            x, y = self.X[rows, sel.clamp_min(0)], self.Y[rows, sel.clamp_min(0)]
            g = self._grads(params, x, y, w)
            lr = (self.lr * (1 - self.it / self.total)).float()
            new = {}
            for name, p in params.items():
                shape = (h,) + (1,) * (p.dim() - 1)
                act = active.view(shape)
                buf = torch.where(act, self.momentum * self.buf[name] + g[name], self.buf[name])
                self.buf[name] = buf
                new[name] = torch.where(act, p - lr.view(shape) * buf, p)
            params = new
            self.it += active.double()
        return params

    def reset_momentum(self) -> None:
        self.buf = None


def _stack(params: dict[str, torch.Tensor], h: int) -> dict[str, torch.Tensor]:
    return {k: v.detach().unsqueeze(0).expand(h, *v.shape).clone() for k, v in params.items()}


def _client_predictions(model, stacked: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        logits = vmap(lambda p: functional_call(model, p, (x,)))(stacked)
    return logits.softmax(-1)


def central_model(
    task: FederatedTask,
    hidden=(128,),
    epochs: int = 30,
    lr: float = 0.05,
    seed: int = 0,
    device: torch.device | str = "cpu",
):
    """A model trained centrally on the whole private set (labels included) with :func:`companion.train.fit`:
    returns ``(model, public_probs, test_acc)``. Its softmax on the public set gives CPA's matrix
    (:func:`.attacks.cpa_matrix`), as the official code's ``cpa_info/*-cov.pt`` comes from a trained model.
    The model is initialised on the CPU and trained on ``device``; the probabilities come back on the CPU."""
    torch.manual_seed(seed)
    model = mlp(task.in_features, hidden, task.num_classes).to(device)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    train.fit(
        model,
        opt,
        TensorDataset(task.x_private, task.y_private),
        epochs,
        batch_size=32,
        lr_schedule="linear",
        device=device,
        seed=seed,
        desc="central model",
    )
    probs = train.predict(model, TensorDataset(task.x_public), device).softmax(-1)
    acc = train.evaluate(model, TensorDataset(task.x_test, task.y_test), device)["acc"]
    return model, probs, acc


def run(task: FederatedTask, cfg: FLConfig, S: torch.Tensor | None = None, device: torch.device | str = "cpu") -> dict:
    """One federated run: returns per-round server test accuracy ``acc`` (round 0 = initial model), the
    byzantine indicator ``byzantine`` ``[n]``, the per-round outlier ``scores`` ``[R, n]`` of the defence (the
    base defence's for ExpGuard), the ExpGuard weights ``weights`` ``[R, n]`` (``None`` otherwise) and wall
    times (``seconds``, ``seconds_local`` for the local training).

    FedDistill round (paper Sec. 2): broadcast the server model; honest clients train on their private
    data; every client predicts (softmax) the public set; byzantine messages replace theirs; the defence
    aggregates; the server trains on the public inputs with the aggregate as soft targets. FedAvg round:
    broadcast; honest clients train; byzantine clients send attacked parameters; the server takes the plain
    average of all clients' parameters.

    ``device``: where the clients and the server train (``repro.setup``'s device in the notebooks); the
    outputs (scores, weights, indicator) come back on the CPU."""
    start = time.perf_counter()
    device = torch.device(device)
    if cfg.strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {cfg.strategy!r}; accepted: {', '.join(STRATEGIES)}")
    attack = None if cfg.attack == "none" else A.canonical(cfg.attack)
    if attack is not None:
        is_param = attack in A.PARAMETER_ATTACKS
        if is_param != (cfg.strategy == "FedAvg"):
            raise ValueError(f"{cfg.attack} does not apply to {cfg.strategy}")
    gen = torch.Generator()
    gen.manual_seed(cfg.seed)
    n, f = cfg.n_clients, cfg.n_byzantine
    parts = (
        iid_partition(len(task.y_private), n, gen)
        if cfg.partition == "iid"
        else dirichlet_partition(task.y_private, n, cfg.beta, gen)
    )
    byz = torch.zeros(n, dtype=torch.bool)
    byz[torch.randperm(n, generator=gen)[:f]] = True
    if attack is None:
        byz[:] = False
    honest_idx = torch.nonzero(~byz).flatten().tolist()
    h = len(honest_idx)
    data = [(task.x_private[parts[i]], task.y_private[parts[i]]) for i in honest_idx]
    x_public = task.x_public.to(device)
    byz_d = byz.to(device)
    S = None if S is None else S.to(device)

    torch.manual_seed(cfg.seed)
    server = mlp(task.in_features, cfg.hidden, task.num_classes).to(device)
    test = TensorDataset(task.x_test.to(device), task.y_test.to(device))
    epochs = local_epoch_split(cfg.local_epochs * cfg.rounds, cfg.rounds)
    total_local = sum(epochs)
    memory = cfg.defence in MEMORY_DEFENCES
    guard = D.ExpGuard(n, cfg.eta, cfg.memory_base, **_base_kwargs(cfg.memory_base, cfg)) if memory else None
    clients = BatchedClients(server, data, cfg.batch_size, cfg.lr, cfg.momentum, total_local, device)
    seq_models, seq_opts = [], []
    server_opt = torch.optim.SGD(server.parameters(), lr=cfg.server_lr, momentum=cfg.momentum)
    server_steps = math.ceil(len(task.x_public) / cfg.server_batch_size)
    server_total = cfg.rounds * cfg.server_epochs * server_steps
    acc = [train.evaluate(server, test, device)["acc"]]
    scores_log, weights_log, local_seconds = [], [], 0.0
    for r in range(cfg.rounds):
        broadcast = {k: v.detach().clone() for k, v in server.named_parameters()}
        t0 = time.perf_counter()
        if cfg.local_training == "batched":
            stacked = _stack(broadcast, h)
            if not cfg.keep_momentum:
                clients.reset_momentum()
            for _ in range(epochs[r]):
                stacked = clients.epoch(stacked, gen)
        elif cfg.local_training == "sequential":
            stacked = _train_sequential(
                server, broadcast, data, epochs[r], r, epochs, cfg, seq_models, seq_opts, device
            )
        else:
            raise ValueError("local_training must be 'batched' or 'sequential'")
        local_seconds += time.perf_counter() - t0
        if cfg.strategy == "FedAvg":
            per_client = [{k: v[j] for k, v in stacked.items()} for j in range(h)]
            for _ in range(f):
                per_client.append(A.parameter_attack(attack, broadcast, gen, cfg.scaled_random_code_bug))
            with torch.no_grad():
                for k, p in server.named_parameters():
                    p.copy_(torch.stack([c[k] for c in per_client]).mean(0))
        else:
            honest = _client_predictions(server, stacked, x_public)  # [h, N, C]
            Y = torch.empty(n, *honest.shape[1:], device=device)
            Y[~byz_d] = honest
            if f:
                Y[byz_d] = A.prediction_attack(
                    attack, honest, f, f / n, S, cfg.hips, cfg.sample_frac, cfg.hips_weighting, gen
                )
            if memory:
                target, scores = guard(Y)
                weights_log.append(guard.weights.float().cpu())
            else:
                target, scores = D.aggregate(cfg.defence, Y, **_base_kwargs(cfg.defence, cfg))
            scores_log.append(scores.float().cpu())
            offset = r * cfg.server_epochs * server_steps
            for group in server_opt.param_groups:
                group["lr"] = cfg.server_lr
            train.fit(
                server,
                server_opt,
                TensorDataset(x_public, target),
                cfg.server_epochs,
                batch_size=cfg.server_batch_size,
                lr_schedule=lambda it, tot, o=offset: 1 - (o + it) / server_total,
                loss_fn=soft_cross_entropy,
                device=device,
                seed=cfg.seed * 1000 + r,
                desc="server",
            )
        acc.append(train.evaluate(server, test, device)["acc"])
    return {
        "config": asdict(cfg),
        "acc": acc,
        "final_acc": acc[-1],
        "byzantine": byz,
        "scores": torch.stack(scores_log) if scores_log else None,
        "weights": torch.stack(weights_log) if weights_log else None,
        "seconds": time.perf_counter() - start,
        "seconds_local": local_seconds,
        "server": server,
    }


def _base_kwargs(name: str, cfg: FLConfig) -> dict:
    return {"quantile": cfg.filter_quantile} if D.canonical(name) == "PredictionFilter" else {}


def _train_sequential(server, broadcast, data, n_epochs, r, epochs, cfg, models, opts, device="cpu"):
    """Local training of the honest clients one by one with :func:`companion.train.fit` (the reference for
    the batched path's speed-up); the learning rate decays linearly over all rounds as in the batched path."""
    if not models:
        for _ in data:
            m = mlp(server.net[1].in_features, cfg.hidden, server.net[-1].out_features).to(device)
            models.append(m)
            opts.append(None)
    out = []
    for j, (x, y) in enumerate(data):
        m = models[j]
        with torch.no_grad():
            for k, p in m.named_parameters():
                p.copy_(broadcast[k])
        if opts[j] is None or not cfg.keep_momentum:
            opts[j] = torch.optim.SGD(m.parameters(), lr=cfg.lr, momentum=cfg.momentum)
        for group in opts[j].param_groups:
            group["lr"] = cfg.lr
        steps = math.ceil(len(y) / cfg.batch_size)
        offset, total = sum(epochs[:r]) * steps, max(sum(epochs) * steps, 1)
        if len(y) and n_epochs:
            train.fit(
                m,
                opts[j],
                TensorDataset(x, y),
                n_epochs,
                batch_size=cfg.batch_size,
                lr_schedule=lambda it, tot, o=offset, t=total: 1 - (o + it) / t,
                device=device,
                seed=cfg.seed * 1000 + 17 * r + j,
                desc="client",
            )
        out.append({k: v.detach().clone() for k, v in m.named_parameters()})
    return {k: torch.stack([o[k] for o in out]) for k in out[0]}
