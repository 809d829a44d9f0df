"""Loaders of the papers' real datasets for the ``paper`` profile, read from a data root.

Nothing is downloaded. When a file is missing the loader raises :class:`DataRootError` naming every
missing file and where it must go, e.g. ``<root>/mnist/train-images-idx3-ubyte.gz``.
"""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from .loaders import Split


class DataRootError(FileNotFoundError):
    """A dataset the ``paper`` profile needs is not under the data root."""


def _require(root: Path, names: list[str], what: str) -> list[Path]:
    files = [root / n for n in names]
    missing = [str(f) for f in files if not f.exists()]
    if missing:
        raise DataRootError(
            f"{what} not found: missing {', '.join(missing)} (put the original files there; nothing is downloaded)"
        )
    return files


def _read_idx(path: Path) -> np.ndarray:
    """Read an IDX file (the MNIST format: big-endian magic, dims, then unsigned bytes), gzipped or not."""
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as fh:
        raw = fh.read()
    if raw[0] != 0 or raw[1] != 0 or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">i4", count=ndim, offset=4)
    return np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim).reshape(tuple(int(d) for d in dims))


MNIST_FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]


def mnist(
    data_root: str | Path, variant: str = "mnist", n_val: int = 5000, seed: int = 0, flatten: bool = True
) -> Split:
    """MNIST or Fashion-MNIST (``variant="fashion-mnist"``) from ``<data_root>/<variant>/*.gz``.

    The last ``n_val`` training images (after a seeded shuffle) form the validation split; inputs are scaled
    to [0, 1] and standardized with the training mean and std."""
    folder = Path(data_root).expanduser() / variant
    xtr, ytr, xte, yte = (_read_idx(f) for f in _require(folder, MNIST_FILES, variant))
    order = np.random.default_rng(seed).permutation(len(xtr))
    xtr, ytr = xtr[order], ytr[order]
    xtr, xte = xtr.astype(np.float32) / 255.0, xte.astype(np.float32) / 255.0
    mean, std = float(xtr[:-n_val].mean()), float(xtr[:-n_val].std())

    def ds(x, y):
        x = (x - mean) / std
        x = x.reshape(len(x), -1) if flatten else x[:, None]
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(x)), torch.from_numpy(y.astype(np.int64)))

    return Split(ds(xtr[:-n_val], ytr[:-n_val]), ds(xtr[-n_val:], ytr[-n_val:]), ds(xte, yte), 10, variant)


