"""Export to ONNX and the torch-free runtime: ONNX Runtime running the exported files equals the PyTorch task (packed
path, eager) for every cell, both directions, padded batches; the forecaster's scaling and margins sit inside the
graph; streaming equals one pass; generation carries its state; bad input is one line and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, QUIET, REPO

from seqlit import runtime
from seqlit.errors import InputError
from seqlit.run.export import export_task
from seqlit.tasks.classifier import Classifier
from seqlit.tasks.forecaster import Forecaster
from seqlit.tasks.language_model import LanguageModel

TOL = dict(rtol=1e-5, atol=1e-5)


def padded_ids(lengths: list[int], vocab: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(2, vocab, (len(lengths), max(lengths)), generator=g)
    for row, n in enumerate(lengths):
        x[row, n:] = 0  # the padding id
    return x, torch.tensor(lengths)


@pytest.mark.parametrize("cell", ["rnn", "lstm", "gru", "scratch"])
def test_classifier_onnx_equals_the_packed_pytorch_path(cell, tmp_path):
    torch.manual_seed(0)
    task = Classifier(cell=cell, hidden_size=8, num_layers=2, bidirectional=True, embedding_dim=6, vocab_size=50,
                      pad_id=0, num_classes=3, label_names=["a", "b", "c"]).eval()  # fmt: skip
    model = runtime.load(export_task(task, tmp_path / "out"))
    for lengths, seed in (([9, 3, 5, 1, 7], 1), ([4, 12], 2), ([6], 3)):  # other shapes than the traced ones
        x, lens = padded_ids(lengths, 50, seed)
        with torch.no_grad():
            expected = task.probabilities(task(x, lens)).numpy()
        np.testing.assert_allclose(model.classify(x.numpy(), lens.numpy()), expected, **TOL)
        # a document alone gives what it gives inside a padded batch
        alone = model.classify(x[:1, : lengths[0]].numpy(), lens[:1].numpy())
        np.testing.assert_allclose(alone, expected[:1], **TOL)


@pytest.mark.parametrize(
    "options",
    [{"bigram_buckets": 97}, {"members": 2, "cell": "gru", "num_classes": 3}, {"members": 2, "loss": "bce"}],
    ids=["word-pairs", "ensemble", "ensemble-bce"],
)
def test_word_pairs_and_ensembles_export_as_one_graph(options, tmp_path):
    torch.manual_seed(0)
    settings = dict(cell="lstm", hidden_size=6, bidirectional=True, pooling="maxmean", embedding_dim=4, vocab_size=50,
                    pad_id=0, num_classes=2) | options  # fmt: skip
    task = Classifier(**settings).eval()
    for net in getattr(task.net, "members", [task.net]):
        if net.pairs is not None:  # zero at first: give the word pairs weights to carry
            torch.nn.init.normal_(net.pairs.weight.weight)
    model = runtime.load(export_task(task, tmp_path / "out"))
    x, lens = padded_ids([9, 3, 5, 1], 50, 4)
    with torch.no_grad():
        expected = task.probabilities(task(x, lens)).numpy()
    np.testing.assert_allclose(model.classify(x.numpy(), lens.numpy()), expected, **TOL)


def test_features_classifier_with_maxmean_pooling(tmp_path):
    torch.manual_seed(0)
    task = Classifier(cell="lstm", hidden_size=5, bidirectional=True, pooling="maxmean", input_size=3, num_classes=2,
                      loss="bce").eval()  # fmt: skip
    model = runtime.load(export_task(task, tmp_path / "out"))
    x, lens = torch.randn(4, 10, 3), torch.tensor([10, 2, 6, 1])
    with torch.no_grad():
        expected = task.probabilities(task(x, lens)).numpy()
    x_padded = x * (torch.arange(10)[None, :, None] < lens[:, None, None])  # what a real padded batch holds
    np.testing.assert_allclose(model.classify(x_padded.numpy(), lens.numpy()), expected, **TOL)
    rows = model.predict([x[1, :2].numpy(), x[0].numpy()])
    assert [r["label"] for r in rows] == [str(int(p.argmax())) for p in expected[[1, 0]]]


def make_forecaster(cell: str, bidirectional: bool = False) -> Forecaster:
    torch.manual_seed(0)
    task = Forecaster(cell=cell, hidden_size=8, num_layers=2, bidirectional=bidirectional, loss="quantile",
                      quantiles=[0.1, 0.5, 0.9], calibrate=True, highway=0 if bidirectional else 4, input_size=2,
                      horizon=3, num_targets=1, target_transform="log1p").eval()  # fmt: skip
    with torch.no_grad():
        task.target_shift.fill_(0.5)
        task.target_scale.fill_(2.0)
        task.interval_margin.uniform_(0.0, 0.5)  # a calibrated, non-zero margin
    return task


SCALER = {"scaler": {"kind": "standard", "shift": [0.5, 1.0], "scale": [2.0, 3.0]}, "names": ["load", "temp"]}


def eager_forecast(task: Forecaster, window: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The PyTorch path in data units: transform and scale the inputs, run the task, unscale."""
    x = torch.from_numpy(window).clone()
    x[..., :1] = torch.log1p(x[..., :1])
    x = (x - torch.tensor(SCALER["scaler"]["shift"])) / torch.tensor(SCALER["scaler"]["scale"])
    with torch.no_grad():
        point, q = task.point_and_quantiles(task(x))
        return task.unscale(point).numpy(), task.unscale(q.movedim(-1, 0)).movedim(0, -1).numpy()


