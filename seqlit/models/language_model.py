"""Recurrent language model: token embedding → :class:`RecurrentEncoder` → linear layer over the vocabulary.

It predicts the next token at every step and passes the recurrent state in and out, which is all that stateful
training (truncated back-propagation through time) and step-by-step sampling need. Sampling (temperature, top-k,
a seeded generator) lives here too, so a plain ``nn.Module`` can generate without Lightning.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from seqlit.errors import require
from seqlit.models.encoder import RecurrentEncoder, State


def detach_state(state: State | None) -> State | None:
    """The same state cut from the graph that produced it: the boundary truncated BPTT puts between chunks."""
    if state is None:
        return None
    return tuple(s.detach() for s in state) if isinstance(state, tuple) else state.detach()


class RecurrentLM(nn.Module):
    """Next-token model over a vocabulary of ``vocab_size`` ids (V).

    Args:
        vocab_size: tokens in the vocabulary, the unknown symbol included.
        hidden_size: recurrent units per layer (D).
        cell: ``rnn``, ``lstm``, ``gru`` or ``scratch``.
        num_layers: stacked recurrent layers.
        embedding_dim: width of the token embedding (E); ``None`` means ``hidden_size``. A small E (say 64) makes the
            input side of every recurrent layer cheaper; characters need few dimensions.
        dropout: dropout on the embedding, between layers and before the output layer.
        tie_weights: share one matrix between the embedding and the output layer (needs E = D).
        nonlinearity: ``tanh`` or ``relu`` for ``rnn`` and ``scratch``.
    """

    def __init__(
        self,
        *,
        vocab_size: int,
        hidden_size: int = 256,
        cell: str = "lstm",
        num_layers: int = 1,
        embedding_dim: int | None = None,
        dropout: float = 0.0,
        tie_weights: bool = False,
        nonlinearity: str = "tanh",
    ) -> None:
        super().__init__()
        embedding_dim = embedding_dim or hidden_size
        require(vocab_size >= 2, "vocab_size", vocab_size, "at least 2 (the unknown symbol and one token)")
        require(embedding_dim >= 1, "embedding_dim", embedding_dim, "at least 1")
        require(
            not tie_weights or embedding_dim == hidden_size,
            "tie_weights",
            tie_weights,
            f"true only when embedding_dim equals hidden_size ({embedding_dim} != {hidden_size})",
        )
        self.vocab_size = vocab_size
        self.embedding = nn.Embedding(vocab_size, embedding_dim)
        self.drop = nn.Dropout(dropout)
        self.encoder = RecurrentEncoder(
            input_size=embedding_dim,
            hidden_size=hidden_size,
            cell=cell,
            num_layers=num_layers,
            dropout=dropout,
            nonlinearity=nonlinearity,
        )
        self.head = nn.Linear(hidden_size, vocab_size)
        if tie_weights:  # one (V, D) matrix reads tokens in and scores them out (Press & Wolf, 2017)
            self.head.weight = self.embedding.weight

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Token ids (B, T) and an optional state to continue from → logits (B, T, V) and the state after step T."""
        emb = self.drop(self.embedding(ids))  # (B, T, E)
        enc = self.encoder(emb, state=state)  # outputs (B, T, D)
        return self.head(self.drop(enc.outputs)), enc.state  # (B, T, V)

    @torch.no_grad()
    def sample(
        self,
        prompt: Tensor,
        length: int,
        temperature: float = 1.0,
        top_k: int | None = None,
        generator: torch.Generator | None = None,
        banned: tuple[int, ...] = (0,),
        state: State | None = None,
    ) -> Tensor:
        """Continue ``prompt`` (P,) ids by ``length`` sampled ids (length,), one step at a time.

        ``temperature`` divides the logits (0: always the most likely token); ``top_k`` keeps only the k most likely
        tokens; ``banned`` ids (the unknown symbol) are never produced; ``state`` (L, 1, D), or (h, c) for an LSTM, is
        where reading the prompt starts (None: zeros). The caller sets eval mode.
        """
        logits, state = self(prompt.unsqueeze(0), state)  # read the whole prompt at once: (1, P, V)
        last = logits[0, -1]  # (V,)
        out = torch.empty(length, dtype=torch.long, device=prompt.device)
        for t in range(length):
            scores = last.clone()
            scores[list(banned)] = -float("inf")
            if top_k is not None and top_k < len(scores):
                kth = torch.topk(scores, top_k).values[-1]
                scores[scores < kth] = -float("inf")
            if temperature == 0:
                token = scores.argmax()
            else:
                probs = torch.softmax(scores / temperature, dim=-1)
                token = torch.multinomial(probs, 1, generator=generator)[0]
            out[t] = token
            logits, state = self(token.view(1, 1), state)  # (1, 1, V)
            last = logits[0, -1]
        return out
