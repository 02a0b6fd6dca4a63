"""Plain ``nn.Module`` networks: no Lightning inside, usable on their own.

Example:
    >>> import torch
    >>> from seqlit.models import RecurrentEncoder
    >>> enc = RecurrentEncoder(input_size=3, hidden_size=8, cell="gru")
    >>> enc(torch.randn(2, 5, 3)).outputs.shape
    torch.Size([2, 5, 8])
"""

from seqlit.models.classifier import ClassifierNet
from seqlit.models.encoder import CELLS, EncoderOutput, RecurrentEncoder
from seqlit.models.forecaster import ForecastNet
from seqlit.models.language_model import RecurrentLM
from seqlit.models.pooling import Pooling
from seqlit.models.scratch import ScratchRNN

__all__ = [
    "CELLS",
    "ClassifierNet",
    "EncoderOutput",
    "ForecastNet",
    "Pooling",
    "RecurrentEncoder",
    "RecurrentLM",
    "ScratchRNN",
]
