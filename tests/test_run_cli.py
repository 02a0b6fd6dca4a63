"""The command's own hooks: explicit flags win over a checkpoint's stored config, and every config's comments and
trainer settings hold (the cell variants they list instantiate; clipping and the NaN stop are written, not hidden)."""

from __future__ import annotations

import re

import lightning as L
import pytest
import yaml
from conftest import CONFIGS, QUIET

from seqlit.run.cli import SeqlitCLI
from seqlit.run.fault_tolerance import StopOnNonFinite

TINY = [
    "--config", str(CONFIGS / "sine.yaml"),
    "--data.length", "240", "--data.val_size", "40", "--data.test_size", "60", "--data.window", "8",
    "--model.hidden_size", "8", "--trainer.max_epochs", "1", "--test_after_fit", "false", *QUIET,
]  # fmt: skip
EXPERIMENTS = sorted(CONFIGS.glob("*.yaml"))
VARIANT = re.compile(r"^#\s+seqlit fit --config configs/(\S+\.yaml) (--model\.cell \S+ --experiment \S+)", re.M)
VARIANTS = [(name, flags.split()) for p in EXPERIMENTS for name, flags in VARIANT.findall(p.read_text())]


def test_explicit_flags_win_over_the_checkpoint_config(seqlit_main):
    assert seqlit_main(["fit", *TINY])[0] == 0
    last = seqlit_main.cwd / "lightning_logs" / "sine" / "version_0" / "checkpoints" / "last.ckpt"
    code, _, err = seqlit_main(["validate", "--ckpt_path", str(last), "--model.lr", "0.123", *QUIET])
    assert code == 0, err
    saved = yaml.safe_load((last.parents[2] / "version_1" / "config.yaml").read_text())
    assert saved["model"]["init_args"]["lr"] == 0.123  # the flag, not the checkpoint's 0.01
    assert saved["model"]["init_args"]["hidden_size"] == 8  # the checkpoint's, not the config file's default
    assert saved["ckpt_path"] == str(last)


def test_the_listed_cell_variants_instantiate():
    assert {name for name, _ in VARIANTS} == {"sine_rnn.yaml", "synth_gru.yaml"} and len(VARIANTS) == 6
    for name, flags in VARIANTS:
        cli = SeqlitCLI(args=["--config", str(CONFIGS / name), *flags, "--trainer.logger", "false"], run=False)
        assert cli.config.model.init_args.cell == flags[1] and cli.config.experiment == flags[3]


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.name)
def test_clipping_and_the_nan_stop_are_written_in_the_config(config, tmp_path, monkeypatch):
    trainer = yaml.safe_load(config.read_text())["trainer"]
    assert "gradient_clip_val" in trainer
    assert {c["class_path"] for c in trainer["callbacks"]} >= {"seqlit.run.fault_tolerance.StopOnNonFinite"}
    monkeypatch.chdir(tmp_path)
    cli = SeqlitCLI(args=["--config", str(config), "--trainer.logger", "false"], run=False)
    assert isinstance(cli.trainer, L.Trainer)
    assert cli.trainer.gradient_clip_val == trainer["gradient_clip_val"]
    assert sum(isinstance(c, StopOnNonFinite) for c in cli.trainer.callbacks) == 1


def test_print_config_shows_what_changes_training(seqlit_main):
    code, out, _ = seqlit_main(["fit", "--config", str(CONFIGS / "sine.yaml"), "--print_config"])
    assert code == 0
    assert "gradient_clip_val: 1.0" in out and "class_path: seqlit.run.fault_tolerance.StopOnNonFinite" in out


def test_the_test_table_is_followed_by_what_its_loss_means(seqlit_main):
    code, out, err = seqlit_main(["fit", *TINY, "--test_after_fit", "true"])
    assert code == 0, err
    note = ("test/loss is the training objective (mean squared error) on scaled targets; mse, rmse, mae, smape and the "
            "baselines are in the data's units")  # fmt: skip
    assert out.count(note) == 1 and out.index(note) > out.rindex("test/smape")  # under the table, not before it
    last = seqlit_main.cwd / "lightning_logs" / "sine" / "version_0" / "checkpoints" / "last.ckpt"
    code, out, err = seqlit_main(["test", "--ckpt_path", str(last), *QUIET])
    assert code == 0, err
    assert out.count(note) == 1 and out.index(note) > out.rindex("test/smape")
