"""The pytest plugin: nbval kernels run pinned, and every chapter notebook gets a ``records`` test comparing
its re-executed records with the committed ones within the declared tolerances."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from companion import results, runner
from companion.runner import ExecutorOptions

pytestmark = pytest.mark.slow


def _nbval(root, *extra, staging=None):
    env = {**os.environ, "COMPANION_ROOT": str(root)}
    env.pop("COMPANION_RESULTS_DIR", None)  # the plugin makes a fresh throw-away folder ...
    env.pop("ATEN_CPU_CAPABILITY", None)  # ... and pins the numerics itself
    if staging is not None:
        env["COMPANION_RESULTS_DIR"] = str(staging)
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "companion.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "-q",
            "-rA",
            *extra,
            str(root / "book" / "demo"),
        ],
        capture_output=True,
        text=True,
        cwd=root,
        env=env,
        timeout=600,
    )


def test_records_item_passes_on_reproduced_records_and_fails_on_others(demo_project):
    runner.run("demo", "book", options=ExecutorOptions(jobs=1))
    out = _nbval(demo_project)
    assert out.returncode == 0, out.stdout[-3000:]
    assert "01-square.ipynb::records" in out.stdout and "02-cube.ipynb::records" in out.stdout
    committed = results.results_path("demo", "02-cube", "book", demo_project)
    record = json.loads(committed.read_text())
    record["values"]["cube"] = 28
    committed.write_text(json.dumps(record))
    out = _nbval(demo_project)
    assert out.returncode == 1
    assert "FAILED" in out.stdout and "02-cube.ipynb::records" in out.stdout
    assert "cube: deviates by 1 (tolerance 0): committed 28, now 27" in out.stdout


def test_nbval_kernels_run_pinned(demo_project, tmp_path):
    runner.run("demo", "book", options=ExecutorOptions(jobs=1))
    out = _nbval(demo_project, staging=tmp_path)
    assert out.returncode == 0, out.stdout[-3000:]
    # The re-executed records carry the environment report of the kernel nbval started.
    staged = json.loads(results.staged_path(tmp_path, "demo", "01-square").read_text())
    assert staged["environment"]["pinned"] is True
    assert staged["environment"]["environment"]["ATEN_CPU_CAPABILITY"] == "avx2"
