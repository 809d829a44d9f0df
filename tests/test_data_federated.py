"""Loaders of the kd-fl-byzantine paper profile (STL-10 binary, CINIC-10 PNG folders) on small files in the
official layouts, written by the tests, and the federated task built from them."""

import numpy as np
import pytest
import torch
from companion.data import real
from PIL import Image


def _stl_images(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(n, 3, 96, 96), dtype=np.uint8)


def _write_stl(root, split, images, labels=None):
    folder = root / "stl10_binary"
    folder.mkdir(parents=True, exist_ok=True)
    x_name, y_name = real.STL10_FILES[split]
    # the official layout: per image and channel, the 96 x 96 pixels column by column
    np.ascontiguousarray(images.transpose(0, 1, 3, 2)).tofile(folder / x_name)
    if y_name:
        np.asarray(labels, dtype=np.uint8).tofile(folder / y_name)


def test_stl10_reads_the_column_major_layout_and_labels(tmp_path):
    images = _stl_images(5)
    images[0, 0, 0, :] = 255  # the first row of the red channel of the first image
    images[0, 0, 1:, :] = 0
    _write_stl(tmp_path, "train", images, [1, 2, 10, 4, 5])
    ds = real.stl10(tmp_path, "train", size=96)
    x, y = ds.tensors
    assert x.shape == (5, 3, 96, 96) and y.tolist() == [0, 1, 9, 3, 4]
    assert torch.equal(x, torch.from_numpy(images).float() / 255.0)
    assert torch.all(x[0, 0, 0] == 1.0) and torch.all(x[0, 0, 1:, 0] == 0.0)  # a row, not a column


def test_stl10_pools_to_32_and_limits_the_unlabeled_split(tmp_path):
    images = _stl_images(7, seed=1)
    _write_stl(tmp_path, "unlabeled", images)
    (x,) = real.stl10(tmp_path, "unlabeled", size=32, limit=4).tensors
    ref = torch.nn.functional.avg_pool2d(torch.from_numpy(images[:4]).float() / 255.0, 3)
    assert x.shape == (4, 3, 32, 32) and torch.allclose(x, ref, atol=1e-6)
    # a block of 3 x 3 pixels is averaged: check one by hand
    assert abs(float(x[1, 2, 5, 7]) - images[1, 2, 15:18, 21:24].mean() / 255.0) < 1e-6


def test_stl10_missing_files_name_them(tmp_path):
    with pytest.raises(real.DataRootError, match="stl10_binary/test_X.bin"):
        real.stl10(tmp_path, "test")
    _write_stl(tmp_path, "test", _stl_images(2), [1, 11])
    with pytest.raises(ValueError, match="label"):
        real.stl10(tmp_path, "test")
    with pytest.raises(ValueError, match="divide"):
        real.stl10(tmp_path, "test", size=30)


def _write_cinic(root, per_class=2, seed=0):
    rng = np.random.default_rng(seed)
    truth = {}
    for split in real.CINIC10_SPLITS:
        xs, ys = [], []
        for label, name in enumerate(real.CINIC10_CLASSES):
            d = root / "cinic-10" / split / name
            d.mkdir(parents=True)
            for k in range(per_class):
                img = rng.integers(0, 256, size=(32, 32, 3), dtype=np.uint8)
                if k == 1 and label == 3:  # CINIC-10 holds a few grey-scale PNGs
                    img = np.repeat(img[..., :1], 3, axis=2)
                    Image.fromarray(img[..., 0], mode="L").save(d / f"n{k:04d}.png")
                else:
                    Image.fromarray(img).save(d / f"n{k:04d}.png")
                xs.append(img)
                ys.append(label)
        truth[split] = (np.stack(xs), np.array(ys))
    return truth


def test_cinic10_reads_png_folders_in_class_order(tmp_path):
    truth = _write_cinic(tmp_path)
    x, y = real.cinic10_images(tmp_path, "valid")
    ref_x, ref_y = truth["valid"]
    assert x.shape == (20, 3, 32, 32) and y.tolist() == ref_y.tolist()
    assert torch.equal(x, torch.from_numpy(ref_x).permute(0, 3, 1, 2).float() / 255.0)
    x1, y1 = real.cinic10_images(tmp_path, "test", limit_per_class=1)
    assert y1.tolist() == list(range(10))
    split = real.cinic10(tmp_path)
    xt = split.train.tensors[0]
    assert split.num_classes == 10 and len(split.val) == 20 and len(split.test) == 20
    assert torch.allclose(xt.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    assert torch.allclose(xt.std(dim=(0, 2, 3), correction=0), torch.ones(3), atol=1e-4)


def test_cinic10_missing_folders_name_them(tmp_path):
    with pytest.raises(real.DataRootError, match="cinic-10/train/airplane"):
        real.cinic10_images(tmp_path, "train")


def _write_cifar10(root, per_batch=4, seed=0):
    import pickle

    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        data = rng.integers(0, 256, size=(per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": rng.integers(0, 10, per_batch).tolist()}, fh)


def test_paper_task_cifar10_with_stl10_public_set(tmp_path):
    from companion.federated.data import make_task, paper_task

    _write_cifar10(tmp_path)
    _write_stl(tmp_path, "unlabeled", _stl_images(6))
    task = paper_task("cifar10", str(tmp_path), n_val=2, public_limit=5)
    assert task.x_private.shape == (20, 3072) and len(task.y_private) == 20  # train + held-out images
    assert task.x_public.shape == (5, 3072) and torch.all(task.public_y == -1)
    assert task.x_test.shape == (4, 3072) and task.num_classes == 10 and task.in_features == 3072
    pub = task.x_public.view(5, 3, 32, 32)
    assert torch.allclose(pub.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-5)
    with pytest.raises(ValueError, match="already a shifted set"):
        make_task("cifar10", 0, shifted_public=True, data_root=str(tmp_path))


def test_paper_task_cinic10_and_a_missing_root(tmp_path):
    from companion.federated.data import make_task, paper_task

    _write_cinic(tmp_path, per_class=1)
    task = paper_task("cinic10", str(tmp_path), public_limit=7)
    assert task.x_private.shape == (10, 3072) and task.x_public.shape == (7, 3072)
    assert task.public_y.tolist() == list(range(7))  # the validation labels, kept only to measure
    again = make_task("cinic10", 0, data_root=str(tmp_path), public_limit=7)
    assert torch.equal(again.x_public, task.x_public) and torch.equal(again.x_private, task.x_private)
    with pytest.raises(real.DataRootError, match="cifar-100-python/train"):
        paper_task("cifar100", str(tmp_path / "nothing"))


def test_the_round_loop_runs_on_a_paper_task(tmp_path):
    from companion.federated import loop
    from companion.federated.data import paper_task

    _write_cifar10(tmp_path)
    _write_stl(tmp_path, "unlabeled", _stl_images(6))
    task = paper_task("cifar10", str(tmp_path), n_val=2)
    cfg = loop.FLConfig(n_clients=4, alpha=0.25, attack="LMA", defence="ExpGuard", rounds=1, hidden=(8,))
    out = loop.run(task, cfg)
    assert len(out["acc"]) == 2 and out["weights"].shape == (1, 4)
