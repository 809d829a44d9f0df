"""Benchmarks of the runner itself: how much running notebooks side by side saves (``companion bench``)."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import paths, runner


def _runner_wall(tasks: list[runner.Task], jobs: int) -> float:
    """Wall time to execute ``tasks`` with ``jobs`` local workers, into throw-away staging (nothing committed)."""
    options = runner.ExecutorOptions(jobs=jobs)
    with tempfile.TemporaryDirectory(prefix="companion-bench-") as tmp:
        staging = {id(t): Path(tmp) / t.notebook.name for t in tasks}
        start = time.perf_counter()
        for task, outcome in runner._outcomes(tasks, staging, options):
            if not outcome["ok"]:
                raise runner.RunError(f"{task.name} failed during the benchmark: {outcome['error']}")
        return time.perf_counter() - start


def _nbval_wall(chapter: str, jobs: int) -> tuple[float, int]:
    """Wall time of ``pytest --nbval-lax book/<chapter>`` with ``jobs`` xdist workers (0: no xdist)."""
    cmd = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider", "-q",
           "-n", str(jobs), "--dist", "loadfile", str(paths.book_dir() / chapter)]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=paths.project_root(), env=dict(os.environ))
    return time.perf_counter() - start, out.returncode


def parallel_speedup(chapter: str, jobs: int | None = None) -> list[str]:
    """Run ``chapter`` at ``book`` one notebook at a time and ``jobs`` (default: the cores) at a time, with the
    runner and with nbval under pytest-xdist; lines with the wall times and the speed-ups."""
    jobs = jobs or os.cpu_count() or 1
    tasks = runner.plan(chapter, "book", force=True)
    lines = [f"Parallel execution of {chapter} at book ({len(tasks)} notebooks), {jobs} workers on "
             f"{os.cpu_count()} cores:"]
    serial = _runner_wall(tasks, 1)
    parallel = _runner_wall(tasks, jobs)
    lines.append(f"  companion run --jobs 1: {serial:6.1f} s   --jobs {jobs}: {parallel:6.1f} s   "
                 f"speed-up {serial / parallel:.2f}x")
    (n_serial, rc1), (n_parallel, rc2) = _nbval_wall(chapter, 0), _nbval_wall(chapter, jobs)
    verdict = "" if rc1 == rc2 == 0 else f"   (pytest exit codes {rc1}, {rc2}: outputs differ, see make test)"
    lines.append(f"  nbval serial:           {n_serial:6.1f} s   -n {jobs}:     {n_parallel:6.1f} s   "
                 f"speed-up {n_serial / n_parallel:.2f}x{verdict}")
    return lines
