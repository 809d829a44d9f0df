"""The runner: parameters per profile, provenance, the cache, and atomic outputs on failure."""

from __future__ import annotations

import json

import pytest

from companion import notebooks, papers, runner
from companion.runner import RunError

pytestmark = pytest.mark.slow  # executes small notebooks in a kernel


def _square(root, label):
    return json.loads((root / "results" / "demo" / f"01-square.{label}.json").read_text())["values"]["square"]


def test_profiles_layer_defaults_yaml_and_overrides(demo_project):
    nb = papers.load("demo").notebook("01-square")
    assert runner.resolve_parameters(nb, "book")[1] == {}
    assert runner.resolve_parameters(nb, "smoke")[1] == {"x": 2, "profile": "smoke"}
    params, changed = runner.resolve_parameters(nb, "smoke", {"x": "6"})
    assert params["x"] == 6 and changed == {"x": 6, "profile": "smoke"}
    with pytest.raises(RunError, match="unknown parameter 'y' .* accepted: profile, seed, device, x, fail"):
        runner.resolve_parameters(nb, "book", {"y": "1"})
    with pytest.raises(RunError, match="expects int"):
        runner.resolve_parameters(nb, "book", {"x": "three"})
    with pytest.raises(RunError, match="unknown profile 'huge'"):
        runner.resolve_parameters(nb, "huge")


def test_paper_profile_needs_its_data_before_any_work(demo_project, tmp_path_factory):
    with pytest.raises(RunError, match="pass --data-root"):
        runner.plan("demo", "paper")
    data = tmp_path_factory.mktemp("data")
    with pytest.raises(RunError, match=r"missing under .*: squares/table.csv"):
        runner.plan("demo", "paper", data_root=str(data))
    (data / "squares").mkdir()
    (data / "squares" / "table.csv").write_text("x\n7\n")
    task, = runner.plan("demo", "paper", data_root=str(data))
    assert task.changed["data_root"] == str(data) and task.parameters["x"] == 7


def test_book_run_rewrites_notebook_with_provenance_then_caches(demo_project):
    task, = runner.run("demo", "book")
    assert task.status == "done" and _square(demo_project, "book") == 9
    nb = notebooks.read(demo_project / "book" / "demo" / "01-square.ipynb")
    meta = nb.metadata["companion"]
    assert meta["profile"] == "book" and meta["parameters"]["x"] == 3 and meta["wall_time_s"] > 0
    assert {"package_hash", "git_commit", "device", "cache_key", "executed_at"} <= set(meta)
    assert "square 9" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert not any(c.metadata.get("tags") == ["injected-parameters"] for c in nb.cells)

    again, = runner.run("demo", "book")
    assert again.status == "cached"
    # Changing the package source makes every notebook stale.
    original = runner.package_hash
    try:
        runner.package_hash = lambda: "changed"
        assert runner.plan("demo", "book")[0].stale
    finally:
        runner.package_hash = original


def test_other_profiles_and_overrides_write_runs_not_the_book(demo_project):
    committed = (demo_project / "book" / "demo" / "01-square.ipynb").read_bytes()
    runner.run("demo", "smoke")
    assert _square(demo_project, "smoke") == 4
    assert (demo_project / "runs" / "smoke" / "demo" / "01-square.ipynb").exists()
    runner.run("demo", "book", {"x": "5"})
    assert _square(demo_project, "custom") == 25
    assert (demo_project / "runs" / "custom" / "demo" / "01-square.ipynb").exists()
    assert (demo_project / "book" / "demo" / "01-square.ipynb").read_bytes() == committed


def test_failed_run_leaves_committed_notebook_and_results_untouched(demo_project):
    runner.run("demo", "book")
    nb_path = demo_project / "book" / "demo" / "01-square.ipynb"
    res_path = demo_project / "results" / "demo" / "01-square.book.json"
    before = nb_path.read_bytes(), res_path.read_bytes()
    # The notebook records a new value and then fails: neither may reach the committed files.
    code = notebooks.read(nb_path)
    code.cells[1].source = code.cells[1].source.replace("x = 3", "x = 4").replace("fail = False", "fail = True")
    import nbformat

    nbformat.write(code, str(nb_path))
    edited = nb_path.read_bytes()
    with pytest.raises(Exception, match="failing on purpose"):
        runner.run("demo", "book")
    assert nb_path.read_bytes() == edited and res_path.read_bytes() == before[1]
    assert (demo_project / "runs" / "failed" / "demo" / "01-square.ipynb").exists()


def test_scoreboard_refreshes_only_when_results_change(demo_project):
    runner.run("demo", "book")
    assert runner.refresh_scoreboard() is True
    board = notebooks.read(demo_project / "book" / "scoreboard.ipynb")
    text = "".join(o.get("text", "") for c in board.cells if c.cell_type == "code" for o in c.outputs)
    assert "demo" in text and "holds" in text
    assert runner.refresh_scoreboard() is False
