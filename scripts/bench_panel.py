"""Benchmark one global recurrent forecaster on the US employment panel (148 monthly series) against naive baselines.

The protocol of the published reference (Hyndman & Athanasopoulos, *Forecasting: Principles and Practice*, 3rd ed.):
the last 24 months of every series are held out; 12-month forecasts are made from each of the 13 origins in them; MASE
with m = 12 (each series scaled by its in-sample seasonal-naive error before the held-out months) is averaged over
series and origins, on the 147 series without internal gaps. Reference MASE: seasonal naive 0.816, naive 1.030,
AutoETS 0.439. The file is long: ``Month`` (``1939 Jan``), ``Series_ID``, ``Title``, ``Employed``; series start at
different months (empty values before), which the panel data module takes as leading gaps. One model is trained on
every series (each window measured from its last value relative to its mean level, ``data.local_scaling: mean``; the
month as a calendar feature; the settings of ``configs/us_employment_gru.yaml``), with a wall-clock budget, then
scored by :func:`seqlit.run.backtest.evaluate`, the code behind ``seqlit backtest``.

    python scripts/bench_panel.py --csv data/us_employment/us_employment.csv
    python scripts/bench_panel.py --csv data/us_employment/us_employment.csv --local-scaling none --epochs 10
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from seqlit.data import PanelDataModule
from seqlit.run.backtest import evaluate
from seqlit.tasks import Forecaster

REFERENCE = {"seasonal_naive": 0.816, "naive": 1.030, "AutoETS (fable)": 0.439}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", default="data/us_employment/us_employment.csv", help="the long-format CSV")
    p.add_argument("--minutes", type=float, default=15.0, help="training budget (wall clock)")
    p.add_argument("--epochs", type=int, default=30, help="at most this many epochs (the cosine schedule's length)")
    p.add_argument("--window", type=int, default=36, help="months the model sees")
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--cell", default="gru")
    p.add_argument("--loss", default="mae")
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--stride", type=int, default=1, help="step between training windows")
    p.add_argument("--local-scaling", default="mean", choices=["none", "last", "mean"], help="data.local_scaling")
    p.add_argument("--highway", type=int, default=0, help="model.highway: a linear map of the last N values")
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--scheduler", default="cosine", help="model.scheduler")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared CPU; more oversubscribe it)")
    return p.parse_args()


def gapped_series(path: str) -> set[str]:
    """Series with an empty value after their first one (internal or trailing gaps): left out of the score."""
    frame = pd.read_csv(path)
    gapped = set()
    for name, group in frame.groupby("Series_ID", sort=False):
        values = group["Employed"].to_numpy(float)
        if np.isnan(values[np.flatnonzero(~np.isnan(values))[0] :]).any():
            gapped.add(str(name))
    return gapped


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)
    dm = PanelDataModule(path=args.csv, target="Employed", series_id="Series_ID", time_column="Month",
                         calendar=["month"], missing="interpolate", season=12, window=args.window, horizon=12,
                         val_size=12, test_size=24, stride=args.stride, batch_size=args.batch_size,
                         local_scaling=args.local_scaling, seed=args.seed)  # fmt: skip
    start = time.perf_counter()
    dm.setup("fit")
    setup_s = time.perf_counter() - start
    model = Forecaster(cell=args.cell, hidden_size=args.hidden, num_layers=args.layers, highway=args.highway,
                       loss=args.loss, lr=args.lr, scheduler=args.scheduler)  # fmt: skip
    best = ModelCheckpoint(monitor="val/loss", save_top_k=1, dirpath=None)
    trainer = L.Trainer(max_epochs=args.epochs, max_time={"minutes": args.minutes}, logger=False,
                        callbacks=[best], enable_progress_bar=False, enable_model_summary=False,
                        gradient_clip_val=1.0, default_root_dir="/tmp/seqlit_bench_panel")  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, dm)
    train_s = time.perf_counter() - start
    model = Forecaster.load_from_checkpoint(best.best_model_path, weights_only=True)  # the best epoch by val/loss
    result = evaluate(model, dm, origins=13, season=12)
    per_series = result["tables"]["series"]
    scored = per_series[~per_series["series"].isin(gapped_series(args.csv))]
    print(f"\n{len(dm.panel)} series ({len(dm.skipped)} skipped), {len(dm.datasets['train'])} training windows; "
          f"setup {setup_s:.1f} s, training {train_s:.0f} s ({trainer.current_epoch} epochs, best "
          f"{Path(best.best_model_path).name}); scored on {len(scored)} series x 13 origins x 12 months\n")  # fmt: skip
    print("| forecast | MASE (m=12) | reference |\n|---|---|---|")
    for name in ("model", "seasonal_naive", "naive"):
        print(f"| {name} | {scored[f'{name}_mase'].mean():.3f} | {REFERENCE.get(name, '')} |")
    print(f"| AutoETS (fable) | | {REFERENCE['AutoETS (fable)']} |")


if __name__ == "__main__":
    main()
