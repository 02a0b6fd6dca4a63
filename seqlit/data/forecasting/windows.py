"""Chronological splits, sliding windows and train-span scaling: the one windowing path every series source uses.

A series of N steps is cut into contiguous train / val / test spans (in that order, so the model is always tested on
the future). Windows are taken inside one span at a time, so no window ever straddles two spans, and a scaler is fit on
the training span alone: these are the two ways forecasting code usually leaks the test set into training.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqlit.errors import InputError, require

SPANS = ("train", "val", "test")


def resolve_size(size: int | float, n: int, name: str) -> int:
    """A span size given as a count of steps (int ≥ 0) or as a fraction of ``n`` (float in [0, 1))."""
    if isinstance(size, float) and not float(size).is_integer():
        require(0.0 <= size < 1.0, name, size, "a number of steps (int >= 0) or a fraction in [0, 1)")
        return int(round(size * n))
    require(size >= 0, name, size, "a number of steps (int >= 0) or a fraction in [0, 1)")
    return int(size)


def split_by_size(n: int, val_size: int | float, test_size: int | float) -> dict[str, tuple[int, int]]:
    """``[start, end)`` of the train, val and test spans of a series of ``n`` steps (val carved from train's end)."""
    n_test = resolve_size(test_size, n, "test_size")
    n_val = resolve_size(val_size, n, "val_size")
    n_train = n - n_val - n_test
    require(n_train > 0, "val_size + test_size", n_val + n_test,
            f"fewer than the series' {n} steps, so the training span is not empty")  # fmt: skip
    return {"train": (0, n_train), "val": (n_train, n_train + n_val), "test": (n_train + n_val, n)}


def sliding_windows(
    values: np.ndarray, window: int, horizon: int, num_targets: int, stride: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut ``values`` (N, C) into inputs (M, window, C), targets (M, horizon, K) and target start positions (M,).

    The targets are the first ``num_targets`` columns of the ``horizon`` steps right after each window. Positions are
    relative to ``values``: window m covers steps [p - window, p) and predicts [p, p + horizon), p = positions[m].
    """
    n = len(values) - window - horizon + 1
    if n <= 0:
        return (
            np.zeros((0, window, values.shape[1]), values.dtype),
            np.zeros((0, horizon, num_targets), values.dtype),
            np.zeros((0,), np.int64),
        )
    starts = np.arange(0, n, stride)
    view = np.lib.stride_tricks.sliding_window_view(values, window + horizon, axis=0)  # (N-W-H+1, C, W+H)
    view = view[starts].transpose(0, 2, 1)  # (M, W+H, C)
    x = np.ascontiguousarray(view[:, :window])
    y = np.ascontiguousarray(view[:, window:, :num_targets])
    return x, y, starts + window


@dataclass
class Scaler:
    """Per-column affine scaling ``(v - shift) / scale``, fit on the training span only.

    kind: ``none`` (identity), ``standard`` (mean 0, std 1) or ``minmax`` (to [0, 1]).
    """

    kind: str = "none"
    shift: np.ndarray | None = None
    scale: np.ndarray | None = None

    def __post_init__(self) -> None:
        require(self.kind in ("none", "standard", "minmax"), "scaler", self.kind, "one of 'none', 'standard', 'minmax'")

    def fit(self, values: np.ndarray, names: list[str] | None = None, keep: list[int] | None = None) -> Scaler:
        """Fit on ``values`` (N, C); a constant column under standard/minmax scaling is an error (division by zero).

        Columns listed in ``keep`` stay as they are (shift 0, scale 1): one-hot indicators need no scaling, and one
        that is constant on the training span must not be an error.
        """
        c = values.shape[1]
        if self.kind == "none":
            self.shift, self.scale = np.zeros(c), np.ones(c)
        elif self.kind == "standard":
            self.shift, self.scale = values.mean(0), values.std(0)
        else:
            self.shift, self.scale = values.min(0), values.max(0) - values.min(0)
        if keep:
            self.shift[keep], self.scale[keep] = 0.0, 1.0
        for j in np.flatnonzero(self.scale <= 1e-12 * np.maximum(1.0, np.abs(self.shift))):
            name = names[j] if names else f"column {j}"
            raise InputError(
                f"scaler={self.kind!r} cannot scale {name!r}: it is constant on the training span "
                f"(value {self.shift[j]:g}); use scaler='none' or drop the column"
            )
        return self

    def transform(self, values: np.ndarray) -> np.ndarray:
        return ((values - self.shift) / self.scale).astype(values.dtype)

    def state(self) -> dict:
        """Plain lists, so checkpoints stay loadable with ``torch.load(weights_only=True)``."""
        return {"kind": self.kind, "shift": [float(v) for v in self.shift], "scale": [float(v) for v in self.scale]}
