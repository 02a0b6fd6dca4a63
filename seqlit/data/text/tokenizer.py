"""Text to token ids with HuggingFace ``tokenizers``: normalisation, a capped vocabulary, a JSON form for checkpoints.

torchtext, which the tutorials use, is unmaintained and broken on current torch; ``tokenizers`` is maintained, written
in Rust and encodes in parallel. :class:`TextTokenizer` wraps one ``tokenizers.Tokenizer`` with the settings the
tutorials need: NFKC unicode normalisation, the HTML line breaks (``<br />``) that fill IMDB replaced by spaces,
optional lower-casing, a vocabulary capped at ``max_vocab`` entries seen at least ``min_freq`` times in the training
split, and two reserved ids: ``<pad>`` = 0 and ``<unk>`` = 1. ``kind="word"`` splits on whitespace and punctuation
(``\\w+|[^\\w\\s]+``) and keeps whole words, as the tutorials do; ``kind="bpe"`` learns sub-word pieces instead, so no
word is ever unknown. The whole tokenizer serialises to one JSON string, which the data module stores in every
checkpoint, so prediction needs nothing but the checkpoint.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, Literal

import numpy as np
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, trainers

from seqlit.data.text.buckets import cut
from seqlit.errors import require

TokenizerKind = Literal["word", "bpe"]
PAD, UNK = "<pad>", "<unk>"
PAD_ID, UNK_ID = 0, 1


def _normalizer(lowercase: bool) -> normalizers.Normalizer:
    steps = [
        normalizers.NFKC(),  # full-width letters, ligatures and composed accents become one canonical form
        normalizers.Replace(Regex(r"(?i)<br\s*/?>"), " "),  # IMDB's HTML line breaks are layout, not words
    ]
    if lowercase:
        steps.append(normalizers.Lowercase())
    return normalizers.Sequence(steps)


class TextTokenizer:
    """A trained tokenizer with reserved ``<pad>`` (0) and ``<unk>`` (1) ids.

    Build one with :meth:`train` on the training texts, or restore one with :meth:`from_json`.
    """

    def __init__(self, tokenizer: Tokenizer) -> None:
        self.tokenizer = tokenizer
        require(tokenizer.token_to_id(PAD) == PAD_ID, "tokenizer", PAD, f"a tokenizer whose {PAD} id is {PAD_ID}")
        require(tokenizer.token_to_id(UNK) == UNK_ID, "tokenizer", UNK, f"a tokenizer whose {UNK} id is {UNK_ID}")

    @classmethod
    def train(
        cls,
        texts: Iterable[str],
        kind: TokenizerKind = "word",
        max_vocab: int = 25_000,
        min_freq: int = 1,
        lowercase: bool = True,
    ) -> TextTokenizer:
        """Learn the vocabulary from ``texts``: at most ``max_vocab`` entries besides ``<pad>`` and ``<unk>``.

        Word-level entries are the most frequent words seen at least ``min_freq`` times, ties broken alphabetically,
        so the vocabulary is the same on every run.
        """
        require(kind in ("word", "bpe"), "data.tokenizer", kind, "one of 'word', 'bpe'")
        require(max_vocab >= 1, "data.max_vocab", max_vocab, "at least 1 entry")
        require(min_freq >= 1, "data.min_freq", min_freq, "at least 1")
        specials = [PAD, UNK]  # listed first, so they get ids 0 and 1
        size = max_vocab + len(specials)
        if kind == "word":
            tok = Tokenizer(models.WordLevel(unk_token=UNK))
            trainer: Any = trainers.WordLevelTrainer(
                vocab_size=size, min_frequency=min_freq, special_tokens=specials, show_progress=_terminal()
            )
        else:
            tok = Tokenizer(models.BPE(unk_token=UNK, continuing_subword_prefix="##"))
            tok.decoder = decoders.WordPiece(prefix="##")
            trainer = trainers.BpeTrainer(
                vocab_size=size,
                min_frequency=min_freq,
                special_tokens=specials,
                continuing_subword_prefix="##",
                show_progress=_terminal(),
            )
        tok.normalizer = _normalizer(lowercase)
        tok.pre_tokenizer = pre_tokenizers.Whitespace()
        tok.train_from_iterator(texts, trainer)
        return cls(tok)

    @classmethod
    def from_json(cls, text: str) -> TextTokenizer:
        """Restore a tokenizer from :meth:`to_json` (as stored in a checkpoint)."""
        return cls(Tokenizer.from_str(text))

    def to_json(self) -> str:
        """The whole tokenizer (normaliser, splitter, vocabulary) as one JSON string: plain data for checkpoints."""
        return self.tokenizer.to_str()

    @property
    def vocab_size(self) -> int:
        """Number of ids, the reserved ones included (V)."""
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def vocab(self) -> dict[str, int]:
        """Token → id."""
        return self.tokenizer.get_vocab(with_added_tokens=True)

    def normalize(self, text: str) -> str:
        """The text as the tokenizer sees it before splitting (unicode-normalised, ``<br />`` removed, lower-cased)."""
        return self.tokenizer.normalizer.normalize_str(text)

    def tokens(self, text: str) -> list[str]:
        """The tokens of one text, unknown words shown as ``<unk>``."""
        return self.tokenizer.encode(text).tokens

    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Encode many texts at once (in parallel, in Rust): flat ids (int32) and offsets (N + 1,) into them.

        Text ``i`` is ``ids[offsets[i]:offsets[i + 1]]``, at full length: truncation happens later, so a cached
        encoding serves every ``max_length``.
        """
        from tqdm import tqdm

        texts = list(texts)
        # encode_batch_fast skips character offsets, which nothing here needs (older tokenizers lack it)
        encode = getattr(self.tokenizer, "encode_batch_fast", self.tokenizer.encode_batch)
        chunk = 2048  # big enough for Rust's parallel batch encoding, small enough for a progress bar that moves
        bar = tqdm(total=len(texts), desc="encoding", unit="doc", disable=None if len(texts) > chunk else True,
                   leave=False, mininterval=1.0)  # fmt: skip
        encodings = []
        for start in range(0, len(texts), chunk):
            encodings += encode(texts[start : start + chunk], add_special_tokens=False)
            bar.update(min(chunk, len(texts) - start))
        bar.close()
        lengths = np.fromiter((len(e.ids) for e in encodings), dtype=np.int64, count=len(encodings))
        offsets = np.zeros(len(encodings) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        ids = np.fromiter((i for e in encodings for i in e.ids), dtype=np.int32, count=int(offsets[-1]))
        return ids, offsets

    def settings(self) -> dict[str, Any]:
        """What the tokenizer is, in brief (for logs and cache keys)."""
        model = json.loads(self.to_json())["model"]
        return {"model": model["type"], "vocab_size": self.vocab_size}


def _terminal() -> bool:
    """Whether a person watches stderr: the tokenizer trainer's own progress bar only makes sense there."""
    return sys.stderr.isatty()


def truncate(
    ids: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    max_length: int | None,
    keep: Literal["head", "tail", "both"] = "head",
) -> tuple[list[np.ndarray], int]:
    """Documents ``ids[starts[i]:ends[i]]``, each cut to at most ``max_length`` ids; and how many were cut.

    ``keep`` says which part survives: ``head`` (the start, as the tutorials' fixed-length inputs), ``tail`` (the end,
    where reviews tend to sum up), or ``both`` (the first and last halves).
    """
    docs = [ids[s:e] for s, e in zip(starts.tolist(), ends.tolist(), strict=True)]
    if not max_length:
        return docs, 0
    over = sum(len(d) > max_length for d in docs)
    return [cut(d, max_length, keep) for d in docs], over


def load_vectors(path: str, vocab: dict[str, int], seed: int = 0) -> tuple[np.ndarray, int]:
    """Pretrained vectors for a vocabulary from a GloVe or word2vec text file: (V, E) float32, and how many were found.

    Only lines whose word is in ``vocab`` are parsed, so a 400k-word file costs one pass of string splits. Words
    without a vector get small random vectors (seeded, scaled like the found ones); ``<pad>`` gets zeros. A word2vec
    header line (``count dim``) is skipped.
    """
    from pathlib import Path

    from seqlit.errors import InputError

    file = Path(path)
    require(file.is_file(), "data.vectors_path", path, "an existing GloVe/word2vec text file (word v1 v2 ...)")
    found: dict[int, np.ndarray] = {}
    dim = None
    with file.open(encoding="utf-8", errors="replace") as f:
        for n, line in enumerate(f, start=1):
            word, _, rest = line.rstrip().partition(" ")
            if n == 1 and word.isdigit() and rest.strip().isdigit():
                continue  # word2vec's "count dim" header
            i = vocab.get(word)
            if i is None or i in found:
                continue
            try:
                vec = np.array(rest.split(), dtype=np.float32)
            except ValueError:
                raise InputError(f"data.vectors_path={path!r} line {n} is not 'word v1 v2 ...' numbers") from None
            if dim is None:
                dim = len(vec)
            if len(vec) != dim or dim == 0:
                raise InputError(f"data.vectors_path={path!r} line {n} has {len(vec)} numbers, earlier lines {dim}")
            found[i] = vec
    require(bool(found), "data.vectors_path", path, "a vector file covering at least one vocabulary word (none found)")
    known = np.stack(list(found.values()))
    rng = np.random.default_rng(seed)
    table = rng.normal(0.0, float(known.std()), size=(len(vocab), dim)).astype(np.float32)
    for i, vec in found.items():
        table[i] = vec
    table[PAD_ID] = 0.0
    return table, len(found)