@pytest.mark.parametrize("cell,bidirectional", [("lstm", False), ("scratch", True)])
def test_forecaster_graph_holds_scaling_transform_and_margin(cell, bidirectional, tmp_path):
    task = make_forecaster(cell, bidirectional)
    model = runtime.load(export_task(task, tmp_path / "out", data_state=SCALER, data_hparams={"window": 6}))
    assert model.meta["quantiles"] == [0.1, 0.5, 0.9] and model.meta["target_names"] == ["load"]
    windows = np.abs(np.random.default_rng(0).normal(size=(5, 6, 2))).astype(np.float32)
    point, quantiles = eager_forecast(task, windows)
    got = model.forecast_batch(windows)
    np.testing.assert_allclose(got["point"], point, **TOL)
    np.testing.assert_allclose(got["quantiles"], quantiles, **TOL)
    one = model.forecast(np.concatenate([np.ones((9, 2), np.float32), windows[2]]))  # reads the last 6 rows
    np.testing.assert_allclose(one["point"], point[2], **TOL)
    assert (model.step_session is None) == bidirectional


def test_streaming_forecast_equals_one_pass_and_the_window_model(tmp_path):
    task = make_forecaster("gru")
    model = runtime.load(export_task(task, tmp_path / "out", data_state=SCALER, data_hparams={"window": 6}))
    history = np.abs(np.random.default_rng(1).normal(size=(40, 2))).astype(np.float32)
    stream = model.stream()
    for row in history:
        stepped = stream.update(row[None])  # one observation at a time, state carried
    once = model.stream().update(history)  # one pass over the same history
    chunks = model.stream()
    for part in np.array_split(history, 3):
        chunked = chunks.update(part)
    for out in (once, chunked):
        np.testing.assert_allclose(stepped["point"], out["point"], **TOL)
        np.testing.assert_allclose(stepped["quantiles"], out["quantiles"], **TOL)
    # from an empty history, a stream of exactly one window is the window model
    window_stream = model.stream().update(history[:6])
    np.testing.assert_allclose(window_stream["point"], eager_forecast(task, history[None, :6])[0][0], **TOL)


def test_many_series_stream_side_by_side_as_each_does_alone(tmp_path):
    model = runtime.load(export_task(make_forecaster("lstm"), tmp_path / "out", data_state=SCALER,
                                     data_hparams={"window": 6}))  # fmt: skip
    histories = np.abs(np.random.default_rng(2).normal(size=(3, 12, 2))).astype(np.float32)
    together = model.stream(num_series=3)
    for t in range(12):
        many = together.update(histories[:, t : t + 1])  # the next step of all three series in one call
    assert many["point"].shape == (3, 3, 1) and many["quantiles"].shape == (3, 3, 1, 3)
    for s, history in enumerate(histories):
        alone = model.stream().update(history)
        np.testing.assert_allclose(many["point"][s], alone["point"], **TOL)
        np.testing.assert_allclose(many["quantiles"][s], alone["quantiles"], **TOL)
    with pytest.raises(InputError, match=r"rows=.*\(num_series, N, C\) = \(3, N, 2\)"):
        together.update(histories[0])  # one series' rows where three are carried


