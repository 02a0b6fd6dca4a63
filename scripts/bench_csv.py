"""Benchmark a recurrent forecaster against persistence, seasonal naive and linear AR on any CSV series.

The model and data settings come from a seqlit YAML config (``configs/csv_sunspots.yaml`` by default); the file, the
target and a few settings come from the command line. For each seed it trains (best epoch by ``val/loss``), tests on
the last ``--test-size`` of the series, and prints a Markdown table of RMSE one step ahead and ``horizon`` steps ahead
(the last value of each H-step forecast), in the data's units, for the model and every baseline on exactly the same
test windows, plus the empirical coverage of the model's prediction interval. Single-threaded on purpose: the numbers
are for a shared CPU.

    python scripts/bench_csv.py --csv data/sunspots/monthly-sunspots.csv --target Sunspots --time-column Month \\
        --season 132 --seeds 0 1 2
    python scripts/bench_csv.py --csv my.csv --target Temp --quick      # a smoke run in seconds
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

from seqlit.data import TimeSeriesDataModule
from seqlit.data.forecasting import baselines as bl
from seqlit.tasks import Forecaster

REPO = Path(__file__).resolve().parents[1]


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", required=True, help="CSV file, one row per time step")
    p.add_argument("--target", required=True, help="column to forecast")
    p.add_argument("--time-column", default=None)
    p.add_argument("--config", default=str(REPO / "configs" / "csv_sunspots.yaml"), help="model and data settings")
    p.add_argument("--season", type=int, default=None, help="season of the seasonal-naive baseline (steps)")
    p.add_argument("--ar-order", type=int, default=None, help="lags of the AR baseline")
    p.add_argument(
        "--extra-ar",
        type=int,
        nargs="*",
        default=[],
        metavar="ORDER",
        help="more AR baselines (these lag counts), fit and scored the same way, as extra rows",
    )
    p.add_argument("--test-size", type=float, default=0.2, help="fraction of the series at its end kept for test")
    p.add_argument("--epochs", type=int, default=None, help="override trainer.max_epochs")
    p.add_argument("--seeds", type=int, nargs="+", default=[0])
    p.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override model/data init args, e.g. model.hidden_size=32",
    )
    p.add_argument("--quick", action="store_true", help="tiny settings to check the script end to end")
    return p.parse_args()


def rmse(pred: np.ndarray, truth: np.ndarray) -> float:
    return float(np.sqrt(np.mean((pred - truth) ** 2)))


def coverage_of(q: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Share of targets inside [lowest, highest quantile] at step 1, at step H and over all steps."""
    inside = (truth >= q[..., 0]) & (truth <= q[..., -1])
    return {"coverage@1": inside[:, 0].mean(), "coverage@H": inside[:, -1].mean(), "coverage": inside.mean()}


def run(args: argparse.Namespace, config: dict, seed: int) -> dict[str, float]:
    """Train one seed; RMSE at step 1 and H for the model and each baseline, and the interval's coverage."""
    L.seed_everything(seed, verbose=False)
    data_args = {**config["data"]["init_args"], "path": args.csv, "target": args.target, "test_size": args.test_size}
    data_args["time_column"] = args.time_column
    data_args.update({k: v for k, v in (("season", args.season), ("ar_order", args.ar_order)) if v is not None})
    model_args = dict(config["model"]["init_args"])
    for item in args.set:
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        ({"model": model_args, "data": data_args}[section])[name] = yaml.safe_load(value)
    epochs = args.epochs or config.get("trainer", {}).get("max_epochs", 50)
    if args.quick:
        data_args.update(window=min(data_args.get("window", 24), 24))
        model_args.update(hidden_size=8)
        epochs = 2
    dm = TimeSeriesDataModule(**data_args)
    model = Forecaster(**model_args)
    with tempfile.TemporaryDirectory() as tmp:
        ckpt = ModelCheckpoint(dirpath=tmp, monitor="val/loss", mode="min", save_top_k=1)
        trainer = L.Trainer(
            max_epochs=epochs, logger=False, callbacks=[ckpt], enable_progress_bar=False, enable_model_summary=False,
            gradient_clip_val=config.get("trainer", {}).get("gradient_clip_val", 1.0), default_root_dir=tmp,
        )  # fmt: skip
        start = time.process_time()
        trainer.fit(model, dm)
        seconds = time.process_time() - start
        trainer.test(model, dm, ckpt_path="best", verbose=False)
    rec = model.test_records
    pred = torch.cat([r["pred"][..., 0] for r in rec]).numpy()  # (M, H)
    truth = torch.cat([r["y"][..., 0] for r in rec]).numpy()
    refs = torch.cat([r["baselines"][..., 0] for r in rec]).numpy()  # (M, NB, H)
    out = {"model@1": rmse(pred[:, 0], truth[:, 0]), "model@H": rmse(pred[:, -1], truth[:, -1]), "cpu_s": seconds}
    for i, name in enumerate(model.baseline_names):
        name = f"ar({dm.hparams.ar_order})" if name == "ar" else name
        out[f"{name}@1"], out[f"{name}@H"] = rmse(refs[:, i, 0], truth[:, 0]), rmse(refs[:, i, -1], truth[:, -1])
    positions = torch.cat([r["position"] for r in rec]).numpy()
    series, (start, end) = dm.series[:, :1], dm.bounds["train"]
    for order in args.extra_ar:  # the data module's AR baseline with another order, on the same windows
        coef = bl.fit_direct_ar(series[start:end], order, pred.shape[1])
        forecast = bl.direct_ar(series, positions, coef)[..., 0]  # (M, H)
        out[f"ar({order})@1"], out[f"ar({order})@H"] = (
            rmse(forecast[:, 0], truth[:, 0]),
            rmse(forecast[:, -1], truth[:, -1]),
        )
    out["arrays"] = {"pred": pred, "truth": truth}  # kept for the ensemble of seeds
    if "quantiles" in rec[0]:
        q = torch.cat([r["quantiles"][..., 0, :] for r in rec]).numpy()  # (M, H, Q)
        out.update(coverage_of(q, truth))
        out["nominal"] = model.levels[-1].item() - model.levels[0].item()
        out["arrays"]["q"] = q
    out["windows"], out["horizon"] = len(pred), pred.shape[1]
    hp = model.hparams
    out["label"] = f"{hp.cell.upper()} {hp.hidden_size}" + (f" + highway {hp.highway}" if hp.highway else "")
    out["label"] += f", {hp.loss} loss, window {dm.hparams.window}"
    return out


