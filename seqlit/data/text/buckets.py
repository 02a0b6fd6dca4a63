"""Length-bucketed batches of variable-length token sequences, correct under multi-process (DDP) training.

The tutorials' ``BucketIterator(sort_within_batch=True)``, rebuilt on plain PyTorch: :class:`BucketBatchSampler`
shuffles the documents, sorts each pool of ``pool_batches`` batches by length, cuts the pool into batches of
similar-length documents (longest first within each batch), and shuffles the order of the batches. Padding then
costs a few percent of the compute instead of half of it. Under DDP every rank draws the same permutation from
``seed + epoch`` and takes every ``num_replicas``-th batch from its own ``rank``, so ranks see distinct batches
(the same number each in training, a few batches repeated when the count does not divide), and ``set_epoch``
reshuffles every epoch.

It subclasses :class:`~seqlit.data.loading.EpochBatchSampler` (a :class:`~torch.utils.data.DistributedSampler`) and
yields whole batches, so Lightning neither wraps it in a second distributed sampler nor forgets to call
``set_epoch``; a :class:`~seqlit.data.loading.ResumableLoader` takes it as ``sampler`` with ``batch_size=None`` and
:class:`TokenDataset` answers a whole list of indices at once, padded to the batch's longest.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from seqlit.data.loading import EpochBatchSampler


class TokenDataset(Dataset):
    """Variable-length documents of token ids with labels; ``dataset[list_of_indices]`` is one padded batch.

    A batch is a dict: ``x`` (B, T) int64 ids padded with ``pad_id`` to the longest document in the batch,
    ``lengths`` (B,) int64, ``y`` (B,) int64 class ids (-1 when unknown), ``id`` (B,) int64 document numbers.
    """

    def __init__(
        self,
        docs: Sequence[np.ndarray],
        labels: Sequence[int],
        ids: Sequence[int],
        pad_id: int = 0,
        equal_length: bool = False,
        keep: str = "head",
    ) -> None:
        self.docs = list(docs)
        self.equal_length, self.keep = equal_length, keep
        self.lengths = np.fromiter((len(d) for d in self.docs), dtype=np.int64, count=len(self.docs))
        self.labels = torch.as_tensor(np.asarray(labels, dtype=np.int64))
        self.ids = torch.as_tensor(np.asarray(ids, dtype=np.int64))
        self.pad_id = pad_id

    def __len__(self) -> int:
        return len(self.docs)

    def __getitem__(self, index: int | Sequence[int]) -> dict[str, Tensor]:
        indices = [index] if isinstance(index, int) else list(index)
        lengths = self.lengths[indices]
        if self.equal_length:
            # cut the batch to its shortest document: no padding, so an LSTM runs oneDNN's fast dense kernel; with
            # length buckets that drops about as many tokens as padding would have added (a few percent)
            lengths = np.full_like(lengths, lengths.min())
        x = np.full((len(indices), int(lengths.max())), self.pad_id, dtype=np.int64)  # (B, T)
        for row, i in enumerate(indices):
            x[row, : lengths[row]] = cut(self.docs[i], int(lengths[row]), self.keep)
        idx = torch.as_tensor(indices, dtype=torch.long)
        return {
            "x": torch.from_numpy(x),
            "lengths": torch.from_numpy(lengths),
            "y": self.labels[idx],
            "id": self.ids[idx],
        }

    __getitems__ = __getitem__  # the DataLoader's fetcher asks for whole batches when this exists


def cut(doc: np.ndarray, n: int, keep: str = "head") -> np.ndarray:
    """At most ``n`` ids of ``doc``: its ``head``, its ``tail``, or ``both`` (first and last halves)."""
    if len(doc) <= n:
        return doc
    if keep == "head":
        return doc[:n]
    if keep == "tail":
        return doc[len(doc) - n :]
    half = n // 2
    return np.concatenate([doc[: n - half], doc[len(doc) - half :]])


class BucketBatchSampler(EpochBatchSampler):
    """Yield batches (lists of indices) of similar-length documents; see the module docstring.

    Args:
        lengths: length of every document.
        batch_size: documents per batch.
        shuffle: shuffle documents and batch order (reseeded by ``set_epoch``); without it, batches come in
            order of decreasing length over the whole set, which is what evaluation wants.
        sort: without shuffling, sort by length (True) or keep the documents' order (False, for predictions).
        seed: base seed; the permutation of epoch ``e`` depends on ``seed + e`` only, the same on every rank.
        pool_batches: how many batches' worth of documents are sorted together; larger pools pad less but
            mix lengths less across batches (1 = no bucketing, just length-sorted within each batch).
        num_replicas: processes in the DDP group (1 without DDP).
        rank: this process's rank in the group.
        drop_last: drop the last, smaller batch of a pool set instead of keeping it.
        even: repeat a few batches so every rank gets the same number (training, validation); off for test and
            predict, so every document is seen exactly once.
    """

    def __init__(
        self,
        lengths: Sequence[int] | np.ndarray,
        batch_size: int,
        shuffle: bool = True,
        seed: int = 0,
        pool_batches: int = 50,
        num_replicas: int = 1,
        rank: int = 0,
        drop_last: bool = False,
        sort: bool = True,
        even: bool = True,
    ) -> None:
        lengths = np.asarray(lengths, dtype=np.int64)
        super().__init__(num_samples=len(lengths), batch_size=batch_size, shuffle=shuffle, seed=seed,
                         num_replicas=num_replicas, rank=rank, drop_last=drop_last, even=even)  # fmt: skip
        self.lengths = lengths
        self.pool_batches = max(1, pool_batches)
        self.sort = sort

    def batches(self) -> list[list[int]]:
        """Every batch of this epoch, for all ranks together, in the order they are dealt out."""
        n, bs = len(self.lengths), self.batch_size
        if not self.shuffle:
            # stable: equal lengths keep their original order, so evaluation batches are reproducible
            order = np.argsort(-self.lengths, kind="stable") if self.sort else np.arange(n)
            out = [order[i : i + bs].tolist() for i in range(0, n, bs)]
        else:
            rng = np.random.default_rng(self.seed + self.epoch)
            perm = rng.permutation(n)
            pool = bs * self.pool_batches
            out = []
            for start in range(0, n, pool):
                chunk = perm[start : start + pool]
                chunk = chunk[np.argsort(-self.lengths[chunk], kind="stable")]  # longest first: sort_within_batch
                out += [chunk[i : i + bs].tolist() for i in range(0, len(chunk), bs)]
            rng.shuffle(out)  # a list of lists: shuffled in place along its only axis
        if self.drop_last:
            out = [b for b in out if len(b) == bs]
        return out

    def padding_fraction(self) -> float:
        """Share of the padded (B, T) cells of one epoch's batches that are padding, not tokens."""
        cells = tokens = 0
        for batch in self.batches():
            lens = self.lengths[batch]
            cells += len(batch) * int(lens.max())
            tokens += int(lens.sum())
        return 1.0 - tokens / cells if cells else 0.0


def unbucketed_padding(lengths: Sequence[int] | np.ndarray, batch_size: int, seed: int = 0) -> float:
    """Padding share of plain shuffled batches (what bucketing saves), for the report."""
    lengths = np.asarray(lengths)
    perm = np.random.default_rng(seed).permutation(len(lengths))
    cells = sum(len(b) * int(lengths[b].max()) for b in np.array_split(perm, max(1, math.ceil(len(perm) / batch_size))))
    return 1.0 - float(lengths.sum()) / cells if cells else 0.0
