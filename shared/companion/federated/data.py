"""Data of the federated setting (paper Sec. 2 and the official code's ``BaseRunner``): a labelled private
set split over the clients, an unlabelled public set on which predictions are exchanged, and a test set.

The book's CPU analog uses scikit-learn's digits (test 20 %, public 30 %, private 50 %) and a
``make_classification`` task; the public set may be *shifted* (translations by one pixel and Gaussian
noise), as STL-10 stands in for CIFAR-10 in the paper.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from sklearn.datasets import load_digits, make_classification
from sklearn.model_selection import train_test_split

from ..data import shift_augment

TASKS = ("digits", "synth")
PAPER_TASKS = {"cifar10": "STL-10", "cifar100": "STL-10", "cinic10": "the CINIC-10 validation set"}
"""The paper's data sets (read by :func:`paper_task` from a data root) and their public sets."""


@dataclass
class FederatedTask:
    """Tensors of one federated task: private inputs/labels, the unlabelled public inputs, test set, and
    ``num_classes``. ``public_y`` is kept only to measure things (it is never used for training)."""

    x_private: torch.Tensor
    y_private: torch.Tensor
    x_public: torch.Tensor
    public_y: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    num_classes: int
    name: str

    @property
    def in_features(self) -> int:
        return int(self.x_private.shape[1])


def iid_partition(n_samples: int, n_clients: int, generator: torch.Generator) -> list[torch.Tensor]:
    """Indices of a uniformly random split into ``n_clients`` parts of equal size; the remainder goes to
    the first client (as in the official code, where client 1 gets it)."""
    perm = torch.randperm(n_samples, generator=generator)
    size = n_samples // n_clients
    parts = [perm[i * size : (i + 1) * size] for i in range(n_clients)]
    parts[0] = torch.cat([parts[0], perm[n_clients * size :]])
    return parts


def dirichlet_partition(
    labels: torch.Tensor, n_clients: int, beta: float, generator: torch.Generator
) -> list[torch.Tensor]:
    """Non-IID split: for every class, the shares of its samples over the clients are drawn from
    ``Dirichlet(beta, ..., beta)`` (small ``beta``: each client sees few classes). Clients may be empty."""
    rng = np.random.default_rng(int(torch.randint(0, 2**31 - 1, (1,), generator=generator)))
    parts: list[list[int]] = [[] for _ in range(n_clients)]
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=generator)].tolist()
        shares = rng.dirichlet([beta] * n_clients)
        cuts = (np.cumsum(shares)[:-1] * len(idx)).round().astype(int)
        for i, chunk in enumerate(np.split(np.array(idx, dtype=np.int64), cuts)):
            parts[i].extend(chunk.tolist())
    return [torch.tensor(sorted(p), dtype=torch.long) for p in parts]


def shift_public(x: torch.Tensor, image_shape: tuple[int, int] | None, sigma: float, seed: int) -> torch.Tensor:
    """The shifted public set: each image translated by up to one pixel (zero padding) when
    ``image_shape`` is given, then Gaussian noise of std ``sigma`` added to every input."""
    g = torch.Generator()
    g.manual_seed(seed)
    if image_shape is not None:
        x = shift_augment(x.reshape(-1, 1, *image_shape), 1, generator=g).reshape(len(x), -1)
    return x + sigma * torch.randn(x.shape, generator=g)


