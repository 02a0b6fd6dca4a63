"""Graph wrappers that turn a trained seqlit task into modules the ONNX exporter traces with dynamic batch and time.

This is the one module that reads a task's internals (``task.net``, ``net.encoder``, ``encoder.rnn``'s parameters,
the forecaster's scaling buffers), so a change to the networks is fixed here and nowhere else. The recurrent encoder is
rebuilt from single-layer, single-direction ``torch.nn`` cells carrying the same weights: each runs on the padded batch
directly (no packing, which ONNX lacks), the backward direction reads each sequence reversed within its own length by
an index gather, and the step past each length is masked, so a padded batch gives what the packed PyTorch path gives.
The ``scratch`` cell is an Elman cell with ``nn.RNN``'s parameter names and math, so it becomes an ``nn.RNN``.
"""

from __future__ import annotations

import copy
from typing import Any, NamedTuple

import torch
from torch import Tensor, nn


class EncoderResult(NamedTuple):
    outputs: Tensor  # (B, T, D*H), zeros past each length
    last: Tensor  # (B, D*H)
    state: Tensor | tuple[Tensor, Tensor]  # (L*D, B, H), or (h, c)


def reverse_within(x: Tensor, lengths: Tensor) -> Tensor:
    """Reverse each sequence of ``x`` (B, T, C) within its length; padding stays at the end (an index gather)."""
    steps = torch.arange(x.shape[1], device=x.device).unsqueeze(0)  # (1, T)
    lens = lengths.unsqueeze(1)  # (B, 1)
    index = torch.where(steps < lens, lens - 1 - steps, steps)  # (B, T): step t reads L-1-t
    return x.gather(1, index.unsqueeze(-1).expand(-1, -1, x.shape[2]))


def _nonlinearity(rnn: nn.Module) -> str:
    # nn.RNN names it; the scratch cell keeps a relu flag
    return getattr(rnn, "nonlinearity", None) or ("relu" if getattr(rnn, "relu", False) else "tanh")


class ExportEncoder(nn.Module):
    """The encoder's computation as per-layer, per-direction torch cells, with ``lengths`` handled by masks/gathers."""

    def __init__(self, encoder: nn.Module) -> None:
        super().__init__()
        rnn = encoder.rnn
        self.is_lstm = encoder.cell == "lstm"
        self.layers, self.directions = encoder.num_layers, encoder.directions
        hidden = encoder.hidden_size
        params = dict(rnn.named_parameters())
        self.cells = nn.ModuleList()
        for layer in range(self.layers):
            for suffix in ["", "_reverse"][: self.directions]:
                w_ih = params[f"weight_ih_l{layer}{suffix}"]
                if encoder.cell in ("rnn", "scratch"):
                    cell: nn.Module = nn.RNN(w_ih.shape[1], hidden, nonlinearity=_nonlinearity(rnn), batch_first=True)
                else:
                    cell = {"lstm": nn.LSTM, "gru": nn.GRU}[encoder.cell](w_ih.shape[1], hidden, batch_first=True)
                with torch.no_grad():
                    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                        getattr(cell, f"{name}_l0").copy_(params[f"{name}_l{layer}{suffix}"])
                self.cells.append(cell)

    def forward(self, x: Tensor, lengths: Tensor | None = None, state: Any = None) -> EncoderResult:
        B, T = x.shape[0], x.shape[1]
        hidden = self.cells[0].hidden_size
        if state is None:
            h0 = x.new_zeros(self.layers * self.directions, B, hidden)
            c0 = h0 if self.is_lstm else None
        else:
            h0, c0 = state if self.is_lstm else (state, None)
        mask = None
        if lengths is not None:
            mask = (torch.arange(T, device=x.device).unsqueeze(0) < lengths.unsqueeze(1)).unsqueeze(-1)  # (B, T, 1)
            last_index = (lengths - 1).view(-1, 1, 1).expand(-1, 1, hidden)  # (B, 1, H)
        h_finals, c_finals, layer_input = [], [], x
        for layer in range(self.layers):
            outs = []
            for d in range(self.directions):
                i = layer * self.directions + d
                seq = layer_input
                if d == 1:
                    seq = seq.flip(1) if lengths is None else reverse_within(seq, lengths)
                init = (h0[i : i + 1], c0[i : i + 1]) if self.is_lstm else h0[i : i + 1]
                out, fin = self.cells[i](seq, init)  # (B, T, H)
                h_n, c_n = fin if self.is_lstm else (fin, None)
                if lengths is not None:
                    # the state after each sequence's last real step; c is never asked of padded batches
                    h_n = out.gather(1, last_index).transpose(0, 1)  # (1, B, H)
                if d == 1:
                    out = out.flip(1) if lengths is None else reverse_within(out, lengths)
                outs.append(out)
                h_finals.append(h_n)
                c_finals.append(c_n)
            layer_input = torch.cat(outs, dim=-1) if self.directions == 2 else outs[0]
            if mask is not None:
                layer_input = layer_input * mask  # packed outputs are zero past each length
        h = torch.cat(h_finals, dim=0)  # (L*D, B, H)
        last = torch.cat(list(h[-self.directions :]), dim=-1)  # (B, D*H)
        new_state = (h, torch.cat(c_finals, dim=0)) if self.is_lstm and lengths is None else h
        return EncoderResult(layer_input, last, new_state)


