"""A keyed on-disk cache for what several notebooks of a chapter share (pretrained models, generated worlds).

An entry is ``runs/cache/<namespace>/<name>-<key>.pt``, where ``key`` hashes the settings that determine the
content (configuration, seed, data hash, a version number to bump when the code that builds it changes) and
the numerical environment the process runs under (the pinned variables of :data:`companion.numerics.PINNED_ENV`),
so that a run under a stand-in for another CPU never loads what the pinned environment trained. The
first caller builds and stores it; concurrent callers (papermill runs notebooks side by side, nbval with
``-n 2``) wait on an ``fcntl.flock`` and load the stored result instead of building it again. Entries are
written to a temporary file and renamed, so an interrupted build never leaves a truncated entry behind.

Example (``build`` runs only when the entry is missing)::

    from companion import cache
    out = cache.cached("soups", "pretrained", {"model": "mlp_bn", "epochs": 20, "seed": 0, "version": 1},
                       lambda: {"state_dict": train().state_dict()})
    model.load_state_dict(out.value["state_dict"])
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from . import paths
from .numerics import PINNED_ENV


@dataclass
class Cached:
    """What :func:`cached` returns: the stored ``value``, its ``key``, whether it came from the cache
    (``hit``) and the seconds its build took when it was built (also for a hit: the time is stored)."""

    value: Any
    key: str
    hit: bool
    build_seconds: float


def key(settings: Mapping[str, Any]) -> str:
    """16 hex digits of the SHA-256 of ``settings`` as sorted JSON (values that are not JSON become ``str``)."""
    return hashlib.sha256(json.dumps(settings, sort_keys=True, default=str).encode()).hexdigest()[:16]


def folder(namespace: str, root: str | Path | None = None) -> Path:
    """``runs/cache/<namespace>`` (or ``<root>/<namespace>``), created when missing."""
    path = (Path(root) if root else paths.runs_dir() / "cache") / namespace
    path.mkdir(parents=True, exist_ok=True)
    return path


def numerical_environment() -> dict[str, str | None]:
    """The values of the pinned numerical variables in this process (``None`` where unset)."""
    return {name: os.environ.get(name) for name in sorted(PINNED_ENV)}


@contextlib.contextmanager
def locked(path: Path):
    """Hold an exclusive ``flock`` on ``path`` (a lock file, created when missing) for the ``with`` block."""
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def cached(
    namespace: str,
    name: str,
    settings: Mapping[str, Any],
    build: Callable[[], Any],
    root: str | Path | None = None,
    map_location: str | torch.device = "cpu",
) -> Cached:
    """The value ``build()`` returns for ``settings``, from the cache when an entry with the same key exists.

    ``build`` must return something ``torch.save`` stores and ``torch.load(weights_only=True)`` reads back:
    tensors, state dicts, lists, dicts, numbers, strings, numpy arrays converted to tensors. The key covers
    ``settings`` and :func:`numerical_environment`.
    """
    settings = {**settings, "numerical_environment": numerical_environment()}
    entry_key = key(settings)
    where = folder(namespace, root)
    entry = where / f"{name}-{entry_key}.pt"
    with locked(where / f"{name}-{entry_key}.lock"):
        if entry.is_file():
            blob = torch.load(entry, map_location=map_location, weights_only=True)
            return Cached(blob["value"], entry_key, True, float(blob["seconds"]))
        start = time.perf_counter()
        value = build()
        seconds = time.perf_counter() - start
        tmp = entry.with_suffix(".tmp")
        torch.save({"value": value, "seconds": seconds, "settings": json.dumps(settings, default=str)}, tmp)
        os.replace(tmp, entry)
    return Cached(value, entry_key, False, seconds)
