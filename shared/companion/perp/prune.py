"""One-shot pruning of every Linear in the decoder blocks, block by block (PERP §2 / the official
``prune_methods.py``, following SparseGPT's and Wanda's sequential drivers).

Criteria (:data:`METHODS`): ``magnitude`` ``|W|``, ``random`` (Gaussian scores), ``wanda`` ``|W_ij|·√n̄_j`` with n̄_j
the mean over calibration sequences of the squared L2 norm of input feature j (Sun et al., 2023, Eq. 1), and
``sparsegpt`` (Frantar & Alistarh, 2023, Algorithm 1: damped Hessian H = (2/N)·ΣXXᵀ, upper Cholesky factor of
H⁻¹, columns in blocks of 128, mask chosen per block by w²/[H⁻¹]²_jj, OBS update of the remaining columns).

Structures: ``unstructured`` (one group per matrix, or per output row with ``group="row"`` as in Wanda's
paper — the PERP code compares Wanda scores over the whole matrix) and ``"n:m"`` (prune n of every m
consecutive input weights of each row: ``2:4`` and ``4:8`` are 50 %).

Departure from the official code: the unstructured threshold there is the sorted score at index ⌊s·numel⌋
with ``<=``, which prunes one weight more than ⌊s·numel⌋ plus ties; we prune exactly ⌊s·numel⌋ per group
(with :func:`companion.pruning.global_top`) and measure the sparsity instead of assuming it.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from ..pruning import Masks, global_top
from .model import block_linears, decoder_blocks

METHODS = ("magnitude", "random", "wanda", "sparsegpt")
STRUCTURES = ("unstructured", "2:4", "4:8")


def parse_structure(structure: str) -> tuple[int, int] | None:
    """``None`` for ``unstructured``, else ``(n, m)`` from ``"n:m"``."""
    if structure == "unstructured":
        return None
    n, m = (int(v) for v in structure.split(":"))
    if not 0 < n < m:
        raise ValueError(f"N:M needs 0 < n < m, got {structure!r}")
    return n, m


def keep_mask(
    scores: torch.Tensor, sparsity: float, structure: str = "unstructured", group: str = "matrix"
) -> torch.Tensor:
    """Boolean keep-mask (``True`` = kept) that prunes the lowest ``scores`` of a (d_out, d_in) matrix:
    ⌊s·numel⌋ over the matrix (``group="matrix"``), ⌊s·d_in⌋ in every row (``group="row"``), or the n lowest
    of every m consecutive columns of each row (N:M; ``sparsity`` is then ignored: it is n/m)."""
    nm = parse_structure(structure)
    if nm is not None:
        n, m = nm
        if scores.shape[1] % m:
            raise ValueError(f"{structure}: input width {scores.shape[1]} is not a multiple of {m}")
        groups = scores.reshape(scores.shape[0], -1, m)
        drop = torch.topk(groups, n, dim=-1, largest=False).indices
        keep = torch.ones_like(groups, dtype=torch.bool).scatter_(-1, drop, False)
        return keep.reshape(scores.shape)
    if group == "matrix":
        return global_top({"w": scores.float()}, sparsity)["w"] > 0
    if group == "row":
        k = math.floor(sparsity * scores.shape[1] + 1e-9)
        keep = torch.ones_like(scores, dtype=torch.bool)
        if k > 0:
            keep.scatter_(1, torch.topk(scores, k, dim=1, largest=False).indices, False)
        return keep
    raise ValueError(f"unknown comparison group {group!r}; accepted: matrix, row")


def wanda_scores(weight: torch.Tensor, act_sq_norm: torch.Tensor) -> torch.Tensor:
    """Wanda's score ``|W_ij|·√n̄_j`` (Sun et al., 2023, Eq. 1), n̄ = squared input-feature norms (d_in,)."""
    return weight.detach().abs() * act_sq_norm.sqrt().unsqueeze(0)


