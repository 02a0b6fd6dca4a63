"""Measure deployment: ONNX Runtime vs PyTorch latency (batch 1 and 64), streaming vs re-reading a window, and serving
load (concurrent clients, with and without dynamic batching).

    python scripts/bench_serve.py --ckpt_path lightning_logs/sine/version_0/checkpoints/last.ckpt
    python scripts/bench_serve.py --ckpt_path X.ckpt --quick          # a few repetitions, to check it runs

Each checkpoint is exported to a temporary folder. Latency is the median of ``--repeats`` calls on one thread. The
streaming figure compares one step of the streaming forecaster (one new row per series, carried state) with the
window model re-reading the last ``--window`` rows, for one series and for ``--series`` series side by side. The load
test starts ``seqlit serve`` on 127.0.0.1 twice (``--max_batch_size 1`` and ``16``), sends ``--clients`` x
``--requests`` requests and reports errors, requests per second, p50 and p99.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "tests"))


def median_ms(fn, repeats: int) -> float:
    fn()  # warm up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def inputs(model, batch: int, rng: np.random.Generator) -> tuple:
    """A callable per backend input: a batch of the task's inputs for ``model.session.run``."""
    meta = model.meta
    if meta["task"] == "classifier":
        if meta["input"] == "tokens":
            x = rng.integers(2, meta["vocab_size"], (batch, 200))
        else:
            x = rng.normal(size=(batch, 50, meta["input_size"])).astype(np.float32)
        return ["probabilities"], {"x": x, "lengths": np.full(batch, x.shape[1], np.int64)}
    if meta["task"] == "forecaster":
        return meta["outputs"], {"x": np.abs(rng.normal(size=(batch, meta["window"], meta["input_size"]))).astype(
            np.float32)}  # fmt: skip
    names = meta["state"]["names"]
    return meta["outputs"], {"ids": rng.integers(1, len(meta["vocab"]), (batch, 1)),
                             **dict(zip(names, model.zero_state(batch), strict=True))}  # fmt: skip


def latency(ckpt: str, folder: Path, repeats: int) -> list[dict]:
    from seqlit.run.serve import load_model

    rng, rows = np.random.default_rng(0), []
    onnx, eager = load_model(str(folder), ckpt, onnx=True), load_model(str(folder), ckpt, onnx=False)
    for batch in (1, 64):
        names, feed = inputs(onnx, batch, rng)
        row = {"task": onnx.kind, "batch": batch}
        for label, m in (("onnxruntime_ms", onnx), ("pytorch_ms", eager)):
            row[label] = round(median_ms(lambda m=m, n=names, f=feed: m.session.run(n, f), repeats), 3)
        rows.append(row)
    if onnx.kind == "forecaster" and onnx.step_session is not None:
        for series in sorted({1, ARGS.series}):
            C = onnx.meta["input_size"]
            history = np.abs(rng.normal(size=(series, ARGS.window, C))).astype(np.float32)
            for label, m in (("onnxruntime", onnx), ("pytorch", eager)):
                stream = m.stream(num_series=series)
                stream.update(history if series > 1 else history[0])
                new_step = history[:, -1:] if series > 1 else history[0, -1:]
                step_ms = median_ms(lambda s=stream, x=new_step: s.update(x), repeats)  # one new row per series
                # re-reading: the window model over every series' last W rows, as a forecaster without state must
                reread_ms = median_ms(lambda m=m, x=history: m.session.run(m.meta["outputs"], {"x": x}), repeats)
                rows.append({"task": f"stream ({label})", "series": series, "window": ARGS.window,
                             "one_step_ms": round(step_ms, 3), "reread_window_ms": round(reread_ms, 3),
                             "ratio": round(reread_ms / step_ms, 1)})  # fmt: skip
    return rows


# a review of IMDB's median length (~230 words) by default: the classifier's real work, not a few words whose cost is
# all HTTP and JSON
REVIEW = (
    "this film starts slowly but the acting is wonderful and the plot keeps you guessing until the very end "
    "although some scenes drag and the music is too loud the story is moving and i would watch it again "
)


def request_body(meta: dict) -> bytes:
    if meta["task"] == "classifier":
        words = (REVIEW.split() * (ARGS.words // len(REVIEW.split()) + 1))[: ARGS.words]
        return json.dumps({"texts": [" ".join(words)]}).encode()
    if meta["task"] == "forecaster":
        return json.dumps({"rows": np.ones((meta["window"], meta["input_size"])).tolist()}).encode()
    return json.dumps({"prompt": "The ", "length": 20}).encode()


def load_test(ckpt: str, meta: dict, max_batch_size: int, onnx: bool) -> dict:
    from test_serve import Server, call

    args = ["--ckpt_path", str(Path(ckpt).resolve()), "--max_batch_size", str(max_batch_size)] + (
        ["--onnx"] if onnx else []
    )
    server = Server(args, Path(tempfile.mkdtemp()))
    body, times, errors = request_body(meta), [], 0

    def client(_: int) -> None:
        nonlocal errors
        for _ in range(ARGS.requests):
            start = time.perf_counter()
            status, _ = call(server.port, "/predict", body)
            times.append(time.perf_counter() - start)
            errors += status != 200

    try:
        start = time.perf_counter()
        with ThreadPoolExecutor(ARGS.clients) as pool:
            list(pool.map(client, range(ARGS.clients)))
        wall = time.perf_counter() - start
    finally:
        server.stop()
    ms = np.array(times) * 1000
    p50, p99 = (round(float(np.percentile(ms, q)), 2) for q in (50, 99))
    return {"task": meta["task"], "backend": "onnxruntime" if onnx else "pytorch", "max_batch_size": max_batch_size,
            "requests": len(times), "errors": errors, "req_per_s": round(len(times) / wall, 1), "p50_ms": p50,
            "p99_ms": p99}  # fmt: skip


def main() -> None:
    from seqlit import runtime
    from seqlit.run.export import export

    for ckpt in ARGS.ckpt_path:
        with tempfile.TemporaryDirectory() as tmp:
            folder = export(ckpt, Path(tmp) / "model")
            meta = runtime.load(folder).meta
            for row in latency(ckpt, folder, ARGS.repeats):
                print(json.dumps(row), flush=True)
            if not ARGS.no_serve:
                sizes = ARGS.batch_sizes if meta["task"] != "language_model" else (1,)  # generation is never batched
                for batch in sizes:
                    print(json.dumps(load_test(ckpt, meta, batch, ARGS.onnx)), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ckpt_path", nargs="+", required=True, help="checkpoints to measure, one per task")
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--requests", type=int, default=50, help="requests per client")
    parser.add_argument("--repeats", type=int, default=200, help="timed calls per latency figure")
    parser.add_argument("--window", type=int, default=132, help="history length of the streaming comparison")
    parser.add_argument("--series", type=int, default=148, help="series streamed side by side (also measured: 1)")
    parser.add_argument("--words", type=int, default=230, help="words per review in the classifier's load test")
    parser.add_argument("--batch_sizes", type=int, nargs="+", default=[1, 16], help="max_batch_size of each load test")
    parser.add_argument("--onnx", action="store_true", help="serve on ONNX Runtime in the load test")
    parser.add_argument("--no_serve", action="store_true", help="skip the load test")
    parser.add_argument("--quick", action="store_true", help="tiny settings: 2 clients x 5 requests, 5 repeats")
    ARGS = parser.parse_args()
    if ARGS.quick:
        ARGS.clients, ARGS.requests, ARGS.repeats = 2, 5, 5
    main()
