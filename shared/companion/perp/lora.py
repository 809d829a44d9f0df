"""LoRA variants on pruned Linear layers (PERP §3, the official ``customLayers.py``).

W is the frozen pruned weight, M = 𝟙[W ≠ 0] its mask, B ∈ ℝ^{d_out×r}, A ∈ ℝ^{r×d_in}, s = α/r:

- ``lora``: W + s·BA (Hu et al., 2022; as ``peft``). Evaluated unmerged the effective weight is dense; the
  naive merge W + s·BA destroys the sparsity.
- ``lora_prune``: trains W + s·BA, then merges W + s·(M ⊙ BA): training and evaluation see different functions.
- ``mask_lora`` (MaskLoRA): forward *and* merge with W + s·(M ⊙ BA); B = 0 at the start, so the model starts at W.
- ``scale_lora`` (ScaleLoRA): W ⊙ (BA), no α/r; A = B = 𝟏/√r so that BA = 𝟏 and training starts exactly at W;
  the merge W ⊙ BA keeps every zero. (The released ``customLayers.py`` calls an undefined
  ``custom_dropout`` here; PERP forces LoRA dropout to 0, so we use none.)
"""

from __future__ import annotations

import math

import torch
from torch import nn

VARIANTS = ("lora", "lora_prune", "mask_lora", "scale_lora")


class LoRALinear(nn.Module):
    """A frozen ``nn.Linear`` (``self.base``, bias trainable on request) with a rank-``r`` adapter of one
    of :data:`VARIANTS`. ``A`` follows peft's default initialisation (Kaiming-uniform, a = √5), ``B = 0``,
    except for ScaleLoRA (both 𝟏/√r)."""

    def __init__(self, base: nn.Linear, variant: str = "mask_lora", r: int = 16, alpha: float = 32.0):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"unknown LoRA variant {variant!r}; accepted: {', '.join(VARIANTS)}")
        self.base, self.variant, self.r = base, variant, r
        base.weight.requires_grad_(False)
        self.register_buffer("mask", (base.weight.detach() != 0).to(base.weight.dtype), persistent=False)
        w = base.weight
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r, dtype=w.dtype, device=w.device))
        if variant == "scale_lora":
            self.scaling = 1.0
            nn.init.constant_(self.lora_A, 1.0 / math.sqrt(r))
            nn.init.constant_(self.lora_B, 1.0 / math.sqrt(r))
        else:
            self.scaling = alpha / r
            nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))
            nn.init.zeros_(self.lora_B)

    @property
    def weight(self) -> torch.Tensor:
        return self.base.weight

    @property
    def bias(self):
        return self.base.bias

    def effective_weight(self, merge: bool = False) -> torch.Tensor:
        """The weight the layer computes with (``merge=False``) or the one :func:`merge` writes (for
        ``lora_prune`` the two differ: the mask is applied only when merging)."""
        W, BA = self.base.weight, self.lora_B @ self.lora_A
        if self.variant == "scale_lora":
            return W * BA
        if self.variant == "mask_lora" or (self.variant == "lora_prune" and merge):
            return W + self.scaling * (self.mask * BA)
        return W + self.scaling * BA

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.variant in ("lora", "lora_prune"):  # the factored path, as peft computes it
            out = self.base(x)
            return out + (x @ self.lora_A.T @ self.lora_B.T) * self.scaling
        return nn.functional.linear(x, self.effective_weight(), self.base.bias)


def effective_weight(layer: nn.Module) -> torch.Tensor:
    """The effective weight of a Linear or an adapter-wrapped Linear, as the forward pass uses it."""
    return layer.effective_weight() if isinstance(layer, LoRALinear) else layer.weight


@torch.no_grad()
def merged_linear(layer: LoRALinear, masked: bool | None = None) -> nn.Linear:
    """A plain ``nn.Linear`` holding the merged weight of ``layer`` (MaskLoRA, ScaleLoRA and LoRA-Prune keep
    the zeros of W; ``lora`` is the naive merge W + s·BA). ``masked=True`` merges an additive adapter with
    the mask, W + s·(M ⊙ BA) — LoRA-Prune's merge, so one trained plain LoRA gives both merges."""
    out = nn.Linear(
        layer.base.in_features,
        layer.base.out_features,
        bias=layer.base.bias is not None,
        device=layer.base.weight.device,
        dtype=layer.base.weight.dtype,
    )
    if masked and layer.variant != "scale_lora":
        out.weight.copy_(layer.base.weight + layer.scaling * (layer.mask * (layer.lora_B @ layer.lora_A)))
    else:
        out.weight.copy_(layer.effective_weight(merge=True))
    if layer.base.bias is not None:
        out.bias.copy_(layer.base.bias)
    return out


def add_adapters(root: nn.Module, variant: str, r: int, alpha: float, names: list[str] | None = None) -> list[str]:
    """Replace the Linear layers of ``root`` (all, or those whose local name ends with one of ``names``)
    by :class:`LoRALinear` wrappers; returns the wrapped module names."""
    wrapped = []
    for name, module in list(root.named_modules()):
        if isinstance(module, nn.Linear) and (names is None or name.split(".")[-1] in names):
            parent, _, leaf = name.rpartition(".")
            setattr(root.get_submodule(parent) if parent else root, leaf, LoRALinear(module, variant, r, alpha))
            wrapped.append(name)
    return wrapped


def merge_adapters(root: nn.Module, masked: bool | None = None) -> int:
    """Replace every :class:`LoRALinear` under ``root`` by its :func:`merged_linear` (``masked``: see
    there); returns how many."""
    count = 0
    for name, module in list(root.named_modules()):
        if isinstance(module, LoRALinear):
            parent, _, leaf = name.rpartition(".")
            setattr(root.get_submodule(parent) if parent else root, leaf, merged_linear(module, masked))
            count += 1
    return count
