"""Exact tests of the synthetic classification data: shapes, balance, determinism, the Bayes accuracy, bad inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from seqlit.data.classification.base import ClassifySpec
from seqlit.data.classification.npz import NpzDataModule
from seqlit.data.classification.synthetic import SyntheticDataModule, bayes_accuracy
from seqlit.errors import InputError


def make(**kwargs) -> SyntheticDataModule:
    defaults = dict(mode="patterns", num_classes=3, seq_len=6, num_features=2, signal_length=2, snr=3.0,
                    train_size=30, val_size=9, test_size=12, batch_size=10)  # fmt: skip
    dm = SyntheticDataModule(**{**defaults, **kwargs})
    dm.setup("fit")
    return dm


def test_random_mode_is_the_tutorials_data():
    tutorial = dict(num_classes=10, seq_len=28, num_features=28, batch_size=100)
    dm = make(mode="random", train_size=200, val_size=0, test_size=50, **tutorial)
    train = dm.datasets["train"].tensors
    assert train["x"].shape == (200, 28, 28) and train["x"].dtype == torch.float32
    assert train["y"].shape == (200,) and train["y"].dtype == torch.int64
    assert "lengths" not in train  # equal lengths: the encoder runs dense
    assert "val" not in dm.datasets and dm.val_dataloader() == []
    assert abs(float(train["x"].mean())) < 0.02 and abs(float(train["x"].std()) - 1) < 0.02  # standard normal
    assert dm.spec() == ClassifySpec(num_classes=10, label_names=[str(k) for k in range(10)], input_size=28,
                                     seq_len=28, bayes_accuracy=0.1)  # fmt: skip
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (100, 28, 28) and set(batch) == {"x", "y", "id"}


def test_patterns_labels_are_balanced_and_ids_count_up():
    dm = make(num_classes=3, train_size=31)
    y = dm.datasets["train"].tensors["y"]
    assert torch.bincount(y, minlength=3).tolist() == [11, 10, 10]
    assert dm.datasets["test"].tensors["id"].tolist() == list(range(12))
    assert dm.datasets["predict"] is dm.datasets["test"]


def test_same_seed_same_data_other_seed_other_data():
    a, b, c = make(seed=5), make(seed=5), make(seed=6)
    for split in ("train", "val", "test"):
        for key in ("x", "y"):
            assert torch.equal(a.datasets[split].tensors[key], b.datasets[split].tensors[key])
    assert not torch.equal(a.datasets["train"].tensors["x"], c.datasets["train"].tensors["x"])
    assert not torch.equal(a.datasets["train"].tensors["x"][:9], a.datasets["val"].tensors["x"])  # own streams


def test_patterns_are_orthogonal_with_norm_snr_and_planted_where_asked():
    dm = make(num_classes=4, seq_len=10, num_features=3, signal_length=2, signal_start=5, snr=2.5)
    flat = dm.patterns.reshape(4, -1).double()
    assert torch.allclose(flat @ flat.T, 2.5**2 * torch.eye(4, dtype=torch.float64), atol=1e-5)
    # with the noise removed (same stream, snr 0), the difference is exactly the class pattern at steps 5..6
    quiet = make(num_classes=4, seq_len=10, num_features=3, signal_length=2, signal_start=5, snr=0.0)
    t = dm.datasets["train"].tensors
    diff = t["x"] - quiet.datasets["train"].tensors["x"]
    assert torch.allclose(diff[:, 5:7], dm.patterns[t["y"]], atol=1e-6)
    assert diff[:, :5].abs().max() == 0 and diff[:, 7:].abs().max() == 0


def test_bayes_accuracy_closed_form_cases():
    for snr in (0.5, 1.0, 2.0, 3.0):  # two orthogonal patterns a distance snr·√2 apart: Φ(snr / √2)
        assert bayes_accuracy(2, snr) == pytest.approx(0.5 * (1 + math.erf(snr / 2)), abs=1e-9)
    for k in (2, 3, 10):
        assert bayes_accuracy(k, 0.0) == pytest.approx(1 / k, abs=1e-9)  # no signal: chance
    assert bayes_accuracy(10, 3.0) == pytest.approx(0.90249, abs=1e-5)
    assert bayes_accuracy(10, 2.0) < bayes_accuracy(10, 3.0) < bayes_accuracy(10, 4.0) < 1


def test_bayes_rule_reaches_the_bayes_accuracy_on_sampled_data():
    # 20000 sequences: the matched filter's accuracy must sit within 4 standard errors of the integral
    dm = make(num_classes=5, signal_length=3, snr=2.0, train_size=5, val_size=0, test_size=20000)
    t = dm.datasets["test"].tensors
    acc = float((dm.bayes_predict(t["x"]) == t["y"]).float().mean())
    expected = dm.spec().bayes_accuracy
    assert expected == pytest.approx(bayes_accuracy(5, 2.0))
    assert abs(acc - expected) < 4 * math.sqrt(expected * (1 - expected) / 20000)


def test_variable_lengths_pad_with_zeros_and_keep_the_pattern():
    dm = make(seq_len=12, signal_start=1, min_length=3, train_size=300)
    t = dm.datasets["train"].tensors
    lengths = t["lengths"]
    assert lengths.min() >= 3 and lengths.max() <= 12 and len(set(lengths.tolist())) > 5
    mask = torch.arange(12).unsqueeze(0) < lengths.unsqueeze(1)
    assert t["x"][~mask].abs().max() == 0 and (t["x"][mask] != 0).all()


def test_resample_draws_fresh_reproducible_training_data():
    dm = make(resample=True, train_size=30, batch_size=10)
    loader = dm.train_dataloader()
    assert len(loader) == 3

    def epoch(loader, e: int) -> torch.Tensor:
        loader.sampler.set_epoch(e)  # what Lightning does at the start of every epoch
        batches = list(loader)
        ids = torch.cat([b["id"] for b in batches])
        return torch.cat([b["x"] for b in batches])[ids.argsort()]  # in id order: the shuffle does not matter

    first, second = epoch(loader, 0), epoch(loader, 1)
    assert first.shape == (30, 6, 2) and not torch.equal(first, second)
    fixed = dm.datasets["train"].tensors
    assert torch.equal(first, fixed["x"][fixed["id"].argsort()])  # epoch 0 is the fixed training set
    again = make(resample=True, train_size=30, batch_size=10).train_dataloader()
    assert torch.equal(epoch(again, 1), second)  # epoch 1 depends on the seed and the epoch only


def test_file_mode_splits_the_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(40, 5, 3)).astype(np.float32)
    y = np.arange(40) % 4
    lengths = 1 + np.arange(40) % 5
    np.savez(tmp_path / "d.npz", x=x, y=y, lengths=lengths, label_names=np.array(["a", "b", "c", "d"]))
    dm = SyntheticDataModule(mode="file", path=str(tmp_path / "d.npz"), val_size=8, test_size=10)
    dm.setup("fit")
    assert dm.spec() == ClassifySpec(num_classes=4, label_names=["a", "b", "c", "d"], input_size=3, seq_len=5)
    sizes = {s: len(dm.datasets[s]) for s in ("train", "val", "test")}
    assert sizes == {"train": 22, "val": 8, "test": 10}
    ids = torch.cat([dm.datasets[s].tensors["id"] for s in ("train", "val", "test")])
    assert sorted(ids.tolist()) == list(range(40))
    test = dm.datasets["test"].tensors
    assert torch.equal(test["x"], torch.from_numpy(x)[test["id"]])
    assert torch.equal(test["lengths"], torch.from_numpy(lengths)[test["id"]])


def test_npz_module_reads_the_file_as_file_mode_does(tmp_path):
    x = np.random.default_rng(1).normal(size=(30, 6, 2)).astype(np.float32)
    np.savez(tmp_path / "d.npz", x=x, y=np.arange(30) % 3)
    npz = NpzDataModule(path=str(tmp_path / "d.npz"), val_size=5, test_size=7, seed=3, batch_size=4)
    file_mode = SyntheticDataModule(mode="file", path=str(tmp_path / "d.npz"), val_size=5, test_size=7, seed=3)
    npz.setup("fit")
    file_mode.setup("fit")
    assert npz.spec() == ClassifySpec(num_classes=3, label_names=["0", "1", "2"], input_size=2, seq_len=6)
    assert npz.spec() == file_mode.spec()
    # the count read from the file is what the run logs, so it agrees with the model's num_classes
    assert npz.hparams_initial["num_classes"] == 3 and npz.hparams_initial["path"] == str(tmp_path / "d.npz")
    for split in ("train", "val", "test"):
        assert torch.equal(npz.datasets[split].tensors["id"], file_mode.datasets[split].tensors["id"])
    assert len(npz.datasets["train"]) == 18 and npz.datasets["train"].tensors["lengths"].tolist() == [6] * 18
    batch = next(iter(npz.train_dataloader()))
    assert batch["x"].shape == (4, 6, 2) and set(batch) == {"x", "lengths", "y", "id"}


def test_patterns_spec_is_a_classify_record():
    dm = make(num_classes=3, snr=2.0)
    assert dm.spec() == ClassifySpec(num_classes=3, label_names=["0", "1", "2"], input_size=2, seq_len=6,
                                     bayes_accuracy=bayes_accuracy(3, 2.0))  # fmt: skip


# --- bad input: one clear InputError each ---------------------------------------------------------------------------
def _npz(tmp_path, x, y, lengths=None) -> str:
    arrays = {"x": x, "y": y} if lengths is None else {"x": x, "y": y, "lengths": lengths}
    np.savez(tmp_path / "bad.npz", **arrays)
    return str(tmp_path / "bad.npz")


@pytest.mark.parametrize(
    "kwargs, words",
    [
        (dict(seq_len=0), "seq_len=0"),
        (dict(min_length=0, mode="random"), "min_length=0"),
        (dict(num_features=0), "num_features=0"),
        (dict(num_classes=5, signal_length=2, num_features=2), "num_classes=5"),  # more classes than patterns fit
        (dict(num_classes=1), "num_classes=1"),
        (dict(train_size=2), "train_size=2"),
        (dict(signal_start=5, signal_length=2), "signal_start=5"),
        (dict(snr=-1.0), "snr=-1.0"),
        (dict(mode="nope"), "mode='nope'"),
    ],
)
def test_bad_generator_arguments(kwargs, words):
    with pytest.raises(InputError, match=words.replace("(", r"\(")):
        make(**kwargs)


def test_random_labels_leaving_a_class_without_training_examples():
    with pytest.raises(InputError, match="class .* has no training examples"):
        make(mode="random", num_classes=10, train_size=12)


def test_file_labels_outside_the_classes(tmp_path):
    path = _npz(tmp_path, np.zeros((20, 4, 2), np.float32), np.arange(20) % 3)
    with pytest.raises(InputError, match=r"label=2 is not allowed: labels must be in \[0, 2\)"):
        SyntheticDataModule(mode="file", path=path, num_classes=2, val_size=2, test_size=2).setup("fit")
    path = _npz(tmp_path, np.zeros((20, 4, 2), np.float32), np.arange(20) % 3 - 1)
    with pytest.raises(InputError, match="label=-1 is not allowed"):
        SyntheticDataModule(mode="file", path=path, val_size=2, test_size=2).setup("fit")


def test_file_more_classes_asked_for_than_the_data_has(tmp_path):
    path = _npz(tmp_path, np.zeros((20, 4, 2), np.float32), np.arange(20) % 3)
    with pytest.raises(InputError, match="num_classes=5 is not allowed: at most 3"):
        SyntheticDataModule(mode="file", path=path, num_classes=5, val_size=2, test_size=2).setup("fit")


def test_file_class_with_no_training_examples(tmp_path):
    y = np.zeros(20, np.int64)
    y[0] = 1
    path = _npz(tmp_path, np.zeros((20, 4, 2), np.float32), y)
    # one training sequence: the two classes cannot both be there
    dm = SyntheticDataModule(mode="file", path=path, val_size=0, test_size=19)
    with pytest.raises(InputError, match="class [01] has no training examples"):
        dm.setup("fit")


def test_file_zero_length_sequence_and_zero_features(tmp_path):
    path = _npz(tmp_path, np.zeros((20, 4, 2), np.float32), np.arange(20) % 2, lengths=np.r_[3, 0, np.full(18, 4)])
    with pytest.raises(InputError, match="sequence 1 has length 0"):
        SyntheticDataModule(mode="file", path=path, val_size=2, test_size=2).setup("fit")
    path = _npz(tmp_path, np.zeros((20, 4, 0), np.float32), np.arange(20) % 2)
    with pytest.raises(InputError, match="features per step=0"):
        SyntheticDataModule(mode="file", path=path, val_size=2, test_size=2).setup("fit")


def test_file_missing(tmp_path):
    with pytest.raises(InputError, match="path="):
        SyntheticDataModule(mode="file", path=str(tmp_path / "none.npz")).setup("fit")
    with pytest.raises(InputError, match="path=None"):
        SyntheticDataModule(mode="file")


def test_crop_cuts_training_batches_only_reproducibly_and_keeps_the_pattern():
    dm = make(seq_len=12, signal_start=1, signal_length=2, crop_min_length=4, train_size=200, batch_size=10)
    widths = [b["x"].shape[1] for b in dm.train_dataloader()]
    assert len(widths) == 20 and min(widths) >= 4 and max(widths) <= 12 and len(set(widths)) > 4
    again = make(seq_len=12, signal_start=1, signal_length=2, crop_min_length=4, train_size=200, batch_size=10)
    loader = again.train_dataloader()
    first = list(loader)
    assert [b["x"].shape[1] for b in first] == widths  # the same seed cuts the same lengths
    loader.sampler.set_epoch(1)  # as Lightning does at each epoch
    assert [b["x"].shape[1] for b in loader] != widths  # the next epoch cuts new ones
    stored = again.datasets["train"].tensors["x"]
    for b in first:  # a crop is the start of the stored sequence, pattern included
        assert torch.equal(b["x"], stored[b["id"], : b["x"].shape[1]])
    assert all(b["x"].shape[1] == 12 for b in dm.val_dataloader())  # never cropped
    assert all(b["x"].shape[1] == 12 for b in dm.test_dataloader())
    varied = make(seq_len=12, min_length=3, crop_min_length=4, train_size=100, batch_size=10)
    for b in varied.train_dataloader():
        assert int(b["lengths"].max()) <= b["x"].shape[1] and int(b["lengths"].min()) >= 3  # lengths follow the cut


@pytest.mark.parametrize("crop", [2, 13])
def test_a_crop_that_cuts_the_pattern_or_exceeds_the_length_is_refused(crop):
    with pytest.raises(InputError, match=f"crop_min_length={crop} is not allowed"):
        make(seq_len=12, signal_start=1, signal_length=2, crop_min_length=crop)
