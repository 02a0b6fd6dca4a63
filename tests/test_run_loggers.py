"""Logger presets keep the run layout: with CSV or MLflow beside TensorBoard, ``--ckpt_path last/best`` still finds
the run, and metrics, figures and checkpoints still land in ``lightning_logs/<experiment>/version_<n>``."""

from __future__ import annotations

import csv

import pytest
from conftest import CONFIGS, QUIET

SINE = [
    "--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--experiment", "sine_gru",
    "--data.length", "240", "--data.val_size", "40", "--data.test_size", "60", "--data.window", "8",
    "--model.hidden_size", "8", "--trainer.max_epochs", "2", *QUIET,
]  # fmt: skip


def test_the_csv_preset_writes_into_the_run_folder_and_last_still_resumes(seqlit_main):
    code, _, err = seqlit_main(["fit", *SINE, "--config", str(CONFIGS / "logger" / "csv.yaml")])
    assert code == 0, err
    run = seqlit_main.cwd / "lightning_logs" / "sine_gru" / "version_0"
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert any(r.get("val/loss") for r in rows) and any(r.get("test/mse") for r in rows)
    assert list(run.glob("events.out.tfevents.*")) and (run / "forecast_test.png").is_file()
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "test_metrics.json").is_file()
    hparams = (run / "hparams.yaml").read_text()
    assert "hidden_size: 8" in hparams and "_instantiator" not in hparams and "_class_path" not in hparams
    code, _, err = seqlit_main(["test", "--ckpt_path", "best", "--experiment", "sine_gru", *QUIET])
    assert code == 0, err
    assert (run.parent / "version_1" / "test_metrics.json").is_file()


def test_the_mlflow_preset_logs_to_a_local_store_and_keeps_the_layout(seqlit_main):
    pytest.importorskip("mlflow")
    code, _, err = seqlit_main(["fit", *SINE, "--config", str(CONFIGS / "logger" / "mlflow.yaml")])
    assert code == 0, err
    run = seqlit_main.cwd / "lightning_logs" / "sine_gru" / "version_0"
    assert (run / "checkpoints" / "last.ckpt").is_file() and (run / "forecast_test.png").is_file()
    metrics = list((seqlit_main.cwd / "mlruns").rglob("metrics/val/loss")) + list(
        (seqlit_main.cwd / "mlruns").rglob("val/loss")
    )
    assert metrics, sorted(str(p) for p in (seqlit_main.cwd / "mlruns").rglob("*"))[:20]
    code, _, err = seqlit_main(["fit", *SINE, "--trainer.max_epochs", "3", "--ckpt_path", "last",
                                "--config", str(CONFIGS / "logger" / "mlflow.yaml")])  # fmt: skip
    assert code == 0, err
    assert not (run.parent / "version_1").exists()  # resumed into the same run folder
