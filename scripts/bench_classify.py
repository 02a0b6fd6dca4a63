"""Benchmark: do vanilla RNNs lose long-range memory where LSTMs and GRUs keep it, and do GRUs train faster?

A common tutorial claim: vanilla RNNs handle long-term dependencies poorly, LSTMs excellently, GRUs well, and GRUs
train faster than LSTMs. This script measures it on the learnable synthetic task (``SyntheticDataModule(mode=
"patterns")``): each of 10 classes plants a 4-step pattern at the START of sequences of growing length, followed by
pure noise, so the ``last``-pooled classifier must carry the pattern to the end. Every cell gets the same budget: the
same data, model width, optimizer, training recipe and wall-clock time (``--budget-s`` of training, validation
included); a model stops early once validation accuracy reaches ``--target`` × the Bayes accuracy. The recipe, the
same for every cell: a fresh training set every epoch, training batches cut to a random length in [``--crop-min``, T]
(validation and test sequences are never cut), and chrono initialisation of the gate biases (lstm and gru; the
ungated rnn and scratch cells have none). It prints one Markdown table: test accuracy ÷ the exact Bayes accuracy, the
Bayes rule's own accuracy on the same test set (what a perfect model would have scored on these very sequences),
training steps, training time and time per step.

    python scripts/bench_classify.py            # the full comparison (about 20-25 minutes on 2 quiet cores)
    python scripts/bench_classify.py --quick    # a short end-to-end check of the script itself
"""

from __future__ import annotations

import argparse
import datetime
import logging
import time
import warnings

import lightning as L
import torch
from lightning.pytorch.callbacks import EarlyStopping, LambdaCallback

from seqlit.data.classification.synthetic import SyntheticDataModule
from seqlit.tasks.classifier import Classifier


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lengths", type=int, nargs="+", default=[25, 100, 400], help="sequence lengths T")
    p.add_argument("--cells", nargs="+", default=["rnn", "lstm", "gru", "scratch"], help="cells to compare")
    p.add_argument("--budget-s", type=float, default=150.0, help="wall-clock seconds of training per model (shared)")
    p.add_argument("--max-epochs", type=int, default=1000, help="a second cap on training, in epochs")
    p.add_argument("--target", type=float, default=0.995, help="stop once val acc ≥ target × Bayes (0: never)")
    p.add_argument("--train-size", type=int, default=5000, help="training sequences per epoch")
    p.add_argument("--val-size", type=int, default=2000)
    p.add_argument("--test-size", type=int, default=5000)
    p.add_argument("--classes", type=int, default=10)
    p.add_argument("--features", type=int, default=4)
    p.add_argument("--snr", type=float, default=3.0)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--lr", type=float, default=0.01)
    p.add_argument("--clip", type=float, default=1.0, help="gradient-norm clipping (0: none)")
    p.add_argument("--scheduler", choices=["none", "plateau"], default="plateau", help="plateau: halve lr on flat val")
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--gate-init", choices=["default", "chrono"], default="chrono", help="gate biases of lstm/gru")
    p.add_argument("--gru-impl", choices=["fast", "torch"], default="fast", help="how the gru runs (same numbers)")
    p.add_argument("--crop-min", type=int, default=8, help="shortest training crop (0: train on whole sequences)")
    p.add_argument("--fixed-train-set", action="store_true", help="reuse one training set instead of fresh data")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="tiny settings, to check the script end to end")
    args = p.parse_args()
    if args.quick:
        args.lengths, args.budget_s, args.hidden, args.crop_min = [8, 16], 5.0, 16, 6
        args.train_size, args.val_size, args.test_size = 300, 200, 300
    return args


