"""The recurrent encoder every task shares: one of ``rnn``, ``lstm``, ``gru`` or ``scratch`` behind one interface.

Input is batch-first (B, T, C); optional ``lengths`` (B,) mark the real steps of padded sequences, which the torch
cells then see as a packed batch (a dense one when no sequence is padded) and the scratch cell as a mask. The encoder
returns all step outputs, the output at each sequence's last real step (both directions joined when bidirectional),
and the recurrent state, which stateful training (truncated BPTT) feeds back in for the next chunk.

On the CPU a unidirectional ``gru`` reading a dense batch runs by default through
:func:`seqlit.models.gru_fast.fast_gru` (``gru_impl="fast"``): the same ``nn.GRU`` module and parameters, the same
numbers, faster to train, since PyTorch's CPU GRU, unlike its LSTM, has no fused kernel. ``gru_impl="torch"`` keeps
``nn.GRU``'s own loop.
"""

from __future__ import annotations

from typing import Literal, NamedTuple, get_args

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from seqlit.errors import require

Cell = Literal["rnn", "lstm", "gru", "scratch"]  # the type configs see (LightningCLI reads the choices)
CELLS: tuple[str, ...] = get_args(Cell)
GATE_INITS = ("default", "chrono")
GRU_IMPLS = ("fast", "torch")

State = Tensor | tuple[Tensor, Tensor]


class EncoderOutput(NamedTuple):
    outputs: Tensor  # (B, T, dirs*D), zeros past each sequence's length
    last: Tensor  # (B, dirs*D): top layer's state at the last real step, forward and backward joined
    state: State  # (L*dirs, B, D), or (h, c) for an LSTM


