"""Forecasting network: a recurrent encoder reads a window of past values, a linear head emits the next H steps.

Also the pieces of probabilistic forecasting that need no Lightning: the pinball loss that trains one output per
quantile, reading a point forecast and sorted quantiles off the outputs, and the empirical coverage of an interval.
Letters: B batch, W window, C features, H horizon, K targets, Q outputs per step and target, D hidden size.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlit.errors import require
from seqlit.models.encoder import RecurrentEncoder


class ForecastNet(nn.Module):
    """Window (B, W, C) → forecast (B, H, K) of the next ``horizon`` steps of ``num_targets`` series.

    Direct multi-step output (one linear head for all H steps) rather than feeding predictions back in: it trains
    in one pass and does not compound its own errors. With ``highway`` > 0, a linear map of each target's last
    ``highway`` values is added to the output (LSTNet's autoregressive "highway"): the linear part of the dynamics is
    learned directly, which leaves the recurrent part the nonlinear rest and keeps forecasts on the data's scale.
    """

    def __init__(
        self,
        *,
        input_size: int,
        horizon: int = 1,
        num_targets: int = 1,
        num_outputs: int = 1,
        hidden_size: int = 128,
        cell: str = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
        highway: int = 0,
    ) -> None:
        super().__init__()
        self.horizon, self.num_targets, self.num_outputs = horizon, num_targets, num_outputs
        self.encoder = RecurrentEncoder(
            input_size=input_size,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            nonlinearity=nonlinearity,
        )
        self.head = nn.Linear(self.encoder.output_size, horizon * num_targets * num_outputs)  # all H steps at once
        self.highway = nn.Linear(highway, horizon * num_outputs) if highway > 0 else None  # shared by the targets

    @torch.no_grad()
    def fit_highway(self, x: Tensor, y: Tensor, levels: list[float | None]) -> Tensor:
        """Set the highway to the least-squares linear AR fit of ``y`` (M, H, K) on windows ``x`` (M, W, C) and zero
        the recurrent head, so training starts from the best linear forecaster and learns only what it misses.

        ``levels`` names each output: a quantile level, whose bias is moved by the level's quantile of the fit's
        residuals (a first interval), or None for a mean forecast. Returns the fit's residual RMSE per step (H,).
        """
        require(self.highway is not None, "highway", 0, "a number of past steps > 0 to fit a highway")
        p, horizon, q = self.highway.in_features, self.horizon, self.num_outputs  # lags, H, Q
        lags = x[:, -p:, : self.num_targets].transpose(1, 2).reshape(-1, p).double()  # (M*K, p)
        targets = y.transpose(1, 2).reshape(-1, horizon).double()  # (M*K, H)
        design = torch.cat([lags, torch.ones(len(lags), 1, dtype=lags.dtype)], dim=1)  # a column of ones: intercept
        coef = torch.linalg.lstsq(design, targets, driver="gelsd").solution  # (p + 1, H)
        residuals = targets - design @ coef  # (M*K, H)
        offsets = torch.stack(
            [torch.zeros(horizon, dtype=lags.dtype) if lv is None else residuals.quantile(lv, dim=0) for lv in levels],
            dim=1,
        )  # (H, Q)
        self.highway.weight.copy_(coef[:p].T.repeat_interleave(q, dim=0))  # rows ordered (h, q), as forward reads
        self.highway.bias.copy_((coef[p][:, None] + offsets).reshape(-1))
        self.head.weight.zero_()
        self.head.bias.zero_()
        return residuals.pow(2).mean(0).sqrt().float()

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, W, C) → (B, H, K) when ``num_outputs`` is 1, else (B, H, K, Q) (for example quantiles)."""
        last = self.encoder(x).last  # (B, dirs*D)
        out = self.head(last).view(x.shape[0], self.horizon, self.num_targets, self.num_outputs)  # (B, H, K, Q)
        if self.highway is not None:
            lags = x[:, -self.highway.in_features :, : self.num_targets].transpose(1, 2)  # (B, K, highway)
            linear = self.highway(lags).view(x.shape[0], self.num_targets, self.horizon, self.num_outputs)
            out = out + linear.transpose(1, 2)  # (B, H, K, Q)
        return out if self.num_outputs > 1 else out.squeeze(-1)


def pinball_loss(pred: Tensor, target: Tensor, quantiles: Tensor) -> Tensor:
    """Mean quantile (pinball) loss of forecasts ``pred`` (..., Q) for ``target`` (...) at levels ``quantiles`` (Q,).

    For level q and error e = target - pred the loss is max(q·e, (q - 1)·e): under-forecasts cost q per unit,
    over-forecasts 1 - q, so its minimiser is the q-quantile of the target's distribution (at 0.5: the median, and
    the loss is half the MAE).
    """
    err = target.unsqueeze(-1) - pred  # (..., Q)
    return torch.maximum(quantiles * err, (quantiles - 1) * err).mean()


def forecast_loss(out: Tensor, target: Tensor, *, loss: str, levels: Tensor) -> Tensor:
    """The training loss of outputs ``out`` (B, H, K, Q) for ``target`` (B, H, K), in scaled units.

    ``mse`` and ``mae`` score the single output; ``quantile`` is the pinball loss at ``levels`` (Q,);
    ``mse+quantile`` scores output 0 as a mean forecast by MSE and the rest as quantiles.
    """
    if loss == "quantile":
        return pinball_loss(out, target, levels)
    if loss == "mse+quantile":
        return nn.functional.mse_loss(out[..., 0], target) + pinball_loss(out[..., 1:], target, levels)
    error = out[..., 0] - target  # (B, H, K): the single output
    return error.pow(2).mean() if loss == "mse" else error.abs().mean()


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
