"""What the forecaster writes: the rows of ``seqlit predict`` and the test figure.

The rows (one per window and horizon step) go to ``predictions.csv`` through the shared prediction writer. The figure
(the forecast over the test span and the last test window, with its interval) is drawn on global rank 0 from every
process's gathered test records, logged to TensorBoard as ``test/forecast`` and saved as ``forecast_test.png`` in the
run folder (when there is one).
"""

from __future__ import annotations

from typing import Any

import lightning as L
import numpy as np
import torch
from torch import Tensor

from seqlit.tasks.outputs import gather, publish_figure


def prediction_rows(task: Any, batch: dict[str, Tensor], pred: Tensor, quantiles: Tensor | None) -> dict[str, Any]:
    """Columns of one predicted batch: position in the series (and its time, when the data has a time column), step
    ahead, prediction, quantiles, target (empty where unknown: the future) and the baselines, all in data units.

    ``pred`` (B, H, K) and ``quantiles`` (B, H, K, Q) are the task's scaled point forecast and quantiles.
    """
    pred = task.unscale(pred)  # (B, H, K)
    q_u = task.unscale_quantiles(quantiles) if quantiles is not None else None  # (B, H, K, Q)
    y = task.unscale(batch["y"])  # (B, H, K); NaN where the future is unknown
    refs = task.baseline_forecasts(batch)  # (B, NB, H, K)
    B, H, K = pred.shape
    steps = torch.arange(1, H + 1).repeat(B)  # (B*H,): 1..H for every window
    positions = batch["position"].cpu().repeat_interleave(H) + steps - 1  # the series step each row forecasts
    rows: dict[str, Any] = {"position": positions}
    datamodule = getattr(task.running_trainer, "datamodule", None)
    if hasattr(datamodule, "time_labels"):
        rows["time"] = datamodule.time_labels(positions.numpy())
    rows["step"] = steps
    names = task.target_names if K > 1 else [""]  # one target: plain column names
    for k, name in enumerate(names):
        suffix = f"_{name}" if name else ""
        rows[f"prediction{suffix}"] = pred[..., k].reshape(-1).cpu()
        if q_u is not None:
            for i, level in enumerate(task.levels.tolist()):
                rows[f"q{level:g}{suffix}"] = q_u[..., k, i].reshape(-1).cpu()
        rows[f"target{suffix}"] = y[..., k].reshape(-1).cpu()
        for i, base in enumerate(task.baseline_names):
            rows[f"{base}{suffix}"] = refs[:, i, :, k].reshape(-1).cpu()
    return rows


class ForecastFigure(L.Callback):
    """At test end, plot the forecast over the test span; log it to TensorBoard and save ``forecast_test.png``.

    Top: truth against the one-step-ahead forecast over the whole test span, with the prediction interval (the outermost
    quantiles) as a band when the model forecasts quantiles. Bottom: the last test window's history, its next H true
    values, the H-step forecast and its band, which shows how the error grows with the step ahead.
    """

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        records = gather(trainer, getattr(pl_module, "test_records", []))
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
