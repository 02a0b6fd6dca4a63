"""CSV time-series data: exact windows with covariates and horizons, train-only scaling, baselines, time, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlit.data.forecasting import baselines as bl
from seqlit.data.forecasting.csv import TimeSeriesDataModule
from seqlit.data.forecasting.time_axis import TimeAxis
from seqlit.errors import InputError


def write_csv(path: Path, header: list[str], rows: list[list]) -> str:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return str(path)


def counting_csv(tmp_path: Path, n: int = 20) -> str:
    """y = 0..n-1, a covariate 100 + t, a categorical a/b/a/b..., daily dates."""
    rows = [[f"2024-01-{t + 1:02d}", t, 100 + t, "ab"[t % 2]] for t in range(n)]
    return write_csv(tmp_path / "s.csv", ["date", "y", "cov", "kind"], rows)


def module(path: str, **kw) -> TimeSeriesDataModule:
    args = dict(path=path, target="y", window=3, horizon=2, val_size=0.2, test_size=0.2, scaler="none", season=2,
                ar_order=2, shuffle=False)  # fmt: skip
    args.update(kw)
    dm = TimeSeriesDataModule(**args)
    dm.setup("fit")
    return dm


def test_exact_windows_with_covariates_one_hot_and_horizon(tmp_path):
    dm = module(counting_csv(tmp_path), covariates=["cov"], categorical=["kind"], time_column="date")
    assert dm.names == ["y", "cov", "kind=a", "kind=b"]
    assert dm.bounds == {"train": (0, 12), "val": (12, 16), "test": (16, 20)}
    train = dm.datasets["train"].tensors
    assert train["x"].shape == (8, 3, 4) and train["y"].shape == (8, 2, 1)
    assert train["x"][0].tolist() == [[0, 100, 1, 0], [1, 101, 0, 1], [2, 102, 1, 0]]
    assert train["y"][0, :, 0].tolist() == [3, 4] and train["position"][0] == 3
    assert train["y"][-1, :, 0].tolist() == [10, 11]  # targets never leave the training span
    # test windows read their inputs from before the span; their targets cover every test step
    test = dm.datasets["test"].tensors
    assert test["position"].tolist() == [16, 17, 18]
    assert test["x"][0, :, 0].tolist() == [13, 14, 15] and test["y"][-1, :, 0].tolist() == [18, 19]
    # predict = test windows + the future window after the file's last row
    pred = dm.datasets["predict"].tensors
    assert pred["position"].tolist() == [16, 17, 18, 20]
    assert pred["x"][-1, :, 0].tolist() == [17, 18, 19] and torch.isnan(pred["y"][-1]).all()
    assert dm.time_labels(np.array([0, 19, 20, 21])) == ["2024-01-01", "2024-01-20", "2024-01-21", "2024-01-22"]
    assert dm.spec().input_size == 4 and dm.spec().horizon == 2


def test_stride_and_windows_inside_spans(tmp_path):
    dm = module(counting_csv(tmp_path, n=30), stride=3, context_across_spans=False)
    assert dm.bounds == {"train": (0, 18), "val": (18, 24), "test": (24, 30)}
    assert dm.datasets["train"].tensors["position"].tolist() == [3, 6, 9, 12, 15]
    # without context across spans, a validation window (inputs and targets) stays inside steps 18..23
    assert dm.datasets["val"].tensors["position"].tolist() == [21, 22]  # every step, whatever the training stride
    assert dm.datasets["val"].tensors["x"][0, :, 0].tolist() == [18, 19, 20]


def test_scaler_fit_on_training_span_only(tmp_path):
    """Two files equal on the training span but wildly different after it must scale identically."""
    base = [[t, float(t % 5)] for t in range(30)]
    wild = [[t, v if t < 18 else v * 1000 + 7] for t, v in base]
    a = module(write_csv(tmp_path / "a.csv", ["t", "y"], base), scaler="standard", val_size=0.2, test_size=0.2)
    b = module(write_csv(tmp_path / "b.csv", ["t", "y"], wild), scaler="standard", val_size=0.2, test_size=0.2)
    train = np.array([v for _, v in base[:18]])
    assert a.bounds["train"] == (0, 18)
    np.testing.assert_allclose(b.scaler.shift, [train.mean()])
    np.testing.assert_allclose(b.scaler.scale, [train.std()])
    assert torch.equal(a.datasets["train"].tensors["x"], b.datasets["train"].tensors["x"])
    assert not torch.equal(a.datasets["test"].tensors["y"], b.datasets["test"].tensors["y"])
    # minmax too, and one-hot columns are left unscaled
    c = module(counting_csv(tmp_path), scaler="minmax", categorical=["kind"])
    assert c.scaler.shift.tolist() == [0, 0, 0] and c.scaler.scale.tolist() == [11, 1, 1]


def test_baselines_by_hand():
    s = np.arange(1.0, 11.0)[:, None]  # 1..10
    pos = np.array([5, 7])
    assert bl.persistence(s, pos, 2)[..., 0].tolist() == [[5, 5], [7, 7]]
    # season 3 from p=6: steps 6,7,8,9 take steps 3,4,5 and then 3 again (one whole season back, repeated)
    assert bl.seasonal_naive(s, np.array([6]), 4, 3)[0, :, 0].tolist() == [4, 5, 6, 4]
    assert np.isnan(bl.seasonal_naive(s, np.array([2]), 1, 3)).all()  # not enough history: NaN, never a wrap
    # an exact AR(1) process y_t = 0.5 y_{t-1} + 1: the direct 2-step model is y_{t+1} = 0.25 y_{t-1} + 1.5
    y = [16.0]
    for _ in range(29):
        y.append(0.5 * y[-1] + 1)
    coef = bl.fit_direct_ar(np.array(y)[:, None], order=1, horizon=2)
    np.testing.assert_allclose(coef[0], [[0.5, 1.0], [0.25, 1.5]], atol=1e-8)
    np.testing.assert_allclose(bl.direct_ar(np.array([[4.0], [3.0]]), np.array([2]), coef)[0, :, 0], [2.5, 2.25])


def test_batch_baselines_match_the_functions(tmp_path):
    dm = module(counting_csv(tmp_path), season=4, ar_order=2)
    assert dm.baseline_names == ["persistence", "seasonal_naive", "ar"]
    test = dm.datasets["test"].tensors
    assert test["baselines"].shape == (3, 3, 2, 1)
    assert test["baselines"][0, 0, :, 0].tolist() == [15, 15]  # persistence at position 16
    assert test["baselines"][0, 1, :, 0].tolist() == [12, 13]  # season 4
    np.testing.assert_allclose(test["baselines"][0, 2, :, 0], [16, 17], atol=1e-3)  # a line is exact for AR


def test_missing_values_error_ffill_interpolate(tmp_path):
    rows = [[t, "" if t in (4, 7) else t, "NA" if t == 9 else 1] for t in range(20)]
    path = write_csv(tmp_path / "m.csv", ["t", "y", "c"], rows)
    with pytest.raises(InputError, match=r"missing.*'y' at data rows 5, 8.*'c' at data rows 10"):
        module(path, covariates=["c"])
    assert module(path, covariates=["c"], missing="ffill").series[[4, 7, 9], 0].tolist() == [3, 6, 9]
    assert module(path, covariates=["c"], missing="interpolate").series[[4, 7], 0].tolist() == [4, 7]
    lead = write_csv(tmp_path / "l.csv", ["y"], [[""]] + [[t] for t in range(19)])
    with pytest.raises(InputError, match="first data row is missing"):
        module(lead, missing="ffill")


def test_month_steps_and_numeric_time():
    months = TimeAxis(["1983-10", "1983-11", "1983-12"], "Month", None)
    assert [months.label(i) for i in (2, 3, 4, 15)] == ["1983-12", "1984-01", "1984-02", "1985-01"]
    years = TimeAxis(["1990", "1991", "1992"], "year", None)  # plain numbers step by their usual difference
    assert years.label(4) == "1994"
    hours = TimeAxis(["2024-03-01 22:00:00", "2024-03-01 23:00:00"], "ts", None)
    assert hours.label(2) == "2024-03-02 00:00:00"


# --- every bad input: one clear InputError each ---------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"data.path=.*nope.csv.*an existing CSV file"):
        module(str(tmp_path / "nope.csv"))


def test_missing_column_lists_the_columns(tmp_path):
    with pytest.raises(InputError, match=r"data.target='Temp'.*which has \['date', 'y', 'cov', 'kind'\]"):
        module(counting_csv(tmp_path), target="Temp")
    with pytest.raises(InputError, match=r"data.covariates='humidity'"):
        module(counting_csv(tmp_path), covariates=["humidity"])


def test_non_numeric_value_names_its_row(tmp_path):
    rows = [[t] for t in range(20)]
    rows[6] = ["12,5 kg"]
    with pytest.raises(InputError, match=r"column 'y' has the non-numeric value '12,5 kg' in data row 7"):
        module(write_csv(tmp_path / "n.csv", ["y"], rows))


@pytest.mark.parametrize(
    "value, match",
    [("2024-01-05", "'2024-01-05' in data row 6 is a duplicate of '2024-01-05' in data row 5"),
     ("2024-01-02", "'2024-01-02' in data row 6 is earlier than '2024-01-05' in data row 5")],
)  # fmt: skip
def test_time_column_not_increasing(tmp_path, value, match):
    rows = [[f"2024-01-{t + 1:02d}", t] for t in range(20)]
    rows[5][0] = value
    with pytest.raises(InputError, match=match):
        module(write_csv(tmp_path / "t.csv", ["date", "y"], rows), time_column="date")


def test_unparseable_time(tmp_path):
    rows = [[f"2024-01-{t + 1:02d}", t] for t in range(20)]
    rows[3][0] = "yesterday"
    with pytest.raises(InputError, match=r"'yesterday' in data row 4, which is not a time"):
        module(write_csv(tmp_path / "t.csv", ["date", "y"], rows), time_column="date")


def test_too_few_rows_for_window_and_horizon(tmp_path):
    with pytest.raises(InputError, match=r"window \+ horizon=13 .* the train span's 12 steps"):
        module(counting_csv(tmp_path), window=11, horizon=2)
    with pytest.raises(InputError, match=r"horizon=5 .* the val span.s 4 steps"):
        module(counting_csv(tmp_path), window=2, horizon=5, baselines=["persistence"])


def test_constant_target(tmp_path):
    path = write_csv(tmp_path / "c.csv", ["y", "x"], [[3.5, t] for t in range(20)])
    with pytest.raises(InputError, match=r"scaler='standard' cannot scale 'y': it is constant"):
        module(path, scaler="standard")


def test_baseline_history_and_bad_options(tmp_path):
    with pytest.raises(InputError, match=r"data.season=13 .* at most 12"):
        module(counting_csv(tmp_path), season=13)
    with pytest.raises(InputError, match=r"data.baselines"):
        TimeSeriesDataModule(path="x.csv", target="y", baselines=["prophet"])
    with pytest.raises(InputError, match=r"data.missing"):
        TimeSeriesDataModule(path="x.csv", target="y", missing="drop")
