"""Bring your own task: a data module and a network defined here, in a package seqlit has never seen, trained by the
real ``seqlit`` command through LightningCLI class paths, with no change to seqlit. docs/library.md shows the same
two files (checked here word for word), so the page cannot drift from what is tested."""

from __future__ import annotations

import os
import re

import torch
from conftest import QUIET, REPO

RAMP = '''
"""A noisy sawtooth ramp: a new series source for seqlit, in one file."""

import numpy as np

from seqlit.data.forecasting.base import SeriesDataModule


class RampData(SeriesDataModule):
    """x_t = (t mod period) / period + noise; windows, splits, scaling and loaders come from SeriesDataModule.

    Args:
        length: points in the series.
        period: steps per ramp.
        noise: standard deviation of the Gaussian noise.
        seed: seed of the noise.
        **kwargs: window, horizon, val_size, test_size, scaler, batch_size, ... (see SeriesDataModule).
    """

    def __init__(self, length: int = 600, period: int = 50, noise: float = 0.1, seed: int = 0, **kwargs) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()

    def load_series(self) -> tuple[np.ndarray, list[str], int]:
        hp = self.hparams
        t = np.arange(hp.length)
        x = (t % hp.period) / hp.period + hp.noise * np.random.default_rng(hp.seed).standard_normal(hp.length)
        return x[:, None], ["ramp"], 1  # the series (N, C), its column names, how many leading columns are targets
'''

CONV = '''
"""A convolutional forecaster: a new network trained by seqlit's Forecaster task, in one file."""

from torch import Tensor, nn

from seqlit.tasks import Forecaster


class ConvNet(nn.Module):
    """Window (B, T, C) → forecast (B, H, K): two convolutions over time, mean over time, a linear head."""

    def __init__(self, input_size: int, horizon: int, num_targets: int, num_outputs: int, hidden_size: int,
                 kernel_size: int) -> None:  # fmt: skip
        super().__init__()
        self.shape = (horizon, num_targets, num_outputs)
        self.conv = nn.Sequential(
            nn.Conv1d(input_size, hidden_size, kernel_size, padding="same"),
            nn.ReLU(),
            nn.Conv1d(hidden_size, hidden_size, kernel_size, padding="same"),
            nn.ReLU(),
        )
        self.head = nn.Linear(hidden_size, horizon * num_targets * num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv(x.transpose(1, 2)).mean(dim=-1)  # (B, C, T) -> (B, hidden)
        out = self.head(h).view(len(x), *self.shape)  # (B, H, K, Q)
        return out.squeeze(-1) if self.shape[-1] == 1 else out  # (B, H, K) unless the loss wants quantiles


class ConvForecaster(Forecaster):
    """The Forecaster task (loss, metrics, baselines, logging, predictions) with ConvNet as its network.

    Args:
        kernel_size: steps each convolution sees.
        **kwargs: every Forecaster option (hidden_size, lr, loss, ...).
    """

    def __init__(self, kernel_size: int = 5, **kwargs) -> None:
        super().__init__(**kwargs)  # saves every argument, ours included, as hyperparameters

    def build(self) -> None:
        super().build()  # the scaling buffers the task needs
        hp = self.hparams
        self.net = ConvNet(hp.input_size, hp.horizon, hp.num_targets, self.num_outputs, hp.hidden_size, hp.kernel_size)
'''


def _doc_file(name: str) -> str:
    """The block that docs/library.md marks as ``<!-- file: NAME -->``."""
    text = (REPO / "docs" / "library.md").read_text()
    return re.search(rf"<!-- file: {re.escape(name)} -->\n```python\n(.*?)```", text, flags=re.S).group(1)


def test_docs_show_exactly_the_tested_files():
    assert _doc_file("my_pkg/ramp.py").strip() == RAMP.strip()
    assert _doc_file("my_pkg/conv.py").strip() == CONV.strip()


def test_own_data_module_and_network_train_through_the_real_cli(seqlit_cli, monkeypatch):
    pkg = seqlit_cli.cwd / "my_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "ramp.py").write_text(RAMP.lstrip())
    (pkg / "conv.py").write_text(CONV.lstrip())
    path = os.pathsep.join(p for p in (str(seqlit_cli.cwd), os.environ.get("PYTHONPATH", "")) if p)
    monkeypatch.setenv("PYTHONPATH", path)  # the user's package is importable, as after `pip install -e .`

    limits = ["--trainer.max_epochs", "2", "--trainer.limit_train_batches", "5", "--trainer.limit_val_batches", "2"]
    proc = seqlit_cli(
        ["fit", "--data", "my_pkg.ramp.RampData", "--data.window", "16", "--data.period", "40",
         "--model", "my_pkg.conv.ConvForecaster", "--model.kernel_size", "3", "--model.hidden_size", "8",
         *limits, "--trainer.limit_test_batches", "2", "--experiment", "ramp", *QUIET]
    )  # fmt: skip
    assert "test/mse" in proc.stdout and "test/persistence_mse" in proc.stdout  # seqlit's metrics and baselines

    ckpts = sorted((seqlit_cli.cwd / "lightning_logs" / "ramp" / "version_0" / "checkpoints").glob("*.ckpt"))
    assert ckpts, proc.stdout
    ckpt = torch.load(ckpts[-1], map_location="cpu", weights_only=True)
    hp, data_hp = ckpt["hyper_parameters"], ckpt["datamodule_hyper_parameters"]
    assert hp["_class_path"] == "my_pkg.conv.ConvForecaster" and hp["kernel_size"] == 3 and hp["input_size"] == 1
    assert data_hp["_class_path"] == "my_pkg.ramp.RampData" and data_hp["period"] == 40 and data_hp["window"] == 16
    assert any(k.startswith("net.conv.") for k in ckpt["state_dict"])  # the new network was trained, not the LSTM
    assert not any("encoder" in k for k in ckpt["state_dict"])

    # and it loads back for inference from the checkpoint alone
    monkeypatch.syspath_prepend(str(seqlit_cli.cwd))
    from my_pkg.conv import ConvForecaster

    model = ConvForecaster.load_from_checkpoint(ckpts[-1], map_location="cpu").eval()
    assert model(torch.randn(2, 16, 1)).shape == (2, 1, 1)
