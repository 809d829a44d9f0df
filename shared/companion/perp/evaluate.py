"""Evaluation: perplexity in the SparseGPT/Wanda convention and the "zero-shot" multiple-choice analog."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from .corpus import split_of, stdlib_dir


@torch.no_grad()
def perplexity(model, windows: torch.Tensor, batch_size: int = 64) -> float:
    """exp of the mean over non-overlapping windows of each window's mean next-token loss.

    The official code (after SparseGPT and Wanda) multiplies each window's mean over its seqlen − 1 shifted
    targets by seqlen and divides the sum by (windows · seqlen): the factor cancels, which is what we compute.
    A model with uniform logits over V symbols has perplexity exactly V."""
    model.eval()
    total, n = 0.0, 0
    for i in range(0, windows.shape[0], batch_size):
        x = windows[i : i + batch_size].to(next(model.parameters()).device)
        logits = model(input_ids=x).logits[:, :-1].float()
        loss = torch.nn.functional.cross_entropy(logits.transpose(1, 2), x[:, 1:], reduction="none").mean(1)
        total += float(loss.double().sum())
        n += x.shape[0]
    return math.exp(total / n)


# ---------------------------------------------------------------------------------------------------------------
# The "zero-shot" analog: log-likelihood multiple-choice tasks built from held-out standard-library files.
#
# PERP (Section 4, "zero-shot" table; official code: ``lm_eval`` with ``acc``) scores seven lm-eval-harness
# tasks. lm-eval scores a multiple-choice item by the sum of the log-probabilities of each choice's tokens given
# the context and counts it correct when the true choice has the largest sum (``acc``; ``acc_norm`` divides by
# the choice's length in bytes first). We do exactly that on three tasks cut from the *test* files of the corpus
# (the book's analog, notebook ``perp/04-zero-shot``), so no item text was seen in pretraining, retraining or
# calibration.
# ---------------------------------------------------------------------------------------------------------------

#: The three tasks: next-line choice, bracket or quote closure, indentation level.
TASKS = ("next_line", "closure", "indent")
#: Closing characters of the closure task (the true one and three others are the choices).
CLOSERS = ")]}'\""
#: Indentation levels of the indentation task (the true one and three others).
INDENTS = (0, 4, 8, 12, 16)


@dataclass(frozen=True)
class Item:
    """One multiple-choice item: ``context``, the ``choices`` (strings appended to it), the index ``label`` of
    the true choice, the task and the file the context and the true choice come from."""

    task: str
    context: str
    choices: tuple[str, ...]
    label: int
    source: str


def held_out_texts(files: list[str], root: str | Path | None = None, part: str = "test") -> dict[str, str]:
    """The texts of ``files`` (relative names under ``root``, default the standard library; tabs as spaces, as
    the tokenizer reads them), after checking that every one is assigned to ``part`` by
    :func:`~companion.perp.corpus.split_of`: a training file raises ``ValueError``."""
    root = Path(root) if root else stdlib_dir()
    wrong = [f for f in files if split_of(f) != part]
    if wrong:
        raise ValueError(f"not {part} files: {', '.join(wrong)}")
    return {f: (root / f).read_text(encoding="utf-8", errors="replace").replace("\t", " ") for f in sorted(files)}


def _line_starts(text: str, context: int):
    """Start offsets of the lines that have at least ``context`` characters before them."""
    return [i + 1 for i, c in enumerate(text) if c == "\n" and i + 1 >= context]


def _candidates(texts: dict[str, str], task: str, context: int, length: int) -> list[tuple[str, int, str]]:
    """(file, offset, true choice) for every position of ``task`` in every file, in file and offset order."""
    out = []
    for name, text in texts.items():
        if task == "closure":
            for i in range(context, len(text)):
                c = text[i]
                if c in ")]}":
                    out.append((name, i, c))
                elif c in "'\"":
                    line = text[text.rfind("\n", 0, i) + 1 : i]
                    if c * 3 not in text[i - 2 : i + 3] and line.count(c) % 2 == 1:  # closes a one-line string
                        out.append((name, i, c))
            continue
        for i in _line_starts(text, context):
            end = text.find("\n", i)
            line = text[i : end if end >= 0 else len(text)]
            body = line.lstrip(" ")
            if task == "next_line" and len(line) >= length and line[:length].strip():
                out.append((name, i, line[:length]))
            elif task == "indent":
                w = len(line) - len(body)
                if w in INDENTS and len(body) >= length // 2:
                    out.append((name, i, line[: w + length // 2]))
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; accepted: {', '.join(TASKS)}")
    return out


def multiple_choice_items(
    texts: dict[str, str],
    task: str,
    n: int = 200,
    seed: int = 0,
    context: int = 48,
    length: int = 16,
    n_choices: int = 4,
) -> list[Item]:
    """``n`` items of ``task`` drawn without replacement from the positions of ``texts`` (held-out files, see
    :func:`held_out_texts`), deterministic in ``seed`` (numpy's PCG64) and independent of dict order.

    - ``next_line``: the ``context`` characters before a line start; the true next ``length`` characters
      against the first ``length`` characters of lines drawn from *other* files (distinct beginnings, drawn
      uniformly);
    - ``closure``: the ``context`` characters before a closing bracket or the closing quote of a one-line
      string; the true closer against three others of :data:`CLOSERS`;
    - ``indent``: the ``context`` characters before a line start; the line's first ``length // 2`` characters
      after its indentation, at the true indentation and at three other levels of :data:`INDENTS`.

    The true choice's position among the ``n_choices`` is uniform, so chance is ``1 / n_choices``."""
    texts = dict(sorted(texts.items()))
    rng = np.random.default_rng(seed)
    cands = _candidates(texts, task, context, length)
    if len(cands) < n:
        raise ValueError(f"only {len(cands)} {task} positions for {n} items")
    items = []
    for k in rng.choice(len(cands), size=n, replace=False):
        name, i, true = cands[int(k)]
        if task == "next_line":
            pool = sorted({c[2] for c in cands if c[0] != name and c[2] != true})
            if len(pool) < n_choices - 1:
                raise ValueError(f"fewer than {n_choices - 1} distinct lines in the other files for {name}")
            others = [str(c) for c in rng.choice(pool, n_choices - 1, replace=False)]
        elif task == "closure":
            others = [str(c) for c in rng.choice([c for c in CLOSERS if c != true], n_choices - 1, replace=False)]
        else:
            body = true.lstrip(" ")
            w = len(true) - len(body)
            levels = rng.choice([v for v in INDENTS if v != w], n_choices - 1, replace=False)
            others = [" " * int(v) + body for v in levels]
        choices = [true, *others]
        order = rng.permutation(n_choices)
        shuffled = tuple(choices[j] for j in order)
        items.append(Item(task, texts[name][i - context : i], shuffled, int(np.argmax(order == 0)), name))
    return items


@torch.no_grad()
def choice_logprobs(
    model, tokenizer, items: list[Item], max_length: int | None = None, batch_size: int = 256
) -> list[np.ndarray]:
    """Per item, the sum over each choice's tokens of log p(token | context, earlier choice tokens) under
    ``model`` (lm-eval-harness's multiple-choice log-likelihood), and per item the choices' lengths in tokens.

    Each context is cut from the left so that context + longest choice fit in ``max_length`` positions
    (default: the model's ``max_position_embeddings``), the same cut for all choices of an item. Sequences
    are right-padded; under the causal mask the padding cannot change the scored positions. The logits that
    score a choice depend only on the context and the choice without its last token, so choices of one token
    (the closure task) share one forward pass."""
    if max_length is None:
        max_length = model.config.max_position_embeddings
    inputs: dict[tuple, int] = {}  # distinct model inputs (context + choice without its last token)
    spans = []  # per choice: its input, first scored position, the choice's tokens
    for it in items:
        enc = [tokenizer.encode(c) for c in it.choices]
        ctx = tokenizer.encode(it.context)[-(max_length - max(len(e) for e in enc)) :]
        for e in enc:
            key = tuple(torch.cat([ctx, e[:-1]]).tolist())
            spans.append((inputs.setdefault(key, len(inputs)), len(ctx), e))
    device = next(model.parameters()).device
    seqs = list(inputs)
    logps = []
    model.eval()
    for b in range(0, len(seqs), batch_size):
        chunk = seqs[b : b + batch_size]
        x = torch.zeros(len(chunk), max(len(q) for q in chunk), dtype=torch.long)
        for j, q in enumerate(chunk):
            x[j, : len(q)] = torch.tensor(q)
        logps.append(torch.log_softmax(model(input_ids=x.to(device)).logits.float(), -1).double().cpu())
    scores = []
    for row, start, e in spans:
        logp = logps[row // batch_size][row % batch_size]
        scores.append(float(logp[torch.arange(start - 1, start - 1 + len(e)), e].sum()))
    k = [len(it.choices) for it in items]
    offsets = np.cumsum([0, *k])
    lengths = np.array([len(e) for _, _, e in spans])
    return [
        np.stack([np.array(scores[offsets[i] : offsets[i + 1]]), lengths[offsets[i] : offsets[i + 1]]])
        for i in range(len(items))
    ]


def item_hits(scores: list[np.ndarray], labels, normalize: bool = False) -> np.ndarray:
    """Per item, 1 when its true choice has the largest log-likelihood and 0 otherwise (with ``normalize``
    the log-likelihood per character, lm-eval's ``acc_norm`` for ASCII text). A tie among the best choices
    gives the true one 1/(number tied), the expectation of breaking it at random: uniform logits score chance
    exactly. Paired per-item hits of two models give the standard error of their accuracy difference."""
    hits = []
    for s, y in zip(scores, labels):
        s = np.asarray(s, dtype=float)
        ll = s[0] / s[1] if normalize else s[0]
        best = np.isclose(ll, ll.max(), rtol=0.0, atol=1e-9)
        hits.append(best[y] / best.sum())
    return np.asarray(hits, dtype=float)


def accuracy_from_scores(scores: list[np.ndarray], labels, normalize: bool = False) -> float:
    """Share of items answered correctly (``acc``, or ``acc_norm`` with ``normalize``): the mean of
    :func:`item_hits`."""
    return float(np.mean(item_hits(scores, labels, normalize)))


def multiple_choice_accuracy(
    model, tokenizer, items: list[Item], normalize: bool = False, max_length: int | None = None
) -> float:
    """Accuracy of ``model`` on ``items``: :func:`choice_logprobs` then :func:`accuracy_from_scores`."""
    return accuracy_from_scores(
        choice_logprobs(model, tokenizer, items, max_length), [it.label for it in items], normalize
    )


def chance_level(items: list[Item]) -> float:
    """Expected accuracy of guessing: the mean of 1 / (number of choices)."""
    return float(np.mean([1.0 / len(it.choices) for it in items]))
