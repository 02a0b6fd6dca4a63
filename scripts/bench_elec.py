"""Benchmark a recurrent forecaster of half-hourly electricity demand one day ahead against seasonal naive forecasts.

The protocol of the published reference numbers: ``elecdemand.csv`` (columns ``Time``, ``Demand``, ``WorkDay``,
``Temperature``), the last 20 % as test, a 48-step (one day) forecast from every midnight in it (73 origins), RMSE
pooled over every forecast step, in GW. References: seasonal naive one week back 0.434, one day back 0.473, naive
(the last value) 0.638. The model and data settings come from ``configs/elec_gru.yaml``; ``WorkDay`` is a
known-future covariate (the model sees it for the day it forecasts), ``Temperature`` is not used (its future is not
known). The baselines are computed here from the raw series on exactly the model's origins.

    python scripts/bench_elec.py --csv data/elecdemand/elecdemand.csv --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import pandas as pd
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from seqlit.data import PanelDataModule
from seqlit.tasks import Forecaster

REPO = Path(__file__).resolve().parents[1]
REFERENCE = {"seasonal naive, one week back": 0.434, "seasonal naive, one day back": 0.473, "naive": 0.638}


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", default="data/elecdemand/elecdemand.csv", help="the half-hourly file")
    p.add_argument("--config", default=str(REPO / "configs" / "elec_gru.yaml"), help="model and data settings")
    p.add_argument("--epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: a shared CPU; more oversubscribe it)")
    p.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override model/data init args")
    return p.parse_args()


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def train(args: argparse.Namespace, config: dict, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """One seed: the test windows' first forecast positions (M,), forecasts and truth (M, H), training seconds."""
    L.seed_everything(seed, verbose=False)
    data_args = {**config["data"]["init_args"], "path": args.csv, "seed": seed}
    model_args = dict(config["model"]["init_args"])
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        ({"model": model_args, "data": data_args}[section])[name] = yaml.safe_load(value)
    dm, model = PanelDataModule(**data_args), Forecaster(**model_args)
    with tempfile.TemporaryDirectory() as tmp:
        best = ModelCheckpoint(dirpath=tmp, monitor="val/loss", mode="min", save_top_k=1)
        trainer = L.Trainer(
            max_epochs=args.epochs or config["trainer"]["max_epochs"], logger=False, callbacks=[best],
            enable_progress_bar=False, enable_model_summary=False, default_root_dir=tmp,
            gradient_clip_val=config["trainer"].get("gradient_clip_val", 1.0),
        )  # fmt: skip
        start = time.perf_counter()
        trainer.fit(model, dm)
        seconds = time.perf_counter() - start
        trainer.test(model, dm, ckpt_path="best", verbose=False)  # the best epoch by val/loss
    rec = model.test_records
    cat = {k: torch.cat([r[k] for r in rec]).numpy() for k in ("position", "pred", "y")}
    return cat["position"], cat["pred"][..., 0], cat["y"][..., 0], seconds


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    config = yaml.safe_load(Path(args.config).read_text())
    frame = pd.read_csv(args.csv)
    demand, times = frame["Demand"].to_numpy(float), pd.to_datetime(frame["Time"])
    runs = [train(args, config, seed) for seed in args.seeds]
    position, truth = runs[0][0], runs[0][2]
    midnight = np.flatnonzero((times.dt.hour.to_numpy()[position] == 0) & (times.dt.minute.to_numpy()[position] == 0))
    origins, H = position[midnight], truth.shape[1]
    ahead = origins[:, None] + np.arange(H)  # (73, 48) the steps forecast
    y = truth[midnight]
    assert np.allclose(y, demand[ahead], atol=1e-4)  # the model's windows are the file's rows
    refs = {"seasonal naive, one week back": demand[ahead - 336], "seasonal naive, one day back": demand[ahead - 48],
            "naive": demand[np.broadcast_to(origins[:, None] - 1, ahead.shape)]}  # fmt: skip
    scores = [rmse(r[1][midnight], y) for r in runs]
    ensemble = rmse(np.mean([r[1][midnight] for r in runs], axis=0), y)
    print(f"\n{args.csv}: {len(origins)} origins (every midnight from {frame['Time'][origins[0]]}), {H} steps each; "
          f"config {Path(args.config).name} {' '.join(args.set)}; training {np.mean([r[3] for r in runs]):.0f} s "
          f"per seed\n")  # fmt: skip
    print("| forecast | RMSE (GW) | reference |\n|---|---|---|")
    spread = f" ± {np.std(scores):.3f}" if len(scores) > 1 else ""
    print(f"| model (seeds {args.seeds}: mean) | {np.mean(scores):.3f}{spread} | |")
    if len(runs) > 1:
        print(f"| model (ensemble of {len(runs)} seeds) | {ensemble:.3f} | |")
    for name, pred in refs.items():
        print(f"| {name} | {rmse(pred, y):.3f} | {REFERENCE[name]} |")
    print("\nPer seed: " + ", ".join(f"{s:.3f}" for s in scores))


if __name__ == "__main__":
    main()
