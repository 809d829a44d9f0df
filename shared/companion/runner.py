"""Execute chapters with papermill: resolved parameters, provenance, per-notebook caching, atomic outputs,
and execution side by side (local processes) or on a cluster (Slurm through submitit).

Only ``book`` without overrides rewrites the committed notebooks ``book/<slug>/NN-*.ipynb`` and records
``results/<slug>/NN-*.book.json``; every other run writes ``runs/<label>/<slug>/NN-*.ipynb`` and ``.json``,
where ``label`` is the profile, or ``custom`` when parameters were overridden on the command line.

Every notebook runs in two steps. :func:`execute_notebook` (in a worker: this process, a local process, or a
Slurm job) executes it into a staging folder, with its records staged in ``$COMPANION_RESULTS_DIR``;
:func:`commit` (always in this process) then moves notebook and records into place with atomic replaces, and
only when the notebook ran to the end. A failed notebook leaves the committed files untouched and is kept in
``runs/failed/<slug>/`` for inspection.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
import uuid
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Iterator

import nbformat
import yaml

from . import __version__, notebooks, numerics, papers, paths, progress, quiet
from .dependencies import Package
from .papers import PROFILES, Notebook
from .results import atomic_write_text, results_path, staged_path

EXECUTORS = ("local", "slurm", "submitit-local")

# The kernel's own log (e.g. ipykernel's warning about unencrypted local TCP, once per notebook) would interleave
# with the progress bar; cell errors still reach the executed notebook and the run's report.
KERNEL_ARGUMENTS = ["--IPKernelApp.log_level=CRITICAL"]

# Versions of the libraries whose numerics the notebooks' outputs depend on: part of every cache key.
NUMERICAL_LIBRARIES = ("torch", "numpy", "scipy", "scikit-learn", "pandas", "networkx")


class RunError(ValueError):
    """Bad input to a run (unknown profile/parameter, wrong type or choice, missing data): reported before any
    work; or a notebook that ran but broke the runner's contract (recorded nothing)."""


# -- cache keys ------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def package() -> Package:
    """The installed ``companion`` package's tracked source tree (one scan per process)."""
    return Package(paths.PACKAGE_DIR)


def library_versions() -> dict[str, str | None]:
    versions = {}
    for name in NUMERICAL_LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def cache_key(nb: nbformat.NotebookNode, parameters: dict[str, Any], pkg: Package | None = None) -> str:
    """What a notebook's outputs depend on: its own code, its parameters, the source of the package modules
    it imports (closed over the package's import graph, see :mod:`companion.dependencies`), the pinned
    numerical environment and the versions of the numerical libraries."""
    pkg = pkg or package()
    h = hashlib.sha256()
    h.update(notebooks.code_hash(nb).encode())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(pkg.hash(pkg.notebook_modules(nb)).encode())
    h.update(json.dumps([numerics.PINNED_ENV, library_versions()], sort_keys=True).encode())
    return h.hexdigest()[:16]


# -- parameters ------------------------------------------------------------------------------------


def _type_name(value: Any) -> str:
    return type(value).__name__


