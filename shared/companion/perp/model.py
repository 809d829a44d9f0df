"""The models of the chapter: transformers' ``OPTForCausalLM`` at every scale.

- :func:`book_config` — the tiny OPT of the ``book`` profile (≈0.36 M parameters, character vocabulary),
  pretrained from scratch on the standard-library corpus by :func:`pretrained` and cached under
  ``runs/cache/perp/`` (key: configuration, training settings and corpus hash; a file lock makes two
  notebooks that start at once train it only once).
- :data:`OPT_CONFIGS` — the published configurations of OPT-2.7B/6.7B/13B/30B (Zhang et al., 2022, Table 1
  and the ``config.json`` files of ``facebook/opt-*``) as data, for the trainable fractions of the abstract.
- :func:`load_checkpoint` — a real OPT checkpoint from a local folder (``paper`` profile), no hub access.

One deliberate departure from OPT: the book's ``lm_head`` is *untied* from the input embedding, so that the
"head" parameter group of the paper's selective retraining exists on its own (OPT ties the two matrices).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # never reach the hub, at any scale

import torch  # noqa: E402
from transformers import OPTConfig, OPTForCausalLM  # noqa: E402

from .. import cache, progress, repro  # noqa: E402
from ..data.real import DataRootError  # noqa: E402
from ..train import schedule  # noqa: E402
from .corpus import Corpus, random_windows  # noqa: E402

#: Published OPT configurations (``facebook/opt-*/config.json``): hidden size, decoder layers, attention
#: heads, FFN width; all share vocabulary 50272, 2048 positions, ``word_embed_proj_dim = hidden_size``
#: and a tied ``lm_head``.
OPT_CONFIGS: dict[str, dict[str, int]] = {
    "OPT-2.7B": {"hidden_size": 2560, "num_hidden_layers": 32, "num_attention_heads": 32, "ffn_dim": 10240},
    "OPT-6.7B": {"hidden_size": 4096, "num_hidden_layers": 32, "num_attention_heads": 32, "ffn_dim": 16384},
    "OPT-13B": {"hidden_size": 5120, "num_hidden_layers": 40, "num_attention_heads": 40, "ffn_dim": 20480},
    "OPT-30B": {"hidden_size": 7168, "num_hidden_layers": 48, "num_attention_heads": 56, "ffn_dim": 28672},
}
OPT_VOCAB, OPT_POSITIONS = 50272, 2048


def opt_config(
    vocab_size: int,
    hidden_size: int,
    num_hidden_layers: int,
    num_attention_heads: int,
    ffn_dim: int,
    max_position_embeddings: int,
    tie_word_embeddings: bool = False,
) -> OPTConfig:
    """An ``OPTConfig`` with OPT's architecture (pre-LN, ReLU MLP, biases everywhere, learned positions),
    no dropout and ``word_embed_proj_dim = hidden_size`` (no projection layers, as in OPT ≥ 1.3B)."""
    return OPTConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_hidden_layers,
        num_attention_heads=num_attention_heads,
        ffn_dim=ffn_dim,
        max_position_embeddings=max_position_embeddings,
        word_embed_proj_dim=hidden_size,
        do_layer_norm_before=True,
        dropout=0.0,
        attention_dropout=0.0,
        activation_dropout=0.0,
        layerdrop=0.0,
        tie_word_embeddings=tie_word_embeddings,
        pad_token_id=0,
        bos_token_id=0,
        eos_token_id=0,
        enable_bias=True,
        layer_norm_elementwise_affine=True,
    )


def book_config(
    vocab_size: int, hidden_size: int = 96, num_hidden_layers: int = 3, num_attention_heads: int = 4, context: int = 64
) -> OPTConfig:
    """The ``book`` model: d = 96, 3 blocks, 4 heads, FFN 4d, context 64, untied head (≈0.36 M parameters)."""
    return opt_config(vocab_size, hidden_size, num_hidden_layers, num_attention_heads, 4 * hidden_size, context)


def opt_parameter_groups(
    hidden_size: int,
    num_hidden_layers: int,
    ffn_dim: int,
    vocab_size: int = OPT_VOCAB,
    max_positions: int = OPT_POSITIONS,
    tied: bool = True,
    **_,
) -> dict[str, int]:
    """Parameter counts of an OPT decoder by group, from its configuration alone (no weights needed):
    ``total``, ``bias`` (all Linear biases in the blocks), ``ln`` (all LayerNorm affine parameters, final
    one included), ``block_linear`` (the prunable weights), ``head`` (0 when tied: the head *is* the
    embedding), and ``lora_per_rank`` (A and B of one rank on every block Linear) and
    ``head_lora_per_rank`` (one rank of a LoRA on the head)."""
    d, f, L = hidden_size, ffn_dim, num_hidden_layers
    block_linear = L * (4 * d * d + 2 * d * f)
    bias = L * (4 * d + f + d)
    ln = L * 4 * d + 2 * d
    embed = vocab_size * d + (max_positions + 2) * d  # OPT offsets learned positions by 2
    head = 0 if tied else vocab_size * d
    return {
        "total": embed + block_linear + bias + ln + head,
        "bias": bias,
        "ln": ln,
        "block_linear": block_linear,
        "head": head,
        "lora_per_rank": L * (4 * 2 * d + 2 * (d + f)),
        "head_lora_per_rank": vocab_size + d,
    }


def build(config: OPTConfig, seed: int = 0) -> OPTForCausalLM:
    """A freshly initialised ``OPTForCausalLM`` (seeded, eval mode, eager-free SDPA attention)."""
    torch.manual_seed(seed)
    return OPTForCausalLM(config).eval()


def load_checkpoint(path: str | Path, dtype: torch.dtype | None = None) -> OPTForCausalLM:
    """A real OPT checkpoint (``facebook/opt-125m`` ... ``opt-30b`` layout) from a local folder, loaded with
    ``from_pretrained(path, local_files_only=True)``; raises :class:`DataRootError` with one line naming what
    is missing."""
    path = Path(path)
    if not path.is_dir():
        raise DataRootError(f"OPT checkpoint folder {path} not found (put a facebook/opt-* snapshot there)")
    if not (path / "config.json").is_file():
        raise DataRootError(f"{path / 'config.json'} is missing (the checkpoint's configuration)")
    weights = ("model.safetensors", "pytorch_model.bin", "model.safetensors.index.json", "pytorch_model.bin.index.json")
    if not any((path / w).is_file() for w in weights):
        raise DataRootError(f"no weights in {path}: expected one of {', '.join(weights)}")
    kwargs = {"dtype": dtype} if dtype is not None else {}
    return OPTForCausalLM.from_pretrained(path, local_files_only=True, **kwargs).eval()


def lm_loss(model: OPTForCausalLM, windows: torch.Tensor) -> torch.Tensor:
    """Mean next-token cross-entropy over the windows (each window predicts its own tokens 2..n)."""
    logits = model(input_ids=windows).logits[:, :-1]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), windows[:, 1:].reshape(-1))


def train_lm(
    model: OPTForCausalLM,
    params,
    tokens: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int,
    context: int,
    seed: int,
    lr_schedule: str = "cosine",
    warmup: float = 0.1,
    weight_decay: float = 0.0,
    after_step=None,
    device: torch.device | str = "cpu",
    desc: str = "train",
) -> list[float]:
    """AdamW on the causal-LM loss over random windows of ``tokens`` with a warm-up fraction and a decay
    schedule (``companion.train.schedule``); ``after_step(optimizer)`` runs after every optimizer step
    (to keep masks). Returns the training losses."""
    params = [p for p in params if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay)
    mult = schedule(lr_schedule, warmup=max(1, int(warmup * steps)))
    gen = repro.generator(seed)
    model.train()
    losses = []
    for it in progress(range(steps), desc=desc, leave=False):
        for g in opt.param_groups:
            g["lr"] = lr * mult(it, steps)
        x = random_windows(tokens, batch_size, context, gen).to(device)
        loss = lm_loss(model, x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if after_step is not None:
            after_step(opt)
        losses.append(loss.item())
    model.eval()
    return losses


@dataclass
class Pretrained:
    """The cached dense model and how it was made."""

    model: OPTForCausalLM
    key: str
    seconds: float  # wall time of the pretraining run that produced the cache entry
    cached: bool  # True when this call loaded it instead of training


def pretrained(
    corpus: Corpus,
    config: OPTConfig,
    steps: int,
    lr: float = 3e-3,
    batch_size: int = 16,
    seed: int = 0,
    device: torch.device | str = "cpu",
    cache_dir: str | Path | None = None,
) -> Pretrained:
    """The dense model pretrained from scratch on ``corpus.train`` (AdamW, 10 % warm-up, cosine), through
    :func:`companion.cache.cached` (namespace ``perp``): loaded when an entry with the same settings and
    numerical environment exists, otherwise trained and stored; concurrent callers wait on its lock so that
    one trains and the others load."""
    settings = {
        "config": config.to_diff_dict(),
        "steps": steps,
        "lr": lr,
        "batch_size": batch_size,
        "seed": seed,
        "corpus": corpus.sha256,
        "version": 1,
    }
    model = build(config, seed).to(device)

    def train() -> dict[str, Any]:
        train_lm(
            model,
            model.parameters(),
            corpus.train,
            steps,
            lr,
            batch_size,
            config.max_position_embeddings,
            seed,
            device=device,
            desc="pretrain",
        )
        return {"state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()}}

    out = cache.cached("perp", "opt", settings, train, root=cache_dir)
    if out.hit:
        model.load_state_dict(out.value["state_dict"])
    return Pretrained(model.eval(), out.key, out.build_seconds, out.hit)


def n_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def decoder_blocks(model: OPTForCausalLM):
    """The transformer blocks (``model.model.decoder.layers``)."""
    return model.model.decoder.layers


def block_linears(block: torch.nn.Module) -> dict[str, torch.nn.Linear]:
    """The prunable Linear layers of one block, by local name (q/k/v/out_proj, fc1, fc2 for OPT)."""
    return {n: m for n, m in block.named_modules() if isinstance(m, torch.nn.Linear)}
