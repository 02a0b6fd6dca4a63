"""Where an IMDB training step's time goes: the dense LSTM kernel at several batch sizes, then a profile of the loop.

Part 1 times a bidirectional ``nn.LSTM`` (128 → 128, forward+backward) on dense batches of ``--length`` steps for each
of ``--batches`` and prints its FLOP/s as a share of a large float32 matmul (the ratio ``scripts/bench.py`` section 2
reports for the whole loop). Part 2 runs ``--steps`` training steps of ``--config`` in a plain PyTorch loop (forward,
backward, gradient clipping, the config's optimizer) under ``torch.profiler`` and prints the operators that took the
most time and the shares of the main groups: the recurrent layer, dropout's mask generation, copies and the optimizer.

    python scripts/profile_imdb.py --root /path/to/aclImdb     # the real reviews (about two minutes)
    python scripts/profile_imdb.py                             # a synthetic corpus of IMDB's shape
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import bench  # the sibling script: its CLI builder, FLOP count, timers and synthetic corpus
import torch
from torch.profiler import ProfilerActivity, profile

GROUPS = {  # operator-name fragments -> the group of the step they belong to
    "recurrent layer": ("rnn_layer", "RnnLayer", "lstm"),
    "dropout masks": ("bernoulli",),
    "copies": ("aten::copy_",),
    "optimizer": ("Optimizer.step", "_foreach", "addcdiv", "addcmul", "lerp", "sqrt"),
}


def kernel_rows(batches: list[int], length: int, peak: float) -> list[list[object]]:
    """A bidirectional nn.LSTM 128 → 128 on dense batches: FLOP/s ÷ matmul for each batch size."""
    rows = []
    for b in batches:
        lstm = torch.nn.LSTM(128, 128, batch_first=True, bidirectional=True)
        x = torch.randn(b, length, 128)

        def step(lstm: torch.nn.LSTM = lstm, x: torch.Tensor = x) -> None:
            lstm(x)[0].sum().backward()

        seconds = bench.time_fn(step, 3)
        rows.append([b, length, 1000 * seconds, bench.recurrent_flops_per_token(lstm) * b * length / seconds / peak])
    return rows


def profile_loop(config: str, overrides: list[str], steps: int, root: str) -> tuple[str, dict[str, float], float]:
    """Profile ``steps`` plain training steps; the top operators, each group's share, and FLOP/s of the real tokens."""
    cli = bench.make_cli(config, overrides, root)
    task, dm = cli.model, cli.datamodule
    config = bench.build_outside_trainer(task, dm, steps + 2)  # the task's own optimizer
    opt = config["optimizer"] if isinstance(config, dict) else config
    it = iter(dm.train_dataloader())
    batches = [next(it) for _ in range(steps + 2)]

    def step(batch: dict[str, torch.Tensor]) -> None:
        loss = bench.plain_loss(task, batch)
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(task.parameters(), 1.0)
        opt.step()

    task.train()
    for batch in batches[:2]:  # warm-up: allocations and oneDNN's first-call set-up
        step(batch)
    tokens = sum(bench.batch_tokens(b) for b in batches[2:])
    start = time.perf_counter()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for batch in batches[2:]:
            step(batch)
    rate = bench.recurrent_flops_per_token(task.net) * tokens / (time.perf_counter() - start)
    averages = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in averages)
    shares = {g: sum(e.self_cpu_time_total for e in averages if any(f in e.key for f in frags)) / total
              for g, frags in GROUPS.items()}  # fmt: skip
    return averages.table(sort_by="self_cpu_time_total", row_limit=15), shares, rate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=None, help="an extracted aclImdb folder (default: a synthetic corpus)")
    parser.add_argument("--config", default="imdb_best.yaml", help="the IMDB config profiled")
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128, 256], help="batch sizes of part 1")
    parser.add_argument("--length", type=int, default=230, help="steps per sequence in part 1 (IMDB's median)")
    parser.add_argument("--steps", type=int, default=10, help="training steps profiled in part 2")
    parser.add_argument("--quick", action="store_true", help="tiny sizes: checks the script end to end")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # Lightning's info lines and warnings would bury the tables, as in bench.py
    root = tempfile.mkdtemp(prefix="seqlit-profile-")
    if args.root:
        data = ["--data.root", args.root]
    else:
        corpus = bench.synthetic_corpus(Path(root) / "reviews.jsonl", 300 if args.quick else 6000, 30_000)
        data = ["--data.root", str(corpus), "--data.test_fraction", "0.1"]
    overrides = [*data, "--data.cache_dir", str(Path(root) / "cache")]
    if args.quick:
        overrides += ["--model.init_args.hidden_size", "16", "--model.init_args.embedding_dim", "16",
                      "--data.max_length", "48"]  # fmt: skip
        args.batches, args.length, args.steps = [8], 16, 2
    peak = bench.matmul_flops(256 if args.quick else 2048, 3)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; float32 matmul {peak / 1e9:.1f} GFLOP/s\n")
    rows = kernel_rows(args.batches, args.length, peak)
    print(bench.table(["batch", "steps", "ms forward+backward", "**÷ matmul**"], rows), "\n")
    top, shares, rate = profile_loop(args.config, overrides, args.steps, root)
    print(f"{args.steps} training steps of {args.config} in a plain loop: {rate / peak:.3f} of matmul (profiler on)\n")
    print(bench.table(["group", "share of the step"], [[g, f"{100 * s:.1f} %"] for g, s in shares.items()]), "\n")
    print(top)


if __name__ == "__main__":
    main()
