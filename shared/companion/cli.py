"""The ``companion`` command: ``list``, ``run``, ``claims``, ``bench``, ``build``.

Bad input (unknown chapter, notebook, profile or parameter; a value of the wrong type; a missing data
root) prints one line ``companion: error: ...`` and exits with status 2 before any work starts.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from . import papers, paths, runner
from .papers import PROFILES, PaperError
from .runner import RunError

NOTEBOOK_BUDGET_S = 180
CHAPTER_BUDGET_S = 300
BOOK_BUDGET_S = 2400


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="companion", description="Run, check and build the companion book.")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("list", help="chapters, their notebooks and profiles")

    r = sub.add_parser("run", help="execute a chapter's notebooks with papermill")
    r.add_argument("chapter", help="chapter slug, or 'all'")
    r.add_argument("--profile", default="book", help=f"one of {', '.join(PROFILES)} (default: book)")
    r.add_argument("-p", "--parameter", nargs=2, action="append", metavar=("NAME", "VALUE"), default=[],
                   help="override a notebook parameter (repeatable)")
    r.add_argument("--notebook", action="append", metavar="NAME", help="only this notebook (repeatable)")
    r.add_argument("--force", action="store_true", help="re-execute even when the cache key is unchanged")
    r.add_argument("--data-root", help="folder with the real datasets (paper profile)")

    c = sub.add_parser("claims", help="each claim: paper value, our value, verdict")
    c.add_argument("chapter", nargs="?", help="chapter slug (default: all)")
    c.add_argument("--profile", default="book", help="results of which run label (default: book)")

    b = sub.add_parser("bench", help="recorded runtimes against the budgets, and micro-benchmarks")
    b.add_argument("--label", default="book", help="run label whose runtimes to show (default: book)")
    b.add_argument("--no-micro", action="store_true", help="skip the optimizer micro-benchmark")

    bd = sub.add_parser("build", help="build the HTML book with Jupyter Book (no execution)")
    bd.add_argument("--strict", action="store_true", help="treat warnings as errors")
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
    if args.notebook and len(chapters) > 1:
        return _error("--notebook needs a single chapter")
    # Validate every chapter before executing anything.
    for slug in chapters:
        runner.plan(slug, args.profile, overrides, args.notebook, args.force, args.data_root)
    for slug in chapters:
        start = time.perf_counter()
        tasks = runner.run(slug, args.profile, overrides, args.notebook, args.force, args.data_root)
        ran = [t for t in tasks if t.status == "done"]
        cached = len(tasks) - len(ran)
        print(f"{slug}: {len(ran)} executed, {cached} up to date, {time.perf_counter() - start:.1f} s")
    if args.profile == "book" and not overrides and runner.refresh_scoreboard():
        print("scoreboard: re-executed")
    return 0


def cmd_claims(args) -> int:
    import pandas as pd

    if args.chapter and args.chapter not in papers.slugs():
        return _error(f"unknown chapter {args.chapter!r}; accepted: {', '.join(papers.slugs())}")
    table = papers.scoreboard(args.chapter, args.profile)
    with pd.option_context("display.max_colwidth", 60, "display.width", 200):
        print(table.to_string(index=False))
    failing = [v for v in papers.evaluate_all(args.chapter, args.profile)
               if v.claim.status == "checked" and v.holds is not True]
    return 1 if failing else 0


def cmd_bench(args) -> int:
    rows = runner.recorded_runtimes(args.label)
    print(f"Recorded runtimes ({args.label}); budgets: notebook {NOTEBOOK_BUDGET_S} s, "
          f"chapter {CHAPTER_BUDGET_S} s, book {BOOK_BUDGET_S} s")
    total, chapters = 0.0, {}
    for r in rows:
        s = r["seconds"]
        flag = "" if s is None or s <= NOTEBOOK_BUDGET_S else "  OVER BUDGET"
        print(f"  {r['chapter']}/{r['notebook']:<28} {'-' if s is None else f'{s:7.1f} s'}{flag}")
        chapters[r["chapter"]] = chapters.get(r["chapter"], 0.0) + (s or 0.0)
        total += s or 0.0
    for slug, s in chapters.items():
        flag = "" if s <= CHAPTER_BUDGET_S else "  OVER BUDGET"
        print(f"chapter {slug:<24} {s:7.1f} s{flag}")
    print(f"whole book {total:7.1f} s{'' if total <= BOOK_BUDGET_S else '  OVER BUDGET'}")
    if not args.no_micro:
        from .frankwolfe.bench import step_time_ratio

        ratio = step_time_ratio()
        print("SFW vs SGD(momentum) on the same model and batch:")
        for key, value in ratio.items():
            print(f"  {key}: {value:.3f}" if isinstance(value, float) else f"  {key}: {value}")
    return 0


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
    except (PaperError, RunError, KeyError) as exc:
        return _error(str(exc.args[0]) if exc.args else str(exc))
    return 2


if __name__ == "__main__":
    sys.exit(main())