def coerce(name: str, raw: Any, default: Any) -> Any:
    """Convert ``raw`` (a command-line string or a YAML value) to the type of the notebook default.

    ``RunError`` when it does not fit: e.g. ``epochs`` expects int, got ``'ten'``.
    """

    def fail() -> RunError:
        return RunError(f"parameter {name!r} expects {_type_name(default)} (default {default!r}), got {raw!r}")

    if default is None:
        return yaml.safe_load(raw) if isinstance(raw, str) else raw
    if isinstance(default, bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in {"true", "1", "yes", "on", "false", "0", "no", "off"}:
            return raw.lower() in {"true", "1", "yes", "on"}
        raise fail()
    if isinstance(default, int):
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        if isinstance(raw, str):
            with contextlib.suppress(ValueError):
                return int(raw)
        raise fail()
    if isinstance(default, float):
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            return float(raw)
        if isinstance(raw, str):
            with contextlib.suppress(ValueError):
                return float(raw)
        raise fail()
    if isinstance(default, str):
        if isinstance(raw, str):
            return raw
        raise fail()
    if isinstance(default, (list, tuple, dict)):
        value = yaml.safe_load(raw) if isinstance(raw, str) else raw
        if isinstance(value, type(default)):
            return value
        raise fail()
    raise fail()


def check_choice(nb: Notebook, name: str, value: Any) -> None:
    """``RunError`` when ``value`` (or, for a list parameter, one of its items) is not among the choices
    ``papers/<slug>.yaml`` declares for ``name``."""
    accepted = nb.choices.get(name)
    if accepted is None:
        return
    items = value if isinstance(value, list) else [value]
    bad = [v for v in items if v not in accepted]
    if bad:
        raise RunError(
            f"parameter {name!r} of {nb.slug}/{nb.name}: {bad[0]!r} is not a choice; accepted: "
            + ", ".join(map(str, accepted))
        )


def resolve_parameters(
    nb: Notebook, profile: str, overrides: dict[str, Any] | None = None, data_root: str | None = None
) -> tuple[dict[str, Any], dict[str, Any]]:
    """(all parameters, the ones that differ from the notebook defaults) for ``nb`` at ``profile``.

    Layers: notebook defaults (= book) < ``papers/<slug>.yaml`` profile < ``overrides``. Unknown names,
    values of the wrong type and values outside the declared choices raise ``RunError``. ``data_root`` is
    passed to notebooks that declare it.
    """
    if profile not in PROFILES:
        raise RunError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    defaults = notebooks.default_parameters(nb.path)
    layered: dict[str, Any] = {}
    for source, values in (
        (f"papers/{nb.slug}.yaml ({profile})", nb.overrides(profile)),
        ("the command line", overrides or {}),
    ):
        for name, raw in values.items():
            if name not in defaults:
                raise RunError(
                    f"unknown parameter {name!r} for {nb.slug}/{nb.name} (from {source}); "
                    f"accepted: {', '.join(defaults)}"
                )
            layered[name] = coerce(name, raw, defaults[name])
            check_choice(nb, name, layered[name])
    if "profile" in defaults:
        layered["profile"] = profile
    if data_root is not None and "data_root" in defaults:
        layered["data_root"] = data_root
    changed = {k: v for k, v in layered.items() if defaults.get(k) != v}
    return {**defaults, **layered}, changed


def check_injected(nb: Notebook, parameters: dict[str, Any]) -> None:
    """``RunError`` unless ``parameters``, already typed as papermill injects them (``-p`` infers int, float,
    bool or str; ``-y`` parses YAML), are declared by ``nb``, of their default's type and among their choices.

    Unlike :func:`coerce` nothing is converted: papermill injects ``-p seeds "[0, 1]"`` as a string."""
    defaults = notebooks.default_parameters(nb.path)
    for name, value in parameters.items():
        if name not in defaults:
            raise RunError(f"unknown parameter {name!r} for {nb.slug}/{nb.name}; accepted: {', '.join(defaults)}")
        default = defaults[name]
        fits = default is None or type(value) is type(default) or (isinstance(default, float) and type(value) is int)
        if not fits:
            raise RunError(
                f"parameter {name!r} of {nb.slug}/{nb.name} expects {_type_name(default)} "
                f"(default {default!r}), papermill would inject {value!r} ({_type_name(value)})"
            )
        check_choice(nb, name, value)


def check_data(nb: Notebook, profile: str, data_root: str | None) -> None:
    """Stop before any work when ``profile`` needs files under a data root that are not there.

    An entry of ``requires`` is a path relative to the data root, or alternatives separated by ``|``
    (``canopy-height/gedi.gpkg | canopy-height/gedi.csv``: either one will do)."""
    needed = [" or ".join(alt.strip() for alt in rel.split("|")) for rel in nb.requires.get(profile) or []]
    if not needed:
        return
    if not data_root:
        raise RunError(
            f"profile {profile!r} of {nb.slug}/{nb.name} reads real data; pass --data-root DIR "
            f"(or set COMPANION_DATA_ROOT) with: {', '.join(needed)}"
        )
    root = Path(data_root).expanduser()
    missing = [rel for rel in needed if not any((root / alt).exists() for alt in rel.split(" or "))]
    if missing:
        raise RunError(
            f"{nb.slug}/{nb.name} at profile {profile!r}: missing under {root}: "
            f"{', '.join(missing)} (put the files there, see book/{nb.slug}/index.md)"
        )


# -- the plan --------------------------------------------------------------------------------------


@dataclass
class Task:
    notebook: Notebook
    profile: str
    label: str  # profile, or "custom" with command-line overrides
    parameters: dict[str, Any]  # all parameters
    changed: dict[str, Any]  # what papermill injects
    key: str  # cache key
    output: Path  # where the executed notebook goes
    root: Path  # the project root (workers may run elsewhere)
    stale: bool = True
    seconds: float | None = None
    status: str = "pending"  # pending, cached, done, failed
    error: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.notebook.slug}/{self.notebook.name}"

    @property
    def results(self) -> Path:
        return results_path(self.notebook.slug, self.notebook.name, self.label, self.root)


