"""Two-process CPU DDP through the real command, for a small config of each task family.

Each fit runs with ``--trainer.strategy ddp --trainer.devices 2`` (Lightning launches the second process itself) and
ends by testing its best checkpoint; the metrics written to ``test_metrics.json`` must equal those of a one-process
``seqlit test`` of the same checkpoint: the test samplers give every sample to exactly one process and the metrics are
reduced over both. Only rank 0 writes: one run folder, one set of files.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, QUIET
from test_text_cli import make_corpus

DDP = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]

FAMILIES = {
    # forecaster: 95 test windows, an odd count, so the processes get different numbers of them
    "sine": (["--config", str(CONFIGS / "sine.yaml"), "--data.length", "400", "--data.window", "8",
              "--data.val_size", "40", "--data.test_size", "103", "--data.batch_size", "16",
              "--model.hidden_size", "8", "--trainer.max_epochs", "2"], "test/mse"),
    "synth_gru": (["--config", str(CONFIGS / "synth_gru.yaml"), "--data.train_size", "200", "--data.val_size", "40",
                   "--data.test_size", "101", "--data.seq_len", "10", "--data.crop_min_length", "null",
                   "--model.hidden_size", "8", "--trainer.max_epochs", "2"], "test/acc"),
    "imdb_best": (["--config", str(CONFIGS / "imdb_best.yaml"), "--data.root", "corpus", "--data.batch_size", "8",
                   "--model.hidden_size", "8", "--model.embedding_dim", "8", "--trainer.max_epochs", "2"],
                  "test/acc"),
    "charlm_gru": (["--config", str(CONFIGS / "charlm_gru.yaml"), "--data.path", "text.txt", "--data.mode", "windows",
                    "--data.test_fraction", "0.1", "--data.seq_len", "16", "--data.batch_size", "8",
                    "--model.hidden_size", "16", "--model.sample_length", "0", "--trainer.max_epochs", "1",
                    "--trainer.max_steps", "-1", "--trainer.max_time", "null", "--model.schedule_by", "steps",
                    "--trainer.val_check_interval", "1.0",
                    "--trainer.check_val_every_n_epoch", "1", "--test_after_fit", "true"], "test/loss"),
}  # fmt: skip


@pytest.mark.slow
@pytest.mark.parametrize("experiment", list(FAMILIES))
def test_two_process_ddp_fit_reports_the_one_process_test_metrics(seqlit_cli, seqlit_main, experiment):
    cwd: Path = seqlit_cli.cwd
    make_corpus(cwd / "corpus", {"train": 40, "test": 21})
    (cwd / "text.txt").write_text("to be or not to be, that is the question.\n" * 60)
    args, key = FAMILIES[experiment]
    seqlit_cli(["fit", *args, *DDP, *QUIET], timeout=400)
    runs = cwd / "lightning_logs" / experiment
    assert [p.name for p in runs.iterdir()] == ["version_0"]  # both processes logged into rank 0's one run
    run = runs / "version_0"
    ddp_metrics = json.loads((run / "test_metrics.json").read_text())
    best = next((run / "checkpoints").glob("epoch=*.ckpt"))
    assert torch.load(best, weights_only=True)["state_dict"]  # plain data: loads with weights_only=True

    code, _, err = seqlit_main(["test", "--ckpt_path", str(best), "--experiment", experiment, *QUIET])  # one process
    assert code == 0, err
    one = json.loads((runs / "version_1" / "test_metrics.json").read_text())
    assert ddp_metrics[key] == pytest.approx(one[key], rel=1e-5, abs=1e-7)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_bf16_fit_with_the_gpu_overlay(seqlit_cli):
    args, _ = FAMILIES["sine"]
    gpu = ["--config", str(CONFIGS / "trainer" / "gpu.yaml"), "--trainer.devices", "1"]
    seqlit_cli(["fit", *args, *gpu, *QUIET])
    metrics = json.loads((seqlit_cli.cwd / "lightning_logs" / "sine" / "version_0" / "test_metrics.json").read_text())
    assert metrics["test/mse"] > 0
