"""Benchmark of the character-level language models on tiny Shakespeare: validation nats/char within a time budget.

Each run trains one config through the real CLI (in this process) on the text's first 90%, validating on its last
10%. The configs train against the wall clock itself: ``max_time`` ends the run and the cosine learning-rate decay
spans that same budget (``model.schedule_by: time``), so every machine spends the whole budget and ends its schedule
exactly then, however fast its steps are; nothing is estimated beforehand. It prints a Markdown table (validation loss
in nats/char and bits/char, training characters and windows per second, steps, minutes), the validation curve of each
run (nats/char against minutes of training, from the logged ``val/loss``) and one generated sample per run.

    python scripts/bench_charlm.py --runs lstm-tbptt    # the headline run: 15 minutes
    python scripts/bench_charlm.py                      # the three configs: 3 x 15 minutes
    python scripts/bench_charlm.py --runs lstm-tbptt,lstm-dropout2,lstm-b128    # variants of the LSTM config
    python scripts/bench_charlm.py --quick              # tiny models, 20 s each: checks the script end to end

Run it on a quiet machine: other processes on the same cores slow every step and the budget buys fewer of them.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
import warnings
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.callbacks import Timer

REPO = Path(__file__).resolve().parents[1]
DATA = REPO / "data" / "shakespeare" / "input.txt"  # where `seqlit data get shakespeare` puts it

# name -> (config, extra flags); the first three are the benchmark, the others variants to compare with lstm-tbptt
RUNS: dict[str, tuple[str, list[str]]] = {
    "lstm-tbptt": ("charlm_lstm.yaml", []),
    "lstm-windows": ("charlm_lstm.yaml", ["--data.mode", "windows"]),
    "gru-tbptt": ("charlm_gru.yaml", []),
    # the config's dropout (0.1 on the embedding, between layers and before the output layer) doubled, or off
    "lstm-dropout2": ("charlm_lstm.yaml", ["--model.dropout", "0.2"]),
    "lstm-nodropout": ("charlm_lstm.yaml", ["--model.dropout", "0.0"]),
    # twice the streams and a higher learning rate: fewer, larger steps in the same minutes
    "lstm-b128": ("charlm_lstm.yaml", ["--data.batch_size", "128", "--model.lr", "4.0e-3"]),
    # one matrix for embedding and output (it needs the embedding as wide as the layer, which makes each step dearer)
    "lstm-tied": ("charlm_lstm.yaml", ["--model.embedding_dim", "null", "--model.tie_weights", "true"]),
}
DEFAULT_RUNS = ["lstm-tbptt", "lstm-windows", "gru-tbptt"]
QUICK = [
    "--model.hidden_size", "32", "--model.embedding_dim", "32", "--data.seq_len", "32", "--data.batch_size", "16",
    "--model.sample_length", "80", "--trainer.val_check_interval", "100",
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


class ValidationCurve(L.Callback):
    """After each validation: minutes on the training clock (Lightning's Timer), step, learning rate and the logged
    ``val/loss``."""

    def __init__(self) -> None:
        self.points: list[dict[str, float]] = []

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        loss = trainer.callback_metrics.get("val/loss")
        if trainer.sanity_checking or loss is None:
            return
        timer = next(c for c in trainer.callbacks if isinstance(c, Timer))
        lr = trainer.optimizers[0].param_groups[0]["lr"]
        self.points.append(
            {"minutes": timer.time_elapsed("train") / 60, "step": trainer.global_step, "lr": lr, "loss": float(loss)}
        )


def run_cli(args: list[str]):
    """Run ``seqlit ARGS`` in this process and return the CLI object (trainer, model, data module)."""
    from seqlit.run.cli import SeqlitCLI

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return SeqlitCLI(args=args)


def callback(cli, kind: type[L.Callback]) -> L.Callback:
    return next(c for c in cli.trainer.callbacks if isinstance(c, kind))


def bench(name: str, data: Path, minutes: float, quick: bool, root: Path) -> dict:
    config, extra = RUNS[name]
    extra = [*extra, *(QUICK if quick else [])]
    budget = time.strftime("%H:%M:%S", time.gmtime(round(minutes * 60)))
    t0 = time.perf_counter()
    cli = run_cli(
        ["fit", "--config", str(REPO / "configs" / config), "--data.path", str(data), *extra, *QUIET,
         "--trainer.max_time", f"00:{budget}", "--trainer.default_root_dir", str(root), "--experiment", f"bench_{name}",
         "--trainer.callbacks+=__main__.StepTimer", "--trainer.callbacks+=__main__.ValidationCurve"]
    )  # fmt: skip
    wall = time.perf_counter() - t0
    trainer, model, dm = cli.trainer, cli.model, cli.datamodule
    times = callback(cli, StepTimer).times
    chars_per_step = dm.hparams.batch_size * dm.hparams.seq_len
    best = trainer.checkpoint_callback.best_model_score
    return {
        "run": name,
        "params": sum(p.numel() for p in model.parameters()),
        "steps": trainer.global_step,
        "chars_s": chars_per_step * len(times) / sum(times),
        "windows_s": dm.hparams.batch_size * len(times) / sum(times),
        "train_min": callback(cli, Timer).time_elapsed("train") / 60,
        "wall": wall,
        "best": float(best) if best is not None else math.nan,
        "curve": callback(cli, ValidationCurve).points,
        "sample": model.last_sample or "",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DATA, help="UTF-8 text (default: data/shakespeare/input.txt)")
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock training budget per run (max_time)")
    parser.add_argument("--runs", default=",".join(DEFAULT_RUNS), help=f"comma-separated, from: {', '.join(RUNS)}")
    parser.add_argument("--quick", action="store_true", help="tiny models and a 20-second budget: checks the script")
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
        results = [bench(name, args.data, minutes, args.quick, Path(tmp)) for name in names]

    print(f"\nValidation on the last 10% of {args.data.name}; budget {minutes:g} min of training (max_time) per run.\n")
    print("| run | params | steps | training chars/s | windows/s | Timer | wall | val nats/char (best) | "
          "val bits/char | ≤ 1.45 |")  # fmt: skip
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|:-:|")
    for r in results:
        ok = "yes" if r["best"] <= 1.45 else "no"
        print(
            f"| {r['run']} | {r['params'] / 1e6:.2f} M | {r['steps']} | {r['chars_s']:,.0f} | {r['windows_s']:.1f} | "
            f"{r['train_min']:.1f} min | {r['wall'] / 60:.1f} min | {r['best']:.3f} | {r['best'] / math.log(2):.3f} | "
            f"{ok} |"
        )
    for r in results:
        print(f"\nValidation curve of {r['run']} (minutes of training, validation included; lr after that step):\n")
        print("| minutes | step | lr | val nats/char | val bits/char |\n|---:|---:|---:|---:|---:|")
        for p in r["curve"]:
            bits = p["loss"] / math.log(2)
            print(f"| {p['minutes']:.1f} | {p['step']} | {p['lr']:.2e} | {p['loss']:.3f} | {bits:.3f} |")
    for r in results:
        print(f"\nSample from {r['run']} (prompt '\\n', temperature 0.8, seed 0, after the last validation):\n")
        print("```\n" + r["sample"].strip("\n") + "\n```")


if __name__ == "__main__":
    main()