def output_path(nb: Notebook, label: str) -> Path:
    """Where the executed notebook is written for a run labelled ``label``."""
    if label == "book":
        return nb.path
    return paths.runs_dir() / label / nb.slug / f"{nb.name}.ipynb"


def stored_metadata(path: Path) -> dict[str, Any]:
    """The ``companion`` metadata of a previously executed notebook (empty when it was never run)."""
    if not path.exists():
        return {}
    return notebooks.read(path).metadata.get("companion", {})


def plan(
    slug: str,
    profile: str = "book",
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    force: bool = False,
    data_root: str | None = None,
) -> list[Task]:
    """Validate everything about a run of one chapter and decide which notebooks are stale; no execution.

    Overrides apply to every chosen notebook that declares the parameter; one that no chosen notebook
    declares is an error. Raises ``PaperError``/``RunError`` (one line each) for an unknown chapter,
    notebook, profile or parameter, a value of the wrong type or outside its choices, or missing data.
    """
    paper = papers.load(slug)
    if profile not in PROFILES:
        raise RunError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    chosen = [paper.notebook(n) for n in only] if only else list(paper.notebooks)
    overrides = dict(overrides or {})
    data_root = data_root or os.environ.get("COMPANION_DATA_ROOT") or overrides.get("data_root")
    declared: dict[str, dict[str, Any]] = {}
    for nb in chosen:
        if not nb.path.exists():
            raise RunError(f"{nb.path} listed in papers/{slug}.yaml does not exist")
        declared[nb.name] = notebooks.default_parameters(nb.path)
    accepted = sorted({p for d in declared.values() for p in d})
    for name in overrides:
        if not any(name in d for d in declared.values()):
            where = f"{slug}/{chosen[0].name}" if len(chosen) == 1 else f"any notebook of {slug}"
            raise RunError(f"unknown parameter {name!r} for {where}; accepted: {', '.join(accepted)}")
    label = "custom" if overrides else profile
    tasks = []
    for nb in chosen:
        check_data(nb, profile, data_root)
        mine = {k: v for k, v in overrides.items() if k in declared[nb.name]}
        params, changed = resolve_parameters(nb, profile, mine, data_root)
        out = output_path(nb, label)
        key = cache_key(notebooks.read(nb.path), params)
        task = Task(nb, profile, label, params, changed, key, out, paths.project_root())
        task.stale = force or stored_metadata(out).get("cache_key") != key or not task.results.exists()
        tasks.append(task)
    return tasks


def plan_chapters(
    chapters: list[str],
    profile: str = "book",
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    force: bool = False,
    data_root: str | None = None,
) -> list[Task]:
    """:func:`plan` for several chapters; every chapter is validated before anything runs."""
    if only and len(chapters) > 1:
        raise RunError("--notebook needs a single chapter")
    return [t for slug in chapters for t in plan(slug, profile, overrides, only, force, data_root)]


# -- executing one notebook (in a worker) ----------------------------------------------------------


@contextlib.contextmanager
def _environment(**values: str | None) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    numerics.apply(values)
    try:
        yield
    finally:
        numerics.apply(old)


def kernel_environment(root: Path, **extra: str) -> dict[str, str]:
    """What a notebook kernel gets on top of the current environment (``None``: unset): the pinned numerics
    (:data:`companion.numerics.PINNED_ENV`, or a stand-in, see :func:`companion.numerics.kernel_numerics`), quiet progress bars, the project root, and this interpreter's
    kernel spec first on ``JUPYTER_PATH`` so the kernel runs in the same environment as the runner."""
    jupyter_path = os.pathsep.join(
        filter(None, [str(Path(sys.prefix) / "share" / "jupyter"), os.environ.get("JUPYTER_PATH")])
    )
    return {
        **numerics.kernel_numerics(),
        "COMPANION_QUIET": "1",
        "COMPANION_ROOT": str(root),
        "JUPYTER_PATH": jupyter_path,
        **extra,
    }


