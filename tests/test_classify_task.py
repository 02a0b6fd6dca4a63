"""The Classifier task, its network and pooling: exact pooling values, padding invariance, the token-id path, losses,
checkpoints, bad input, and the real ``seqlit`` command end to end (fit, test, predict, CSV)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml

from seqlit.data.classification.synthetic import SyntheticDataModule
from seqlit.data.loading import TensorDictDataset, tensor_loader
from seqlit.errors import InputError
from seqlit.models import ClassifierNet, Pooling, RecurrentEncoder
from seqlit.tasks import Classifier
from tests.conftest import QUIET

QUICK = dict(logger=False, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)


def test_pooling_uses_only_the_real_steps():
    outputs = torch.tensor([[[1.0, -4.0], [3.0, -2.0], [0.0, 0.0]], [[-1.0, -1.0], [-3.0, -5.0], [2.0, 6.0]]])
    last = torch.tensor([[9.0, 9.0], [8.0, 8.0]])
    lengths = torch.tensor([2, 3])
    assert torch.equal(Pooling(mode="last")(outputs, last, lengths), last)
    assert torch.allclose(Pooling(mode="mean")(outputs, last, lengths), torch.tensor([[2.0, -3.0], [-2 / 3, 0.0]]))
    assert torch.equal(Pooling(mode="max")(outputs, last, lengths), torch.tensor([[3.0, -2.0], [2.0, 6.0]]))  # not 0
    both = Pooling(mode="maxmean")(outputs, last, lengths)
    assert both.shape == (2, 4) and torch.equal(both[:, :2], torch.tensor([[3.0, -2.0], [2.0, 6.0]]))
    assert torch.allclose(Pooling(mode="mean")(outputs, last), outputs.mean(1))  # no lengths: every step is real


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "scratch"])
@pytest.mark.parametrize("pooling", ["last", "maxmean"])
def test_prediction_does_not_depend_on_padding(cell, pooling):
    torch.manual_seed(0)
    net = ClassifierNet(
        num_outputs=3, input_size=2, hidden_size=5, cell=cell, pooling=pooling, bidirectional=True
    ).eval()
    x = torch.randn(1, 4, 2)
    padded = torch.cat([x, torch.randn(1, 3, 2)], dim=1)  # garbage past the real steps must be ignored
    assert torch.allclose(net(x), net(padded, torch.tensor([4])), atol=1e-5)


def test_token_ids_through_a_tiny_vocabulary():
    torch.manual_seed(0)
    net = ClassifierNet(
        num_outputs=2, vocab_size=7, pad_id=0, embedding_dim=3, hidden_size=4, cell="gru", pooling="mean"
    ).eval()
    ids = torch.tensor([[5, 2, 6, 0, 0], [1, 3, 4, 2, 6]])
    logits = net(ids, torch.tensor([3, 5]))
    assert logits.shape == (2, 2)
    assert torch.allclose(logits[:1], net(ids[:1, :3], torch.tensor([3])), atol=1e-6)
    assert torch.equal(net.embedding.weight[0], torch.zeros(3))  # the padding token is a zero vector
    with pytest.raises(InputError, match="token ids"):
        net(torch.randn(2, 5, 3))
    with pytest.raises(InputError, match="exactly one"):
        ClassifierNet(num_outputs=2, input_size=3, vocab_size=7)


def test_the_pair_bag_sums_the_weights_of_the_real_word_pairs():
    torch.manual_seed(0)
    net = ClassifierNet(num_outputs=2, vocab_size=7, pad_id=0, embedding_dim=3, hidden_size=4, pooling="mean",
                        bigram_buckets=11).eval()  # fmt: skip
    assert torch.equal(net.pairs.weight.weight, torch.zeros(11, 2))  # zero at first: the network alone
    plain = net(torch.tensor([[5, 2, 6]]))
    torch.nn.init.normal_(net.pairs.weight.weight)
    ids, lengths = torch.tensor([[5, 2, 6, 0, 0], [1, 3, 4, 2, 6]]), torch.tensor([3, 5])
    w = net.pairs.weight.weight
    by_hand = w[(5 * 7 + 2) % 11] + w[(2 * 7 + 6) % 11]  # the first review's two pairs; none reaching the padding
    assert torch.allclose(net(ids, lengths)[0], plain[0] + by_hand, atol=1e-6)
    assert torch.allclose(net(ids, lengths)[:1], net(ids[:1, :3]), atol=1e-6)  # padding changes nothing
    with pytest.raises(InputError, match="bigram_buckets"):
        ClassifierNet(num_outputs=2, input_size=3, bigram_buckets=8)


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_an_ensemble_predicts_its_members_mean_probability_and_trains_each_on_its_own_loss(loss, tmp_path):
    from seqlit.models.ensemble import ClassifierEnsemble

    L.seed_everything(0)
    task = Classifier(hidden_size=6, members=3, loss=loss, vocab_size=9, pad_id=0, num_classes=2, embedding_dim=5,
                      lr=1e-2)  # fmt: skip
    assert isinstance(task.net, ClassifierEnsemble) and len(task.net.members) == 3
    x, lengths = torch.randint(1, 9, (4, 6)), torch.tensor([6, 2, 5, 1])
    task.eval()
    with torch.no_grad():
        each = torch.stack([task.probabilities(m(x, lengths)) for m in task.net.members])  # (M, B, 2)
        assert torch.allclose(task.probabilities(task(x, lengths)), each.mean(0), atol=1e-6)
        assert not torch.allclose(each[0], each[1])  # each member from its own initialisation
    before = [m.head.weight.clone() for m in task.net.members]
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, logger=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    trainer.fit(task, TokenData())
    assert all(not torch.equal(b, m.head.weight) for b, m in zip(before, task.net.members, strict=True))
    trainer.save_checkpoint(tmp_path / "e.ckpt")
    again = Classifier.load_from_checkpoint(tmp_path / "e.ckpt").eval()
    with torch.no_grad():
        assert torch.equal(again(x, lengths), task.eval()(x, lengths))
    with pytest.raises(InputError, match="model.members"):
        Classifier(members=0, vocab_size=9, pad_id=0, num_classes=2)


class TokenData(L.LightningDataModule):
    """A fake text data module: token ids over a 9-token vocabulary with pretrained vectors."""

    def __init__(self, labels: torch.Tensor | None = None, width: int = 5) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        n = 40
        self.vectors = torch.randn(9, width, generator=g)
        y = torch.randint(0, 2, (n,), generator=g) if labels is None else labels
        self.ds = TensorDictDataset(
            x=torch.randint(1, 9, (n, 6), generator=g), lengths=torch.randint(1, 7, (n,), generator=g), y=y,
            id=torch.arange(100, 100 + n),
        )  # fmt: skip

    def spec(self) -> dict:
        return {"num_classes": 2, "label_names": ["neg", "pos"], "vocab_size": 9, "pad_id": 0,
                "embedding_vectors": self.vectors}  # fmt: skip

    def train_dataloader(self):
        return tensor_loader(self.ds, 10, True)

    def predict_dataloader(self):
        return tensor_loader(self.ds, 16, False)


def test_embedding_task_takes_sizes_and_vectors_from_the_data(tmp_path):
    dm = TokenData()
    model = Classifier(cell="lstm", hidden_size=4, loss="bce", freeze_embedding=True)
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUICK)
    trainer.fit(model, dm)
    hp = model.hparams
    assert (hp.num_classes, hp.vocab_size, hp.pad_id, hp.embedding_dim) == (2, 9, 0, 5)
    assert hp.label_names == ["neg", "pos"]
    expected = dm.vectors.clone()
    expected[0] = 0
    assert torch.equal(model.net.embedding.weight, expected)  # frozen: still the pretrained vectors
    rows = trainer.predict(model, dm)
    assert list(rows[0]) == ["id", "label", "probability", "prob_neg", "prob_pos"]
    assert rows[0]["id"].tolist() == list(range(100, 116))
    probs = torch.stack([rows[0]["prob_neg"], rows[0]["prob_pos"]], 1)
    assert torch.allclose(probs.sum(1), torch.ones(16))
    assert rows[0]["label"] == [["neg", "pos"][i] for i in probs.argmax(1).tolist()]
    assert torch.equal(rows[0]["probability"], probs.max(1).values)
    # the checkpoint alone rebuilds the same network, loadable with weights_only=True
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    ckpt = torch.load(tmp_path / "m.ckpt", weights_only=True)
    again = Classifier.load_from_checkpoint(tmp_path / "m.ckpt")
    assert ckpt["hyper_parameters"]["label_names"] == ["neg", "pos"]
    ids, lengths = dm.ds.tensors["x"][:4], dm.ds.tensors["lengths"][:4]
    assert torch.allclose(again.eval()(ids, lengths), model.eval()(ids, lengths))


def test_embedding_dim_must_match_the_pretrained_vectors(tmp_path):
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUICK)
    with pytest.raises(InputError, match="model.embedding_dim=8 is not allowed: 5"):
        trainer.fit(Classifier(hidden_size=4, embedding_dim=8), TokenData())


def test_labels_outside_the_classes_are_one_clear_error(tmp_path):
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUICK)
    labels = torch.arange(40) % 3  # a label 2 for a 2-class model
    with pytest.raises(InputError, match=r"label=2 is not allowed: class ids must be in \[0, 2\)"):
        trainer.fit(Classifier(hidden_size=4), TokenData(labels))


def test_bce_needs_two_classes_and_agrees_with_softmax_shapes():
    with pytest.raises(InputError, match="model.loss='bce'"):
        Classifier(loss="bce", num_classes=3, input_size=2)
    task = Classifier(loss="bce", num_classes=2, input_size=2, hidden_size=3)
    logits = task(torch.randn(4, 5, 2))
    assert logits.shape == (4, 1)
    probs = task.probabilities(logits)
    assert torch.allclose(probs[:, 1], torch.sigmoid(logits[:, 0])) and torch.allclose(probs.sum(1), torch.ones(4))
    with pytest.raises(InputError, match="label_names"):
        Classifier(num_classes=3, input_size=2, label_names=["a", "a", "b"])


def test_label_smoothing_by_hand_and_the_same_for_bce_and_ce():
    y = torch.tensor([1, 0])
    ce = Classifier(loss="ce", num_classes=2, input_size=2, label_smoothing=0.2)
    logits = torch.tensor([[0.0, 2.0], [1.0, -1.0]])
    # targets 0.9 on the true class and 0.1 on the other: -(0.9 log p_true + 0.1 log p_other)
    logp = torch.log_softmax(logits, 1)
    expected = -(0.9 * logp[[0, 1], [1, 0]] + 0.1 * logp[[0, 1], [0, 1]]).mean()
    assert ce.loss_fn(logits, y).item() == pytest.approx(expected.item())
    # one BCE logit equal to the difference of the two CE logits gives the same smoothed loss
    bce = Classifier(loss="bce", num_classes=2, input_size=2, label_smoothing=0.2)
    assert bce.loss_fn((logits[:, 1] - logits[:, 0])[:, None], y).item() == pytest.approx(expected.item())
    with pytest.raises(InputError, match="model.label_smoothing"):
        Classifier(num_classes=2, input_size=2, label_smoothing=1.0)


# --- the real command -------------------------------------------------------------------------------------------------
def _tiny_config(path: Path) -> Path:
    config = yaml.safe_load((Path(__file__).parents[1] / "configs" / "synth_gru.yaml").read_text())
    config["experiment"] = "tiny"
    config["trainer"].update(max_epochs=2, log_every_n_steps=1)
    config["model"]["init_args"].update(hidden_size=8)
    config["data"]["init_args"].update(num_classes=3, seq_len=6, num_features=2, signal_length=2, min_length=3,
                                       crop_min_length=3, train_size=60, val_size=20, test_size=30,
                                       batch_size=20)  # fmt: skip
    out = path / "tiny.yaml"
    out.write_text(yaml.safe_dump(config))
    return out


def test_cli_fit_test_predict_writes_the_csv(seqlit_cli):
    config = _tiny_config(seqlit_cli.cwd)
    fit = seqlit_cli(["fit", "--config", str(config), *QUIET])
    assert "test/bayes_acc" in fit.stdout and "test/acc" in fit.stdout and "test/f1" in fit.stdout
    run = seqlit_cli.cwd / "lightning_logs" / "tiny" / "version_0"
    assert (run / "confusion_matrix_test.png").stat().st_size > 1000
    events = b"".join(p.read_bytes() for p in run.glob("events.out.tfevents.*"))
    assert b"test/confusion_matrix" in events and b"val/acc" in events and b"val/f1" in events
    seqlit_cli(["predict", "--ckpt_path", "best", "--experiment", "tiny", *QUIET])
    with (seqlit_cli.cwd / "lightning_logs" / "tiny" / "version_1" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 30 and [r["id"] for r in rows] == [str(i) for i in range(30)]
    assert list(rows[0]) == ["id", "label", "probability", "prob_0", "prob_1", "prob_2"]
    for r in rows:
        probs = [float(r[f"prob_{k}"]) for k in range(3)]
        assert abs(sum(probs) - 1) < 1e-4
        assert r["label"] == str(max(range(3), key=probs.__getitem__))
        assert float(r["probability"]) == max(probs)


def test_cli_bad_data_is_one_line_and_leaves_nothing(seqlit_cli):
    # the other bad inputs are tested in-process (tests/test_classify_data.py); this checks the CLI's handling once
    config = _tiny_config(seqlit_cli.cwd)
    proc = seqlit_cli(["fit", "--config", str(config), *QUIET, "--data.num_features", "0"], check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert "num_features=0 is not allowed" in lines[-1] and lines[-1].startswith("seqlit: error:")
    assert not list((seqlit_cli.cwd / "lightning_logs").rglob("version_*"))


# --- chrono initialisation of the gate biases -------------------------------------------------------------------------
@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_chrono_init_sets_the_gate_biases_and_leaves_the_rest(cell):
    D, t_max = 6, 50
    torch.manual_seed(0)
    default = RecurrentEncoder(input_size=3, hidden_size=D, cell=cell, num_layers=2, bidirectional=True)
    torch.manual_seed(0)
    chrono = RecurrentEncoder(
        input_size=3, hidden_size=D, cell=cell, num_layers=2, bidirectional=True, gate_init="chrono", chrono_t_max=t_max
    )
    keep_chunk = slice(D, 2 * D)  # lstm (i, f, g, o): f; gru (r, z, n): z — the gate that keeps the old state
    for name, value in chrono.rnn.named_parameters():
        before = dict(default.rnn.named_parameters())[name]
        if name.startswith("weight"):
            assert torch.equal(value, before)  # weights untouched
            continue
        if name.startswith("bias_hh"):
            assert torch.equal(value[: 2 * D], torch.zeros(2 * D))  # the ih side holds the whole gate bias
            assert torch.equal(value[2 * D :], before[2 * D :])
            continue
        keep = value[keep_chunk]
        assert keep.min() >= 0 and keep.max() <= math.log(t_max - 1) and keep.std() > 0.3  # log U[1, T_max - 1]
        if cell == "lstm":
            assert torch.equal(value[:D], -keep)  # input gate = -forget gate
            assert torch.equal(value[2 * D :], before[2 * D :])  # g and o as torch left them
        else:
            assert torch.equal(value[:D], before[:D]) and torch.equal(value[2 * D :], before[2 * D :])  # r, n


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "scratch"])
def test_default_gate_init_is_torchs_and_chrono_leaves_ungated_cells_alone(cell):
    torch.manual_seed(1)
    plain = RecurrentEncoder(input_size=3, hidden_size=5, cell=cell).state_dict()
    torch.manual_seed(1)
    explicit = RecurrentEncoder(input_size=3, hidden_size=5, cell=cell, gate_init="default").state_dict()
    assert all(torch.equal(plain[k], explicit[k]) for k in plain)
    if cell in ("rnn", "lstm", "gru"):
        torch.manual_seed(1)
        reference = {"rnn": torch.nn.RNN, "lstm": torch.nn.LSTM, "gru": torch.nn.GRU}[cell](3, 5, batch_first=True)
        assert all(torch.equal(plain[f"rnn.{k}"], v) for k, v in reference.state_dict().items())
    torch.manual_seed(1)
    chrono = RecurrentEncoder(input_size=3, hidden_size=5, cell=cell, gate_init="chrono", chrono_t_max=20).state_dict()
    assert all(torch.equal(plain[k], chrono[k]) for k in plain) == (cell in ("rnn", "scratch"))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(gate_init="chrono"), "chrono_t_max=None is not allowed"),
        (dict(gate_init="chrono", chrono_t_max=1), "chrono_t_max=1 is not allowed"),
        (dict(gate_init="warm"), "gate_init='warm' is not allowed"),
    ],
)
def test_bad_gate_init_is_one_clear_error(kwargs, message):
    with pytest.raises(InputError, match=message):
        RecurrentEncoder(input_size=3, hidden_size=5, cell="lstm", **kwargs)


def test_chrono_takes_its_horizon_from_the_data_and_the_checkpoint_keeps_it(tmp_path):
    dm = SyntheticDataModule(num_classes=3, seq_len=9, num_features=2, signal_length=2, train_size=30, val_size=0,
                             test_size=10, batch_size=10, crop_min_length=3)  # fmt: skip
    model = Classifier(cell="lstm", hidden_size=4, gate_init="chrono")
    trainer = L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUICK)
    trainer.fit(model, dm)
    assert model.hparams.chrono_t_max == 9
    trainer.save_checkpoint(tmp_path / "m.ckpt")
    again = Classifier.load_from_checkpoint(tmp_path / "m.ckpt")
    assert again.hparams.chrono_t_max == 9
    x = dm.datasets["test"].tensors["x"]
    assert torch.allclose(again.eval()(x), model.eval()(x))
    with pytest.raises(InputError, match="model.chrono_t_max is empty"):  # token data cannot tell its length
        L.Trainer(max_epochs=1, default_root_dir=tmp_path, **QUICK).fit(Classifier(gate_init="chrono"), TokenData())
