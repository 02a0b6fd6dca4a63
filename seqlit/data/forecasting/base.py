"""Base data module for forecasting: any source that yields a numeric series (N, C) gets windows, splits and scaling.

A subclass implements :meth:`SeriesDataModule.load_series` (and may override the hooks below it); everything after
that (checks of the values, chronological split, scaler fit on the training span, windows per span, the loaders, the
sizes handed to the model) lives here once. Batches are dicts: ``x`` (B, W, C) scaled inputs, ``y`` (B, H, K) scaled
targets, ``position`` (B,) the index in the series of the first predicted step, and the subclass's reference
forecasts as ``baselines`` (B, NB, H, K) in data units, so the task scores them on exactly the model's windows. The
first K columns of the series are the targets: ``x[..., :K]`` is their own history (what persistence repeats).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from seqlit.data.forecasting.windows import SPANS, Scaler, sliding_windows, split_by_size
from seqlit.data.loading import TensorDictDataset, tensor_loader
from seqlit.errors import InputError, require


@dataclass(frozen=True)
class ForecastSpec:
    """What a forecaster takes from its data: sizes, target names and scaling, reference forecasts."""

    input_size: int  # C, columns of the series the model reads
    horizon: int  # H, steps predicted at once
    window: int  # W, past steps the model sees
    num_targets: int  # K, the leading columns that are forecast
    target_names: list[str]
    target_shift: list[float]  # per target: the scaler's (v - shift) / scale, undone for metrics in data units
    target_scale: list[float]
    baseline_names: list[str]  # the batch's ``baselines`` (B, NB, H, K), in this order
    target_transform: str  # ``none``, ``sqrt`` or ``log1p``, applied before scaling
    noise_floor: float | None = None  # the best MSE any forecaster can reach, where the source knows it


class SeriesDataModule(L.LightningDataModule):
    """Windows of a multivariate series, split chronologically into train / val / test spans.

    Args:
        window: past steps the model sees (W).
        horizon: future steps it predicts (H), all at once.
        val_size: validation span, carved from the end of the training span: steps (int) or a fraction (float).
        test_size: test span at the end of the series: steps (int) or a fraction (float).
        stride: step between consecutive training windows.
        scaler: ``none``, ``standard`` or ``minmax``, fit on the training span only.
        batch_size: windows per batch.
        shuffle: reshuffle training windows every epoch.
        num_workers: DataLoader worker processes (0 is fastest for data that lives in memory).
        context_across_spans: let validation and test windows read their inputs from before their span (their
            targets always lie inside it), so every step of those spans is forecast. Off: windows stay inside a span.
        seed: seed of the training-window shuffles; epoch ``e`` is shuffled from ``seed + e`` alone, so a resumed run
            sees the same batches as one that never stopped.
    """

    def __init__(
        self,
        *,
        window: int = 3,
        horizon: int = 1,
        val_size: int | float = 100,
        test_size: int | float = 200,
        stride: int = 1,
        scaler: str = "none",
        batch_size: int = 32,
        shuffle: bool = True,
        num_workers: int = 0,
        context_across_spans: bool = False,
        seed: int = 0,
    ) -> None:
        super().__init__()
        require(window >= 1, "window", window, "at least 1 step")
        require(horizon >= 1, "horizon", horizon, "at least 1 step")
        require(stride >= 1, "stride", stride, "at least 1 step")
        require(batch_size >= 1, "batch_size", batch_size, "at least 1")
        require(num_workers >= 0, "num_workers", num_workers, "0 or more")
        # the base's own settings, not read back from hparams: a subclass that passes **kwargs through saves only
        # what it was given, and the defaults here must still apply
        self.settings = SimpleNamespace(window=window, horizon=horizon, val_size=val_size, test_size=test_size,
                                        stride=stride, batch_size=batch_size, shuffle=shuffle,
                                        num_workers=num_workers)  # fmt: skip
        self.scaler = Scaler(scaler)
        self.datasets: dict[str, TensorDictDataset] = {}
        self.bounds: dict[str, tuple[int, int]] = {}
        self.series: np.ndarray | None = None  # the raw (unscaled) series, kept for figures and predictions
        self.names: list[str] = []
        self.baseline_names: list[str] = []
        self.target_transform = "none"  # set by a subclass that offers one; see transform_targets
        self.context_across_spans = context_across_spans
        self.shuffle_seed = seed

    # --- what a subclass provides -------------------------------------------------------------------------------
    def load_series(self) -> tuple[np.ndarray, list[str], int]:
        """Return the series (N, C) as float, its column names, and how many leading columns are targets."""
        raise NotImplementedError

    def unscaled_columns(self) -> list[int]:
        """Columns the scaler leaves alone (for example one-hot indicators); none by default."""
        return []

    def baseline_forecasts(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """Reference forecasts, name → (M, H, K) in data units, for windows whose first predicted step is at
        ``positions`` (indices into the series); none by default. Called once the series, spans and scaler are set."""
        return {}

    def transform_targets(self, targets: np.ndarray, names: list[str]) -> np.ndarray:
        """The target columns (N, K) before scaling, transformed as ``self.target_transform`` names; as they are by
        default. The task inverts the transform for metrics and predictions."""
        return targets

    def extra_spec(self) -> dict[str, Any]:
        """Further :class:`ForecastSpec` fields the source knows (for example ``noise_floor``); none by default."""
        return {}

    # --- shared machinery -----------------------------------------------------------------------------------------
    @property
    def num_targets(self) -> int:
        return self._num_targets

    def setup(self, stage: str | None = None) -> None:
        if self.datasets:  # idempotent: the CLI sets data up once, early, before the Trainer does
            return
        hp = self.settings
        values, names, num_targets = self.load_series()
        values = np.asarray(values, dtype=np.float64)  # (N, C), float64 so the scaler's statistics are exact
        bad = np.argwhere(~np.isfinite(values))  # one NaN makes every LSTM output NaN: refuse it here, by name
        if len(bad):
            row, col = bad[0]
            raise InputError(
                f"series column {names[col]!r} has a non-finite value ({values[row, col]}) at step {row} "
                f"({len(bad)} in all): NaN and inf are not allowed; fill or drop them first"
            )
        self.series, self.names, self._num_targets = values, names, num_targets
        self.bounds = split_by_size(len(values), hp.val_size, hp.test_size)
        for span, (start, end) in self.bounds.items():
            # every span must hold a window: validation picks the checkpoint, test reports the result
            # with context across spans, a later span's windows read their inputs from the spans before it
            across = self.context_across_spans and span != "train"
            need, what = (hp.horizon, "horizon") if across else (hp.window + hp.horizon, "window + horizon")
            steps = f"the {span} span's {end - start} steps (steps {start}..{end - 1})"
            require(end - start >= need, what, need, f"at most {steps}, so it holds a window")
        prepared = values.copy()  # the raw series stays in self.series, for figures and predictions in data units
        prepared[:, :num_targets] = self.transform_targets(values[:, :num_targets], names)
        # fit on the training span alone: statistics of val/test would leak the future into training
        self.scaler.fit(prepared[slice(*self.bounds["train"])], names, keep=self.unscaled_columns())
        scaled = self.scaler.transform(prepared).astype(np.float32)  # (N, C)
        for span in SPANS:
            start, end = self.bounds[span]
            stride = hp.stride if span == "train" else 1  # evaluate on every window, whatever the training stride
            lo = start - hp.window if self.context_across_spans and span != "train" else start  # inputs may look back
            # x (M, W, C), y (M, H, K), pos (M,) relative to lo
            x, y, pos = sliding_windows(scaled[lo:end], hp.window, hp.horizon, num_targets, stride)
            self.datasets[span] = TensorDictDataset(**self._window_tensors(x, y, pos + lo))  # positions in the series
        # predict: every test window, plus the window that ends at the series' end, whose future is unknown (NaN)
        test = self.datasets["test"].tensors
        future = self._window_tensors(
            scaled[None, -hp.window :],  # (1, W, C): the last W steps
            np.full((1, hp.horizon, num_targets), np.nan, np.float32),  # (1, H, K): not yet observed
            np.array([len(values)]),  # its first predicted step lies just past the end
        )
        self.datasets["predict"] = TensorDictDataset(**{k: torch.cat([test[k], future[k]]) for k in test})

    def _window_tensors(self, x: np.ndarray, y: np.ndarray, positions: np.ndarray) -> dict[str, torch.Tensor]:
        """The batch columns of windows: inputs, targets, positions and, where the subclass has them, baselines."""
        out = {"x": torch.from_numpy(x), "y": torch.from_numpy(y), "position": torch.from_numpy(positions)}
        found = self.baseline_forecasts(positions)
        if found:
            self.baseline_names = list(found)
            stacked = np.stack([found[name] for name in self.baseline_names], axis=1)  # (M, NB, H, K), data units
            out["baselines"] = torch.from_numpy(stacked.astype(np.float32))
        return out

    def spec(self) -> ForecastSpec:
        """Sizes and scaling the model takes from the data, so nobody types them twice."""
        k = self.num_targets
        return ForecastSpec(
            input_size=self.series.shape[1],
            horizon=self.settings.horizon,
            window=self.settings.window,
            num_targets=k,
            target_names=self.names[:k],
            target_shift=[float(v) for v in self.scaler.shift[:k]],  # plain floats: they go into checkpoints
            target_scale=[float(v) for v in self.scaler.scale[:k]],
            baseline_names=list(self.baseline_names),
            target_transform=self.target_transform,
            **self.extra_spec(),
        )

    def _loader(self, span: str) -> DataLoader:
        hp = self.settings
        shuffle = span == "train" and hp.shuffle
        even = span in ("train", "val")  # test and predict: every window exactly once over all processes
        return tensor_loader(self.datasets[span], hp.batch_size, shuffle, hp.num_workers, seed=self.shuffle_seed,
                             trainer=self.trainer, even=even)  # fmt: skip

    def train_dataloader(self) -> DataLoader:
        return self._loader("train")

    def val_dataloader(self) -> DataLoader:
        return self._loader("val")

    def test_dataloader(self) -> DataLoader:
        return self._loader("test")

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict")

    def state_dict(self) -> dict[str, Any]:
        """Scaler statistics as plain data, stored in every checkpoint."""
        return {"scaler": self.scaler.state(), "names": list(self.names)} if self.series is not None else {}
