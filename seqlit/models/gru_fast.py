"""A faster GRU for the CPU: ``nn.GRU``'s exact math with a hand-written backward pass, on ``nn.GRU``'s own weights.

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)        z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))      h' = (1 - z) * n + z * h

PyTorch's CPU ``nn.GRU`` (which, unlike its LSTM, has no oneDNN kernel) records about a dozen autograd nodes per step
and walks them back one by one. Here, as in :mod:`seqlit.models.scratch_fast`, the time loop runs without autograd
and :class:`GRUBPTT` walks back through time by hand. Per step the forward pass makes one matmul and four element-wise
calls, the backward pass one matmul and two; everything that needs no recurrence (the input projection, the gate
derivatives, the weight gradients) is done for a chunk of ``CHUNK`` steps at once, which keeps the buffers small
enough to stay in cache.

:func:`fast_gru` runs a whole ``nn.GRU`` module (unidirectional, batch-first, any number of layers, dropout between
layers) with its own parameters, so the module, its state dict and everything built from its parameter names stay
exactly as they are. Tests check outputs, final states and every gradient against ``nn.GRU``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

CHUNK = 32  # steps projected and differentiated together: buffers small enough to stay in cache and be reused


class GRUBPTT(torch.autograd.Function):
    """A GRU layer's time loop, time-major, with backpropagation through time written out.

    The input terms of a chunk of steps come from one matmul with ``w_ih4`` (4H, C) and ``b4`` (4H,):
    gi = (W_ir x + b_ir + b_hr, W_iz x + b_iz + b_hz, b_hn, W_in x + b_in) (the third block of ``w_ih4`` is zero).
    One matmul per step adds W_h h_{t-1} to the first three quarters, giving the pre-activations of r and z and
    gh_n = W_hn h_{t-1} + b_hn, while the last quarter waits for r. Backwards from dL/dh_t = dh, with
    da_n = dh (1 - z)(1 - n²): dL/dgi_t = (da_n gh_n r(1 - r), dh (h_{t-1} - n) z(1 - z), da_n r, da_n), dh times a
    factor that needs no recurrence, and dL/dh_{t-1} = dL/dy_{t-1} + dh z + (dL/dgi_t)[:3H] W_h. The weight
    gradients of a chunk's steps are one matmul each.
    """

    @staticmethod
    def forward(ctx: Any, x: Tensor, h0: Tensor, w_ih4: Tensor, b4: Tensor, w_hh: Tensor) -> tuple[Tensor, Tensor]:
        T, B, C = x.shape
        H = h0.shape[1]
        gates = x.new_empty(T, B, 3 * H)  # (T, B, 3H): r, z and gh_n per step, what the backward needs
        n = x.new_empty(T, B, H)  # (T, B, H): the candidate state n_t
        outputs = torch.empty_like(n)  # (T, B, H): h_t
        # per-step views, made in one call each rather than by indexing inside the loop
        views = [gates[:, :, a:b].unbind(0) for a, b in ((0, 3 * H), (0, 2 * H), (0, H), (H, 2 * H), (2 * H, 3 * H))]
        steps = list(zip(*views, n.unbind(0), outputs.unbind(0), strict=True))  # per step: gates, rz, r, z, gh_n, n, h
        w_t = w_hh.t()
        h = h0
        for t0 in range(0, T, CHUNK):
            t1 = min(T, t0 + CHUNK)
            x_c = x[t0:t1].reshape((t1 - t0) * B, C)
            # the chunk's input terms: r, z and b_hn straight into the gates, n's apart (it waits for r)
            torch.addmm(b4[: 3 * H], x_c, w_ih4[: 3 * H].t(), out=gates[t0:t1].view((t1 - t0) * B, 3 * H))
            gi_n = torch.addmm(b4[3 * H :], x_c, w_ih4[3 * H :].t()).view(t1 - t0, B, H)
            for (gates_t, rz_t, r_t, z_t, gh_n_t, n_t, out_t), gi_n_t in zip(steps[t0:t1], gi_n.unbind(0), strict=True):
                gates_t.addmm_(h, w_t)  # the one matmul of the step, added in place
                rz_t.sigmoid_()
                torch.addcmul(gi_n_t, r_t, gh_n_t, out=n_t).tanh_()
                h = torch.lerp(n_t, h, z_t, out=out_t)  # n + z (h - n) = (1 - z) n + z h
        ctx.save_for_backward(x, gates, n, outputs, h0, w_ih4, w_hh)
        ctx.set_materialize_grads(False)  # an unused output (often all steps but the last) sends no gradient
        return outputs, outputs[-1].clone()  # (T, B, H), (B, H); the clone: no output aliases another

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_out: Tensor | None, grad_h: Tensor | None) -> tuple[Tensor | None, ...]:
        x, gates, n, outputs, h0, w_ih4, w_hh = ctx.saved_tensors
        T, B, H = n.shape
        C = x.shape[2]
        grad_x = torch.empty_like(x) if ctx.needs_input_grad[0] else None
        grad_w_ih4_t, grad_b4, grad_w_hh = w_ih4.new_zeros(C, 4 * H), w_ih4.new_zeros(4 * H), torch.zeros_like(w_hh)
        g = torch.zeros_like(h0) if grad_h is None else grad_h  # dL/dh_t
        if grad_out is not None:
            g = g + grad_out[-1]
        for t1 in range(T, 0, -CHUNK):  # chunks of steps from the end: [t0, t1)
            t0, K = max(0, t1 - CHUNK), min(CHUNK, t1)
            r, z, gh_n, n_c = gates[t0:t1, :, :H], gates[t0:t1, :, H : 2 * H], gates[t0:t1, :, 2 * H :], n[t0:t1]
            starts = outputs[t0 - 1 : t1 - 1] if t0 > 0 else torch.cat([h0.unsqueeze(0), outputs[: t1 - 1]])
            factor = n.new_empty(K, B, 4, H)  # dL/dgi_t = dh_t * factor_t
            torch.mul(1 - z, 1 - n_c * n_c, out=factor[:, :, 3])  # dh -> da_n
            torch.mul(factor[:, :, 3], gh_n * r * (1 - r), out=factor[:, :, 0])  # dh -> da_r
            torch.mul((starts - n_c) * z, 1 - z, out=factor[:, :, 1])  # dh -> da_z
            torch.mul(factor[:, :, 3], r, out=factor[:, :, 2])  # dh -> da_n r
            grad_gi = torch.empty_like(factor)  # (K, B, 4, H)
            for t in range(t1 - 1, t0 - 1, -1):
                k = t - t0
                torch.mul(g.unsqueeze(1), factor[k], out=grad_gi[k])  # all four gradients in one call
                carried = g * z[k] if t == 0 or grad_out is None else torch.addcmul(grad_out[t - 1], g, z[k])
                g = carried.addmm_(grad_gi[k, :, :3].view(B, 3 * H), w_hh)  # dL/dh_{t-1}, in place
            flat = grad_gi.view(K * B, 4 * H)
            grad_w_hh.addmm_(flat[:, : 3 * H].t(), starts.reshape(K * B, H))  # the chunk's steps in one matmul
            grad_w_ih4_t.addmm_(x[t0:t1].reshape(K * B, C).t(), flat)  # transposed: BLAS is slow at (4H, KB) x (KB, C)
            grad_b4 += flat.sum(0)
            if grad_x is not None:
                torch.mm(flat, w_ih4, out=grad_x[t0:t1].view(K * B, C))
        return grad_x, g, grad_w_ih4_t.t(), grad_b4, grad_w_hh


def input_weights(gru: nn.GRU, layer: int) -> tuple[Tensor, Tensor]:
    """Layer ``layer``'s input weight and bias as :class:`GRUBPTT` reads them: (4H, C) and (4H,)."""
    w_ih, b_ih = getattr(gru, f"weight_ih_l{layer}"), getattr(gru, f"bias_ih_l{layer}")
    b_hh = getattr(gru, f"bias_hh_l{layer}")
    H = gru.hidden_size
    # a zero block gives gh_n's quarter its bias b_hn alone: r must multiply it apart from W_in x + b_in
    weight = torch.cat([w_ih[: 2 * H], w_ih.new_zeros(H, w_ih.shape[1]), w_ih[2 * H :]])
    bias = torch.cat([b_ih[: 2 * H] + b_hh[: 2 * H], b_hh[2 * H :], b_ih[2 * H :]])
    return weight, bias


def fast_gru(gru: nn.GRU, x: Tensor, h0: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Run ``gru`` (``nn.GRU``, batch-first, unidirectional) on ``x`` (B, T, C) from ``h0`` (L, B, H) with
    :class:`GRUBPTT`: outputs (B, T, H) and final state (L, B, H), as ``gru(x, h0)`` returns them."""
    if h0 is None:
        h0 = x.new_zeros(gru.num_layers, x.shape[0], gru.hidden_size)  # (L, B, H)
    layer_input = x.transpose(0, 1).contiguous()  # (T, B, C): time-major, so each step's rows are contiguous
    finals = []
    for layer in range(gru.num_layers):
        w_ih4, b4 = input_weights(gru, layer)
        w_hh = getattr(gru, f"weight_hh_l{layer}")
        layer_input, h_n = GRUBPTT.apply(layer_input, h0[layer].contiguous(), w_ih4, b4, w_hh)
        finals.append(h_n)
        if gru.dropout > 0 and gru.training and layer < gru.num_layers - 1:  # between layers, as nn.GRU
            layer_input = nn.functional.dropout(layer_input, gru.dropout, training=True)
    return layer_input.transpose(0, 1), torch.stack(finals)  # (B, T, H), (L, B, H)
