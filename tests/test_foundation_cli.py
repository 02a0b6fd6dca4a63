"""The real ``seqlit`` command in subprocesses: fit, TensorBoard files, predict and test from a checkpoint, resume,
and one clear line for each bad input with no run folder left behind."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, QUIET
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

# A short series and two epochs: enough to exercise every part of a run in a few seconds.
TINY = [
    "--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--experiment", "sine_gru",
    "--data.length", "240", "--data.val_size", "40", "--data.test_size", "60", "--data.window", "8",
    "--model.hidden_size", "8", "--trainer.max_epochs", "2", "--trainer.log_every_n_steps", "1",
    *QUIET,
]  # fmt: skip


def scalar_tags(run: Path) -> set[str]:
    tags: set[str] = set()
    for events in run.glob("events.out.tfevents.*"):
        acc = EventAccumulator(str(events))
        acc.Reload()
        tags |= set(acc.Tags()["scalars"])
    return tags


def train_steps_logged(events: Path) -> list[int]:
    acc = EventAccumulator(str(events))
    acc.Reload()
    return [e.step for e in acc.Scalars("train/loss_step")] if "train/loss_step" in acc.Tags()["scalars"] else []


@pytest.mark.slow
def test_fit_logs_then_predict_and_test_from_the_checkpoint_alone(seqlit_cli):
    out = seqlit_cli(["fit", *TINY])
    run = seqlit_cli.cwd / "lightning_logs" / "sine_gru" / "version_0"
    assert "Best checkpoint:  lightning_logs/sine_gru/version_0/checkpoints/epoch=1" in out.stdout
    assert (run / "config.yaml").is_file() and (run / "hparams.yaml").is_file()
    assert (run / "forecast_test.png").stat().st_size > 1000
    tags = scalar_tags(run)
    for tag in ["train/loss_step", "val/loss", "val/mse", "val/mae", "val/persistence_mse", "val/noise_floor",
                "test/mse", "test/mse_vs_floor", "test/persistence_mse"]:  # fmt: skip
        assert tag in tags, tag
    assert any(t.startswith("lr-") for t in tags)  # the learning-rate monitor
    best = next((run / "checkpoints").glob("epoch=*.ckpt"))
    ckpt = torch.load(best, weights_only=True)  # plain data only: loads without unpickling code
    assert ckpt["hyper_parameters"]["input_size"] == 1 and ckpt["hyper_parameters"]["horizon"] == 1

    # a fresh process, nothing but the checkpoint: model and data are rebuilt from what it stores
    seqlit_cli(["predict", "--ckpt_path", str(best), *QUIET])
    pred_run = seqlit_cli.cwd / "lightning_logs" / "sine_gru" / "version_1"
    rows = list(csv.DictReader((pred_run / "predictions.csv").open()))
    assert list(rows[0])[:4] == ["position", "step", "prediction", "target"]
    assert len(rows) == (60 - 8) + 1  # every test window, plus the forecast past the end of the series
    assert int(rows[0]["position"]) == 240 - 60 + 8 and rows[-1]["position"] == "240" and rows[-1]["target"] == ""
    assert all(r["prediction"] for r in rows)

    out = seqlit_cli(["test", "--ckpt_path", str(best), *QUIET])
    assert "test/mse" in out.stdout


@pytest.mark.slow
def test_resume_last_continues_the_same_run_from_its_step(seqlit_cli):
    seqlit_cli(["fit", *TINY, "--test_after_fit", "false"])
    run = seqlit_cli.cwd / "lightning_logs" / "sine_gru" / "version_0"
    saved_step = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)["global_step"]
    assert saved_step > 0
    before = set(run.glob("events.out.tfevents.*"))

    seqlit_cli(["fit", *TINY, "--trainer.max_epochs", "3", "--ckpt_path", "last", "--test_after_fit", "false"])
    assert not (run.parent / "version_1").exists()  # resumed into the same run folder
    (new_events,) = set(run.glob("events.out.tfevents.*")) - before
    steps = train_steps_logged(new_events)
    assert steps and min(steps) >= saved_step  # training went on from the saved step, not from 0
    final = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert final["global_step"] == saved_step * 3 // 2 and final["epoch"] == 2


def test_resume_without_a_checkpoint_is_an_error_not_a_fresh_start(seqlit_main):
    code, _, err = seqlit_main(["fit", *TINY, "--ckpt_path", "last"])
    assert code == 2
    assert "ckpt_path='last' found no checkpoint" in err
    assert not (seqlit_main.cwd / "lightning_logs" / "sine_gru").exists()


@pytest.mark.parametrize(
    "args, message",
    [
        (["--data.window", "100"], "window + horizon=101 is not allowed"),
        (["--data.horizon", "60"], "window + horizon=68 is not allowed"),
        (["--data.noise", "-1"], "noise=-1.0 is not allowed"),
        (["--data.val_size", "100", "--data.test_size", "140"], "val_size + test_size=240 is not allowed"),
        (["--model.cell", "transformer"], "model.cell: Expected a typing.Literal['rnn', 'lstm', 'gru', 'scratch']"),
        (["--model.hiden_size", "3"], "Option 'hiden_size' is not accepted"),
        (["--ckpt_path", "missing.ckpt"], "ckpt_path='missing.ckpt' does not exist"),
    ],
)
def test_bad_input_is_one_clear_line_and_leaves_nothing(seqlit_main, args, message):
    code, _, err = seqlit_main(["fit", *TINY, *args])
    assert code == 2, err
    errors = [line for line in err.splitlines() if line.startswith("seqlit: error:")]
    assert len(errors) == 1 and message in errors[0], err
    assert "Traceback" not in err
    logs = seqlit_main.cwd / "lightning_logs"
    assert not logs.exists() or not any(logs.rglob("*"))


def test_corrupted_checkpoint_is_one_clear_line(seqlit_main):
    bad = seqlit_main.cwd / "bad.ckpt"
    bad.write_bytes(b"not a checkpoint at all")
    code, _, err = seqlit_main(["predict", "--ckpt_path", str(bad)])
    assert code == 2 and "is not a readable checkpoint" in err


def test_print_config(seqlit_main):
    code, out, _ = seqlit_main(
        ["fit", "--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--print_config"]
    )
    assert code == 0
    assert "class_path: seqlit.tasks.Forecaster" in out and "cell: gru" in out and "lr: 0.0001" in out


def test_python_dash_m_is_the_same_command(seqlit_cli):
    assert "{fit,validate,test,predict}" in seqlit_cli(["--help"]).stdout
