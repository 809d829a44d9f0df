"""The chapter's shared setting: data, model, retraining recipe, the cached pretrained model and the OOD split."""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

from torch.utils.data import Dataset

from .. import data, models
from ..data import Split, real
from ..pruning.imp import Pretrained
from ..train import evaluate
from .data import NoisyImages, cifar_c
from .sms import Recipe


@dataclass
class Testbed:
    """What every notebook of the chapter starts from."""

    split: Split
    recipe: Recipe
    pretrained: Pretrained
    cache_hit: bool
    dense_acc: float
    ood: Dataset
    settings: dict = field(default_factory=dict)
    lr: float = 0.1
    seed: int = 0

    def dense_phase(self, epochs: int, lr_schedule: str = "linear") -> tuple[Pretrained, bool]:
        """Another dense model of the same setting, trained for ``epochs`` under ``lr_schedule`` and cached like
        the chapter's pretrained one: the dense phase T₀ of BIMP (Zimmer et al., 2023, Section 4: a linear
        schedule, then IMP phases with ALLR inside the remaining budget). Returns it and whether it was a hit."""
        from . import pretrained as cached_pretrained

        return cached_pretrained(self.recipe, self.split.train, epochs, self.lr, self.seed, self.settings, lr_schedule)


def testbed(
    dataset: str,
    model_name: str,
    seed: int,
    pretrain_epochs: int,
    lr: float,
    weight_decay: float,
    batch_size: int,
    device,
    n_samples: int = 12000,
    hidden: tuple[int, ...] = (256, 256),
    ood_sigma: float = 0.75,
    data_root: str = "",
) -> Testbed:
    """Load ``dataset`` (``synth`` / ``digits`` need nothing; ``cifar10`` / ``cifar100`` and ``imagenet`` (the
    ImageFolder layout of :func:`companion.data.real.imagenet`, with ``model_name="resnet50"``) come from
    ``data_root``),
    build ``model_name`` (``mlp_bn`` with ``hidden`` on flat inputs, else a :func:`companion.models.build` network
    on images), pretrain it once through :func:`companion.soups.pretrained` (shared between the notebooks by the
    cache, whose key includes the numerical environment, so that a stand-in for another CPU pretrains anew) and
    build the OOD split: CIFAR-C ``gaussian_noise`` at severity 3 for CIFAR, else the test split plus
    Gaussian noise of std ``ood_sigma`` (:func:`companion.data.gaussian_noise`; :class:`NoisyImages` for
    ImageNet, which the paper does not evaluate out of distribution)."""
    from . import pretrained as cached_pretrained

    if dataset == "imagenet":  # read lazily from JPEG folders: no tensors in memory
        split, shape = real.imagenet(data_root, seed=seed), (3, 224, 224)
    else:
        options = {"n_samples": n_samples} if dataset == "synth" else {}
        split = data.load(dataset, seed=seed, data_root=data_root, image=model_name != "mlp_bn", **options)
        shape = split.input_shape
    if model_name == "mlp_bn":
        net = functools.partial(models.mlp_bn, shape[0], tuple(hidden), split.num_classes)
    else:
        net = functools.partial(models.build, model_name, in_channels=shape[0], num_classes=split.num_classes)
    recipe = Recipe(net, weight_decay=weight_decay, batch_size=batch_size, device=str(device))
    settings = {
        "dataset": dataset,
        "n_samples": n_samples if dataset == "synth" else None,
        "model": model_name,
        "hidden": list(hidden) if model_name == "mlp_bn" else None,
        "batch_size": batch_size,
        "weight_decay": weight_decay,
        "device": str(device),
    }
    pre, hit = cached_pretrained(recipe, split.train, pretrain_epochs, lr, seed, settings)
    model = net()
    model.load_state_dict(pre.state_dict)
    dense_acc = evaluate(model.to(device), split.test, device)["acc"]
    if dataset in ("cifar10", "cifar100"):
        ood = cifar_c(data_root, classes=split.num_classes, seed=seed)
    elif dataset == "imagenet":
        ood = NoisyImages(split.test, ood_sigma, seed=seed)
    else:
        ood = data.gaussian_noise(split.test, ood_sigma, seed=seed)
    return Testbed(split, recipe, pre, hit, dense_acc, ood, settings, lr, seed)