def run_one(args: argparse.Namespace, length: int, cell: str) -> dict:
    L.seed_everything(args.seed, verbose=False)
    crop = args.crop_min if 0 < args.crop_min < length else None
    dm = SyntheticDataModule(
        mode="patterns", num_classes=args.classes, seq_len=length, num_features=args.features, signal_length=4,
        signal_start=0, snr=args.snr, train_size=args.train_size, val_size=args.val_size, test_size=args.test_size,
        resample=not args.fixed_train_set, crop_min_length=crop, seed=args.seed, batch_size=args.batch_size,
    )  # fmt: skip
    dm.setup("fit")
    model = Classifier(cell=cell, hidden_size=args.hidden, pooling="last", lr=args.lr, gate_init=args.gate_init,
                       scheduler=args.scheduler)  # fmt: skip
    # the encoder is built from the data's sizes when fitting starts; its gru_impl changes no parameter
    callbacks = [LambdaCallback(on_fit_start=lambda _, module: setattr(module.net.encoder, "gru_impl", args.gru_impl))]
    if args.target > 0:  # patience = the whole run: only reaching the target stops a model early
        callbacks.append(EarlyStopping("val/acc_vs_bayes", mode="max", patience=10**9, stopping_threshold=args.target))
    trainer = L.Trainer(
        max_epochs=args.max_epochs, max_time=datetime.timedelta(seconds=args.budget_s), logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        gradient_clip_val=args.clip or None, callbacks=callbacks, accelerator="cpu", devices=1,
    )  # fmt: skip
    start = time.perf_counter()
    trainer.fit(model, dm)
    seconds = time.perf_counter() - start
    reached = float(trainer.callback_metrics.get("val/acc_vs_bayes", 0.0)) >= args.target > 0  # before test resets it
    result = trainer.test(model, dm, verbose=False)[0]  # the model as training left it (no checkpoint picking)
    test = dm.datasets["test"].tensors
    rule = float((dm.bayes_predict(test["x"]) == test["y"]).float().mean())
    return {
        "T": length, "cell": cell, "acc": result["test/acc"], "bayes": result["test/bayes_acc"],
        "ratio": result["test/acc_vs_bayes"], "rule": rule, "steps": trainer.global_step, "seconds": seconds,
        "reached": reached,
    }  # fmt: skip


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # keep the output to the table
    rows, begin = [], time.perf_counter()
    for length in args.lengths:
        for cell in args.cells:
            row = run_one(args, length, cell)
            rows.append(row)
            print(
                f"# T={length} {cell}: acc/Bayes {row['ratio']:.3f} after {row['steps']} steps, "
                f"{row['seconds']:.0f}s training ({time.perf_counter() - begin:.0f}s since the start)",
                flush=True,
            )
    print()
    crop = f"cut to random lengths in [{args.crop_min}, T]" if args.crop_min else "whole sequences"
    print(
        f"Learnable synthetic task: {args.classes} classes, a 4-step pattern (snr {args.snr}) at the start of T "
        f"steps of {args.features} features, 'last' pooling; hidden {args.hidden}, Adam lr {args.lr} "
        f"(scheduler {args.scheduler}), clip "
        f"{args.clip}, {args.gate_init} gate init (lstm, gru), batches of {args.batch_size} "
        f"({crop}), {'a fresh' if not args.fixed_train_set else 'one fixed'} training set of {args.train_size} "
        f"per epoch; every model gets {args.budget_s:.0f} s of training (validation included) and stops once val "
        f"acc >= {args.target} x Bayes ({args.val_size} val, {args.test_size} test sequences, {args.threads} CPU "
        f"threads). Total {time.perf_counter() - begin:.0f} s.\n"
    )
    header = ["T", "cell", "test acc", "Bayes acc", "acc ÷ Bayes", "Bayes rule on this test set", "target reached"]
    print("| " + " | ".join(header + ["train steps", "train time (s)", "ms / step"]) + " |")
    print("|---:|---|---:|---:|---:|---:|---|---:|---:|---:|")
    for r in rows:
        per_step = 1000 * r["seconds"] / max(1, r["steps"])
        print(
            f"| {r['T']} | {r['cell']} | {r['acc']:.4f} | {r['bayes']:.4f} | **{r['ratio']:.3f}** | {r['rule']:.4f} | "
            f"{'yes' if r['reached'] else 'no'} | {r['steps']} | {r['seconds']:.1f} | {per_step:.0f} |"
        )


if __name__ == "__main__":
    main()
