"""Micro-benchmark: the encoder's fast CPU GRU (:func:`seqlit.models.gru_fast.fast_gru`) against ``nn.GRU``.

Both run the same ``nn.GRU`` module on the same dense batch; the default shape is ``scripts/bench_classify.py``'s
training batch at T = 400 (batch 100, 4 features, hidden 64, one layer), the loss reads the final state as ``last``
pooling does. It prints the median of interleaved repeats of forward+backward (training) and of the forward pass alone
without gradients (validation), in wall-clock and in CPU time, and the ratio nn.GRU ÷ fast (above 1: fast is faster).
On a shared machine compare ratios, not times.

    python scripts/bench_gru.py                 # bench_classify's T = 400 batch, 2 threads, a few seconds
    python scripts/bench_gru.py --steps 200 --layers 2 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch

from seqlit.models.gru_fast import fast_gru


def timed(fn: Callable[[], torch.Tensor], train: bool) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call (and its backward pass when ``train``)."""
    wall, cpu = time.perf_counter(), time.process_time()
    with torch.set_grad_enabled(train):
        loss = fn()
        if train:
            loss.backward()
    return time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--batch", type=int, default=100)
    p.add_argument("--steps", type=int, default=400, help="sequence length T")
    p.add_argument("--features", type=int, default=4)
    p.add_argument("--hidden", type=int, default=64)
    p.add_argument("--layers", type=int, default=1)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (bench_classify's default: 2)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls of each, interleaved; the median counts")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    gru = torch.nn.GRU(args.features, args.hidden, num_layers=args.layers, batch_first=True)
    x = torch.randn(args.batch, args.steps, args.features)
    runs = {"nn.GRU": lambda: gru(x)[1].sum(), "fast": lambda: fast_gru(gru, x)[1].sum()}
    print(f"B={args.batch} T={args.steps} C={args.features} H={args.hidden} layers={args.layers}, "
          f"{args.threads} threads, median of {args.repeats}")  # fmt: skip
    for train, label in ((True, "forward+backward"), (False, "forward, no gradients")):
        for fn in runs.values():  # one warm-up call each
            timed(fn, train)
        times: dict[str, list[tuple[float, float]]] = {name: [] for name in runs}
        for _ in range(args.repeats):
            for name, fn in runs.items():  # interleaved, so a busy spell of the machine hits both
                times[name].append(timed(fn, train))
        wall = {name: statistics.median(t[0] for t in ts) for name, ts in times.items()}
        cpu = {name: statistics.median(t[1] for t in ts) for name, ts in times.items()}
        print(
            f"{label}: nn.GRU {1e3 * wall['nn.GRU']:.0f} ms, fast {1e3 * wall['fast']:.0f} ms; nn.GRU ÷ fast "
            f"{wall['nn.GRU'] / wall['fast']:.2f}x wall-clock, {cpu['nn.GRU'] / cpu['fast']:.2f}x CPU time"
        )


if __name__ == "__main__":
    main()
