"""Benchmark of the character-level language models on tiny Shakespeare: validation nats/char within a time budget.

Each run trains one config through the real CLI (in this process) for a fixed wall-clock budget (15 minutes by default,
the issue's goal) on the text's first 90%, validating on its last 10%. A short calibration first times a few training
steps of the very same model and batch, and sets ``max_steps`` so that the cosine learning-rate decay ends inside the
budget; ``max_time`` stops the run regardless. It prints a Markdown table (validation loss in nats/char and bits/char,
training characters and windows per second, steps, wall time) and one generated sample per run.

    python scripts/bench_charlm.py                      # the full benchmark: 3 runs x 15 minutes
    python scripts/bench_charlm.py --runs lstm-tbptt    # one of them
    python scripts/bench_charlm.py --estimate           # calibration only: step times and steps per budget
    python scripts/bench_charlm.py --quick              # tiny settings, about a minute: checks the script end to end

Run it on a quiet machine: other processes on the same cores slow every step and the budget buys fewer of them.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "shakespeare" / "input.txt"  # where `seqlit data get shakespeare` puts it

# name -> (config, extra flags)
RUNS: dict[str, tuple[str, list[str]]] = {
    "lstm-tbptt": ("charlm_lstm.yaml", []),
    "lstm-windows": ("charlm_lstm.yaml", ["--data.mode", "windows"]),
    "gru-tbptt": ("charlm_gru.yaml", []),
}
QUICK = [
    "--model.hidden_size", "32", "--model.embedding_dim", "16", "--data.seq_len", "32", "--data.batch_size", "16",
    "--model.sample_length", "80",
]  # fmt: skip
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


class StepTimer(L.Callback):
    """Wall time of each training step (forward, backward, optimizer), validation excluded."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self._t0 = 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch, batch_idx: int) -> None:
        self._t0 = time.perf_counter()

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, outputs, batch, batch_idx) -> None:
        self.times.append(time.perf_counter() - self._t0)


def run_cli(args: list[str]):
    """Run ``seqlit ARGS`` in this process and return the CLI object (trainer, model, data module)."""
    from seqlit.run.cli import SeqlitCLI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeqlitCLI(args=args)


def timer_of(cli) -> StepTimer:
    return next(c for c in cli.trainer.callbacks if isinstance(c, StepTimer))


def calibrate(config: str, extra: list[str], data: Path, root: Path, steps: int) -> tuple[float, int]:
    """Median seconds per training step of this config, from a short run without validation or checkpoints, and the
    characters in one step's batch."""
    cli = run_cli(
        ["fit", "--config", str(REPO / "configs" / config), "--data.path", str(data), *extra, *QUIET,
         "--trainer.max_steps", str(steps), "--trainer.limit_val_batches", "0", "--trainer.max_time", "null",
         "--checkpoint.monitor", "null", "--checkpoint.save_last", "false", "--checkpoint.save_top_k", "0",
         "--model.sample_length", "0", "--trainer.default_root_dir", str(root), "--experiment", "calibrate",
         "--trainer.callbacks+=__main__.StepTimer"]
    )  # fmt: skip
    chars = cli.datamodule.hparams.batch_size * cli.datamodule.hparams.seq_len
    return statistics.median(timer_of(cli).times[2:]), chars  # the first steps pay for allocation and start-up


def bench(name: str, data: Path, minutes: float, quick: bool, root: Path) -> dict:
    config, extra = RUNS[name]
    extra = [*extra, *(QUICK if quick else [])]
    step_s, _ = calibrate(config, extra, data, root, 8 if quick else 12)
    budget = minutes * 60
    # start-up, validations and samples take roughly 8% of the budget at the default sizes; the rest is training
    max_steps = max(10, int(0.92 * budget / step_s))
    val_every = max(5, max_steps // 6)
    hms = time.strftime("%H:%M:%S", time.gmtime(budget))
    t0 = time.perf_counter()
    cli = run_cli(
        ["fit", "--config", str(REPO / "configs" / config), "--data.path", str(data), *extra, *QUIET,
         "--trainer.max_steps", str(max_steps), "--trainer.max_time", f"00:{hms}",
         "--trainer.val_check_interval", str(val_every), "--trainer.default_root_dir", str(root),
         "--experiment", f"bench_{name}", "--trainer.callbacks+=__main__.StepTimer"]
    )  # fmt: skip
    wall = time.perf_counter() - t0
    trainer, model, dm = cli.trainer, cli.model, cli.datamodule
    times = timer_of(cli).times
    chars_per_step = dm.hparams.batch_size * dm.hparams.seq_len
    best = trainer.checkpoint_callback.best_model_score
    last = trainer.callback_metrics.get("val/loss")
    return {
        "run": name,
        "params": sum(p.numel() for p in model.parameters()),
        "steps": trainer.global_step,
        "planned": max_steps,
        "chars_s": chars_per_step * len(times) / sum(times),
        "windows_s": dm.hparams.batch_size * len(times) / sum(times),
        "wall": wall,
        "best": float(best) if best is not None else math.nan,
        "last": float(last) if last is not None else math.nan,
        "sample": model.last_sample or "",
        "calibrated_step_s": step_s,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="UTF-8 text (default: data/shakespeare/input.txt)")
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget per run")
    parser.add_argument("--runs", default=",".join(RUNS), help=f"comma-separated, from: {', '.join(RUNS)}")
    parser.add_argument("--quick", action="store_true", help="tiny models and a 20-second budget: checks the script")
    parser.add_argument("--estimate", action="store_true", help="only time a few steps and project the budget")
    args = parser.parse_args()
    if not args.data.is_file():
        sys.exit(f"bench_charlm: no text at {args.data}; pass --data")
    names = [n.strip() for n in args.runs.split(",") if n.strip()]
    unknown = [n for n in names if n not in RUNS]
    if unknown:
        sys.exit(f"bench_charlm: unknown runs {unknown}; choose from {list(RUNS)}")
    minutes = 20 / 60 if args.quick else args.minutes
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; data {args.data}; budget {minutes:g} min")

    with tempfile.TemporaryDirectory(prefix="bench_charlm_") as tmp:
        if args.estimate:
            print("\n| run | s/step | training chars/s | steps in the budget |\n|---|---:|---:|---:|")
            for name in names:
                config, extra = RUNS[name]
                extra = [*extra, *(QUICK if args.quick else [])]
                step_s, chars = calibrate(config, extra, args.data, Path(tmp), 8)
                steps = int(0.92 * minutes * 60 / step_s)
                print(f"| {name} | {step_s:.3f} | {chars / step_s:,.0f} | {steps} |", flush=True)
            return
        results = [bench(name, args.data, minutes, args.quick, Path(tmp)) for name in names]

    print(f"\nValidation on the last 10% of {args.data.name}; budget {minutes:g} min of wall time per run.\n")
    print(
        "| run | params | steps | training chars/s | windows/s | wall | val nats/char (best) | val bits/char | ≤ 1.50 |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for r in results:
        ok = "yes" if r["best"] <= 1.50 else "no"
        print(
            f"| {r['run']} | {r['params'] / 1e6:.2f} M | {r['steps']} / {r['planned']} | {r['chars_s']:,.0f} | "
            f"{r['windows_s']:.1f} | {r['wall'] / 60:.1f} min | {r['best']:.3f} | {r['best'] / math.log(2):.3f} | "
            f"{ok} |"
        )
    for r in results:
        print(f"\nSample from {r['run']} (prompt '\\n', temperature 0.8, seed 0, after the last validation):\n")
        print("```\n" + r["sample"].strip("\n") + "\n```")


if __name__ == "__main__":
    main()
