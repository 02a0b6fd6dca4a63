"""Your own labelled sequences from an ``.npz`` file, split at random (seeded) into train / val / test.

The file holds ``x`` (N, T, C) float features, ``y`` (N,) integer labels and optionally ``lengths`` (N,) (the real
length of each zero-padded sequence) and ``label_names`` (K,). The test and validation sets are drawn first, from a
seeded permutation; the rest trains. Batches, checks and the spec come from
:class:`~seqlit.data.classification.base.ClassificationDataModule`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from seqlit.data.classification.base import ClassificationDataModule, check_classification, seeded_generator
from seqlit.errors import InputError, require


def read_npz_splits(
    *, path: str, num_classes: int | None, val_size: int, test_size: int, seed: int
) -> tuple[dict[str, dict[str, Tensor]], int, list[str]]:
    """The file's train / val / test tensors, its number of classes and its label names (empty if it has none)."""
    file = Path(path)
    require(file.is_file(), "path", path, "an existing .npz file")
    try:
        with np.load(file, allow_pickle=False) as data:  # no pickles: a data file must not run code
            arrays = {key: data[key] for key in data.files}
    except Exception as err:  # noqa: BLE001 - numpy raises many types for a bad file; all mean the same here
        raise InputError(f"path={path!r} is not a readable .npz file ({type(err).__name__})") from None
    for key in ("x", "y"):
        require(key in arrays, "path", path, f"an .npz holding '{key}' (it has {sorted(arrays)})")
    x = torch.as_tensor(arrays["x"], dtype=torch.float32)  # (N, T, C)
    require(x.ndim == 3, "x shape", tuple(x.shape), "(sequences, steps, features)")
    y = torch.as_tensor(arrays["y"]).long()  # (N,)
    full = torch.full((len(x),), x.shape[1])  # no lengths stored: every sequence fills the width
    lengths = torch.as_tensor(arrays["lengths"]).long() if "lengths" in arrays else full  # (N,)
    require(len(y) > 0, "path", path, "a file with at least one sequence")
    present = int(y.max()) + 1  # the classes the file's labels reach
    check_classification("file", x, y, lengths, num_classes if num_classes is not None else present)
    # NaN or inf in the inputs (or float64 values beyond float32's range, inf once cast) would train to NaN
    valid = torch.arange(x.shape[1])[None, :] < lengths[:, None]  # (N, T): the steps inside each sequence
    bad = (~torch.isfinite(x)).any(dim=-1) & valid
    if bool(bad.any()):
        i, t = (int(v) for v in bad.nonzero()[0])
        raise InputError(
            f"path={path!r}: x[{i}, {t}] holds {arrays['x'][i, t].tolist()}: inputs need finite numbers up to "
            f"{float(torch.finfo(torch.float32).max):.3g} (float32)"
        )
    num_classes = present if num_classes is None else num_classes
    require(
        num_classes <= present,
        "num_classes",
        num_classes,
        f"at most {present}: the file's labels only go up to {present - 1}",
    )
    names = [str(v) for v in arrays["label_names"]] if "label_names" in arrays else []
    require(
        not names or len(names) == num_classes, "label_names in the file", names, f"{num_classes} names, one per class"
    )
    require(
        val_size + test_size < len(x),
        "val_size + test_size",
        val_size + test_size,
        f"fewer than the file's {len(x)} sequences, leaving some for training",
    )
    order = torch.randperm(len(x), generator=seeded_generator(seed, "train"))
    parts = {
        "test": order[:test_size],
        "val": order[test_size : test_size + val_size],
        "train": order[test_size + val_size :],
    }
    # id: the row in the file, so predictions can be matched back to it
    splits = {s: {"x": x[i], "lengths": lengths[i], "y": y[i], "id": i} for s, i in parts.items()}
    return splits, num_classes, names


class NpzDataModule(ClassificationDataModule):
    """Labelled sequences from an ``.npz`` file (see the module docstring).

    Args:
        path: the ``.npz`` file with ``x`` (N, T, C), ``y`` (N,) [, ``lengths`` (N,), ``label_names`` (K,)].
        num_classes: the classes expected in the file; empty = its highest label + 1.
        val_size: validation sequences drawn from the file (0: no validation).
        test_size: test sequences drawn from the file.
        crop_min_length: cut every training batch to a random length in [crop_min_length, T]; empty = never.
        seed: seed of the split, the training shuffles and the crops.
        batch_size: sequences per batch.
        shuffle: reshuffle the training set every epoch.
        num_workers: DataLoader worker processes (0 is fastest for data in memory).
    """

    def __init__(
        self,
        *,
        path: str,
        num_classes: int | None = None,
        val_size: int = 1000,
        test_size: int = 2000,
        crop_min_length: int | None = None,
        seed: int = 0,
        batch_size: int = 100,
        shuffle: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__(num_classes=num_classes, val_size=val_size, test_size=test_size,
                         crop_min_length=crop_min_length, seed=seed, batch_size=batch_size, shuffle=shuffle,
                         num_workers=num_workers)  # fmt: skip
        self.save_hyperparameters()

    def load_splits(self) -> dict[str, dict[str, Tensor]]:
        hp = self.settings
        splits, self.num_classes, self.label_names = read_npz_splits(
            path=self.hparams.path, num_classes=self.num_classes, val_size=hp.val_size, test_size=hp.test_size,
            seed=hp.seed,
        )  # fmt: skip
        return splits
