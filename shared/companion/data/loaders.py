"""Splits and fast in-memory mini-batches."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset


@dataclass(frozen=True)
class Split:
    """Train / validation / test datasets of one task (``TensorDataset`` of inputs and integer labels)."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    name: str

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.train.tensors[0].shape[1:])

    def sizes(self) -> tuple[int, int, int]:
        return len(self.train), len(self.val), len(self.test)


def batches(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    generator: torch.Generator | None = None,
    drop_last: bool = False,
) -> Iterator[tuple[torch.Tensor, ...]]:
    """Mini-batches of a dataset. A ``TensorDataset`` is sliced directly (no per-sample collation, which
    dominates the cost of small CPU models); anything else goes through a ``DataLoader``."""
    if isinstance(dataset, TensorDataset):
        n = len(dataset)
        order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
        stop = n - n % batch_size if drop_last else n
        for start in range(0, stop, batch_size):
            idx = order[start : start + batch_size]
            yield tuple(t[idx] for t in dataset.tensors)
    else:
        yield from DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=generator, drop_last=drop_last)


def loader(dataset: Dataset, batch_size: int, shuffle: bool = False, seed: int = 0) -> DataLoader:
    """A plain ``DataLoader`` with a seeded generator (for users who prefer the standard API)."""
    g = torch.Generator()
    g.manual_seed(seed)
    return DataLoader(dataset, batch_size=batch_size, shuffle=shuffle, generator=g)