def cifar(data_root: str | Path, classes: int = 10, n_val: int = 5000, seed: int = 0) -> Split:
    """CIFAR-10 or CIFAR-100 from the official "python version" folders under the data root
    (``cifar-10-batches-py/`` or ``cifar-100-python/``), standardized per channel with train statistics."""
    root = Path(data_root).expanduser()
    if classes == 10:
        folder = root / "cifar-10-batches-py"
        train_names, test_names, label_key = [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"], b"labels"
    elif classes == 100:
        folder = root / "cifar-100-python"
        train_names, test_names, label_key = ["train"], ["test"], b"fine_labels"
    else:
        raise ValueError(f"CIFAR has 10 or 100 classes, not {classes}")
    files = _require(folder, train_names + test_names, f"CIFAR-{classes}")

    def read(paths):
        xs, ys = [], []
        for p in paths:
            with open(p, "rb") as fh:
                d = pickle.load(fh, encoding="bytes")
            xs.append(np.asarray(d[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            ys.append(np.asarray(d[label_key], dtype=np.int64))
        return np.concatenate(xs).astype(np.float32) / 255.0, np.concatenate(ys)

    xtr, ytr = read(files[: len(train_names)])
    xte, yte = read(files[len(train_names) :])
    order = np.random.default_rng(seed).permutation(len(xtr))
    xtr, ytr = xtr[order], ytr[order]
    mean = xtr[:-n_val].mean(axis=(0, 2, 3), keepdims=True)
    std = xtr[:-n_val].std(axis=(0, 2, 3), keepdims=True)

    def ds(x, y):
        return TensorDataset(torch.from_numpy(((x - mean) / std).astype(np.float32)), torch.from_numpy(y))

    return Split(
        ds(xtr[:-n_val], ytr[:-n_val]), ds(xtr[-n_val:], ytr[-n_val:]), ds(xte, yte), classes, f"cifar{classes}"
    )


IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
IMAGE_SUFFIXES = (".jpeg", ".jpg", ".png")


class ImageFolder(torch.utils.data.Dataset):
    """Images of ``<folder>/<class>/*.JPEG`` read lazily with PIL, as (3, size, size) float tensors: the shorter
    side resized to ``resize`` (bilinear), the centre ``size`` × ``size`` crop, scaled to [0, 1] and standardized
    per channel with ``mean`` / ``std`` (the evaluation transform of the ImageNet reference recipes; no
    augmentation). ``classes`` fixes the class order (default: the sorted sub-folder names); ``items`` are the
    (path, label) pairs in sorted order."""

    def __init__(
        self,
        folder: str | Path,
        classes: list[str] | None = None,
        size: int = 224,
        resize: int = 256,
        mean: tuple[float, ...] = IMAGENET_MEAN,
        std: tuple[float, ...] = IMAGENET_STD,
    ):
        self.folder = Path(folder)
        self.classes = classes if classes is not None else sorted(p.name for p in self.folder.iterdir() if p.is_dir())
        self.items = [
            (p, label)
            for label, name in enumerate(self.classes)
            for p in sorted((self.folder / name).iterdir() if (self.folder / name).is_dir() else ())
            if p.suffix.lower() in IMAGE_SUFFIXES
        ]
        self.size, self.resize = size, resize
        self.mean = torch.tensor(mean, dtype=torch.float32).view(3, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(3, 1, 1)

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        from PIL import Image

        path, label = self.items[i]
        with Image.open(path) as im:
            im = im.convert("RGB")
            w, h = im.size
            scale = self.resize / min(w, h)
            im = im.resize((max(self.size, round(w * scale)), max(self.size, round(h * scale))), Image.BILINEAR)
            w, h = im.size
            left, top = (w - self.size) // 2, (h - self.size) // 2
            im = im.crop((left, top, left + self.size, top + self.size))
            x = torch.from_numpy(np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 255.0)
        return (x - self.mean) / self.std, label


def imagenet(data_root: str | Path, n_val: int = 10000, seed: int = 0, size: int = 224, resize: int = 256) -> Split:
    """ImageNet (ILSVRC-2012) in the ImageFolder layout under ``<data_root>/imagenet/``: ``train/<wnid>/*.JPEG``
    and ``val/<wnid>/*.JPEG`` (the validation images sorted into one folder per class, as the PyTorch reference
    scripts expect). The official validation set is the test split (the papers report it); ``n_val`` training
    images held out after a seeded shuffle are the validation split. Images are read lazily (:class:`ImageFolder`,
    centre crop, no augmentation), so the splits are ``Subset`` / ``ImageFolder`` datasets, not tensors."""
    folder = Path(data_root).expanduser() / "imagenet"
    train_dir, val_dir = _require(folder, ["train", "val"], "ImageNet")
    train = ImageFolder(train_dir, size=size, resize=resize)
    test = ImageFolder(val_dir, classes=train.classes, size=size, resize=resize)
    if not train.items or not test.items:
        empty = [str(d) for d, ds in ((train_dir, train), (val_dir, test)) if not ds.items]
        raise DataRootError(f"ImageNet not found: no images in {', '.join(empty)} (expected <wnid>/*.JPEG)")
    if not 0 <= n_val < len(train):
        raise ValueError(f"n_val must be in [0, {len(train)}), got {n_val}")
    order = np.random.default_rng(seed).permutation(len(train)).tolist()
    cut = len(order) - n_val
    subset = torch.utils.data.Subset
    return Split(subset(train, order[:cut]), subset(train, order[cut:]), test, len(train.classes), "imagenet")
