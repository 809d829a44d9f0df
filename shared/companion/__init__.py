"""companion: the shared package of the reproducible companion book.

Method code lives here (one subpackage per method family); experiments live in the notebooks under
``book/``. The core is small: :mod:`companion.repro` (seeds, threads, device), :mod:`companion.results`
(recorded numbers), :mod:`companion.papers` (claims and profiles), :mod:`companion.runner` (papermill
execution with provenance and caching), :mod:`companion.plotting` (house style) and :mod:`companion.train`
(the one training loop).
"""

from __future__ import annotations

import os
from typing import Iterable, TypeVar

__version__ = "0.1.0"

T = TypeVar("T")


def quiet() -> bool:
    """True when progress bars should be hidden (``COMPANION_QUIET=1``, set by the tests and the runner)."""
    return os.environ.get("COMPANION_QUIET", "") == "1"


def progress(iterable: Iterable[T] | None = None, **kwargs) -> Iterable[T]:
    """``tqdm.auto.tqdm`` over ``iterable`` that stays silent when :func:`quiet` is true."""
    kwargs.setdefault("disable", quiet())
    if kwargs["disable"]:
        from tqdm import tqdm  # tqdm.auto would warn about missing ipywidgets even when disabled
    else:
        from tqdm.auto import tqdm

    kwargs.setdefault("leave", False)
    return tqdm(iterable, **kwargs)