@pytest.mark.parametrize("cell", ["lstm", "scratch"])
def test_language_model_carries_state_for_200_steps(cell, tmp_path):
    torch.manual_seed(0)
    vocab = ["", *"abcdefgh "]
    task = LanguageModel(cell=cell, hidden_size=8, num_layers=2, embedding_dim=4, vocab=vocab).eval()
    model = runtime.load(export_task(task, tmp_path / "out"))
    ids = torch.randint(1, len(vocab), (1, 200))
    with torch.no_grad():
        full, _ = task(ids)  # one pass over all 200 ids
    state, steps = model.zero_state(), []
    for t in range(200):  # one id at a time, the state going out and back in
        logits, state = model.lm_step(ids[:, t : t + 1].numpy(), state)
        steps.append(logits[:, 0])
    np.testing.assert_allclose(np.stack(steps, axis=1), full.numpy(), **TOL)
    assert model.generate("abc", 30, temperature=0) == task.generate("abc", 30, temperature=0)
    assert model.generate("abc", 30, temperature=1.0, top_k=3, seed=4) == model.generate("abc", 30, 1.0, 3, 4)


def test_the_runtime_imports_neither_torch_nor_lightning(tmp_path):
    task = Classifier(cell="gru", hidden_size=4, input_size=2, num_classes=2).eval()
    folder = export_task(task, tmp_path / "out")
    code = (
        "import sys; sys.modules['torch'] = None; sys.modules['lightning'] = None\n"
        "import numpy as np; from seqlit import runtime\n"
        f"m = runtime.load({str(folder)!r}); print(m.predict([np.ones((3, 2))])[0]['label'])\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60,
                          env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() in {"0", "1"}


def test_bad_output_folders_fail_in_one_line_and_leave_nothing(tmp_path, monkeypatch):
    task = Classifier(cell="rnn", hidden_size=4, input_size=2, num_classes=2).eval()
    (tmp_path / "taken").mkdir()
    with pytest.raises(InputError, match="already exists"):
        export_task(task, tmp_path / "taken")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(InputError, match="cannot be written"):
        export_task(task, tmp_path / "a_file" / "out")
    export_task(task, tmp_path / "taken", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "taken"]  # no temporary folder left behind
    assert sorted(p.name for p in (tmp_path / "taken").iterdir()) == ["model.onnx", "seqlit.json"]

    def broken(*args, **kwargs):
        raise RuntimeError("exporter failed half-way")

    monkeypatch.setattr("seqlit.run.onnx_graphs.ClassifierGraph", broken)
    with pytest.raises(RuntimeError):
        export_task(task, tmp_path / "half")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "taken"]  # the temporary folder went too
    if os.geteuid() != 0:  # root writes anywhere
        (tmp_path / "ro").mkdir(mode=0o555)
        with pytest.raises(InputError, match="cannot be written"):
            export_task(task, tmp_path / "ro" / "out")


def run_export(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "seqlit.run.export", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "PYTHONPATH": str(REPO)})  # fmt: skip


def test_export_command_refuses_bad_checkpoints_in_one_line(tmp_path, monkeypatch, capsys):
    from seqlit.run.export import main

    monkeypatch.chdir(tmp_path)
    (tmp_path / "junk.ckpt").write_text("not a checkpoint")
    for args, message in (
        (["--ckpt_path", "missing.ckpt", "--out", "o"], "does not exist"),
        (["--ckpt_path", "junk.ckpt", "--out", "o"], "not a readable checkpoint"),
        (["--ckpt_path", "best", "--out", "o"], "needs --experiment"),
        (["--ckpt_path", "best", "--experiment", "nothing", "--out", "o"], "found no checkpoint"),
    ):
        with pytest.raises(SystemExit) as exit_info:
            main(args)
        err = capsys.readouterr().err
        assert exit_info.value.code == 2 and message in err, err
        assert len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.ckpt"]


