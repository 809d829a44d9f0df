"""Physics-informed training for the NPR chapter: PINN residuals by autograd, the operator training loop shared
by NPR and the PI-DeepONet, grid prediction and per-solution fine-tuning.

The loss is self-supervised: the mean squared PDE residual at random collocation points of random initial
conditions (Raissi et al. 2019; for operators Wang, Wang & Perdikaris 2021). No solution data enter training;
the references of :mod:`companion.npr.pde` are used only to measure errors.
"""

from __future__ import annotations

import hashlib
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch.func import stack_module_state

from .. import cache, progress
from .models import LowRankMLP, batched_call
from .pde import FourierIC, FourierIC2D

SolutionFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # (x, t) of shape (B, P) -> g of shape (B, P)


@dataclass
class Problem:
    """A periodic 1D initial-value problem u_t = N[u] on [0, 1) x [0, T]: ``pde`` is "heat" (N[u] = nu u_xx)
    or "burgers" (N[u] = -u u_x + nu u_xx); "heat2d" is the heat equation u_t = nu (u_xx + u_yy) on the periodic
    unit square (see :func:`residual2d`)."""

    pde: str
    nu: float
    T: float = 1.0

    def __post_init__(self):
        if self.pde not in ("heat", "burgers", "heat2d"):
            raise ValueError(f"unknown PDE {self.pde!r}: heat, burgers or heat2d")

    @property
    def dims(self) -> int:
        """The number of space dimensions."""
        return 2 if self.pde == "heat2d" else 1

    def residual(self, u, u_t, u_x, u_xx):
        """u_t - N[u] pointwise."""
        if self.pde == "heat":
            return u_t - self.nu * u_xx
        return u_t + u * u_x - self.nu * u_xx


