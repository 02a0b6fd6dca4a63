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
* ``file`` — your own sequences from an ``.npz`` file, read and split exactly as
  :class:`~seqlit.data.classification.npz.NpzDataModule` does (which new configs should use directly).

Generated sets are fixed by ``seed`` (train, val, test and the patterns each have their own random stream);
``resample: true`` instead draws a fresh training set every epoch, as the tutorial did. ``crop_min_length`` cuts
each *training* batch to a random length in [crop_min_length, seq_len] (one length per batch, so batches stay dense):
a crop of a sequence whose pattern lies at the start is a sample of the same task at a shorter length, and the short
ones give the network an easy gradient for learning the patterns before it must carry them through the whole length.
Validation and test sequences are never cropped, so what is measured does not change. Checks, batches, loaders and
the spec come from :class:`~seqlit.data.classification.base.ClassificationDataModule`.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from seqlit.data.classification.base import SPLITS, ClassificationDataModule, seeded_generator
from seqlit.errors import require


def bayes_accuracy(num_classes: int, snr: float, points: int = 40001) -> float:
    """Accuracy of the best rule for K equally likely orthogonal patterns of norm ``snr`` in unit Gaussian noise.

    The matched filter's score for the true class is N(snr, 1), the others N(0, 1), all independent (orthogonal
    patterns), so P(correct) = ∫ φ(z − snr) Φ(z)^(K−1) dz. For K = 2 this is Φ(snr / √2); for snr = 0 it is 1 / K.
    """
    z = torch.linspace(min(snr, 0.0) - 12.0, max(snr, 0.0) + 12.0, points, dtype=torch.float64)
    density = torch.exp(-0.5 * (z - snr) ** 2) / np.sqrt(2 * np.pi)  # φ(z − snr)
    return float(torch.trapezoid(density * torch.special.ndtr(z) ** (num_classes - 1), z))


class SyntheticDataModule(ClassificationDataModule):
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
        *,
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
        require(mode in ("random", "patterns", "file"), "mode", mode, "one of 'random', 'patterns', 'file'")
        # generated data has 10 classes unless told; a file's count may come from its labels
        super().__init__(num_classes=num_classes if mode == "file" else (num_classes or 10), val_size=val_size,
                         test_size=test_size, crop_min_length=crop_min_length, seed=seed, batch_size=batch_size,
                         shuffle=shuffle, num_workers=num_workers)  # fmt: skip
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
        self.patterns: Tensor | None = None  # (K, P, C), patterns mode
        self._drawn: tuple[int, dict[str, Tensor]] | None = None  # (epoch, that epoch's fresh training set)

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
        gaussian = torch.randn(p * c, k, generator=seeded_generator(hp.seed, "patterns"), dtype=torch.float64)
        q, _ = torch.linalg.qr(gaussian)  # (P*C, K) orthonormal columns
        return (hp.snr * q.T).reshape(k, p, c).float()

    def generate(self, split: str, epoch: int = 0) -> dict[str, Tensor]:
        """One split's tensors, drawn from that split's own random stream (``epoch`` > 0 only when resampling)."""
        hp = self.hparams
        n = {"train": hp.train_size, "val": hp.val_size, "test": hp.test_size}[split]
        g = seeded_generator(hp.seed, split, epoch)
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

    # --- what the base asks for -------------------------------------------------------------------------------------
    def load_splits(self) -> dict[str, dict[str, Tensor]]:
        hp = self.hparams
        if hp.mode == "file":  # the file reader is needed only here
            from seqlit.data.classification.npz import read_npz_splits

            splits, self.num_classes, self.label_names = read_npz_splits(
                path=hp.path, num_classes=self.num_classes, val_size=hp.val_size, test_size=hp.test_size, seed=hp.seed
            )
            return splits
        if hp.mode == "patterns":
            self.patterns = self.make_patterns()  # before generating: every split plants the same patterns
        return {s: self.generate(s) for s in SPLITS if s != "val" or hp.val_size > 0}

    def _resample(self) -> bool:
        return bool(self.hparams.resample) and self.hparams.mode != "file"

    def training_set(self, epoch: int) -> dict[str, Tensor]:
        if not self._resample():
            return super().training_set(epoch)
        if self._drawn is None or self._drawn[0] != epoch:  # one fresh set per epoch, drawn from its own stream
            self._drawn = (epoch, self.generate("train", epoch))
        return self._drawn[1]

    def training_size(self) -> int:
        return self.hparams.train_size if self._resample() else super().training_size()

    def known_bayes_accuracy(self) -> float | None:
        if self.hparams.mode == "random":
            return 1.0 / self.num_classes  # labels are independent of the inputs
        if self.hparams.mode == "patterns":
            return bayes_accuracy(self.num_classes, self.hparams.snr)
        return None
