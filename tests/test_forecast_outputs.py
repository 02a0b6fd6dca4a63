"""What the forecaster shows after a test: a figure with times on the x axis when the data has a time column, a band
that says which interval it is and legends outside the data; and a note on the units of the metrics table."""

from __future__ import annotations

import csv
import warnings
from datetime import date, timedelta
from types import SimpleNamespace

import lightning as L
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from seqlit.data import TimeSeriesDataModule
from seqlit.tasks import Forecaster, forecast_outputs
from seqlit.tasks.forecast_outputs import axis_values, interval_label


class Labels:
    """A data module stand-in whose ``time_labels`` returns fixed labels per position."""

    def __init__(self, label) -> None:
        self.label = label

    def time_labels(self, positions: np.ndarray) -> list[str]:
        return [self.label(int(p)) for p in positions]


def test_axis_values_are_times_only_when_the_labels_are_dates():
    pos = np.array([3, 4, 5])
    days = axis_values(Labels(lambda p: (date(2024, 1, 1) + timedelta(days=p)).isoformat()), pos)
    assert days.dtype.kind == "M" and str(days[0]) == "2024-01-04"
    hours = axis_values(Labels(lambda p: f"2024-01-01T{p:02d}:00"), pos)
    assert str(hours[-1]) == "2024-01-01T05:00"
    for steps in (Labels(str), Labels(lambda p: f"week {p}")):  # no time column (numpy would read "3" as a year)
        assert axis_values(steps, pos) is pos
    assert axis_values(object(), pos) is pos  # a data module without times


def test_metrics_note_names_the_loss_and_whether_it_is_on_scaled_targets():
    sizes = {"input_size": 1, "horizon": 2, "num_targets": 1}
    quantile = Forecaster(loss="quantile", quantiles=[0.1, 0.5, 0.9], **sizes)
    assert quantile.metrics_note().startswith(
        "test/loss is the training objective (quantile loss over q0.1, q0.5, q0.9) on the targets as they are;"
    )  # no scaler: the loss is in the data's units too
    quantile.target_scale.fill_(2.0)  # a standard scaler's
    assert (
        "over q0.1, q0.5, q0.9) on scaled targets; mse, rmse, mae, smape and the baselines" in quantile.metrics_note()
    )
    assert (
        "(mean absolute error) on scaled targets"
        in Forecaster(loss="mae", target_transform="log1p", **sizes).metrics_note()
    )


def test_interval_label_names_the_outermost_levels():
    assert interval_label(SimpleNamespace(levels=torch.tensor([0.1, 0.5, 0.9]))) == "80 % interval (q0.1–q0.9)"
    from_hparams = SimpleNamespace(hparams={"quantiles": [0.05, 0.25, 0.5, 0.75, 0.95]})
    assert interval_label(from_hparams) == "90 % interval (q0.05–q0.95)"


def figure_of(dm: TimeSeriesDataModule, task: Forecaster, monkeypatch: pytest.MonkeyPatch):
    """The test figure of a one-epoch fit, caught before it is saved and closed."""
    figures = []
    monkeypatch.setattr(forecast_outputs, "publish_figure", lambda trainer, fig, tag, name: figures.append(fig))
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(task, dm)
        trainer.test(task, dm, verbose=False)
    (fig,) = figures
    return fig


def test_figure_of_a_csv_with_a_time_column_has_a_date_axis_and_legends_outside(tmp_path, monkeypatch):
    path = tmp_path / "daily.csv"
    start = date(2023, 12, 1)
    with path.open("w", newline="") as f:
        rows = [[(start + timedelta(days=t)).isoformat(), round(10 + 5 * np.sin(t / 3), 3)] for t in range(90)]
        csv.writer(f).writerows([["Date", "Temp"], *rows])
    dm = TimeSeriesDataModule(path=str(path), target="Temp", time_column="Date", window=8, horizon=3, batch_size=64)
    fig = figure_of(dm, Forecaster(cell="gru", hidden_size=4, loss="quantile"), monkeypatch)
    fig.canvas.draw()
    for ax in fig.axes:
        assert ax.get_xlabel() == "time"
        first, last = (mdates.num2date(v).date() for v in ax.get_xlim())  # axis units are dates, not steps
        assert start < first < last < start + timedelta(days=95)
        legend = ax.get_legend()
        assert "80 % interval (q0.1–q0.9)" in [t.get_text() for t in legend.get_texts()]
        assert legend.get_window_extent().x0 > ax.get_window_extent().x1  # right of the axes, never on the data
    plt.close(fig)


def test_figure_without_a_time_column_keeps_series_steps(tmp_path, monkeypatch):
    path = tmp_path / "plain.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["y"]] + [[(t * 7) % 11 + 0.1 * t] for t in range(90)])
    dm = TimeSeriesDataModule(path=str(path), target="y", window=8, horizon=3, batch_size=64)
    fig = figure_of(dm, Forecaster(cell="gru", hidden_size=4), monkeypatch)
    assert fig.axes[0].get_xlabel() == "step" and 60 < fig.axes[0].get_xlim()[1] < 100  # series steps, not dates
    plt.close(fig)
