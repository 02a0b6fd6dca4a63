"""Text classification data from raw files: IMDB's folders, label folders, CSV/TSV or JSONL, to length-bucketed batches.

``root`` is read in one of three layouts: split folders (``train/<label>/*.txt`` and optionally ``test/<label>/*.txt``,
as the IMDB archive unpacks), label folders with no split (``<label>/*.txt``), or one CSV/TSV/JSONL file with a text
and a label column. Validation (and test, where the data has none) is carved from the training documents by a seeded,
stratified fraction. A :class:`~seqlit.data.text.tokenizer.TextTokenizer` is trained on the training split only; every
document is encoded once and the result cached on disk under ``cache_dir`` (:mod:`~seqlit.data.text.corpus`), so a
second run starts in seconds. Documents that end up with no tokens are dropped, longer ones truncated to
``max_length``; both are counted in one summary line.

Batches are dicts (``x`` (B, T) int64 ids, ``lengths`` (B,), ``y`` (B,), ``id`` (B,)) from a
:class:`~seqlit.data.text.buckets.BucketBatchSampler`. The tokenizer and the label names are the module's
``state_dict()``, which Lightning stores in every checkpoint; ``seqlit predict --ckpt_path X --data.predict_path F``
therefore needs nothing else, and encodes ``F`` only in ``predict_dataloader``, after the checkpoint is restored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from seqlit.data.loading import batch_loader, replicas
from seqlit.data.text.buckets import BucketBatchSampler, TokenDataset, unbucketed_padding
from seqlit.data.text.tokenizer import PAD_ID, TextTokenizer, TokenizerKind, load_vectors, truncate
from seqlit.errors import InputError, require, say

if TYPE_CHECKING:
    from seqlit.data.text.readers import RawDocs

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class TextSpec:
    """What a classifier of token ids takes from its data; every field empty until a tokenizer exists."""

    vocab_size: int | None = None  # V, including ``<pad>`` and ``<unk>``
    pad_id: int | None = None  # the id padding uses, which the embedding keeps at zero
    num_classes: int | None = None  # N
    label_names: list[str] | None = None  # one per class, in class-id order
    # (V, E) pretrained vectors when ``vectors_path`` is given; left out of ==, which a tensor cannot answer as a bool
    embedding_vectors: torch.Tensor | None = field(default=None, compare=False)


class TextDataModule(L.LightningDataModule):
    """Labelled documents → token-id batches (see the module docstring).

    Args:
        root: a folder (split folders or label folders) or a ``.csv``/``.tsv``/``.jsonl`` file.
        predict_path: documents to predict: a ``.txt`` file (one per line; id = line number from 0), a folder of
            ``.txt`` files (id = position in name order), or a CSV/TSV/JSONL file (its ``text_column``).
        text_column: column (or JSON key) holding the text, for table files.
        label_column: column (or JSON key) holding the label, for table files.
        val_fraction: share of each class's training documents kept for validation.
        test_fraction: share of each class carved for test when the data has no test split.
        split_seed: seed of those carvings.
        tokenizer: ``word`` (whole words, as the tutorials) or ``bpe`` (sub-words; nothing is unknown).
        max_vocab: vocabulary entries besides ``<pad>`` and ``<unk>`` (the tutorials' 25,000).
        min_freq: a word needs this many occurrences in the training split to get an entry.
        lowercase: lower-case before tokenizing.
        max_length: tokens kept per document (``null``: all).
        truncation: which part of a longer document to keep: ``head``, ``tail`` or ``both`` (first and last halves).
        batch_size: documents per training batch.
        eval_batch_size: documents per validation/test/predict batch (default: ``batch_size``).
        pool_batches: batches' worth of documents sorted together when bucketing (1 = no bucketing).
        equal_length: cut every training batch to its shortest document (no padding at all), so an LSTM runs
            oneDNN's fast kernel on the CPU; with buckets this drops a few percent of the tokens. Evaluation and
            prediction always read whole documents (up to ``max_length``).
        shuffle: reshuffle training batches every epoch.
        seed: seed of the batch shuffles (each epoch adds its number).
        vectors_path: pretrained word vectors (GloVe or word2vec text format) to initialise the embedding.
        cache_dir: folder of the tokenization cache (empty string: no cache).
        num_workers: DataLoader worker processes (0 is fastest: batches are built from memory).
    """

    def __init__(
        self,
        *,
        root: str | None = None,
        predict_path: str | None = None,
        text_column: str = "text",
        label_column: str = "label",
        val_fraction: float = 0.1,
        test_fraction: float = 0.1,
        split_seed: int = 0,
        tokenizer: TokenizerKind = "word",
        max_vocab: int = 25_000,
        min_freq: int = 1,
        lowercase: bool = True,
        max_length: int | None = 400,
        truncation: Literal["head", "tail", "both"] = "head",
        batch_size: int = 64,
        eval_batch_size: int | None = None,
        pool_batches: int = 50,
        equal_length: bool = False,
        shuffle: bool = True,
        seed: int = 0,
        vectors_path: str | None = None,
        cache_dir: str = ".cache/seqlit",
        num_workers: int = 0,
    ) -> None:
        super().__init__()
        require(0.0 <= val_fraction < 1.0, "data.val_fraction", val_fraction, "a fraction in [0, 1)")
        require(0.0 <= test_fraction < 1.0, "data.test_fraction", test_fraction, "a fraction in [0, 1)")
        require(val_fraction + test_fraction < 1.0, "data.val_fraction + data.test_fraction",
                val_fraction + test_fraction, "below 1, so documents are left to train on")  # fmt: skip
        require(max_length is None or max_length >= 1, "data.max_length", max_length, "null or at least 1 token")
        require(truncation in ("head", "tail", "both"), "data.truncation", truncation, "one of head, tail, both")
        require(batch_size >= 1, "data.batch_size", batch_size, "at least 1")
        require(
            eval_batch_size is None or eval_batch_size >= 1, "data.eval_batch_size", eval_batch_size, "null or >= 1"
        )
        require(pool_batches >= 1, "data.pool_batches", pool_batches, "at least 1")
        require(num_workers >= 0, "data.num_workers", num_workers, "0 or more")
        self.save_hyperparameters()
        self.tokenizer: TextTokenizer | None = None
        self.label_names: list[str] = []
        self.datasets: dict[str, TokenDataset] = {}
        self.stats: dict[str, Any] = {}
        self.vectors: torch.Tensor | None = None
        self._predict: tuple[RawDocs, list[int]] | None = None

    # --- setup --------------------------------------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        if stage == "predict":
            # the tokenizer may come from a checkpoint restored after this runs: read now (bad input fails early),
            # encode in predict_dataloader
            if self._predict is None:
                self._predict = self._read_predict()
            return
        if self.datasets:  # idempotent: the CLI sets data up once, early, before the Trainer does
            return
        require(self.hparams.root is not None, "data.root", None, "a folder or a .csv/.tsv/.jsonl file of documents")
        # reading and tokenizing the documents happens here only: a module restored from a checkpoint to predict
        # never needs the corpus code
        from seqlit.data.text.corpus import load_corpus

        hp = self.hparams
        corpus = load_corpus(
            root=hp.root, text_column=hp.text_column, label_column=hp.label_column, val_fraction=hp.val_fraction,
            test_fraction=hp.test_fraction, split_seed=hp.split_seed, tokenizer=hp.tokenizer, max_vocab=hp.max_vocab,
            min_freq=hp.min_freq, lowercase=hp.lowercase, cache_dir=hp.cache_dir,
        )  # fmt: skip
        self._build_datasets(corpus)
        if stage in ("fit", None) and self.hparams.vectors_path:
            table, found = load_vectors(self.hparams.vectors_path, self.tokenizer.vocab(), self.hparams.seed)
            self.vectors = torch.from_numpy(table)
            v = self.tokenizer.vocab_size
            say(f"text: pretrained vectors cover {found:,} of {v:,} vocabulary entries ({found / v:.1%})")

    def _build_datasets(self, corpus: dict[str, Any]) -> None:
        hp, meta = self.hparams, corpus["meta"]
        tok = TextTokenizer.from_json(meta["tokenizer"])
        if self.tokenizer is not None and self.tokenizer.vocab() != tok.vocab():
            raise InputError("the checkpoint's vocabulary differs from the one built from data.root now: "
                             "the data or the tokenizer settings changed since training")  # fmt: skip
        self.tokenizer, self.label_names = tok, list(meta["label_names"])
        stats: dict[str, Any] = {"not_utf8": int(meta["not_utf8"]), "tokenize_seconds": float(meta["seconds"])}
        for split in SPLITS:
            # test documents come from the data's own test split where it has one, else from the carved pool
            source = "test" if split == "test" and meta["test_source"] == "test" else "pool"
            idx = corpus[f"{split}_idx"]  # rows of that source
            offsets = corpus[f"{source}_offsets"]  # (N + 1,): document i is ids[offsets[i] : offsets[i + 1]]
            starts, ends = offsets[idx], offsets[idx + 1]
            docs, truncated = truncate(corpus[f"{source}_ids"], starts, ends, hp.max_length, hp.truncation)
            keep = [i for i, d in enumerate(docs) if len(d)]  # a zero length would make pack_padded_sequence raise
            stats[f"{split}_empty"] = len(docs) - len(keep)
            stats[f"{split}_truncated"] = truncated
            if not keep:
                continue
            y = corpus[f"{source}_y"][idx]
            self.datasets[split] = TokenDataset(
                [docs[i] for i in keep],
                labels=y[keep],
                ids=idx[keep],  # the document's row in its source, so predictions can be matched back
                pad_id=PAD_ID,
                equal_length=hp.equal_length and split == "train",  # evaluation always reads whole documents
                keep=hp.truncation,
            )
        require("train" in self.datasets, "data.root", hp.root, "documents with at least one token to train on")
        self.stats = stats
        self._report()

    def _report(self) -> None:
        s, hp = self.stats, self.hparams
        sizes = " / ".join(f"{len(self.datasets[k]):,} {k}" for k in SPLITS if k in self.datasets)
        empty = sum(s[f"{k}_empty"] for k in SPLITS)
        truncated = sum(s[f"{k}_truncated"] for k in SPLITS)
        say(
            f"text: {sizes} documents, labels {self.label_names}, vocabulary {self.tokenizer.vocab_size:,} "
            f"({hp.tokenizer}); {truncated:,} truncated to {hp.max_length} tokens, {empty:,} empty dropped, "
            f"{s['not_utf8']:,} not UTF-8 (decoded with replacement)"
        )
        lengths = self.datasets["train"].lengths
        # the padding a shuffled training epoch will carry, with buckets and without
        sampler = BucketBatchSampler(lengths, batch_size=hp.batch_size, shuffle=True, seed=hp.seed,
                                     pool_batches=hp.pool_batches)  # fmt: skip
        self.stats["padding"] = sampler.padding_fraction()
        self.stats["padding_unbucketed"] = unbucketed_padding(lengths, hp.batch_size, hp.seed)
        say(
            f"text: training batches are {self.stats['padding']:.1%} padding with length buckets "
            f"({self.stats['padding_unbucketed']:.1%} without); mean length {lengths.mean():.0f} tokens"
        )

    def _read_predict(self) -> tuple[RawDocs, list[int]]:
        from seqlit.data.text.readers import TABLE_SUFFIXES, read_predict, read_table  # the predict path only

        hp = self.hparams
        require(hp.predict_path is not None, "data.predict_path", None, "a .txt file or folder of documents to predict")
        path = Path(hp.predict_path)
        if path.is_file() and path.suffix in TABLE_SUFFIXES:
            docs = read_table(path, hp.text_column, None)
            return docs, list(range(len(docs.texts)))
        return read_predict(path)

    # --- what the model and the checkpoint take -----------------------------------------------------------------
    def spec(self) -> TextSpec:
        """Sizes the classifier takes from the data; empty until a tokenizer exists (trained, or from a checkpoint)."""
        if self.tokenizer is None:
            return TextSpec()
        names = list(self.label_names) or None  # a checkpoint's tokenizer may come before any labels are known
        return TextSpec(vocab_size=self.tokenizer.vocab_size, pad_id=PAD_ID, num_classes=len(names) if names else None,
                        label_names=names, embedding_vectors=self.vectors)  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Tokenizer (JSON string) and label names: plain data that lets a checkpoint predict on its own."""
        if self.tokenizer is None:
            return {}
        hp = self.hparams
        return {"tokenizer": self.tokenizer.to_json(), "label_names": list(self.label_names),
                "max_length": hp.max_length, "truncation": hp.truncation}  # fmt: skip

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if not state:
            return
        tok = TextTokenizer.from_json(state["tokenizer"])
        if self.datasets and self.tokenizer is not None and self.tokenizer.vocab() != tok.vocab():
            raise InputError("the checkpoint's vocabulary differs from the one built from data.root now: "
                             "the data or the tokenizer settings changed since training")  # fmt: skip
        self.tokenizer, self.label_names = tok, list(state["label_names"])

    # --- loaders ------------------------------------------------------------------------------------------------
    def _loader(self, dataset: TokenDataset, train: bool, sort: bool = True, even: bool = True) -> DataLoader:
        hp = self.hparams
        replicas_, rank = replicas(self.trainer)
        sampler = BucketBatchSampler(
            dataset.lengths, hp.batch_size if train else hp.eval_batch_size or hp.batch_size,
            shuffle=train and hp.shuffle, seed=hp.seed, pool_batches=hp.pool_batches,
            num_replicas=replicas_, rank=rank, sort=sort, even=even,
        )  # fmt: skip
        return batch_loader(dataset, sampler=sampler, num_workers=hp.num_workers)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.datasets["train"], train=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.datasets["val"], train=False) if "val" in self.datasets else []

    def test_dataloader(self) -> DataLoader:
        require(
            "test" in self.datasets, "data.root", self.hparams.root, "data with a test split (or test_fraction > 0)"
        )
        return self._loader(self.datasets["test"], train=False, even=False)  # each document once over all ranks

    def predict_dataloader(self) -> DataLoader:
        if self.tokenizer is None:
            raise InputError("predict needs a tokenizer: give --ckpt_path of a checkpoint trained on text "
                             "(it stores the tokenizer and label names)")  # fmt: skip
        docs, ids = self._predict if self._predict is not None else self._read_predict()
        # encoded here, not in setup: the tokenizer may arrive with the checkpoint, after setup ran
        ids_flat, offsets = self.tokenizer.encode(docs.texts)
        encoded, truncated = truncate(
            ids_flat, offsets[:-1], offsets[1:], self.hparams.max_length, self.hparams.truncation
        )
        keep = [i for i, d in enumerate(encoded) if len(d)]
        require(bool(keep), "data.predict_path", self.hparams.predict_path, "documents with at least one token")
        say(
            f"text: predicting {len(keep):,} documents ({truncated:,} truncated to {self.hparams.max_length} tokens, "
            f"{len(encoded) - len(keep):,} without tokens skipped, {docs.not_utf8:,} not UTF-8)"
        )
        # label -1: unknown; ids number the documents as the predict file does
        dataset = TokenDataset([encoded[i] for i in keep], labels=[-1] * len(keep), ids=[ids[i] for i in keep],
                               pad_id=PAD_ID)  # fmt: skip
        return self._loader(dataset, train=False, sort=False, even=False)  # rows come out in document order
