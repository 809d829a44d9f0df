"""Execute chapters with papermill: resolved parameters, provenance, caching and atomic outputs.

``book`` (without overrides) rewrites the committed notebooks ``book/<slug>/NN-*.ipynb`` and
``results/<slug>/NN-*.book.json``; every other run writes ``runs/<label>/<slug>/`` and
``results/<slug>/NN-*.<label>.json``, where ``label`` is the profile, or ``custom`` when parameters were
overridden on the command line. Outputs are written only after the notebook ran to the end: results are
staged in a temporary folder and moved into place, the notebook is replaced with ``os.replace``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import nbformat
import yaml

from . import __version__, notebooks, papers, paths, progress, quiet
from .results import atomic_write_text
from .papers import PROFILES, Notebook, PaperError


class RunError(ValueError):
    """Bad input to a run (unknown profile/parameter, wrong type, missing data): reported before any work."""


# -- hashing ---------------------------------------------------------------------------------------

def package_hash() -> str:
    """SHA-256 over the package's Python sources (relative path + content, sorted)."""
    h = hashlib.sha256()
    for path in sorted(paths.PACKAGE_DIR.rglob("*.py")):
        if "__pycache__" in path.parts:
            continue
        h.update(str(path.relative_to(paths.PACKAGE_DIR)).encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    return h.hexdigest()


def cache_key(nb: nbformat.NotebookNode, parameters: dict[str, Any], pkg_hash: str) -> str:
    """What a notebook's outputs depend on: its code, its parameters and the package source."""
    h = hashlib.sha256()
    h.update(notebooks.code_hash(nb).encode())
    h.update(json.dumps(parameters, sort_keys=True, default=str).encode())
    h.update(pkg_hash.encode())
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


def resolve_parameters(nb: Notebook, profile: str, overrides: dict[str, Any] | None = None,
                       data_root: str | None = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(all parameters, the ones that differ from the notebook defaults) for ``nb`` at ``profile``.

    Layers: notebook defaults (= book) < ``papers/<slug>.yaml`` profile < ``overrides``. Unknown names
    and values of the wrong type raise ``RunError``. ``data_root`` is passed to notebooks that declare it.
    """
    if profile not in PROFILES:
        raise RunError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    defaults = notebooks.default_parameters(nb.path)
    layered: dict[str, Any] = {}
    for source, values in ((f"papers/{nb.slug}.yaml ({profile})", nb.overrides(profile)),
                           ("the command line", overrides or {})):
        for name, raw in values.items():
            if name not in defaults:
                raise RunError(f"unknown parameter {name!r} for {nb.slug}/{nb.name} (from {source}); "
                               f"accepted: {', '.join(defaults)}")
            layered[name] = coerce(name, raw, defaults[name])
    if "profile" in defaults:
        layered["profile"] = profile
    if data_root is not None and "data_root" in defaults:
        layered["data_root"] = data_root
    changed = {k: v for k, v in layered.items() if defaults.get(k) != v}
    return {**defaults, **layered}, changed


def check_data(nb: Notebook, profile: str, data_root: str | None) -> None:
    """Stop before any work when ``profile`` needs files under a data root that are not there."""
    needed = nb.requires.get(profile) or []
    if not needed:
        return
    if not data_root:
        raise RunError(f"profile {profile!r} of {nb.slug}/{nb.name} reads real data; pass --data-root DIR "
                       f"(or set COMPANION_DATA_ROOT) with: {', '.join(needed)}")
    root = Path(data_root).expanduser()
    missing = [rel for rel in needed if not (root / rel).exists()]
    if missing:
        raise RunError(f"{nb.slug}/{nb.name} at profile {profile!r}: missing under {root}: "
                       f"{', '.join(missing)} (put the files there, see book/{nb.slug}/index.md)")


# -- plan and execution ----------------------------------------------------------------------------

@dataclass
class Task:
    notebook: Notebook
    profile: str
    label: str                    # profile, or "custom" with command-line overrides
    parameters: dict[str, Any]    # all parameters
    changed: dict[str, Any]       # what papermill injects
    key: str                      # cache key
    output: Path                  # where the executed notebook goes
    stale: bool = True
    seconds: float | None = None
    status: str = "pending"
    extra: dict[str, Any] = field(default_factory=dict)


def output_path(nb: Notebook, label: str) -> Path:
    """Where the executed notebook is written for a run labelled ``label``."""
    if label == "book":
        return nb.path
    return paths.runs_dir() / label / nb.slug / f"{nb.name}.ipynb"


def stored_key(path: Path) -> str | None:
    """The cache key in a previously executed notebook's metadata (None when it was never run)."""
    if not path.exists():
        return None
    meta = notebooks.read(path).metadata.get("companion", {})
    return meta.get("cache_key")


def plan(slug: str, profile: str = "book", overrides: dict[str, Any] | None = None,
         only: list[str] | None = None, force: bool = False, data_root: str | None = None) -> list[Task]:
    """Validate everything about a run and decide which notebooks are stale; no execution.

    Raises ``PaperError``/``RunError`` (one line each) for an unknown chapter, notebook, profile or
    parameter, a value of the wrong type, or missing data.
    """
    paper = papers.load(slug)
    if profile not in PROFILES:
        raise RunError(f"unknown profile {profile!r}; accepted: {', '.join(PROFILES)}")
    chosen = [paper.notebook(n) for n in only] if only else list(paper.notebooks)
    data_root = data_root or os.environ.get("COMPANION_DATA_ROOT") or (overrides or {}).get("data_root")
    pkg = package_hash()
    tasks = []
    for nb in chosen:
        if not nb.path.exists():
            raise RunError(f"{nb.path} listed in papers/{slug}.yaml does not exist")
        check_data(nb, profile, data_root)
        params, changed = resolve_parameters(nb, profile, overrides, data_root)
        label = "custom" if overrides else profile
        out = output_path(nb, label)
        key = cache_key(notebooks.read(nb.path), params, pkg)
        stale = force or stored_key(out) != key or not _results_file(nb, label).exists()
        tasks.append(Task(nb, profile, label, params, changed, key, out, stale))
    return tasks


def _results_file(nb: Notebook, label: str) -> Path:
    from .results import results_path

    return results_path(nb.slug, nb.name, label, paths.project_root() / "results")


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _kernel_environment(**extra: str):
    """Environment of a notebook kernel: quiet progress bars, the project root, and this interpreter's
    kernel spec first on ``JUPYTER_PATH`` so the kernel runs in the same environment as the runner."""
    jupyter_path = os.pathsep.join(filter(None, [str(Path(sys.prefix) / "share" / "jupyter"),
                                                 os.environ.get("JUPYTER_PATH")]))
    return _environment(COMPANION_QUIET="1", COMPANION_ROOT=str(paths.project_root()),
                        JUPYTER_PATH=jupyter_path, **extra)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.project_root(),
                             capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


def _device_description() -> str:
    import torch

    if torch.cuda.is_available():
        return f"cuda: {torch.cuda.get_device_name(0)}"
    return f"cpu: {platform.machine()}, {os.cpu_count()} cores visible"


def _clean(nb: nbformat.NotebookNode) -> None:
    """Drop per-cell timing metadata papermill adds, so committed notebooks only change when outputs do."""
    for cell in nb.cells:
        cell.metadata.pop("papermill", None)
        cell.metadata.pop("execution", None)
    nb.metadata.pop("papermill", None)


def execute(task: Task, kernel_name: str = "python3") -> None:
    """Run one notebook; on success move its notebook and results into place, else leave both untouched.

    A failed notebook is kept for inspection at ``runs/failed/<slug>/<name>.ipynb`` and the papermill
    error is re-raised.
    """
    import papermill

    nb = task.notebook
    with tempfile.TemporaryDirectory(prefix="companion-") as tmp:
        staging = Path(tmp) / "results"
        executed = Path(tmp) / f"{nb.name}.ipynb"
        start = time.perf_counter()
        try:
            with _kernel_environment(COMPANION_RESULTS_DIR=str(staging)):
                papermill.execute_notebook(str(nb.path), str(executed), parameters=task.changed,
                                           kernel_name=kernel_name, progress_bar=False, log_output=False,
                                           cwd=str(nb.path.parent))
        except BaseException:
            task.status = "failed"
            if executed.exists():
                failed = paths.runs_dir() / "failed" / nb.slug / f"{nb.name}.ipynb"
                failed.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(executed, failed)
                task.extra["failed_notebook"] = str(failed)
            raise
        task.seconds = time.perf_counter() - start
        out_nb = notebooks.read(executed)
        _clean(out_nb)
        out_nb.metadata["companion"] = {
            "slug": nb.slug, "notebook": nb.name, "profile": task.profile, "label": task.label,
            "parameters": task.parameters, "overrides": task.changed, "cache_key": task.key,
            "package_hash": package_hash()[:16], "git_commit": _git_commit(), "device": _device_description(),
            "wall_time_s": round(task.seconds, 2), "companion_version": __version__,
            "executed_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        }
        staged = staging / nb.slug / f"{nb.name}.{task.profile}.json"
        if not staged.exists():
            raise RunError(f"{nb.slug}/{nb.name} recorded nothing (every notebook records its headline numbers)")
        # Success: move results and the notebook into place, each with an atomic replace.
        record = json.loads(staged.read_text())
        record["profile"] = task.label
        atomic_write_text(_results_file(nb, task.label), json.dumps(record, indent=1) + "\n")
        atomic_write_text(task.output, nbformat.writes(out_nb))
        task.status = "done"


def run(slug: str, profile: str = "book", overrides: dict[str, Any] | None = None, only: list[str] | None = None,
        force: bool = False, data_root: str | None = None, echo=print) -> list[Task]:
    """Plan (all validation first) then execute the stale notebooks of a chapter, one progress bar."""
    tasks = plan(slug, profile, overrides, only, force, data_root)
    todo = [t for t in tasks if t.stale]
    for t in tasks:
        if not t.stale:
            t.status = "cached"
    bar = progress(todo, desc=f"{slug} [{profile}]", unit="notebook", disable=quiet() or not todo)
    for task in bar:
        if hasattr(bar, "set_postfix_str"):
            bar.set_postfix_str(task.notebook.name)
        execute(task)
        echo(f"  {slug}/{task.notebook.name}: {task.seconds:.1f} s -> {_display(task.output)}")
    return tasks


def _display(path: Path) -> str:
    with contextlib.suppress(ValueError):
        return str(path.relative_to(paths.project_root()))
    return str(path)


def recorded_runtimes(label: str = "book") -> list[dict[str, Any]]:
    """Wall time of every executed notebook of a run label, read from the notebooks' metadata."""
    rows = []
    for slug in papers.slugs():
        for nb in papers.load(slug).notebooks:
            path = output_path(nb, label)
            meta = notebooks.read(path).metadata.get("companion", {}) if path.exists() else {}
            rows.append({"chapter": slug, "notebook": nb.name, "seconds": meta.get("wall_time_s"),
                         "device": meta.get("device")})
    return rows


# -- the scoreboard page ---------------------------------------------------------------------------

SCOREBOARD = "scoreboard.ipynb"


def scoreboard_key() -> str:
    """The scoreboard depends on its own code, the package, every ``papers/*.yaml`` and every book result."""
    h = hashlib.sha256()
    nb = notebooks.read(paths.book_dir() / SCOREBOARD)
    h.update(notebooks.code_hash(nb).encode())
    h.update(package_hash().encode())
    root = paths.project_root()
    for path in sorted([*(root / "papers").glob("*.yaml"), *(root / "results").glob("*/*.book.json")]):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def refresh_scoreboard(force: bool = False, kernel_name: str = "python3") -> bool:
    """Re-execute ``book/scoreboard.ipynb`` in place when claims or results changed; True if it ran."""
    import papermill

    path = paths.book_dir() / SCOREBOARD
    key = scoreboard_key()
    if not force and stored_key(path) == key:
        return False
    with tempfile.TemporaryDirectory(prefix="companion-") as tmp:
        executed = Path(tmp) / SCOREBOARD
        start = time.perf_counter()
        with _kernel_environment():
            papermill.execute_notebook(str(path), str(executed), kernel_name=kernel_name, progress_bar=False,
                                       log_output=False, cwd=str(path.parent))
        out_nb = notebooks.read(executed)
        _clean(out_nb)
        out_nb.metadata["companion"] = {"profile": "book", "cache_key": key,
                                        "wall_time_s": round(time.perf_counter() - start, 2),
                                        "git_commit": _git_commit(), "companion_version": __version__}
        atomic_write_text(path, nbformat.writes(out_nb))
    return True
