"""Recovery after pruning: which parameters are retrained, global retraining, per-block reconstruction
(PERP §3-4, the official ``peft_methods.py`` and ``runner.py``).

A *strategy* is a ``+``-joined set of groups: ``bias`` (biases of the block Linears), ``ln`` (LayerNorm
scales and shifts), ``head`` (a standard LoRA on ``lm_head``, merged normally; the head is not pruned), one
LoRA variant of :mod:`companion.perp.lora` on every block Linear (``lora``, ``lora_prune``, ``mask_lora``,
``scale_lora``), or ``full`` (FullFT: every parameter, with the pruning masks re-applied after each step,
optimizer state included). ``none`` trains nothing. Example: ``"bias+ln+head+mask_lora"`` is the official
default ``SelectivePEFT``.

The trainable fraction is counted against the parameters of the dense model (adapters excluded from the
denominator). Memory: on a GPU the peak of ``torch.cuda.max_memory_allocated`` during recovery; on the CPU the
bytes of the training state (weights, gradients and AdamW moments held by the optimizer) — activations are
not counted there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import repro
from ..pruning import Masks
from .lora import VARIANTS, add_adapters, merge_adapters
from .model import n_parameters, train_lm

GROUPS = ("bias", "ln", "head", "full") + VARIANTS


def parse_strategy(strategy: str) -> set[str]:
    """The groups of a strategy string (``"none"`` -> empty)."""
    groups = set() if strategy in ("none", "") else set(strategy.split("+"))
    unknown = groups - set(GROUPS)
    if unknown:
        raise ValueError(f"unknown parameter group(s) {sorted(unknown)}; accepted: {', '.join(GROUPS)}")
    if len(groups & set(VARIANTS)) > 1:
        raise ValueError(f"at most one LoRA variant per strategy, got {strategy!r}")
    return groups


def select_parameters(
    root: nn.Module, groups: set[str], blocks: list[nn.Module], r: int, alpha: float, head_r: int
) -> list[nn.Parameter]:
    """Freeze ``root`` and make the parameters of ``groups`` trainable, adding adapters where a LoRA group
    asks for one (on every Linear of ``blocks``; a standard LoRA of rank ``head_r``, α = 2·rank, on the
    ``lm_head`` of ``root``). Returns the trainable ones."""
    for p in root.parameters():
        p.requires_grad_(False)
    if "full" in groups:
        for p in root.parameters():
            p.requires_grad_(True)
        return list(root.parameters())
    variant = next(iter(groups & set(VARIANTS)), None)
    if variant is not None:
        for block in blocks:
            add_adapters(block, variant, r, alpha)
    if "head" in groups:
        add_adapters(root, "lora", head_r, 2.0 * head_r, names=["lm_head"])
    for block in blocks:
        for module in block.modules():
            if "bias" in groups and isinstance(module, nn.Linear) and module.bias is not None:
                module.bias.requires_grad_(True)
    if "ln" in groups:
        for module in root.modules():
            if isinstance(module, nn.LayerNorm):
                for p in module.parameters():
                    p.requires_grad_(True)
    for module in root.modules():
        for pname in ("lora_A", "lora_B"):
            if hasattr(module, pname):
                getattr(module, pname).requires_grad_(True)
    return [p for p in root.parameters() if p.requires_grad]


@dataclass
class Recovery:
    """What one recovery run cost and trained."""

    strategy: str
    trainable: int
    fraction: float  # trainable / parameters of the dense model
    seconds: float = 0.0
    memory_bytes: int = 0
    losses: list[float] = field(default_factory=list)


def _state_bytes(params: list[nn.Parameter], optimizer: torch.optim.Optimizer | None) -> int:
    """Bytes of all parameters, the gradients of the trainable ones, and the optimizer's state tensors."""
    total = sum(p.numel() * p.element_size() for p in params)
    if optimizer is not None:
        for group in optimizer.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    total += p.grad.numel() * p.grad.element_size()
                for v in optimizer.state.get(p, {}).values():
                    if torch.is_tensor(v):
                        total += v.numel() * v.element_size()
    return total


