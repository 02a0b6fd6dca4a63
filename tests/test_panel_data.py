"""Many series: exact windows that never cross series, leading gaps, per-series scaling, covariates, bad input."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch

from seqlit.data import PanelDataModule
from seqlit.data.forecasting.panel import panel_windows
from seqlit.errors import InputError


def write(path: Path, header: list[str], rows: list[list]) -> str:
    with path.open("w", newline="") as f:
        csv.writer(f).writerows([header, *rows])
    return str(path)


def long_csv(tmp_path: Path, lengths: dict[str, tuple[int, int]], total: int = 20, future: int = 0) -> str:
    """Series ``name: (start, n)``: value 1000*i + t at step t (empty before ``start``), promo = t, daily dates;
    ``future`` more rows with an empty target but a promo value."""
    rows = []
    for i, (name, (start, n)) in enumerate(lengths.items()):
        for t in range(min(total, start + n + future)):
            value = 1000 * (i + 1) + t if start <= t < start + n else ""
            rows.append([name, f"2024-{1 + t // 28:02d}-{1 + t % 28:02d}", value, t])
    return write(tmp_path / "panel.csv", ["store", "date", "sales", "promo"], rows)


def module(path: str, **kw) -> PanelDataModule:
    args = dict(path=path, target="sales", series_id="store", time_column="date", window=3, horizon=2, val_size=2,
                test_size=3, scaler="none", shuffle=False, season=2)  # fmt: skip
    dm = PanelDataModule(**{**args, **kw})
    dm.setup("fit")
    return dm


def test_windows_never_cross_series_and_leading_gaps_are_dropped(tmp_path):
    dm = module(long_csv(tmp_path, {"a": (0, 12), "b": (4, 10), "tiny": (0, 6)}))
    assert [s.name for s in dm.panel] == ["a", "b"] and dm.skipped == ["tiny"]
    train = dm.datasets["train"].tensors
    # a: 12 steps → train 7 (windows at p=3..5), b: 10 steps from t=4 → train 5 (p=3)
    assert train["series"].tolist() == [0, 0, 0, 1] and train["position"].tolist() == [3, 4, 5, 3]
    x, y = train["x"][..., 0], train["y"][..., 0]  # no covariates: the target only
    assert x.tolist()[-1] == [2004, 2005, 2006] and y.tolist()[-1] == [2007, 2008]  # b's first value is t=4
    assert x.tolist()[2] == [1002, 1003, 1004] and y.tolist()[2] == [1005, 1006]
    values = torch.cat([x, y], dim=1)
    assert ((values // 1000).amin(1) == (values // 1000).amax(1)).all()  # one series per window
    test = dm.datasets["test"].tensors
    assert test["position"].tolist() == [9, 10, 7, 8] and test["series"].tolist() == [0, 0, 1, 1]
    assert dm.time_labels(np.array([0, 10]), np.array([1, 1])) == ["2024-01-05", "2024-01-15"]


def test_per_series_scaling_round_trip_and_global_option(tmp_path):
    path = long_csv(tmp_path, {"a": (0, 12), "b": (0, 12)})
    dm = module(path, scaler="standard")
    t = dm.datasets["train"].tensors
    unscaled = t["y"] * t["scale"][:, None] + t["shift"][:, None]  # (B, H, K) back in data units
    pairs = zip(t["series"].tolist(), t["position"].tolist(), strict=True)
    raw = torch.tensor([[1000 * (s + 1) + p + h for h in range(2)] for s, p in pairs])
    assert torch.allclose(unscaled[..., 0], raw.float())
    train_a = np.arange(1000, 1007.0)  # a's training span: 7 steps
    assert dm.stats["shift"][0] == [pytest.approx(train_a.mean())] and dm.stats["scale"][0] == [pytest.approx(2.0)]
    assert dm.state_dict()["scaling"]["series"] == ["a", "b"]  # plain lists in the checkpoint
    assert dm.spec().target_shift == [0.0]  # per series: the batch carries the scale, the spec is neutral
    glob = module(path, scaler="standard", scaling="global")
    assert glob.stats["shift"][0] == glob.stats["shift"][1] == glob.spec().target_shift
    assert dm.scales_per_window and not glob.scales_per_window  # the task's note says which units its loss is in
    assert "baselines" not in module(path, baselines=[]).datasets["test"].tensors  # none: the task's persistence


def test_the_checkpoint_statistics_win_over_a_grown_file(tmp_path):
    trained = module(long_csv(tmp_path, {"a": (0, 12), "b": (0, 12)}), scaler="standard")
    state = trained.state_dict()
    (tmp_path / "later").mkdir()
    grown = module(long_csv(tmp_path / "later", {"b": (0, 16), "a": (0, 16), "new": (0, 14)}), scaler="standard")
    assert grown.stats["shift"][1] != state["scaling"]["shift"][0]  # a's training span grew with the file
    grown.load_state_dict(state)
    assert grown.stats["shift"][:2] == [state["scaling"]["shift"][1], state["scaling"]["shift"][0]]  # by name
    assert grown.stats["shift"][2] == [pytest.approx(3000 + np.arange(9).mean())]  # unknown series: its own
    t = grown.datasets["train"].tensors
    assert torch.allclose(t["shift"][t["series"] == 1][0], torch.tensor(state["scaling"]["shift"][0]).float())


@pytest.mark.parametrize("mode", ["last", "mean"])
def test_local_scaling_measures_each_window_from_its_last_value(tmp_path, mode):
    dm = module(long_csv(tmp_path, {"a": (0, 12)}), scaler="standard", local_scaling=mode)
    t = dm.datasets["train"].tensors  # series a: value 1000 + t; the window at p=3 reads 1000..1002
    series_std = float(np.arange(7.0).std())  # standard scaling of a's 7 training steps
    scale = {"last": series_std, "mean": 1001.0}[mode]  # mean: the window's mean absolute value
    assert t["shift"][0].tolist() == [1002.0] and t["scale"][0].item() == pytest.approx(scale)
    assert torch.allclose(t["x"][0, :, 0], torch.tensor([-2.0, -1.0, 0.0]) / scale)  # the origin's value is 0
    assert torch.allclose(t["y"][0, :, 0], torch.tensor([1.0, 2.0]) / scale)  # changes since the origin
    assert dm.scales_per_window
    assert module(dm.hparams.path, scaler="none", local_scaling=mode).scales_per_window  # local even unscaled
    predict = dm.datasets["predict"].tensors  # the future window: shift = the last observed value
    assert predict["shift"][-1].item() == 1011.0 and torch.isnan(predict["y"][-1]).all()


def test_future_covariates_sit_with_the_steps_they_belong_to():
    feats = np.arange(10.0)[:, None]  # (n, 1): value t at step t
    known = 100 + np.arange(12.0)[:, None]  # (n + H, 1): covariate of step t is 100 + t
    x = panel_windows(feats, known, np.array([3, 7]), window=3, horizon=2)  # (2, 3, 1 + 2)
    assert x[0, :, 0].tolist() == [0, 1, 2] and x[0, -1, 1:].tolist() == [103, 104]  # steps p, p+1 = 3, 4
    assert x[1, -1, 1:].tolist() == [107, 108] and (x[:, :-1, 1:] == 0).all()


def test_covariates_in_the_batch_match_the_forecast_steps(tmp_path):
    dm = module(long_csv(tmp_path, {"a": (0, 12)}), future_covariates=["promo"], calendar=["dayofweek"])
    t = dm.datasets["train"].tensors
    assert dm.spec().input_size == 1 + 3 * 3  # target + (promo, dow sin, cos) now and for both forecast steps
    assert t["x"][:, :, 1].tolist()[0] == [0, 1, 2]  # promo = t of each past step (scaler none)
    ahead = t["x"][:, -1, 4:].reshape(len(t["x"]), 2, 3)[..., 0]  # promo of the 2 forecast steps
    assert torch.equal(ahead, t["position"][:, None] + torch.arange(2).float())
    dow = t["x"][0, -1, 5:7]  # 2024-01-04 (step 3) is a Thursday: dayofweek 3
    assert torch.allclose(dow, torch.tensor([np.sin(2 * np.pi * 3 / 7), np.cos(2 * np.pi * 3 / 7)]).float())


def test_wide_file_series_of_different_lengths(tmp_path):
    rows = [[f"2024-01-{t + 1:02d}", t, 100 + t if t >= 3 else ""] for t in range(14)]
    dm = module(write(tmp_path / "w.csv", ["date", "a", "b"], rows), target=["a", "b"], series_id=None,
                wide_as_series=True)  # fmt: skip
    assert [len(s.values) for s in dm.panel] == [14, 11]  # b starts later: allowed, its empty cells are its gap
    assert dm.spec().num_targets == 1 and dm.datasets["test"].tensors["series"].unique().tolist() == [0, 1]


def test_predict_needs_the_future_covariates(tmp_path):
    dm = module(long_csv(tmp_path, {"a": (0, 12)}, future=2), future_covariates=["promo"])
    dm.setup("predict")  # two future rows give promo for both forecast steps
    last = dm.datasets["predict"].tensors
    assert last["position"][-1] == 12 and last["x"][-1, -1, 2:].tolist() == [12, 13]
    short = module(long_csv(tmp_path, {"a": (0, 12)}, future=1), future_covariates=["promo"])
    with pytest.raises(InputError, match=r"series 'a'.*needs \['promo'\] on those steps, and the file gives them on 1"):
        short.setup("predict")


@pytest.mark.parametrize(
    ("rows", "kw", "match"),
    [
        ([["a", "2024-01-01", 1]], {"series_id": "shop"}, r"data.series_id='shop'.*\['store', 'date', 'sales'\]"),
        ([["a", f"2024-01-{t + 1:02d}", t] for t in range(9)] + [["b", "2024-01-01", 5]], {},
         r"series 'b' has one value \(data row 10\)"),
        ([["a", "2024-01-01", 1], ["a", "2024-01-01", 2]], {},
         r"within series 'a': '2024-01-01' in data row 2 is a duplicate of '2024-01-01' in data row 1"),
        ([["a", "2024-01-01", 1], ["a", "yesterday", 2]], {}, r"'yesterday' in data row 2, which is not a time"),
        ([["a", "2024-01-01", 1], ["a", "2024-01-02", ""], ["a", "2024-01-03", 3]], {},
         r"series 'a' has 1 missing target values.*data row 2"),
        ([["a", 1, 1], ["a", 2, 2]], {"calendar": ["month"]}, r"data.calendar=\['month'\].*holds numbers"),
    ],
)  # fmt: skip
def test_bad_panels_are_one_line(tmp_path, rows, kw, match):
    with pytest.raises(InputError, match=match):
        module(write(tmp_path / "bad.csv", ["store", "date", "sales"], rows), **kw)
