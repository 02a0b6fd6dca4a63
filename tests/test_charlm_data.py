"""The character corpus: exact splits, vocabulary, windows, shifted grids, TBPTT streams, and one test per bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from seqlit.data.chars import (
    CharSpec,
    CorpusDataModule,
    ShiftedGrid,
    split_by_fraction,
    stream_dataset,
    window_dataset,
)
from seqlit.errors import InputError
from seqlit.vocab import build_vocab, decode, encode

TEXT = "".join(chr(ord("a") + (i * 7) % 26) for i in range(1000))  # no character repeats within any 26 in a row


def write(tmp_path: Path, text: str | bytes, name: str = "corpus.txt") -> str:
    path = tmp_path / name
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return str(path)


# --- pure functions ---------------------------------------------------------------------------------------------------
def test_split_is_contiguous_by_fraction_in_train_val_test_order():
    assert split_by_fraction(1000, 0.1, 0.05) == {"train": (0, 850), "val": (850, 950), "test": (950, 1000)}
    assert split_by_fraction(1000, 0.1, 0.0) == {"train": (0, 900), "val": (900, 1000), "test": (1000, 1000)}
    assert split_by_fraction(7, 0.25, 0.0) == {"train": (0, 5), "val": (5, 7), "test": (7, 7)}  # 1.75 rounds to 2


def test_vocabulary_starts_with_the_unknown_symbol_and_unseen_characters_map_to_it():
    vocab = build_vocab("hello\nworld")
    assert vocab == ["", "\n", "d", "e", "h", "l", "o", "r", "w"]
    ids, unknown = encode("held, Zoé", vocab)
    assert ids.tolist() == [4, 3, 5, 2, 0, 0, 0, 6, 0] and ids.dtype == torch.int64
    assert unknown == [" ", ",", "Z", "é"]
    assert decode(ids, vocab) == "heldo"  # the unknown symbol reads as nothing
    assert encode("", vocab)[0].tolist() == []


def test_encode_handles_any_code_point_and_an_unsorted_vocabulary():
    vocab = ["", "ß", "a", "\U0001f600", "\t"]  # not in code-point order
    ids, unknown = encode("a\tß\U0001f600b", vocab)
    assert ids.tolist() == [2, 4, 1, 3, 0] and unknown == ["b"]


def test_windows_are_exact_strided_views():
    ids = torch.arange(10)
    ds = window_dataset(ids, seq_len=3, stride=3, start=100)
    assert ds.tensors["x"].tolist() == [[0, 1, 2], [3, 4, 5], [6, 7, 8]]
    assert ds.tensors["y"].tolist() == [[1, 2, 3], [4, 5, 6], [7, 8, 9]]
    assert ds.tensors["position"].tolist() == [100, 103, 106]
    every = window_dataset(ids, seq_len=4, stride=1)
    assert len(every) == 6 and every.tensors["x"][5].tolist() == [5, 6, 7, 8] and every.tensors["y"][5][-1] == 9
    assert every.tensors["x"].untyped_storage().data_ptr() == ids.untyped_storage().data_ptr()  # a view, no copy


def test_streams_are_laid_out_chunk_major_so_row_b_continues_row_b():
    ids = torch.arange(23)
    ds = stream_dataset(ids, seq_len=3, streams=3, start=50)  # L = 22 // 3 = 7 per stream, 2 chunks of 3
    x, y = ds.tensors["x"].tolist(), ds.tensors["y"].tolist()
    assert x == [[0, 1, 2], [7, 8, 9], [14, 15, 16], [3, 4, 5], [10, 11, 12], [17, 18, 19]]
    assert y == [[1, 2, 3], [8, 9, 10], [15, 16, 17], [4, 5, 6], [11, 12, 13], [18, 19, 20]]
    assert ds.tensors["position"].tolist() == [50, 57, 64, 53, 60, 67]
    assert ds.tensors["chunk"].tolist() == [0, 0, 0, 1, 1, 1]


def test_shifted_grid_offsets_each_epoch_keeps_the_count_and_every_window_fits():
    n, T = 20, 4
    assert list(ShiftedGrid(n, T, shuffle=False)) == [0, 4, 8, 12]
    grid = ShiftedGrid(n, T, shuffle=True, seed=3)
    orders = []
    for epoch in range(6):
        grid.set_epoch(epoch)
        starts = list(grid)
        offset = min(starts)
        assert len(grid) == 4 and sorted(starts) == [offset + 4 * k for k in range(4)] and 0 <= offset < T
        assert max(starts) + T + 1 <= n  # input T characters plus the one-later target
        orders.append(starts)
        assert list(grid) == starts  # the same epoch gives the same order (a resumed run sees the same windows)
    assert len({tuple(o) for o in orders}) > 1


# --- the data module --------------------------------------------------------------------------------------------------
def test_spec_is_empty_until_the_text_is_read(tmp_path):
    dm = CorpusDataModule(path=write(tmp_path, "ab\nba"), seq_len=2, batch_size=1, val_fraction=0.0)
    dm.setup("predict")  # generation reads no text: the vocabulary comes from the checkpoint
    assert dm.spec() == CharSpec(vocab_size=None, vocab=None)
    dm.setup("fit")
    assert dm.spec() == CharSpec(vocab_size=4, vocab=["", "\n", "a", "b"])


def test_window_batches_decode_to_the_text_at_their_position(tmp_path):
    dm = CorpusDataModule(path=write(tmp_path, TEXT), seq_len=10, batch_size=4, val_fraction=0.1, test_fraction=0.1)
    dm.setup("fit")
    assert dm.bounds == {"train": (0, 800), "val": (800, 900), "test": (900, 1000)}
    assert dm.spec() == CharSpec(vocab_size=27, vocab=["", *"abcdefghijklmnopqrstuvwxyz"])
    loader = dm.train_dataloader()
    assert len(loader) == 79 // 4 + 1  # 800 // 10 - 1 = 79 windows per epoch
    batch = next(iter(loader))
    for x, y, p in zip(batch["x"], batch["y"], batch["position"].tolist(), strict=True):
        assert decode(x, dm.vocab) == TEXT[p : p + 10] and decode(y, dm.vocab) == TEXT[p + 1 : p + 11]
        assert p + 11 <= 800  # training windows never reach into the validation span
    val = list(dm.val_dataloader())
    positions = torch.cat([b["position"] for b in val]).tolist()
    assert positions == list(range(800, 890, 10))  # non-overlapping, in order, from the span's start
    assert decode(val[0]["x"][0], dm.vocab) == TEXT[800:810]


def test_tbptt_batches_are_parallel_streams_of_consecutive_chunks(tmp_path):
    dm = CorpusDataModule(path=write(tmp_path, TEXT), seq_len=10, batch_size=4, mode="tbptt", val_fraction=0.1)
    dm.setup("fit")
    batches = list(dm.train_dataloader())
    stream_len = (900 - 1) // 4  # 224 characters per stream, 22 chunks of 10
    assert len(batches) == 22
    for k, batch in enumerate(batches):
        assert batch["chunk"].tolist() == [k] * 4
        assert batch["position"].tolist() == [b * stream_len + k * 10 for b in range(4)]
        for x, p in zip(batch["x"], batch["position"].tolist(), strict=True):
            assert decode(x, dm.vocab) == TEXT[p : p + 10]
    for prev, nxt in zip(batches[:-1], batches[1:], strict=True):  # row b's next chunk starts where its target ended
        assert torch.equal(nxt["x"][:, 0], prev["y"][:, -1])
    val = list(dm.val_dataloader())  # evaluation is stateful too: (100 - 1) // 10 = 9 chunks fit, so 4 streams
    assert [b["chunk"].tolist() for b in val] == [[0] * 4, [1] * 4]
    assert val[0]["position"].tolist() == [900, 924, 948, 972]


def test_vocabulary_comes_from_the_training_span_only(tmp_path):
    text = "ab" * 200 + "abZ" * 30  # Z appears only in the last 90 characters
    dm = CorpusDataModule(path=write(tmp_path, text), seq_len=8, batch_size=2, val_fraction=0.18)
    dm.setup("fit")
    assert dm.vocab == ["", "a", "b"] and dm.unknown["val"] == ["Z"]
    val_ids = torch.cat([b["x"].reshape(-1) for b in dm.val_dataloader()])
    assert (val_ids == 0).sum() > 0


def test_predict_reads_no_text_and_yields_one_job_per_sample(tmp_path):
    dm = CorpusDataModule(path=str(tmp_path / "gone.txt"), prompt="ROMEO:", generate_length=7, top_k=3, num_samples=2)
    dm.setup("predict")  # the text file is not needed, or read, to generate from a checkpoint
    jobs = list(dm.predict_dataloader())
    assert jobs == [
        {"prompt": "ROMEO:", "generate_length": 7, "temperature": 0.8, "top_k": 3, "seed": 0},
        {"prompt": "ROMEO:", "generate_length": 7, "temperature": 0.8, "top_k": 3, "seed": 1},
    ]


# --- bad input: one clear InputError each -----------------------------------------------------------------------------
def setup_error(path: str, **kwargs) -> str:
    with pytest.raises(InputError) as err:
        CorpusDataModule(path=path, **kwargs).setup("fit")
    return str(err.value)


def test_empty_file(tmp_path):
    assert "a non-empty text file (this one is empty)" in setup_error(write(tmp_path, ""))


def test_binary_file(tmp_path):
    assert "is a binary file (NUL byte at offset 3)" in setup_error(write(tmp_path, b"PK\x03\x00\x14\x00"))


def test_file_that_is_not_utf8(tmp_path):
    assert "is not UTF-8 text (byte 0xe9 at offset 3)" in setup_error(write(tmp_path, "caf\xe9".encode("latin-1")))


def test_missing_file_and_no_path(tmp_path):
    assert "an existing UTF-8 text file" in setup_error(str(tmp_path / "nope.txt"))
    assert "data.path=None" in setup_error(None)


def test_file_shorter_than_one_window(tmp_path):
    msg = setup_error(write(tmp_path, "x" * 50), seq_len=32)
    assert "data.seq_len=32 is too long" in msg and "train span has 45 characters" in msg and "= 64" in msg


def test_file_too_short_for_the_tbptt_streams(tmp_path):
    msg = setup_error(write(tmp_path, "x" * 400), seq_len=10, batch_size=64, mode="tbptt")
    assert "train span has 360 characters" in msg and "batch_size × seq_len + 1" in msg and "= 641" in msg


def test_validation_span_shorter_than_one_window(tmp_path):
    assert "its val span has 5 characters" in setup_error(write(tmp_path, "x" * 100), seq_len=8, val_fraction=0.05)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"seq_len": 0}, "data.seq_len=0"),
        ({"batch_size": 0}, "data.batch_size=0"),
        ({"mode": "bptt"}, "data.mode='bptt'"),
        ({"val_fraction": 1.0}, "data.val_fraction=1.0"),
        ({"val_fraction": 0.6, "test_fraction": 0.4}, "data.val_fraction + data.test_fraction=1.0"),
        ({"prompt": ""}, "data.prompt=''"),
        ({"generate_length": -1}, "data.generate_length=-1"),
        ({"temperature": -0.5}, "data.temperature=-0.5"),
        ({"temperature": float("nan")}, "data.temperature=nan"),
        ({"top_k": 0}, "data.top_k=0"),
        ({"num_samples": 0}, "data.num_samples=0"),
    ],
)
def test_bad_options_name_the_parameter(kwargs, needle):
    with pytest.raises(InputError, match="is not allowed") as err:
        CorpusDataModule(path="x.txt", **kwargs)
    assert needle in str(err.value)
