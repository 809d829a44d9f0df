"""Recorded numbers: what a notebook measured, as JSON.

Where records live depends on who ran the notebook (:func:`results_path`):

- ``companion run <slug>`` at the ``book`` profile without overrides: the committed
  ``results/<slug>/<notebook>.book.json``. The runner stages the records in ``$COMPANION_RESULTS_DIR`` and
  moves them there only when the notebook ran to the end.
- any other run label (``smoke``, ``gpu``, ``paper``, ``custom``): ``runs/<label>/<slug>/<notebook>.json``,
  beside the executed notebook.
- a notebook run by hand (Jupyter, plain papermill): ``runs/interactive/<slug>/<notebook>.json``, so that
  tinkering never changes what the book's claims are checked on.

Claims (``papers/<slug>.yaml``) are evaluated on these records, never on numbers typed by hand.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from . import paths


def _plain(value: Any) -> Any:
    """Convert numpy/torch scalars and arrays into JSON-able Python values (NaN -> None)."""
    if hasattr(value, "detach"):  # torch tensor
        value = value.detach().cpu().numpy()
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, (np.floating, float)):
        v = float(value)
        return None if math.isnan(v) else v
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"cannot record a value of type {type(value).__name__}; use numbers, strings, lists or dicts")


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file and ``os.replace``: readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)  # mkstemp creates 0600; results and notebooks are ordinary shared files
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def results_path(slug: str, notebook: str, label: str = "book", root: Path | None = None) -> Path:
    """The records of ``slug/notebook`` for a run labelled ``label`` under the project ``root``: the committed
    ``results/<slug>/<notebook>.book.json`` for ``book``, else ``runs/<label>/<slug>/<notebook>.json``."""
    root = root or paths.project_root()
    if label == "book":
        return root / "results" / slug / f"{notebook}.book.json"
    return root / "runs" / label / slug / f"{notebook}.json"


def staged_path(staging: Path, slug: str, notebook: str) -> Path:
    """Where a notebook run by the runner writes its records: ``$COMPANION_RESULTS_DIR/<slug>/<notebook>.json``."""
    return staging / slug / f"{notebook}.json"


_announced: set[Path] = set()


class Recorder:
    """Collects a notebook's headline numbers and writes them after every :meth:`record`.

    >>> rec = Recorder("sfw", "04-accuracy", "book")      # doctest: +SKIP
    >>> rec.record("test_acc.sgd.mean", 0.93)             # doctest: +SKIP
    """

    def __init__(self, slug: str, notebook: str, profile: str = "book"):
        from .numerics import environment_report

        self.slug, self.notebook, self.profile = slug, notebook, profile
        staging = paths.staging_dir()
        if staging is not None:
            self.path = staged_path(staging, slug, notebook)
        else:
            self.path = results_path(slug, notebook, "interactive")
            if self.path not in _announced:
                _announced.add(self.path)
                print(
                    f"records go to {self.path} (only `companion run {slug}` at the book profile writes the "
                    "committed results)"
                )
        self.environment = environment_report()
        self.values: dict[str, Any] = {}

    def record(self, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` (dotted, e.g. ``"acc.sfw_l2.mean"``) and return it unchanged."""
        self.values[key] = _plain(value)
        payload = {
            "slug": self.slug,
            "notebook": self.notebook,
            "profile": self.profile,
            "values": dict(sorted(self.values.items())),
            "environment": self.environment,
        }
        atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=False) + "\n")
        return value


def load(slug: str, notebook: str, label: str = "book", root: Path | None = None) -> dict[str, Any]:
    """The recorded values of one notebook for a run label (empty dict when it has not run).

    Reads what the runner moved into place (:func:`results_path`), never a staging folder."""
    path = results_path(slug, notebook, label, root)
    if not path.exists():
        return {}
    return json.loads(path.read_text())["values"]


def differences(expected: dict[str, Any], actual: dict[str, Any], tolerances: dict[str, float | None]) -> list[str]:
    """What keeps ``actual`` (re-executed records) from reproducing ``expected`` (the committed ones).

    ``tolerances`` maps glob patterns over record keys to an absolute tolerance for every number inside the
    value (lists and dicts element-wise), or to ``None`` (not compared); the first matching pattern wins and
    keys that match none must be equal. Strings, booleans and structure (lengths, dict keys) must always be
    equal. Returns one readable line per problem (empty: reproduced).
    """
    from fnmatch import fnmatchcase

    problems = [f"{k}: missing from the re-executed records" for k in sorted(set(expected) - set(actual))]
    problems += [f"{k}: recorded now but not in the committed records" for k in sorted(set(actual) - set(expected))]
    for key in sorted(set(expected) & set(actual)):
        tol = next((t for pattern, t in tolerances.items() if fnmatchcase(key, pattern)), 0.0)
        if tol is None:
            continue
        worst = deviation(expected[key], actual[key])
        if worst is None:
            problems.append(f"{key}: {actual[key]!r} differs in kind or structure from the committed {expected[key]!r}")
        elif worst > tol:
            problems.append(
                f"{key}: deviates by {worst:.3g} (tolerance {tol:g}): committed {_short(expected[key])}, "
                f"now {_short(actual[key])}"
            )
    return problems


def deviation(a: Any, b: Any) -> float | None:
    """Largest absolute difference between the numbers of two equally shaped values (None: shapes differ)."""
    if isinstance(a, bool) or isinstance(b, bool) or isinstance(a, str) or a is None or b is None:
        return 0.0 if a == b else None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isinf(a) or math.isinf(b):
            return 0.0 if a == b else math.inf
        return abs(a - b)
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        parts = [deviation(x, y) for x, y in zip(a, b)]
    elif isinstance(a, dict) and isinstance(b, dict) and a.keys() == b.keys():
        parts = [deviation(a[k], b[k]) for k in a]
    else:
        return None
    return None if any(p is None for p in parts) else max(parts, default=0.0)


def _short(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 80 else text[:77] + "..."
