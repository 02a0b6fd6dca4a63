"""Character corpus for language modelling: any UTF-8 text file as next-character windows or as parallel streams.

The text is split by fraction into contiguous train / val / test spans (in that order) and encoded with a character
vocabulary built from the training span alone; index 0 of the vocabulary, the empty string, is the unknown symbol
that every character never seen in training maps to. Batches are dicts: ``x`` (B, T) input ids, ``y`` (B, T) the ids
one character later, ``position`` (B,) where each row's first input character sits in the whole text, and in
``tbptt`` mode ``chunk`` (B,) the chunk index, 0 when a stream starts.

Two training modes:

* ``windows`` (default): windows of ``seq_len`` characters in random order, each trained from a zero state. Every
  epoch lays a grid of non-overlapping windows over the training span at a random offset in [0, seq_len), so
  successive epochs cut the text at different places; the window count is the same every epoch.
* ``tbptt`` (stateful truncated back-propagation through time): the span is cut into ``batch_size`` equal streams,
  row b of every batch continues row b of the batch before, and the task carries the recurrent state from one chunk
  to the next (detached, so no gradient crosses a chunk boundary). Batches must come in order, so no shuffling.

Validation and test follow the training mode: non-overlapping windows from a zero state, or streams with the state
carried. Generation (``predict``) reads no text at all: it yields the prompt and decoding options below, and the
task samples from its own checkpoint, which holds the vocabulary.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, DistributedSampler

from seqlit.data.loading import ResumableLoader, TensorDictDataset, batch_identity, replicas, tensor_loader
from seqlit.errors import InputError, require, say
from seqlit.vocab import build_vocab, check_generation, encode


@dataclass(frozen=True)
class CharSpec:
    """What a character language model takes from its data; empty until the text is read (``predict`` reads none)."""

    vocab_size: int | None = None  # V, the unknown symbol "" included
    vocab: list[str] | None = None  # the characters in id order, stored in the checkpoint to decode generations


# --- text ---------------------------------------------------------------------------------------------
def read_text_strict(path: str | None) -> str:
    """Read a UTF-8 text file; a missing, empty, binary or not-UTF-8 file is one clear :class:`InputError`.

    Strict, unlike the text classifier's reader: a character model learns every byte it is given, so a replacement
    character in its corpus would become a symbol it generates."""
    require(path is not None and str(path) != "", "data.path", path, "the path of a UTF-8 text file")
    file = Path(str(path))
    require(file.is_file(), "data.path", str(path), "an existing UTF-8 text file")
    raw = file.read_bytes()
    require(len(raw) > 0, "data.path", str(path), "a non-empty text file (this one is empty)")
    if b"\x00" in raw:  # valid UTF-8 but no text file holds NUL bytes: an image, an archive, a checkpoint...
        raise InputError(
            f"data.path={str(path)!r} is a binary file (NUL byte at offset {raw.index(0)}): give UTF-8 text"
        )
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise InputError(
            f"data.path={str(path)!r} is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start}): "
            "give UTF-8 text"
        ) from None


def split_by_fraction(n: int, val_fraction: float, test_fraction: float) -> dict[str, tuple[int, int]]:
    """``[start, end)`` of the contiguous train, val and test spans of ``n`` characters (rounded to whole ones)."""
    n_val, n_test = int(round(val_fraction * n)), int(round(test_fraction * n))
    n_train = n - n_val - n_test
    return {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}


# --- windows and streams ---------------------------------------------------------------------------------------------
def window_dataset(ids: Tensor, seq_len: int, stride: int, start: int = 0) -> TensorDictDataset:
    """Every window ``x = ids[p : p+T]``, ``y = ids[p+1 : p+1+T]`` for p = 0, stride, 2·stride, ... that fits.

    The rows are strided views of ``ids``, not copies, so even stride 1 over a large text costs no memory; a batch
    gathers its rows with one index operation. ``position`` is ``p + start`` (the place in the whole text).
    """
    x = ids[:-1].unfold(0, seq_len, stride)  # (M, T) view
    y = ids[1:].unfold(0, seq_len, stride)  # (M, T) view
    return TensorDictDataset(x=x, y=y, position=torch.arange(len(x)) * stride + start)


def stream_dataset(ids: Tensor, seq_len: int, streams: int, start: int = 0) -> TensorDictDataset:
    """Lay ``ids`` out as ``streams`` parallel streams cut into consecutive chunks, in the order TBPTT reads them.

    Stream b is the b-th of ``streams`` equal stretches of the text (L = (N-1) // streams characters each); chunk k of
    it is ``ids[b·L + k·T : b·L + (k+1)·T]``. Row ``k·streams + b`` holds chunk k of stream b, so a loader with
    ``batch_size=streams`` and no shuffling yields batch k with row b continuing row b of batch k-1.
    """
    length = (len(ids) - 1) // streams
    chunks = length // seq_len
    starts = torch.arange(streams) * length  # (S,) first character of each stream
    offsets = starts[None, :] + torch.arange(chunks)[:, None] * seq_len  # (K, S): chunk-major, as read
    steps = torch.arange(seq_len)
    index = offsets.reshape(-1, 1) + steps  # (K*S, T)
    return TensorDictDataset(
        x=ids[index],
        y=ids[index + 1],
        position=offsets.reshape(-1) + start,
        chunk=torch.arange(chunks).repeat_interleave(streams),
    )


class ShiftedGrid(DistributedSampler):
    """Indices of non-overlapping windows (stride ``seq_len``) at a random offset each epoch, in random order.

    Built over a stride-1 :func:`window_dataset`, so index p is the window starting at p. The count is fixed at
    ⌊N/T⌋ - 1 so that any offset in [0, T) fits and every epoch has the same length. The order depends only on
    ``seed`` and the epoch (Lightning calls :meth:`set_epoch`), so a resumed run sees the same windows as an
    uninterrupted one. Without shuffling: offset 0, in order. Under DDP every process draws the same order and takes
    every ``num_replicas``-th window from its ``rank`` (a few repeated so the counts match).
    """

    def __init__(
        self, num_chars: int, seq_len: int, shuffle: bool, seed: int = 0, num_replicas: int = 1, rank: int = 0
    ) -> None:
        self.seq_len, self.count = seq_len, num_chars // seq_len - 1
        super().__init__(range(self.count), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed)

    def __len__(self) -> int:
        return math.ceil(self.count / self.num_replicas)

    def __iter__(self):
        if not self.shuffle:
            starts = list(range(0, self.count * self.seq_len, self.seq_len))
        else:
            rng = np.random.default_rng([self.seed, self.epoch])
            offset = int(rng.integers(self.seq_len))
            starts = (offset + rng.permutation(self.count) * self.seq_len).tolist()
        starts += starts[: len(self) * self.num_replicas - len(starts)]
        return iter(starts[self.rank :: self.num_replicas])


# --- the data module -------------------------------------------------------------------------------------------------
class CorpusDataModule(L.LightningDataModule):
    """Next-character batches from a UTF-8 text file (see the module docstring).

    Args:
        path: the UTF-8 text file (not read by ``predict``, which needs only the checkpoint).
        seq_len: characters per window or chunk (T); gradients flow back at most this far.
        batch_size: windows per batch, or parallel streams in ``tbptt`` mode (B).
        mode: ``windows`` (random windows, each from a zero state) or ``tbptt`` (state carried across chunks).
        val_fraction: share of the text, just before the test span, kept for validation.
        test_fraction: share of the text at its end kept for testing.
        shuffle: ``windows`` mode: random offset and order each epoch (else offset 0, in order).
        seed: seed of those offsets and orders.
        num_workers: DataLoader worker processes (0 is fastest for text that lives in memory).
        prompt: ``predict``: the text generation starts from.
        generate_length: ``predict``: characters to generate after the prompt.
        temperature: ``predict``: softmax temperature; 0 picks the most likely character every step.
        top_k: ``predict``: sample only among the k most likely characters (``null``: all).
        generate_seed: ``predict``: seed of the first sample; sample i uses ``generate_seed + i``.
        num_samples: ``predict``: how many samples to generate.
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        seq_len: int = 128,
        batch_size: int = 64,
        mode: Literal["windows", "tbptt"] = "windows",
        val_fraction: float = 0.1,
        test_fraction: float = 0.0,
        shuffle: bool = True,
        seed: int = 0,
        num_workers: int = 0,
        prompt: str = "\n",
        generate_length: int = 500,
        temperature: float = 0.8,
        top_k: int | None = None,
        generate_seed: int = 0,
        num_samples: int = 1,
    ) -> None:
        super().__init__()
        require(seq_len >= 1, "data.seq_len", seq_len, "at least 1 character")
        require(batch_size >= 1, "data.batch_size", batch_size, "at least 1")
        require(mode in ("windows", "tbptt"), "data.mode", mode, "one of 'windows', 'tbptt'")
        require(0.0 <= val_fraction < 1.0, "data.val_fraction", val_fraction, "a fraction in [0, 1)")
        require(0.0 <= test_fraction < 1.0, "data.test_fraction", test_fraction, "a fraction in [0, 1)")
        require(
            val_fraction + test_fraction < 1.0,
            "data.val_fraction + data.test_fraction",
            val_fraction + test_fraction,
            "less than 1, so some text is left for training",
        )
        require(num_workers >= 0, "data.num_workers", num_workers, "0 or more")
        check_generation(prompt, generate_length, temperature, top_k, prefix="data.")
        require(num_samples >= 1, "data.num_samples", num_samples, "at least 1")
        self.save_hyperparameters()
        self.vocab: list[str] = []
        self.bounds: dict[str, tuple[int, int]] = {}
        self.datasets: dict[str, TensorDictDataset] = {}
        self.unknown: dict[str, list[str]] = {}  # characters of val/test never seen in training, per span

    def setup(self, stage: str | None = None) -> None:
        # predict samples from the checkpoint alone: no text file is needed, or read
        if self.datasets or stage == "predict":
            return
        hp = self.hparams
        text = read_text_strict(hp.path)
        self.bounds = split_by_fraction(len(text), hp.val_fraction, hp.test_fraction)
        tbptt = hp.mode == "tbptt"
        for span, (start, end) in self.bounds.items():
            n = end - start
            if span == "train" and tbptt:
                need, what = hp.batch_size * hp.seq_len + 1, "batch_size × seq_len + 1 (one chunk per stream)"
            elif span == "train":
                need, what = 2 * hp.seq_len, "2 × seq_len (a window, and room to shift it)"
            elif n == 0 and (span == "test" or hp.val_fraction == 0):
                continue  # that span was not asked for
            else:
                need, what = hp.seq_len + 1, "seq_len + 1 (one window)"
            if n < need:
                raise InputError(
                    f"data.seq_len={hp.seq_len} is too long for {hp.path!r}: its {span} span has {n} characters "
                    f"(of {len(text)}), and needs at least {what} = {need}; use a shorter seq_len, a smaller "
                    "batch_size, other fractions or a longer text"
                )
        self.vocab = build_vocab(text[slice(*self.bounds["train"])])  # from training text alone, as in use
        for span, (start, end) in self.bounds.items():
            if end == start:
                continue
            ids, self.unknown[span] = encode(text[start:end], self.vocab)  # (n,) int64; unseen characters -> id 0
            if span == "train" and not tbptt:  # every start position; ShiftedGrid picks the epoch's windows
                self.datasets[span] = window_dataset(ids, hp.seq_len, 1, start)
            elif tbptt:  # evaluation carries the state too, over as many streams as the span holds
                streams = hp.batch_size if span == "train" else min(hp.batch_size, (len(ids) - 1) // hp.seq_len)
                self.datasets[span] = stream_dataset(ids, hp.seq_len, streams, start)
            else:  # non-overlapping windows: every character is scored once
                self.datasets[span] = window_dataset(ids, hp.seq_len, hp.seq_len, start)

    def spec(self) -> CharSpec:
        """The vocabulary (and its size) the model is built for; nothing before the text is read (predict)."""
        return CharSpec(vocab_size=len(self.vocab), vocab=list(self.vocab)) if self.vocab else CharSpec()

    def _eval_loader(self, span: str) -> DataLoader | list:
        if span not in self.datasets:
            return []
        hp = self.hparams
        chunk = self.datasets[span].tensors.get("chunk")  # (M,) in tbptt mode
        # one batch per chunk: a batch must hold exactly the span's streams, so row b continues row b
        streams = int((chunk == 0).sum()) if chunk is not None else hp.batch_size
        return tensor_loader(self.datasets[span], streams, shuffle=False, num_workers=hp.num_workers,
                             trainer=self.trainer, even=span == "val")  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        if hp.mode == "tbptt" and self.trainer is not None and self.trainer.world_size > 1:
            # a distributed sampler would deal the rows of each batch out to different processes, cutting the streams
            raise InputError(f"data.mode='tbptt' runs in one process; this run has {self.trainer.world_size}")
        if hp.mode == "tbptt":  # in order: row b of each batch continues row b of the one before
            return tensor_loader(self.datasets["train"], hp.batch_size, shuffle=False, num_workers=hp.num_workers)
        start, end = self.bounds["train"]
        world, rank = replicas(self.trainer)
        sampler = ShiftedGrid(num_chars=end - start, seq_len=hp.seq_len, shuffle=hp.shuffle, seed=hp.seed,
                              num_replicas=world, rank=rank)  # fmt: skip
        return ResumableLoader(  # groups the grid's window starts into batches, each fetched by one index operation
            self.datasets["train"],
            batch_size=hp.batch_size,
            sampler=sampler,
            num_workers=hp.num_workers,
            collate_fn=batch_identity,
            persistent_workers=hp.num_workers > 0,
        )

    def val_dataloader(self) -> DataLoader | list:
        return self._eval_loader("val")

    def test_dataloader(self) -> DataLoader | list:
        if "test" not in self.datasets:  # a warning, not an error: fit tests after training by default
            say(f"seqlit: note: data.test_fraction={self.hparams.test_fraction} leaves no test span: nothing to test")
        return self._eval_loader("test")

    def predict_dataloader(self) -> DataLoader:
        """One 'batch' per sample: the prompt and decoding options, which the task's ``predict_step`` generates from."""
        hp = self.hparams
        keys = ("prompt", "generate_length", "temperature", "top_k")
        jobs = [{**{k: hp[k] for k in keys}, "seed": hp.generate_seed + i} for i in range(hp.num_samples)]
        return DataLoader(jobs, batch_size=None, collate_fn=batch_identity)  # batch_size=None: each job as it is
