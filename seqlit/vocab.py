"""The character vocabulary of the character language model: build it from text, encode text to ids, decode back.

Index 0 is the unknown symbol (the empty string): every character never seen in training maps to it and decodes to
nothing. Shared by the data (which builds the vocabulary from the training span) and the task and inference code
(which carry it in the checkpoint and generate text with it), so it belongs to neither.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from seqlit.errors import require

UNKNOWN = ""  # vocabulary entry 0: never a real character, so it cannot collide with one


def build_vocab(text: str) -> list[str]:
    """The unknown symbol, then every distinct character of ``text`` in code-point order."""
    return [UNKNOWN, *sorted(set(text))]


def encode(text: str, vocab: list[str]) -> tuple[Tensor, list[str]]:
    """Ids (N,) int64 of ``text`` under ``vocab``, and the distinct characters that were not in it (read as 0)."""
    chars = np.array([ord(c) for c in vocab[1:]] or [0], dtype=np.uint32)  # [0] only keeps an empty vocab indexable
    order = np.argsort(chars)  # build_vocab sorts already; a vocabulary from elsewhere need not be
    chars, ids_of = chars[order], order + 1
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)  # one code point per character, vectorised
    where = np.minimum(np.searchsorted(chars, codes), len(chars) - 1)
    known = (chars[where] == codes) & (len(vocab) > 1)
    ids = np.where(known, ids_of[where], 0).astype(np.int64)
    unknown = sorted({chr(c) for c in np.unique(codes[~known])})
    return torch.from_numpy(ids), unknown


def decode(ids: list[int] | Tensor, vocab: list[str]) -> str:
    """Text of ``ids``; the unknown symbol reads as nothing."""
    return "".join(vocab[i] for i in (ids.tolist() if isinstance(ids, Tensor) else ids))


def check_generation(prompt: str, length: int, temperature: float, top_k: int | None, prefix: str = "") -> None:
    """Validate generation options, naming them as the caller knows them (``data.prompt`` or ``prompt``)."""
    require(isinstance(prompt, str) and len(prompt) > 0, f"{prefix}prompt", prompt, "a non-empty string")
    require(length >= 0, f"{prefix}generate_length" if prefix else "length", length, "0 or more characters")
    require(np.isfinite(temperature) and temperature >= 0, f"{prefix}temperature", temperature, "a number >= 0")
    require(top_k is None or top_k >= 1, f"{prefix}top_k", top_k, "null (all characters) or at least 1")
