"""Recorded numbers: what a notebook measured, as JSON under ``results/<slug>/<notebook>.<profile>.json``.

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


def results_path(slug: str, notebook: str, profile: str, root: Path | None = None) -> Path:
    """``<results dir>/<slug>/<notebook>.<profile>.json``."""
    return (root or paths.results_dir()) / slug / f"{notebook}.{profile}.json"


class Recorder:
    """Collects a notebook's headline numbers and writes them after every :meth:`record`.

    >>> rec = Recorder("sfw", "04-accuracy", "book")      # doctest: +SKIP
    >>> rec.record("test_acc.sgd.mean", 0.93)             # doctest: +SKIP
    """

    def __init__(self, slug: str, notebook: str, profile: str = "book"):
        self.slug, self.notebook, self.profile = slug, notebook, profile
        self.path = results_path(slug, notebook, profile)
        self.values: dict[str, Any] = {}

    def record(self, key: str, value: Any) -> Any:
        """Store ``value`` under ``key`` (dotted, e.g. ``"acc.sfw_l2.mean"``) and return it unchanged."""
        self.values[key] = _plain(value)
        payload = {"slug": self.slug, "notebook": self.notebook, "profile": self.profile,
                   "values": dict(sorted(self.values.items()))}
        atomic_write_text(self.path, json.dumps(payload, indent=1, sort_keys=False) + "\n")
        return value


def load(slug: str, notebook: str, profile: str = "book", root: Path | None = None) -> dict[str, Any]:
    """The recorded values of one notebook at one profile (empty dict when it has not run).

    Reads the project's ``results/`` (what the runner moved into place), not a staging folder."""
    path = results_path(slug, notebook, profile, root or paths.project_root() / "results")
    if not path.exists():
        return {}
    return json.loads(path.read_text())["values"]
