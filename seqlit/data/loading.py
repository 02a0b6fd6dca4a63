"""In-memory batching without per-sample collation: seeded, DDP-aware batches from loaders that resume mid-epoch.

Data that already sits in memory as tensors should not be cut into single samples and stacked again for every
batch: that per-sample ``collate`` is where a tiny model's DataLoader spends most of its time. Here a batch is one
fancy-index per tensor (:class:`TensorDictDataset`), its indices come from :class:`EpochBatchSampler` and
:class:`ResumableLoader` records the place in the epoch in every checkpoint.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler, Sampler


class TensorDictDataset(Dataset):
    """Rows of several equally long tensors, fetched a batch at a time as a dict of tensors (``__getitems__``, which
    the DataLoader's fetcher calls when present)."""

    def __init__(self, **tensors: Tensor) -> None:
        lengths = {len(t) for t in tensors.values()}
        if len(lengths) != 1:
            raise ValueError(f"tensors of different lengths: { {k: len(t) for k, t in tensors.items()} }")
        self.tensors = tensors

    def __len__(self) -> int:
        return len(next(iter(self.tensors.values())))

    def __getitem__(self, i: int | list[int]) -> dict[str, Tensor]:
        if isinstance(i, int):
            return {k: t[i] for k, t in self.tensors.items()}
        idx = torch.as_tensor(i, dtype=torch.long)  # a whole batch of indices: one fancy-index per tensor
        return {k: t[idx] for k, t in self.tensors.items()}

    __getitems__ = __getitem__  # the DataLoader's fetcher asks for whole batches when this exists


def batch_identity(batch: Any) -> Any:
    """Collate function for datasets that already return whole batches (module-level so workers can pickle it)."""
    return batch


def replicas(trainer: Any) -> tuple[int, int]:
    """``(processes, this process's rank)`` of the run a loader is built for; ``(1, 0)`` outside a Trainer."""
    return (trainer.world_size, trainer.global_rank) if trainer is not None else (1, 0)


class EpochBatchSampler(DistributedSampler):
    """Batches of indices for one process: shuffled from ``seed + epoch``, dealt out to DDP ranks, resumable mid-epoch.

    Every rank draws the same permutation and takes every ``num_replicas``-th batch from its own ``rank``. With
    ``even`` (training and validation, where DDP needs every rank to run the same number of steps) the last few
    batches are repeated to make the count divide; without it (test, predict) every sample is seen exactly once, so
    metrics reduced over ranks equal the one-process ones. The order depends only on the seed and the epoch, which
    Lightning sets through :meth:`set_epoch`: a run resumed at an epoch boundary draws the batches of one that never
    stopped. ``skip`` drops the first batches of the next pass (see :class:`ResumableLoader`). Subclasses cut an epoch
    into batches their own way by overriding :meth:`batches`.
    """

    def __init__(
        self,
        num_samples: int,
        batch_size: int,
        shuffle: bool = False,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        even: bool = True,
    ) -> None:
        # the parent only stores these (and validates rank); explicit values keep it from asking torch.distributed
        super().__init__(range(num_samples), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed,
                         drop_last=drop_last)  # fmt: skip
        self.n, self.batch_size, self.even, self.skip = num_samples, batch_size, even, 0

    def batches(self) -> list[list[int]]:
        """Every batch of this epoch, for all ranks together, in the order they are dealt out."""
        order = np.random.default_rng(self.seed + self.epoch).permutation(self.n) if self.shuffle else np.arange(self.n)
        out = [order[i : i + self.batch_size].tolist() for i in range(0, self.n, self.batch_size)]
        return [b for b in out if len(b) == self.batch_size] if self.drop_last else out

    def _total(self) -> int:
        """How many batches :meth:`batches` returns, without building them."""
        return self.n // self.batch_size if self.drop_last else math.ceil(self.n / self.batch_size)

    def __len__(self) -> int:
        total = self._total()
        if self.even:
            return math.ceil(total / self.num_replicas)
        return len(range(self.rank, total, self.num_replicas))

    def __iter__(self) -> Iterator[list[int]]:
        out = self.batches()
        if self.even and out:  # every rank the same number of steps, as DDP needs
            per_rank = math.ceil(len(out) / self.num_replicas)
            out += out[: per_rank * self.num_replicas - len(out)]
        skip, self.skip = self.skip, 0
        yield from out[self.rank :: self.num_replicas][skip:]


class ResumableLoader(DataLoader):
    """A DataLoader whose place in the epoch goes into checkpoints, so a resumed run continues the interrupted epoch.

    Lightning saves ``state_dict()`` of any training loader that has one into the checkpoint and hands it back to
    ``load_state_dict()`` on resume. Without it, a run resumed mid-epoch starts that epoch's batches over (it sees the
    first batches twice and the last ones never). The state is ``(epoch, batches already yielded)``; on the next pass of
    the same epoch those batches are skipped: by the :class:`EpochBatchSampler` when there is one, otherwise by
    drawing and dropping them. Lightning fetches no batch ahead for loaders with a length, so "yielded" is "trained on".
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._position = (0, 0)  # (epoch, batches yielded in it)
        self._resume: tuple[int, int] | None = None

    def _epoch(self) -> int:
        # the sampler's epoch (set by Lightning), or an iterable dataset's own (it follows the trainer's epoch)
        for owner in (self.sampler, self.dataset):
            epoch = getattr(owner, "epoch", None)
            if isinstance(epoch, int):
                return epoch
        return 0

    def __iter__(self) -> Iterator[Any]:  # a generator: nothing runs until the first batch is asked for
        resume, self._resume = self._resume, None
        epoch = self._epoch()
        skip = resume[1] if resume is not None and resume[0] == epoch else 0
        drop = skip
        if skip and isinstance(self.sampler, EpochBatchSampler):
            self.sampler.skip, drop = skip, 0
        self._position = (epoch, skip)
        for i, batch in enumerate(super().__iter__()):
            if i < drop:
                continue
            self._position = (epoch, self._position[1] + 1)
            yield batch

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self._position[0], "batches": self._position[1]}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = (int(state["epoch"]), int(state["batches"]))


def tensor_loader(
    dataset: TensorDictDataset,
    batch_size: int,
    shuffle: bool,
    num_workers: int = 0,
    *,
    seed: int = 0,
    trainer: Any = None,
    even: bool = True,
) -> ResumableLoader:
    """A loader over an in-memory dataset: one index operation per batch, epoch-seeded shuffles, DDP-aware, resumable.

    ``trainer`` (a data module's ``self.trainer``) tells how many processes share the data; ``even``: see
    :class:`EpochBatchSampler`.
    """
    world, rank = replicas(trainer)
    sampler = EpochBatchSampler(num_samples=len(dataset), batch_size=batch_size, shuffle=shuffle, seed=seed,
                                num_replicas=world, rank=rank, even=even)  # fmt: skip
    return batch_loader(dataset, sampler=sampler, num_workers=num_workers)


def batch_loader(dataset: Dataset, *, sampler: Sampler, num_workers: int = 0) -> ResumableLoader:
    """A resumable loader for a sampler that yields whole batches of indices (or keys), each fetched at once."""
    # batch_size=None hands each of the sampler's batches to the dataset as it is; the dataset returns it collated
    return ResumableLoader(dataset, sampler=sampler, batch_size=None, num_workers=num_workers,
                           collate_fn=batch_identity, persistent_workers=num_workers > 0)  # fmt: skip
