"""In-memory batching without per-sample collation.

Data that already sits in memory as tensors should not be cut into single samples and stacked again for every
batch: that per-sample ``collate`` is where a tiny model's DataLoader spends most of its time. A
:class:`TensorDictDataset` answers a whole list of indices at once (``__getitems__``, which the DataLoader's fetcher
calls when present), so a batch is one fancy-index per tensor. Samplers, shuffling and Lightning's distributed
sampler work unchanged because the dataset still has a length and integer indices.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset


class TensorDictDataset(Dataset):
    """Rows of several equally long tensors, fetched a batch at a time as a dict of tensors."""

    def __init__(self, **tensors: Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(t) for k, t in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        return {k: t[i] for k, t in self.tensors.items()}

    def __getitems__(self, indices: list[int]) -> dict[str, Tensor]:
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {k: t[idx] for k, t in self.tensors.items()}


def batch_identity(batch: Any) -> Any:
    """Collate function for datasets that already return whole batches (module-level so workers can pickle it)."""
    return batch


def tensor_loader(dataset: TensorDictDataset, batch_size: int, shuffle: bool, num_workers: int = 0) -> DataLoader:
    """A DataLoader over an in-memory dataset that fetches each batch with one index operation."""
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        collate_fn=batch_identity,
        persistent_workers=num_workers > 0,
    )
