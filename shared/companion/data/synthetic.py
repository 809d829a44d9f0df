"""Data that needs no download: scikit-learn's ``digits``, a ``make_classification`` task and the noisy
out-of-distribution variant used by the pruning/soup chapters (this book's shared CPU testbed)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from .loaders import Split


def _standardized_split(
    X: np.ndarray,
    y: np.ndarray,
    sizes: tuple[int, int, int],
    seed: int,
    shape: tuple[int, ...],
    name: str,
    num_classes: int,
) -> Split:
    n_train, n_val, n_test = sizes
    X_train, X_rest, y_train, y_rest = train_test_split(X, y, train_size=n_train, stratify=y, random_state=seed)
    X_val, X_test, y_val, y_test = train_test_split(
        X_rest, y_rest, train_size=n_val, test_size=n_test, stratify=y_rest, random_state=seed
    )
    # Standardize with train statistics only (one scalar mean/std per feature).
    mean, std = X_train.mean(axis=0), X_train.std(axis=0)
    std[std < 1e-8] = 1.0

    def tensors(Xs, ys):
        Xs = ((Xs - mean) / std).astype(np.float32).reshape((-1, *shape))
        return TensorDataset(torch.from_numpy(Xs), torch.from_numpy(ys.astype(np.int64)))

    return Split(tensors(X_train, y_train), tensors(X_val, y_val), tensors(X_test, y_test), num_classes, name)


def digits(seed: int = 0, image: bool = False) -> Split:
    """scikit-learn's 8x8 handwritten digits (1797 samples, 10 classes), stratified 60/20/20 split
    (1078/359/360), standardized per pixel with train statistics; ``image=True`` gives 1x8x8 tensors."""
    data = load_digits()
    shape = (1, 8, 8) if image else (64,)
    return _standardized_split(data.data, data.target, (1078, 359, 360), seed, shape, "digits", 10)


def synth(
    n_samples: int = 30000,
    n_features: int = 64,
    n_informative: int = 20,
    n_redundant: int = 10,
    n_classes: int = 10,
    n_clusters_per_class: int = 3,
    class_sep: float = 0.8,
    flip_y: float = 0.03,
    seed: int = 0,
) -> Split:
    """``make_classification`` task of the shared testbed: not saturated, with a large test set for the
    statistical power small effects need. Split 2/3 train, 1/6 val, 1/6 test (20k/5k/5k by default)."""
    X, y = make_classification(
        n_samples=n_samples,
        n_features=n_features,
        n_informative=n_informative,
        n_redundant=n_redundant,
        n_classes=n_classes,
        n_clusters_per_class=n_clusters_per_class,
        class_sep=class_sep,
        flip_y=flip_y,
        random_state=seed,
    )
    n_val = n_test = n_samples // 6
    return _standardized_split(
        X, y, (n_samples - n_val - n_test, n_val, n_test), seed, (n_features,), "synth", n_classes
    )


def gaussian_noise(dataset: TensorDataset, sigma: float = 0.75, seed: int = 0) -> TensorDataset:
    """Out-of-distribution copy of ``dataset``: i.i.d. Gaussian noise of std ``sigma`` (in standardized
    units) added to every input, labels unchanged."""
    X, y = dataset.tensors
    g = torch.Generator()
    g.manual_seed(seed)
    return TensorDataset(X + sigma * torch.randn(X.shape, generator=g), y)


def shift_augment(images: torch.Tensor, max_shift: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Random translation of a batch of images (N, C, H, W) by up to ``max_shift`` pixels with zero
    padding, independently per image: the digits analog of CIFAR's random-crop augmentation."""
    n, _, h, w = images.shape
    padded = torch.nn.functional.pad(images, (max_shift,) * 4)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=generator)
    rows = dy[:, None] + torch.arange(h)[None, :]  # (n, h)
    cols = dx[:, None] + torch.arange(w)[None, :]  # (n, w)
    batch = torch.arange(n)[:, None, None]
    out = padded.permute(0, 2, 3, 1)[batch, rows[:, :, None], cols[:, None, :]]
    return out.permute(0, 3, 1, 2).contiguous()