@torch.no_grad()
def sparsegpt_(
    layer: nn.Linear,
    hessian: torch.Tensor,
    sparsity: float,
    structure: str = "unstructured",
    blocksize: int = 128,
    percdamp: float = 0.01,
) -> torch.Tensor:
    """Prune ``layer`` in place with SparseGPT (Frantar & Alistarh, 2023, Algorithm 1) and return its keep-mask.

    H is damped by ``percdamp`` times its mean diagonal; with U the upper Cholesky factor of H⁻¹, columns are
    processed in blocks of ``blocksize``: within a block the mask drops the ⌊s·(d_out·block)⌋ entries with the
    lowest w²/U_jj² (or the n lowest of every m columns per row), and each pruned column's error
    (w − q)/U_jj is propagated to the later columns through row j of U (the OBS update)."""
    W = layer.weight.data.clone().float()
    H = hessian.clone().double()
    d_in = W.shape[1]
    dead = torch.diag(H) == 0
    H[dead, dead] = 1.0
    W[:, dead] = 0.0
    H += percdamp * torch.mean(torch.diag(H)) * torch.eye(d_in, dtype=H.dtype)
    U = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(H)), upper=True).float()
    nm = parse_structure(structure)
    keep = torch.ones_like(W, dtype=torch.bool)
    for i1 in range(0, d_in, blocksize):
        i2 = min(i1 + blocksize, d_in)
        W1, U1 = W[:, i1:i2].clone(), U[i1:i2, i1:i2]
        Q1, Err1 = torch.zeros_like(W1), torch.zeros_like(W1)
        diag = torch.diag(U1)
        if nm is None:
            keep1 = global_top({"w": W1**2 / diag.unsqueeze(0) ** 2}, sparsity)["w"] > 0
        else:
            keep1 = torch.ones_like(W1, dtype=torch.bool)
        for i in range(i2 - i1):
            if nm is not None and i % nm[1] == 0:
                keep1[:, i : i + nm[1]] = keep_mask(
                    W1[:, i : i + nm[1]] ** 2 / diag[i : i + nm[1]] ** 2, 0.5, structure
                )
            w, d = W1[:, i], U1[i, i]
            q = w * keep1[:, i]
            Q1[:, i] = q
            err = (w - q) / d
            W1[:, i:] -= err.unsqueeze(1) * U1[i, i:].unsqueeze(0)
            Err1[:, i] = err
        W[:, i1:i2] = Q1
        W[:, i2:] -= Err1 @ U[i1:i2, i2:]
        keep[:, i1:i2] = keep1
    layer.weight.data.copy_(W.to(layer.weight.dtype))
    return keep


class _Stats:
    """Input statistics of one Linear over the calibration batch: Σ_tokens x_j² (Wanda) and ΣXXᵀ (SparseGPT)."""

    def __init__(self, layer: nn.Linear, hessian: bool):
        self.sq = torch.zeros(layer.in_features, dtype=torch.float64)
        self.H = torch.zeros(layer.in_features, layer.in_features, dtype=torch.float64) if hessian else None
        self.samples = 0

    def __call__(self, module, args, output):
        x = args[0].detach().reshape(-1, args[0].shape[-1]).double().cpu()
        self.samples += args[0].shape[0] if args[0].dim() == 3 else 1
        self.sq += (x**2).sum(0)
        if self.H is not None:
            self.H += x.T @ x

    def act_sq_norm(self) -> torch.Tensor:
        """n̄_j: mean over sequences of the squared norm over tokens (the official running average)."""
        return (self.sq / max(self.samples, 1)).float()

    def hessian(self) -> torch.Tensor:
        """H = (2/N)·ΣXXᵀ over the N calibration sequences (SparseGPT's scaling; the solver is scale-free)."""
        return 2.0 * self.H / max(self.samples, 1)


@dataclass
class PruneReport:
    """What sequential pruning did: the masks (full parameter names), per-block reconstruction errors
    (mean squared error of each block's output to the dense block's output on the same inputs), times."""

    masks: Masks
    mse_initial: list[float] = field(default_factory=list)  # after pruning, before any reconstruction
    mse_final: list[float] = field(default_factory=list)  # after reconstruction (= initial without it)
    seconds: float = 0.0


def block_inputs(model, windows: torch.Tensor) -> tuple[torch.Tensor, dict]:
    """Hidden states entering the first decoder block on ``windows`` and the keyword arguments the decoder
    passes to every block (causal mask, positions), captured with a forward pre-hook."""
    captured = {}

    class _Stop(Exception):
        pass

    def hook(module, args, kwargs):
        captured["x"] = args[0] if args else kwargs.pop("hidden_states")
        captured["kwargs"] = {k: v for k, v in kwargs.items() if k not in ("hidden_states", "past_key_values")}
        raise _Stop

    handle = decoder_blocks(model)[0].register_forward_pre_hook(hook, with_kwargs=True)
    try:
        with torch.no_grad():
            model(input_ids=windows, use_cache=False)  # no KV cache: blocks are re-run many times
    except _Stop:
        pass
    finally:
        handle.remove()
    return captured["x"].detach(), captured["kwargs"]


