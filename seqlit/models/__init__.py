"""Plain ``nn.Module`` networks: no Lightning inside, usable on their own.

Imports are lazy: asking for one network loads its module only.

Example:
    >>> import torch
    >>> from seqlit.models import RecurrentEncoder
    >>> enc = RecurrentEncoder(input_size=3, hidden_size=8, cell="gru")
    >>> enc(torch.randn(2, 5, 3)).outputs.shape
    torch.Size([2, 5, 8])
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # name -> the module that defines it
    "CELLS": "seqlit.models.encoder",
    "EncoderOutput": "seqlit.models.encoder",
    "RecurrentEncoder": "seqlit.models.encoder",
    "ClassifierNet": "seqlit.models.classifier",
    "ClassifierEnsemble": "seqlit.models.ensemble",
    "ForecastNet": "seqlit.models.forecaster",
    "RecurrentLM": "seqlit.models.language_model",
    "Pooling": "seqlit.models.pooling",
    "ScratchRNN": "seqlit.models.scratch",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'seqlit.models' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
