"""Chrono initialisation of the gated cells (Tallec & Ollivier, "Can recurrent neural networks warp time?", ICLR 2018).

It starts an LSTM or GRU remembering over ``t_max`` steps instead of a few: an LSTM's forget-gate biases are drawn as
log U[1, T_max - 1] and its input-gate biases set to their negatives; a GRU's update gate (torch's ``z``, which keeps
the old state) gets the same log U[1, T_max - 1]. Dependencies as long as the sequence then get a gradient from the
first step on. :class:`~seqlit.models.encoder.RecurrentEncoder` loads this module for ``gate_init="chrono"`` only.
"""

from __future__ import annotations

import torch
from torch import nn


@torch.no_grad()
def chrono_init(rnn: nn.LSTM | nn.GRU, t_max: int) -> None:
    """Set the gate biases of every layer and direction of ``rnn`` for memories of 1 to ``t_max`` steps."""
    D = rnn.hidden_size
    for name, bias in rnn.named_parameters():
        if name.startswith("bias_hh"):
            # torch keeps an input-side and a hidden-side bias per gate that simply add: the ih side holds it all
            bias[: 2 * D] = 0.0
        elif name.startswith("bias_ih"):
            keep = torch.log(torch.empty(D).uniform_(1.0, t_max - 1.0))  # (D,): memory times of 1..T_max-1 steps
            if isinstance(rnn, nn.LSTM):  # gate order (i, f, g, o)
                bias[D : 2 * D] = keep  # forget gate
                bias[:D] = -keep  # input gate: a unit that remembers long lets little in
            else:  # gru, gate order (r, z, n); h' = (1 - z) n + z h, so z is the gate that keeps
                bias[D : 2 * D] = keep
