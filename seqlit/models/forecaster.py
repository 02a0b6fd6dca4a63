"""Forecasting network: a recurrent encoder reads a window of past values, a linear head emits the next H steps."""

from __future__ import annotations

from torch import Tensor, nn

from seqlit.models.encoder import RecurrentEncoder


class ForecastNet(nn.Module):
    """Window (B, T, C) → forecast (B, H, K) of the next ``horizon`` steps of ``num_targets`` series.

    Direct multi-step output (one linear head for all H steps) rather than feeding predictions back in: it trains
    in one pass and does not compound its own errors.
    """

    def __init__(
        self,
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
    ) -> None:
        super().__init__()
        self.horizon, self.num_targets, self.num_outputs = horizon, num_targets, num_outputs
        self.encoder = RecurrentEncoder(
            input_size, hidden_size, cell, num_layers, dropout, bidirectional, nonlinearity
        )
        self.head = nn.Linear(self.encoder.output_size, horizon * num_targets * num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        """``x`` (B, T, C) → (B, H, K) when ``num_outputs`` is 1, else (B, H, K, Q) (for example quantiles)."""
        last = self.encoder(x).last  # (B, D*H_hidden)
        out = self.head(last)  # (B, H*K*Q)
        shape = (x.shape[0], self.horizon, self.num_targets) + ((self.num_outputs,) if self.num_outputs > 1 else ())
        return out.view(shape)