def execute_notebook(task: Task, staging: str, kernel_name: str = "python3") -> dict[str, Any]:
    """Execute ``task``'s notebook into ``staging/<name>.ipynb`` with records staged in ``staging/records``.

    Runs in a worker and never touches committed files. Returns ``{"ok", "seconds", "error"}``; the error is
    the last lines of the traceback (papermill's cell error included).
    """
    import papermill

    nb = task.notebook
    staging_dir = Path(staging)
    staging_dir.mkdir(parents=True, exist_ok=True)
    executed = staging_dir / f"{nb.name}.ipynb"
    start = time.perf_counter()
    env = kernel_environment(task.root, COMPANION_RESULTS_DIR=str(staging_dir / "records"))
    try:
        with _environment(**env):  # COMPANION_ROOT first: nb.path is resolved against it (Slurm jobs too)
            papermill.execute_notebook(
                str(nb.path),
                str(executed),
                parameters=task.changed,
                kernel_name=kernel_name,
                progress_bar=False,
                log_output=False,
                cwd=str(nb.path.parent),
                extra_arguments=KERNEL_ARGUMENTS,
            )
    except BaseException as exc:  # noqa: BLE001 - reported to the main process, which decides
        if isinstance(exc, KeyboardInterrupt):
            raise
        lines = [line for line in str(exc).strip().splitlines() if line.strip()]
        message = " | ".join(lines[-3:]) if lines else "".join(traceback.format_exception_only(exc)).strip()
        return {"ok": False, "seconds": time.perf_counter() - start, "error": message}
    return {"ok": True, "seconds": time.perf_counter() - start, "error": None}


def _clean(nb: nbformat.NotebookNode) -> None:
    """Drop per-cell timing metadata papermill adds, so committed notebooks only change when outputs do."""
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)


