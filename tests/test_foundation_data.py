"""Exact-value tests of the shared windowing path and of the sine data module."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from seqlit.data import SineDataModule
from seqlit.data.forecasting.base import ForecastSpec
from seqlit.data.forecasting.windows import Scaler, sliding_windows, split_by_size
from seqlit.errors import InputError


def test_sliding_windows_exact_values():
    values = np.arange(10, dtype=np.float32)[:, None]
    x, y, pos = sliding_windows(values, window=3, horizon=2, num_targets=1)
    assert x.shape == (6, 3, 1) and y.shape == (6, 2, 1)
    assert x[0, :, 0].tolist() == [0, 1, 2] and y[0, :, 0].tolist() == [3, 4]
    assert x[-1, :, 0].tolist() == [5, 6, 7] and y[-1, :, 0].tolist() == [8, 9]
    assert pos.tolist() == [3, 4, 5, 6, 7, 8]


def test_sliding_windows_stride_and_targets_are_leading_columns():
    values = np.stack([np.arange(8), 100 + np.arange(8)], axis=1).astype(np.float32)
    x, y, pos = sliding_windows(values, window=2, horizon=1, num_targets=1, stride=3)
    assert pos.tolist() == [2, 5]
    assert x[1].tolist() == [[3, 103], [4, 104]]
    assert y[1].tolist() == [[5]]  # only the target column


def test_sliding_windows_too_short_gives_empty():
    x, y, pos = sliding_windows(np.zeros((3, 1), np.float32), window=3, horizon=1, num_targets=1)
    assert len(x) == len(y) == len(pos) == 0


def test_split_bounds_counts_and_fractions():
    assert split_by_size(1000, 100, 200) == {"train": (0, 700), "val": (700, 800), "test": (800, 1000)}
    assert split_by_size(100, 0.1, 0.2) == {"train": (0, 70), "val": (70, 80), "test": (80, 100)}
    assert split_by_size(10, 0, 2) == {"train": (0, 8), "val": (8, 8), "test": (8, 10)}


def test_sine_defaults_reproduce_the_tutorial():
    dm = SineDataModule()
    dm.setup("fit")
    t = np.arange(1000)
    noise = dm.series[:, 0] - np.sin(0.02 * t)
    assert dm.series.shape == (1000, 1)
    assert noise.min() >= 0 and noise.max() < 2  # 2 · U[0, 1)
    assert dm.bounds["test"] == (800, 1000)  # the tutorial's last 200 points
    assert dm.bounds["train"][0] == 0 and dm.bounds["val"][1] == 800  # its first 800, validation carved from the end
    assert len(dm.datasets["test"]) == 200 - 3  # windows of 3 inside the test span, as the tutorial's create_labels
    assert dm.spec().noise_floor == pytest.approx(1 / 3)
    batch = next(iter(dm.train_dataloader()))
    assert batch["x"].shape == (32, 3, 1) and batch["y"].shape == (32, 1, 1)


def test_no_window_straddles_two_spans():
    dm = SineDataModule(length=300, val_size=50, test_size=60, window=7, horizon=3)
    dm.setup("fit")
    for span in ("train", "val", "test"):
        start, end = dm.bounds[span]
        pos = dm.datasets[span].tensors["position"]
        assert (pos - 7 >= start).all() and (pos + 3 <= end).all(), span
        # each window's values are exactly the series' values at those steps
        x = dm.datasets[span].tensors["x"][:, :, 0]
        expected = torch.stack([torch.from_numpy(dm.series[p - 7 : p, 0]).float() for p in pos.tolist()])
        torch.testing.assert_close(x, expected)


def test_scaler_is_fit_on_the_training_span_only():
    # a series whose test span is wildly different: any leakage would move the fitted statistics
    dm = SineDataModule(length=400, val_size=50, test_size=100, noise=0.0, scaler="standard", window=5)
    dm.setup("fit")
    train = dm.series[:250, 0]
    assert dm.scaler.shift[0] == pytest.approx(train.mean())
    assert dm.scaler.scale[0] == pytest.approx(train.std())
    full = dm.series[:, 0]
    assert dm.scaler.shift[0] != pytest.approx(full.mean())


def test_scaler_kinds_and_constant_column():
    v = np.array([[1.0, 5.0], [3.0, 5.0]])
    s = Scaler("minmax").fit(v[:, :1])
    assert s.transform(v[:, :1]).ravel().tolist() == [0.0, 1.0]
    with pytest.raises(InputError, match="constant"):
        Scaler("standard").fit(v, names=["a", "b"])


def test_seed_makes_the_series_deterministic():
    a, b, c = SineDataModule(seed=3), SineDataModule(seed=3), SineDataModule(seed=4)
    for dm in (a, b, c):
        dm.setup("fit")
    assert np.array_equal(a.series, b.series) and not np.array_equal(a.series, c.series)


def test_predict_set_is_test_windows_plus_the_future():
    dm = SineDataModule(window=5, horizon=2)
    dm.setup("predict")
    pos = dm.datasets["predict"].tensors["position"]
    assert pos[-1].item() == 1000 and torch.isnan(dm.datasets["predict"].tensors["y"][-1]).all()
    assert len(pos) == len(dm.datasets["test"]) + 1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(window=250), "window \\+ horizon"),
        (dict(horizon=199, window=3), "window \\+ horizon"),
        (dict(val_size=500, test_size=500), "val_size \\+ test_size"),
        (dict(test_size=1.5), "test_size"),
        (dict(val_size=0), "val span's 0 steps"),
        (dict(test_size=0), "test span's 0 steps"),
    ],
)
def test_bad_spans_fail_clearly(kwargs, match):
    dm = SineDataModule(**kwargs)
    with pytest.raises(InputError, match=match):
        dm.setup("fit")


def test_non_finite_series_fails_clearly():
    class Broken(SineDataModule):
        def load_series(self):
            values, names, k = super().load_series()
            values[17, 0] = np.nan
            return values, names, k

    with pytest.raises(InputError, match="non-finite value.*step 17"):
        Broken().setup("fit")


@pytest.mark.parametrize("kwargs", [dict(window=0), dict(horizon=0), dict(batch_size=0), dict(noise=-1.0)])
def test_bad_arguments_fail_at_construction(kwargs):
    with pytest.raises(InputError):
        SineDataModule(**kwargs)


def test_sine_spec_is_a_forecast_record():
    dm = SineDataModule(window=5, horizon=2, scaler="standard")
    dm.setup("fit")
    spec = dm.spec()
    assert isinstance(spec, ForecastSpec)
    assert (spec.input_size, spec.horizon, spec.window, spec.num_targets) == (1, 2, 5, 1)
    assert spec.target_names == ["x"] and spec.baseline_names == [] and spec.target_transform == "none"
    train = dm.series[slice(*dm.bounds["train"]), 0]  # the scaler is fit on the training span alone
    assert spec.target_shift == pytest.approx([train.mean()]) and spec.target_scale == pytest.approx([train.std()])
    assert spec.noise_floor == pytest.approx(1 / 3)
