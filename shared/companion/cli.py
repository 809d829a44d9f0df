"""The ``companion`` command: ``list``, ``run``, ``claims``, ``bench``, ``build``, ``kernel``.

Bad input (unknown chapter, notebook, profile or parameter; a value of the wrong type; a missing data
root) prints one line ``companion: error: ...`` and exits with status 2 before any work starts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from . import papers, paths, runner
from .bench import BUDGETS, SMOKE_CHAPTER_BUDGET_S
from .papers import PROFILES, PaperError
from .runner import RunError


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="companion", description="Run, check and build the companion book.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="chapters, their notebooks and profiles")

    r = sub.add_parser("run", help="execute a chapter's notebooks with papermill")
    r.add_argument("chapter", help="chapter slug, or 'all'")
    r.add_argument("--profile", default="book", help=f"one of {', '.join(PROFILES)} (default: book)")
    r.add_argument(
        "-p",
        "--parameter",
        nargs=2,
        action="append",
        metavar=("NAME", "VALUE"),
        default=[],
        help="override a notebook parameter (repeatable)",
    )
    r.add_argument("--notebook", action="append", metavar="NAME", help="only this notebook (repeatable)")
    r.add_argument("--force", action="store_true", help="re-execute even when the cache key is unchanged")
    r.add_argument("--data-root", help="folder with the real datasets (paper profile)")
    r.add_argument("--dry-run", action="store_true", help="validate and show what would run, execute nothing")
    r.add_argument("-j", "--jobs", type=int, help="notebooks side by side (local executor; default: the cores)")
    r.add_argument("--executor", default="local", help=f"one of {', '.join(runner.EXECUTORS)} (default: local)")
    slurm = r.add_argument_group("slurm (through submitit; one job per notebook)")
    slurm.add_argument("--partition", help="Slurm partition")
    slurm.add_argument("--gpus-per-job", type=int, default=0, help="GPUs per notebook job (default 0)")
    slurm.add_argument("--cpus-per-job", type=int, default=1, help="CPUs per notebook job (default 1)")
    slurm.add_argument("--mem-gb", type=float, help="memory per notebook job")
    slurm.add_argument("--time-min", type=int, default=60, help="time limit per notebook job (default 60)")
    slurm.add_argument("--account", help="Slurm account")

    c = sub.add_parser("claims", help="each claim: paper value, our value, verdict")
    c.add_argument("chapter", nargs="?", help="chapter slug (default: all)")
    c.add_argument("--profile", default="book", help="results of which run label (default: book)")

    b = sub.add_parser("bench", help="recorded runtimes against the budgets, and micro-benchmarks")
    b.add_argument("--label", default="book", help="run label whose runtimes to show (default: book)")
    b.add_argument("--no-micro", action="store_true", help="skip the micro-benchmark")
    b.add_argument(
        "--micro",
        default="sfw-step",
        help="which micro-benchmark to run after the budgets: sfw-step (SFW vs SGD step time, the default), "
        "sfw-spectral (SFW with spectral k-support regions vs a Prox-SGD step) "
        "or sparsegpt (SparseGPT time per layer against its size)",
    )
    b.add_argument(
        "--parallel",
        metavar="CHAPTER",
        help="measure the speed-up of --jobs N and of parallel nbval "
        "on CHAPTER (executes it several times; writes nothing committed)",
    )
    b.add_argument("--numerics", action="store_true", help="what each pinned numerical setting changes and costs")
    b.add_argument("--smoke", action="store_true", help="run every chapter at smoke and time it against 30 s")

    bd = sub.add_parser("build", help="build the HTML book with Jupyter Book (no execution)")
    bd.add_argument("--strict", action="store_true", help="treat warnings as errors")

    sub.add_parser("kernel", help="install the 'Python 3 (companion)' Jupyter kernel with the pinned numerics")
    return p


def _error(message: str) -> int:
    print(f"companion: error: {message}", file=sys.stderr)
    return 2


def cmd_list() -> int:
    for slug in papers.slugs():
        paper = papers.load(slug)
        print(f"{slug}: {paper.title} ({paper.venue})")
        for nb in paper.notebooks:
            extra = sorted(set(nb.profiles) | {"book"}, key=PROFILES.index)
            print(f"  {nb.name:<28} {nb.title}  [profiles: {', '.join(extra)}]")
    return 0


def cmd_run(args) -> int:
    if args.profile not in PROFILES:
        return _error(f"unknown profile {args.profile!r}; accepted: {', '.join(PROFILES)}")
    names = papers.slugs()
    if args.chapter != "all" and args.chapter not in names:
        return _error(f"unknown chapter {args.chapter!r}; accepted: all, {', '.join(names)}")
    chapters = names if args.chapter == "all" else [args.chapter]
    overrides = dict(args.parameter)
    options = runner.ExecutorOptions(
        executor=args.executor,
        jobs=args.jobs,
        partition=args.partition,
        gpus_per_job=args.gpus_per_job,
        cpus_per_job=args.cpus_per_job,
        mem_gb=args.mem_gb,
        time_min=args.time_min,
        account=args.account,
    )
    # Validate every chapter (and, unless only planning, the executor) before executing anything.
    if not args.dry_run:
        runner.check_executor(options)
    tasks = runner.plan_chapters(chapters, args.profile, overrides, args.notebook, args.force, args.data_root)
    if args.dry_run:
        for t in tasks:
            state = "stale" if t.stale else "up to date"
            print(f"  {t.name}: {state}; parameters {t.changed or '(book defaults)'}")
        print(f"{sum(t.stale for t in tasks)} of {len(tasks)} notebooks would run on the {options.executor} executor")
        return 0
    start = time.perf_counter()
    runner.run_tasks(tasks, options)
    failed = [t for t in tasks if t.status == "failed"]
    for slug in chapters:
        mine = [t for t in tasks if t.notebook.slug == slug]
        ran = sum(t.status == "done" for t in mine)
        busy = sum(t.seconds or 0.0 for t in mine if t.status in ("done", "failed"))
        print(
            f"{slug}: {ran} executed, {sum(t.status == 'cached' for t in mine)} up to date, "
            f"{sum(t.status == 'failed' for t in mine)} failed, {busy:.1f} s of notebook time"
        )
    print(f"wall time {time.perf_counter() - start:.1f} s")
    for line in runner.destinations([t for t in tasks if t.status == "done"]):
        print(line)
    for t in failed:
        print(
            f"failed: {t.name}: {t.error}"
            + (f" (executed notebook: {t.extra['failed_notebook']})" if "failed_notebook" in t.extra else ""),
            file=sys.stderr,
        )
    if failed:
        return 1
    if args.profile == "book" and not overrides:
        for page in runner.refresh_summary_pages():
            print(f"{page}: re-executed")
    return 0


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def cmd_claims(args) -> int:
    import pandas as pd

    if args.chapter and args.chapter not in papers.slugs():
        return _error(f"unknown chapter {args.chapter!r}; accepted: {', '.join(papers.slugs())}")
    labels = (*PROFILES, "custom")
    if args.profile not in labels:
        return _error(f"unknown run label {args.profile!r}; accepted: {', '.join(labels)}")
    verdicts = papers.evaluate_all(args.chapter, args.profile)
    table = papers.scoreboard(args.chapter, args.profile)
    for column, width in (("where", 34), ("paper", 34), ("ours", 28)):
        table[column] = table[column].map(lambda t, w=width: _clip(str(t), w))
    with pd.option_context("display.width", 250, "display.max_colwidth", 60):
        print(table.to_string(index=False))
    print()
    for slug in sorted({v.claim.slug for v in verdicts}):
        mine = [v for v in verdicts if v.claim.slug == slug]
        counts = {
            "hold": sum(v.holds is True and v.claim.status == "checked" for v in mine),
            "fail": sum(v.holds is False and v.claim.status == "checked" for v in mine),
            "not reproduced at this scale (status says why)": sum(v.claim.status != "checked" for v in mine),
            "without a result": sum(v.holds is None and v.claim.status == "checked" for v in mine),
        }
        print(f"{slug}: " + ", ".join(f"{n} {what}" for what, n in counts.items() if n or what in ("hold", "fail")))
        if all(v.holds is None for v in mine):
            print(f"  no {args.profile} results: `companion run {slug} --profile {args.profile}` records them")
    if args.profile != "book":
        print(f"(the checks state the papers' claims at the book profile; at {args.profile} they are for information)")
        return 0
    failing = [v for v in verdicts if v.claim.status == "checked" and v.holds is not True]
    return 1 if failing else 0


def budget_table(label: str = "book") -> tuple[list[str], bool]:
    """Lines of recorded runtime vs budget per notebook, chapter and book; and whether one is over."""
    budgets = BUDGETS.get(label)
    rows = runner.recorded_runtimes(label)
    lines, over = [], False

    def line(what: str, seconds: float | None, budget: float | None) -> str:
        nonlocal over
        if seconds is None:
            return f"  {what:<42} {'-':>8}"
        if budget is None:
            return f"  {what:<42} {seconds:7.1f} s"
        flag = seconds > budget
        over |= flag
        return f"  {what:<42} {seconds:7.1f} s / {budget:5.0f} s = {seconds / budget:4.2f}{'  OVER BUDGET' if flag else ''}"

    head = (
        "budgets: none for this label"
        if budgets is None
        else "budgets: " + ", ".join(f"{what} {b} s" for what, b in budgets.items() if b is not None)
    )
    lines.append(f"Recorded runtimes ({label}); {head}")
    chapters: dict[str, list[float]] = {}
    for r in rows:
        lines.append(line(f"{r['chapter']}/{r['notebook']}", r["seconds"], budgets and budgets["notebook"]))
        chapters.setdefault(r["chapter"], []).extend([r["seconds"]] if r["seconds"] is not None else [])
    for slug, times in chapters.items():
        lines.append(line(f"chapter {slug}", sum(times) if times else None, budgets and budgets["chapter"]))
    recorded = [t for times in chapters.values() for t in times]
    lines.append(line("whole book", sum(recorded) if recorded else None, budgets and budgets["book"]))
    return lines, over


def cmd_bench(args) -> int:
    labels = (*PROFILES, "custom")
    if args.label not in labels:
        return _error(f"unknown run label {args.label!r}; accepted: {', '.join(labels)}")
    micro = ("sfw-step", "sfw-spectral", "sparsegpt")
    if args.micro not in micro:
        return _error(f"unknown micro-benchmark {args.micro!r}; accepted: {', '.join(micro)}")
    if args.numerics:
        import pandas as pd

        from . import numerics

        print(
            "Probe workloads under the pinned environment and with one setting changed "
            "(same: bit-identical to the pinned run):"
        )
        with pd.option_context("display.width", 200, "display.max_columns", 20):
            print(pd.DataFrame(numerics.probe()).to_string(index=False))
        return 0
    if args.smoke:
        from .bench import smoke_chapters

        lines, over = smoke_chapters(SMOKE_CHAPTER_BUDGET_S)
        print("\n".join(lines))
        return 1 if over else 0
    if args.parallel:
        from .bench import parallel_speedup

        for line in parallel_speedup(args.parallel):
            print(line)
        return 0
    lines, over = budget_table(args.label)
    print("\n".join(lines))
    if not args.no_micro and args.micro == "sparsegpt":
        from .perp.bench import sparsegpt_report

        print("\n".join(sparsegpt_report()))
    elif not args.no_micro:
        from .frankwolfe.bench import spectral_step_ratio, step_time_ratio

        if args.micro == "sfw-spectral":
            ratio = spectral_step_ratio()
            print("SFW with spectral k-support regions vs Prox-SGD (SVD soft-thresholding), one step:")
        else:
            ratio = step_time_ratio()
            print("SFW vs SGD(momentum) on the same model and batch:")
        for key, value in ratio.items():
            if isinstance(value, float) and key.endswith("_s"):
                print(f"  {key.removesuffix('_s') + ' (ms)':<22} {1000 * value:9.4f}")
            elif isinstance(value, float):
                print(f"  {key:<22} {value:9.3f}")
            else:
                print(f"  {key:<22} {value}")
    return 1 if over else 0


def jupyter_book_command() -> list[str]:
    """``jupyter-book`` of this interpreter's environment (Jupyter Book 1.x has no ``python -m`` entry)."""
    return [sys.executable, "-c", "import sys; from jupyter_book.cli.main import main; sys.exit(main())"]


def cmd_build(args) -> int:
    cmd = [*jupyter_book_command(), "build", str(paths.book_dir()), "--keep-going"]
    if args.strict:
        cmd += ["-W", "-n"]
    return subprocess.call(cmd)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        if args.command == "list":
            return cmd_list()
        if args.command == "run":
            return cmd_run(args)
        if args.command == "claims":
            return cmd_claims(args)
        if args.command == "bench":
            return cmd_bench(args)
        if args.command == "build":
            return cmd_build(args)
        if args.command == "kernel":
            from .numerics import install_kernel

            print(f"installed kernel spec {install_kernel()} (pinned numerical environment)")
            return 0
    except (PaperError, RunError, KeyError) as exc:
        return _error(str(exc.args[0]) if exc.args else str(exc))
    return 2


if __name__ == "__main__":
    sys.exit(main())