class RecurrentEncoder(nn.Module):
    """A stack of recurrent layers with one calling convention for every cell type.

    Args:
        input_size: features per step (C).
        hidden_size: units per layer and direction (D).
        cell: ``rnn`` (Elman, torch), ``lstm``, ``gru``, or ``scratch`` (the Elman cell written out in Python).
        num_layers: stacked layers (L).
        dropout: dropout between stacked layers (ignored with one layer, as torch does).
        bidirectional: also read each sequence backwards and join both directions (dirs = 2).
        nonlinearity: ``tanh`` or ``relu``, for ``rnn`` and ``scratch`` only.
        gate_init: ``default`` (torch's) or ``chrono`` (:mod:`seqlit.models.chrono`: gate biases for memories up to
            ``chrono_t_max`` steps long; ``lstm`` and ``gru`` only, the ungated ``rnn`` and ``scratch`` have no gate).
        chrono_t_max: the longest dependency ``chrono`` prepares for, usually the sequence length (at least 2).
        scratch_impl: how the ``scratch`` cell runs its time loop: ``fast`` (hand-written backward, the default),
            ``eager`` (the readable loop of :mod:`seqlit.models.scratch`), ``script`` or ``compile``. Every choice has
            the same parameters and computes the same numbers, so it never matters to a checkpoint.
        gru_impl: how the ``gru`` cell runs on the CPU: ``fast`` (:func:`~seqlit.models.gru_fast.fast_gru`, the
            default) or ``torch`` (``nn.GRU``'s own loop). Both use the same ``nn.GRU`` module and compute the same
            numbers, so a checkpoint never depends on it and the ``gru_impl`` attribute may be changed at any time.
            ``fast`` applies to unidirectional layers reading a dense batch (no ``lengths``) of float32 or float64
            on the CPU; packed batches, bidirectional layers and other devices always run ``nn.GRU``.
    """

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int = 128,
        cell: str = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
        gate_init: str = "default",
        chrono_t_max: int | None = None,
        scratch_impl: str = "fast",
        gru_impl: str = "fast",
    ) -> None:
        super().__init__()
        require(cell in CELLS, "cell", cell, f"one of {', '.join(CELLS)}")
        require(input_size >= 1, "input_size", input_size, "at least 1 feature per step")
        require(hidden_size >= 1, "hidden_size", hidden_size, "at least 1")
        require(num_layers >= 1, "num_layers", num_layers, "at least 1")
        require(0.0 <= dropout < 1.0, "dropout", dropout, "a probability in [0, 1)")
        require(nonlinearity in ("tanh", "relu"), "nonlinearity", nonlinearity, "one of 'tanh', 'relu'")
        require(gate_init in GATE_INITS, "gate_init", gate_init, f"one of {', '.join(GATE_INITS)}")
        require(gru_impl in GRU_IMPLS, "gru_impl", gru_impl, f"one of {', '.join(GRU_IMPLS)}")
        if gate_init == "chrono":
            require(chrono_t_max is not None and chrono_t_max >= 2, "chrono_t_max", chrono_t_max,
                    "an int >= 2 (the longest dependency to remember, usually the sequence length)")  # fmt: skip
        self.cell, self.hidden_size, self.num_layers, self.gru_impl = cell, hidden_size, num_layers, gru_impl
        self.directions = 2 if bidirectional else 1
        dropout = dropout if num_layers > 1 else 0.0  # torch warns about inter-layer dropout on a single layer
        common = dict(num_layers=num_layers, dropout=dropout, bidirectional=bidirectional)
        if cell == "scratch":
            from seqlit.models.scratch import ScratchRNN  # only this cell needs it: the others never load the lesson

            self.rnn: nn.Module = ScratchRNN(
                input_size=input_size, hidden_size=hidden_size, nonlinearity=nonlinearity, impl=scratch_impl, **common
            )
        elif cell == "rnn":
            self.rnn = nn.RNN(input_size, hidden_size, nonlinearity=nonlinearity, batch_first=True, **common)
        else:
            self.rnn = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](input_size, hidden_size, batch_first=True, **common)
            if gate_init == "chrono":
                from seqlit.models.chrono import chrono_init  # only this option needs it, as with the scratch cell

                chrono_init(self.rnn, chrono_t_max)

    @property
    def output_size(self) -> int:
        """Width of ``outputs`` and ``last``: hidden size times directions."""
        return self.hidden_size * self.directions

    def runs_fast_gru(self, x: Tensor) -> bool:
        """Whether a dense batch ``x`` runs through :func:`~seqlit.models.gru_fast.fast_gru` rather than ``nn.GRU``."""
        return (
            self.cell == "gru"
            and self.gru_impl == "fast"
            and self.directions == 1
            and x.device.type == "cpu"
            and x.dtype in (torch.float32, torch.float64)
            and not torch.jit.is_tracing()  # a traced or exported graph records nn.GRU, which exporters know
            and not torch.jit.is_scripting()
        )

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: State | None = None) -> EncoderOutput:
        """Encode ``x`` (B, T, C); ``lengths`` (B,) of real steps, each in [1, T]; ``state`` to continue from."""
        T = x.shape[1]
        if self.cell == "scratch":  # masks padded steps itself: no packing
            outputs, h_n = self.rnn(x, state, lengths=lengths)  # (B, T, dirs*D), (L*dirs, B, D)
            new_state: State = h_n
        elif lengths is None or (not torch.jit.is_tracing() and bool((lengths == T).all())):
            # every step is real (no lengths, or all equal to T): the dense (fastest) path, the packed path's numbers
            if self.runs_fast_gru(x):
                from seqlit.models.gru_fast import fast_gru  # only the gru cell loads it, as scratch loads its own

                outputs, new_state = fast_gru(self.rnn, x, state)  # (B, T, D), (L, B, D): nn.GRU's numbers
            else:
                outputs, new_state = self.rnn(x, state)  # (B, T, dirs*D)
        else:
            # pack_padded_sequence wants int64 lengths on the CPU; enforce_sorted=False keeps the batch order
            packed = pack_padded_sequence(x, lengths.cpu().long(), batch_first=True, enforce_sorted=False)
            packed_out, new_state = self.rnn(packed, state)
            # back to (B, T, dirs*D), zeros past each length; total_length keeps T even if the longest is shorter
            outputs, _ = pad_packed_sequence(packed_out, batch_first=True, total_length=T)
        h_n = new_state[0] if isinstance(new_state, tuple) else new_state  # (L*dirs, B, D)
        top = h_n[-self.directions :]  # the top layer's final state per direction: (dirs, B, D)
        last = torch.cat(list(top), dim=-1)  # (B, dirs*D)
        return EncoderOutput(outputs, last, new_state)
