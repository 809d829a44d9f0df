"""The runner: parameters per profile, provenance, per-notebook cache keys, atomic outputs on failure,
parallel and submitit execution, and where results are written."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import nbformat
import pytest
from companion import notebooks, papers, results, runner
from companion.runner import ExecutorOptions, RunError

pytestmark = pytest.mark.slow  # executes small notebooks in a kernel


def _value(root, label, notebook="01-square", key="square"):
    return json.loads(results.results_path("demo", notebook, label, root).read_text())["values"][key]


def _edit(path, old, new):
    nb = notebooks.read(path)
    nb.cells[1].source = nb.cells[1].source.replace(old, new)
    nbformat.write(nb, str(path))


def test_profiles_layer_defaults_yaml_and_overrides(demo_project):
    nb = papers.load("demo").notebook("01-square")
    assert runner.resolve_parameters(nb, "book")[1] == {}
    assert runner.resolve_parameters(nb, "smoke")[1] == {"x": 2, "profile": "smoke"}
    params, changed = runner.resolve_parameters(nb, "smoke", {"x": "6"})
    assert params["x"] == 6 and changed == {"x": 6, "profile": "smoke"}
    with pytest.raises(RunError, match="unknown parameter 'y' .* accepted: profile, seed, device, x, mode, fail"):
        runner.resolve_parameters(nb, "book", {"y": "1"})
    with pytest.raises(RunError, match="expects int"):
        runner.resolve_parameters(nb, "book", {"x": "three"})
    with pytest.raises(RunError, match="unknown profile 'huge'"):
        runner.resolve_parameters(nb, "huge")


def test_choices_are_validated_before_any_work(demo_project):
    nb = papers.load("demo").notebook("01-square")
    assert runner.resolve_parameters(nb, "book", {"mode": "twice"})[1] == {"mode": "twice"}
    with pytest.raises(
        RunError, match="parameter 'mode' of demo/01-square: 'bogus' is not a choice; accepted: plain, twice"
    ):
        runner.plan("demo", "book", {"mode": "bogus"})
    assert not (demo_project / "runs").exists()


def test_chapter_overrides_apply_where_declared(demo_project):
    # `mode` exists only in 01: a chapter-wide override goes there and leaves 02 at its parameters.
    square, cube = runner.plan("demo", "book", {"mode": "twice"})
    assert square.changed == {"mode": "twice"} and cube.changed == {}
    assert square.label == cube.label == "custom"
    with pytest.raises(RunError, match="unknown parameter 'nope' for any notebook of demo"):
        runner.plan("demo", "book", {"nope": "1"})


def test_paper_profile_needs_its_data_before_any_work(demo_project, tmp_path_factory):
    with pytest.raises(RunError, match="pass --data-root"):
        runner.plan("demo", "paper")
    data = tmp_path_factory.mktemp("data")
    with pytest.raises(RunError, match=r"missing under .*: squares/table.csv"):
        runner.plan("demo", "paper", data_root=str(data))
    (data / "squares").mkdir()
    (data / "squares" / "table.csv").write_text("x\n7\n")
    task = runner.plan("demo", "paper", data_root=str(data), only=["01-square"])[0]
    assert task.changed["data_root"] == str(data) and task.parameters["x"] == 7


def test_a_required_entry_may_name_alternatives(demo_project, tmp_path_factory):
    # "a | b": either file will do (canopy-height reads GEDI shots from a GeoPackage or a CSV).
    path = demo_project / "papers" / "demo.yaml"
    path.write_text(path.read_text().replace("paper: [squares/table.csv]", 'paper: ["squares/t.gpkg | squares/t.csv"]'))
    data = tmp_path_factory.mktemp("data")
    with pytest.raises(RunError, match=r"missing under .*: squares/t.gpkg or squares/t.csv \("):
        runner.plan("demo", "paper", data_root=str(data), only=["01-square"])
    with pytest.raises(RunError, match=r"with: squares/t.gpkg or squares/t.csv$"):
        runner.plan("demo", "paper", only=["01-square"])
    (data / "squares").mkdir()
    (data / "squares" / "t.csv").write_text("x\n7\n")
    assert runner.plan("demo", "paper", data_root=str(data), only=["01-square"])[0].parameters["x"] == 7


def test_book_run_rewrites_notebook_with_provenance_then_caches(demo_project):
    tasks = runner.run("demo", "book", options=ExecutorOptions(jobs=1))
    assert [t.status for t in tasks] == ["done", "done"] and _value(demo_project, "book") == 9
    nb = notebooks.read(demo_project / "book" / "demo" / "01-square.ipynb")
    meta = nb.metadata["companion"]
    assert meta["profile"] == "book" and meta["parameters"]["x"] == 3 and meta["wall_time_s"] > 0
    assert {"git_commit", "device", "cache_key", "executed_at", "environment"} <= set(meta)
    env = meta["environment"]
    assert env["pinned"] is True and env["active_capability"] in ("avx2", "default")
    assert {"cpu_model", "native_capability", "pinned_capability", "torch", "numpy", "mkl"} <= set(env)
    assert "square 9" in "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert not any(c.metadata.get("tags") == ["injected-parameters"] for c in nb.cells)
    assert all(t.status == "cached" for t in runner.run("demo", "book"))


def test_other_profiles_and_overrides_write_runs_not_the_book(demo_project):
    committed = (demo_project / "book" / "demo" / "01-square.ipynb").read_bytes()
    runner.run("demo", "smoke", options=ExecutorOptions(jobs=1))
    assert _value(demo_project, "smoke") == 4
    assert (demo_project / "runs" / "smoke" / "demo" / "01-square.ipynb").exists()
    assert (demo_project / "runs" / "smoke" / "demo" / "01-square.json").exists()
    runner.run("demo", "book", {"x": "5"}, options=ExecutorOptions(jobs=1))
    assert _value(demo_project, "custom") == 25
    assert (demo_project / "runs" / "custom" / "demo" / "01-square.ipynb").exists()
    assert (demo_project / "book" / "demo" / "01-square.ipynb").read_bytes() == committed
    assert not (demo_project / "results").exists()


def test_plain_papermill_never_writes_committed_results(demo_project):
    runner.run("demo", "book", options=ExecutorOptions(jobs=1))
    committed = results.results_path("demo", "01-square", "book", demo_project)
    before = committed.read_bytes()
    env = {**os.environ, "COMPANION_ROOT": str(demo_project)}
    env.pop("COMPANION_RESULTS_DIR", None)
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(demo_project / "book/demo/01-square.ipynb"),
            str(demo_project / "out.ipynb"),
            "-p",
            "x",
            "6",
            "--cwd",
            str(demo_project),
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert committed.read_bytes() == before
    assert _value(demo_project, "interactive") == 36
    printed = "".join(
        o.get("text", "")
        for c in notebooks.read(demo_project / "out.ipynb").cells
        if c.cell_type == "code"
        for o in c.outputs
    )
    assert "records go to" in printed and "runs/interactive/demo/01-square.json" in printed


def test_failed_run_leaves_committed_notebook_and_results_untouched(demo_project):
    runner.run("demo", "book", options=ExecutorOptions(jobs=1))
    nb_path = demo_project / "book" / "demo" / "01-square.ipynb"
    res_path = results.results_path("demo", "01-square", "book", demo_project)
    before = res_path.read_bytes()
    # The notebook records a new value and then fails: neither may reach the committed files.
    _edit(nb_path, "x = 3", "x = 4")
    _edit(nb_path, "fail = False", "fail = True")
    edited = nb_path.read_bytes()
    (task,) = runner.run("demo", "book", only=["01-square"])
    assert task.status == "failed" and "failing on purpose" in task.error
    assert nb_path.read_bytes() == edited and res_path.read_bytes() == before
    assert (demo_project / "runs" / "failed" / "demo" / "01-square.ipynb").exists()
    assert not list((demo_project / "runs").glob(".staging/*"))


def test_parallel_run_commits_each_notebook_and_isolates_a_failure(demo_project):
    _edit(demo_project / "book/demo/02-cube.ipynb", "fail = False", "fail = True")
    tasks = {t.notebook.name: t for t in runner.run("demo", "book", options=ExecutorOptions(jobs=2))}
    assert tasks["01-square"].status == "done" and _value(demo_project, "book") == 9
    assert tasks["02-cube"].status == "failed" and "cube failing on purpose" in tasks["02-cube"].error
    assert not results.results_path("demo", "02-cube", "book", demo_project).exists()


def test_submitit_local_executor_runs_and_gathers_back(demo_project):
    pytest.importorskip("submitit")
    tasks = runner.run("demo", "smoke", options=ExecutorOptions(executor="submitit-local", time_min=5))
    assert [t.status for t in tasks] == ["done", "done"], [t.error for t in tasks]
    assert _value(demo_project, "smoke") == 4 and _value(demo_project, "smoke", "02-cube", "cube") == 8
    meta = notebooks.read(demo_project / "runs/smoke/demo/02-cube.ipynb").metadata["companion"]
    assert meta["label"] == "smoke" and meta["environment"]["pinned"] is True
    assert list((demo_project / "runs" / "slurm").iterdir())  # submitit's job folder: logs for each job


def test_slurm_executor_options_are_submitit_parameters():
    pytest.importorskip("submitit")
    from submitit.slurm.slurm import SlurmExecutor

    options = ExecutorOptions(
        executor="slurm", partition="gpu", gpus_per_job=1, cpus_per_job=8, mem_gb=64, time_min=120, account="lab"
    )
    params = runner.slurm_parameters(options)
    assert params == {
        "job_name": "companion",
        "time": 120,
        "cpus_per_task": 8,
        "partition": "gpu",
        "gpus_per_node": 1,
        "mem": "64GB",
        "account": "lab",
    }
    assert set(params) <= set(SlurmExecutor._valid_parameters())
    with pytest.raises(RunError, match="unknown executor 'pbs'; accepted: local, slurm, submitit-local"):
        ExecutorOptions(executor="pbs")
    if runner.shutil.which("srun") is None:
        with pytest.raises(RunError, match="`srun` is not on PATH"):
            runner.check_executor(options)


def test_cache_key_follows_the_modules_a_notebook_imports(demo_project):
    from companion.dependencies import Package

    pkg = Package(runner.paths.PACKAGE_DIR)
    nb_path = demo_project / "book" / "demo" / "01-square.ipynb"
    nb = notebooks.read(nb_path)
    assert "companion.results" in pkg.notebook_modules(nb) and "companion.flows" not in pkg.notebook_modules(nb)
    key = runner.cache_key(nb, {"x": 3}, pkg)
    assert runner.cache_key(nb, {"x": 4}, pkg) != key
    _edit(nb_path, "x = 3", "x = 3  # a comment is code too")
    assert runner.cache_key(notebooks.read(nb_path), {"x": 3}, pkg) != key


def test_summary_pages_refresh_only_when_results_change(demo_project):
    runner.run("demo", "book", options=ExecutorOptions(jobs=1))
    assert runner.refresh_summary_pages() == ["scoreboard.ipynb", "runtimes.ipynb"]
    for page, words in (("scoreboard.ipynb", ("demo", "holds")), ("runtimes.ipynb", ("demo", "01-square"))):
        nb = notebooks.read(demo_project / "book" / page)
        text = "".join(
            str(o.get("text", "")) + str(o.get("data", {}).get("text/html", ""))
            for c in nb.cells
            if c.cell_type == "code"
            for o in c.outputs
        )
        assert all(w in text for w in words), page
    assert runner.refresh_summary_pages() == []
