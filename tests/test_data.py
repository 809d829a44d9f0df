"""Datasets: fixed splits, standardization, augmentation, OOD noise, and the paper-profile loaders."""

from __future__ import annotations

import gzip
import pickle

import numpy as np
import pytest
import torch
from companion import data


def test_digits_split_is_stratified_standardized_and_fixed():
    a, b = data.digits(seed=0), data.digits(seed=0)
    assert a.sizes() == (1078, 359, 360) and a.input_shape == (64,)
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    X, y = a.train.tensors
    varying = X.std(0) > 0
    assert torch.allclose(X.mean(0), torch.zeros(64), atol=1e-5)
    assert torch.allclose(X.std(0, unbiased=False)[varying], torch.ones(int(varying.sum())), atol=1e-4)
    counts = torch.bincount(a.test.tensors[1], minlength=10)
    assert counts.min() >= 35 and counts.max() <= 37  # 360 test samples, stratified over 10 classes
    assert data.digits(image=True).input_shape == (1, 8, 8)


def test_synth_sizes_and_determinism():
    s = data.synth(n_samples=1200, seed=3)
    assert s.sizes() == (800, 200, 200) and s.num_classes == 10
    assert torch.equal(s.val.tensors[0], data.synth(n_samples=1200, seed=3).val.tensors[0])


def test_gaussian_noise_keeps_labels_and_has_requested_std():
    s = data.synth(n_samples=6000)
    noisy = data.gaussian_noise(s.test, sigma=0.5, seed=1)
    diff = noisy.tensors[0] - s.test.tensors[0]
    assert torch.equal(noisy.tensors[1], s.test.tensors[1])
    assert abs(diff.std().item() - 0.5) < 0.01


def test_shift_augment_translates_by_at_most_one_pixel():
    img = torch.zeros(50, 1, 8, 8)
    img[:, 0, 3, 4] = 1.0
    g = torch.Generator().manual_seed(0)
    out = data.shift_augment(img, 1, g)
    rows, cols = torch.nonzero(out[:, 0], as_tuple=True)[1:]
    assert out.sum().item() == 50  # the single pixel never leaves the 8x8 frame here
    assert rows.min() >= 2 and rows.max() <= 4 and cols.min() >= 3 and cols.max() <= 5
    assert len(set(zip(rows.tolist(), cols.tolist()))) > 1


def test_batches_cover_the_dataset_once_per_epoch():
    s = data.digits()
    g = torch.Generator().manual_seed(0)
    seen = torch.cat([y for _, y in data.batches(s.train, 100, shuffle=True, generator=g)])
    assert len(seen) == 1078 and torch.equal(seen.sort().values, s.train.tensors[1].sort().values)


def _write_idx(path, array):
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    with gzip.open(path, "wb") as fh:
        fh.write(header + array.astype(np.uint8).tobytes())


def test_mnist_loader_reads_idx_files(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    _write_idx(folder / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (30, 28, 28)))
    _write_idx(folder / "train-labels-idx1-ubyte.gz", np.arange(30) % 10)
    _write_idx(folder / "t10k-images-idx3-ubyte.gz", rng.integers(0, 256, (10, 28, 28)))
    _write_idx(folder / "t10k-labels-idx1-ubyte.gz", np.arange(10))
    split = data.mnist(tmp_path, n_val=5)
    assert split.sizes() == (25, 5, 10) and split.input_shape == (784,)
    assert torch.equal(split.test.tensors[1], torch.arange(10))


def test_missing_data_names_every_missing_file(tmp_path):
    with pytest.raises(data.DataRootError) as info:
        data.mnist(tmp_path)
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message and "t10k-labels-idx1-ubyte.gz" in message
    assert str(tmp_path / "mnist") in message


def test_cifar_loader_reads_python_batches(tmp_path):
    folder = tmp_path / "cifar-100-python"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for name, n in (("train", 20), ("test", 8)):
        batch = {b"data": rng.integers(0, 256, (n, 3072)).astype(np.uint8), b"fine_labels": list(range(n))}
        with open(folder / name, "wb") as fh:
            pickle.dump(batch, fh)
    split = data.cifar(tmp_path, classes=100, n_val=4)
    assert split.sizes() == (16, 4, 8) and split.input_shape == (3, 32, 32) and split.num_classes == 100
    assert torch.allclose(split.train.tensors[0].mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    # No validation split: every training image stays in train; more than there is: a clear error.
    assert data.cifar(tmp_path, classes=100, n_val=0).sizes() == (20, 0, 8)
    with pytest.raises(ValueError, match=r"n_val must be in \[0, 20\)"):
        data.cifar(tmp_path, classes=100, n_val=20)


def test_load_by_name():
    assert data.load("digits", image=True).input_shape == (1, 8, 8)
    assert data.load("synth", n_samples=600).sizes() == (400, 100, 100)
    with pytest.raises(ValueError, match="unknown dataset 'imagenet'"):
        data.load("imagenet")
    with pytest.raises(data.DataRootError, match="pass data_root"):
        data.load("cifar10")
