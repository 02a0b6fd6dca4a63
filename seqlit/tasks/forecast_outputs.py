"""What the forecaster reports after testing and predicting: the note under the test table, the rows of ``seqlit
predict`` and the test figure.

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

from seqlit.tasks.forecast_intervals import unscale_quantiles
from seqlit.tasks.outputs import gather, publish_figure


def prediction_rows(task: Any, batch: dict[str, Tensor], pred: Tensor, quantiles: Tensor | None) -> dict[str, Any]:
    """Columns of one predicted batch: position in the series (and its time, when the data has a time column), step
    ahead, prediction, quantiles, target (empty where unknown: the future) and the baselines, all in data units.

    ``pred`` (B, H, K) and ``quantiles`` (B, H, K, Q) are the task's scaled point forecast and quantiles.
    """
    pred = task.unscale(pred, batch)  # (B, H, K)
    q_u = unscale_quantiles(task, quantiles, batch) if quantiles is not None else None  # (B, H, K, Q)
    y = task.unscale(batch["y"], batch)  # (B, H, K); NaN where the future is unknown
    refs = task.baseline_forecasts(batch)  # (B, NB, H, K)
    B, H, K = pred.shape
    steps = torch.arange(1, H + 1).repeat(B)  # (B*H,): 1..H for every window
    positions = batch["position"].cpu().repeat_interleave(H) + steps - 1  # the series step each row forecasts
    rows: dict[str, Any] = {"position": positions}
    datamodule = getattr(task.running_trainer, "datamodule", None)
    series = batch["series"].cpu().repeat_interleave(H).numpy() if "series" in batch else None  # many series
    if series is not None and hasattr(datamodule, "series_names"):
        rows = {"series": datamodule.series_names(series), **rows}
    if hasattr(datamodule, "time_labels"):
        where = (series,) if series is not None else ()  # a time axis per series
        rows["time"] = datamodule.time_labels(positions.numpy(), *where)
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


def describe_metrics(task: Any) -> str:
    """One line for under the test table: ``test/loss`` is the training objective, on the scale the model trains on,
    while the other metrics are in the data's units (the table alone prints them side by side, unexplained)."""
    levels = ", ".join(f"q{v:g}" for v in task.levels.tolist())
    objective = {"mse": "mean squared error", "mae": "mean absolute error", "quantile": f"quantile loss over {levels}",
                 "mse+quantile": f"MSE of the mean plus quantile loss over {levels}"}[task.hparams.loss]  # fmt: skip
    transform = task.hparams.get("target_transform") not in (None, "none")
    per_window = getattr(getattr(task.running_trainer, "datamodule", None), "scales_per_window", False)  # many series
    scaled = transform or per_window or bool((task.target_scale != 1).any() or (task.target_shift != 0).any())
    where = "on scaled targets" if scaled else "on the targets as they are"
    return (f"test/loss is the training objective ({objective}) {where}; mse, rmse, mae, smape and the baselines are "
            "in the data's units")  # fmt: skip


def axis_values(datamodule: Any, positions: np.ndarray) -> np.ndarray:
    """X values for series ``positions``: their times (``datetime64``) when the data module has a time column whose
    labels parse as dates, else the positions themselves."""
    if not hasattr(datamodule, "time_labels") or len(positions) == 0:
        return positions
    labels = list(datamodule.time_labels(positions))
    if labels == [str(int(p)) for p in positions]:  # no time column: step numbers, which numpy would read as years
        return positions
    try:
        return np.array(labels, dtype="datetime64")
    except ValueError:  # times in a format numpy does not read: the positions still place the points right
        return positions


def interval_label(pl_module: Any) -> str:
    """What the band is, from the model's outermost quantile levels: ``80 % interval (q0.1–q0.9)``."""
    levels = getattr(pl_module, "levels", None)
    levels = [float(v) for v in levels] if levels is not None else list(pl_module.hparams.get("quantiles") or [])
    if len(levels) < 2:
        return "interval"
    lo, hi = levels[0], levels[-1]
    return f"{100 * (hi - lo):.3g} % interval (q{lo:g}–q{hi:g})"


