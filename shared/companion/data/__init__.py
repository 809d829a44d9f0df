"""Datasets of the book: bundled or synthetic ones for ``smoke``/``book``/``gpu`` (no downloads), and
loaders of the real datasets for the ``paper`` profile, read from a data root.
"""

from .loaders import Split, batches, loader
from .real import DataRootError, cifar, mnist
from .synthetic import digits, gaussian_noise, shift_augment, synth

__all__ = ["Split", "batches", "loader", "digits", "synth", "gaussian_noise", "shift_augment", "mnist", "cifar",
           "DataRootError"]
