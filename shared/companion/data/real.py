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
    if not 0 <= n_val < len(xtr):
        raise ValueError(f"n_val must be in [0, {len(xtr)}) for CIFAR-{classes}, got {n_val}")
    order = np.random.default_rng(seed).permutation(len(xtr))
    xtr, ytr = xtr[order], ytr[order]
    cut = len(xtr) - n_val
    mean = xtr[:cut].mean(axis=(0, 2, 3), keepdims=True)
    std = xtr[:cut].std(axis=(0, 2, 3), keepdims=True)

    def ds(x, y):
        return TensorDataset(torch.from_numpy(((x - mean) / std).astype(np.float32)), torch.from_numpy(y))

    return Split(ds(xtr[:cut], ytr[:cut]), ds(xtr[cut:], ytr[cut:]), ds(xte, yte), classes, f"cifar{classes}")


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


STL10_FILES = {
    "train": ("train_X.bin", "train_y.bin"),
    "test": ("test_X.bin", "test_y.bin"),
    "unlabeled": ("unlabeled_X.bin", None),
}
STL10_SIDE = 96


def stl10(data_root: str | Path, split: str = "unlabeled", size: int = 32, limit: int | None = None) -> TensorDataset:
    """STL-10 from the official binary folder ``<data_root>/stl10_binary/`` (``train_X.bin``, ``train_y.bin``,
    ``test_X.bin``, ``test_y.bin``, ``unlabeled_X.bin``): the public set of the CIFAR experiments of
    Roux et al. (2024, official code ``public_config.py``).

    Every image is 3 x 96 x 96 unsigned bytes, each channel stored column by column (the official
    ``read_all_images`` transposes the last two axes); the label files hold one byte per image, 1 to 10.
    Returns images ``[N, 3, size, size]`` in [0, 1], average-pooled from 96 by the factor ``96 // size``
    (``size`` must divide 96; 32 matches CIFAR), with labels 0 to 9 for ``train`` and ``test`` (images only
    for ``unlabeled``). ``limit`` reads only the first images (the unlabeled file holds 100 000, 2.7 GB);
    the file is memory-mapped and pooled in chunks."""
    if split not in STL10_FILES:
        raise ValueError(f"STL-10 split must be one of {', '.join(STL10_FILES)}, not {split!r}")
    if STL10_SIDE % size:
        raise ValueError(f"size must divide {STL10_SIDE}, not {size}")
    x_name, y_name = STL10_FILES[split]
    files = _require(Path(data_root).expanduser() / "stl10_binary", [n for n in (x_name, y_name) if n], "STL-10")
    per_image = 3 * STL10_SIDE * STL10_SIDE
    raw = np.memmap(files[0], dtype=np.uint8, mode="r")
    if raw.size % per_image:
        raise ValueError(f"{files[0]} holds {raw.size} bytes, not a multiple of one image ({per_image})")
    n = raw.size // per_image if limit is None else min(limit, raw.size // per_image)
    images = raw[: n * per_image].reshape(n, 3, STL10_SIDE, STL10_SIDE)
    factor, out = STL10_SIDE // size, []
    for start in range(0, n, 2048):
        chunk = torch.from_numpy(np.ascontiguousarray(images[start : start + 2048].transpose(0, 1, 3, 2)))
        chunk = chunk.float() / 255.0
        out.append(torch.nn.functional.avg_pool2d(chunk, factor) if factor > 1 else chunk)
    x = torch.cat(out) if out else torch.zeros(0, 3, size, size)
    if y_name is None:
        return TensorDataset(x)
    y = np.fromfile(files[1], dtype=np.uint8)[:n].astype(np.int64) - 1
    if len(y) != n or y.min(initial=0) < 0 or y.max(initial=0) > 9:
        raise ValueError(f"{files[1]} does not hold one label 1-10 per image of {files[0]}")
    return TensorDataset(x, torch.from_numpy(y))


CINIC10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
CINIC10_SPLITS = ("train", "valid", "test")


def cinic10_images(data_root: str | Path, split: str = "train", limit_per_class: int | None = None):
    """The images of one CINIC-10 split from the official PNG folders ``<data_root>/cinic-10/<split>/<class>/*.png``
    (classes in CIFAR-10's order, which is alphabetical): ``(x, y)`` with ``x`` ``[N, 3, 32, 32]`` float in
    [0, 1] (grey-scale PNGs are converted to RGB) and ``y`` the class indices. Files are read in sorted
    order; ``limit_per_class`` keeps the first files of every class."""
    from PIL import Image

    if split not in CINIC10_SPLITS:
        raise ValueError(f"CINIC-10 split must be one of {', '.join(CINIC10_SPLITS)}, not {split!r}")
    folder = Path(data_root).expanduser() / "cinic-10" / split
    dirs = _require(folder, list(CINIC10_CLASSES), f"CINIC-10 {split}")
    xs, ys = [], []
    for label, d in enumerate(dirs):
        files = sorted(d.glob("*.png"))[:limit_per_class]
        for f in files:
            with Image.open(f) as im:
                xs.append(np.asarray(im.convert("RGB"), dtype=np.uint8))
        ys += [label] * len(files)
    if not xs:
        raise DataRootError(f"CINIC-10 {split}: no PNG files under {folder}/<class>/")
    x = torch.from_numpy(np.stack(xs)).permute(0, 3, 1, 2).float() / 255.0
    return x, torch.tensor(ys, dtype=torch.long)


def cinic10(data_root: str | Path, limit_per_class: int | None = None) -> Split:
    """CINIC-10 (train / valid / test, 90 000 images each) from ``<data_root>/cinic-10/`` via
    :func:`cinic10_images`, standardized per channel with the training statistics, as :func:`cifar`."""
    parts = [cinic10_images(data_root, s, limit_per_class) for s in CINIC10_SPLITS]
    mean = parts[0][0].mean(dim=(0, 2, 3), keepdim=True)
    std = parts[0][0].std(dim=(0, 2, 3), keepdim=True, correction=0).clamp_min(1e-6)
    train, val, test = (TensorDataset((x - mean) / std, y) for x, y in parts)
    return Split(train, val, test, 10, "cinic10")
