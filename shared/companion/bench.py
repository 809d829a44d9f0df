"""Benchmarks of the runner itself: how much running notebooks side by side saves (``companion bench``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from . import paths, runner

# Budgets in seconds of notebook wall time, per run label. ``book``: a notebook <= 3 min, a chapter <= 4 min
# measured on the 2-core reference machine (the budget readers are promised is 5 min: the minute of margin keeps
# a slower machine inside), the whole book <= 40 min. ``smoke``: a notebook <= 15 s; a chapter <= 30 s of wall
# clock as `companion run <chapter> --profile smoke` takes it (notebooks side by side), timed by `bench --smoke`.
BUDGETS = {
    "book": {"notebook": 180, "chapter": 240, "book": 2400},
    "smoke": {"notebook": 15, "chapter": None, "book": None},
}
SMOKE_CHAPTER_BUDGET_S = 30


def runtimes(label: str = "book"):
    """The recorded wall time of every chapter notebook of a run label against the budgets, as a
    ``pandas.DataFrame`` (chapter, notebook, seconds, share of the notebook budget), in book order."""
    import pandas as pd

    budget = (BUDGETS.get(label) or {}).get("notebook")
    frame = pd.DataFrame(runner.recorded_runtimes(label), columns=["chapter", "notebook", "seconds", "device"])
    frame["share"] = frame["seconds"] / budget if budget else float("nan")
    return frame


def runtimes_figure(frame, label: str = "book"):
    """Two panels: every notebook's time against the notebook budget, and every chapter's total against the
    chapter budget (dashed lines), coloured by chapter."""
    from . import plotting

    budgets = BUDGETS.get(label) or {}
    plotting.use_house_style()
    done = frame.dropna(subset=["seconds"])
    chapters = list(dict.fromkeys(done["chapter"]))
    colours = {c: f"C{i % 10}" for i, c in enumerate(chapters)}
    totals = done.groupby("chapter", sort=False)["seconds"].sum()
    fig, (ax1, ax2) = plotting.figure("wide", ncols=2, gridspec_kw={"width_ratios": [3, 2]})
    labels = [f"{c}/{n}" for c, n in zip(done["chapter"], done["notebook"])]
    ax1.barh(labels, done["seconds"], color=[colours[c] for c in done["chapter"]])
    ax2.barh(list(totals.index), totals.values, color=[colours[c] for c in totals.index])
    for ax, key, what in ((ax1, "notebook", "notebook"), (ax2, "chapter", "chapter")):
        if budgets.get(key):
            ax.axvline(budgets[key], color="0.3", ls="--", lw=1)
            ax.text(budgets[key], -0.8, f" {what} budget {budgets[key]:.0f} s", fontsize=7, va="top", color="0.3")
        ax.invert_yaxis()
        ax.set_xlabel("wall time (s)")
        ax.tick_params(axis="y", labelsize=7)
    ax1.set_title("per notebook")
    ax2.set_title("per chapter")
    fig.set_size_inches(fig.get_size_inches()[0], max(3.0, 0.2 * len(done) + 1.0))
    return fig


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
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        "--nbval-lax",
        "--nbval-current-env",
        "-p",
        "no:cacheprovider",
        "-q",
        "-n",
        str(jobs),
        "--dist",
        "loadfile",
        str(paths.book_dir() / chapter),
    ]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=paths.project_root(), env=dict(os.environ))
    return time.perf_counter() - start, out.returncode


def parallel_speedup(chapter: str, jobs: int | None = None) -> list[str]:
    """Run ``chapter`` at ``book`` one notebook at a time and ``jobs`` (default: the cores) at a time, with the
    runner and with nbval under pytest-xdist; lines with the wall times and the speed-ups."""
    jobs = jobs or os.cpu_count() or 1
    tasks = runner.plan(chapter, "book", force=True)
    lines = [
        f"Parallel execution of {chapter} at book ({len(tasks)} notebooks), {jobs} workers on {os.cpu_count()} cores:"
    ]
    serial = _runner_wall(tasks, 1)
    parallel = _runner_wall(tasks, jobs)
    lines.append(
        f"  companion run --jobs 1: {serial:6.1f} s   --jobs {jobs}: {parallel:6.1f} s   "
        f"speed-up {serial / parallel:.2f}x"
    )
    (n_serial, rc1), (n_parallel, rc2) = _nbval_wall(chapter, 0), _nbval_wall(chapter, jobs)
    verdict = "" if rc1 == rc2 == 0 else f"   (pytest exit codes {rc1}, {rc2}: outputs differ, see make test)"
    lines.append(
        f"  nbval serial:           {n_serial:6.1f} s   -n {jobs}:     {n_parallel:6.1f} s   "
        f"speed-up {n_serial / n_parallel:.2f}x{verdict}"
    )
    return lines


# -- sizing record tolerances ----------------------------------------------------------------------

TIMING_SUFFIXES = ("_s", "seconds", "throughput")
TIMING_WORDS = ("seconds", "throughput")  # wall-clock records also when the word is not last (seconds_per_epoch)


def _is_timing(key: str) -> bool:
    """Whether a record key names a wall-clock measurement (its tolerance is ``None``: not compared)."""
    return key.endswith(TIMING_SUFFIXES) or any(word in part for part in key.split(".") for word in TIMING_WORDS)


def _family(key: str) -> str:
    """The glob a record belongs to for its tolerance: ``test_acc.sgd.mean`` -> ``test_acc.*.mean``; keys of one
    or two parts (``train_loss.orgfw``) are their own family."""
    parts = key.split(".")
    return f"{parts[0]}.*.{parts[-1]}" if len(parts) >= 3 else key


def _round_up(x: float) -> float:
    """The smallest of 1, 1.5, 2, 3, 5, 7 x 10^k that is >= x."""
    import math

    k = math.floor(math.log10(x))
    for m in (1, 1.5, 2, 3, 5, 7, 10):
        if m * 10**k >= x * (1 - 1e-12):
            return float(f"{m * 10**k:.3g}")
    return 10.0 ** (k + 1)


def propose_tolerances(
    report_lines: list[dict | str], factor: float = 3.0, floor: float = 1e-9
) -> dict[tuple[str, str], dict[str, float | None]]:
    """Tolerances per (chapter, notebook) from deviation reports (``COMPANION_RECORDS_REPORT`` lines, several
    stand-ins): per record family (:func:`_family`), ``factor`` x the largest deviation seen, rounded up on a
    1-1.5-2-3-5-7 grid; ``floor`` where a float family never moved (last-bit differences of another libm); ``None``
    for wall-clock timings and for families whose structure changed (e.g. a grid argmax that moved)."""
    worst: dict[tuple[str, str], dict[str, float | None]] = {}
    for line in report_lines:
        if isinstance(line, str):  # a raw line of the report file
            if not line.strip():
                continue
            line = json.loads(line)
        fam = worst.setdefault((line["slug"], line["notebook"]), {})
        for key, dev in line["deviations"].items():
            name = _family(key)
            if _is_timing(key) or _is_timing(name):
                fam[name] = None
                continue
            if name in fam and fam[name] is None:
                continue
            fam[name] = None if dev is None else max(fam.get(name, 0.0), dev)
    proposed = {}
    for nb, fams in worst.items():
        # First match wins: exact keys before globs, narrower globs (more parts) before wider ones.
        order = sorted(fams, key=lambda n: ("*" in n, -n.count("."), n))
        proposed[nb] = {
            name: (None if fams[name] is None else (_round_up(factor * fams[name]) if fams[name] > 0 else floor))
            for name in order
        }
    return proposed


def smoke_chapters(budget_s: float = 30.0, jobs: int | None = None) -> tuple[list[str], bool]:
    """Run every chapter at ``smoke`` (forced, ``jobs`` notebooks side by side, default: the cores; outputs
    to ``runs/smoke/``) and time each chapter's wall clock against ``budget_s``; (lines, any over budget)."""
    from . import papers

    options = runner.ExecutorOptions(jobs=jobs)
    lines = [f"smoke profile, {options.workers} notebooks side by side; budget {budget_s:.0f} s a chapter"]
    over = False
    for slug in papers.slugs():
        tasks = runner.plan(slug, "smoke", force=True)
        start = time.perf_counter()
        runner.run_tasks(tasks, options, echo=lambda *_: None)
        wall = time.perf_counter() - start
        failed = [t.name for t in tasks if t.status == "failed"]
        busy = sum(t.seconds or 0.0 for t in tasks)
        flag = wall > budget_s or bool(failed)
        over |= flag
        lines.append(
            f"  {slug:<24} {wall:6.1f} s wall / {budget_s:.0f} s = {wall / budget_s:4.2f} "
            f"({len(tasks)} notebooks, {busy:.1f} s of notebook time)"
            + ("  OVER BUDGET" if wall > budget_s else "")
            + (f"  FAILED: {failed}" if failed else "")
        )
    return lines, over
