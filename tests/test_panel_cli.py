"""Many series through the real command: fit, a rolling-origin backtest, predictions from the checkpoint alone; MASE."""

from __future__ import annotations

import csv
import math

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import CONFIGS, QUIET

from seqlit.data.forecasting.metrics import score_table, seasonal_scale

TINY = ["--trainer.max_epochs", "1", "--model.hidden_size", "4", "--data.window", "6", "--data.horizon", "3",
        "--data.season", "4",
        "--data.val_size", "3", "--data.test_size", "5", "--data.batch_size", "64", *QUIET]  # fmt: skip


def make_panel(folder, future: int = 3) -> None:
    """Three monthly series of different lengths and starts, a promo known in advance (also ``future`` months past
    each series' end), and a series of 5 rows that is too short."""
    with (folder / "sales.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["month", "store", "sales", "promo"])
        for s, (start, n) in enumerate([(0, 40), (6, 30), (2, 36), (0, 5)]):
            for t in range(start, start + n + future):
                month = f"{2020 + t // 12}-{t % 12 + 1:02d}-01"
                value = round(10 * (s + 1) + 3 * math.sin(t * math.pi / 2) + t % 2, 3) if t < start + n else ""
                w.writerow([month, f"store{s}", value, t % 2])


def test_fit_backtest_then_predict_from_the_checkpoint(seqlit_cli):
    make_panel(seqlit_cli.cwd)
    data = ["--data.path", "sales.csv", "--data.series_id", "store", "--data.target", "sales",
            "--data.time_column", "month",
            "--data.future_covariates", "[promo]", "--data.calendar", "[month]"]  # fmt: skip
    fit = seqlit_cli(["fit", "--config", str(CONFIGS / "panel_gru.yaml"), *data, *TINY])
    assert "1 of 4 series are too short" in fit.stdout and "test/seasonal_naive_mae" in fit.stdout
    run = seqlit_cli.cwd / "lightning_logs" / "panel_gru" / "version_0"
    ckpt = run / "checkpoints" / "last.ckpt"
    state = torch.load(ckpt, weights_only=True)["PanelDataModule"]  # per-series statistics as plain data
    assert state["scaling"]["series"] == ["store0", "store1", "store2"] and state["skipped"] == ["store3"]
    back = seqlit_cli(["backtest", "--ckpt_path", str(ckpt), "--origins", "2", "--out", "bt"])
    assert "2 origins x 3 steps per series" in back.stdout
    step = pd.read_csv(seqlit_cli.cwd / "bt" / "backtest_step.csv")
    assert step["step"].tolist() == [1, 2, 3] and {"model_mase", "naive_mase", "seasonal_naive_mase"} <= set(step)
    overall = pd.read_csv(seqlit_cli.cwd / "bt" / "backtest_overall.csv")
    assert overall["forecasts"].tolist() == [3 * 2] and overall["series"].tolist() == [3]
    assert (seqlit_cli.cwd / "bt" / "backtest_mase.png").is_file()
    too_many = seqlit_cli(["backtest", "--ckpt_path", str(ckpt), "--origins", "9", "--out", "bt2"], check=False)
    assert too_many.returncode == 2 and "--origins=9 is not allowed: 1 to 3" in too_many.stderr
    assert not (seqlit_cli.cwd / "bt2").exists()
    export = seqlit_cli(["export", "--ckpt_path", str(ckpt), "--out", "onnx"], check=False)
    assert export.returncode == 2 and "a model of many series needs each series' statistics" in export.stderr
    assert not (seqlit_cli.cwd / "onnx").exists()
    seqlit_cli(["predict", "--ckpt_path", str(ckpt), *QUIET])  # everything else comes from the checkpoint
    rows = pd.read_csv(sorted((seqlit_cli.cwd / "lightning_logs" / "panel_gru").glob("version_*/predictions.csv"))[-1])
    assert list(rows.columns[:4]) == ["series", "position", "time", "step"]
    future = rows[rows["target"].isna()]  # the unknown future: one window of 3 steps per series
    assert future.groupby("series")["time"].apply(list).to_dict() == {
        "store0": ["2023-05-01", "2023-06-01", "2023-07-01"],
        "store1": ["2023-01-01", "2023-02-01", "2023-03-01"],
        "store2": ["2023-03-01", "2023-04-01", "2023-05-01"],
    }


def test_predict_without_future_covariates_is_one_line(seqlit_cli):
    make_panel(seqlit_cli.cwd, future=1)
    data = ["--data.path", "sales.csv", "--data.series_id", "store", "--data.target", "sales",
            "--data.future_covariates", "[promo]"]  # fmt: skip
    seqlit_cli(["fit", "--config", str(CONFIGS / "panel_gru.yaml"), *data, *TINY])
    ckpt = seqlit_cli.cwd / "lightning_logs" / "panel_gru" / "version_0" / "checkpoints" / "last.ckpt"
    proc = seqlit_cli(["predict", "--ckpt_path", str(ckpt), *QUIET], check=False)
    assert proc.returncode == 2
    assert "needs ['promo'] on those steps, and the file gives them on 1" in proc.stderr.strip().splitlines()[-1]
    assert not list(seqlit_cli.cwd.glob("lightning_logs/panel_gru/version_*/predictions.csv"))


def test_mase_by_hand():
    history = np.array([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]])  # m = 2: |3-1| = |4-2| = ... = 2
    assert seasonal_scale(history, 2).tolist() == [2.0]
    y = np.array([[[7.0], [8.0]], [[1.0], [1.0]]])  # (M=2, H=2, K=1): series 0 and series 1
    pred = np.array([[[6.0], [10.0]], [[2.0], [1.0]]])  # errors 1, 2 and 1, 0
    scale = np.array([[2.0], [0.5]])  # series 1's seasonal-naive error was 0.5
    tables = score_table(y, {"model": pred}, np.array([0, 1]), scale, ["a", "b"])
    assert tables["series"]["model_mase"].tolist() == [0.75, 1.0]  # (1 + 2) / 2 / 2 and (1 + 0) / 2 / 0.5
    assert tables["overall"]["model_mase"].tolist() == [0.875]  # series weigh alike
    assert tables["step"]["model_mase"].tolist() == [pytest.approx((0.5 + 2) / 2), pytest.approx((1 + 0) / 2)]
    assert tables["overall"]["model_rmse"].tolist() == [pytest.approx(math.sqrt((1 + 4 + 1 + 0) / 4))]
    assert tables["step"]["model_smape"].tolist()[1] == pytest.approx((200 * 2 / 18 + 0) / 2)