@pytest.mark.slow
def test_export_a_fitted_sine_forecaster_by_experiment_name(seqlit_cli):
    cwd: Path = seqlit_cli.cwd
    seqlit_cli(["fit", "--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--experiment", "sine_gru",
                "--data.length", "240", "--data.val_size", "40",
                "--data.test_size", "60", "--data.window", "8", "--data.scaler", "standard", "--model.hidden_size", "8",
                "--model.loss", "quantile", "--model.calibrate", "true", "--trainer.max_epochs", "1",
                "--test_after_fit", "false", *QUIET])  # fmt: skip
    proc = run_export(["--ckpt_path", "best", "--experiment", "sine_gru", "--out", "exported"], cwd)
    assert proc.returncode == 0, proc.stderr
    model = runtime.load(cwd / "exported")
    assert model.meta["window"] == 8 and model.meta["quantiles"] == [0.1, 0.5, 0.9]
    from seqlit.inference import load_task

    task = load_task(str(next((cwd / "lightning_logs" / "sine_gru").glob("version_0/checkpoints/epoch=*.ckpt"))))
    rows = np.sin(np.arange(30, dtype=np.float32) / 5)[:, None] * 10
    shift, scale = (np.array(model_state) for model_state in (task.target_shift, task.target_scale))
    with torch.no_grad():
        point, q = task.point_and_quantiles(task(torch.from_numpy((rows[-8:] - shift) / scale)[None]))
    got = model.forecast(rows)
    np.testing.assert_allclose(got["point"], task.unscale(point)[0].numpy(), **TOL)
    assert got["quantiles"].shape == (1, 1, 3)
    again = run_export(["--ckpt_path", "best", "--experiment", "sine_gru", "--out", "exported"], cwd)
    assert again.returncode == 2 and "already exists" in again.stderr


def test_predict_onnx_command_forecasts_a_csv_and_generates(tmp_path, capsys):
    import json

    from seqlit.run.predict_onnx import main

    folder = export_task(make_forecaster("rnn"), tmp_path / "f", data_state=SCALER, data_hparams={"window": 6})
    history = np.abs(np.random.default_rng(2).normal(size=(10, 2))).round(3)
    (tmp_path / "h.csv").write_text("load,temp\n" + "\n".join(f"{a},{b}" for a, b in history))
    main(["--model", str(folder), "--input", str(tmp_path / "h.csv")])
    answer = json.loads(capsys.readouterr().out)
    np.testing.assert_allclose(answer["point"], runtime.load(folder).forecast(history)["point"], **TOL)
    lm = export_task(LanguageModel(cell="gru", hidden_size=4, vocab=["", "a", "b"]).eval(), tmp_path / "lm")
    main(["--model", str(lm), "--prompt", "ab", "--length", "5", "--temperature", "0"])
    assert json.loads(capsys.readouterr().out)["text"].startswith("ab")
    with pytest.raises(SystemExit) as exit_info:
        main(["--model", str(folder), "--input", str(tmp_path / "missing.csv")])
    assert exit_info.value.code == 2 and "input=" in capsys.readouterr().err


def test_pytorch_streams_equal_one_pass_and_the_onnx_stream(tmp_path):
    from seqlit.streaming import ForecastStream, TokenStream

    task = make_forecaster("lstm")
    history = np.abs(np.random.default_rng(3).normal(size=(30, 2))).astype(np.float32)
    stream = ForecastStream(task, SCALER)
    for row in history:
        stepped = stream.update(row)
    once = ForecastStream(task, SCALER).update(history)
    onnx = runtime.load(export_task(task, tmp_path / "f", data_state=SCALER, data_hparams={"window": 6}))
    for other in (once, onnx.stream().update(history)):
        np.testing.assert_allclose(stepped["point"], other["point"], **TOL)
        np.testing.assert_allclose(stepped["quantiles"], other["quantiles"], **TOL)
    pair = np.stack([history, history[::-1]])  # two series side by side, as the ONNX stream carries them
    both = ForecastStream(task, SCALER, num_series=2).update(pair)
    np.testing.assert_allclose(both["point"], onnx.stream(num_series=2).update(pair)["point"], **TOL)
    np.testing.assert_allclose(both["point"][0], stepped["point"], **TOL)
    lm = LanguageModel(cell="gru", hidden_size=8, vocab=["", *"abcd"]).eval()
    ids = torch.randint(1, 5, (50,))
    tokens = TokenStream(lm)
    chunks = torch.cat([tokens.feed(part) for part in ids.split([1, 7, 20, 22])])
    with torch.no_grad():
        np.testing.assert_allclose(chunks.numpy(), lm(ids[None])[0][0].numpy(), **TOL)
