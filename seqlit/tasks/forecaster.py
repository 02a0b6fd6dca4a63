"""Forecasting task: a :class:`~seqlit.models.ForecastNet` trained with MSE, MAE or a quantile loss, judged against
honest references.

Beside the model's MSE, RMSE, MAE and sMAPE (in the data's own units, after undoing any scaling) it logs the same
metrics for reference forecasts on the very same windows: the baselines the data module put in the batch
(``baselines``: persistence, seasonal naive, linear AR for CSV series) or, when it gives none, the persistence forecast
(repeat the last observed value), as ``{stage}/persistence_mse`` etc. Where the data module knows the noise floor (the
error of a perfect forecaster), ``{stage}/mse_vs_floor`` is the model's MSE divided by it: 1.0 is the best possible.
Quantile forecasts, their calibration and the least-squares highway start are :mod:`seqlit.tasks.forecast_intervals`.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from torch import Tensor, nn
from torchmetrics import MeanMetric, MetricCollection
from torchmetrics.regression import MeanAbsoluteError, MeanSquaredError, SymmetricMeanAbsolutePercentageError

from seqlit.errors import require
from seqlit.models.encoder import Cell
from seqlit.models.forecaster import ForecastNet
from seqlit.tasks.base import Optimizer, ScheduleBy, Scheduler, SeqlitTask


def metric_set(prefix: str) -> MetricCollection:
    """The metrics every forecast (the model's and each baseline's) is scored with, in data units."""
    metrics = {"mse": MeanSquaredError(), "rmse": MeanSquaredError(squared=False), "mae": MeanAbsoluteError(),
               "smape": SymmetricMeanAbsolutePercentageError()}  # fmt: skip
    return MetricCollection(metrics, prefix=prefix)


class Forecaster(SeqlitTask):
    """Predict the next ``horizon`` values of a series from a window of its past.

    Args:
        cell: recurrent cell: ``rnn``, ``lstm``, ``gru`` or ``scratch``.
        hidden_size: units per layer and direction.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers.
        bidirectional: read each window in both directions.
        nonlinearity: ``tanh`` or ``relu`` (``rnn`` and ``scratch`` cells).
        highway: add a linear map of each target's last ``highway`` values to the output (0: off; at most the window).
        highway_init: ``random``, or ``least_squares``: when training starts, set the highway to the least-squares
            linear AR fit on the training windows (each quantile output moved by that quantile of the fit's residuals)
            and zero the recurrent head, so the network starts as the best linear forecaster and learns the rest.
        loss: ``mse``, ``mae``, ``quantile`` (pinball over ``quantiles``; the point forecast is the level nearest 0.5)
            or ``mse+quantile`` (a mean forecast trained by MSE beside the quantiles), on the scaled targets.
        quantiles: levels the ``quantile`` loss forecasts, increasing in (0, 1); the outermost two bound the interval.
        calibrate: widen (or narrow) the interval after every validation epoch so that it covers its nominal share of
            the validation targets (conformalized quantile regression, one margin per step ahead and target, kept in
            the checkpoint). Quantile loss only.
        optimizer: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``rmsprop``.
        lr: learning rate.
        weight_decay: L2 penalty (decoupled for ``adamw``).
        scheduler: ``none``, ``cosine`` or ``linear`` decay to zero, or ``plateau`` (halve on a flat ``val/loss``).
        warmup_steps: linear learning-rate warm-up steps.
        schedule_by: what the decay spans: ``steps`` (the step budget) or ``time`` (``trainer.max_time``).
        input_size: features per step; taken from the data when left empty.
        horizon: steps predicted; taken from the data when left empty.
        num_targets: series predicted; taken from the data when left empty.
        target_transform: transform the data applied to the targets before scaling (``sqrt``, ``log1p``), inverted
            for metrics and predictions; taken from the data when left empty.
    """

    required_sizes = ("input_size", "horizon", "num_targets")
    optional_sizes = ("target_transform",)

    def __init__(
        self,
        cell: Cell = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        highway: int = 0,
        highway_init: Literal["random", "least_squares"] = "random",
        loss: Literal["mse", "mae", "quantile", "mse+quantile"] = "mse",
        quantiles: list[float] | None = None,
        calibrate: bool = False,
        optimizer: Optimizer = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: Scheduler = "none",
        warmup_steps: int = 0,
        schedule_by: ScheduleBy = "steps",
        input_size: int | None = None,
        horizon: int | None = None,
        num_targets: int | None = None,
        target_transform: Literal["none", "sqrt", "log1p"] | None = None,
    ) -> None:
        super().__init__()
        require(highway >= 0, "model.highway", highway, "0 (off) or a number of past steps")
        inits = ("random", "least_squares")
        require(highway_init in inits, "model.highway_init", highway_init, f"one of {', '.join(inits)}")
        require(highway_init == "random" or highway > 0, "model.highway_init", highway_init,
                "'random' unless model.highway > 0 (there is no highway to fit)")  # fmt: skip
        losses = ("mse", "mae", "quantile", "mse+quantile")
        require(loss in losses, "model.loss", loss, f"one of {', '.join(losses)}")
        quantiles = [0.1, 0.5, 0.9] if quantiles is None else list(quantiles)
        ok = len(quantiles) >= 1 and all(0 < q < 1 for q in quantiles) and quantiles == sorted(set(quantiles))
        require(ok, "model.quantiles", quantiles, "levels strictly increasing inside (0, 1), such as [0.1, 0.5, 0.9]")
        self.save_hyperparameters()
        self.register_buffer("levels", torch.tensor(quantiles), persistent=False)
        self.probabilistic = loss in ("quantile", "mse+quantile")
        self.num_quantiles = len(quantiles) if self.probabilistic else 1
        # outputs per step and target: the quantiles, plus a separate mean forecast for mse+quantile
        self.num_outputs = self.num_quantiles + (loss == "mse+quantile")
        # the point forecast of a pure quantile model: its level nearest the median
        self.point_index = min(range(len(quantiles)), key=lambda i: abs(quantiles[i] - 0.5))
        # "train" cannot be a ModuleDict key (nn.Module.train exists), hence the suffix
        self.metrics = nn.ModuleDict({f"{s}_": metric_set(f"{s}/") for s in ("val", "test")})
        self.coverage = nn.ModuleDict({f"{s}_": MeanMetric() for s in ("val", "test")})  # quantile models only
        self.noise_floor: float | None = None
        self.target_names: list[str] = []
        self.set_baselines([])
        self.test_records: list[dict[str, Tensor]] = []
        self.build_if_sized()

    def set_baselines(self, names: list[str]) -> None:
        """Metrics for the data's baselines; with none, persistence is computed here from each window."""
        self.baseline_names = list(names) or ["persistence"]
        per_stage = {s: {b: metric_set(f"{s}/{b}_") for b in self.baseline_names} for s in ("val", "test")}
        self.baseline_metrics = nn.ModuleDict({f"{s}_": nn.ModuleDict(m) for s, m in per_stage.items()})

    def build(self) -> None:
        hp = self.hparams
        highway = hp.get("highway", 0)  # absent from checkpoints older than the option
        self.net = ForecastNet(input_size=hp.input_size, horizon=hp.horizon, num_targets=hp.num_targets,
                               num_outputs=self.num_outputs, hidden_size=hp.hidden_size, cell=hp.cell,
                               num_layers=hp.num_layers, dropout=hp.dropout, bidirectional=hp.bidirectional,
                               nonlinearity=hp.nonlinearity, highway=highway)  # fmt: skip
        # scaling of the targets, so metrics and predictions come out in the data's own units; buffers travel
        # inside the checkpoint
        self.register_buffer("target_shift", torch.zeros(hp.num_targets))
        self.register_buffer("target_scale", torch.ones(hp.num_targets))
        if hp.get("calibrate") and self.probabilistic:
            # conformal margin (H, K) added outside the outermost quantiles, in scaled units; lives in the checkpoint
            self.register_buffer("interval_margin", torch.zeros(hp.horizon, hp.num_targets))
            self.interval_scores: list[Tensor] = []  # this validation epoch's conformity scores

    def apply_spec(self, spec: dict[str, Any]) -> None:
        if "target_shift" in spec:
            self.target_shift.copy_(torch.tensor(spec["target_shift"]))
            self.target_scale.copy_(torch.tensor(spec["target_scale"]))
        self.noise_floor = spec.get("noise_floor")
        window = spec.get("window")
        require(not window or self.hparams.highway <= window, "model.highway", self.hparams.highway,
                f"at most the data's window ({window} steps)")  # fmt: skip
        if spec.get("baseline_names"):
            self.set_baselines(spec["baseline_names"])
        self.target_names = spec.get("target_names") or [f"y{k}" for k in range(self.hparams.num_targets)]

    def configure_model(self) -> None:
        super().configure_model()
        # a resumed fit gets its weights back from the checkpoint after this hook, so fitting here is always safe
        if self.fitting() and self.hparams.get("highway_init") == "least_squares":
            from seqlit.tasks.forecast_intervals import fit_highway_on_training_windows  # this option only

            fit_highway_on_training_windows(self)

    def forward(self, x: Tensor) -> Tensor:
        """Scaled window (B, W, C) → scaled forecast (B, H, K), or (B, H, K, Q) quantiles for the quantile loss."""
        return self.net(x)

    def point_and_quantiles(self, out: Tensor, adjust: bool = True) -> tuple[Tensor, Tensor | None]:
        """Network output → point forecast (B, H, K) and, for a quantile model, sorted quantiles (B, H, K, Q),
        the interval widened by the calibration margin unless ``adjust`` is false."""
        if not self.probabilistic:
            return out, None
        from seqlit.tasks.forecast_intervals import point_and_quantiles  # quantile models only

        return point_and_quantiles(self, out, adjust=adjust)

    def unscale(self, v: Tensor, batch: dict[str, Tensor] | None = None) -> Tensor:
        """Scaled targets (..., B, H, K) → the data's units (undoing the scaler, then any target transform). A batch
        with its own ``scale`` and ``shift`` (B, K) (many series, each scaled on its own) wins over the global ones."""
        if batch is not None and "scale" in batch:
            v = v * batch["scale"][:, None] + batch["shift"][:, None]  # (B, 1, K): the same for every step ahead
        else:
            v = v * self.target_scale + self.target_shift
        transform = self.hparams.get("target_transform")
        if transform == "sqrt":
            return v.clamp(min=0) ** 2
        return torch.expm1(v) if transform == "log1p" else v

    def loss_fn(self, out: Tensor, y: Tensor) -> Tensor:
        """The training loss of outputs ``out`` (B, H, K) or (B, H, K, Q) for targets ``y`` (B, H, K), scaled units."""
        if self.probabilistic:
            from seqlit.models.forecast_intervals import quantile_loss  # quantile models only

            out = out if out.dim() == 4 else out.unsqueeze(-1)  # one quantile level: ForecastNet drops the axis
            return quantile_loss(out, y, mean_first=self.hparams.loss == "mse+quantile", levels=self.levels)
        error = out - y
        return error.pow(2).mean() if self.hparams.loss == "mse" else error.abs().mean()

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        x, y = batch["x"], batch["y"]
        out = self(x)  # (B, H, K) or (B, H, K, Q)
        loss = self.loss_fn(out, y)
        self.log_loss(stage, loss, len(x))
        if stage == "train":  # metrics in data units only where they are reported, not on the hot path
            return loss
        pred, quantiles = self.point_and_quantiles(out.detach())
        pred_u, y_u = self.unscale(pred, batch).contiguous(), self.unscale(y, batch)  # torchmetrics views them flat
        # metrics are updated every step and logged once per epoch (_log_epoch_metrics): logging a torchmetrics
        # object from every step costs Lightning ~1 ms of bookkeeping per metric and step, for the same epoch value
        self.metrics[f"{stage}_"].update(pred_u, y_u)
        refs = self.baseline_forecasts(batch)  # (B, NB, H, K) in data units
        for i, name in enumerate(self.baseline_names):
            self.baseline_metrics[f"{stage}_"][name].update(refs[:, i].contiguous(), y_u)
        record = {"position": batch["position"].cpu(), "pred": pred_u.cpu(), "y": y_u.cpu(), "baselines": refs.cpu()}
        record.update({"series": batch["series"].cpu()} if "series" in batch else {})  # many series: which one
        if quantiles is not None:
            from seqlit.tasks.forecast_intervals import score_intervals  # coverage and calibration scores

            record["quantiles"] = score_intervals(self, out.detach(), quantiles, batch, y_u, stage).cpu()
        if stage == "test":
            self.test_records.append(record)
        return loss

    def baseline_forecasts(self, batch: dict[str, Tensor]) -> Tensor:
        """The batch's baseline forecasts (B, NB, H, K) in data units; persistence from the window when it has none."""
        if "baselines" in batch:
            return batch["baselines"]  # already in data units
        K, H = self.hparams.num_targets, batch["y"].shape[1]  # the targets are the window's first K features
        return self.unscale(batch["x"][:, -1:, :K], batch).expand(-1, H, -1).unsqueeze(1)  # repeat the last value

    def on_test_epoch_start(self) -> None:
        self.test_records = []

    def _log_epoch_metrics(self, stage: str) -> None:
        """Log the epoch's metrics (the model's, the baselines', coverage, the noise floor) and reset them."""
        collections = [self.metrics[f"{stage}_"], *self.baseline_metrics[f"{stage}_"].values()]
        if not any(m.update_called for m in collections[0].values()):
            return
        values = {}
        for collection in collections:
            values.update(collection.compute())  # synchronised across processes by torchmetrics
            collection.reset()
        coverage = self.coverage[f"{stage}_"]
        if coverage.update_called:
            values[f"{stage}/coverage"] = coverage.compute()
            coverage.reset()
        if self.noise_floor:
            values[f"{stage}/noise_floor"] = float(self.noise_floor)
            values[f"{stage}/mse_vs_floor"] = values[f"{stage}/mse"] / self.noise_floor
        self.log_dict(values)

    def on_validation_epoch_end(self) -> None:
        if hasattr(self, "interval_margin"):
            from seqlit.tasks.forecast_intervals import calibrate  # calibrated models only

            calibrate(self)
        self._log_epoch_metrics("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    # What follows serves test and predict only; their modules load when first asked for, not with the task.
    def metrics_note(self) -> str:
        """What the test table's numbers are: the loss on the model's scale, the rest in the data's units."""
        from seqlit.tasks.forecast_outputs import describe_metrics

        return describe_metrics(self)

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """One row per window and horizon step (see :func:`~seqlit.tasks.forecast_outputs.prediction_rows`)."""
        from seqlit.tasks.forecast_outputs import prediction_rows

        pred, quantiles = self.point_and_quantiles(self(batch["x"]))  # (B, H, K), (B, H, K, Q) or None
        return prediction_rows(self, batch, pred, quantiles)

    def configure_callbacks(self) -> list:
        from seqlit.tasks.forecast_outputs import ForecastFigure
        from seqlit.tasks.outputs import PredictionWriter

        return [PredictionWriter(), ForecastFigure()]
