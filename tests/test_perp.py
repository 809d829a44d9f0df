"""companion.perp: LoRA variants and merges, N:M masks, Wanda and SparseGPT, sequential pruning,
perplexity, peft equivalence, the paper-profile checkpoint loader, parameter counts and the model cache."""

from __future__ import annotations

import copy
import math
import os

os.environ["HF_HUB_OFFLINE"] = "1"

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from companion.data import DataRootError  # noqa: E402
from companion.perp import corpus, lora, prune, recovery  # noqa: E402
from companion.perp import model as M
from companion.perp.evaluate import perplexity  # noqa: E402
from torch import nn  # noqa: E402


def tiny(seed=0, tied=False, vocab=23, d=16, layers=2):
    return M.build(M.opt_config(vocab, d, layers, 2, 4 * d, 16, tie_word_embeddings=tied), seed)


def sparse_linear(d_out=6, d_in=8, sparsity=0.5, seed=0):
    torch.manual_seed(seed)
    layer = nn.Linear(d_in, d_out)
    with torch.no_grad():
        layer.weight.mul_(prune.keep_mask(layer.weight.abs(), sparsity))
    return layer


# -- LoRA variants ----------------------------------------------------------------------------------------


def test_worked_example_mask_lora_vs_naive_merge():
    base = nn.Linear(2, 2, bias=False)
    with torch.no_grad():
        base.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
    delta = torch.tensor([[0.1, 0.2], [0.3, 0.4]])
    merged = {}
    for variant in ("mask_lora", "lora"):
        layer = lora.LoRALinear(copy.deepcopy(base), variant, r=2, alpha=2.0)  # s = 1
        with torch.no_grad():
            layer.lora_A.copy_(torch.eye(2))
            layer.lora_B.copy_(delta)
        merged[variant] = lora.merged_linear(layer).weight
    assert torch.allclose(merged["mask_lora"], torch.tensor([[1.1, 0.0], [0.0, 2.4]]))
    assert torch.allclose(merged["lora"], torch.tensor([[1.1, 0.2], [0.3, 2.4]]))


@pytest.mark.parametrize("variant", ["mask_lora", "scale_lora", "lora_prune"])
def test_sparsity_keeping_merges_keep_the_exact_mask(variant):
    base = sparse_linear(sparsity=0.6)
    zeros = base.weight == 0
    layer = lora.LoRALinear(copy.deepcopy(base), variant, r=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_A.normal_()
        layer.lora_B.normal_()
    merged = lora.merged_linear(layer).weight
    assert torch.equal(merged == 0, zeros)
    if variant != "lora_prune":  # MaskLoRA / ScaleLoRA: the merged layer computes what was trained
        x = torch.randn(5, base.in_features)
        assert torch.allclose(layer(x), nn.functional.linear(x, merged, base.bias), atol=1e-5)


def test_naive_lora_merge_destroys_the_sparsity():
    base = sparse_linear(sparsity=0.6)
    layer = lora.LoRALinear(copy.deepcopy(base), "lora", r=3, alpha=6.0)
    with torch.no_grad():
        layer.lora_B.normal_()
    merged = lora.merged_linear(layer).weight
    assert (merged == 0).float().mean() < 0.05 < (base.weight == 0).float().mean()


@pytest.mark.parametrize("r", [4, 16])
def test_scale_lora_starts_exactly_at_w(r):
    base = sparse_linear()
    layer = lora.LoRALinear(copy.deepcopy(base), "scale_lora", r=r)
    assert torch.equal(layer.effective_weight(), base.weight)
    x = torch.randn(4, base.in_features)
    assert torch.equal(layer(x), base(x))


def test_mask_lora_with_b_zero_is_the_base_layer():
    base = sparse_linear()
    layer = lora.LoRALinear(copy.deepcopy(base), "mask_lora", r=4)
    x = torch.randn(4, base.in_features)
    assert torch.equal(layer(x), base(x))


def test_our_lora_equals_peft_lora():
    peft = pytest.importorskip("peft")
    ref = tiny(seed=1)
    ours = copy.deepcopy(ref)
    targets = ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"]
    cfg = peft.LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=targets, bias="none")
    pm = peft.get_peft_model(ref, cfg)
    torch.manual_seed(3)
    for name, module in pm.named_modules():
        if hasattr(module, "lora_B") and isinstance(getattr(module, "lora_B"), nn.ModuleDict):
            with torch.no_grad():
                module.lora_B["default"].weight.normal_()
    for block in M.decoder_blocks(ours):
        lora.add_adapters(block, "lora", r=4, alpha=8.0, names=targets)
    theirs = dict(pm.named_modules())
    for name, module in ours.named_modules():
        if isinstance(module, lora.LoRALinear):
            peft_mod = theirs["base_model.model." + name]
            with torch.no_grad():
                module.lora_A.copy_(peft_mod.lora_A["default"].weight)
                module.lora_B.copy_(peft_mod.lora_B["default"].weight)
            assert module.scaling == peft_mod.scaling["default"]
    x = torch.randint(0, 23, (2, 16))
    with torch.no_grad():
        a, b = pm(input_ids=x).logits, ours(input_ids=x).logits
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(b, tiny(seed=1)(input_ids=x).logits, atol=1e-3)  # the adapters do something


