"""Forecasting network: a recurrent encoder reads a window of past values, a linear head emits the next H steps.

Letters: B batch, W window, C features, H horizon, K targets, Q outputs per step and target, D hidden size. What turns
Q outputs into quantile forecasts (the pinball loss, intervals) is :mod:`seqlit.models.forecast_intervals`.
"""

from __future__ import annotations

from torch import Tensor, nn

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
        self.encoder = RecurrentEncoder(input_size=input_size, hidden_size=hidden_size, cell=cell,
                                        num_layers=num_layers, dropout=dropout, bidirectional=bidirectional,
                                        nonlinearity=nonlinearity)  # fmt: skip
        self.head = nn.Linear(self.encoder.output_size, horizon * num_targets * num_outputs)  # all H steps at once
        self.highway = nn.Linear(highway, horizon * num_outputs) if highway > 0 else None  # shared by the targets

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, W, C) → (B, H, K) when ``num_outputs`` is 1, else (B, H, K, Q) (for example quantiles)."""
        last = self.encoder(x).last  # (B, dirs*D)
        out = self.head(last).view(x.shape[0], self.horizon, self.num_targets, self.num_outputs)  # (B, H, K, Q)
        if self.highway is not None:
            lags = x[:, -self.highway.in_features :, : self.num_targets].transpose(1, 2)  # (B, K, highway)
            linear = self.highway(lags).view(x.shape[0], self.num_targets, self.horizon, self.num_outputs)
            out = out + linear.transpose(1, 2)  # (B, H, K, Q)
        return out if self.num_outputs > 1 else out.squeeze(-1)