class ForecastFigure(L.Callback):
    """At test end, plot the forecast over the test span; log it to TensorBoard and save ``forecast_test.png``.

    Top: truth against the one-step-ahead forecast over the whole test span, with the interval between the outermost
    quantiles as a band when the model forecasts quantiles. Bottom: the last test window's history, its next H true
    values, the H-step forecast and its band, which shows how the error grows with the step ahead. The x axis shows the
    data's times when it has a time column, else the series step.
    """

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        records = gather(trainer, getattr(pl_module, "test_records", []))
        records = [r for rank in records for r in rank]
        if trainer.global_rank != 0 or not records:
            return
        import matplotlib

        matplotlib.use("Agg")  # no display on servers; must precede pyplot
        import matplotlib.dates as mdates
        import matplotlib.pyplot as plt

        if "series" in records[0]:  # many series: plot the first one's windows
            records = [{k: v[r["series"] == 0] for k, v in r.items()} for r in records]
            records = [r for r in records if len(r["position"])]
        pos = torch.cat([r["position"] for r in records]).numpy()
        pred = torch.cat([r["pred"][..., 0] for r in records]).numpy()  # (M, H), first target
        truth = torch.cat([r["y"][..., 0] for r in records]).numpy()
        band = None
        if all("quantiles" in r for r in records):
            q = torch.cat([r["quantiles"][..., 0, :] for r in records]).numpy()  # (M, H, Q)
            band = q[..., 0], q[..., -1]
        band_label = interval_label(pl_module)
        order = np.argsort(pos)
        names = getattr(pl_module, "target_names", None)
        datamodule = trainer.datamodule
        x = axis_values(datamodule, pos[order])  # (M,) times or steps
        # wide: the legends sit outside the axes, right of the data, never on it
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(13, 7))
        top.plot(x, truth[order, 0], label="ground truth", color="tab:blue", linewidth=1)
        top.plot(x, pred[order, 0], label="forecast (1 step ahead)", color="tab:orange", linewidth=1.5)
        if band is not None:
            top.fill_between(x, band[0][order, 0], band[1][order, 0], color="tab:orange", alpha=0.25,
                             label=band_label)  # fmt: skip
        if datamodule is not None and hasattr(datamodule, "signal"):
            top.plot(x, datamodule.signal()[pos[order]], "--", label="noise-free signal", color="tab:green")
        top.set_title("Forecast over the test span")
        # the last window: what the model saw, what came next, and what it forecast
        last = order[-1]
        steps = pos[last] + np.arange(pred.shape[1])  # (H,)
        series = getattr(datamodule, "series", None)
        window = getattr(getattr(datamodule, "settings", None), "window", None) or 0
        if series is not None and window:
            past = np.arange(pos[last] - window, pos[last])  # (W,)
            bottom.plot(axis_values(datamodule, past), series[past, 0], label="history (the window)",
                        color="tab:gray", linewidth=1)  # fmt: skip
        x_last = axis_values(datamodule, steps)  # (H,)
        bottom.plot(x_last, truth[last], "o-", label="ground truth", color="tab:blue", markersize=3)
        ahead = f"{len(steps)} steps" if len(steps) > 1 else "1 step"
        bottom.plot(x_last, pred[last], "o-", label=f"forecast ({ahead})", color="tab:orange", markersize=3)
        if band is not None:
            bottom.fill_between(x_last, band[0][last], band[1][last], color="tab:orange", alpha=0.25,
                                label=band_label)  # fmt: skip
        bottom.set_title("The last test window")
        dates = np.issubdtype(x.dtype, np.datetime64)
        for ax in (top, bottom):
            if dates:  # compact tick labels: the year once, then months and days
                ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(ax.xaxis.get_major_locator()))
            ax.set_xlabel("time" if dates else "step")
            ax.set_ylabel(names[0] if names else "value")
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1), fontsize="small")
        publish_figure(trainer, fig, "test/forecast", "forecast_test.png")