# -- masks and criteria -----------------------------------------------------------------------------------


def test_two_four_worked_example():
    row = torch.tensor([[0.1, -3.0, 2.0, 0.5, 4.0, -0.2, 0.3, 1.0]])
    keep = prune.keep_mask(row.abs(), 0.5, "2:4")
    assert keep.tolist() == [[False, True, True, False, True, False, False, True]]


@pytest.mark.parametrize("structure", ["2:4", "4:8"])
@pytest.mark.parametrize("method", ["magnitude", "sparsegpt"])
def test_n_m_masks_have_exactly_n_zeros_per_group(structure, method):
    n, m = prune.parse_structure(structure)
    torch.manual_seed(0)
    layer = nn.Linear(32, 12)
    if method == "magnitude":
        keep = prune.keep_mask(layer.weight.abs(), 0.5, structure)
    else:
        X = torch.randn(32, 200)
        keep = prune.sparsegpt_(layer, X @ X.T, 0.5, structure)
        assert torch.equal(layer.weight == 0, ~keep)
    pruned_per_group = (~keep).reshape(12, -1, m).sum(-1)
    assert torch.all(pruned_per_group == n)


def test_comparison_group_matters_worked_example():
    W = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    s = prune.wanda_scores(W, torch.ones(2))
    assert prune.keep_mask(s, 0.5, group="matrix").tolist() == [[False, False], [True, True]]
    assert prune.keep_mask(s, 0.5, group="row").tolist() == [[False, True], [False, True]]


def test_wanda_score_worked_example():
    W = torch.tensor([[1.0, 2.0], [3.0, 0.5]])
    s = prune.wanda_scores(W, torch.tensor([4.0, 0.25]))
    assert torch.allclose(s, torch.tensor([[2.0, 1.0], [6.0, 0.25]]))
    assert prune.keep_mask(s, 0.5).tolist() == [[True, False], [True, False]]


def test_wanda_with_equal_activation_norms_is_magnitude():
    torch.manual_seed(0)
    W = torch.randn(16, 24)
    for group in ("matrix", "row"):
        wanda = prune.keep_mask(prune.wanda_scores(W, torch.full((24,), 7.3)), 0.6, group=group)
        assert torch.equal(wanda, prune.keep_mask(W.abs(), 0.6, group=group))


def test_sparsegpt_with_identity_hessian_is_magnitude():
    torch.manual_seed(0)
    layer = nn.Linear(64, 10)  # one block of <= 128 columns: SparseGPT's group is the whole matrix
    W = layer.weight.detach().clone()
    keep = prune.sparsegpt_(layer, torch.eye(64), 0.5)
    assert torch.equal(keep, prune.keep_mask(W.abs(), 0.5))
    assert torch.equal(layer.weight.detach(), W * keep)  # no OBS update when H is diagonal


