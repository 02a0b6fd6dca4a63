"""A refused command changes nothing: earlier runs, their results and their checkpoints stay exactly as they were."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from conftest import CONFIGS, QUIET

SINE = [
    "--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--experiment", "sine_gru",
    "--data.length", "240", "--data.val_size", "40", "--data.test_size", "60", "--data.window", "8",
    "--model.hidden_size", "8", "--trainer.max_epochs", "1", *QUIET,
]  # fmt: skip
SYNTH = [
    "--config", str(CONFIGS / "synth_gru.yaml"),
    "--data.train_size", "64", "--data.val_size", "32", "--data.test_size", "32", "--data.batch_size", "32",
    "--model.hidden_size", "8", "--trainer.max_epochs", "1", *QUIET,
]  # fmt: skip
NO_TEST = ["--test_after_fit", "false"]


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes: names, sizes and contents in one comparable value."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


@pytest.fixture
def two_experiments(seqlit_main) -> tuple[Path, Path]:
    """A sine run and a synthetic-classifier run, each with a checkpoint, plus results-only sine runs beside them."""
    assert seqlit_main(["fit", *SINE, *NO_TEST])[0] == 0
    assert seqlit_main(["fit", *SYNTH, *NO_TEST])[0] == 0
    logs = seqlit_main.cwd / "lightning_logs"
    for n in (1, 2):  # earlier `test` / `predict` runs: results, no checkpoint
        run = logs / "sine_gru" / f"version_{n}"
        run.mkdir()
        (run / "test_metrics.json").write_text('{"test/mse": 0.5}\n')
        (run / "predictions.csv").write_text("position,prediction\n1,0.25\n")
    return (
        logs / "sine_gru" / "version_0" / "checkpoints" / "last.ckpt",
        logs / "synth_gru" / "version_0" / "checkpoints" / "last.ckpt",
    )


def test_a_refused_command_deletes_no_earlier_run(seqlit_main, two_experiments):
    sine_ckpt, _ = two_experiments
    before = snapshot(seqlit_main.cwd)
    code, out, err = seqlit_main(["test", *SINE, "--model", "seqlit.tasks.Classifier", "--ckpt_path", str(sine_ckpt)])
    assert code == 2, err
    assert "seqlit: error:" in err and "Classifier" in err and "Forecaster" in err
    assert snapshot(seqlit_main.cwd) == before


@pytest.mark.parametrize("subcommand", ["test", "fit", "predict", "validate"])
def test_a_checkpoint_of_another_task_is_refused_naming_both(seqlit_main, two_experiments, subcommand):
    sine_ckpt, synth_ckpt = two_experiments
    before = snapshot(seqlit_main.cwd)
    code, _, err = seqlit_main([subcommand, *SINE, "--ckpt_path", str(synth_ckpt)])
    assert code == 2, err
    (line,) = [x for x in err.splitlines() if x.startswith("seqlit: error:")]
    assert "seqlit.tasks.Classifier" in line and "seqlit.tasks.Forecaster" in line, line
    assert snapshot(seqlit_main.cwd) == before  # the classifier's run, its last.ckpt and config are untouched
    # the right checkpoint with the same config still works, whether the class path is written short or long
    code, _, err = seqlit_main(["validate", *SINE, "--ckpt_path", str(sine_ckpt)])
    assert code == 0, err
