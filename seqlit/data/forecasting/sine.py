"""The noisy sine wave of the tutorial: x_t = sin(frequency · t) + noise · U[0, 1), split into train / val / test.

Defaults reproduce the tutorial's data exactly: 1000 points, frequency 0.02, noise amplitude 2, the first 800 points
for training (the last 100 of them kept for validation here) and the last 200 for test, windows of 3 values predicting
the next, batches of 32. Because the noise is known, so is the best error any forecaster can reach: the variance of
``noise · U[0, 1)``, which is noise² / 12 (1/3 by default). The module hands that floor to the task, which logs it
beside the model's error.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from seqlit.data.forecasting.base import SeriesDataModule
from seqlit.errors import require


class SineDataModule(SeriesDataModule):
    """Noisy sine wave windows (see the module docstring).

    Args:
        length: points in the series.
        frequency: angular frequency per step (the tutorial's 0.02: one period every ~314 steps).
        noise: amplitude of the uniform noise added to every point.
        seed: seed of the noise, so every run sees the same series, and of the training-window shuffles.
        window, horizon, val_size, test_size, stride, scaler, batch_size, shuffle, num_workers:
            see :class:`~seqlit.data.forecasting.base.SeriesDataModule`.
    """

    def __init__(
        self,
        *,
        length: int = 1000,
        frequency: float = 0.02,
        noise: float = 2.0,
        seed: int = 0,
        window: int = 3,
        horizon: int = 1,
        val_size: int | float = 100,
        test_size: int | float = 200,
        stride: int = 1,
        scaler: str = "none",
        batch_size: int = 32,
        shuffle: bool = True,
        num_workers: int = 0,
    ) -> None:
        super().__init__(window=window, horizon=horizon, val_size=val_size, test_size=test_size, stride=stride,
                         scaler=scaler, batch_size=batch_size, shuffle=shuffle, num_workers=num_workers,
                         seed=seed)  # fmt: skip
        require(length >= 2, "length", length, "at least 2 points")
        require(np.isfinite(frequency), "frequency", frequency, "a finite number")
        # the noise floor noise² / 12 is logged in float32: a larger amplitude overflows it to inf (or raises)
        require(np.isfinite(noise) and 0 <= noise <= 1e19, "noise", noise, "an amplitude in [0, 1e19]")
        self.save_hyperparameters()

    def load_series(self) -> tuple[np.ndarray, list[str], int]:
        hp = self.hparams
        t = np.arange(hp.length)
        rng = np.random.default_rng(hp.seed)
        x = np.sin(hp.frequency * t) + hp.noise * rng.random(hp.length)  # (N,) uniform noise: its mean is noise / 2
        return x[:, None], ["x"], 1  # (N, 1): one column, which is also the one target

    def signal(self) -> np.ndarray:
        """The noise-free expectation of every point, sin(f·t) + noise/2: the best possible forecast."""
        t = np.arange(self.hparams.length)
        return np.sin(self.hparams.frequency * t) + self.hparams.noise / 2

    def extra_spec(self) -> dict[str, Any]:
        return {"noise_floor": self.hparams.noise**2 / 12.0}  # variance of noise · U[0, 1)
