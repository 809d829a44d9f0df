"""The thin core: reproducibility, recorded results, notebook parameters, parameter coercion."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from companion import notebooks, repro, results
from companion.runner import RunError, coerce
from conftest import make_notebook


def test_same_seed_same_numbers():
    repro.setup(7)
    a = (np.random.rand(3), torch.randn(3))
    repro.setup(7)
    b = (np.random.rand(3), torch.randn(3))
    assert np.array_equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert torch.get_num_threads() == repro.DEFAULT_THREADS


def test_device_auto_is_cpu_without_gpu_and_cuda_request_fails():
    if torch.cuda.is_available():
        pytest.skip("machine has a GPU")
    assert repro.resolve_device("auto").type == "cpu"
    with pytest.raises(ValueError, match="no CUDA GPU"):
        repro.resolve_device("cuda")


def test_recorder_writes_plain_json_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPANION_RESULTS_DIR", str(tmp_path))
    rec = results.Recorder("demo", "01-x", "book")
    assert rec.record("a.mean", np.float32(0.5)) == np.float32(0.5)
    rec.record("b", torch.tensor([1.0, 2.0]))
    rec.record("c", {"x": np.int64(3), "y": float("nan")})
    staged = tmp_path / "demo" / "01-x.json"  # the runner's staging layout
    data = json.loads(staged.read_text())
    assert data["values"] == {"a.mean": 0.5, "b": [1.0, 2.0], "c": {"x": 3, "y": None}}
    assert data["environment"]["cpu_model"] and "pinned" in data["environment"]
    assert not [p for p in (tmp_path / "demo").iterdir() if p.name.startswith(".")]  # no temp files left
    assert staged.stat().st_mode & 0o777 == 0o644
    with pytest.raises(TypeError, match="cannot record"):
        rec.record("bad", object())


def test_default_parameters_reads_literals_only(tmp_path):
    path = make_notebook(tmp_path / "a.ipynb", 'profile = "book"\nseed = 0\nlrs = [0.1, 0.2]', "pass")
    assert notebooks.default_parameters(path) == {"profile": "book", "seed": 0, "lrs": [0.1, 0.2]}
    bad = make_notebook(tmp_path / "b.ipynb", "import os\nseed = 0", "pass")
    with pytest.raises(ValueError, match="only hold"):
        notebooks.default_parameters(bad)


def test_code_hash_ignores_outputs_and_injected_parameters(tmp_path):
    path = make_notebook(tmp_path / "a.ipynb", "x = 1", "print(x)")
    nb = notebooks.read(path)
    before = notebooks.code_hash(nb)
    nb.cells[2].outputs = [{"output_type": "stream", "name": "stdout", "text": "1\n"}]
    injected = type(nb.cells[1])(
        cell_type="code", source="x = 2", metadata={"tags": ["injected-parameters"]}, outputs=[], execution_count=None
    )
    nb.cells.insert(2, injected)
    assert notebooks.code_hash(nb) == before
    nb.cells[-1].source = "print(x + 1)"
    assert notebooks.code_hash(nb) != before


@pytest.mark.parametrize(
    "raw, default, expected",
    [
        ("5", 3, 5),
        ("0.5", 0.1, 0.5),
        ("2", 0.1, 2.0),
        ("true", False, True),
        ("no", True, False),
        ("[1, 2]", [0], [1, 2]),
        ("cnn_bn", "mlp", "cnn_bn"),
        (4, 3, 4),
        (1, 0.5, 1.0),
    ],
)
def test_coerce_accepts_values_of_the_default_type(raw, default, expected):
    value = coerce("p", raw, default)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "raw, default", [("ten", 3), ("0.5", 3), ("maybe", True), ("3", [0]), (3, "mlp"), (True, 3), (1.5, 3)]
)
def test_coerce_rejects_wrong_types_with_one_line(raw, default):
    with pytest.raises(RunError) as info:
        coerce("p", raw, default)
    message = str(info.value)
    assert "\n" not in message and f"expects {type(default).__name__}" in message


def test_progress_is_silent_when_quiet(monkeypatch, capsys):
    from companion import progress

    monkeypatch.setenv("COMPANION_QUIET", "1")
    assert list(progress(range(3))) == [0, 1, 2]
    assert capsys.readouterr().err == ""


def test_results_live_in_results_for_book_and_under_runs_otherwise(tmp_path):
    assert results.results_path("sfw", "01-a", "book", tmp_path) == tmp_path / "results/sfw/01-a.book.json"
    assert results.results_path("sfw", "01-a", "gpu", tmp_path) == tmp_path / "runs/gpu/sfw/01-a.json"
    path = results.results_path("sfw", "01-a", "custom", tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"values": {"acc": 0.5}}))
    assert results.load("sfw", "01-a", "custom", tmp_path) == {"acc": 0.5}
    assert results.load("sfw", "01-a", "book", tmp_path) == {}


def test_record_differences_respect_tolerances():
    committed = {"acc": [0.90, 0.80], "n": 3, "ok": True, "time": 1.0, "table": {"a": 1.0}}
    assert results.differences(committed, committed, {}) == []
    now = {"acc": [0.905, 0.79], "n": 3, "ok": True, "time": 9.0, "table": {"a": 1.0}}
    assert results.differences(committed, now, {"acc": 0.02, "time": None}) == []
    problems = results.differences(committed, now, {"acc": 0.005, "time": None})
    assert len(problems) == 1 and problems[0].startswith("acc: deviates by 0.01 (tolerance 0.005)")
    assert results.differences(committed, {**now, "ok": False}, {"time": None, "*": 1.0}) == [
        "ok: False differs in kind or structure from the committed True"
    ]
    assert "n: missing" in results.differences(committed, {k: v for k, v in now.items() if k != "n"}, {"*": None})[0]
    assert results.differences({"v": [1, 2]}, {"v": [1, 2, 3]}, {"*": 10})[0].startswith("v: ")