def ic_tensors(ic: FourierIC, dtype=torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """The coefficients (a, b) of ``ic`` as torch tensors (B, K)."""
    return torch.as_tensor(ic.a, dtype=dtype), torch.as_tensor(ic.b, dtype=dtype)


def ic_eval(a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, derivative: int = 0) -> torch.Tensor:
    """The derivative-th x-derivative of u0 = sum_k a_k sin(2 pi k x) + b_k cos(2 pi k x) at x (B, P), in torch."""
    w = 2 * math.pi * torch.arange(1, a.shape[1] + 1, dtype=a.dtype, device=a.device)
    ph = x[..., None] * w + derivative * math.pi / 2  # (B, P, K)
    wm = w**derivative
    return (torch.sin(ph) * (a * wm)[:, None, :]).sum(-1) + (torch.cos(ph) * (b * wm)[:, None, :]).sum(-1)


def sensor_values(ic: FourierIC | FourierIC2D, m: int = 64, dtype=torch.float32) -> torch.Tensor:
    """u0 at the m equispaced sensors j/m: the input of the hypernetwork and of the DeepONet branch (B, m).
    For a :class:`~companion.npr.pde.FourierIC2D`, m is per side: the m x m grid (i/m, j/m), (B, m^2)."""
    if isinstance(ic, FourierIC2D):
        g = np.arange(m) / m
        X1, X2 = np.meshgrid(g, g, indexing="ij")
        return torch.as_tensor(ic(np.stack([X1.ravel(), X2.ravel()], 1)), dtype=dtype)
    return torch.as_tensor(ic(np.arange(m) / m), dtype=dtype)


def ic_eval2d(ic: FourierIC2D, x: torch.Tensor, laplacian: bool = False) -> torch.Tensor:
    """u0 of :class:`~companion.npr.pde.FourierIC2D` (or its Laplacian) at x (B, P, 2), in torch: (B, P)."""
    a = torch.as_tensor(ic.a, dtype=x.dtype, device=x.device)
    b = torch.as_tensor(ic.b, dtype=x.dtype, device=x.device)
    k = torch.as_tensor(ic.k, dtype=x.dtype, device=x.device)  # (M, 2)
    if laplacian:
        lam = -((2 * math.pi) ** 2) * (k**2).sum(1)
        a, b = a * lam, b * lam
    ph = 2 * math.pi * x @ k.T  # (B, P, M)
    return (torch.sin(ph) * a[:, None, :]).sum(-1) + (torch.cos(ph) * b[:, None, :]).sum(-1)


def residual2d(problem: Problem, g: SolutionFn, ic: FourierIC2D, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The PINN residual u_t - nu (u_xx + u_yy) of u = u0(x) + t g(x, t) on the unit square at the collocation
    points x (B, P, 2), t (B, P): (B, P).

    u_t = g + t g_t and Laplace(u) = Laplace(u0) + t Laplace(g), u0's Laplacian exact from its modes, g's by
    autograd on the summed output (per point, as in :func:`residual`): the gradient with respect to x (B, P, 2)
    gives (g_x, g_y), and the second derivatives g_xx, g_yy come from the gradients of their sums.
    """
    if problem.pde != "heat2d":
        raise ValueError(f"residual2d is the 2D heat residual, got the problem {problem.pde!r}")
    x = x.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    gv = g(x, t)
    g_x, g_t = torch.autograd.grad(gv.sum(), (x, t), create_graph=True)  # g_x: (B, P, 2)
    (g_11,) = torch.autograd.grad(g_x[..., 0].sum(), x, create_graph=True)
    (g_22,) = torch.autograd.grad(g_x[..., 1].sum(), x, create_graph=True)
    lap = ic_eval2d(ic, x, laplacian=True) + t * (g_11[..., 0] + g_22[..., 1])
    return gv + t * g_t - problem.nu * lap


def residual_of2d(problem: Problem, u_fn: SolutionFn, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The residual u_t - nu (u_xx + u_yy) of any differentiable u(x, t) on the unit square, x (B, P, 2), t (B, P),
    by autograd (used in the tests on exact and perturbed solutions)."""
    x = x.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    u = u_fn(x, t)
    u_x, u_t = torch.autograd.grad(u.sum(), (x, t), create_graph=True)
    (u_11,) = torch.autograd.grad(u_x[..., 0].sum(), x, create_graph=True)
    (u_22,) = torch.autograd.grad(u_x[..., 1].sum(), x, create_graph=True)
    return u_t - problem.nu * (u_11[..., 0] + u_22[..., 1])


def residual(
    problem: Problem, g: SolutionFn, a: torch.Tensor, b: torch.Tensor, x: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """The PINN residual of u = u0(x) + t g(x, t) at the collocation points (x, t) of shape (B, P).

    u_t = g + t g_t, u_x = u0' + t g_x, u_xx = u0'' + t g_xx, with g's derivatives from autograd on the summed
    output: every output depends on its own point only (one network per row, see ``batched_call``), so the
    gradient of the sum is the per-point derivative.
    """
    x = x.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    gv = g(x, t)
    g_x, g_t = torch.autograd.grad(gv.sum(), (x, t), create_graph=True)
    (g_xx,) = torch.autograd.grad(g_x.sum(), x, create_graph=True)
    u = ic_eval(a, b, x) + t * gv
    return problem.residual(u, gv + t * g_t, ic_eval(a, b, x, 1) + t * g_x, ic_eval(a, b, x, 2) + t * g_xx)


def residual_of(problem: Problem, u_fn: SolutionFn, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """The residual u_t - N[u] of any differentiable u(x, t) (B, P) at (x, t), by autograd (used in the tests on
    exact and perturbed solutions)."""
    x = x.detach().requires_grad_(True)
    t = t.detach().requires_grad_(True)
    u = u_fn(x, t)
    u_x, u_t = torch.autograd.grad(u.sum(), (x, t), create_graph=True)
    (u_xx,) = torch.autograd.grad(u_x.sum(), x, create_graph=True)
    return problem.residual(u, u_t, u_x, u_xx)


@dataclass
class TrainResult:
    losses: list[float] = field(default_factory=list)  # mean squared residual per step
    seconds: float = 0.0  # wall time of the training run (of the original run when loaded from the cache)
    cached: bool = False  # True when the trained parameters were loaded from the cache


def train_operator(
    model: torch.nn.Module,
    problem: Problem,
    sampler: Callable[[int, np.random.Generator], FourierIC],
    steps: int,
    batch: int = 16,
    points: int = 256,
    lr: float = 1e-3,
    sensors: int = 64,
    seed: int = 0,
    device: torch.device | str = "cpu",
    desc: str = "PINN training",
) -> TrainResult:
    """Physics-informed operator training of ``model`` (anything with ``solution(sensors, x, t)``: NPR's
    :class:`~companion.npr.models.HyperNetwork` or the :class:`~companion.npr.models.DeepONet`).

    Every step draws ``batch`` fresh initial conditions from ``sampler`` and ``points`` uniform collocation points
    in [0, 1) x [0, T] per condition and takes an Adam step on the mean squared residual, the learning rate
    decaying from ``lr`` to 0 on a cosine. Draws depend on ``seed`` only (made on the CPU, then moved).
    For the 2D problem ("heat2d") the sampler gives :class:`~companion.npr.pde.FourierIC2D`, ``sensors`` is the
    side of the sensor grid (the model takes sensors^2 inputs) and the collocation points are uniform in the
    unit square; the loss is :func:`residual2d`.
    """
    model.to(device)
    rng = np.random.default_rng(seed)
    gen = torch.Generator().manual_seed(seed)
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    out = TrainResult()
    start = time.perf_counter()
    for _ in progress(range(steps), desc=desc):
        ic = sampler(batch, rng)
        if problem.dims == 2:
            s = sensor_values(ic, sensors).to(device)
            x = torch.rand(batch, points, 2, generator=gen).to(device)
            t = problem.T * torch.rand(batch, points, generator=gen).to(device)
            loss = residual2d(problem, lambda xx, tt: model.solution(s, xx, tt), ic, x, t).pow(2).mean()
        else:
            a, b = (v.to(device) for v in ic_tensors(ic))
            s = sensor_values(ic, sensors).to(device)
            x = torch.rand(batch, points, generator=gen).to(device)
            t = problem.T * torch.rand(batch, points, generator=gen).to(device)
            loss = residual(problem, lambda xx, tt: model.solution(s, xx, tt), a, b, x, t).pow(2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        out.losses.append(loss.item())
    out.seconds = time.perf_counter() - start
    return out


def train_operator_cached(
    model: torch.nn.Module,
    problem: Problem,
    sampler: Callable[[int, np.random.Generator], FourierIC],
    steps: int,
    batch: int = 16,
    points: int = 256,
    lr: float = 1e-3,
    sensors: int = 64,
    seed: int = 0,
    device: torch.device | str = "cpu",
    desc: str = "PINN training",
    cache_dir: str | Path | None = None,
) -> TrainResult:
    """:func:`train_operator` through :func:`companion.cache.cached` (namespace ``npr``), so that notebooks
    that train the same operator share one run.

    The key covers everything the result depends on: the architecture (``repr``) and the exact initial
    parameters of ``model``, the problem, a fingerprint of ``sampler`` (its draw for a fixed generator), every
    training argument, the device, the source of this package's training code and (added by the cache) the
    numerical environment, so that runs under another CPU's stand-in never load a pinned run's result.
    Concurrent callers wait on the cache's lock, so one trains and the others load.
    """
    probe = sampler(4, np.random.default_rng(0))
    digest = hashlib.sha256()
    for tensor in model.state_dict().values():
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    digest.update(probe.a.tobytes() + probe.b.tobytes())
    if isinstance(probe, FourierIC2D):
        digest.update(probe.k.tobytes())
    here = Path(__file__).parent
    for name in ("physics.py", "models.py"):
        digest.update((here / name).read_bytes())
    settings = {
        "model": repr(model),
        "problem": asdict(problem),
        "steps": steps,
        "batch": batch,
        "points": points,
        "lr": lr,
        "sensors": sensors,
        "seed": seed,
        "device": str(device),
        "torch": torch.__version__,
        "digest": digest.hexdigest(),
    }
    result: list[TrainResult] = []

    def train() -> dict[str, Any]:
        result.append(train_operator(model, problem, sampler, steps, batch, points, lr, sensors, seed, device, desc))
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        return {"state_dict": state, "losses": list(result[0].losses)}

    out = cache.cached("npr", "operator", settings, train, root=cache_dir)
    if not out.hit:
        return result[0]
    model.load_state_dict(out.value["state_dict"])
    model.to(device)
    return TrainResult(list(out.value["losses"]), out.build_seconds, True)


def grid(nx: int = 64, nt: int = 51, T: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """The evaluation grid: x_j = j / nx (on the spectral solver's grid) and nt equispaced times in [0, T]."""
    return np.arange(nx) / nx, np.linspace(0.0, T, nt)


def _grid_tensors(B: int, x: np.ndarray, t: np.ndarray, dtype=torch.float32):
    X, Tt = np.meshgrid(x, t)  # (nt, nx)
    xs = torch.as_tensor(X.ravel(), dtype=dtype).expand(B, -1)
    ts = torch.as_tensor(Tt.ravel(), dtype=dtype).expand(B, -1)
    return xs, ts


@torch.no_grad()
def predict(
    g: SolutionFn, ic: FourierIC, x: np.ndarray, t: np.ndarray, device: torch.device | str = "cpu"
) -> np.ndarray:
    """u = u0 + t g on the grid (x, t) for every initial condition: (B, len(t), len(x)), float64 numpy.
    ``g`` maps points (B, P) to (B, P) with row i belonging to initial condition i."""
    xs, ts = (v.to(device) for v in _grid_tensors(len(ic), x, t))
    gv = g(xs, ts).double().cpu().reshape(len(ic), len(t), len(x)).numpy()
    return ic(x)[:, None, :] + t[None, :, None] * gv


@torch.no_grad()
def predict2d(
    g: SolutionFn, ic: FourierIC2D, points: np.ndarray, t: np.ndarray, device: torch.device | str = "cpu"
) -> np.ndarray:
    """:func:`predict` on the unit square: u = u0 + t g at ``points`` (P, 2) and times ``t`` for every initial
    condition, (B, len(t), P); ``g`` maps x (B, Q, 2), t (B, Q) to (B, Q)."""
    points = np.reshape(points, (-1, 2))
    B, P = len(ic), len(points)
    xs = torch.as_tensor(np.tile(points, (len(t), 1)), dtype=torch.float32).expand(B, -1, -1).to(device)
    ts = torch.as_tensor(np.repeat(t, P), dtype=torch.float32).expand(B, -1).to(device)
    gv = g(xs, ts).double().cpu().reshape(B, len(t), P).numpy()
    return ic(points)[:, None, :] + t[None, :, None] * gv


def predict_operator(
    model: torch.nn.Module, ic: FourierIC | FourierIC2D, x: np.ndarray, t: np.ndarray, sensors: int = 64
) -> np.ndarray:
    """:func:`predict` for an operator model (NPR or DeepONet) from the sensor values of ``ic``, on the
    model's device. For a :class:`~companion.npr.pde.FourierIC2D`, ``x`` are points (P, 2) of the unit square,
    ``sensors`` the side of the sensor grid, and the result is :func:`predict2d`'s (B, len(t), P)."""
    device = next(model.parameters()).device
    s = sensor_values(ic, sensors).to(device)
    if isinstance(ic, FourierIC2D):
        return predict2d(lambda xx, tt: model.solution(s, xx, tt), ic, x, t, device)
    return predict(lambda xx, tt: model.solution(s, xx, tt), ic, x, t, device)


def random_networks(
    n: int, hidden: int = 32, rank: int | None = 4, frequencies: int = 1, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Batched parameters of n independently initialised :class:`LowRankMLP` networks (the random-init baseline of the
    fine-tuning study)."""
    torch.manual_seed(seed)
    params, _ = stack_module_state([LowRankMLP(hidden, rank, frequencies) for _ in range(n)])
    return {k: v.detach().clone() for k, v in params.items()}


@dataclass
class FineTuneResult:
    steps: list[int]  # steps at which the error was measured (0 = before fine-tuning)
    errors: np.ndarray  # (len(steps), B) relative L2 error per initial condition
    params: dict[str, torch.Tensor]


def fine_tune(
    template: torch.nn.Module,
    params: dict[str, torch.Tensor],
    problem: Problem,
    ic: FourierIC,
    reference: np.ndarray,
    steps: int,
    eval_steps: list[int],
    points: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | str = "cpu",
    desc: str = "fine-tuning",
) -> FineTuneResult:
    """Fine-tune one solution network per initial condition with the PINN loss alone (NPR's "rapid fine-tuning").

    ``params``: batched parameters of ``template`` (from the hypernetwork, or :func:`random_networks`), trained
    as leaves. The B problems are independent: the loss is the sum over rows of each row's mean squared
    residual, and Adam is element-wise, so this is exactly B separate Adam runs. The relative L2 error
    against ``reference`` (B, nt, nx) is measured at every step in ``eval_steps``.
    """
    gen = torch.Generator().manual_seed(seed)
    template = template.to(device)
    theta = {k: v.detach().to(device).clone().requires_grad_(True) for k, v in params.items()}
    opt = torch.optim.Adam(theta.values(), lr=lr)
    a, b = (v.to(device) for v in ic_tensors(ic))
    x_eval, t_eval = grid(reference.shape[2], reference.shape[1], problem.T)
    B = len(ic)

    def g(xx, tt):
        return batched_call(template, theta, xx, tt)

    def error():
        pred = predict(g, ic, x_eval, t_eval, device)
        return np.sqrt(((pred - reference) ** 2).sum((1, 2)) / (reference**2).sum((1, 2)))

    wanted, errs = set(eval_steps), []
    for step in progress(range(steps + 1), desc=desc):
        if step in wanted:
            errs.append(error())
        if step == steps:
            break
        x = torch.rand(B, points, generator=gen).to(device)
        t = problem.T * torch.rand(B, points, generator=gen).to(device)
        loss = residual(problem, g, a, b, x, t).pow(2).mean(1).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return FineTuneResult(sorted(wanted), np.array(errs), {k: v.detach().cpu() for k, v in theta.items()})


def steps_to_reach(curve: np.ndarray, steps: list[int], target: float) -> int | None:
    """The first step in ``steps`` at which ``curve`` is at or below ``target`` (None: never)."""
    for s, e in zip(steps, curve):
        if e <= target:
            return int(s)
    return None


def inference_seconds(fn: Callable[[], object], repeats: int = 5) -> float:
    """Best-of-``repeats`` wall-clock seconds of ``fn()`` (a timing: varies with the machine and its load)."""
    best = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best
