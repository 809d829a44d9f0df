"""Datasets of the book: bundled or synthetic ones for ``smoke``/``book``/``gpu`` (no downloads), and
loaders of the real datasets for the ``paper`` profile, read from a data root.
"""

from .loaders import Split, batches, loader
from .real import DataRootError, cifar, mnist
from .synthetic import digits, gaussian_noise, shift_augment, synth

__all__ = [
    "Split",
    "batches",
    "loader",
    "digits",
    "synth",
    "gaussian_noise",
    "shift_augment",
    "mnist",
    "cifar",
    "DataRootError",
    "DATASETS",
    "load",
]

DATASETS = ("digits", "synth", "mnist", "fashion-mnist", "cifar10", "cifar100")


def load(name: str, seed: int = 0, image: bool = False, data_root: str = "", **options) -> Split:
    """A dataset by name, as a notebook parameter would give it.

    ``digits`` and ``synth`` need nothing (``options`` go to :func:`synth`, e.g. ``n_samples``); ``mnist``,
    ``fashion-mnist``, ``cifar10`` and ``cifar100`` are read from ``data_root`` (the ``paper`` profile).
    ``image`` asks for (C, H, W) tensors instead of flat vectors where the data has both forms.
    """
    if name == "digits":
        return digits(seed=seed, image=image)
    if name == "synth":
        return synth(seed=seed, **options)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    if not data_root:
        raise DataRootError(f"dataset {name!r} is read from a data root; pass data_root (--data-root DIR)")
    if name in ("mnist", "fashion-mnist"):
        return mnist(data_root, variant=name, seed=seed, flatten=not image)
    return cifar(data_root, classes=10 if name == "cifar10" else 100, seed=seed)