@torch.no_grad()
def run_block(block, x: torch.Tensor, kwargs: dict, batch_size: int = 32) -> torch.Tensor:
    """The block's outputs on ``x`` (in chunks of ``batch_size`` sequences)."""
    outs = []
    for i in range(0, x.shape[0], batch_size):
        kw = {
            k: (v[i : i + batch_size] if torch.is_tensor(v) and v.shape[0] == x.shape[0] else v)
            for k, v in kwargs.items()
        }
        out = block(x[i : i + batch_size], **kw)
        outs.append(out[0] if isinstance(out, tuple) else out)
    return torch.cat(outs)


def prune_model(
    model,
    calibration: torch.Tensor,
    sparsity: float,
    method: str = "magnitude",
    structure: str = "unstructured",
    wanda_group: str = "matrix",
    blocksize: int = 128,
    reconstruct: Callable | None = None,
    generator: torch.Generator | None = None,
) -> PruneReport:
    """Prune every Linear of every decoder block of ``model`` in place, sequentially: block i is pruned with
    statistics of its inputs computed by the *already pruned* blocks 0..i−1 on ``calibration`` windows.

    ``reconstruct(block, x, y, kwargs)``, when given, is called after block i is pruned with its inputs x
    and the dense block's outputs y (PERP's ``training_mode="reconstruct"``) and may train the block; the
    next block then sees the outputs of the pruned (and reconstructed) block. Embeddings and ``lm_head``
    are not pruned. Returns the masks and the per-block output errors."""
    if method not in METHODS:
        raise ValueError(f"unknown pruning method {method!r}; accepted: {', '.join(METHODS)}")
    start = time.perf_counter()
    prefix = {id(b): f"model.decoder.layers.{i}." for i, b in enumerate(decoder_blocks(model))}
    x, kwargs = block_inputs(model, calibration)
    masks: dict[str, torch.Tensor] = {}
    report = PruneReport(Masks({}))
    for block in decoder_blocks(model):
        linears = block_linears(block)
        stats = {n: _Stats(m, method == "sparsegpt") for n, m in linears.items()}
        handles = (
            [m.register_forward_hook(stats[n]) for n, m in linears.items()] if method in ("wanda", "sparsegpt") else []
        )
        y = run_block(block, x, kwargs)  # the dense block's outputs: the reconstruction targets
        for h in handles:
            h.remove()
        for n, m in linears.items():
            W = m.weight.data
            if method == "sparsegpt":
                keep = sparsegpt_(m, stats[n].hessian(), sparsity, structure, blocksize)
            else:
                if method == "magnitude":
                    scores = W.abs()
                elif method == "wanda":
                    scores = wanda_scores(W, stats[n].act_sq_norm().to(W.device))
                else:
                    scores = torch.randn(W.shape, generator=generator).to(W.device)
                keep = keep_mask(scores, sparsity, structure, wanda_group if method == "wanda" else "matrix")
                W.mul_(keep)
            masks[prefix[id(block)] + n + ".weight"] = keep
        err = float(torch.mean((run_block(block, x, kwargs) - y) ** 2))
        report.mse_initial.append(err)
        if reconstruct is not None:
            reconstruct(block, x, y, kwargs)
        x = run_block(block, x, kwargs)
        report.mse_final.append(float(torch.mean((x - y) ** 2)) if reconstruct is not None else err)
    report.masks = Masks(masks)
    report.seconds = time.perf_counter() - start
    return report


@torch.no_grad()
def block_sparsity(model) -> float:
    """Measured fraction of exact zeros over the effective weights of all block Linears (an adapter-wrapped
    layer counts with its merged weight, see :func:`companion.perp.lora.effective_weight`)."""
    from .lora import effective_weight

    zeros = total = 0
    for block in decoder_blocks(model):
        for name, m in block.named_modules():
            if isinstance(m, nn.Linear) and not _inside_adapter(block, name):
                W = m.weight
            elif hasattr(m, "effective_weight"):
                W = effective_weight(m)
            else:
                continue
            zeros += int((W == 0).sum())
            total += W.numel()
    return zeros / max(total, 1)


def _inside_adapter(block, name: str) -> bool:
    """True for Linears that belong to an adapter wrapper (its base layer): counted through the wrapper."""
    parts = name.split(".")
    for i in range(1, len(parts)):
        if hasattr(block.get_submodule(".".join(parts[:i])), "effective_weight"):
            return True
    return False
