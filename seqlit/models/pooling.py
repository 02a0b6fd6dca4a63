"""Pooling a recurrent encoder's step outputs into one vector per sequence, over the real steps only.

A classifier needs one vector per sequence. ``last`` takes the encoder's state at each sequence's last real step, as
the tutorials do (``out[:, -1, :]``, but correct for padded batches and for the backward direction). ``mean``, ``max``
and ``maxmean`` (both, concatenated) read every step and help when the evidence is spread over a long sequence. Padding
must never leak in: a padded step's output is zero, which would drag a mean down and could win a max over negative
values, so both are masked by ``lengths``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from seqlit.errors import require

POOLINGS = ("last", "mean", "max", "maxmean")
PoolingMode = Literal["last", "mean", "max", "maxmean"]


def step_mask(lengths: Tensor, T: int) -> Tensor:
    """(B,) real lengths → (B, T) boolean mask, True on real steps."""
    return torch.arange(T, device=lengths.device).unsqueeze(0) < lengths.unsqueeze(1)


class Pooling(nn.Module):
    """Reduce step outputs (B, T, D) to (B, D), or (B, 2D) for ``maxmean``, ignoring padded steps."""

    def __init__(self, *, mode: str = "last") -> None:
        super().__init__()
        require(mode in POOLINGS, "pooling", mode, f"one of {', '.join(POOLINGS)}")
        self.mode = mode

    def output_size(self, width: int) -> int:
        """Width of the pooled vector for step outputs of ``width`` features."""
        return 2 * width if self.mode == "maxmean" else width

    def forward(self, outputs: Tensor, last: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``outputs`` (B, T, D) and ``last`` (B, D) from the encoder; ``lengths`` (B,) real steps or None (all T)."""
        if self.mode == "last":
            return last
        if lengths is None:
            mean, peak = outputs.mean(dim=1), outputs.amax(dim=1)  # (B, D) each
        else:
            lengths = lengths.to(outputs.device)
            mask = step_mask(lengths, outputs.shape[1]).unsqueeze(-1)  # (B, T, 1)
            mean = (outputs * mask).sum(dim=1) / lengths.unsqueeze(1).to(outputs.dtype)  # (B, D)
            peak = outputs.masked_fill(~mask, float("-inf")).amax(dim=1)  # (B, D)
        if self.mode == "mean":
            return mean
        if self.mode == "max":
            return peak
        return torch.cat([peak, mean], dim=-1)  # (B, 2D)
