"""Synthetic sequence classification: the tutorial's random data, and a learnable task whose best accuracy is known.

Three modes, all yielding batches ``x`` (B, T, C) float, ``lengths`` (B,), ``y`` (B,) class ids and ``id`` (B,):

* ``random`` — the tutorial's data: standard-normal inputs (28 steps × 28 features), 10 classes, labels drawn
  uniformly and independently of the inputs. Nothing can be learned from it: every model's expected test accuracy is
  chance, 1 / num_classes, and that is the Bayes accuracy reported. It is kept as the tutorial's smoke test.
* ``patterns`` — learnable: every class owns a pattern of ``signal_length`` steps × ``num_features`` features, added
  to standard-normal noise at steps ``[signal_start, signal_start + signal_length)``; all other steps are pure noise.
  The patterns are orthogonal, each of norm ``snr`` (noise standard deviations), so the Bayes-optimal rule is a
  matched filter (the class whose pattern has the largest dot product with that window) and its accuracy is exactly
  ``∫ φ(z − snr) Φ(z)^(K−1) dz``, the accuracy of detecting one of K orthogonal signals, which :func:`bayes_accuracy`
  integrates numerically to ~1e-10. Placed at the start of a long sequence, the pattern tests long-range memory.
* ``file`` — your own sequences from an ``.npz`` file holding ``x`` (N, T, C), ``y`` (N,) and optionally
  ``lengths`` (N,) and ``label_names`` (K,); split at random (seeded) into train / val / test.

Generated sets are fixed by ``seed`` (train, val, test and the patterns each have their own random stream);
``resample: true`` instead draws a fresh training set every epoch, as the tutorial did. ``crop_min_length`` cuts
each *training* batch to a random length in [crop_min_length, seq_len] (one length per batch, so batches stay dense):
a crop of a sequence whose pattern lies at the start is a sample of the same task at a shorter length, and the short
ones give the network an easy gradient for learning the patterns before it must carry them through the whole length.
Validation and test sequences are never cropped, so what is measured does not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

from seqlit.data.loading import (
    EpochBatchSampler,
    ResumableLoader,
    TensorDictDataset,
    batch_identity,
    replicas,
    tensor_loader,
)
from seqlit.errors import InputError, require

SPLITS = ("train", "val", "test")
_STREAM = {"train": 0, "val": 1, "test": 2, "patterns": 3, "crop": 4}  # independent random streams per split


def bayes_accuracy(num_classes: int, snr: float, points: int = 40001) -> float:
    """Accuracy of the best rule for K equally likely orthogonal patterns of norm ``snr`` in unit Gaussian noise.

    The matched filter's score for the true class is N(snr, 1), the others N(0, 1), all independent (orthogonal
    patterns), so P(correct) = ∫ φ(z − snr) Φ(z)^(K−1) dz. For K = 2 this is Φ(snr / √2); for snr = 0 it is 1 / K.
    """
    z = torch.linspace(min(snr, 0.0) - 12.0, max(snr, 0.0) + 12.0, points, dtype=torch.float64)
    density = torch.exp(-0.5 * (z - snr) ** 2) / np.sqrt(2 * np.pi)  # φ(z − snr)
    return float(torch.trapezoid(density * torch.special.ndtr(z) ** (num_classes - 1), z))


def check_classification(split: str, x: Tensor, y: Tensor, lengths: Tensor, num_classes: int) -> None:
    """Raise :class:`InputError` for a split that no classifier should be given (see the docs' list of bad inputs)."""
    require(x.ndim == 3, f"{split} x shape", tuple(x.shape), "(sequences, steps, features)")
    require(x.shape[2] >= 1, f"{split} features per step", x.shape[2], "at least 1 feature")
    require(x.shape[1] >= 1, f"{split} sequence length", x.shape[1], "at least 1 step")
    require(len(y) == len(x) == len(lengths), f"{split} sizes", (len(x), len(y), len(lengths)), "equal x, y, lengths")
    if len(lengths) and int(lengths.min()) < 1:
        i = int(lengths.argmin())
        raise InputError(f"{split} sequence {i} has length {int(lengths[i])}: every sequence needs at least 1 step")
    if len(lengths) and int(lengths.max()) > x.shape[1]:
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


def _generator(seed: int, split: str, epoch: int = 0, *more: int) -> torch.Generator:
    """A torch generator for one split (and one epoch, one batch...), independent of every other."""
    state = np.random.SeedSequence([seed, _STREAM[split], epoch, *more]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


class _TaggedBatches(EpochBatchSampler):
    """Training batches tagged with their epoch and their place in it: ``(epoch, position, indices)``."""

    def batches(self) -> list:
        return [(self.epoch, i, b) for i, b in enumerate(super().batches())]


class _TrainingBatches(Dataset):
    """The training batches: the fixed set or one drawn anew each epoch (``resample``), optionally cropped.

    Everything random here is drawn from the seed, the epoch and the batch's place in the epoch, never from a running
    generator, so any batch can be rebuilt on its own: by another DDP process, or after a resume mid-epoch.
    """

    def __init__(self, module: SyntheticDataModule) -> None:
        self.module = module
        self._drawn: tuple[int, dict[str, Tensor]] | None = None  # (epoch, that epoch's fresh training set)

    def __len__(self) -> int:
        hp = self.module.hparams
        return hp.train_size if self._resample() else len(self.module.datasets["train"])

    def _resample(self) -> bool:
        return bool(self.module.hparams.resample) and self.module.hparams.mode != "file"

    def __getitem__(self, key: tuple[int, int, list[int]]) -> dict[str, Tensor]:
        epoch, position, indices = key
        hp = self.module.hparams
        if self._resample():
            if self._drawn is None or self._drawn[0] != epoch:
                self._drawn = (epoch, self.module.generate("train", epoch))
            data = self._drawn[1]
        else:
            data = self.module.datasets["train"].tensors
        idx = torch.as_tensor(indices, dtype=torch.long)
        batch = {k: v[idx] for k, v in data.items()}
        if hp.get("crop_min_length") is not None:
            g = _generator(hp.seed, "crop", epoch, position)
            t = int(torch.randint(hp.crop_min_length, batch["x"].shape[1] + 1, (), generator=g))
            batch["x"] = batch["x"][:, :t]  # (B, t, C)
            if "lengths" in batch:
                batch["lengths"] = batch["lengths"].clamp(max=t)
        return batch


class SyntheticDataModule(L.LightningDataModule):
    """Random, learnable (``patterns``) or file-based sequence classification (see the module docstring).

    Args:
        mode: ``random`` (tutorial, unlearnable), ``patterns`` (learnable, known Bayes accuracy) or ``file``.
        num_classes: classes K (``file``: the classes expected in the file; empty = highest label + 1). Default 10.
        seq_len: steps per sequence T (the padded width when lengths vary).
        num_features: features per step C.
        signal_length: steps of each class pattern (``patterns``).
        signal_start: first step of the pattern (``patterns``); 0 puts it at the very start.
        snr: pattern norm in noise standard deviations (``patterns``); the classes' patterns lie snr·√2 apart.
        min_length: shortest sequence; lengths are drawn uniformly from [min_length, seq_len]; empty = all seq_len.
        train_size, val_size, test_size: sequences per split (``file``: val and test are taken from the file).
        resample: draw a fresh training set every epoch instead of a fixed one (``random``/``patterns``).
        crop_min_length: cut every training batch to a random length in [crop_min_length, seq_len]; empty = never.
            Validation and test data are not cropped. In ``patterns`` mode it must keep the whole pattern.
        path: the ``.npz`` file (``file`` mode).
        seed: seed of the data (patterns, sets, the file's split).
        batch_size: sequences per batch.
        shuffle: reshuffle the training set every epoch.
        num_workers: DataLoader worker processes (0 is fastest for data in memory).
    """

    def __init__(
        self,
        mode: Literal["random", "patterns", "file"] = "patterns",
        num_classes: int | None = None,
        seq_len: int = 28,
        num_features: int = 28,
        signal_length: int = 4,
        signal_start: int = 0,
        snr: float = 3.0,
        min_length: int | None = None,
        train_size: int = 5000,
        val_size: int = 1000,
        test_size: int = 2000,
        resample: bool = False,
        crop_min_length: int | None = None,
        path: str | None = None,
        seed: int = 0,
        batch_size: int = 100,
        shuffle: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        require(mode in ("random", "patterns", "file"), "mode", mode, "one of 'random', 'patterns', 'file'")
        require(batch_size >= 1, "batch_size", batch_size, "at least 1")
        require(num_workers >= 0, "num_workers", num_workers, "0 or more")
        require(val_size >= 0 and test_size >= 1, "val_size, test_size", (val_size, test_size), "val >= 0, test >= 1")
        # seq_len first: a bad seq_len would otherwise be reported as a bad crop_min_length
        require(seq_len >= 1, "seq_len", seq_len, "at least 1 step (sequences of length zero cannot be classified)")
        if crop_min_length is not None:
            lowest = signal_start + signal_length if mode == "patterns" else 1
            require(
                crop_min_length >= lowest and (mode == "file" or crop_min_length <= seq_len),
                "crop_min_length",
                crop_min_length,
                f"empty or in [{lowest}, {'the sequence length' if mode == 'file' else seq_len}]"
                + (": a crop must keep the whole pattern" if mode == "patterns" else ""),
            )
        if mode == "file":
            require(path is not None, "path", path, "an .npz file with x (N, T, C), y (N,) [, lengths (N,)]")
        else:
            self._check_generator_args(
                mode, num_classes or 10, seq_len, num_features, signal_length, signal_start, snr, min_length, train_size
            )
        self.save_hyperparameters()
        self.num_classes: int | None = num_classes if mode == "file" else (num_classes or 10)
        self.datasets: dict[str, TensorDictDataset] = {}
        self.label_names: list[str] = []
        self.patterns: Tensor | None = None  # (K, P, C), patterns mode

    @staticmethod
    def _check_generator_args(
        mode: str, k: int, seq_len: int, c: int, p: int, start: int, snr: float, min_length: int | None, train_size: int
    ) -> None:
        require(k >= 2, "num_classes", k, "at least 2")
        require(seq_len >= 1, "seq_len", seq_len, "at least 1 step (sequences of length zero cannot be classified)")
        require(c >= 1, "num_features", c, "at least 1 feature per step")
        require(train_size >= k, "train_size", train_size, f"at least num_classes={k}, so every class has an example")
        if mode == "patterns":
            require(p >= 1, "signal_length", p, "at least 1 step")
            require(
                0 <= start and start + p <= seq_len,
                "signal_start",
                start,
                f"in [0, {seq_len - p}] so the {p}-step pattern fits in seq_len={seq_len}",
            )
            require(
                k <= p * c,
                "num_classes",
                k,
                f"at most signal_length × num_features = {p * c}: each class needs "
                "its own orthogonal pattern, and the informative part holds no more",
            )
            require(bool(np.isfinite(snr)) and snr >= 0, "snr", snr, "a finite number >= 0")
        if min_length is not None:
            lowest = start + p if mode == "patterns" else 1
            require(
                lowest <= min_length <= seq_len,
                "min_length",
                min_length,
                f"in [{lowest}, {seq_len}]: at least 1 step" + (" and the whole pattern" if mode == "patterns" else ""),
            )

    # --- generating -------------------------------------------------------------------------------------------------
    def make_patterns(self) -> Tensor:
        """K orthogonal patterns (K, P, C), each of norm ``snr``, fixed by the seed."""
        hp = self.hparams
        k, p, c = self.num_classes, hp.signal_length, hp.num_features
        gaussian = torch.randn(p * c, k, generator=_generator(hp.seed, "patterns"), dtype=torch.float64)
        q, _ = torch.linalg.qr(gaussian)  # (P*C, K) orthonormal columns
        return (hp.snr * q.T).reshape(k, p, c).float()

    def generate(self, split: str, epoch: int = 0) -> dict[str, Tensor]:
        """One split's tensors, drawn from that split's own random stream (``epoch`` > 0 only when resampling)."""
        hp = self.hparams
        n = {"train": hp.train_size, "val": hp.val_size, "test": hp.test_size}[split]
        g = _generator(hp.seed, split, epoch)
        k, t = self.num_classes, hp.seq_len
        if hp.mode == "random":
            y = torch.randint(0, k, (n,), generator=g)  # the tutorial's i.i.d. uniform labels
        else:
            y = torch.arange(n) % k  # balanced: class counts differ by at most one
            y = y[torch.randperm(n, generator=g)]
        x = torch.randn(n, t, hp.num_features, generator=g)  # (N, T, C) noise
        if hp.mode == "patterns":
            s = hp.signal_start
            x[:, s : s + hp.signal_length] += self.patterns[y]  # plant each sequence's class pattern
        if hp.min_length is None:
            # no lengths at all: the encoder then runs dense, which is faster than packing equal lengths
            return {"x": x, "y": y, "id": torch.arange(n)}
        lengths = torch.randint(hp.min_length, t + 1, (n,), generator=g)
        x = x * (torch.arange(t).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)  # zero padding
        return {"x": x, "lengths": lengths, "y": y, "id": torch.arange(n)}

    def bayes_predict(self, x: Tensor) -> Tensor:
        """The Bayes-optimal decision for ``patterns`` data (B, T, C): the best-matching pattern in the window."""
        require(self.hparams.mode == "patterns", "mode", self.hparams.mode, "'patterns' (the only one with a rule)")
        s, p = self.hparams.signal_start, self.hparams.signal_length
        scores = torch.einsum("bpc,kpc->bk", x[:, s : s + p].double(), self.patterns.double())  # (B, K)
        return scores.argmax(dim=-1)

    def _load_file(self) -> dict[str, dict[str, Tensor]]:
        hp = self.hparams
        file = Path(hp.path)
        require(file.is_file(), "path", hp.path, "an existing .npz file")
        try:
            with np.load(file, allow_pickle=False) as data:
                arrays = {key: data[key] for key in data.files}
        except Exception as err:  # noqa: BLE001 - numpy raises many types for a bad file; all mean the same here
            raise InputError(f"path={hp.path!r} is not a readable .npz file ({type(err).__name__})") from None
        for key in ("x", "y"):
            require(key in arrays, "path", hp.path, f"an .npz holding '{key}' (it has {sorted(arrays)})")
        x = torch.as_tensor(arrays["x"], dtype=torch.float32)
        require(x.ndim == 3, "x shape", tuple(x.shape), "(sequences, steps, features)")
        y = torch.as_tensor(arrays["y"]).long()
        lengths = (
            torch.as_tensor(arrays["lengths"]).long() if "lengths" in arrays else torch.full((len(x),), x.shape[1])
        )
        require(len(y) > 0, "path", hp.path, "a file with at least one sequence")
        present = int(y.max()) + 1  # the classes the file's labels reach
        check_classification("file", x, y, lengths, self.num_classes if self.num_classes is not None else present)
        # NaN or inf in the inputs (or float64 values beyond float32's range, inf once cast) would train to NaN
        valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]
        bad = (~torch.isfinite(x)).any(dim=-1) & valid
        if bool(bad.any()):
            i, t = (int(v) for v in bad.nonzero()[0])
            raise InputError(
                f"path={hp.path!r}: x[{i}, {t}] holds {arrays['x'][i, t].tolist()}: inputs need finite numbers up to "
                f"{float(torch.finfo(torch.float32).max):.3g} (float32)"
            )
        if self.num_classes is None:
            self.num_classes = present
        require(
            self.num_classes <= present,
            "num_classes",
            self.num_classes,
            f"at most {present}: the file's labels only go up to {present - 1}",
        )
        if "label_names" in arrays:
            self.label_names = [str(v) for v in arrays["label_names"]]
            require(
                len(self.label_names) == self.num_classes,
                "label_names in the file",
                self.label_names,
                f"{self.num_classes} names, one per class",
            )
        require(
            hp.val_size + hp.test_size < len(x),
            "val_size + test_size",
            hp.val_size + hp.test_size,
            f"fewer than the file's {len(x)} sequences, leaving some for training",
        )
        order = torch.randperm(len(x), generator=_generator(hp.seed, "train"))
        parts = {
            "test": order[: hp.test_size],
            "val": order[hp.test_size : hp.test_size + hp.val_size],
            "train": order[hp.test_size + hp.val_size :],
        }
        return {s: {"x": x[i], "lengths": lengths[i], "y": y[i], "id": i} for s, i in parts.items()}

    # --- Lightning hooks --------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if self.datasets:  # idempotent: the CLI sets data up once, early, before the Trainer does
            return
        hp = self.hparams
        if hp.mode == "file":
            splits = self._load_file()
        else:
            if hp.mode == "patterns":
                self.patterns = self.make_patterns()
            splits = {s: self.generate(s) for s in SPLITS if s != "val" or hp.val_size > 0}
        crop = hp.get("crop_min_length")
        width = splits["train"]["x"].shape[1]
        require(crop is None or crop <= width, "crop_min_length", crop, f"empty or at most the {width} steps stored")
        for split, data in splits.items():
            if len(data["y"]):
                full = torch.full((len(data["y"]),), data["x"].shape[1])  # what absent lengths mean
                check_classification(split, data["x"], data["y"], data.get("lengths", full), self.num_classes)
                self.datasets[split] = TensorDictDataset(**data)
        self.label_names = self.label_names or [str(k) for k in range(self.num_classes)]
        self.datasets["predict"] = self.datasets["test"]

    def spec(self) -> dict[str, Any]:
        """What the classifier takes from the data: sizes, label names, and the best accuracy possible."""
        hp = self.hparams
        spec: dict[str, Any] = {
            "num_classes": self.num_classes,
            "label_names": list(self.label_names),
            "input_size": self.datasets["test"].tensors["x"].shape[2],
            "seq_len": self.datasets["test"].tensors["x"].shape[1],  # for the model's chrono gate initialisation
        }
        if hp.mode == "random":
            spec["bayes_accuracy"] = 1.0 / self.num_classes  # labels are independent of the inputs
        elif hp.mode == "patterns":
            spec["bayes_accuracy"] = bayes_accuracy(self.num_classes, hp.snr)
        return spec

    def train_dataloader(self) -> DataLoader:
        hp = self.hparams
        dataset = _TrainingBatches(self)
        world, rank = replicas(self.trainer)
        sampler = _TaggedBatches(len(dataset), hp.batch_size, hp.shuffle, hp.seed, world, rank)
        return ResumableLoader(dataset, sampler=sampler, batch_size=None, collate_fn=batch_identity,
                               num_workers=hp.num_workers, persistent_workers=hp.num_workers > 0)  # fmt: skip

    def _loader(self, split: str) -> DataLoader:
        hp = self.hparams
        return tensor_loader(self.datasets[split], hp.batch_size, False, hp.num_workers, trainer=self.trainer,
                             even=split == "val")  # fmt: skip

    def val_dataloader(self) -> DataLoader | list:
        return self._loader("val") if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")
