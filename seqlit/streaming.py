"""Streaming in PyTorch: a forecaster fed one observation at a time and a language model fed one token at a time, each
carrying its recurrent state instead of re-reading what it has seen.

A window forecaster re-reads its last W rows from a zero state for every forecast. :class:`ForecastStream` keeps the
encoder's state after every row so far (and, with a highway, the last target values), so each new row costs one
recurrent step; its forecast is the network's after reading the whole history, equal to one pass over that history.
:class:`TokenStream` does the same for a language model: feeding ids in any chunks gives the logits of one full pass.
The ONNX twin of both lives in :mod:`seqlit.runtime` (``ExportedModel.stream``, ``generate_stream``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from seqlit.errors import require
from seqlit.run import onnx_graphs as graphs
from seqlit.run.export import load_for_export, scaler_stats


class ForecastStream:
    """Rows in data units in, forecasts in data units out (``point`` (H, K), ``quantiles`` (H, K, Q)); with
    ``num_series`` S > 1, S series side by side: rows (S, N, C) in, a leading S axis on every output."""

    def __init__(self, task: Any, data_state: dict[str, Any] | None = None, num_series: int = 1) -> None:
        require(task.net.encoder.directions == 1, "task", "bidirectional", "a unidirectional forecaster to stream")
        require(num_series >= 1, "num_series", num_series, "at least 1")
        self.graph = graphs.ForecastStepGraph(task, *scaler_stats(task, data_state or {})).eval()
        layers, hidden = graphs.state_shape(task)
        self.state = [torch.zeros(layers, num_series, hidden) for _ in graphs.state_names(task)]
        if graphs.highway_lags(task):
            self.state.append(torch.zeros(num_series, graphs.highway_lags(task), task.hparams.num_targets))
        self.probabilistic, self.input_size, self.num_series = task.probabilistic, task.hparams.input_size, num_series

    @classmethod
    def from_checkpoint(cls, ckpt_path: str) -> ForecastStream:
        """A stream over the forecaster in ``ckpt_path``, with its scaler from the checkpoint."""
        task, data_state, _ = load_for_export(ckpt_path)
        return cls(task, data_state)

    @torch.no_grad()
    def update(self, rows: Any) -> dict[str, np.ndarray]:
        """Read new ``rows`` (N, C), or (S, N, C) for S series — one observation or many — and return the forecast
        after them."""
        x = torch.as_tensor(np.asarray(rows, dtype=np.float32)).reshape(self.num_series, -1, self.input_size)
        require(bool(torch.isfinite(x).all()), "rows", "a NaN or infinite value", "finite numbers only")
        outs = self.graph(x, *self.state)
        n = 2 if self.probabilistic else 1
        self.state = list(outs[n:])
        pick = slice(None) if self.num_series > 1 else 0  # one series: no leading series axis
        result = {"point": outs[0][pick].numpy()}
        if self.probabilistic:
            result["quantiles"] = outs[1][pick].numpy()
        return result


class TokenStream:
    """A language model reading ids as they come: ``feed(ids)`` returns the logits (T, V) of those steps."""

    def __init__(self, task: Any) -> None:
        self.task = task.eval()
        self.state: Any = None

    @torch.no_grad()
    def feed(self, ids: Tensor | list[int]) -> Tensor:
        """Next-token logits (T, V) after each of ``ids`` (T,), continuing from every id fed before."""
        ids = torch.as_tensor(ids, dtype=torch.long).view(1, -1)
        logits, self.state = self.task(ids, self.state)
        return logits[0]
