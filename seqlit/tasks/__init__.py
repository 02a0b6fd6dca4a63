"""LightningModules: each owns a network from :mod:`seqlit.models`, its loss, metrics, logging and optimizer.

Imports are lazy: ``from seqlit.tasks import Forecaster`` loads that task only. Configs and checkpoints name the short
class paths (``seqlit.tasks.Forecaster``).

Example:
    >>> from seqlit.tasks import Forecaster
    >>> task = Forecaster(cell="gru", hidden_size=16, input_size=1, horizon=2, num_targets=1)
    >>> import torch
    >>> task(torch.randn(4, 10, 1)).shape
    torch.Size([4, 2, 1])
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {  # class name -> the module that defines it
    "SeqlitTask": "seqlit.tasks.base",
    "Classifier": "seqlit.tasks.classifier",
    "Forecaster": "seqlit.tasks.forecaster",
    "LanguageModel": "seqlit.tasks.language_model",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"module 'seqlit.tasks' has no attribute {name!r}")
    return getattr(importlib.import_module(_WHERE[name]), name)
