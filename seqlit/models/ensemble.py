"""A deep ensemble of classifiers: several networks of one architecture, each from its own random initialisation and
trained on its own loss, predicting together with the mean of their probabilities.

Averaging independently trained networks is the most reliable way to buy accuracy with compute: their errors differ,
so the mean is right more often than each member (Lakshminarayanan et al., 2017). Training the members side by side in
one model, on the same batches, keeps the ensemble one checkpoint and one exported graph.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlit.errors import require
from seqlit.models.classifier import ClassifierNet


def mean_probability_logits(member_logits: Tensor, binary: bool) -> Tensor:
    """Members' logits (M, B, N) → logits (B, N) whose probabilities are the members' mean probabilities.

    ``binary``: one BCE logit per sequence (N = 1), whose sigmoid is the probability of the second class.
    """
    if binary:  # log of the mean p and of the mean 1 - p; their difference is the logit of the mean p
        return torch.logsumexp(F.logsigmoid(member_logits), 0) - torch.logsumexp(F.logsigmoid(-member_logits), 0)
    return torch.logsumexp(F.log_softmax(member_logits, dim=-1), 0) - math.log(member_logits.shape[0])


class ClassifierEnsemble(nn.Module):
    """``members`` :class:`~seqlit.models.classifier.ClassifierNet` of the same settings → logits (B, N) of their mean
    probabilities.

    Args:
        members: how many networks (at least 2).
        binary: the networks give one BCE logit each (their probabilities are sigmoids, not softmaxes).
        **net_kwargs: the settings of every member (see :class:`~seqlit.models.classifier.ClassifierNet`).
    """

    def __init__(self, *, members: int, binary: bool, **net_kwargs: Any) -> None:
        super().__init__()
        require(members >= 2, "members", members, "at least 2 networks (1 is a single network)")
        self.binary = binary
        self.members = nn.ModuleList(ClassifierNet(**net_kwargs) for _ in range(members))  # each its own init

    @property
    def encoder(self) -> nn.Module:
        """The first member's encoder: every member has this cell and these sizes."""
        return self.members[0].encoder

    def load_embedding(self, vectors: Tensor) -> None:
        """Copy pretrained vectors (V, E) into every member's token embedding."""
        for member in self.members:
            member.load_embedding(vectors)

    def member_logits(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Every member's logits (M, B, N): what each member is trained on."""
        return torch.stack([member(x, lengths) for member in self.members])

    def combine(self, member_logits: Tensor) -> Tensor:
        """Members' logits (M, B, N) → the ensemble's (B, N)."""
        return mean_probability_logits(member_logits, self.binary)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x`` (B, T, C) floats or (B, T) token ids; ``lengths`` (B,) → logits (B, N) of the mean probabilities."""
        return self.combine(self.member_logits(x, lengths))
