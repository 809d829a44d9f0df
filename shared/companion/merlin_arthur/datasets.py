"""The game's data sets: binarised two-class ``digits`` and discretised ``breast_cancer`` (book, no
downloads), two-class MNIST and UCI Census (Adult) read from a data root (paper profile)."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from sklearn.datasets import load_breast_cancer, load_digits

from ..data.real import MNIST_FILES, DataRootError, _read_idx, _require
from .game import FeatureData

DATASETS = ("digits", "breast_cancer", "mnist", "census")


def _balanced_split(y: np.ndarray, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Undersample the larger class to the smaller one's size (so B = 1), then a stratified split.
    Returns the kept indices and the train/test positions within them."""
    rng = np.random.default_rng(seed)
    n = min(int((y == 0).sum()), int((y == 1).sum()))
    keep = np.sort(np.concatenate([rng.permutation(np.flatnonzero(y == c))[:n] for c in (0, 1)]))
    yk = y[keep]
    test = np.sort(
        np.concatenate([rng.permutation(np.flatnonzero(yk == c))[: round(test_fraction * n)] for c in (0, 1)])
    )
    train = np.setdiff1d(np.arange(len(keep)), test)
    return keep, train, test


def _make(
    X: np.ndarray,
    y: np.ndarray,
    d: int,
    groups: np.ndarray | None,
    test_fraction: float,
    seed: int,
    name: str,
    shape=None,
) -> FeatureData:
    keep, train, test = _balanced_split(y, test_fraction, seed)
    return FeatureData(
        torch.from_numpy(X[keep].astype(np.float32)),
        torch.from_numpy(y[keep].astype(np.int64)),
        d,
        None if groups is None else torch.from_numpy(groups),
        torch.from_numpy(train),
        torch.from_numpy(test),
        name,
        shape,
    )


def upsample_images(images: np.ndarray, shape: tuple[int, int], size: int) -> np.ndarray:
    """Flattened grey-value images ``(N, H * W)`` resized to ``size x size`` by bilinear interpolation
    (``torch.nn.functional.interpolate``, ``align_corners=False``), flattened again (float64)."""
    x = torch.from_numpy(np.asarray(images, dtype=np.float64)).reshape(-1, 1, *shape)
    up = torch.nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    return up.reshape(len(x), size * size).numpy()


def binarised_digits(
    pair: tuple[int, int] = (2, 4),
    threshold: float = 8.0,
    test_fraction: float = 0.3,
    seed: int = 0,
    image_size: int = 8,
) -> FeatureData:
    """scikit-learn's 8x8 digits of two classes (relabelled 0/1), pixels binarised to ±1 (value >= threshold
    -> +1) so that 0 can mean hidden, classes balanced by undersampling, stratified train/test split.

    ``image_size`` other than 8 (the ``gpu`` profile: 16 or 24) first upsamples the grey values (0..16)
    bilinearly to ``image_size x image_size`` and then binarises at the same threshold; labels, class
    balancing and the split are those of the 8x8 data (they depend only on the labels)."""
    data = load_digits()
    sel = np.isin(data.target, pair)
    name = f"digits {pair[0]} vs {pair[1]}"
    if image_size == 8:
        X = np.where(data.data[sel] >= threshold, 1.0, -1.0)
    else:
        X = np.where(upsample_images(data.data[sel], (8, 8), image_size) >= threshold, 1.0, -1.0)
        name += f" ({image_size}x{image_size})"
    y = (data.target[sel] == pair[1]).astype(np.int64)
    return _make(X, y, image_size * image_size, None, test_fraction, seed, name, (image_size, image_size))


def one_hot_blocks(codes: np.ndarray, levels: list[int]) -> tuple[np.ndarray, np.ndarray]:
    """Categorical codes ``(N, d)`` as concatenated one-hot blocks and the column -> feature map."""
    cols = [np.eye(n)[codes[:, j]] for j, n in enumerate(levels)]
    groups = np.concatenate([np.full(n, j) for j, n in enumerate(levels)]).astype(np.int64)
    return np.concatenate(cols, 1), groups


def quantile_codes(values: np.ndarray, bins: int) -> tuple[np.ndarray, int]:
    """Codes 0..bins-1 of a continuous column by its quantiles (ties can merge bins); returns the codes
    relabelled to consecutive integers and their number."""
    edges = np.unique(np.quantile(values, np.linspace(0, 1, bins + 1)[1:-1]))
    codes = np.searchsorted(edges, values, side="right")
    _, codes = np.unique(codes, return_inverse=True)
    return codes, int(codes.max()) + 1


def discretised_breast_cancer(bins: int = 3, test_fraction: float = 0.3, seed: int = 0) -> FeatureData:
    """scikit-learn's breast cancer data (569 points, 30 features): every feature cut into ``bins`` quantile
    bins and one-hot encoded (30 blocks), classes balanced to 212/212 by undersampling."""
    data = load_breast_cancer()
    codes, levels = zip(*(quantile_codes(data.data[:, j], bins) for j in range(data.data.shape[1])))
    X, groups = one_hot_blocks(np.stack(codes, 1), list(levels))
    return _make(X, data.target.astype(np.int64), data.data.shape[1], groups, test_fraction, seed, "breast_cancer")


