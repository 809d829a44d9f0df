"""Networks of the NPR chapter: the low-rank solution network, the hypernetwork that regresses its parameters
(NPR) and the physics-informed DeepONet baseline.

NPR (Mundinger, Zimmer & Pokutta 2024) maps an initial condition, seen at m sensors, to the parameters theta of
a small network g_theta(x, t); the solution is u(x, t) = u0(x) + t g_theta(x, t), which meets the initial
condition exactly. The paper's abstract fixes the idea (a hypernetwork, PINN training, low-rank matrices, an
explicit network per solution); widths, depth and the exact low-rank placement are our reconstruction and are
stated on the chapter page. One network per initial condition is evaluated in a batch with
``torch.func.functional_call`` under ``torch.func.vmap``: the batch dimension lives in the parameters.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.func import functional_call, vmap


def features(x: torch.Tensor, t: torch.Tensor, frequencies: int = 1, dims: int = 1) -> torch.Tensor:
    """The inputs (sin 2 pi k x, cos 2 pi k x for k = 1..frequencies, t) of the solution networks: periodic in x
    by construction. Shape: x.shape + (2 frequencies + 1,).

    ``dims = 2``: x has a last axis (x1, x2) and the inputs are (sin 2 pi k x1, cos 2 pi k x1, sin 2 pi k x2,
    cos 2 pi k x2, t), shape t.shape + (4 frequencies + 1,)."""
    if dims == 2:
        return torch.cat([features(x[..., 0], t, frequencies)[..., :-1], features(x[..., 1], t, frequencies)], -1)
    k = torch.arange(1, frequencies + 1, dtype=x.dtype, device=x.device)
    ph = 2 * math.pi * x[..., None] * k
    return torch.cat([torch.sin(ph), torch.cos(ph), t[..., None]], dim=-1)


class LowRankMLP(nn.Module):
    """The solution network g_theta: (sin 2 pi k x, cos 2 pi k x, t) -> h -> h -> 1 with tanh (k = 1..frequencies),
    whose hidden matrix is W = U V^T with U, V in R^{h x r} (``rank = None``: a full h x h matrix W).
    ``dims = 2``: the network of the unit square, on the features of both coordinates (see :func:`features`;
    x then has a last axis of 2), with the same low-rank hidden matrix.

    ``forward(x, t)`` takes points of any shape and returns g of the same shape. The parameters are ordinary
    ``nn.Parameter`` objects, so one instance is a standalone network (fine-tuned like any other) and also the
    template that :func:`batched_call` fills with regressed parameters.
    """

    def __init__(self, hidden: int = 32, rank: int | None = 4, frequencies: int = 1, dims: int = 1):
        super().__init__()
        if dims not in (1, 2):
            raise ValueError(f"dims must be 1 or 2, got {dims}")
        self.hidden, self.rank, self.frequencies, self.dims = hidden, rank, frequencies, dims
        self.w1 = nn.Parameter(torch.empty(hidden, 2 * dims * frequencies + 1))
        self.b1 = nn.Parameter(torch.empty(hidden))
        if rank is None:
            self.w2 = nn.Parameter(torch.empty(hidden, hidden))
        else:
            self.u = nn.Parameter(torch.empty(hidden, rank))
            self.v = nn.Parameter(torch.empty(hidden, rank))
        self.b2 = nn.Parameter(torch.empty(hidden))
        self.w3, self.b3 = nn.Parameter(torch.empty(1, hidden)), nn.Parameter(torch.empty(1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Glorot-uniform weights, zero biases; U and V scaled so that U V^T has Glorot's variance."""
        for w in (self.w1, self.w3) + ((self.w2,) if self.rank is None else ()):
            nn.init.xavier_uniform_(w)
        if self.rank is not None:
            # Var(sum_j U_ij V_kj) = r s^4 must equal Glorot's 2 / (2h): s = (1 / (h r))^(1/4)
            s = (1.0 / (self.hidden * self.rank)) ** 0.25
            nn.init.normal_(self.u, std=s)
            nn.init.normal_(self.v, std=s)
        for b in (self.b1, self.b2, self.b3):
            nn.init.zeros_(b)

    def extra_repr(self) -> str:
        extra = f", dims={self.dims}" if self.dims != 1 else ""
        return f"hidden={self.hidden}, rank={self.rank}, frequencies={self.frequencies}{extra}"

    def hidden_matrix(self) -> torch.Tensor:
        """W = U V^T (or the full W): the h x h matrix of the hidden layer."""
        return self.w2 if self.rank is None else self.u @ self.v.T

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        z = torch.tanh(features(x, t, self.frequencies, self.dims) @ self.w1.T + self.b1)
        if self.rank is None:
            z = torch.tanh(z @ self.w2.T + self.b2)
        else:  # (z V) U^T: O(h r) per point instead of O(h^2)
            z = torch.tanh((z @ self.v) @ self.u.T + self.b2)
        return (z @ self.w3.T + self.b3).squeeze(-1)


