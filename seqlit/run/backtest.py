"""``seqlit backtest``: a rolling-origin evaluation of a trained forecaster over its data's test span.

Every series is forecast from each of its last N origins in the test span (origin = the last observed step before a
forecast; each forecast covers the next H steps) in one batched pass over the test windows, and scored beside the
baselines the data module carries: MASE (scaled by each series' in-sample seasonal-naive error before its test span),
sMAPE and RMSE, per step ahead, per series and overall (:mod:`seqlit.data.forecasting.metrics`). The tables go to
``backtest_step.csv``, ``backtest_series.csv`` and ``backtest_overall.csv`` (and ``backtest_mase.png``) in ``--out``.
The data module is rebuilt from the checkpoint's own stored configuration, so the command needs nothing else.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from seqlit.errors import InputError, require, say


def data_module(ckpt: dict[str, Any], path: str) -> Any:
    """The checkpoint's data module, rebuilt from its stored class and arguments and set up for testing."""
    from seqlit.run.checkpoints import stored_config

    data = stored_config(ckpt).get("data")
    if not data:
        raise InputError(f"ckpt_path={path!r} stores no data module: it was not written by `seqlit fit`")
    module, _, name = data["class_path"].rpartition(".")
    dm = getattr(importlib.import_module(module), name)(**data["init_args"])
    require(hasattr(dm, "spec") and hasattr(dm, "test_dataloader"), "ckpt_path", path, "a forecaster's checkpoint")
    dm.setup("test")
    dm.load_state_dict(ckpt.get(type(dm).__qualname__) or {})  # the statistics the model was trained with
    return dm


def histories(dm: Any) -> tuple[list[np.ndarray], list[str]]:
    """Each series' targets before its test span (the MASE denominator's in-sample data), and the series' names."""
    if hasattr(dm, "panel"):  # many series, each split on its own
        return [s.values[: dm.spans(len(s.values))["test"][0]] for s in dm.panel], [s.name for s in dm.panel]
    return [dm.series[: dm.bounds["test"][0], : dm.num_targets]], ["series"]


def backtest(ckpt_path: str, origins: int | None, season: int | None) -> dict[str, Any]:
    """Score the checkpoint at ``origins`` origins per series (all the test span holds when None)."""
    from seqlit.inference import load_task
    from seqlit.run.checkpoints import load_checkpoint

    dm = data_module(load_checkpoint(ckpt_path), ckpt_path)
    return evaluate(load_task(ckpt_path), dm, origins, season)


@torch.no_grad()
def evaluate(task: Any, dm: Any, origins: int | None, season: int | None) -> dict[str, Any]:
    """Score a forecaster on a set-up data module's test windows: the last ``origins`` per series (all when None),
    MASE with season ``season`` (the data's when None). Returns the tables and the settings they were made with."""
    from seqlit.data.forecasting.metrics import score_table, seasonal_scale

    task.eval()
    found: dict[str, list] = {"pred": [], "y": [], "refs": [], "series": [], "position": []}
    for batch in dm.test_dataloader():  # one pass over every test window of every series
        pred, _ = task.point_and_quantiles(task(batch["x"]))  # (B, H, K) scaled
        found["pred"].append(task.unscale(pred, batch))
        found["y"].append(task.unscale(batch["y"], batch))
        found["refs"].append(task.baseline_forecasts(batch))  # (B, NB, H, K) data units
        found["series"].append(batch.get("series", torch.zeros_like(batch["position"])))
        found["position"].append(batch["position"])
    cat = {k: torch.cat(v).numpy() for k, v in found.items()}
    series, position = cat["series"], cat["position"]
    available = min(int((series == s).sum()) for s in np.unique(series))
    n = available if origins is None else origins
    require(1 <= n <= available, "--origins", origins, f"1 to {available}, the forecasts every series' test span holds")
    keep = np.zeros(len(series), bool)
    for s in np.unique(series):  # each series' last n origins
        rows = np.flatnonzero(series == s)
        keep[rows[np.argsort(position[rows])[-n:]]] = True
    history, names = histories(dm)
    m = season or dm.hparams.get("season", 1)
    scales = np.stack([seasonal_scale(h, m) for h in history])  # (S, K)
    forecasts = {"model": cat["pred"][keep]}
    baselines = dm.baseline_names or ["persistence"]  # the task computes persistence when the data gives none
    forecasts.update({b: cat["refs"][keep][:, i] for i, b in enumerate(baselines)})
    tables = score_table(cat["y"][keep], forecasts, series[keep], scales[series[keep]], names)
    return {"tables": tables, "origins": n, "season": m, "horizon": cat["y"].shape[1]}


def write(result: dict[str, Any], out: Path) -> list[Path]:
    """The tables as CSV files (and the MASE per step ahead as a figure) in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, table in result["tables"].items():
        paths.append(out / f"backtest_{name}.csv")
        table.to_csv(paths[-1], index=False, float_format="%.6g")
    import matplotlib

    matplotlib.use("Agg")  # no display on servers; must precede pyplot
    import matplotlib.pyplot as plt

    step = result["tables"]["step"]
    fig, ax = plt.subplots(figsize=(7, 4))
    for col in (c for c in step if c.endswith("_mase")):
        ax.plot(step["step"], step[col], "o-", label=col.removesuffix("_mase"), markersize=3)
    ax.set(xlabel="step ahead", ylabel=f"MASE (m={result['season']})", title=f"{result['origins']} origins per series")
    ax.legend(fontsize="small")
    fig.savefig(out / "backtest_mase.png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return [*paths, out / "backtest_mase.png"]


def main(argv: list[str] | None = None) -> None:
    """``seqlit backtest --ckpt_path PATH [--origins N] [--season M] [--out DIR]``."""
    parser = argparse.ArgumentParser(prog="seqlit backtest", description="Rolling-origin evaluation of a checkpoint.")
    parser.add_argument("--ckpt_path", required=True, help="a forecaster's .ckpt file")
    parser.add_argument("--origins", type=int, default=None, help="origins per series (default: all)")
    parser.add_argument("--season", type=int, default=None, help="MASE season m (default: the data's season)")
    parser.add_argument("--out", default=None, help="folder for the tables (default: backtest/ beside the run)")
    args = parser.parse_args(argv)
    try:
        require(Path(args.ckpt_path).is_file(), "--ckpt_path", args.ckpt_path, "an existing checkpoint file")
        result = backtest(args.ckpt_path, args.origins, args.season)
    except InputError as err:  # nothing written: every check runs before the first file
        print(f"seqlit backtest: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    ckpt = Path(args.ckpt_path)
    out = Path(args.out) if args.out else ckpt.parent.parent / "backtest"  # run/checkpoints/x.ckpt → run/backtest
    paths = write(result, out)
    overall = result["tables"]["overall"].T.to_string(header=False, float_format=lambda v: f"{v:.4g}")
    say(f"{result['origins']} origins x {result['horizon']} steps per series; MASE with m={result['season']}\n"
        f"{overall}\nwritten: {paths[0].parent}")  # fmt: skip
