"""Forecasting task: a :class:`~seqlit.models.ForecastNet` trained with MSE or MAE, judged against honest references.

Beside the model's MSE and MAE (in the data's own units, after undoing any scaling) it logs two references on the very
same windows: the persistence forecast (repeat the last observed value) and, where the data module knows it, the noise
floor (the error of a perfect forecaster). ``val/mse_vs_floor`` and ``test/mse_vs_floor`` are the model's MSE divided by
that floor: 1.0 is the best any model can do.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import MeanAbsoluteError, MeanSquaredError, MetricCollection

from seqlit.callbacks import ForecastFigure, PredictionWriter
from seqlit.models.forecaster import ForecastNet
from seqlit.tasks.base import Optimizer, Scheduler, SeqlitTask

Cell = Literal["rnn", "lstm", "gru", "scratch"]
STAGES = ("train", "val", "test")


class Forecaster(SeqlitTask):
    """Predict the next ``horizon`` values of a series from a window of its past.

    Args:
        cell: recurrent cell: ``rnn``, ``lstm``, ``gru`` or ``scratch``.
        hidden_size: units per layer and direction.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers.
        bidirectional: read each window in both directions.
        nonlinearity: ``tanh`` or ``relu`` (``rnn`` and ``scratch`` cells).
        loss: ``mse`` or ``mae``, computed on the scaled targets.
        optimizer: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``rmsprop``.
        lr: learning rate.
        weight_decay: L2 penalty (decoupled for ``adamw``).
        scheduler: ``none``, ``cosine`` or ``linear`` decay per step, or ``plateau`` (halve on a flat ``val/loss``).
        warmup_steps: linear learning-rate warm-up steps.
        input_size: features per step; taken from the data when left empty.
        horizon: steps predicted; taken from the data when left empty.
        num_targets: series predicted; taken from the data when left empty.
    """

    linked = ("input_size", "horizon", "num_targets")

    def __init__(
        self,
        cell: Cell = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        loss: Literal["mse", "mae"] = "mse",
        optimizer: Optimizer = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: Scheduler = "none",
        warmup_steps: int = 0,
        input_size: int | None = None,
        horizon: int | None = None,
        num_targets: int | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        self.loss_fn = nn.MSELoss() if loss == "mse" else nn.L1Loss()
        metrics = MetricCollection({"mse": MeanSquaredError(), "mae": MeanAbsoluteError()})
        # "train" cannot be a ModuleDict key (nn.Module.train exists), hence the suffix
        self.metrics = nn.ModuleDict({f"{s}_": metrics.clone(prefix=f"{s}/") for s in ("val", "test")})
        self.persistence = nn.ModuleDict({f"{s}_": MeanSquaredError() for s in ("val", "test")})
        self.noise_floor: float | None = None
        self.target_names: list[str] = []
        self.test_records: list[dict[str, Tensor]] = []
        self.maybe_build()

    def build(self) -> None:
        hp = self.hparams
        self.net = ForecastNet(
            hp.input_size, hp.horizon, hp.num_targets, 1, hp.hidden_size, hp.cell, hp.num_layers, hp.dropout,
            hp.bidirectional, hp.nonlinearity,
        )
        # scaling of the targets, so metrics and predictions come out in the data's own units; buffers travel
        # inside the checkpoint
        self.register_buffer("target_shift", torch.zeros(hp.num_targets))
        self.register_buffer("target_scale", torch.ones(hp.num_targets))

    def apply_spec(self, spec: dict[str, Any]) -> None:
        if "target_shift" in spec:
            self.target_shift.copy_(torch.tensor(spec["target_shift"]))
            self.target_scale.copy_(torch.tensor(spec["target_scale"]))
        self.noise_floor = spec.get("noise_floor")
        self.target_names = spec.get("target_names") or [f"y{k}" for k in range(self.hparams.num_targets)]

    def forward(self, x: Tensor) -> Tensor:
        """Scaled window (B, W, C) → scaled forecast (B, H, K)."""
        return self.net(x)

    def unscale(self, v: Tensor) -> Tensor:
        """Scaled targets (..., K) → the data's units."""
        return v * self.target_scale + self.target_shift

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        x, y = batch["x"], batch["y"]
        pred = self(x)  # (B, H, K)
        loss = self.loss_fn(pred, y)
        self.log(f"{stage}/loss", loss, on_step=stage == "train", on_epoch=True, prog_bar=True, batch_size=len(x))
        if stage == "train":  # metrics in data units only where they are reported, not on the hot path
            return loss
        pred_u, y_u = self.unscale(pred), self.unscale(y)
        k = self.hparams.num_targets
        last_seen = self.unscale(x[:, -1:, :k]).expand_as(y_u)  # persistence: repeat the last observed value
        self.metrics[f"{stage}_"].update(pred_u, y_u)
        self.persistence[f"{stage}_"].update(last_seen, y_u)
        self.log_dict(self.metrics[f"{stage}_"], on_epoch=True)
        self.log(f"{stage}/persistence_mse", self.persistence[f"{stage}_"], on_epoch=True)
        if stage == "test":
            self.test_records.append({"position": batch["position"].cpu(), "pred": pred_u.cpu(), "y": y_u.cpu()})
        return loss

    def training_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def on_test_epoch_start(self) -> None:
        self.test_records = []

    def _log_floor(self, stage: str) -> None:
        if self.noise_floor:
            mse = self.metrics[f"{stage}_"]["mse"].compute()
            self.log(f"{stage}/noise_floor", float(self.noise_floor))
            self.log(f"{stage}/mse_vs_floor", mse / self.noise_floor)

    def on_validation_epoch_end(self) -> None:
        self._log_floor("val")

    def on_test_epoch_end(self) -> None:
        self._log_floor("test")

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """One row per window and horizon step: position in the series, step ahead, prediction, target (NaN if unknown)."""
        pred = self.unscale(self(batch["x"]))  # (B, H, K)
        y = self.unscale(batch["y"])
        B, H, K = pred.shape
        steps = torch.arange(1, H + 1).repeat(B)  # (B*H,)
        positions = batch["position"].cpu().repeat_interleave(H) + steps - 1
        rows: dict[str, Any] = {"position": positions, "step": steps}
        names = self.target_names if K > 1 else [""]
        for k, name in enumerate(names):
            suffix = f"_{name}" if name else ""
            rows[f"prediction{suffix}"] = pred[..., k].reshape(-1).cpu()
            rows[f"target{suffix}"] = y[..., k].reshape(-1).cpu()
        return rows

    def configure_callbacks(self) -> list:
        return [PredictionWriter(), ForecastFigure()]