def _git_commit(root: Path) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def commit(task: Task, staging: Path, outcome: dict[str, Any]) -> None:
    """Move an executed notebook and its records into place (atomic replaces), or, when it failed, keep the
    executed notebook in ``runs/failed/<slug>/`` and leave the committed files untouched."""
    nb = task.notebook
    executed = staging / f"{nb.name}.ipynb"
    staged = staged_path(staging / "records", nb.slug, nb.name)
    task.seconds = outcome["seconds"]
    if outcome["ok"] and not staged.exists():
        outcome = {
            **outcome,
            "ok": False,
            "error": f"{task.name} recorded nothing (every notebook records its headline numbers)",
        }
    if not outcome["ok"]:
        task.status, task.error = "failed", outcome["error"]
        if executed.exists():
            failed = task.root / "runs" / "failed" / nb.slug / f"{nb.name}.ipynb"
            failed.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(executed, failed)
            task.extra["failed_notebook"] = str(failed)
        return
    record = json.loads(staged.read_text())
    record["label"] = task.label
    environment = record.get("environment", {})
    out_nb = notebooks.read(executed)
    _clean(out_nb)
    out_nb.metadata["companion"] = {
        "slug": nb.slug,
        "notebook": nb.name,
        "profile": task.profile,
        "label": task.label,
        "parameters": task.parameters,
        "overrides": task.changed,
        "cache_key": task.key,
        "git_commit": _git_commit(task.root),
        "device": environment.get("device"),
        "environment": environment,
        "wall_time_s": round(task.seconds, 2),
        "companion_version": __version__,
        "executed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    atomic_write_text(task.results, json.dumps(record, indent=1) + "\n")
    atomic_write_text(task.output, nbformat.writes(out_nb))
    task.status = "done"


# -- executing many notebooks ----------------------------------------------------------------------


@dataclass
class ExecutorOptions:
    """Where the notebooks run: ``local`` (``jobs`` processes on this machine), ``slurm`` (one job per notebook
    through submitit) or ``submitit-local`` (submitit's local executor: the cluster code path without a
    cluster). The Slurm fields map to submitit's ``slurm_*`` parameters."""

    executor: str = "local"
    jobs: int | None = None  # local: parallel notebooks (default: the number of cores)
    partition: str | None = None
    gpus_per_job: int = 0
    cpus_per_job: int = 1
    mem_gb: float | None = None
    time_min: int = 60
    account: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # further submitit parameters

    def __post_init__(self):
        if self.executor not in EXECUTORS:
            raise RunError(f"unknown executor {self.executor!r}; accepted: {', '.join(EXECUTORS)}")
        if self.jobs is not None and self.jobs < 1:
            raise RunError(f"--jobs expects a positive number, got {self.jobs}")

    @property
    def workers(self) -> int:
        return self.jobs or os.cpu_count() or 1


def _longest_first(tasks: list[Task]) -> list[Task]:
    """Start the notebooks that took longest at book first (shortest makespan for a pool of workers)."""

    def recorded(t: Task) -> float:
        return stored_metadata(t.notebook.path).get("wall_time_s") or 0.0

    return sorted(tasks, key=recorded, reverse=True)


def slurm_parameters(options: ExecutorOptions) -> dict[str, Any]:
    """``submitit.SlurmExecutor`` parameters (names as in ``sbatch``) for one notebook job."""
    parameters: dict[str, Any] = {
        "job_name": "companion",
        "time": options.time_min,
        "cpus_per_task": options.cpus_per_job,
    }
    if options.partition:
        parameters["partition"] = options.partition
    if options.gpus_per_job:
        parameters["gpus_per_node"] = options.gpus_per_job
    if options.mem_gb:
        parameters["mem"] = f"{options.mem_gb:g}GB"
    if options.account:
        parameters["account"] = options.account
    return {**parameters, **options.extra}


def check_executor(options: ExecutorOptions) -> None:
    """Fail before any work when the chosen executor cannot run here (no ``srun`` for Slurm)."""
    if options.executor == "slurm" and shutil.which("srun") is None:
        raise RunError(
            "the slurm executor submits through Slurm, but `srun` is not on PATH here; run on the "
            "cluster's login node, or use --executor submitit-local to try the same path locally"
        )


def _submitit_executor(options: ExecutorOptions, folder: Path):
    import submitit

    if options.executor == "submitit-local":
        executor = submitit.LocalExecutor(folder=str(folder))
        executor.update_parameters(timeout_min=options.time_min)
        return executor
    executor = submitit.SlurmExecutor(folder=str(folder))
    executor.update_parameters(**slurm_parameters(options))
    return executor


def _outcomes(
    todo: list[Task], staging: dict[int, Path], options: ExecutorOptions
) -> Iterator[tuple[Task, dict[str, Any]]]:
    """(task, outcome) as the notebooks finish, on the chosen executor."""
    if options.executor == "local" and (options.workers == 1 or len(todo) == 1):
        for task in todo:
            yield task, execute_notebook(task, str(staging[id(task)]))
        return
    if options.executor == "local":
        context = multiprocessing.get_context("spawn")  # no fork of a process that may hold torch threads
        with ProcessPoolExecutor(max_workers=min(options.workers, len(todo)), mp_context=context) as pool:
            futures = {pool.submit(execute_notebook, t, str(staging[id(t)])): t for t in todo}
            for future in as_completed(futures):
                yield futures[future], _result(future.result)
        return
    import submitit

    executor = _submitit_executor(options, paths.runs_dir() / "slurm")
    jobs = {}
    for task in todo:
        job = executor.submit(execute_notebook, task, str(staging[id(task)]))
        jobs[job.job_id] = (job, task)
    for job in submitit.helpers.as_completed([j for j, _ in jobs.values()]):
        yield jobs[job.job_id][1], _result(job.result)


def _result(get: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """A worker's outcome; a worker that died (killed job, lost process) becomes a failed outcome."""
    try:
        return get()
    except Exception as exc:  # noqa: BLE001
        return {"ok": False, "seconds": 0.0, "error": f"worker failed: {type(exc).__name__}: {exc}"}


def run_tasks(tasks: list[Task], options: ExecutorOptions | None = None, echo=print) -> list[Task]:
    """Execute the stale ``tasks`` (all chapters at once) and commit each as it finishes; one progress bar.

    Returns the tasks with their status: ``cached`` (up to date), ``done`` or ``failed`` (with ``error``).
    """
    options = options or ExecutorOptions()
    check_executor(options)
    todo = _longest_first([t for t in tasks if t.stale])
    for t in tasks:
        if not t.stale:
            t.status = "cached"
    if not todo:
        return tasks
    base = paths.runs_dir() / ".staging" / uuid.uuid4().hex[:12]  # on the project's filesystem: Slurm sees it
    staging = {id(t): base / f"{t.notebook.slug}-{t.notebook.name}" for t in todo}
    bar = progress(
        total=len(todo), desc=f"{len(todo)} notebooks [{options.executor}]", unit="notebook", disable=quiet()
    )
    try:
        for task, outcome in _outcomes(todo, staging, options):
            commit(task, staging[id(task)], outcome)
            bar.update(1)
            if task.status == "done":
                echo(f"  {task.name}: {task.seconds:.1f} s -> {_display(task.output)}")
            else:
                echo(f"  {task.name}: FAILED after {task.seconds:.1f} s: {task.error}")
    finally:
        bar.close()
        shutil.rmtree(base, ignore_errors=True)
        with contextlib.suppress(OSError):
            base.parent.rmdir()
    return tasks


def run(
    slug: str,
    profile: str = "book",
    overrides: dict[str, Any] | None = None,
    only: list[str] | None = None,
    force: bool = False,
    data_root: str | None = None,
    options: ExecutorOptions | None = None,
    echo=print,
) -> list[Task]:
    """Plan (all validation first) then execute the stale notebooks of one chapter."""
    return run_tasks(plan(slug, profile, overrides, only, force, data_root), options, echo)


def destinations(tasks: list[Task]) -> list[str]:
    """One line per distinct destination of the executed notebooks and records (for the end of a run)."""
    lines = []
    for label in sorted({t.label for t in tasks}):
        if label == "book":
            lines.append("notebooks -> book/<chapter>/, records -> results/<chapter>/*.book.json (committed)")
        else:
            lines.append(
                f"notebooks and records -> {_display(paths.runs_dir() / label)}/<chapter>/ "
                "(the committed book and results are unchanged)"
            )
    return lines


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(paths.project_root()))
    return str(path)


def recorded_runtimes(label: str = "book") -> list[dict[str, Any]]:
    """Wall time of every executed notebook of a run label, read from the notebooks' metadata."""
    rows = []
    for slug in papers.slugs():
        for nb in papers.load(slug).notebooks:
            meta = stored_metadata(output_path(nb, label))
            rows.append(
                {"chapter": slug, "notebook": nb.name, "seconds": meta.get("wall_time_s"), "device": meta.get("device")}
            )
    return rows


# -- the summary pages (scoreboard, runtimes) ------------------------------------------------------

SCOREBOARD = "scoreboard.ipynb"
RUNTIMES = "runtimes.ipynb"
SUMMARY_PAGES = (SCOREBOARD, RUNTIMES)


def summary_key(page: str = SCOREBOARD) -> str:
    """A summary page depends on its own code, the package modules it imports, every ``papers/*.yaml``, every
    book result and the recorded runtime of every chapter notebook."""
    h = hashlib.sha256()
    nb = notebooks.read(paths.book_dir() / page)
    h.update(cache_key(nb, {}).encode())
    root = paths.project_root()
    for path in sorted([*(root / "papers").glob("*.yaml"), *(root / "results").glob("*/*.book.json")]):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    for row in recorded_runtimes("book"):
        h.update(f"{row['chapter']}/{row['notebook']}={row['seconds']}".encode())
    return h.hexdigest()[:16]


def refresh_summary_pages(force: bool = False, kernel_name: str = "python3") -> list[str]:
    """Re-execute the summary pages of ``book/`` (:data:`SUMMARY_PAGES`, those that exist) in place when
    claims, results or runtimes changed; the names of those that ran."""
    import papermill

    root = paths.project_root()
    ran = []
    for page in SUMMARY_PAGES:
        path = paths.book_dir() / page
        if not path.exists():
            continue
        key = summary_key(page)
        if not force and stored_metadata(path).get("cache_key") == key:
            continue
        with tempfile.TemporaryDirectory(prefix="companion-") as tmp:
            executed = Path(tmp) / page
            start = time.perf_counter()
            with _environment(**kernel_environment(root)):
                papermill.execute_notebook(
                    str(path),
                    str(executed),
                    kernel_name=kernel_name,
                    progress_bar=False,
                    log_output=False,
                    cwd=str(path.parent),
                    extra_arguments=KERNEL_ARGUMENTS,
                )
            out_nb = notebooks.read(executed)
            _clean(out_nb)
            out_nb.metadata["companion"] = {
                "profile": "book",
                "cache_key": key,
                "wall_time_s": round(time.perf_counter() - start, 2),
                "git_commit": _git_commit(root),
                "companion_version": __version__,
            }
            atomic_write_text(path, nbformat.writes(out_nb))
        ran.append(page)
    return ran