def test_sparsegpt_reconstruction_error_below_magnitude():
    torch.manual_seed(0)
    layer = nn.Linear(160, 20)  # two column blocks
    X = torch.randn(160, 400) * torch.linspace(0.1, 3.0, 160).unsqueeze(1)  # unequal feature scales
    X[1:40] += X[:39].clone()  # and correlated features
    W = layer.weight.detach().clone()
    sgpt = copy.deepcopy(layer)
    prune.sparsegpt_(sgpt, 2 * X @ X.T / 400, 0.5)
    mag = W * prune.keep_mask(W.abs(), 0.5)
    err_sgpt = torch.sum((W @ X - sgpt.weight.detach() @ X) ** 2)
    err_mag = torch.sum((W @ X - mag @ X) ** 2)
    assert abs((sgpt.weight == 0).float().mean().item() - 0.5) < 1e-6
    assert err_sgpt < 0.7 * err_mag


def test_unstructured_prunes_exactly_floor_s_numel():
    keep = prune.keep_mask(torch.ones(3, 5), 0.7)  # all tied
    assert int((~keep).sum()) == math.floor(0.7 * 15)


# -- sequential pruning -----------------------------------------------------------------------------------


def test_sequential_pruning_feeds_pruned_outputs_forward():
    net = tiny()
    dense = copy.deepcopy(net)
    calib = torch.randint(0, 23, (4, 16))
    seen = []
    prune.prune_model(net, calib, 0.7, "wanda", reconstruct=lambda block, x, y, kw: seen.append((x, kw)))
    x0, kw = seen[0]
    pruned0 = prune.run_block(M.decoder_blocks(net)[0], x0, kw)
    dense0 = prune.run_block(M.decoder_blocks(dense)[0], x0, kw)
    assert torch.equal(seen[1][0], pruned0)
    assert not torch.allclose(seen[1][0], dense0, atol=1e-4)
    assert abs(prune.block_sparsity(net) - 0.7) < 0.01
    assert all(torch.equal(m.weight, dm.weight) for m, dm in [(net.lm_head, dense.lm_head)])


def test_reconstruction_lowers_block_error_and_keeps_mask():
    net = tiny()
    calib = torch.randint(0, 23, (8, 16))
    log = []
    rep = prune.prune_model(
        net, calib, 0.7, "magnitude", reconstruct=recovery.reconstructor("bias+ln+mask_lora", 40, 1e-2, 4, r=2, log=log)
    )
    assert all(f < i for i, f in zip(rep.mse_initial, rep.mse_final))
    assert prune.block_sparsity(net) == pytest.approx(rep.masks.sparsity())
    for name, keep in rep.masks.items():
        assert torch.equal(net.get_parameter(name) != 0, keep) or not torch.any((net.get_parameter(name) != 0) & ~keep)
    assert len(log) == 2 and 0 < log[0].fraction < 1


def test_full_ft_retraining_keeps_masks_and_counts_parameters():
    net = tiny()
    tokens = torch.randint(0, 23, (2000,))
    rep = prune.prune_model(net, tokens[:64].view(4, 16), 0.5, "magnitude")
    out = recovery.retrain(net, "full", rep.masks, tokens, 5, 1e-3, 4, 16)
    assert out.fraction == 1.0
    assert prune.block_sparsity(net) == pytest.approx(rep.masks.sparsity())
    head = tiny()
    out = recovery.retrain(head, "bias+ln+head", None, tokens, 2, 1e-3, 4, 16, head_r=2)
    groups = M.opt_parameter_groups(16, 2, 64, vocab_size=23, max_positions=16, tied=False)
    assert out.trainable == groups["bias"] + groups["ln"] + 2 * groups["head_lora_per_rank"]


# -- perplexity, parameter counts, loader, cache ----------------------------------------------------------


class Uniform(nn.Module):
    def __init__(self, vocab):
        super().__init__()
        self.vocab, self.p = vocab, nn.Parameter(torch.zeros(1))

    def forward(self, input_ids):
        return type("Out", (), {"logits": torch.zeros(*input_ids.shape, self.vocab)})()


def test_uniform_logits_give_perplexity_equal_to_vocabulary_size():
    windows = torch.randint(0, 97, (5, 64))
    assert perplexity(Uniform(97), windows, batch_size=2) == pytest.approx(97.0, rel=1e-6)


