"""A recurrent layer written out from the Elman equation instead of calling ``torch.nn.RNN``: the lesson.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

Read :func:`elman_steps` first: the input projection of all steps is one matmul, then a plain Python loop walks the
time axis and autograd records every step. :class:`ScratchRNN` wraps it in ``nn.RNN``'s interface: the same parameter
names and shapes (``weight_ih_l0``, ``bias_hh_l0``, ``..._reverse``), so ``scratch.load_state_dict(rnn.state_dict())``
works and a test proves the outputs agree. Variable lengths are handled by masking: past a sequence's end its state is
frozen and its outputs are zero, exactly what a packed ``nn.RNN`` returns.

The same loop also runs as ``fast`` (the default: a hand-written backward pass, :mod:`seqlit.models.scratch_fast`),
``script`` (``torch.jit.script``) or ``compile`` (``torch.compile``); tests check each against this readable one.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seqlit.errors import require

IMPLS = ("eager", "fast", "script", "compile")
Impl = Literal["eager", "fast", "script", "compile"]


def elman_steps(
    projected: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor, mask: Tensor | None, relu: bool
) -> tuple[Tensor, Tensor]:
    """The time loop: input terms ``projected`` (B, T, D) = W_ih x_t + b_ih, start state ``h`` (B, D), real steps
    ``mask`` (B, T) → outputs (B, T, D) and final state (B, D)."""
    outputs: list[Tensor] = []
    for t in range(projected.size(1)):
        pre = projected[:, t] + torch.nn.functional.linear(h, w_hh, b_hh)  # (B, D): W_ih x_t + b_ih + W_hh h + b_hh
        h_new = torch.relu(pre) if relu else torch.tanh(pre)  # the one nonlinearity of the Elman cell
        if mask is not None:  # finished sequences keep their last state and emit zeros
            m = mask[:, t].unsqueeze(1)  # (B, 1)
            h = torch.where(m, h_new, h)
            outputs.append(h_new * m)
        else:
            h = h_new
            outputs.append(h)
    return torch.stack(outputs, dim=1), h  # (B, T, D), (B, D)


def step_function(impl: str) -> Any:
    """The time loop of ``impl``: the readable one here, or one of its faster twins."""
    if impl == "eager":
        return elman_steps
    from seqlit.models.scratch_fast import fast_steps  # only the chosen twin is loaded

    return fast_steps(impl)


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` (B, T, C) within its own length; padding stays at the end."""
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    steps = torch.arange(T, device=x.device).expand(B, T)  # (B, T)
    lengths = lengths.to(x.device).unsqueeze(1)  # (B, 1)
    # position t of a sequence of length n reads from n-1-t; padding positions read from themselves
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


class ScratchRNN(nn.Module):
    """Drop-in replacement for ``nn.RNN(batch_first=True)`` built from the Elman update, one step at a time.

    Args:
        input_size: features per step (C).
        hidden_size: units per layer and direction (D).
        num_layers: stacked layers (L).
        nonlinearity: ``tanh`` or ``relu``.
        dropout: dropout between stacked layers while training.
        bidirectional: also read each sequence backwards and join both directions.
        impl: ``eager`` (:func:`elman_steps`), ``fast``, ``script`` or ``compile``; all compute the same numbers.
    """

    def __init__(
        self,
        *,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        nonlinearity: str = "tanh",
        dropout: float = 0.0,
        bidirectional: bool = False,
        impl: Impl = "fast",
    ) -> None:
        super().__init__()
        require(nonlinearity in ("tanh", "relu"), "nonlinearity", nonlinearity, "one of 'tanh', 'relu'")
        require(impl in IMPLS, "impl", impl, f"one of {', '.join(IMPLS)}")
        self.impl, self.relu = impl, nonlinearity == "relu"
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.dropout, self.bidirectional = dropout, bidirectional
        directions = 2 if bidirectional else 1
        for layer in range(num_layers):
            layer_in = input_size if layer == 0 else hidden_size * directions  # upper layers read both directions
            for suffix in ["", "_reverse"][:directions]:  # nn.RNN's names, so state dicts swap between the two
                self.register_parameter(f"weight_ih_l{layer}{suffix}", nn.Parameter(torch.empty(hidden_size, layer_in)))
                self.register_parameter(
                    f"weight_hh_l{layer}{suffix}", nn.Parameter(torch.empty(hidden_size, hidden_size))
                )
                self.register_parameter(f"bias_ih_l{layer}{suffix}", nn.Parameter(torch.empty(hidden_size)))
                self.register_parameter(f"bias_hh_l{layer}{suffix}", nn.Parameter(torch.empty(hidden_size)))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # nn.RNN's initialisation, so swapping the cell does not also change the starting point
        bound = 1.0 / math.sqrt(self.hidden_size)
        for p in self.parameters():
            nn.init.uniform_(p, -bound, bound)

    def _direction(self, x: Tensor, h: Tensor, layer: int, suffix: str, mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """Run one layer in one direction over ``x`` (B, T, C) from state ``h`` (B, D)."""
        w_ih, w_hh = getattr(self, f"weight_ih_l{layer}{suffix}"), getattr(self, f"weight_hh_l{layer}{suffix}")
        b_ih, b_hh = getattr(self, f"bias_ih_l{layer}{suffix}"), getattr(self, f"bias_hh_l{layer}{suffix}")
        projected = torch.nn.functional.linear(x, w_ih, b_ih)  # (B, T, D): all input terms in one matmul
        return step_function(self.impl)(projected, h, w_hh, b_hh, mask, self.relu)

    def forward(self, x: Tensor, h0: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (B, T, C) → outputs (B, T, dirs*D) and final state (L*dirs, B, D), like ``nn.RNN``."""
        B, T, _ = x.shape
        directions = 2 if self.bidirectional else 1
        if h0 is None:
            h0 = x.new_zeros(self.num_layers * directions, B, self.hidden_size)  # (L*dirs, B, D)
        mask = None
        if lengths is not None:
            mask = torch.arange(T, device=x.device).unsqueeze(0) < lengths.to(x.device).unsqueeze(1)  # (B, T)
        finals = []
        layer_input = x
        for layer in range(self.num_layers):
            out_f, h_f = self._direction(layer_input, h0[layer * directions], layer, "", mask)  # (B, T, D), (B, D)
            outs, finals_layer = [out_f], [h_f]
            if self.bidirectional:  # read each sequence backwards within its own length, then put it back in order
                rev = reverse_padded(layer_input, lengths)
                out_b, h_b = self._direction(rev, h0[layer * directions + 1], layer, "_reverse", mask)
                outs.append(reverse_padded(out_b, lengths))
                finals_layer.append(h_b)
            layer_input = torch.cat(outs, dim=-1) if self.bidirectional else out_f  # (B, T, dirs*D)
            finals.extend(finals_layer)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:  # between layers, as nn.RNN
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(finals, dim=0)  # (B, T, dirs*D), (L*dirs, B, D)
