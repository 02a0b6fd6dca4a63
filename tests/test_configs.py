"""Every YAML in configs/ parses and instantiates (model, data module, trainer) without running anything."""

from __future__ import annotations

import lightning as L
import pytest
from conftest import CONFIGS

from seqlit.run.cli import SeqlitCLI

EXPERIMENTS = sorted(p for p in CONFIGS.glob("*.yaml"))
PRESETS = sorted(p for p in (CONFIGS / "trainer").glob("*.yaml"))


@pytest.mark.parametrize("config", EXPERIMENTS, ids=lambda p: p.name)
def test_experiment_config_instantiates(config, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # data paths in configs are only stored at construction, never read
    cli = SeqlitCLI(args=["--config", str(config), "--trainer.logger", "false"], run=False)
    assert isinstance(cli.model, L.LightningModule)
    assert isinstance(cli.datamodule, L.LightningDataModule)
    assert cli.config.experiment == config.stem, "each config names its experiment after its file"
    assert cli.config.seed_everything is not None


@pytest.mark.parametrize("preset", PRESETS, ids=lambda p: p.name)
def test_trainer_preset_stacks_on_the_default(preset, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    if "gpu" in preset.name:
        pytest.skip("instantiating a GPU trainer needs a GPU")
    args = ["--config", str(CONFIGS / "sine.yaml"), "--config", str(preset), "--trainer.logger", "false"]
    cli = SeqlitCLI(args=args, run=False)
    assert isinstance(cli.trainer, L.Trainer)