def exportable_net(task: Any) -> nn.Module:
    """A copy of ``task.net`` in eval mode whose encoder is the exportable rebuild (same weights, same numbers)."""
    net = copy.deepcopy(task.net).eval()
    for member in getattr(net, "members", [net]):  # an ensemble's networks, or the one network
        member.encoder = ExportEncoder(member.encoder)
    return net


def state_names(task: Any) -> list[str]:
    """The recurrent state tensors of a task's encoder: ``h`` and, for an LSTM, ``c``."""
    return ["h", "c"] if task.net.encoder.cell == "lstm" else ["h"]


def state_shape(task: Any) -> list[int]:
    """(layers * directions, hidden) of one state tensor; the batch sits between them."""
    enc = task.net.encoder
    return [enc.num_layers * enc.directions, enc.hidden_size]


class ClassifierGraph(nn.Module):
    """``x`` (B, T) ids or (B, T, C) features, ``lengths`` (B,) → class ``probabilities`` (B, K)."""

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.task, self.net = task, exportable_net(task)

    def forward(self, x: Tensor, lengths: Tensor) -> Tensor:
        return self.task.probabilities(self.net(x, lengths))


class ForecastScaling(nn.Module):
    """Rows in data units → the scaled inputs the network was trained on (target transform, then the scaler)."""

    def __init__(self, task: Any, shift: list[float], scale: list[float]) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor(shift, dtype=torch.float32))
        self.register_buffer("scale", torch.tensor(scale, dtype=torch.float32))
        self.k = task.hparams.num_targets
        self.transform = task.hparams.get("target_transform") or "none"

    def forward(self, x: Tensor) -> Tensor:
        targets, rest = x[..., : self.k], x[..., self.k :]
        if self.transform == "sqrt":
            targets = torch.sqrt(targets)
        elif self.transform == "log1p":
            targets = torch.log1p(targets)
        return (torch.cat([targets, rest], dim=-1) - self.shift) / self.scale


class ForecastGraph(nn.Module):
    """Window ``x`` (B, W, C) in data units → ``point`` (B, H, K) [and ``quantiles`` (B, H, K, Q)] in data units."""

    def __init__(self, task: Any, shift: list[float], scale: list[float]) -> None:
        super().__init__()
        self.task, self.net, self.scaling = task, exportable_net(task), ForecastScaling(task, shift, scale)

    def outputs(self, raw: Tensor) -> tuple[Tensor, ...]:
        point, quantiles = self.task.point_and_quantiles(raw)
        point = self.task.unscale(point)
        if quantiles is None:
            return (point,)
        # (B, H, K, Q) → (Q, B, H, K) for unscale, which acts on the last axis; explicit permutes, as the exporter
        # writes movedim(-1, 0) as an invalid negative transpose
        return point, self.task.unscale(quantiles.permute(3, 0, 1, 2)).permute(1, 2, 3, 0)

    def forward(self, x: Tensor) -> tuple[Tensor, ...]:
        return self.outputs(self.net(self.scaling(x)))


class ForecastStepGraph(ForecastGraph):
    """The streaming forecaster: new rows ``x`` (B, T, C) and the carried state → forecast and the next state.

    The state is the encoder's (``h`` [, ``c``]) after every row so far and, with a highway, the last scaled target
    values (``lags`` (B, P, K)); starting from zeros and feeding a history in any chunks gives the same forecast.
    """

    def forward(self, x: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        net = self.net
        scaled = self.scaling(x)
        lags = None
        if net.highway is not None:
            *state, lags = state
            lags = torch.cat([lags, scaled[..., : net.num_targets]], dim=1)[:, -net.highway.in_features :]
        enc = net.encoder(scaled, state=tuple(state) if len(state) == 2 else state[0])
        B = x.shape[0]
        out = net.head(enc.last).view(B, net.horizon, net.num_targets, net.num_outputs)  # (B, H, K, Q)
        if lags is not None:
            linear = net.highway(lags.transpose(1, 2)).view(B, net.num_targets, net.horizon, net.num_outputs)
            out = out + linear.transpose(1, 2)
        raw = out if net.num_outputs > 1 else out.squeeze(-1)
        new_state = list(enc.state) if isinstance(enc.state, tuple) else [enc.state]
        return (*self.outputs(raw), *new_state, *([] if lags is None else [lags]))


class LanguageModelGraph(nn.Module):
    """``ids`` (B, T) and state → next-token ``logits`` (B, T, V) and the state after step T."""

    def __init__(self, task: Any) -> None:
        super().__init__()
        self.net = exportable_net(task)

    def forward(self, ids: Tensor, *state: Tensor) -> tuple[Tensor, ...]:
        logits, new_state = self.net(ids, tuple(state) if len(state) == 2 else state[0])
        return (logits, *(new_state if isinstance(new_state, tuple) else (new_state,)))


def highway_lags(task: Any) -> int:
    """Past target values the forecaster's highway reads (0: none)."""
    highway = task.net.highway
    return 0 if highway is None else highway.in_features