def binarised_mnist(
    data_root: str, pair: tuple[int, int] = (0, 1), threshold: float = 0.5, seed: int = 0, test_fraction: float = 0.15
) -> FeatureData:
    """Two MNIST classes from ``<data_root>/mnist/*.gz`` (train and test files pooled), pixels binarised to
    ±1 at ``threshold`` intensity, classes balanced, stratified split."""
    tr_x, tr_y, te_x, te_y = (
        _read_idx(f) for f in _require(Path(data_root).expanduser() / "mnist", MNIST_FILES, "MNIST")
    )
    x = np.concatenate([tr_x, te_x]).reshape(-1, 784) / 255.0
    t = np.concatenate([tr_y, te_y])
    sel = np.isin(t, pair)
    X = np.where(x[sel] >= threshold, 1.0, -1.0)
    y = (t[sel] == pair[1]).astype(np.int64)
    return _make(X, y, 784, None, test_fraction, seed, f"mnist {pair[0]} vs {pair[1]}", (28, 28))


CENSUS_COLUMNS = [
    "age",
    "workclass",
    "fnlwgt",
    "education",
    "education-num",
    "marital-status",
    "occupation",
    "relationship",
    "race",
    "sex",
    "capital-gain",
    "capital-loss",
    "hours-per-week",
    "native-country",
    "income",
]
CENSUS_CONTINUOUS = {"age", "education-num", "capital-gain", "capital-loss", "hours-per-week"}
#: dropped as in the official ``read_census_data`` (fnlwgt, education; relationship and marital-status as
#: sex-correlated), and sex itself, the target
CENSUS_DROPPED = ("fnlwgt", "education", "marital-status", "relationship", "sex")


def read_census(path: str | Path) -> tuple[list[dict[str, str]], np.ndarray]:
    """Rows of UCI Census ``adult.data`` (comma-separated, no header, ``?`` for missing; rows with a missing
    value are dropped) and the target ``sex`` (1 = Male)."""
    rows, y = [], []
    with open(path, newline="") as fh:
        for line in csv.reader(fh, skipinitialspace=True):
            if len(line) != len(CENSUS_COLUMNS) or any(v.strip() == "?" for v in line):
                continue
            row = dict(zip(CENSUS_COLUMNS, (v.strip() for v in line)))
            rows.append(row)
            y.append(1 if row["sex"] == "Male" else 0)
    return rows, np.asarray(y, dtype=np.int64)


def census(data_root: str, bins: int = 5, seed: int = 0, test_fraction: float = 0.15) -> FeatureData:
    """UCI Census (Adult) from ``<data_root>/census/adult.data``: target ``sex``, the official code's dropped
    columns plus ``sex``, categorical columns one-hot, continuous ones in ``bins`` quantile bins (one-hot),
    classes balanced by undersampling (the official code imports a random undersampler)."""
    (path,) = _require(Path(data_root).expanduser() / "census", ["adult.data"], "UCI Census")
    rows, y = read_census(path)
    if not rows:
        raise DataRootError(f"{path} holds no complete rows of the 15 adult.data columns")
    codes, levels = [], []
    for col in (c for c in CENSUS_COLUMNS if c not in CENSUS_DROPPED):
        raw = [r[col] for r in rows]
        if col in CENSUS_CONTINUOUS:
            c, n = quantile_codes(np.asarray(raw, dtype=float), bins)
        else:
            cats, c = np.unique(np.asarray(raw), return_inverse=True)
            n = len(cats)
        codes.append(c)
        levels.append(n)
    X, groups = one_hot_blocks(np.stack(codes, 1), levels)
    return _make(X, y, len(levels), groups, test_fraction, seed, "census")


def load(name: str, seed: int = 0, data_root: str = "", image_size: int | None = None, **options) -> FeatureData:
    """A game data set by name (``digits``, ``breast_cancer``; ``mnist`` and ``census`` need ``data_root``).
    ``image_size`` upsamples the digits (:func:`binarised_digits`); for the other data sets it must be
    ``None`` or their own size (28 for MNIST)."""
    if name == "digits":
        return binarised_digits(seed=seed, **options, **({} if image_size is None else {"image_size": image_size}))
    if image_size is not None and image_size != {"mnist": 28}.get(name):
        raise ValueError(f"image_size={image_size} is only available for the digits, not for {name!r}")
    if name == "breast_cancer":
        return discretised_breast_cancer(seed=seed, **options)
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; accepted: {', '.join(DATASETS)}")
    if not data_root:
        raise DataRootError(f"dataset {name!r} is read from a data root; pass data_root (--data-root DIR)")
    if name == "mnist":
        return binarised_mnist(data_root, seed=seed, **options)
    return census(data_root, seed=seed, **options)