class _Memory:
    """Peak memory of a recovery: CUDA's allocator peak, or the CPU training-state bytes (see module doc)."""

    def __init__(self, model: nn.Module, device):
        self.model, self.cuda = model, torch.device(device).type == "cuda"
        self.peak = 0
        if self.cuda:
            torch.cuda.reset_peak_memory_stats()

    def step(self, optimizer) -> None:
        if not self.cuda:
            self.peak = max(self.peak, _state_bytes(list(self.model.parameters()), optimizer))

    def result(self) -> int:
        return int(torch.cuda.max_memory_allocated()) if self.cuda else self.peak


def retrain(
    model,
    strategy: str,
    masks: Masks | None,
    tokens: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int,
    context: int,
    seed: int = 0,
    r: int = 16,
    alpha: float = 32.0,
    head_r: int = 16,
    device="cpu",
    merge: bool = True,
) -> Recovery:
    """Global retraining (``training_mode="retrain"``): AdamW on the causal-LM loss over random windows of
    ``tokens``, linear decay after 10 % warm-up, only the parameters of ``strategy``; FullFT re-applies
    ``masks`` after every step. With ``merge`` the adapters are merged at the end (MaskLoRA, ScaleLoRA and
    LoRA-Prune keep the mask; ``lora`` merges naively — pass ``merge=False`` to evaluate it unmerged)."""
    groups = parse_strategy(strategy)
    dense = n_parameters(model)
    blocks = list(model.model.decoder.layers)
    params = select_parameters(model, groups, blocks, r, alpha, head_r)
    out = Recovery(strategy, sum(p.numel() for p in params if p.requires_grad), 0.0)
    out.fraction = out.trainable / dense
    if not params:
        return out
    bound = masks.bind(model) if ("full" in groups and masks is not None) else None
    memory = _Memory(model, device)

    def after(opt):
        if bound is not None:
            Masks.apply_bound(bound, opt)
        memory.step(opt)

    start = time.perf_counter()
    out.losses = train_lm(
        model,
        params,
        tokens,
        steps,
        lr,
        batch_size,
        context,
        seed,
        lr_schedule="linear",
        after_step=after,
        device=device,
        desc=f"retrain {strategy}",
    )
    out.seconds, out.memory_bytes = time.perf_counter() - start, memory.result()
    if merge:
        merge_adapters(model)
    return out


def reconstructor(
    strategy: str,
    steps: int,
    lr: float,
    batch_size: int,
    r: int = 16,
    alpha: float = 32.0,
    seed: int = 0,
    log: list | None = None,
):
    """A ``reconstruct`` callback for :func:`companion.perp.prune.prune_model` (``training_mode=
    "reconstruct"``): train the ``strategy`` parameters of one pruned block to minimise
    MSE(block(X), Y_dense) with AdamW (linear decay, 10 % warm-up) on minibatches of the calibration
    sequences, keep FullFT's zeros, merge the adapters (MaskLoRA/ScaleLoRA keep the mask). ``log`` collects a
    :class:`Recovery` per block."""
    groups = parse_strategy(strategy) - {"head"}
    from ..train import schedule

    def run(block, x, y, kwargs):
        dense = n_parameters(block)
        params = select_parameters(block, groups, [block], r, alpha, r)
        rec = Recovery(strategy, sum(p.numel() for p in params), 0.0)
        rec.fraction = rec.trainable / dense
        if params:
            bound = Masks.from_model(block).bind(block) if "full" in groups else None
            opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
            mult = schedule("linear", warmup=max(1, steps // 10))
            gen = repro.generator(seed)
            memory = _Memory(block, x.device)
            start = time.perf_counter()
            for it in range(steps):
                for g in opt.param_groups:
                    g["lr"] = lr * mult(it, steps)
                idx = torch.randint(0, x.shape[0], (batch_size,), generator=gen).to(x.device)
                kw = {k: (v[idx] if torch.is_tensor(v) and v.shape[0] == x.shape[0] else v) for k, v in kwargs.items()}
                out = block(x[idx], **kw)
                out = out[0] if isinstance(out, tuple) else out
                loss = torch.mean((out - y[idx]) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                if bound is not None:
                    Masks.apply_bound(bound, opt)
                memory.step(opt)
                rec.losses.append(loss.item())
            rec.seconds, rec.memory_bytes = time.perf_counter() - start, memory.result()
            merge_adapters(block)
        for p in block.parameters():
            p.requires_grad_(False)
        if log is not None:
            log.append(rec)

    return run
