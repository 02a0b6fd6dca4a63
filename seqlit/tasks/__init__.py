"""LightningModules: each owns a network from :mod:`seqlit.models`, its loss, metrics, logging and optimizer.

Example:
    >>> from seqlit.tasks import Forecaster
    >>> task = Forecaster(cell="gru", hidden_size=16, input_size=1, horizon=2, num_targets=1)
    >>> import torch
    >>> task(torch.randn(4, 10, 1)).shape
    torch.Size([4, 2, 1])
"""

from seqlit.tasks.base import SeqlitTask
from seqlit.tasks.classifier import Classifier
from seqlit.tasks.forecaster import Forecaster
from seqlit.tasks.language_model import LanguageModel

__all__ = ["Classifier", "Forecaster", "LanguageModel", "SeqlitTask"]
