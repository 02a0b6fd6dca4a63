"""Sequence-classification network: (embedding →) recurrent encoder → pooling → dropout → linear head.

One network for every classification task. Float features (B, T, C) go straight into the encoder; token ids (B, T)
first pass an ``nn.Embedding`` (with ``padding_idx`` so the padding token stays a zero vector and gets no gradient)
and embedding dropout; with ``bigram_buckets`` a linear bag of hashed word pairs (:class:`PairBag`) adds its logits
to the head's. ``lengths`` travel to the encoder, which packs the batch, and to the pooling, which ignores the
padded steps; so a sequence's prediction does not depend on how much padding its batch happened to need.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlit.errors import InputError, require
from seqlit.models.encoder import RecurrentEncoder
from seqlit.models.pooling import Pooling


class PairBag(nn.Module):
    """fastText's word-pair features as a linear model beside the network: each pair of neighbouring tokens is hashed
    to one of ``buckets`` rows of class weights, and the weights of a sequence's pairs are summed into logits.

    A logistic regression on counts of word pairs, the classic strong baseline for sentiment ("not good", "at all"),
    which a recurrent encoder learns only slowly from single words. Zero at the start: the network begins as without it.
    """

    def __init__(self, *, buckets: int, vocab_size: int, num_outputs: int) -> None:
        super().__init__()
        require(buckets >= 1, "bigram_buckets", buckets, "0 (off) or at least 1 bucket")
        self.vocab_size = vocab_size
        self.weight = nn.Embedding(buckets, num_outputs)
        nn.init.zeros_(self.weight.weight)

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Token ids (B, T), optional lengths (B,) → logits (B, N) summed over the real pairs."""
        pairs = (x[:, :-1] * self.vocab_size + x[:, 1:]) % self.weight.num_embeddings  # (B, T-1) bucket per pair
        logits = self.weight(pairs)  # (B, T-1, N)
        if lengths is not None:  # pairs reaching into the padding count nothing
            real = torch.arange(pairs.shape[1], device=x.device) < (lengths.to(x.device) - 1).unsqueeze(1)
            logits = logits * real.unsqueeze(-1)
        return logits.sum(dim=1)


class ClassifierNet(nn.Module):
    """Sequences → class logits (B, N), N = ``num_outputs``.

    Exactly one of ``input_size`` (float features per step) and ``vocab_size`` (token ids) is given.

    Args:
        num_outputs: logits per sequence (the number of classes, or 1 for a binary BCE head).
        input_size: features per step (C) of float inputs.
        vocab_size: number of token ids (V) of integer inputs.
        pad_id: the padding token's id (its embedding is fixed at zero), or None.
        embedding_dim: width of the token embedding (token inputs only).
        embedding_dropout: dropout on the embedded tokens.
        hidden_size, cell, num_layers, dropout, bidirectional, nonlinearity, gate_init, chrono_t_max: see
            :class:`~seqlit.models.encoder.RecurrentEncoder`.
        pooling: ``last``, ``mean``, ``max`` or ``maxmean`` (see :class:`~seqlit.models.pooling.Pooling`).
        head_dropout: dropout on the pooled vector before the linear head.
        bigram_buckets: hash buckets of a :class:`PairBag` beside the network (token inputs only; 0: none).
    """

    def __init__(
        self,
        *,
        num_outputs: int,
        input_size: int | None = None,
        vocab_size: int | None = None,
        pad_id: int | None = None,
        embedding_dim: int = 64,
        embedding_dropout: float = 0.0,
        hidden_size: int = 64,
        cell: str = "lstm",
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: str = "tanh",
        pooling: str = "last",
        head_dropout: float = 0.0,
        gate_init: str = "default",
        chrono_t_max: int | None = None,
        bigram_buckets: int = 0,
    ) -> None:
        super().__init__()
        if (input_size is None) == (vocab_size is None):
            raise InputError(
                f"input_size={input_size!r}, vocab_size={vocab_size!r}: give exactly one "
                "(input_size for float features per step, vocab_size for token ids)"
            )
        require(num_outputs >= 1, "num_outputs", num_outputs, "at least 1")
        require(0.0 <= embedding_dropout < 1.0, "embedding_dropout", embedding_dropout, "a probability in [0, 1)")
        require(0.0 <= head_dropout < 1.0, "head_dropout", head_dropout, "a probability in [0, 1)")
        self.embedding: nn.Embedding | None = None
        if vocab_size is not None:
            require(vocab_size >= 1, "vocab_size", vocab_size, "at least 1 token")
            require(embedding_dim >= 1, "embedding_dim", embedding_dim, "at least 1")
            require(pad_id is None or 0 <= pad_id < vocab_size, "pad_id", pad_id, f"None or an id in [0, {vocab_size})")
            self.embedding = nn.Embedding(vocab_size, embedding_dim, padding_idx=pad_id)
            input_size = embedding_dim
        self.embedding_dropout = nn.Dropout(embedding_dropout)
        self.encoder = RecurrentEncoder(
            input_size=input_size,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            bidirectional=bidirectional,
            nonlinearity=nonlinearity,
            gate_init=gate_init,
            chrono_t_max=chrono_t_max,
        )
        self.pooling = Pooling(mode=pooling)
        self.head_dropout = nn.Dropout(head_dropout)
        self.head = nn.Linear(self.pooling.output_size(self.encoder.output_size), num_outputs)
        self.pairs: PairBag | None = None
        if bigram_buckets:
            require(vocab_size is not None, "bigram_buckets", bigram_buckets, "0 for float features (pairs of tokens)")
            self.pairs = PairBag(buckets=bigram_buckets, vocab_size=vocab_size, num_outputs=num_outputs)

    @torch.no_grad()
    def load_embedding(self, vectors: Tensor) -> None:
        """Copy pretrained vectors (V, E) into the token embedding; the padding token stays a zero vector."""
        if self.embedding is None:
            raise InputError("embedding_vectors were given but this network reads float features, not token ids")
        weight = self.embedding.weight  # (V, E)
        vectors = torch.as_tensor(vectors, dtype=weight.dtype)
        require(tuple(vectors.shape) == tuple(weight.shape), "embedding_vectors shape", tuple(vectors.shape),
                f"{tuple(weight.shape)} (vocab_size, embedding_dim)")  # fmt: skip
        weight.copy_(vectors)
        if self.embedding.padding_idx is not None:
            weight[self.embedding.padding_idx].zero_()

    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """``x`` (B, T, C) floats or (B, T) token ids; ``lengths`` (B,) real steps → logits (B, N)."""
        pair_logits = None
        if self.embedding is not None:
            if x.is_floating_point():
                raise InputError(f"x has dtype {x.dtype}: this model reads token ids (int64), not float features")
            pair_logits = self.pairs(x, lengths) if self.pairs is not None else None
            x = self.embedding_dropout(self.embedding(x))  # (B, T) → (B, T, E)
        elif not x.is_floating_point():
            raise InputError(f"x has dtype {x.dtype}: this model reads float features (B, T, C), not token ids")
        enc = self.encoder(x, lengths)  # outputs (B, T, dirs*D), last (B, dirs*D)
        pooled = self.pooling(enc.outputs, enc.last, lengths)  # (B, P): P = dirs*D, twice that for maxmean
        logits = self.head(self.head_dropout(pooled))  # (B, N)
        return logits if pair_logits is None else logits + pair_logits