def main() -> None:
    args = parse_args()
    torch.set_num_threads(1)  # a shared CPU: one core per benchmark
    config = yaml.safe_load(Path(args.config).read_text())
    results = [run(args, config, seed) for seed in args.seeds]
    h = results[0]["horizon"]
    names = [k[:-2] for k in results[0] if k.endswith("@1") and not k.startswith(("model", "coverage"))]
    print(f"\n{args.csv}: target {args.target!r}, last {args.test_size:.0%} as test ({results[0]['windows']} windows), "
          f"config {Path(args.config).name}, seeds {args.seeds}\n")  # fmt: skip
    print(f"| forecaster | RMSE 1 step ahead | RMSE {h} steps ahead |")
    print("|---|---|---|")
    m1, mh = np.array([r["model@1"] for r in results]), np.array([r["model@H"] for r in results])
    spread = lambda v: f" ± {v.std():.2f}" if len(v) > 1 else ""  # noqa: E731
    cell = results[0]["label"]
    print(f"| {cell} (mean of {len(results)} seeds) | {m1.mean():.2f}{spread(m1)} | {mh.mean():.2f}{spread(mh)} |")
    ensemble = None
    if len(results) > 1:  # the seeds' forecasts averaged (quantiles level by level): one more honest config
        truth = results[0]["arrays"]["truth"]
        pred = np.mean([r["arrays"]["pred"] for r in results], axis=0)
        print(f"| {cell} (ensemble of {len(results)} seeds) | {rmse(pred[:, 0], truth[:, 0]):.2f} | "
              f"{rmse(pred[:, -1], truth[:, -1]):.2f} |")  # fmt: skip
        if "q" in results[0]["arrays"]:
            ensemble = coverage_of(np.mean([r["arrays"]["q"] for r in results], axis=0), truth)
    for name in names:
        print(f"| {name} | {results[0][name + '@1']:.2f} | {results[0][name + '@H']:.2f} |")
    if "coverage" in results[0]:
        nominal = results[0]["nominal"]
        cov = {k: np.mean([r[k] for r in results]) for k in ("coverage@1", "coverage@H", "coverage")}
        for label, c in (("single seeds, mean", cov), (f"ensemble of {len(results)}", ensemble)):
            if c is not None:
                print(f"\nInterval coverage, {label} (nominal {nominal:.0%}): {c['coverage@1']:.1%} at 1 step, "
                      f"{c['coverage@H']:.1%} at {h} steps, {c['coverage']:.1%} over all steps")  # fmt: skip
    per_seed = ", ".join(f"{r['model@1']:.2f}/{r['model@H']:.2f}" for r in results)
    cpu = sum(r["cpu_s"] for r in results)
    print(f"\nPer seed (1 step / {h} steps): {per_seed}. Training CPU time: {cpu:.0f} s in all.")


if __name__ == "__main__":
    main()
