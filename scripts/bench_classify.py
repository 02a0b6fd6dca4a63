"""Benchmark: do vanilla RNNs lose long-range memory where LSTMs and GRUs keep it, and do GRUs train faster?

Shared/seeds/004 claims: vanilla RNNs handle long-term dependencies poorly, LSTMs excellently, GRUs well, and GRUs
train faster than LSTMs. This script measures it on the learnable synthetic task (``SyntheticDataModule(mode=
"patterns")``): each of 10 classes plants a 4-step pattern at the START of sequences of growing length, followed by
pure noise, so the ``last``-pooled classifier must carry the pattern to the end. Every cell gets the same budget (the
same data, model width, optimizer and at most ``--epochs`` epochs; training stops early once validation accuracy
reaches ``--target`` × the Bayes accuracy). It prints one Markdown table: test accuracy ÷ the exact Bayes accuracy,
the Bayes rule's own accuracy on the same test set (what a perfect model would have scored on these very sequences),
epochs used, and training time.

    python scripts/bench_classify.py            # the full comparison (long: see docs/classification.md)
    python scripts/bench_classify.py --quick    # a seconds-long end-to-end check of the script itself
"""

from __future__ import annotations

import argparse
import time
import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping

from seqlit.data.synthetic import SyntheticDataModule
from seqlit.tasks.classifier import Classifier


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[25, 100, 400], help="sequence lengths T")
    p.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru", "scratch"], help="cells to compare")
    p.add_argument("--epochs", type=int, default=30, help="most epochs per model (the shared budget)")
    p.add_argument("--target", type=float, default=0.995, help="stop once val acc ≥ target × Bayes (0: never)")
    p.add_argument("--train-size", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=5000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--features", type=int, default=4)
    p.add_argument("--snr", type=float, default=3.0)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings, to check the script end to end")
    args = p.parse_args()
    if args.quick:
        args.lengths, args.epochs, args.train_size, args.test_size, args.hidden = [8, 16], 2, 300, 300, 16
    return args


def run_one(args: argparse.Namespace, length: int, cell: str) -> dict:
    L.seed_everything(args.seed, verbose=False)
    dm = SyntheticDataModule(
        mode="patterns", num_classes=args.classes, seq_len=length, num_features=args.features, signal_length=4,
        signal_start=0, snr=args.snr, train_size=args.train_size, val_size=1000, test_size=args.test_size,
        seed=args.seed, batch_size=args.batch_size,
    )  # fmt: skip
    dm.setup("fit")
    model = Classifier(cell=cell, hidden_size=args.hidden, pooling="last", lr=args.lr)
    callbacks = []
    if args.target > 0:  # patience = the whole budget: only reaching the target stops a model early
        callbacks.append(
            EarlyStopping("val/acc_vs_bayes", mode="max", patience=args.epochs, stopping_threshold=args.target)
        )
    trainer = L.Trainer(
        max_epochs=args.epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
        enable_model_summary=False, gradient_clip_val=1.0, callbacks=callbacks, accelerator="cpu", devices=1,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, dm)
    seconds = time.perf_counter() - start
    result = trainer.test(model, dm, verbose=False)[0]
    test = dm.datasets["test"].tensors
    rule = float((dm.bayes_predict(test["x"]) == test["y"]).float().mean())
    epochs = trainer.current_epoch  # epochs completed
    return {
        "T": length, "cell": cell, "acc": result["test/acc"], "bayes": result["test/bayes_acc"],
        "ratio": result["test/acc_vs_bayes"], "rule": rule, "epochs": epochs, "seconds": seconds,
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    rows = []
    for length in args.lengths:
        for cell in args.cells:
            row = run_one(args, length, cell)
            rows.append(row)
            print(f"# T={length} {cell}: acc/Bayes {row['ratio']:.3f} in {row['epochs']} epochs, {row['seconds']:.0f}s",
                  flush=True)  # fmt: skip
    print()
    print(
        f"Learnable synthetic task: {args.classes} classes, a 4-step pattern (snr {args.snr}) at the start of T "
        f"steps of {args.features} features; hidden {args.hidden}, Adam lr {args.lr}, batch {args.batch_size}, "
        f"{args.train_size} training sequences, at most {args.epochs} epochs (stop at val acc >= {args.target} x "
        f"Bayes), {args.test_size} test sequences, {args.threads} CPU threads.\n"
    )
    header = ["T", "cell", "test acc", "Bayes acc", "acc ÷ Bayes", "Bayes rule on this test set", "epochs"]
    print("| " + " | ".join(header + ["train time (s)", "s / epoch"]) + " |")
    print("|---:|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        per_epoch = r["seconds"] / max(1, r["epochs"])
        print(
            f"| {r['T']} | {r['cell']} | {r['acc']:.4f} | {r['bayes']:.4f} | **{r['ratio']:.3f}** | {r['rule']:.4f} | "
            f"{r['epochs']} | {r['seconds']:.1f} | {per_epoch:.2f} |"
        )


if __name__ == "__main__":
    main()
