"""The fast twins of the scratch cell's readable loop (:func:`seqlit.models.scratch.elman_steps`), same numbers.

* ``fast`` — :class:`ElmanBPTT`: the same forward loop run without autograd, and a hand-written backward pass
  (backpropagation through time): three tensor operations per step instead of autograd's dozen nodes, and the weight
  gradient of all steps as one matmul at the end. It works on every device and dtype; on a 2-core CPU it runs
  forward+backward about as fast as ``nn.RNN`` while the readable loop takes twice as long (``scripts/bench.py``).
* ``script`` — the readable loop compiled by ``torch.jit.script``; ``compile`` — by ``torch.compile`` (which unrolls
  the loop, so compiling takes long for long sequences and needs a C++ compiler on the CPU). On CPU neither beats
  ``fast``.

Tests check every twin against the readable loop (outputs and gradients), and that one against ``nn.RNN``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from seqlit.models.scratch import elman_steps


class ElmanBPTT(torch.autograd.Function):
    """The loop of :func:`~seqlit.models.scratch.elman_steps` with a hand-written backward pass.

    With a_t = P_t + b + W h_{t-1}, n_t = act(a_t), a 0/1 mask m_t: h_t = m_t n_t + (1 - m_t) h_{t-1} and the output
    y_t = m_t n_t. Backwards from g = dL/dh_T: dL/da_t = m_t (dL/dy_t + g) act'(a_t), then
    g <- (1 - m_t) g + (dL/da_t) W. dL/dP_t = dL/da_t, dL/db = sum of them, dL/dW = sum_t (dL/da_t)^T h_{t-1}.
    """

    @staticmethod
    def forward(
        ctx: Any, projected: Tensor, h0: Tensor, w_hh: Tensor, b_hh: Tensor, mask: Tensor | None, relu: bool
    ) -> tuple[Tensor, Tensor]:
        T = projected.shape[1]
        inputs = (projected + b_hh).transpose(0, 1).contiguous()  # (T, B, D): time-major, each step contiguous
        acts = torch.empty_like(inputs)  # n_t, kept for the backward pass
        w_t = w_hh.t()
        keep = None if mask is None else mask.transpose(0, 1).unsqueeze(-1)  # (T, B, 1), True on real steps
        # the state each step starts from; without a mask it is the previous step's n_t (rebuilt in backward)
        starts = None if keep is None else torch.empty_like(inputs)
        h = h0
        for t in range(T):
            if starts is not None:
                starts[t] = h
            torch.addmm(inputs[t], h, w_t, out=acts[t])  # a_t, written in place: no autograd node per step
            n = acts[t].relu_() if relu else acts[t].tanh_()
            h = n if keep is None else torch.where(keep[t], n, h)
        m = None if keep is None else keep.to(inputs.dtype)
        outputs = acts if m is None else acts * m
        ctx.save_for_backward(acts, h0 if starts is None else starts, w_hh, m)
        ctx.relu = relu
        return outputs.transpose(0, 1), h.clone()  # (B, T, D), (B, D); the clone: no output aliases another

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor, grad_h: Tensor) -> tuple[Tensor | None, ...]:
        acts, starts, w_hh, m = ctx.saved_tensors
        T, B, D = acts.shape
        if m is None:  # saved was h0: the states the steps started from are h0, n_0, ..., n_{T-2}
            starts = torch.cat([starts.unsqueeze(0), acts[:-1]])
        slope = (acts > 0).to(acts.dtype) if ctx.relu else 1 - acts * acts  # act'(a_t) from n_t: (T, B, D)
        grad_y = grad_out.transpose(0, 1)  # (T, B, D)
        grad_a = torch.empty_like(acts)
        g = grad_h
        for t in range(T - 1, -1, -1):
            if m is None:
                torch.mul(grad_y[t] + g, slope[t], out=grad_a[t])
                g = torch.mm(grad_a[t], w_hh)
            else:
                torch.mul((grad_y[t] + g) * m[t], slope[t], out=grad_a[t])
                g = torch.addmm(g * (1 - m[t]), grad_a[t], w_hh)  # a finished sequence passes g through unchanged
        grad_w = grad_a.reshape(T * B, D).t().mm(starts.reshape(T * B, D))  # all steps' outer products at once
        grad_b = grad_a.sum(dim=(0, 1))
        return grad_a.transpose(0, 1), g, grad_w, grad_b, None, None


_compiled: dict[str, Any] = {}


def fast_steps(impl: str) -> Any:
    """The time loop of ``fast``, ``script`` or ``compile``; the compiled ones are built on first use and kept."""
    if impl == "fast":
        return ElmanBPTT.apply
    if impl not in _compiled:
        _compiled[impl] = torch.jit.script(elman_steps) if impl == "script" else torch.compile(elman_steps)
    return _compiled[impl]
