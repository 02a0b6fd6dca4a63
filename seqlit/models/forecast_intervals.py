"""Quantile forecasts without Lightning: the pinball loss that trains one output per quantile, reading a point
forecast and sorted quantiles off the outputs, an interval's coverage and conformal margin, and the least-squares
start of the highway. Only a forecaster that uses them (a quantile loss, ``calibrate``, ``highway_init:
least_squares``) loads this module. Letters as in :mod:`seqlit.models.forecaster`.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlit.errors import require
from seqlit.models.forecaster import ForecastNet


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    """Mean quantile (pinball) loss of forecasts ``pred`` (..., Q) for ``target`` (...) at levels ``quantiles`` (Q,).

    For level q and error e = target - pred the loss is max(q·e, (q - 1)·e): under-forecasts cost q per unit,
    over-forecasts 1 - q, so its minimiser is the q-quantile of the target's distribution (at 0.5: the median, and
    the loss is half the MAE).
    """
    err = target.unsqueeze(-1) - pred  # (..., Q)
    return torch.maximum(quantiles * err, (quantiles - 1) * err).mean()


def quantile_loss(out: Tensor, target: Tensor, *, mean_first: bool, levels: Tensor) -> Tensor:
    """The pinball loss of outputs ``out`` (B, H, K, Q) for ``target`` (B, H, K) at ``levels``; with ``mean_first``,
    output 0 is a mean forecast scored by MSE beside the quantiles (the ``mse+quantile`` loss)."""
    if not mean_first:
        return pinball_loss(out, target, levels)
    return nn.functional.mse_loss(out[..., 0], target) + pinball_loss(out[..., 1:], target, levels)


def interval_coverage(lower: Tensor, upper: Tensor, target: Tensor) -> Tensor:
    """Fraction of ``target`` values inside ``[lower, upper]`` (all of one shape)."""
    return ((target >= lower) & (target <= upper)).float().mean()


def split_quantiles(
    out: Tensor, *, mean_first: bool, point_index: int, margin: Tensor | None = None
) -> tuple[Tensor, Tensor]:
    """Quantile outputs (B, H, K, Q) → point forecast (B, H, K) and sorted quantiles (B, H, K, Q').

    ``mean_first``: output 0 is a separate mean forecast (the point), the rest are quantiles; otherwise the point is
    quantile ``point_index``. ``margin`` (H, K), when given, widens the interval between the outermost quantiles.
    """
    mean, out = (out[..., 0], out[..., 1:]) if mean_first else (None, out)
    # sorting removes quantile crossing (a lower level above a higher one) without changing the loss's minimiser
    quantiles = out.sort(dim=-1).values
    point = quantiles[..., point_index] if mean is None else mean
    if margin is not None and quantiles.shape[-1] > 1:
        quantiles = quantiles.clone()
        quantiles[..., 0] -= margin
        quantiles[..., -1] += margin
        quantiles = quantiles.sort(dim=-1).values  # a negative margin must not cross the inner levels
    return point, quantiles


def conformal_margin(scores: Tensor, *, nominal: float) -> Tensor:
    """Split-conformal margin (H, K) from conformity scores (M, H, K): how far the truth lay outside the raw interval.

    Widening the interval by the ``nominal`` quantile of the scores (with the finite-sample correction
    ``(1 + 1/M)``) makes it cover at least ``nominal`` of new targets drawn like the calibration ones.
    """
    level = min(1.0, nominal * (1 + 1 / len(scores)))
    return torch.quantile(scores, level, dim=0)


@torch.no_grad()
def fit_highway(net: ForecastNet, x: Tensor, y: Tensor, levels: list[float | None]) -> Tensor:
    """Set ``net``'s highway to the least-squares linear AR fit of ``y`` (M, H, K) on windows ``x`` (M, W, C) and zero
    its recurrent head, so training starts from the best linear forecaster and learns only what it misses.

    ``levels`` names each output: a quantile level, whose bias is moved by the level's quantile of the fit's
    residuals (a first interval), or None for a mean forecast. Returns the fit's residual RMSE per step (H,).
    """
    require(net.highway is not None, "highway", 0, "a number of past steps > 0 to fit a highway")
    p, horizon, q = net.highway.in_features, net.horizon, net.num_outputs  # lags, H, Q
    lags = x[:, -p:, : net.num_targets].transpose(1, 2).reshape(-1, p).double()  # (M*K, p)
    targets = y.transpose(1, 2).reshape(-1, horizon).double()  # (M*K, H)
    design = torch.cat([lags, torch.ones(len(lags), 1, dtype=lags.dtype)], dim=1)  # a column of ones: intercept
    coef = torch.linalg.lstsq(design, targets, driver="gelsd").solution  # (p + 1, H)
    residuals = targets - design @ coef  # (M*K, H)
    offsets = torch.stack(
        [torch.zeros(horizon, dtype=lags.dtype) if lv is None else residuals.quantile(lv, dim=0) for lv in levels],
        dim=1,
    )  # (H, Q)
    net.highway.weight.copy_(coef[:p].T.repeat_interleave(q, dim=0))  # rows ordered (h, q), as forward reads
    net.highway.bias.copy_((coef[p][:, None] + offsets).reshape(-1))
    net.head.weight.zero_()
    net.head.bias.zero_()
    return residuals.pow(2).mean(0).sqrt().float()
