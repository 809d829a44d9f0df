"""The ``companion`` command: bad input gets one line and status 2 before any work."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


def companion(*args, env_root=None):
    env = dict(os.environ)
    if env_root is not None:
        env["COMPANION_ROOT"] = str(env_root)
    return subprocess.run(
        [sys.executable, "-m", "companion", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "nope"], "unknown chapter 'nope'; accepted: all, demo"),
        (["run", "demo", "--profile", "huge"], "unknown profile 'huge'; accepted: smoke, book, gpu, paper"),
        (["run", "demo", "-p", "y", "1"], "unknown parameter 'y' for any notebook of demo"),
        (["run", "demo", "--notebook", "01-square", "-p", "y", "1"], "unknown parameter 'y' for demo/01-square"),
        (["run", "demo", "-p", "mode", "bogus"], "'bogus' is not a choice; accepted: plain, twice"),
        (["run", "demo", "--executor", "pbs"], "unknown executor 'pbs'"),
        (["run", "demo", "--jobs", "0"], "--jobs expects a positive number"),
        (["run", "demo", "-p", "x", "three"], "parameter 'x' expects int (default 3), got 'three'"),
        (["run", "demo", "--profile", "paper"], "reads real data; pass --data-root DIR"),
        (["run", "demo", "--notebook", "02-nothing"], "chapter 'demo' has no notebook '02-nothing'"),
        (["claims", "nope"], "unknown chapter 'nope'"),
        (["bench", "--label", "nosuch"], "unknown run label 'nosuch'; accepted: smoke, book, gpu, paper, custom"),
        (["bench", "--micro", "fast"], "unknown micro-benchmark 'fast'; accepted: sfw-step, sfw-spectral, sparsegpt"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(demo_project, args, message):
    before = sorted(p.relative_to(demo_project) for p in demo_project.rglob("*"))
    out = companion(*args, env_root=demo_project)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("companion: error: ") and message in lines[0], out.stderr
    assert sorted(p.relative_to(demo_project) for p in demo_project.rglob("*")) == before  # no work done


def test_list_shows_chapters_notebooks_profiles(demo_project):
    out = companion("list", env_root=demo_project)
    assert out.returncode == 0
    assert "demo: A demo chapter" in out.stdout
    assert "01-square" in out.stdout and "profiles: smoke, book, gpu, paper" in out.stdout


@pytest.mark.slow
def test_run_prints_times_and_claims_prints_verdicts(demo_project):
    out = companion("run", "demo", "--profile", "book", env_root=demo_project)
    assert out.returncode == 0, out.stderr
    assert "demo/01-square:" in out.stdout and " s -> book/demo/01-square.ipynb" in out.stdout
    assert "records -> results/<chapter>/*.book.json (committed)" in out.stdout
    assert "scoreboard.ipynb: re-executed" in out.stdout and "runtimes.ipynb: re-executed" in out.stdout
    custom = companion("run", "demo", "-p", "x", "4", "--jobs", "2", env_root=demo_project)
    assert custom.returncode == 0, custom.stderr
    assert "runs/custom/<chapter>/ (the committed book and results are unchanged)" in custom.stdout
    claims = companion("claims", "demo", env_root=demo_project)
    assert claims.returncode == 0
    assert "square-positive" in claims.stdout and "holds" in claims.stdout and "fails (gpu-only)" in claims.stdout


def test_help_lists_commands():
    out = companion("--help")
    assert out.returncode == 0
    for command in ("list", "run", "claims", "bench", "build"):
        assert command in out.stdout


def test_bench_reports_runtimes_against_budgets(demo_project):
    out = companion("bench", "--no-micro", env_root=demo_project)
    assert out.returncode == 0, out.stderr
    assert "budgets: notebook 180 s, chapter 240 s, book 2400 s" in out.stdout
    assert "demo/01-square" in out.stdout and "whole book" in out.stdout
    # A notebook over its budget makes bench exit 1, with the ratio shown.
    import nbformat

    path = demo_project / "book" / "demo" / "01-square.ipynb"
    nb = nbformat.read(str(path), as_version=4)
    nb.metadata["companion"] = {"wall_time_s": 200.0}
    nbformat.write(nb, str(path))
    over = companion("bench", "--no-micro", env_root=demo_project)
    assert over.returncode == 1
    assert "demo/01-square" in over.stdout and "200.0 s /   180 s = 1.11  OVER BUDGET" in over.stdout


def test_dry_run_validates_and_executes_nothing(demo_project):
    before = sorted(p.relative_to(demo_project) for p in demo_project.rglob("*"))
    out = companion("run", "demo", "--profile", "smoke", "--dry-run", env_root=demo_project)
    assert out.returncode == 0, out.stderr
    assert "demo/01-square: stale" in out.stdout and "2 of 2 notebooks would run" in out.stdout
    assert sorted(p.relative_to(demo_project) for p in demo_project.rglob("*")) == before
