"""The out-of-distribution split of the ``paper`` profile: CIFAR-10-C / CIFAR-100-C (Hendrycks & Dietterich, 2019)
``gaussian_noise`` at severity 3, as the official code loads it (``config.py``: one ``.npy`` of 50 000 images, five
severities of 10 000 test images each, and ``labels.npy``). The book's analog is
:func:`companion.data.gaussian_noise` on the test split."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from ..data.real import DataRootError

PER_SEVERITY = 10000


def cifar_c(
    data_root: str | Path,
    classes: int = 100,
    corruption: str = "gaussian_noise",
    severity: int = 3,
    n_val: int = 5000,
    seed: int = 0,
) -> TensorDataset:
    """The ``severity`` block (1-5) of ``<root>/CIFAR-{classes}-C/<corruption>.npy`` (N, 32, 32, 3 uint8) with
    ``labels.npy``, standardized per channel with the statistics :func:`companion.data.cifar` uses for the same
    ``n_val`` and ``seed`` (the clean training images, read from ``cifar-10-batches-py/`` or
    ``cifar-100-python/``), so that a model trained on the clean split sees the corrupted images on its scale."""
    if not 1 <= severity <= 5:
        raise ValueError(f"severity must be in 1..5, got {severity}")
    root = Path(data_root).expanduser()
    folder = root / f"CIFAR-{classes}-C"
    clean = (
        ["cifar-10-batches-py/" + f"data_batch_{i}" for i in range(1, 6)]
        if classes == 10
        else ["cifar-100-python/train"]
    )
    needed = [folder / f"{corruption}.npy", folder / "labels.npy", *(root / c for c in clean)]
    missing = [str(p) for p in needed if not p.exists()]
    if missing:
        raise DataRootError(f"CIFAR-{classes}-C not found: missing {', '.join(missing)} (nothing is downloaded)")
    xs = []
    for p in needed[2:]:
        with open(p, "rb") as fh:
            xs.append(np.asarray(pickle.load(fh, encoding="bytes")[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
    train = np.concatenate(xs).astype(np.float32) / 255.0
    train = train[np.random.default_rng(seed).permutation(len(train))][:-n_val]
    mean, std = train.mean(axis=(0, 2, 3), keepdims=True), train.std(axis=(0, 2, 3), keepdims=True)
    images = np.load(needed[0], mmap_mode="r")
    labels = np.load(needed[1])
    lo = (severity - 1) * PER_SEVERITY
    block = np.asarray(images[lo : lo + PER_SEVERITY]).astype(np.float32).transpose(0, 3, 1, 2) / 255.0
    x = ((block - mean) / std).astype(np.float32)
    return TensorDataset(torch.from_numpy(x), torch.from_numpy(labels[lo : lo + len(block)].astype(np.int64)))


class NoisyImages(torch.utils.data.Dataset):
    """Lazy out-of-distribution copy of an image dataset that is read from disk (ImageNet): every input plus
    i.i.d. Gaussian noise of std ``sigma`` in standardized units, the noise of item i drawn from a generator
    seeded with ``seed`` and i, so that every pass sees the same corrupted images. The analog of
    :func:`companion.data.gaussian_noise` (which needs tensors in memory); the paper evaluates OOD on CIFAR-C only."""

    def __init__(self, base: torch.utils.data.Dataset, sigma: float = 0.75, seed: int = 0):
        self.base, self.sigma, self.seed = base, sigma, seed

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i: int):
        x, y = self.base[i]
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + i)
        return x + self.sigma * torch.randn(x.shape, generator=g), y
