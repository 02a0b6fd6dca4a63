"""A labelled text corpus read, split, tokenized and encoded once, then cached on disk for the next run.

:func:`load_corpus` finds the layout of ``root`` (split folders as IMDB unpacks, label folders, or one table file),
reads every document, carves validation (and test, where the data has none) from the training documents by a seeded
stratified fraction, trains a :class:`~seqlit.data.text.tokenizer.TextTokenizer` on the training split alone and
encodes every document as one flat id array with offsets. The result is cached under ``cache_dir``, keyed by the input
files (path, size, modification time) and the settings that shape the ids, so a second run starts in seconds.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np

from seqlit.data.text.readers import (
    TABLE_SUFFIXES,
    RawDocs,
    fingerprint,
    folder_files,
    label_order,
    read_files,
    read_table,
    stratified_split,
)
from seqlit.data.text.tokenizer import TextTokenizer
from seqlit.errors import require, say

CACHE_FORMAT = 1  # bump when the cached arrays change meaning


def corpus_sources(root: str) -> tuple[str, list[tuple[Path, str]] | Path, list[tuple[Path, str]] | None]:
    """The layout of ``root`` and its inputs: (layout, training files or table file, test files or None)."""
    path = Path(root)
    require(path.exists(), "data.root", str(path), "an existing folder or .csv/.tsv/.jsonl file")
    if path.is_file():
        suffixes = "/".join(TABLE_SUFFIXES)
        require(path.suffix in TABLE_SUFFIXES, "data.root", str(path), f"a folder or a {suffixes} file")
        return "table", path, None
    if (path / "train").is_dir():  # IMDB's layout: train/<label>/*.txt and perhaps test/<label>/*.txt
        test = folder_files(path / "test") if (path / "test").is_dir() else None
        return "split", folder_files(path / "train"), test
    return "folders", folder_files(path), None


def load_corpus(
    *,
    root: str,
    text_column: str,
    label_column: str,
    val_fraction: float,
    test_fraction: float,
    split_seed: int,
    tokenizer: str,
    max_vocab: int,
    min_freq: int,
    lowercase: bool,
    cache_dir: str,
) -> dict[str, Any]:
    """Read, split, train the tokenizer and encode, or load all of that from the cache.

    Returns the arrays ``{pool,test}_{ids,offsets,y}`` (documents of the training pool and of the data's own test
    split), ``{train,val,test}_idx`` (rows of the pool, or of the test split where ``meta["test_source"]`` says so)
    and ``meta`` (the tokenizer as JSON, the label names, counts). Arguments: see
    :class:`~seqlit.data.text.datamodule.TextDataModule`.
    """
    layout, train_in, test_in = corpus_sources(root)
    has_test = test_in is not None
    settings = {
        "format": CACHE_FORMAT, "layout": layout, "tokenizer": tokenizer, "max_vocab": max_vocab,
        "min_freq": min_freq, "lowercase": lowercase, "val_fraction": val_fraction,
        "test_fraction": None if has_test else test_fraction, "split_seed": split_seed,
        "columns": [text_column, label_column] if layout == "table" else None,
    }  # fmt: skip
    files = [train_in] if layout == "table" else [p for p, _ in train_in] + [p for p, _ in test_in or []]
    cache = Path(cache_dir) / f"text-{fingerprint(files, settings)}" if cache_dir else None
    if cache is not None and (cache / "meta.json").is_file():
        meta = json.loads((cache / "meta.json").read_text())
        with np.load(cache / "arrays.npz") as z:
            corpus = {k: z[k] for k in z.files}
        say(f"text: tokenized corpus loaded from the cache {cache}")
        return {**corpus, "meta": meta}
    start = time.perf_counter()
    pool = read_table(train_in, text_column, label_column) if layout == "table" else read_files(train_in)
    test = read_files(test_in, desc="reading test") if has_test else RawDocs()
    names = label_order(pool.labels)
    require(len(names) >= 2, "labels", names, "at least 2 distinct classes in the training documents")
    unknown = sorted(set(test.labels) - set(names))
    require(not unknown, "test labels", unknown, f"labels seen in training too ({names})")
    index = {n: i for i, n in enumerate(names)}
    pool_y = np.array([index[lab] for lab in pool.labels], dtype=np.int64)
    test_y = np.array([index[lab] for lab in test.labels], dtype=np.int64)
    fractions = [val_fraction] if has_test else [val_fraction, test_fraction]
    parts = stratified_split(pool_y, fractions, split_seed)
    train_idx, val_idx = parts[0], parts[1]
    train_texts = [pool.texts[i] for i in train_idx]
    # trained on the training split alone: validation and test words stay unseen, as they would be in use
    tok = TextTokenizer.train(train_texts, kind=tokenizer, max_vocab=max_vocab, min_freq=min_freq, lowercase=lowercase)
    pool_ids, pool_off = tok.encode(pool.texts)  # flat ids, and offsets (N + 1,) of each document's first id
    test_ids, test_off = tok.encode(test.texts)
    seconds = time.perf_counter() - start
    corpus = {
        "pool_ids": pool_ids, "pool_offsets": pool_off, "pool_y": pool_y,
        "test_ids": test_ids, "test_offsets": test_off, "test_y": test_y,
        "train_idx": train_idx, "val_idx": val_idx,
        "test_idx": np.arange(len(test_y)) if has_test else parts[2],
    }  # fmt: skip
    meta = {
        "tokenizer": tok.to_json(), "label_names": names, "test_source": "test" if has_test else "pool",
        "not_utf8": pool.not_utf8 + test.not_utf8, "seconds": seconds,
    }  # fmt: skip
    if cache is not None:
        tmp = cache.with_name(cache.name + f".tmp{np.random.randint(1 << 30)}")
        tmp.mkdir(parents=True)
        np.savez(tmp / "arrays.npz", **corpus)
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            tmp.rename(cache)  # atomic: a half-written cache is never read
        except OSError:  # another process finished first; its copy is as good
            shutil.rmtree(tmp, ignore_errors=True)
    say(f"text: read, trained the tokenizer and encoded {len(pool_y) + len(test_y):,} documents "
                   f"in {seconds:.1f} s")  # fmt: skip
    return {**corpus, "meta": meta}
