"""The Forecaster's quantile side: point and interval read off its outputs, coverage, conformal calibration and the
least-squares highway start, on the task's own scale and data.

:class:`~seqlit.tasks.forecaster.Forecaster` loads this module only when its options ask for it (``loss: quantile`` or
``mse+quantile``, ``calibrate``, ``highway_init: least_squares``); the arithmetic is
:mod:`seqlit.models.forecast_intervals`. A quantile model's point forecast is its quantile nearest 0.5 (or the separate
mean of ``mse+quantile``); ``{stage}/coverage`` is how often the truth falls between its lowest and highest quantile
(nominally ``quantiles[-1] - quantiles[0]``).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seqlit.errors import require
from seqlit.models.forecast_intervals import conformal_margin, fit_highway, interval_coverage, split_quantiles


def point_and_quantiles(task: Any, out: Tensor, adjust: bool = True) -> tuple[Tensor, Tensor]:
    """A quantile model's output → point forecast (B, H, K) and sorted quantiles (B, H, K, Q), the interval widened
    by the calibration margin unless ``adjust`` is false."""
    if task.num_outputs == 1:
        out = out.unsqueeze(-1)  # ForecastNet drops a trailing axis of one output
    margin = getattr(task, "interval_margin", None) if adjust else None  # (H, K) once calibrated
    mean_first = task.hparams.loss == "mse+quantile"  # output 0 is then a separate mean forecast
    return split_quantiles(out, mean_first=mean_first, point_index=task.point_index, margin=margin)


def unscale_quantiles(task: Any, quantiles: Tensor, batch: dict[str, Tensor] | None = None) -> Tensor:
    """Scaled quantiles (B, H, K, Q) → the data's units; ``task.unscale`` acts on the last two axes (H, K)."""
    return task.unscale(quantiles.movedim(-1, 0), batch).movedim(0, -1)


def score_intervals(
    task: Any, out: Tensor, quantiles: Tensor, batch: dict[str, Tensor], y_u: Tensor, stage: str
) -> Tensor:
    """One evaluated batch: update ``{stage}/coverage`` of ``quantiles`` (read off ``out``) for the targets ``y_u``
    (data units), keep validation's conformity scores for :func:`calibrate`; the quantiles in data units."""
    if stage == "val" and hasattr(task, "interval_margin"):
        raw = point_and_quantiles(task, out, adjust=False)[1]
        y = batch["y"]
        # conformity score: how far the truth lies outside the raw interval (negative inside), scaled units
        task.interval_scores.append(torch.maximum(raw[..., 0] - y, y - raw[..., -1]))  # (B, H, K)
    q_u = unscale_quantiles(task, quantiles, batch)  # (B, H, K, Q)
    task.coverage[f"{stage}_"].update(interval_coverage(q_u[..., 0], q_u[..., -1], y_u), weight=y_u.numel())
    return q_u


def calibrate(task: Any) -> None:
    """At the end of a validation epoch, set ``interval_margin`` so that the interval covers its nominal share of the
    validation targets (conformalized quantile regression, one margin per step ahead and target)."""
    scores, task.interval_scores = task.interval_scores, []
    if scores and not task.trainer.sanity_checking:  # the sanity check's few batches would calibrate nothing
        nominal = float(task.levels[-1] - task.levels[0])  # the share the interval is meant to cover
        task.interval_margin.copy_(conformal_margin(torch.cat(scores), nominal=nominal))


def fit_highway_on_training_windows(task: Any) -> None:
    """Least-squares AR start for the highway from every training window (see the task's ``highway_init``).

    Under DDP each process fits on its own share of the windows; DDP then copies rank 0's weights to every process
    when it wraps the model, after this hook, so all start alike.
    """
    datamodule = task.trainer.datamodule
    require(datamodule is not None, "model.highway_init", "least_squares",
            "'random' with bare dataloaders: the fit needs a data module's training windows")  # fmt: skip
    batches = list(datamodule.train_dataloader())
    x = torch.cat([b["x"] for b in batches])
    y = torch.cat([b["y"] for b in batches])
    require(len(x) > task.hparams.highway + 1, "model.highway_init", "least_squares",
            f"'random' here: {len(x)} training windows are too few to fit {task.hparams.highway} lags")  # fmt: skip
    quantiles = [float(v) for v in task.levels]
    levels = {"quantile": quantiles, "mse+quantile": [None, *quantiles]}.get(task.hparams.loss, [None])
    fit_highway(task.net, x, y, levels)
