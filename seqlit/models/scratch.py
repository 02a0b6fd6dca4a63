"""A recurrent layer written from the Elman equations instead of calling ``torch.nn.RNN``.

    h_t = tanh(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)

It is the hand-written RNN of the tutorials, kept readable: the input projection of all steps is one matmul, then a
Python loop walks the time axis. Parameters carry ``nn.RNN``'s names and shapes (``weight_ih_l0``, ``bias_hh_l0``,
``..._reverse``), so ``scratch.load_state_dict(rnn.state_dict())`` works and a test proves the outputs agree.
Variable lengths are handled by masking: past a sequence's end its state is frozen and its outputs are zero, exactly
what a packed ``nn.RNN`` returns.

The time loop has four implementations (``impl``), all computing the same numbers:

* ``eager`` — :func:`elman_steps`, the readable reference: a Python loop that autograd records step by step.
* ``fast`` (default) — :class:`ElmanBPTT`, the same forward loop run without autograd and a hand-written backward
  pass (backpropagation through time): three tensor operations per step instead of autograd's dozen nodes, and the
  weight gradient of all steps as one matmul at the end. It works on every device and dtype; on a 2-core CPU it runs
  forward+backward about as fast as ``nn.RNN`` while the eager loop takes twice as long (``scripts/bench.py``).
* ``script`` — :func:`elman_steps` compiled by ``torch.jit.script``; ``compile`` — by ``torch.compile`` (which unrolls
  the loop, so compiling takes long for long sequences and needs a C++ compiler on the CPU). Both are measured by
  ``scripts/bench.py``; on CPU neither beats ``fast``.

Tests check every implementation against ``eager`` (outputs and gradients) and ``eager`` against ``nn.RNN``.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import torch
from torch import Tensor, nn

from seqlit.errors import require


def reverse_padded(x: Tensor, lengths: Tensor | None) -> Tensor:
    """Reverse each sequence of ``x`` (B, T, C) within its own length; padding stays at the end."""
    if lengths is None:
        return x.flip(1)
    B, T = x.shape[:2]
    steps = torch.arange(T, device=x.device).expand(B, T)
    lengths = lengths.to(x.device).unsqueeze(1)
    # position t of a sequence of length L reads from L-1-t; padding positions read from themselves
    index = torch.where(steps < lengths, lengths - 1 - steps, steps)
    return x.gather(1, index.unsqueeze(-1).expand_as(x))


IMPLS = ("eager", "fast", "script", "compile")
Impl = Literal["eager", "fast", "script", "compile"]


def elman_steps(
    projected: Tensor, h: Tensor, w_hh: Tensor, b_hh: Tensor, mask: Tensor | None, relu: bool
) -> tuple[Tensor, Tensor]:
    """The reference time loop: input terms ``projected`` (B, T, H), start state ``h`` (B, H), real steps ``mask``
    (B, T) → outputs (B, T, H) and final state (B, H). Autograd records every step."""
    outputs: list[Tensor] = []
    for t in range(projected.size(1)):
        pre = projected[:, t] + torch.nn.functional.linear(h, w_hh, b_hh)
        h_new = torch.relu(pre) if relu else torch.tanh(pre)
        if mask is not None:  # finished sequences keep their last state and emit zeros
            m = mask[:, t].unsqueeze(1)
            h = torch.where(m, h_new, h)
            outputs.append(h_new * m)
        else:
            h = h_new
            outputs.append(h)
    return torch.stack(outputs, dim=1), h


class ElmanBPTT(torch.autograd.Function):
    """The loop of :func:`elman_steps` with a hand-written backward pass (the ``fast`` implementation).

    With a_t = P_t + b + W h_{t-1}, n_t = act(a_t), a 0/1 mask m_t: h_t = m_t n_t + (1 - m_t) h_{t-1} and the output
    y_t = m_t n_t. Backwards from g = dL/dh_T: dL/da_t = m_t (dL/dy_t + g) act'(a_t), then
    g <- (1 - m_t) g + (dL/da_t) W. dL/dP_t = dL/da_t, dL/db = sum of them, dL/dW = sum_t (dL/da_t)^T h_{t-1}.
    """

    @staticmethod
    def forward(
        ctx: Any, projected: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, mask: Tensor | None, relu: bool
    ) -> tuple[Tensor, Tensor]:
        T = projected.shape[1]
        inputs = (projected + b_hh).transpose(0, 1).contiguous()  # (T, B, H): time-major, each step contiguous
        acts = torch.empty_like(inputs)  # n_t, kept for the backward pass
        w_t = w_hh.t()
        keep = None if mask is None else mask.transpose(0, 1).unsqueeze(-1)  # (T, B, 1), True on real steps
        # the state each step starts from; without a mask it is the previous step's n_t (rebuilt in backward)
        starts = None if keep is None else torch.empty_like(inputs)
        h = h0
        for t in range(T):
            if starts is not None:
                starts[t] = h
            torch.addmm(inputs[t], h, w_t, out=acts[t])
            n = acts[t].relu_() if relu else acts[t].tanh_()
            h = n if keep is None else torch.where(keep[t], n, h)
        m = None if keep is None else keep.to(inputs.dtype)
        outputs = acts if m is None else acts * m
        ctx.save_for_backward(acts, h0 if starts is None else starts, w_hh, m)
        ctx.relu = relu
        return outputs.transpose(0, 1), h.clone()  # (B, T, H), (B, H); the clone: no output aliases another

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        acts, starts, w_hh, m = ctx.saved_tensors
        T, B, H = acts.shape
        if m is None:  # saved was h0: the states the steps started from are h0, n_0, ..., n_{T-2}
            starts = torch.cat([starts.unsqueeze(0), acts[:-1]])
        slope = (acts > 0).to(acts.dtype) if ctx.relu else 1 - acts * acts  # act'(a_t) from n_t: (T, B, H)
        grad_y = grad_out.transpose(0, 1)  # (T, B, H)
        grad_a = torch.empty_like(acts)
        g = grad_h
        for t in range(T - 1, -1, -1):
            if m is None:
                torch.mul(grad_y[t] + g, slope[t], out=grad_a[t])
                g = torch.mm(grad_a[t], w_hh)
            else:
                torch.mul((grad_y[t] + g) * m[t], slope[t], out=grad_a[t])
                g = torch.addmm(g * (1 - m[t]), grad_a[t], w_hh)
        grad_w = grad_a.reshape(T * B, H).t().mm(starts.reshape(T * B, H))  # all steps' outer products at once
        grad_b = grad_a.sum(dim=(0, 1))
        return grad_a.transpose(0, 1), g, grad_w, grad_b, None, None


_compiled: dict[str, Any] = {}


def step_function(impl: str) -> Any:
    """The time loop of ``impl``; ``script`` and ``compile`` are built on first use and kept."""
    if impl == "eager":
        return elman_steps
    if impl == "fast":
        return ElmanBPTT.apply
    if impl not in _compiled:
        _compiled[impl] = torch.jit.script(elman_steps) if impl == "script" else torch.compile(elman_steps)
    return _compiled[impl]


class ScratchRNN(nn.Module):
    """Drop-in replacement for ``nn.RNN(batch_first=True)`` built from the Elman update, one step at a time."""

    def __init__(
        self,
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
            layer_in = input_size if layer == 0 else hidden_size * directions
            for suffix in ["", "_reverse"][:directions]:
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
        """Run one layer in one direction over ``x`` (B, T, C) from state ``h`` (B, H)."""
        w_ih, w_hh = getattr(self, f"weight_ih_l{layer}{suffix}"), getattr(self, f"weight_hh_l{layer}{suffix}")
        b_ih, b_hh = getattr(self, f"bias_ih_l{layer}{suffix}"), getattr(self, f"bias_hh_l{layer}{suffix}")
        projected = torch.nn.functional.linear(x, w_ih, b_ih)  # (B, T, H): all input terms in one matmul
        return step_function(self.impl)(projected, h, w_hh, b_hh, mask, self.relu)

    def forward(self, x: Tensor, h0: Tensor | None = None, lengths: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``x`` (B, T, C) → outputs (B, T, D*H) and final state (L*D, B, H), like ``nn.RNN``."""
        B, T, _ = x.shape
        directions = 2 if self.bidirectional else 1
        if h0 is None:
            h0 = x.new_zeros(self.num_layers * directions, B, self.hidden_size)
        mask = None
        if lengths is not None:
            mask = torch.arange(T, device=x.device).unsqueeze(0) < lengths.to(x.device).unsqueeze(1)  # (B, T)
        finals = []
        layer_input = x
        for layer in range(self.num_layers):
            out_f, h_f = self._direction(layer_input, h0[layer * directions], layer, "", mask)
            outs, finals_layer = [out_f], [h_f]
            if self.bidirectional:
                rev = reverse_padded(layer_input, lengths)
                out_b, h_b = self._direction(rev, h0[layer * directions + 1], layer, "_reverse", mask)
                outs.append(reverse_padded(out_b, lengths))
                finals_layer.append(h_b)
            layer_input = torch.cat(outs, dim=-1) if self.bidirectional else out_f
            finals.extend(finals_layer)
            if self.dropout > 0 and self.training and layer < self.num_layers - 1:
                layer_input = nn.functional.dropout(layer_input, self.dropout, training=True)
        return layer_input, torch.stack(finals, dim=0)
