"""Exact tests of the text data path: tokenizer, vocabulary, truncation, bucket sampler, readers, cache, bad inputs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlit.data.text.buckets import BucketBatchSampler, TokenDataset
from seqlit.data.text.datamodule import TextDataModule, TextSpec
from seqlit.data.text.readers import label_order, stratified_split
from seqlit.data.text.tokenizer import PAD_ID, UNK_ID, TextTokenizer, load_vectors, truncate
from seqlit.errors import InputError
from seqlit.models.encoder import RecurrentEncoder


def write_folders(root: Path, docs: dict[str, list[str | bytes]]) -> Path:
    """``root/<label>/<i>.txt`` for every document (bytes are written raw)."""
    for label, texts in docs.items():
        (root / label).mkdir(parents=True, exist_ok=True)
        for i, t in enumerate(texts):
            path = root / label / f"{i:03d}.txt"
            path.write_bytes(t) if isinstance(t, bytes) else path.write_text(t)
    return root


def module(root: Path, tmp_path: Path, **kw) -> TextDataModule:
    kw = {"val_fraction": 0.0, "test_fraction": 0.0, "cache_dir": str(tmp_path / "cache"), "batch_size": 2, **kw}
    return TextDataModule(root=str(root), **kw)


# --- tokenizer and vocabulary ---------------------------------------------------------------------------------------
def test_tokenizer_normalises_and_orders_vocabulary_by_count_then_alphabet():
    tok = TextTokenizer.train(["b a c<br />C", "a b d", "E e e"], max_vocab=4)
    # e: 3, a/b/c: 2 each (ties alphabetical), d: 1 falls off the cap; <pad> and <unk> come first
    assert tok.vocab() == {"<pad>": 0, "<unk>": 1, "e": 2, "a": 3, "b": 4, "c": 5}
    assert tok.vocab_size == 6
    assert tok.normalize("Ｈé<BR/>x<br />") == "hé x "  # NFKC full-width → ascii, line breaks → spaces, lower case
    assert tok.tokens("A d, b!") == ["a", "<unk>", "<unk>", "b", "<unk>"]
    ids, offsets = tok.encode(["a b", "", "zz e"])
    assert ids.tolist() == [3, 4, UNK_ID, 2] and offsets.tolist() == [0, 2, 2, 4]
    again = TextTokenizer.from_json(tok.to_json())
    assert again.encode(["a b", "", "zz e"])[0].tolist() == ids.tolist()


def test_min_freq_and_case():
    tok = TextTokenizer.train(["Big big cat", "cat"], min_freq=2, lowercase=False)
    assert tok.vocab() == {"<pad>": 0, "<unk>": 1, "cat": 2}
    assert TextTokenizer.train(["Big big cat", "cat"], min_freq=2).vocab() == {
        "<pad>": 0,
        "<unk>": 1,
        "big": 2,
        "cat": 3,
    }


def test_bpe_knows_no_unknown_words():
    tok = TextTokenizer.train(["lower lowest newer newest"] * 5, kind="bpe", max_vocab=40)
    assert tok.vocab()["<pad>"] == PAD_ID and tok.vocab()["<unk>"] == UNK_ID
    pieces = tok.tokens("lowewer")  # an unseen word, made of pieces that were seen
    assert "<unk>" not in pieces and len(pieces) > 1


def test_truncate_keeps_head_tail_or_both_and_counts():
    ids = np.arange(10, dtype=np.int32)
    starts, ends = np.array([0, 7]), np.array([7, 10])
    docs, cut = truncate(ids, starts, ends, 4, "head")
    assert [d.tolist() for d in docs] == [[0, 1, 2, 3], [7, 8, 9]] and cut == 1
    assert truncate(ids, starts, ends, 4, "tail")[0][0].tolist() == [3, 4, 5, 6]
    assert truncate(ids, starts, ends, 5, "both")[0][0].tolist() == [0, 1, 2, 5, 6]
    assert truncate(ids, starts, ends, None)[1] == 0


# --- batches --------------------------------------------------------------------------------------------------------
def test_bucket_sampler_covers_every_index_once_sorted_and_reshuffles():
    lengths = np.random.default_rng(0).integers(1, 100, size=103)
    s = BucketBatchSampler(lengths, batch_size=8, shuffle=True, seed=3, pool_batches=4)
    epoch0 = list(s)
    assert sorted(i for b in epoch0 for i in b) == list(range(103)) and len(epoch0) == len(s) == 13
    for b in epoch0:
        assert list(lengths[b]) == sorted(lengths[b], reverse=True)  # sort_within_batch
    assert list(s) == epoch0  # the same epoch gives the same batches
    s.set_epoch(1)
    assert list(s) != epoch0
    assert s.padding_fraction() < 0.2  # vs about half for random batches of these lengths


def test_bucket_sampler_gives_ranks_distinct_batches_of_equal_count():
    lengths = np.arange(1, 41)
    ranks = [BucketBatchSampler(lengths, 4, shuffle=True, seed=1, num_replicas=2, rank=r) for r in (0, 1)]
    b0, b1 = list(ranks[0]), list(ranks[1])
    assert len(b0) == len(b1) == 5
    seen = [i for b in b0 + b1 for i in b]
    assert sorted(seen) == list(range(40))  # distinct, and together every document once
    for r in ranks:
        r.set_epoch(7)
    assert list(ranks[0]) != b0
    # 11 batches over 2 ranks: both run 6 steps (one batch repeats), as DDP needs
    odd = [list(BucketBatchSampler(np.arange(1, 45), 4, seed=1, num_replicas=2, rank=r)) for r in (0, 1)]
    assert len(odd[0]) == len(odd[1]) == 6


def test_eval_sampler_is_length_sorted_and_predict_keeps_order():
    lengths = np.array([3, 9, 1, 9, 5])
    assert list(BucketBatchSampler(lengths, 2, shuffle=False)) == [[1, 3], [4, 0], [2]]
    assert list(BucketBatchSampler(lengths, 2, shuffle=False, sort=False)) == [[0, 1], [2, 3], [4]]


def test_token_dataset_pads_to_batch_longest_or_cuts_to_shortest():
    docs = [np.array([5, 6, 7]), np.array([8]), np.array([9, 10])]
    ds = TokenDataset(docs, [0, 1, 0], [10, 11, 12])
    batch = ds[[0, 1]]
    assert batch["x"].tolist() == [[5, 6, 7], [8, 0, 0]] and batch["x"].dtype == torch.int64
    assert batch["lengths"].tolist() == [3, 1] and batch["y"].tolist() == [0, 1] and batch["id"].tolist() == [10, 11]
    tail = TokenDataset(docs, [0, 1, 0], [10, 11, 12], equal_length=True, keep="tail")[[0, 2]]
    assert tail["x"].tolist() == [[6, 7], [9, 10]] and tail["lengths"].tolist() == [2, 2]


# --- splits and labels ----------------------------------------------------------------------------------------------
def test_stratified_split_and_label_order():
    y = np.array([0] * 10 + [1] * 20)
    rest, val, test = stratified_split(y, [0.1, 0.2], seed=0)
    assert (len(rest), len(val), len(test)) == (21, 3, 6)
    assert np.bincount(y[val]).tolist() == [1, 2] and np.bincount(y[test]).tolist() == [2, 4]
    assert sorted(np.concatenate([rest, val, test]).tolist()) == list(range(30))
    assert label_order(["10", "9", "2"]) == ["2", "9", "10"] and label_order(["pos", "neg"]) == ["neg", "pos"]


# --- the data module ------------------------------------------------------------------------------------------------
def test_split_layout_empty_bad_utf8_and_long_documents_are_counted(tmp_path: Path):
    root = tmp_path / "imdb"
    write_folders(
        root / "train", {"pos": ["good fun", "good  <br />", "   ", b"good \xff\xfe film"], "neg": ["bad"] * 3}
    )
    write_folders(root / "test", {"pos": ["good good good good good"], "neg": ["bad"]})
    (root / "train" / "unsup").mkdir()
    (root / "train" / "unsup" / "0.txt").write_text("not a class")
    dm = module(root, tmp_path, max_length=3)
    dm.setup("fit")
    assert dm.label_names == ["neg", "pos"]
    assert len(dm.datasets["train"]) == 6 and dm.stats["train_empty"] == 1  # the whitespace-only review
    assert dm.stats["not_utf8"] == 1 and dm.stats["test_truncated"] == 1
    assert dm.datasets["test"].lengths.tolist() == [1, 3]
    assert dm.spec() == TextSpec(vocab_size=dm.tokenizer.vocab_size, pad_id=0, num_classes=2,
                                 label_names=["neg", "pos"])  # fmt: skip
    # a zero-length document never reaches pack_padded_sequence: every batch packs and encodes
    encoder = RecurrentEncoder(input_size=4, hidden_size=3, cell="gru")
    for batch in dm.train_dataloader():
        assert int(batch["lengths"].min()) >= 1
        encoder(torch.randn(*batch["x"].shape, 4), batch["lengths"])


def test_folder_layout_carves_val_and_test(tmp_path: Path):
    root = write_folders(tmp_path / "d", {"a": [f"x{i}" for i in range(10)], "b": [f"y{i}" for i in range(10)]})
    dm = module(root, tmp_path, val_fraction=0.2, test_fraction=0.3)
    dm.setup("fit")
    assert [len(dm.datasets[s]) for s in ("train", "val", "test")] == [10, 4, 6]
    assert np.bincount(dm.datasets["val"].labels.numpy()).tolist() == [2, 2]


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".jsonl"])
def test_table_files_with_integer_labels(tmp_path: Path, suffix: str):
    rows = [("fine film", 10), ("dull film", 2), ("fine", 10), ("dull", 2)]
    path = tmp_path / f"reviews{suffix}"
    if suffix == ".jsonl":
        path.write_text("".join(json.dumps({"review": t, "stars": s}) + "\n" for t, s in rows))
    else:
        sep = "\t" if suffix == ".tsv" else ","
        path.write_text(f"review{sep}stars\n" + "".join(f"{t}{sep}{s}\n" for t, s in rows))
    dm = module(path, tmp_path, text_column="review", label_column="stars")
    dm.setup("fit")
    assert dm.label_names == ["2", "10"]  # integers, in numeric order
    assert sorted(dm.datasets["train"].labels.tolist()) == [0, 0, 1, 1]


def test_missing_column_lists_the_columns_found(tmp_path: Path):
    path = tmp_path / "r.csv"
    path.write_text("review,stars\ngood,1\nbad,0\n")
    with pytest.raises(InputError, match=r"data.text_column='text'.*\['review', 'stars'\]"):
        module(path, tmp_path).setup("fit")
    with pytest.raises(InputError, match=r"data.label_column='label'.*\['review', 'stars'\]"):
        module(path, tmp_path, text_column="review").setup("fit")


def test_single_class_is_refused(tmp_path: Path):
    root = write_folders(tmp_path / "d", {"pos": ["good", "great"]})
    with pytest.raises(InputError, match=r"labels=\['pos'\].*at least 2 distinct classes"):
        module(root, tmp_path).setup("fit")


def test_empty_predict_file_is_refused(tmp_path: Path):
    (tmp_path / "empty.txt").write_text("\n  \n")
    with pytest.raises(InputError, match="data.predict_path=.*non-blank line"):
        TextDataModule(predict_path=str(tmp_path / "empty.txt")).setup("predict")
    with pytest.raises(InputError, match="data.predict_path=.*existing"):
        TextDataModule(predict_path=str(tmp_path / "missing.txt")).setup("predict")


def test_cache_is_reused_and_state_dict_predicts_alone(tmp_path: Path, monkeypatch):
    root = write_folders(tmp_path / "d", {"neg": ["bad film", "dull"], "pos": ["good film", "great"]})
    first = module(root, tmp_path)
    first.setup("fit")
    monkeypatch.setattr(TextTokenizer, "train", lambda *a, **k: pytest.fail("the cache was not used"))
    second = module(root, tmp_path)
    second.setup("fit")
    assert second.tokenizer.vocab() == first.tokenizer.vocab()
    state = first.state_dict()
    assert state["label_names"] == ["neg", "pos"] and isinstance(state["tokenizer"], str)
    (tmp_path / "p.txt").write_text("good film\n\nunseen words\n")
    dm = TextDataModule(root="/nowhere", predict_path=str(tmp_path / "p.txt"))
    dm.setup("predict")  # reads the file; nothing of root
    assert dm.spec() == TextSpec()  # every field empty: no tokenizer yet
    dm.load_state_dict(state)
    batch = next(iter(dm.predict_dataloader()))
    assert batch["id"].tolist() == [0, 2] and batch["y"].tolist() == [-1, -1]
    assert batch["x"][0].tolist() == first.tokenizer.encode(["good film"])[0].tolist()


def test_pretrained_vectors_cover_the_vocabulary(tmp_path: Path):
    glove = tmp_path / "vec.txt"
    glove.write_text("2 3\ngood 1 2 3\nzebra 9 9 9\nbad -1 -2 -3\n")
    vocab = {"<pad>": 0, "<unk>": 1, "good": 2, "bad": 3, "film": 4}
    table, found = load_vectors(str(glove), vocab)
    assert found == 2 and table.shape == (5, 3)
    assert table[2].tolist() == [1, 2, 3] and table[3].tolist() == [-1, -2, -3] and table[0].tolist() == [0, 0, 0]