@pytest.mark.parametrize("tied", [True, False])
def test_parameter_groups_match_an_instantiated_opt(tied):
    net = tiny(tied=tied, vocab=31, d=16, layers=3)
    groups = M.opt_parameter_groups(16, 3, 64, vocab_size=31, max_positions=16, tied=tied)
    assert groups["total"] == M.n_parameters(net)
    assert groups["bias"] == sum(m.bias.numel() for b in M.decoder_blocks(net) for m in M.block_linears(b).values())


def test_real_opt_sizes():
    totals = {k: M.opt_parameter_groups(**v)["total"] / 1e9 for k, v in M.OPT_CONFIGS.items()}
    assert totals["OPT-2.7B"] == pytest.approx(2.65, abs=0.02)
    assert totals["OPT-6.7B"] == pytest.approx(6.66, abs=0.02)
    assert totals["OPT-13B"] == pytest.approx(12.85, abs=0.02)
    assert totals["OPT-30B"] == pytest.approx(29.97, abs=0.05)


def test_paper_profile_loader(tmp_path):
    net = tiny(seed=2)
    net.save_pretrained(tmp_path / "opt-random")
    loaded = M.load_checkpoint(tmp_path / "opt-random")
    x = torch.randint(0, 23, (1, 16))
    with torch.no_grad():
        assert torch.allclose(loaded(input_ids=x).logits, net(input_ids=x).logits)
    with pytest.raises(DataRootError, match="not found"):
        M.load_checkpoint(tmp_path / "nothing")
    (tmp_path / "opt-random" / "model.safetensors").unlink()
    with pytest.raises(DataRootError, match="no weights") as err:
        M.load_checkpoint(tmp_path / "opt-random")
    assert "\n" not in str(err.value)


def test_pretrained_cache_is_reused(tmp_path):
    text = "def f(x):\n    return x + 1\n" * 200
    tok = corpus.CharTokenizer()
    c = corpus.Corpus(tok.encode(text), tok.encode(text[:500]), tok.encode(text[:500]), {}, "h", tok)
    cfg = M.book_config(tok.vocab_size, hidden_size=16, num_hidden_layers=1, num_attention_heads=2, context=16)
    a = M.pretrained(c, cfg, steps=3, batch_size=2, cache_dir=tmp_path)
    b = M.pretrained(c, cfg, steps=3, batch_size=2, cache_dir=tmp_path)
    assert not a.cached and b.cached and a.key == b.key
    assert all(torch.equal(p, q) for p, q in zip(a.model.state_dict().values(), b.model.state_dict().values()))


def test_corpus_split_is_by_file_and_stable():
    assert corpus.split_of("os.py") == corpus.split_of("os.py")
    c = corpus.load_corpus(max_train_chars=10_000, max_eval_chars=2_000)
    assert not set(c.files["train"]) & set(c.files["test"])
    assert len(c.files["test"]) > 0 and c.train.numel() == 10_000
    assert corpus.CharTokenizer().vocab_size == 97


def test_masked_merge_of_a_plain_lora_is_lora_prune():
    base = sparse_linear(sparsity=0.6)
    plain = lora.LoRALinear(copy.deepcopy(base), "lora", r=3, alpha=6.0)
    with torch.no_grad():
        plain.lora_A.normal_()
        plain.lora_B.normal_()
    prune_variant = copy.deepcopy(plain)
    prune_variant.variant = "lora_prune"
    assert torch.equal(lora.merged_linear(plain, masked=True).weight, lora.merged_linear(prune_variant).weight)
    assert torch.equal(lora.merged_linear(plain, masked=True).weight == 0, base.weight == 0)


def test_eval_windows_are_non_overlapping_and_spread():
    tokens = torch.arange(1000)
    w = corpus.eval_windows(tokens, 10)
    assert w.shape == (100, 10) and torch.equal(w.flatten(), tokens)
    sub = corpus.eval_windows(tokens, 10, 5)
    assert sub[:, 0].tolist() == [0, 250, 500, 740, 990]


# -- the "zero-shot" multiple-choice analog ---------------------------------------------------------------