def make_task(
    name: str = "digits",
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.5, 0.3, 0.2),
    shifted_public: bool = False,
    shift_sigma: float = 0.05,
    n_samples: int = 3000,
    n_features: int = 32,
    n_classes: int = 10,
    data_root: str = "",
    public_limit: int | None = None,
) -> FederatedTask:
    """Private / public / test split of ``digits`` (pixels scaled to [0, 1]) or of a
    ``make_classification`` task (``synth``: ``n_samples`` x ``n_features``), standardised with the private
    set's statistics (per feature for ``synth``, one scalar for the digits pixels), stratified by class, fixed by ``seed``. ``fractions`` = (private, public, test).

    ``shifted_public`` shifts the public inputs (:func:`shift_public`): one-pixel translations and noise of
    std ``shift_sigma`` on digits; noise of std ``4 * shift_sigma`` on the standardised ``synth`` features
    (which have no pixels to translate), both before standardisation.

    ``cifar10``, ``cifar100`` and ``cinic10`` are the paper's data sets, read from ``data_root`` by
    :func:`paper_task` (``public_limit``: how many public images to read)."""
    if name in PAPER_TASKS:
        if shifted_public:
            raise ValueError(f"{name}'s public set is {PAPER_TASKS[name]}, already a shifted set")
        return paper_task(name, data_root, seed, public_limit)
    if name == "digits":
        d = load_digits()
        X, y, image = d.data / 16.0, d.target, (8, 8)
    elif name == "synth":
        X, y = make_classification(
            n_samples=n_samples,
            n_features=n_features,
            n_informative=n_features // 2,
            n_redundant=n_features // 4,
            n_classes=n_classes,
            n_clusters_per_class=1,
            class_sep=2.0,
            flip_y=0.02,
            random_state=seed,
        )
        image = None
    else:
        raise ValueError(f"unknown task {name!r}; accepted: {', '.join(TASKS + tuple(PAPER_TASKS))}")
    private, public, test = fractions
    X_priv, X_rest, y_priv, y_rest = train_test_split(X, y, train_size=private, stratify=y, random_state=seed)
    X_pub, X_test, y_pub, y_test = train_test_split(
        X_rest, y_rest, train_size=public / (public + test), stratify=y_rest, random_state=seed
    )

    def t(a, dtype=torch.float32):
        return torch.as_tensor(np.asarray(a), dtype=dtype)

    x_priv, x_pub, x_test = t(X_priv), t(X_pub), t(X_test)
    if shifted_public:
        sigma = shift_sigma if name == "digits" else 4 * shift_sigma
        x_pub = shift_public(x_pub, image, sigma, seed)
    # Standardise every input with the private set's statistics: per feature for synth, one scalar for the
    # digits images (per-pixel statistics would blow up the almost constant border pixels of a shifted image).
    if image is None:
        mean, std = x_priv.mean(0), x_priv.std(0).clamp_min(1e-6)
    else:
        mean, std = x_priv.mean(), x_priv.std()
    x_priv, x_pub, x_test = (x_priv - mean) / std, (x_pub - mean) / std, (x_test - mean) / std
    return FederatedTask(
        x_priv,
        t(y_priv, torch.long),
        x_pub,
        t(y_pub, torch.long),
        x_test,
        t(y_test, torch.long),
        int(len(np.unique(y))),
        name,
    )


def paper_task(
    name: str, data_root: str, seed: int = 0, public_limit: int | None = None, n_val: int = 5000
) -> FederatedTask:
    """The paper's federated data (its ``public_config.py``): the training set of CIFAR-10 or CIFAR-100 with
    STL-10's unlabeled images (average-pooled to 32 px) as the public set, or CINIC-10's training set with
    its validation set as the public set; the test split is the test set. Read by
    :mod:`companion.data.real` (``<data_root>/cifar-10-batches-py/``, ``cifar-100-python/``,
    ``stl10_binary/``, ``cinic-10/``), which raises :class:`~companion.data.real.DataRootError` naming
    the missing files.

    Private and test images are standardised per channel with the training statistics (CIFAR: all but the
    ``n_val`` images that :func:`companion.data.real.cifar` holds out, which join the private set here);
    STL-10 is standardised with its own per-channel statistics (we have not checked the official code's
    transforms). Images are flattened to vectors, because the book's round loop trains MLPs
    (``public_y`` is -1 for unlabeled STL-10). The splits are the data sets' own; ``seed`` only orders
    CIFAR's training images (:func:`companion.data.real.cifar` shuffles them)."""
    from ..data import real

    if name not in PAPER_TASKS:
        raise ValueError(f"unknown paper task {name!r}; accepted: {', '.join(PAPER_TASKS)}")
    if name == "cinic10":
        split = real.cinic10(data_root)
        x_pub, y_pub = split.val.tensors
    else:
        split = real.cifar(data_root, classes=int(name[5:]), n_val=n_val, seed=seed)
        (x_pub,) = real.stl10(data_root, "unlabeled", size=32, limit=public_limit).tensors
        mean = x_pub.mean(dim=(0, 2, 3), keepdim=True)
        std = x_pub.std(dim=(0, 2, 3), keepdim=True, correction=0).clamp_min(1e-6)
        x_pub, y_pub = (x_pub - mean) / std, torch.full((len(x_pub),), -1, dtype=torch.long)
    parts = [split.train.tensors] if name == "cinic10" else [split.train.tensors, split.val.tensors]
    x_priv = torch.cat([p[0] for p in parts])
    y_priv = torch.cat([p[1] for p in parts])
    if name == "cinic10" and public_limit is not None:
        x_pub, y_pub = x_pub[:public_limit], y_pub[:public_limit]
    x_test, y_test = split.test.tensors

    def flat(x):
        return x.reshape(len(x), -1).float()

    return FederatedTask(
        flat(x_priv), y_priv.long(), flat(x_pub), y_pub.long(), flat(x_test), y_test.long(), split.num_classes, name
    )
