"""Forecaster pieces for CSV series: pinball loss and coverage by hand, quantile outputs, baselines logged beside it."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import lightning as L
import pytest
import torch
import yaml
from lightning.pytorch.loggers import CSVLogger

from seqlit.data import SineDataModule, TimeSeriesDataModule
from seqlit.errors import InputError
from seqlit.models.forecast_intervals import fit_highway, interval_coverage, pinball_loss
from seqlit.models.forecaster import ForecastNet
from seqlit.tasks import Forecaster
from seqlit.tasks.base import data_spec, settle_sizes


def test_pinball_loss_by_hand():
    levels = torch.tensor([0.1, 0.9])
    # target 1: the 0.1-quantile at 0 is under by 1 (costs 0.1), the 0.9-quantile at 2 is over by 1 (costs 0.1)
    assert pinball_loss(torch.tensor([[0.0, 2.0]]), torch.tensor([1.0]), levels).item() == pytest.approx(0.1)
    # target 3: 0.1 · 3 and 0.9 · 1 → mean 0.6
    assert pinball_loss(torch.tensor([[0.0, 2.0]]), torch.tensor([3.0]), levels).item() == pytest.approx(0.6)
    # at level 0.5 it is half the absolute error
    pred, y = torch.randn(7, 1), torch.randn(7)
    assert pinball_loss(pred, y, torch.tensor([0.5])).item() == pytest.approx(
        0.5 * (pred[:, 0] - y).abs().mean().item()
    )


def test_interval_coverage_by_hand():
    lower, upper = torch.tensor([0.0, 0.0, 0.0, 0.0]), torch.tensor([1.0, 1.0, 1.0, 1.0])
    assert interval_coverage(lower, upper, torch.tensor([0.0, 0.5, 1.0, 1.5])).item() == 0.75  # bounds count as inside


def test_quantile_outputs_sorted_point_is_median_and_highway_shapes():
    task = Forecaster(cell="gru", hidden_size=4, loss="quantile", quantiles=[0.1, 0.5, 0.9], input_size=2, horizon=3,
                      num_targets=1, highway=5)  # fmt: skip
    out = task(torch.randn(6, 8, 2))
    assert out.shape == (6, 3, 1, 3)
    point, q = task.point_and_quantiles(torch.tensor([[[[3.0, 1.0, 2.0]]]]))
    assert q[0, 0, 0].tolist() == [1.0, 2.0, 3.0] and point.item() == 2.0
    assert ForecastNet(input_size=2, horizon=3, hidden_size=4, cell="gru", highway=5)(torch.randn(6, 8, 2)).shape == (
        6,
        3,
        1,
    )
    with pytest.raises(InputError, match="model.quantiles"):
        Forecaster(loss="quantile", quantiles=[0.9, 0.1])
    # mse+quantile: output 0 is a separate mean forecast, the rest are the quantiles
    both = Forecaster(cell="gru", hidden_size=4, loss="mse+quantile", quantiles=[0.1, 0.9], input_size=1, horizon=2,
                      num_targets=1)  # fmt: skip
    assert both(torch.randn(3, 5, 1)).shape == (3, 2, 1, 3)
    point, q = both.point_and_quantiles(torch.tensor([[[[7.0, 9.0, 1.0]]]]))
    assert point.item() == 7.0 and q[0, 0, 0].tolist() == [1.0, 9.0]


def test_least_squares_highway_starts_as_the_linear_ar_fit():
    g = torch.Generator().manual_seed(0)
    # y[t+h] = 0.6 y[t-1] - 0.3 y[t-2] + 0.5 + noise: the fit must recover the map and the residual quantiles
    x = torch.randn(4000, 10, 2, generator=g)
    noise = 0.1 * torch.randn(4000, 2, generator=g)
    y = (0.6 * x[:, -1, 0] - 0.3 * x[:, -2, 0] + 0.5)[:, None] + noise  # (M, H=2)
    net = ForecastNet(input_size=2, horizon=2, num_outputs=3, hidden_size=4, cell="gru", highway=3)
    rmse = fit_highway(net, x, y[..., None], [0.1, 0.5, 0.9])
    assert rmse.tolist() == pytest.approx([0.1, 0.1], abs=0.01)
    w = net.highway.weight.view(2, 3, 3)  # (step, output, lag): oldest lag first
    assert torch.allclose(w, torch.tensor([0.0, -0.3, 0.6]).expand(2, 3, 3), atol=0.01)
    assert net.head.weight.abs().sum() == 0 and net.head.bias.abs().sum() == 0
    out = net(x)  # (M, H, 1, Q): the recurrent part adds nothing yet
    below = (y[..., None] < out[:, :, 0]).float().mean((0, 1))
    assert below.tolist() == pytest.approx([0.1, 0.5, 0.9], abs=0.01)
    with pytest.raises(InputError, match="model.highway_init"):
        Forecaster(highway_init="least_squares")  # no highway to fit


def test_baselines_and_coverage_logged_beside_the_model(tmp_path):
    path = tmp_path / "s.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["y"]] + [[(t * 7) % 11 + 0.1 * t] for t in range(120)])
    dm = TimeSeriesDataModule(path=str(path), target="y", window=8, horizon=3, season=11, ar_order=4, batch_size=32)
    task = Forecaster(cell="gru", hidden_size=4, loss="quantile", quantiles=[0.1, 0.5, 0.9], calibrate=True)
    logger = CSVLogger(tmp_path)  # the run folder the figure goes to
    trainer = L.Trainer(max_epochs=1, logger=logger, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, dm)
    m = trainer.test(task, dm, verbose=False)[0]
    for name in ("", "persistence_", "seasonal_naive_", "ar_"):
        for metric in ("mse", "rmse", "mae", "smape"):
            assert f"test/{name}{metric}" in m
    assert m["test/rmse"] == pytest.approx(m["test/mse"] ** 0.5, rel=1e-4)
    assert 0.0 <= m["test/coverage"] <= 1.0
    # calibrated on the validation span: there the interval covers at least its nominal 80%
    assert "interval_margin" in task.state_dict() and task.interval_margin.abs().sum() > 0
    assert trainer.validate(task, dm, verbose=False)[0]["val/coverage"] >= 0.8
    # the persistence baseline in the batch is the last value of each window, in data units
    rec = task.test_records[0]
    torch.testing.assert_close(
        rec["baselines"][:, 0, 0, 0], torch.from_numpy(dm.series[rec["position"] - 1, 0]).float()
    )
    assert (Path(logger.log_dir) / "forecast_test.png").is_file()


def test_least_squares_highway_starts_fit_at_the_data_ar_baseline(tmp_path):
    path = tmp_path / "s.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["y"]] + [[(t * 7) % 11 + 0.1 * t] for t in range(150)])
    # window = highway = ar_order: the network's training windows are exactly the AR baseline's fitting rows, and the
    # fit is the same in scaled units (the scaler is affine and the fit has an intercept)
    dm = TimeSeriesDataModule(path=str(path), target="y", window=4, horizon=3, season=11, ar_order=4, batch_size=16)
    task = Forecaster(cell="gru", hidden_size=4, highway=4, highway_init="least_squares", loss="mse")
    seen = {}

    class AtStart(L.Callback):
        def on_train_start(self, trainer, pl_module):
            val = dm.datasets["val"].tensors
            with torch.no_grad():
                seen["model"] = pl_module.unscale(pl_module(val["x"]))[..., 0]
            seen["ar"] = val["baselines"][:, dm.baseline_names.index("ar"), :, 0]
            trainer.should_stop = True  # only the starting point matters here

    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path, callbacks=[AtStart()])  # fmt: skip
    trainer.fit(task, dm)
    torch.testing.assert_close(seen["model"], seen["ar"], atol=1e-3, rtol=1e-4)


def test_lightning_weight_averaging_averages_the_network_built_from_the_data(tmp_path):
    from lightning.pytorch.callbacks import EMAWeightAveraging

    dm = SineDataModule(length=200, val_size=20, test_size=40)
    task = Forecaster(cell="gru", hidden_size=4)  # sizes come from the data: no network until setup
    ema = EMAWeightAveraging(decay=0.5)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path, callbacks=[ema])  # fmt: skip
    trainer.fit(task, dm)
    averaged = ema._average_model.module.state_dict()
    # the copy was taken after the network existed, and the checkpoint stores the averaged weights
    assert "net.head.weight" in averaged
    ckpt = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)
    assert torch.equal(ckpt["state_dict"]["net.head.weight"], averaged["net.head.weight"])


def test_without_a_logger_no_file_is_written_anywhere(tmp_path, monkeypatch):
    """No logger means no run folder: the figure and the predictions are not written, not even into the cwd."""
    monkeypatch.chdir(tmp_path)
    dm = SineDataModule(length=200, val_size=20, test_size=40)
    task = Forecaster(cell="gru", hidden_size=4)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path / "root")  # fmt: skip
    trainer.fit(task, dm)
    trainer.test(task, dm, verbose=False)
    trainer.predict(task, dm)
    assert task.test_records  # the figure had something to draw
    assert [p for p in tmp_path.rglob("*") if p.suffix in (".png", ".csv")] == []
    assert os.listdir(tmp_path) in ([], ["root"])


def test_sizes_filled_from_the_data_land_in_the_checkpoint_and_the_logged_hparams(tmp_path):
    dm = SineDataModule(length=200, val_size=20, test_size=40)
    task = Forecaster(cell="gru", hidden_size=4)
    assert not task.built  # sizes come from the data: no network until Lightning configures the model
    logger = CSVLogger(tmp_path)
    trainer = L.Trainer(max_epochs=1, logger=logger, enable_progress_bar=False, enable_model_summary=False,
                        default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, dm)
    spec = {"input_size": 1, "horizon": dm.spec().horizon, "num_targets": 1}
    hp = torch.load(trainer.checkpoint_callback.best_model_path, weights_only=True)["hyper_parameters"]
    assert {k: hp[k] for k in spec} == spec
    logged = yaml.safe_load((Path(logger.log_dir) / "hparams.yaml").read_text())
    assert {k: logged[k] for k in spec} == spec
    again = Forecaster.load_from_checkpoint(trainer.checkpoint_callback.best_model_path)
    assert again.built  # every size is in the checkpoint: built at once
    x = torch.randn(2, 8, 1)
    torch.testing.assert_close(again.eval()(x), task.eval()(x))
    with pytest.raises(InputError, match=r"model.horizon=7 is not allowed"):  # a size given by hand must agree
        L.Trainer(max_epochs=1, logger=False, enable_progress_bar=False).fit(
            Forecaster(cell="gru", hidden_size=4, horizon=7), dm
        )


def test_settle_sizes_fills_checks_and_names_what_is_missing():
    spec = {"input_size": 3, "horizon": 2}
    assert settle_sizes(given={"input_size": None, "horizon": 2}, spec=spec, required=("input_size", "horizon")) == {
        "input_size": 3
    }
    assert settle_sizes(given={}, spec={}, required=(), optional=("vocab",)) == {}  # optional: left empty
    with pytest.raises(InputError, match=r"model.horizon=5 is not allowed: 2, the data's value"):
        settle_sizes(given={"horizon": 5}, spec=spec, required=("horizon",))
    with pytest.raises(InputError, match=r"model.num_targets is empty and the data module does not provide it"):
        settle_sizes(given={}, spec=spec, required=("num_targets",))


def test_sine_keeps_its_metric_keys(tmp_path):
    dm = SineDataModule(length=200, val_size=20, test_size=40)
    task = Forecaster(cell="gru", hidden_size=4)
    trainer = L.Trainer(max_epochs=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, default_root_dir=tmp_path)  # fmt: skip
    trainer.fit(task, dm)
    m = trainer.test(task, dm, verbose=False)[0]
    assert {"test/mse", "test/persistence_mse", "test/noise_floor", "test/mse_vs_floor"} <= set(m)
    assert m["test/noise_floor"] == pytest.approx(1 / 3)


def test_sqrt_transform_is_undone_for_metrics_and_rejects_negatives(tmp_path):
    path = tmp_path / "counts.csv"
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([["n"]] + [[(t * 13) % 17] for t in range(60)])
    dm = TimeSeriesDataModule(path=str(path), target="n", window=4, horizon=2, transform="sqrt", ar_order=2, season=3)
    dm.setup("fit")
    task = Forecaster(cell="gru", hidden_size=4, input_size=1, horizon=2, num_targets=1, target_transform="sqrt")
    task.apply_spec(data_spec(dm))
    test = dm.datasets["test"].tensors
    expected = torch.from_numpy(dm.series[test["position"][:, None] + torch.arange(2), 0]).float()
    torch.testing.assert_close(task.unscale(test["y"])[..., 0], expected, atol=1e-4, rtol=1e-5)
    assert dm.spec().target_transform == "sqrt"
    with path.open("a", newline="") as f:
        f.write("-1\n")
    with pytest.raises(InputError, match=r"target_transform='sqrt' cannot take 'n': value -1 at step 60"):
        TimeSeriesDataModule(path=str(path), target="n", window=4, transform="sqrt").setup("fit")