def _code_files(root, n_test=4, n_train=2, letters=False):
    """Synthetic Python-like files under ``root``: ``n_test`` whose names hash to the test part, ``n_train``
    to the train part. With ``letters`` file k holds only lines of one letter (its own)."""
    names = {"test": [], "train": []}
    i = 0
    while len(names["test"]) < n_test or len(names["train"]) < n_train:
        name, i = f"mod{i}.py", i + 1
        part = corpus.split_of(name)
        if part in names and len(names[part]) < (n_test if part == "test" else n_train):
            names[part].append(name)
    for k, name in enumerate(names["test"] + names["train"]):
        if letters:
            text = (chr(ord("a") + k) * 20 + "\n") * 40
        else:
            text = "".join(
                f"{' ' * (4 * (j % 4))}value_{k}_{j} = call(x[{j}], {{'key': \"v{j}\"}}, (1, 2))\n" for j in range(60)
            )
        (root / name).write_text(text)
    return names


class _ToyLM(nn.Module):
    """logits = 10 · [token v occurred in the input so far] (``bag``), or all zeros (uniform)."""

    def __init__(self, vocab, bag=True):
        super().__init__()
        self.vocab, self.bag = vocab, bag
        self.dummy = nn.Parameter(torch.zeros(1))
        self.config = type("C", (), {"max_position_embeddings": 64})()

    def forward(self, input_ids, **kw):
        seen = torch.nn.functional.one_hot(input_ids, self.vocab).cumsum(1).clamp(max=1).float()
        return type("Out", (), {"logits": 10.0 * seen if self.bag else torch.zeros_like(seen)})()


def test_zero_shot_items_are_deterministic_and_held_out(tmp_path):
    from companion.perp import evaluate as ev

    names = _code_files(tmp_path)
    c = corpus.load_corpus(tmp_path)
    assert c.files["test"] == sorted(names["test"])
    texts = ev.held_out_texts(c.files["test"], tmp_path)
    with pytest.raises(ValueError, match="not test files"):
        ev.held_out_texts(names["train"], tmp_path)
    for task in ev.TASKS:
        items = ev.multiple_choice_items(texts, task, n=30, seed=3)
        assert items == ev.multiple_choice_items(dict(reversed(texts.items())), task, n=30, seed=3)
        assert items != ev.multiple_choice_items(texts, task, n=30, seed=4)
        for it in items:
            assert corpus.split_of(it.source) == "test" and it.source not in names["train"]
            assert len(it.context) == 48 and len(set(it.choices)) == 4
            assert it.context + it.choices[it.label] in texts[it.source]
            if task == "next_line":
                others = [t for n, t in texts.items() if n != it.source]  # distractors: lines of other files
                assert all(any("\n" + ch in t for t in others) for j, ch in enumerate(it.choices) if j != it.label)
        assert ev.chance_level(items) == 0.25
        assert 0 < sum(it.label == 0 for it in items) < 30  # the true choice's position is shuffled


def test_model_preferring_the_true_choice_scores_one_and_uniform_logits_score_chance(tmp_path):
    from companion.perp import evaluate as ev

    tok = corpus.CharTokenizer()
    _code_files(tmp_path, letters=True)
    texts = ev.held_out_texts(corpus.load_corpus(tmp_path).files["test"], tmp_path)
    items = ev.multiple_choice_items(texts, "next_line", n=40, seed=0)
    assert ev.multiple_choice_accuracy(_ToyLM(tok.vocab_size), tok, items) == 1.0
    assert ev.accuracy_from_scores([[[-1.0, -2.0], [1, 1]]], [0]) == 1.0
    assert ev.accuracy_from_scores([[[-1.0, -1.0, -3.0], [1, 2, 3]]], [1], normalize=True) == 1.0

    code = tmp_path / "code"
    code.mkdir()
    _code_files(code)
    texts = ev.held_out_texts(corpus.load_corpus(code).files["test"], code)
    uniform = _ToyLM(tok.vocab_size, bag=False)
    for task in ev.TASKS:
        items = ev.multiple_choice_items(texts, task, n=40, seed=1)
        # equal-length choices (or per-character scores) tie under uniform logits: exactly chance
        assert ev.multiple_choice_accuracy(uniform, tok, items, normalize=task == "indent") == pytest.approx(0.25)