def num_params(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


def mlp(sizes: list[int], activation: type[nn.Module] = nn.Tanh) -> nn.Sequential:
    """A plain MLP sizes[0] -> ... -> sizes[-1] with ``activation`` between layers (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(activation())
    return nn.Sequential(*layers)


def batched_call(
    template: nn.Module, params: dict[str, torch.Tensor], x: torch.Tensor, t: torch.Tensor
) -> torch.Tensor:
    """Evaluate one network per initial condition: ``params[name]`` has a leading batch dimension B, ``x`` and
    ``t`` are (B, P) (``x`` (B, P, 2) for a 2D template); returns (B, P) with row i computed by ``template`` carrying the parameters of row i.

    ``torch.func.vmap`` over ``functional_call`` maps the batch dimension of the parameters and the points
    together, so networks never mix: autograd derivatives of the summed output with respect to x and t are the
    per-point derivatives of each network.
    """
    return vmap(lambda p, xi, ti: functional_call(template, p, (xi, ti)))(params, x, t)


class HyperNetwork(nn.Module):
    """NPR's parameter regressor H_psi: sensor values u0(s) in R^m -> the parameters theta of a
    :class:`LowRankMLP` (an MLP ``m -> width -> ... -> |theta|`` with tanh).

    The output layer starts with small weights (``out_scale``) and its bias at a freshly initialised solution
    network, so that at initialisation every initial condition gets a reasonable network and the residuals are
    moderate (a large random output layer gives huge residuals).
    """

    def __init__(
        self,
        sensors: int = 64,
        widths: tuple[int, ...] = (128, 128),
        hidden: int = 32,
        rank: int | None = 4,
        frequencies: int = 1,
        out_scale: float = 0.1,
        dims: int = 1,
    ):
        super().__init__()
        self.template = LowRankMLP(hidden, rank, frequencies, dims)
        self.shapes = {name: p.shape for name, p in self.template.named_parameters()}
        self.sizes = [p.numel() for p in self.template.parameters()]
        self.net = mlp([sensors, *widths, sum(self.sizes)])
        last = self.net[-1]
        with torch.no_grad():
            last.weight.mul_(out_scale)
            last.bias.copy_(torch.cat([p.detach().reshape(-1) for p in self.template.parameters()]))
        for p in self.template.parameters():  # the template only lends its structure
            p.requires_grad_(False)

    @property
    def regressed(self) -> int:
        """``|theta|``: the number of parameters regressed per initial condition."""
        return sum(self.sizes)

    def forward(self, sensors: torch.Tensor) -> dict[str, torch.Tensor]:
        """theta for every row of ``sensors`` (B, m), as a dict of batched parameter tensors."""
        flat = self.net(sensors)
        parts = torch.split(flat, self.sizes, dim=-1)
        return {name: part.reshape(-1, *shape) for (name, shape), part in zip(self.shapes.items(), parts)}

    def solution(self, sensors: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """g_theta(x, t) with theta = H(sensors), one network per row: (B, P)."""
        return batched_call(self.template, self(sensors), x, t)


class DeepONet(nn.Module):
    """The physics-informed DeepONet baseline (Wang, Wang & Perdikaris 2021): g(x, t) = sum_k b_k(u0(s)) tr_k(x, t)
    + bias, a branch MLP on the sensors and a trunk MLP on the same input features as NPR's solution network,
    with the same reparametrisation u = u0 + t g, so that both methods differ only in how u0 enters g.

    The trunk runs at every collocation point and dominates the cost of a PINN step; ``trunk_width`` keeps it
    small and ``width`` (the branch) carries the parameter budget (see :func:`deeponet_matching`). ``dims = 2``:
    the trunk takes the features of both coordinates of the unit square, as NPR's 2D solution network."""

    def __init__(
        self,
        sensors: int = 64,
        width: int = 128,
        depth: int = 2,
        latent: int = 32,
        trunk_width: int = 32,
        frequencies: int = 1,
        dims: int = 1,
    ):
        super().__init__()
        self.frequencies, self.dims = frequencies, dims
        self.branch = mlp([sensors] + [width] * depth + [latent])
        self.trunk = mlp([2 * dims * frequencies + 1] + [trunk_width] * depth + [latent])
        self.bias = nn.Parameter(torch.zeros(1))

    def solution(self, sensors: torch.Tensor, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """g(x, t) for every row of ``sensors`` (B, m) at the points (B, P): (B, P)."""
        b = self.branch(sensors)  # (B, p)
        tr = torch.tanh(self.trunk(features(x, t, self.frequencies, self.dims)))  # (B, P, p)
        return torch.einsum("bk,bpk->bp", b, tr) + self.bias


def deeponet_matching(
    n_params: int,
    sensors: int = 64,
    depth: int = 2,
    latent: int = 32,
    trunk_width: int = 32,
    frequencies: int = 1,
    dims: int = 1,
) -> DeepONet:
    """The :class:`DeepONet` whose branch width makes its parameter count closest to ``n_params``."""
    best = min(
        range(4, 1025),
        key=lambda w: abs(_count(w, sensors, depth, latent, trunk_width, frequencies, dims) - n_params),
    )
    return DeepONet(sensors, best, depth, latent, trunk_width, frequencies, dims)


def _count(w: int, m: int, depth: int, p: int, tw: int, freq: int, dims: int = 1) -> int:
    def dense(sizes):
        return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))

    return dense([m] + [w] * depth + [p]) + dense([2 * dims * freq + 1] + [tw] * depth + [p]) + 1
