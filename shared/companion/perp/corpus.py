"""The book's text corpus: CPython's standard-library source, split by file, character-level tokens.

PERP (Zimmer et al., 2023, Section 4) retrains on C4 and evaluates perplexity on WikiText-2; neither can be
downloaded here, so the book uses the Python source that ships with every interpreter as both: files are
assigned to train / val / test by a stable hash of their name (80 / 10 / 10 %), so no file is split across
parts and the split does not depend on the order of ``os.listdir``. The corpus differs between Python
versions: :attr:`Corpus.sha256` goes into every record, and the tests compare relations, not numbers.
"""

from __future__ import annotations

import hashlib
import os
import string
from dataclasses import dataclass
from pathlib import Path

import torch

UNK = "\x00"
#: 95 printable ASCII characters and the newline, plus ``<unk>`` (id 0); tabs become spaces.
ALPHABET = UNK + "\n" + "".join(c for c in string.printable if c.isprintable())


def stdlib_dir() -> Path:
    """The standard-library folder of the base interpreter (a venv does not copy it)."""
    return Path(os.path.dirname(os.__file__))


def split_of(name: str) -> str:
    """``train`` / ``val`` / ``test`` from the first byte of SHA-256(name): 80 / 10 / 10 %."""
    bucket = hashlib.sha256(name.encode()).digest()[0] % 10
    return "train" if bucket < 8 else ("val" if bucket == 8 else "test")


class CharTokenizer:
    """Character-level tokenizer over :data:`ALPHABET` (unknown characters map to id 0)."""

    def __init__(self, alphabet: str = ALPHABET):
        self.alphabet = alphabet
        self.index = {c: i for i, c in enumerate(alphabet)}

    @property
    def vocab_size(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str) -> torch.Tensor:
        text = text.replace("\t", " ")
        return torch.tensor([self.index.get(c, 0) for c in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.alphabet[int(i)] for i in ids)


@dataclass
class Corpus:
    """Token streams of the three parts (files joined with a blank line) and their provenance."""

    train: torch.Tensor
    val: torch.Tensor
    test: torch.Tensor
    files: dict[str, list[str]]
    sha256: str
    tokenizer: CharTokenizer


def load_corpus(
    root: str | Path | None = None,
    recursive: bool = False,
    max_train_chars: int | None = None,
    max_eval_chars: int | None = None,
) -> Corpus:
    """Read the ``*.py`` files of ``root`` (default :func:`stdlib_dir`; ``recursive`` adds sub-packages
    except ``test*`` folders), sorted by relative path, split them with :func:`split_of` and tokenise.

    ``max_train_chars`` / ``max_eval_chars`` cut the joined texts (the ``book`` scale caps them); the hash
    covers exactly the text used.
    """
    root = Path(root) if root else stdlib_dir()
    pattern = "**/*.py" if recursive else "*.py"
    paths = sorted(
        p
        for p in root.glob(pattern)
        if not any(part.startswith("test") for part in p.relative_to(root).parts[:-1])
        and "site-packages" not in p.parts
    )
    texts: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    files: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for p in paths:
        rel = p.relative_to(root).as_posix()
        part = split_of(rel)
        texts[part].append(p.read_text(encoding="utf-8", errors="replace"))
        files[part].append(rel)
    joined = {k: "\n\n".join(v) for k, v in texts.items()}
    if max_train_chars:
        joined["train"] = joined["train"][:max_train_chars]
    if max_eval_chars:
        joined["val"] = joined["val"][:max_eval_chars]
        joined["test"] = joined["test"][:max_eval_chars]
    digest = hashlib.sha256()
    for k in ("train", "val", "test"):
        digest.update(k.encode() + b"\0" + joined[k].encode("utf-8", errors="replace"))
    tok = CharTokenizer()
    return Corpus(
        tok.encode(joined["train"]),
        tok.encode(joined["val"]),
        tok.encode(joined["test"]),
        files,
        digest.hexdigest(),
        tok,
    )


def random_windows(tokens: torch.Tensor, n: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` windows of ``length`` tokens at uniformly random offsets (the calibration and retraining
    samples; the official code draws C4 windows the same way)."""
    starts = torch.randint(0, tokens.numel() - length, (n,), generator=generator)
    return torch.stack([tokens[s : s + length] for s in starts.tolist()])


def eval_windows(tokens: torch.Tensor, length: int, max_windows: int | None = None) -> torch.Tensor:
    """Non-overlapping windows of ``length`` tokens (the SparseGPT/Wanda perplexity convention; the
    incomplete tail is dropped). With ``max_windows`` (the book's time budget) an evenly spaced subset of them,
    so that the windows still cover every test file instead of only the first few."""
    n = tokens.numel() // length
    windows = tokens[: n * length].view(n, length)
    if max_windows and max_windows < n:
        windows = windows[torch.linspace(0, n - 1, max_windows).round().long()]
    return windows
