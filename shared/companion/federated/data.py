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
) -> FederatedTask:
    """Private / public / test split of ``digits`` (pixels scaled to [0, 1]) or of a
    ``make_classification`` task (``synth``: ``n_samples`` x ``n_features``), standardised with the private
    set's statistics (per feature for ``synth``, one scalar for the digits pixels), stratified by class, fixed by ``seed``. ``fractions`` = (private, public, test).

    ``shifted_public`` shifts the public inputs (:func:`shift_public`): one-pixel translations and noise of
    std ``shift_sigma`` on digits; noise of std ``4 * shift_sigma`` on the standardised ``synth`` features
    (which have no pixels to translate), both before standardisation."""
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
        raise ValueError(f"unknown task {name!r}; accepted: {', '.join(TASKS)}")
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
