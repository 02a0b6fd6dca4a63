"""The real ``seqlit`` command on a small generated CSV with a time column: fit, predict past its end, bad input."""

from __future__ import annotations

import csv
import math
from datetime import date, timedelta

from conftest import CONFIGS, QUIET

TINY = ["--trainer.max_epochs", "1", "--model.hidden_size", "4", "--data.window", "8", "--data.horizon", "3",
        "--data.season", "7", "--data.ar_order", "4", "--data.batch_size", "64", *QUIET]  # fmt: skip


def make_csv(folder, n: int = 90) -> date:
    """Daily temperature-like values with a humidity covariate; returns the last date in the file."""
    start = date(2023, 12, 1)
    with (folder / "weather.csv").open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["Date", "Temp", "Humidity"])
        for t in range(n):
            w.writerow([(start + timedelta(days=t)).isoformat(), round(10 + 5 * math.sin(t / 3), 3), 50 + t % 7])
    return start + timedelta(days=n - 1)


def test_fit_then_predict_writes_test_and_future_forecasts_with_timestamps(seqlit_cli):
    last = make_csv(seqlit_cli.cwd)
    data = ["--data.path", "weather.csv", "--data.target", "Temp", "--data.time_column", "Date",
            "--data.covariates", "[Humidity]"]  # fmt: skip
    fit = seqlit_cli(["fit", "--config", str(CONFIGS / "csv_gru.yaml"), *data, *TINY])
    assert "test/ar_rmse" in fit.stdout and "test/coverage" in fit.stdout
    ckpt = seqlit_cli.cwd / "lightning_logs" / "csv_gru" / "version_0" / "checkpoints" / "last.ckpt"
    assert ckpt.is_file()
    seqlit_cli(["predict", "--ckpt_path", str(ckpt), *QUIET])  # everything else comes from the checkpoint
    runs = sorted((seqlit_cli.cwd / "lightning_logs" / "csv_gru").glob("version_*/predictions.csv"))
    with runs[-1].open() as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["position", "time", "step", "prediction", "q0.1", "q0.5", "q0.9", "target", "persistence",
                             "seasonal_naive", "ar"]  # fmt: skip
    # 90 rows: test span 18 steps → 16 windows of 3 steps, plus the future window
    assert len(rows) == (16 + 1) * 3
    future = rows[-3:]
    expected = [(last + timedelta(days=k)).isoformat() for k in (1, 2, 3)]
    assert [r["time"] for r in future] == expected and [r["step"] for r in future] == ["1", "2", "3"]
    assert all(r["target"] == "" and r["prediction"] != "" for r in future)
    assert rows[0]["time"] == (last - timedelta(days=17)).isoformat() and rows[0]["target"] != ""
    assert all(float(r["q0.1"]) <= float(r["q0.5"]) <= float(r["q0.9"]) for r in rows)


def test_bad_csv_is_one_line_and_leaves_no_run(seqlit_cli):
    make_csv(seqlit_cli.cwd)
    proc = seqlit_cli(["fit", "--config", str(CONFIGS / "csv_gru.yaml"), "--data.path", "weather.csv",
                       "--data.target", "Temperature", *TINY], check=False)  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("seqlit: error: data.target='Temperature'")
    assert "['Date', 'Temp', 'Humidity']" in proc.stderr
    assert not list(seqlit_cli.cwd.glob("lightning_logs/csv_gru/version_*"))
