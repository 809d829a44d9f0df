"""Where the project lives: the root with ``papers/``, ``book/`` and ``results/``.

The root is ``$COMPANION_ROOT`` when set (the tests point it at small throw-away projects), otherwise the
first parent of the working directory that holds both ``papers/`` and ``book/``, otherwise the checkout
this package was installed from (editable install: ``shared/companion`` -> two levels up).
"""

from __future__ import annotations

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


def _is_root(path: Path) -> bool:
    return (path / "papers").is_dir() and (path / "book").is_dir()


def project_root() -> Path:
    """The project root (see the module docstring for the search order)."""
    env = os.environ.get("COMPANION_ROOT")
    if env:
        return Path(env).resolve()
    here = Path.cwd().resolve()
    for candidate in (here, *here.parents):
        if _is_root(candidate):
            return candidate
    return PACKAGE_DIR.parents[1]


def papers_dir() -> Path:
    return project_root() / "papers"


def book_dir() -> Path:
    return project_root() / "book"


def staging_dir() -> Path | None:
    """``$COMPANION_RESULTS_DIR``: where the runner (and nbval) collect a notebook's records before deciding
    what to do with them; ``None`` for a notebook run by hand (see :mod:`companion.results`)."""
    env = os.environ.get("COMPANION_RESULTS_DIR")
    return Path(env).resolve() if env else None


def runs_dir() -> Path:
    return project_root() / "runs"
