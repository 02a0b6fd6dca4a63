"""Callbacks the tasks attach to themselves: a CSV prediction writer and a forecast figure for TensorBoard.

Both write into the run's folder (``trainer.log_dir``), and only on global rank 0: under DDP each process predicts a
shard, the shards are gathered, and one file is written.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from lightning.pytorch.callbacks import BasePredictionWriter


def run_dir(trainer: L.Trainer) -> Path:
    """The folder of this run (the logger's version folder), created if needed.

    Read from the logger, not ``trainer.log_dir``: under DDP that property is a collective broadcast, which would hang
    when only rank 0 asks (as it does before writing a figure or a file).
    """
    logger = trainer.loggers[0] if trainer.loggers else None
    path = Path(getattr(logger, "log_dir", None) or trainer.default_root_dir)
    path.mkdir(parents=True, exist_ok=True)
    return path


def publish_figure(trainer: L.Trainer, fig: Any, tag: str, filename: str) -> None:
    """Save a matplotlib figure as a PNG in the run folder, log it to every logger that takes figures, close it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    fig.savefig(run_dir(trainer) / filename, dpi=100)
    for logger in trainer.loggers:
        if hasattr(logger.experiment, "add_figure"):
            logger.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=False)
    plt.close(fig)


def _gather(trainer: L.Trainer, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` in one process)."""
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [obj]
    out: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def _columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """Join per-batch dicts of equal-length columns into one dict of lists."""
    cols: dict[str, list] = {}
    for batch in rows:
        for key, values in batch.items():
            values = values.tolist() if hasattr(values, "tolist") else list(values)
            cols.setdefault(key, []).extend(values)
    return cols


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


class PredictionWriter(BasePredictionWriter):
    """Write what ``predict_step`` returns (a dict of equal-length columns per batch) to ``predictions.csv``."""

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        gathered = _gather(trainer, batches)
        if trainer.global_rank != 0:
            return
        cols = _columns([b for rank in gathered for b in rank])
        self.path = run_dir(trainer) / self.filename
        tmp = self.path.with_suffix(".csv.tmp")  # write then rename: never a half-written file
        with tmp.open("w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(cols)
            for row in zip(*cols.values(), strict=True):
                writer.writerow([_fmt(v) for v in row])
        tmp.replace(self.path)
        print(f"Predictions: {self.path} ({len(next(iter(cols.values()), []))} rows)")


class ForecastFigure(L.Callback):
    """At test end, plot the forecast over the test span; log it to TensorBoard and save ``forecast_test.png``.

    Top: truth against the one-step-ahead forecast over the whole test span, with the prediction interval (the outermost
    quantiles) as a band when the model forecasts quantiles. Bottom: the last test window's history, its next H true
    values, the H-step forecast and its band, which shows how the error grows with the step ahead.
    """

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        records = _gather(trainer, getattr(pl_module, "test_records", []))
        records = [r for rank in records for r in rank]
        if trainer.global_rank != 0 or not records:
            return
        import matplotlib

        matplotlib.use("Agg")  # no display on servers; must precede pyplot
        import matplotlib.pyplot as plt

        pos = torch.cat([r["position"] for r in records]).numpy()
        pred = torch.cat([r["pred"][..., 0] for r in records]).numpy()  # (M, H), first target
        truth = torch.cat([r["y"][..., 0] for r in records]).numpy()
        band = None
        if all("quantiles" in r for r in records):
            q = torch.cat([r["quantiles"][..., 0, :] for r in records]).numpy()  # (M, H, Q)
            band = q[..., 0], q[..., -1]
        order = np.argsort(pos)
        names = getattr(pl_module, "target_names", None)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(10, 7))
        top.plot(pos[order], truth[order, 0], label="ground truth", color="tab:blue", linewidth=1)
        top.plot(pos[order], pred[order, 0], label="forecast (1 step ahead)", color="tab:orange", linewidth=1.5)
        if band is not None:
            top.fill_between(pos[order], band[0][order, 0], band[1][order, 0], color="tab:orange", alpha=0.25,
                             label="prediction interval")  # fmt: skip
        datamodule = trainer.datamodule
        if datamodule is not None and hasattr(datamodule, "signal"):
            top.plot(pos[order], datamodule.signal()[pos[order]], "--", label="noise-free signal", color="tab:green")
        top.set_title("Forecast over the test span")
        # the last window: what the model saw, what came next, and what it forecast
        last = order[-1]
        steps = pos[last] + np.arange(pred.shape[1])
        series = getattr(datamodule, "series", None)
        window = getattr(getattr(datamodule, "settings", None), "window", None) or 0
        if series is not None and window:
            past = np.arange(pos[last] - window, pos[last])
            bottom.plot(past, series[past, 0], label="history (the window)", color="tab:gray", linewidth=1)
        bottom.plot(steps, truth[last], "o-", label="ground truth", color="tab:blue", markersize=3)
        bottom.plot(steps, pred[last], "o-", label=f"forecast ({len(steps)} steps)", color="tab:orange", markersize=3)
        if band is not None:
            bottom.fill_between(steps, band[0][last], band[1][last], color="tab:orange", alpha=0.25,
                                label="prediction interval")  # fmt: skip
        bottom.set_title("The last test window")
        for ax in (top, bottom):
            ax.set_xlabel("step")
            ax.set_ylabel(names[0] if names else "value")
            ax.legend(loc="upper right", fontsize="small")
        publish_figure(trainer, fig, "test/forecast", "forecast_test.png")