def test_choice_logprobs_equal_the_direct_sum_of_token_log_probs(tmp_path):
    from companion.perp import evaluate as ev

    tok = corpus.CharTokenizer()
    _code_files(tmp_path)
    texts = ev.held_out_texts(corpus.load_corpus(tmp_path).files["test"], tmp_path)
    model = M.build(M.opt_config(tok.vocab_size, 16, 2, 2, 64, 24), 0).eval()  # 24 positions
    for task in ev.TASKS:
        items = ev.multiple_choice_items(texts, task, n=5, seed=2, context=12, length=8)
        scores = ev.choice_logprobs(model, tok, items, batch_size=3)
        for it, sc in zip(items, scores):
            width = max(len(ch) for ch in it.choices)
            for j, ch in enumerate(it.choices):
                ids = torch.cat([tok.encode(it.context)[-(24 - width) :], tok.encode(ch)])
                with torch.no_grad():
                    logp = torch.log_softmax(model(input_ids=ids[None]).logits[0].double(), -1)
                n = len(ch)
                want = float(logp[torch.arange(len(ids) - n - 1, len(ids) - 1), ids[-n:]].sum())
                assert sc[0][j] == pytest.approx(want, abs=1e-5) and sc[1][j] == n


def test_paper_profile_setup_scores_items_with_the_checkpoint_tokenizer(tmp_path):
    """The paper profile end to end on real formats: a saved random OPT with a byte-level BPE tokenizer trained
    here, WikiText-2 raw files, and the multiple-choice scoring through the checkpoint's own tokenizer."""

    from companion.perp import evaluate as ev
    from companion.perp import experiment
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    text = "def f(x):\n    return (x + 1)\n\nclass A:\n    pass\n" * 50
    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator([text], trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=bpe, unk_token="<unk>", eos_token="</s>", bos_token="</s>")
    cfg = M.book_config(len(fast), hidden_size=16, num_hidden_layers=1, num_attention_heads=2, context=32)
    M.build(cfg, seed=0).save_pretrained(tmp_path / "opt-bpe")
    fast.save_pretrained(tmp_path / "opt-bpe")
    (tmp_path / "wikitext-2-raw").mkdir()
    for part in ("train", "test"):
        (tmp_path / "wikitext-2-raw" / f"wiki.{part}.raw").write_text(text)
    s = experiment.setup(0, "cpu", 32, 16, 1, 2, 0, 1, 0.0, 0, 0, 4, 2, data_root=str(tmp_path), checkpoint="opt-bpe")
    assert isinstance(s.corpus.tokenizer, experiment.PretrainedTokenizer)
    assert s.corpus.tokenizer.vocab_size == len(fast)
    ids = s.corpus.tokenizer.encode("return (x + 1)")
    assert ids.dtype == torch.long and s.corpus.tokenizer.decode(ids) == "return (x + 1)"
    items = [ev.Item("closure", "    return (x + 1", (")", "]", "}", "'"), 0, "t.py")]
    scores = ev.choice_logprobs(s.model, s.corpus.tokenizer, items)
    assert scores[0].shape == (2, 4) and np.all(np.isfinite(scores[0]))


def test_item_hits_split_ties_and_average_to_the_accuracy():
    from companion.perp import evaluate as ev

    scores = [np.array([[0.0, -1.0, -2.0], [1, 1, 1]]), np.array([[-1.0, -1.0, -3.0], [1, 1, 1]])]
    hits = ev.item_hits(scores, [0, 1])
    assert hits.tolist() == [1.0, 0.5]  # a clear hit, then a two-way tie that includes the truth
    assert ev.accuracy_from_scores(scores, [0, 1]) == hits.mean()


def test_sparsegpt_benchmark_reports_times_and_slopes():
    from companion.perp.bench import sparsegpt_layer_times, sparsegpt_report

    out = sparsegpt_layer_times(sizes=(16, 32, 64), samples=128, repeats=1)
    assert out["sizes"] == [16, 32, 64] and len(out["seconds"]) == 3 and min(out["seconds"]) > 0
    assert all(0 < f < s for f, s in zip(out["factorisation_seconds"], out["seconds"]))
    assert np.isfinite(out["slope"]) and np.isfinite(out["factorisation_slope"])
    assert torch.get_num_threads() >= 1  # the caller's thread setting is restored
    assert "slope" in sparsegpt_report(sizes=(16, 32), samples=64, repeats=1)[-1]
