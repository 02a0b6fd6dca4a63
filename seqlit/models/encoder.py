"""The recurrent encoder every task shares: one of ``rnn``, ``lstm``, ``gru`` or ``scratch`` behind one interface.

Input is batch-first (B, T, C); optional ``lengths`` (B,) mark the real steps of padded sequences, which the torch
cells then see as a packed batch and the scratch cell as a mask. The encoder returns all step outputs, the output at
each sequence's last real step (both directions joined when bidirectional), and the recurrent state, which stateful
training (truncated BPTT) feeds back in for the next chunk.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlit.errors import require
from seqlit.models.scratch import ScratchRNN

CELLS = ("rnn", "lstm", "gru", "scratch")

State = Tensor | tuple[Tensor, Tensor]


class EncoderOutput(NamedTuple):
    outputs: Tensor  # (B, T, D*H), zeros past each sequence's length
    last: Tensor  # (B, D*H): top layer's state at the last real step, forward and backward joined
    state: State  # (L*D, B, H), or (h, c) for an LSTM


class RecurrentEncoder(nn.Module):
    """A stack of recurrent layers with one calling convention for every cell type.

    Args:
        input_size: features per step (C).
        hidden_size: units per layer and direction (H).
        cell: ``rnn`` (Elman, torch), ``lstm``, ``gru``, or ``scratch`` (the Elman cell written out in Python).
        num_layers: stacked layers (L).
        dropout: dropout between stacked layers (ignored with one layer, as torch does).
        bidirectional: also read each sequence backwards and join both directions (D = 2).
        nonlinearity: ``tanh`` or ``relu``, for ``rnn`` and ``scratch`` only.
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int = 128,
        cell: str = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__()
        require(cell in CELLS, "cell", cell, f"one of {', '.join(CELLS)}")
        require(input_size >= 1, "input_size", input_size, "at least 1 feature per step")
        require(hidden_size >= 1, "hidden_size", hidden_size, "at least 1")
        require(num_layers >= 1, "num_layers", num_layers, "at least 1")
        require(0.0 <= dropout < 1.0, "dropout", dropout, "a probability in [0, 1)")
        require(nonlinearity in ("tanh", "relu"), "nonlinearity", nonlinearity, "one of 'tanh', 'relu'")
        self.cell, self.hidden_size, self.num_layers = cell, hidden_size, num_layers
        self.directions = 2 if bidirectional else 1
        dropout = dropout if num_layers > 1 else 0.0  # torch warns about inter-layer dropout on a single layer
        common = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional)
        if cell == "scratch":
            self.rnn: nn.Module = ScratchRNN(input_size, hidden_size, nonlinearity=nonlinearity, **common)
        elif cell == "rnn":
            self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True, **common)
        else:
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden_size, batch_first=True, **common)

    @property
    def output_size(self) -> int:
        """Width of ``outputs`` and ``last``: hidden size times directions."""
        return self.hidden_size * self.directions

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: State | None = None) -> EncoderOutput:
        """Encode ``x`` (B, T, C); ``lengths`` (B,) of real steps, each in [1, T]; ``state`` to continue from."""
        T = x.shape[1]
        if self.cell == "scratch":
            outputs, h_n = self.rnn(x, state, lengths=lengths)
            new_state: State = h_n
        elif lengths is None:
            outputs, new_state = self.rnn(x, state)
        else:
            # pack_padded_sequence wants int64 lengths on the CPU; enforce_sorted=False keeps the batch order
            packed = pack_padded_sequence(x, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
            packed_out, new_state = self.rnn(packed, state)
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)
        h_n = new_state[0] if isinstance(new_state, tuple) else new_state  # (L*D, B, H)
        top = h_n[-self.directions :]  # the top layer's final state per direction: (D, B, H)
        last = torch.cat(list(top), dim=-1)  # (B, D*H)
        return EncoderOutput(outputs, last, new_state)
