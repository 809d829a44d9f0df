"""What the chapter's notebooks share: build the corpus and the pretrained model of a profile, and run one
recovery with its measurements. (Plumbing: the methods themselves are in the sibling modules.)"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path

import torch

from .. import repro
from ..data.real import DataRootError
from .corpus import Corpus, eval_windows, load_corpus, random_windows
from .evaluate import perplexity
from .model import book_config, load_checkpoint, n_parameters, pretrained
from .prune import block_sparsity
from .recovery import retrain


@dataclass
class Setup:
    """The dense model of a notebook and its data: evaluation windows (test and val), calibration windows,
    the retraining stream, and how the model was obtained."""

    model: torch.nn.Module
    corpus: Corpus
    test: torch.Tensor
    val: torch.Tensor
    calibration: torch.Tensor
    context: int
    pretrain_seconds: float
    cached: bool
    parameters: int


def setup(
    seed: int,
    device,
    context: int,
    hidden_size: int,
    layers: int,
    heads: int,
    pretrain_steps: int,
    pretrain_batch: int,
    pretrain_lr: float,
    max_train_chars: int,
    max_eval_chars: int,
    eval_windows_n: int,
    calib_windows: int,
    recursive: bool = False,
    data_root: str = "",
    checkpoint: str = "",
) -> Setup:
    """The tiny OPT pretrained on the standard library (``checkpoint`` empty; cached), or a real OPT
    checkpoint ``data_root/checkpoint`` with its own tokenizer and the WikiText-2 raw files
    ``data_root/wikitext-2-raw/wiki.{train,test}.raw`` (``paper`` profile; the train part stands in for C4)."""
    if checkpoint:
        model = load_checkpoint(Path(data_root) / checkpoint).to(device)
        corpus = _wikitext(Path(data_root), Path(data_root) / checkpoint)
        context = min(model.config.max_position_embeddings, 4096)
        seconds, cached = 0.0, True
    else:
        corpus = load_corpus(recursive=recursive, max_train_chars=max_train_chars, max_eval_chars=max_eval_chars)
        config = book_config(corpus.tokenizer.vocab_size, hidden_size, layers, heads, context)
        pre = pretrained(corpus, config, pretrain_steps, pretrain_lr, pretrain_batch, seed=seed, device=device)
        model, seconds, cached = pre.model, pre.seconds, pre.cached
    test = eval_windows(corpus.test, context, eval_windows_n).to(device)
    val = eval_windows(corpus.val, context, eval_windows_n).to(device)
    calib = random_windows(corpus.train, calib_windows, context, repro.generator(seed + 1)).to(device)
    return Setup(model, corpus, test, val, calib, context, seconds, cached, n_parameters(model))


def _wikitext(root: Path, checkpoint: Path) -> Corpus:
    """WikiText-2 raw, tokenised with the checkpoint's tokenizer (joined with blank lines, as SparseGPT)."""
    from transformers import AutoTokenizer

    files = {part: root / "wikitext-2-raw" / f"wiki.{part}.raw" for part in ("train", "test")}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise DataRootError(f"missing WikiText-2 raw file(s): {', '.join(missing)}")
    tok = AutoTokenizer.from_pretrained(checkpoint, local_files_only=True)
    ids = {k: torch.tensor(tok(p.read_text()).input_ids) for k, p in files.items()}
    return Corpus(ids["train"], ids["test"], ids["test"], {}, "wikitext-2-raw", PretrainedTokenizer(tok))


class PretrainedTokenizer:
    """A checkpoint's Hugging Face tokenizer behind :class:`~companion.perp.corpus.CharTokenizer`'s interface
    (``encode`` to a LongTensor without special tokens, ``decode``, ``vocab_size``), so that the
    multiple-choice scoring of :mod:`~companion.perp.evaluate` runs on a real OPT as on the book model.
    Context and choice are encoded separately, as two strings."""

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer

    @property
    def vocab_size(self) -> int:
        return len(self.tokenizer)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor(self.tokenizer(text, add_special_tokens=False).input_ids, dtype=torch.long)

    def decode(self, ids) -> str:
        return self.tokenizer.decode([int(i) for i in ids])


def recover(
    base: torch.nn.Module,
    strategy: str,
    masks,
    s: Setup,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    r: int,
    alpha: float,
    device,
    merge: bool = True,
) -> tuple[torch.nn.Module, dict]:
    """Retrain a copy of the pruned ``base`` with ``strategy`` (``none`` = no retraining) and measure it:
    test perplexity, measured sparsity of the (merged) block weights, trainable fraction, time, memory."""
    model = copy.deepcopy(base)
    if strategy == "none":
        return model, {
            "ppl": perplexity(model, s.test),
            "measured": block_sparsity(model),
            "fraction": 0.0,
            "seconds": 0.0,
            "memory_mb": 0.0,
        }
    repro.seed_everything(seed)
    out = retrain(
        model,
        strategy,
        masks,
        s.corpus.train,
        steps,
        lr,
        batch_size,
        s.context,
        seed=seed,
        r=r,
        alpha=alpha,
        head_r=r,
        device=device,
        merge=merge,
    )
    return model, {
        "ppl": perplexity(model, s.test),
        "measured": block_sparsity(model),
        "fraction": out.fraction,
        "seconds": out.seconds,
        "memory_mb": out.memory_bytes / 2**20,
    }
