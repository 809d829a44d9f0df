"""The ``paper`` profile's ImageNet pieces: the loader (companion.data.real.imagenet) on small JPEG folders the test
writes, and ResNet-50 (companion.models.resnet50)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from companion import models
from companion.data import DataRootError, real
from PIL import Image


def write_imagenet(root, wnids=("n01440764", "n01443537"), per_class=(3, 2), size=(40, 30)):
    """``root/imagenet/{train,val}/<wnid>/*.JPEG``; class c's images are filled with grey level 60 + 120 c."""
    for part, n in zip(("train", "val"), per_class):
        for c, wnid in enumerate(wnids):
            folder = root / "imagenet" / part / wnid
            folder.mkdir(parents=True)
            for i in range(n):
                Image.new("RGB", size, (60 + 120 * c,) * 3).save(folder / f"{wnid}_{i}.JPEG", quality=95)
    return root


def test_imagenet_folder_layout(tmp_path):
    split = real.imagenet(write_imagenet(tmp_path), n_val=2, seed=0, size=16, resize=20)
    assert split.num_classes == 2 and split.name == "imagenet"
    assert (len(split.train), len(split.val), len(split.test)) == (4, 2, 4)
    x, y = split.test[0]
    assert x.shape == (3, 16, 16) and x.dtype == torch.float32 and y == 0
    # a flat grey JPEG of level 60 standardized with the ImageNet statistics (JPEG may move a level or two)
    expected = (60 / 255 - torch.tensor(real.IMAGENET_MEAN)) / torch.tensor(real.IMAGENET_STD)
    assert torch.allclose(x.mean(dim=(1, 2)), expected, atol=0.05)
    labels = sorted(split.test[i][1] for i in range(len(split.test)))
    assert labels == [0, 0, 1, 1]
    # the validation split is held out of train: together they are the training folder, without overlap
    train_paths = {split.train.dataset.items[i][0] for i in split.train.indices}
    val_paths = {split.val.dataset.items[i][0] for i in split.val.indices}
    assert not train_paths & val_paths and len(train_paths | val_paths) == 6


def test_imagenet_crop_keeps_aspect(tmp_path):
    """The shorter side is resized, then the centre is cropped: a wide image with a dark left half and a bright
    right half keeps both halves in the crop."""
    folder = tmp_path / "imagenet"
    for part in ("train", "val"):
        (folder / part / "n0").mkdir(parents=True)
        arr = np.zeros((20, 60, 3), dtype=np.uint8)
        arr[:, 30:] = 255
        Image.fromarray(arr).save(folder / part / "n0" / "a.png")
    split = real.imagenet(tmp_path, n_val=0, size=10, resize=10)
    x, _ = split.test[0]
    assert x[0, :, :3].mean() < 0 < x[0, :, -3:].mean()


def test_imagenet_missing_files_named(tmp_path):
    with pytest.raises(DataRootError, match=r"imagenet/train.*imagenet/val"):
        real.imagenet(tmp_path)
    (tmp_path / "imagenet" / "train" / "n0").mkdir(parents=True)
    (tmp_path / "imagenet" / "val").mkdir(parents=True)
    with pytest.raises(DataRootError, match="no images in"):
        real.imagenet(tmp_path)


def test_resnet50_layout():
    """The torchvision reference layout: 25 557 032 parameters for 1000 classes, 53 convolutions (49 in the
    blocks and the stem, 4 projections), stride 32 overall."""
    model = models.build("resnet50")
    assert models.num_parameters(model) == 25_557_032
    assert sum(isinstance(m, torch.nn.Conv2d) for m in model.modules()) == 53
    model.eval()
    with torch.no_grad():
        feats = model.blocks(model.stem(torch.zeros(1, 3, 64, 64)))
        out = model(torch.zeros(2, 3, 64, 64))
    assert feats.shape == (1, 2048, 2, 2) and out.shape == (2, 1000)


def test_noisy_images_is_deterministic_per_item():
    from companion.soups import NoisyImages

    base = torch.utils.data.TensorDataset(torch.zeros(3, 3, 32, 32), torch.tensor([0, 1, 2]))
    noisy = NoisyImages(base, sigma=0.5, seed=1)
    x0, y0 = noisy[0]
    assert len(noisy) == 3 and y0 == 0
    assert torch.equal(x0, noisy[0][0]) and not torch.equal(x0, noisy[1][0])
    assert not torch.equal(x0, NoisyImages(base, sigma=0.5, seed=2)[0][0])
    assert abs(float(x0.std()) - 0.5) < 0.05
