"""Base data module for classifying float sequences held in memory: checks, seeded training batches, loaders, spec.

A subclass returns its splits from :meth:`ClassificationDataModule.load_splits` (each a dict of ``x`` (N, T, C),
``y`` (N,), ``id`` (N,) and, when lengths vary, ``lengths`` (N,)); this base checks them once, serves them as batches
of the same keys, and tells the classifier its sizes through :class:`ClassifySpec`. Every random choice of the
training loader (the shuffle, a fresh training set per epoch, a crop length per batch) is drawn from the seed, the
epoch and the batch's place in it, never from a running generator, so any batch can be rebuilt on its own: by
another DDP process, or after a resume mid-epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from seqlit.data.loading import EpochBatchSampler, TensorDictDataset, batch_loader, replicas, tensor_loader
from seqlit.errors import InputError, require

SPLITS = ("train", "val", "test")
_STREAM = {"train": 0, "val": 1, "test": 2, "patterns": 3, "crop": 4}  # independent random streams per split


@dataclass(frozen=True)
class ClassifySpec:
    """What a classifier of float sequences takes from its data."""

    num_classes: int  # N
    label_names: list[str]  # one per class, in class-id order
    input_size: int  # C, features per step
    seq_len: int  # T, the padded width (the chrono gate initialisation remembers this far)
    bayes_accuracy: float | None = None  # the best accuracy any classifier can reach, where the data knows it


def seeded_generator(seed: int, split: str, epoch: int = 0, *more: int) -> torch.Generator:
    """A torch generator for one split (and one epoch, one batch...), independent of every other."""
    state = np.random.SeedSequence([seed, _STREAM[split], epoch, *more]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)  # manual_seed takes a signed int64


def check_classification(split: str, x: Tensor, y: Tensor, lengths: Tensor, num_classes: int) -> None:
    """Raise :class:`InputError` for a split that no classifier should be given (see the docs' list of bad inputs)."""
    require(x.ndim == 3, f"{split} x shape", tuple(x.shape), "(sequences, steps, features)")
    require(x.shape[2] >= 1, f"{split} features per step", x.shape[2], "at least 1 feature")
    require(x.shape[1] >= 1, f"{split} sequence length", x.shape[1], "at least 1 step")
    require(len(y) == len(x) == len(lengths), f"{split} sizes", (len(x), len(y), len(lengths)), "equal x, y, lengths")
    if len(lengths) and int(lengths.min()) < 1:  # pack_padded_sequence raises on a zero length
        i = int(lengths.argmin())
        raise InputError(f"{split} sequence {i} has length {int(lengths[i])}: every sequence needs at least 1 step")
    if len(lengths) and int(lengths.max()) > x.shape[1]:  # packs fine, then fails obscurely inside the RNN
        i = int(lengths.argmax())
        raise InputError(f"{split} sequence {i} has length {int(lengths[i])}: at most the {x.shape[1]} steps stored")
    if len(y) and (int(y.min()) < 0 or int(y.max()) >= num_classes):
        bad = int(y.min()) if int(y.min()) < 0 else int(y.max())
        raise InputError(
            f"{split} label={bad} is not allowed: labels must be in [0, {num_classes}) for {num_classes} classes"
        )
    if split == "train":
        counts = torch.bincount(y, minlength=num_classes)
        missing = (counts == 0).nonzero().flatten().tolist()
        if missing:
            raise InputError(
                f"class {missing[0]} has no training examples ({len(missing)} of {num_classes} classes have none): "
                "every class needs at least one; use more training sequences or fewer classes"
            )


class _TaggedBatches(EpochBatchSampler):
    """Training batches tagged with their epoch and their place in it: ``(epoch, position, indices)``."""

    def batches(self) -> list:
        return [(self.epoch, i, b) for i, b in enumerate(super().batches())]


class _TrainingBatches(Dataset):
    """The training batches: the module's training set for that epoch, each batch optionally cropped in time."""

    def __init__(self, module: ClassificationDataModule) -> None:
        self.module = module

    def __len__(self) -> int:
        return self.module.training_size()

    def __getitem__(self, key: tuple[int, int, list[int]]) -> dict[str, Tensor]:
        epoch, position, indices = key
        idx = torch.as_tensor(indices, dtype=torch.long)
        batch = {k: v[idx] for k, v in self.module.training_set(epoch).items()}  # one fancy-index per tensor
        crop, seed = self.module.settings.crop_min_length, self.module.settings.seed
        if crop is not None:
            g = seeded_generator(seed, "crop", epoch, position)  # the same length for this batch on every rebuild
            t = int(torch.randint(crop, batch["x"].shape[1] + 1, (), generator=g))
            batch["x"] = batch["x"][:, :t]  # (B, t, C): one length per batch, so the batch stays dense
            if "lengths" in batch:
                batch["lengths"] = batch["lengths"].clamp(max=t)
        return batch


class ClassificationDataModule(L.LightningDataModule):
    """Splits of labelled float sequences → batches ``x`` (B, T, C), ``lengths`` (B,), ``y`` (B,), ``id`` (B,).

    Args:
        num_classes: classes N; empty = what the subclass decides (a file: its highest label + 1).
        val_size: validation sequences (0: no validation).
        test_size: test sequences (at least 1).
        crop_min_length: cut every training batch to a random length in [crop_min_length, T]; empty = never.
            Validation and test data are not cropped, so what is measured does not change.
        seed: seed of the data, the training shuffles and the crops.
        batch_size: sequences per batch.
        shuffle: reshuffle the training set every epoch.
        num_workers: DataLoader worker processes (0 is fastest for data in memory).
    """

    def __init__(
        self,
        *,
        num_classes: int | None = None,
        val_size: int = 1000,
        test_size: int = 2000,
        crop_min_length: int | None = None,
        seed: int = 0,
        batch_size: int = 100,
        shuffle: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        require(batch_size >= 1, "batch_size", batch_size, "at least 1")
        require(num_workers >= 0, "num_workers", num_workers, "0 or more")
        require(val_size >= 0 and test_size >= 1, "val_size, test_size", (val_size, test_size), "val >= 0, test >= 1")
        require(crop_min_length is None or crop_min_length >= 1, "crop_min_length", crop_min_length, "empty or >= 1")
        # the base's own settings, not read from hparams: a subclass saves only the arguments it was given
        self.settings = SimpleNamespace(
            val_size=val_size,
            test_size=test_size,
            crop_min_length=crop_min_length,
            seed=seed,
            batch_size=batch_size,
            shuffle=shuffle,
            num_workers=num_workers,
        )
        self.num_classes = num_classes
        self.datasets: dict[str, TensorDictDataset] = {}
        self.label_names: list[str] = []

    # --- what a subclass provides -----------------------------------------------------------------------------------
    def load_splits(self) -> dict[str, dict[str, Tensor]]:
        """The train / val / test tensors; sets ``num_classes`` (and ``label_names``) if they were left empty."""
        raise NotImplementedError

    def training_set(self, epoch: int) -> dict[str, Tensor]:
        """The training tensors of ``epoch``: the fixed set by default (a subclass may draw a fresh one)."""
        return self.datasets["train"].tensors

    def training_size(self) -> int:
        """Sequences per training epoch."""
        return len(self.datasets["train"])

    def known_bayes_accuracy(self) -> float | None:
        """The best accuracy possible on this data, where it is known; unknown by default."""
        return None

    # --- Lightning hooks --------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:  # idempotent: the CLI sets data up once, early, before the Trainer does
            return
        splits = self.load_splits()
        if "num_classes" in self.hparams and self.hparams.num_classes != self.num_classes:
            # record the count the data decided: Lightning refuses to log a model and data that disagree on a name
            self.save_hyperparameters({**self.hparams, "num_classes": self.num_classes})
        crop, width = self.settings.crop_min_length, splits["train"]["x"].shape[1]
        require(crop is None or crop <= width, "crop_min_length", crop, f"empty or at most the {width} steps stored")
        for split, data in splits.items():
            if len(data["y"]):
                full = torch.full((len(data["y"]),), data["x"].shape[1])  # what absent lengths mean
                check_classification(split, data["x"], data["y"], data.get("lengths", full), self.num_classes)
                self.datasets[split] = TensorDictDataset(**data)
        self.label_names = self.label_names or [str(k) for k in range(self.num_classes)]
        self.datasets["predict"] = self.datasets["test"]

    def spec(self) -> ClassifySpec:
        """What the classifier takes from the data: sizes, label names, and the best accuracy possible."""
        x = self.datasets["test"].tensors["x"]  # (N, T, C)
        return ClassifySpec(num_classes=self.num_classes, label_names=list(self.label_names), input_size=x.shape[2],
                            seq_len=x.shape[1], bayes_accuracy=self.known_bayes_accuracy())  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        hp = self.settings
        dataset = _TrainingBatches(self)
        world, rank = replicas(self.trainer)
        sampler = _TaggedBatches(num_samples=len(dataset), batch_size=hp.batch_size, shuffle=hp.shuffle, seed=hp.seed,
                                 num_replicas=world, rank=rank)  # fmt: skip
        return batch_loader(dataset, sampler=sampler, num_workers=hp.num_workers)

    def _loader(self, split: str) -> DataLoader:
        hp = self.settings
        # test and predict: every sequence exactly once over all processes, so reduced metrics are exact
        return tensor_loader(self.datasets[split], hp.batch_size, False, hp.num_workers, trainer=self.trainer,
                             even=split == "val")  # fmt: skip

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
