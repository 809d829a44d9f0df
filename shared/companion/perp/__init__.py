"""PERP (Zimmer, Andoni, Spiegel & Pokutta, 2023): pruning LLMs and parameter-efficient retraining after
pruning, on transformers' ``OPTForCausalLM``.

- :mod:`~companion.perp.corpus` — CPython's standard library as the text corpus (file-hash split, characters);
- :mod:`~companion.perp.model` — the tiny OPT of the book (pretrained once, cached), OPT-2.7B … 30B
  configurations as data, a local-checkpoint loader for the ``paper`` profile;
- :mod:`~companion.perp.prune` — sequential block-wise magnitude / random / Wanda / SparseGPT, unstructured
  and N:M;
- :mod:`~companion.perp.lora` — LoRA, LoRA-Prune, MaskLoRA, ScaleLoRA and their merges;
- :mod:`~companion.perp.recovery` — selective retraining (biases, LayerNorm, head, adapters, FullFT),
  per-block reconstruction, trainable fractions, time and memory;
- :mod:`~companion.perp.evaluate` — perplexity (SparseGPT/Wanda convention) and multiple-choice tasks.

Importing this package sets ``HF_HUB_OFFLINE=1``: nothing is ever fetched from the Hugging Face hub.
"""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from . import corpus, evaluate, lora, model, prune, recovery  # noqa: E402
from .corpus import CharTokenizer, Corpus, eval_windows, load_corpus, random_windows  # noqa: E402
from .evaluate import perplexity  # noqa: E402
from .lora import LoRALinear, add_adapters, merge_adapters  # noqa: E402
from .model import OPT_CONFIGS, book_config, load_checkpoint, opt_parameter_groups, pretrained  # noqa: E402
from .prune import METHODS, STRUCTURES, block_sparsity, keep_mask, prune_model, sparsegpt_  # noqa: E402
from .recovery import Recovery, reconstructor, retrain  # noqa: E402

__all__ = [
    "corpus",
    "evaluate",
    "lora",
    "model",
    "prune",
    "recovery",
    "CharTokenizer",
    "Corpus",
    "eval_windows",
    "load_corpus",
    "random_windows",
    "perplexity",
    "LoRALinear",
    "add_adapters",
    "merge_adapters",
    "OPT_CONFIGS",
    "book_config",
    "load_checkpoint",
    "opt_parameter_groups",
    "pretrained",
    "METHODS",
    "STRUCTURES",
    "block_sparsity",
    "keep_mask",
    "prune_model",
    "sparsegpt_",
    "Recovery",
    "reconstructor",
    "retrain",
]
