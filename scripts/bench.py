"""Performance benchmark: Lightning overhead, throughput against the machine's matmul limit, the scratch cell's fast
path, the IMDB data pipeline, and (on a GPU) cuDNN and bf16. One Markdown report on stdout and in ``--out``.

Every number is a ratio of two things measured side by side in this one run: machines are shared and noisy, and
absolute times hold only within a run. The two sides of a comparison alternate (A B B A ...), each is repeated, and
the report gives the median (and, where it matters, the best) of the repeats.

    python scripts/bench.py --out bench.md                        # full run (~15 min on 2 quiet cores)
    python scripts/bench.py --imdb-root /path/to/aclImdb --out bench.md   # IMDB rows on the real reviews
    python scripts/bench.py --quick                               # tiny settings: checks the script, not the speed
    python scripts/bench.py --sections 1 --cases sine,sine_rnn,synth_gru   # the overhead of the small configs only

1. **Lightning overhead**: ``SeqlitCLI`` (the real ``seqlit fit``: the shipped config's model, data, trainer settings,
   checkpoints, logger, progress bar) against a plain PyTorch loop training the same model on the same batches for the
   same steps and computing the validation loss once per epoch. Per step (training steps only) and per epoch (what
   each side spends outside its training steps: validation, checkpoints, logging) are reported apart. A third side,
   the same task in a bare Lightning Trainer (no logger, checkpoints, progress bar, summary or sanity check), shows
   the floor of Lightning's own loop; the three sides take turns going first.
2. **Throughput**: training FLOP/s of the recurrent layers (matmul FLOPs of the cells: per token, layer and direction
   2·(in + hidden)·gates·hidden forward, 2x that backward) ÷ the FLOP/s of a large float32 matmul.
3. **The scratch cell**: eager Python loop, ``fast`` (hand-written backward), TorchScript and ``torch.compile`` of the
   same loop, against ``nn.RNN``, forward+backward; compile time apart.
4. **Data pipeline**: time to the first training step on IMDB, cold (empty tokenization cache) and warm; tokens/s.
5. **GPU**: cuDNN LSTM in float32 and bf16 against the same matmul, only where CUDA is present.

Without ``--imdb-root`` the IMDB rows use a synthetic corpus of IMDB's shape (Zipf-distributed words, log-normal
lengths with IMDB's median of ~230 tokens), written to a temporary folder.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import logging
import os
import statistics
import sys
import tempfile
import time
import types
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from anywhere without installing

from seqlit.models.scratch import ScratchRNN  # noqa: E402
from seqlit.run.cli import SeqlitCLI  # noqa: E402


def median(xs: list[float]) -> float:
    return float(statistics.median(xs))


def table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        if isinstance(v, float):
            return f"{v:.3g}" if abs(v) < 100 else f"{v:,.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


# --- 1. Lightning overhead ----------------------------------------------------------------------------------------
class Clock(L.Callback):
    """Time inside training steps (first step start to last step end of each epoch) and the tokens trained on."""

    def __init__(self) -> None:
        self.step_seconds, self.fit_seconds, self.steps, self.tokens = 0.0, 0.0, 0, 0
        self.first_step_end: float | None = None
        self._first: float | None = None
        self._last = 0.0

    def flush(self) -> None:
        if self._first is not None:
            self.step_seconds += self._last - self._first
        self._first = None

    def batch_start(self) -> None:
        if self._first is None:
            self._first = time.perf_counter()

    def batch_end(self, batch: Any) -> None:
        self._last = time.perf_counter()
        self.first_step_end = self.first_step_end or self._last
        self.steps += 1
        self.tokens += batch_tokens(batch)

    def on_train_epoch_start(self, *args: Any) -> None:
        self.flush()

    def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, idx: int) -> None:
        self.batch_start()

    def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, idx: int) -> None:
        self.batch_end(batch)


def batch_tokens(batch: Any) -> int:
    """Real (not padding) steps in a batch: the sum of lengths, else B·T."""
    if not isinstance(batch, dict):
        return 0
    if "lengths" in batch:
        return int(batch["lengths"].sum())
    return int(batch["x"].shape[0] * batch["x"].shape[1])


def make_cli(config: str, overrides: list[str], root: str) -> SeqlitCLI:
    args = ["--config", str(REPO / "configs" / config), "--trainer.default_root_dir", root, *overrides]
    with contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115 - the data modules' reports
        cli = SeqlitCLI(args=args, run=False)
        cli.datamodule.prepare_data()
        cli.datamodule.setup("fit")
    return cli


def plain_loss(task: Any, batch: dict[str, torch.Tensor]) -> torch.Tensor:
    """The training loss a plain loop computes: forward and loss, no logging, no training metrics."""
    if type(task).__name__ == "Classifier":
        return task.loss_fn(task(batch["x"], batch.get("lengths")), batch["y"])
    # the other tasks return from their training step right after logging the loss: silence the logging
    task.log = task.log_dict = lambda *a, **k: None
    return task._shared_step(batch, "train")


def build_outside_trainer(task: Any, dm: Any, total_steps: int = 1) -> Any:
    """Build ``task`` from ``dm`` as a fit does and return its own ``configure_optimizers()`` (the task reads the data
    and the step count from its trainer: a stand-in gives both)."""
    fit = types.SimpleNamespace(fn="fit")
    task._trainer = types.SimpleNamespace(datamodule=dm, estimated_stepping_batches=total_steps, state=fit)
    task.configure_model()
    config = task.configure_optimizers()
    task._trainer = None
    return config


def plain_fit(task: Any, dm: Any, epochs: int, train_batches: int | None, val_batches: int | None, clip: Any) -> Clock:
    """A plain PyTorch loop over the same batches: train, then the validation loss once per epoch."""
    clock = Clock()
    loader = dm.train_dataloader()
    total = epochs * (train_batches or len(loader))
    config = build_outside_trainer(task, dm, total)  # the task's own optimizer and schedule
    opt = config["optimizer"] if isinstance(config, dict) else config
    sched = config.get("lr_scheduler", {}) if isinstance(config, dict) else {}
    val = dm.val_dataloader()
    start = time.perf_counter()
    for epoch in range(epochs):
        task.train()
        sampler = getattr(loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        clock.flush()
        for i, batch in enumerate(loader):
            if train_batches is not None and i >= train_batches:
                break
            clock.batch_start()
            opt.zero_grad()
            loss = plain_loss(task, batch)
            loss.backward()
            if clip:
                torch.nn.utils.clip_grad_norm_(task.parameters(), clip)
            opt.step()
            if sched and sched.get("interval") == "step":
                sched["scheduler"].step()
            clock.batch_end(batch)
        clock.flush()
        task.eval()
        losses = []
        with torch.no_grad():
            for i, batch in enumerate(val):
                if val_batches is not None and i >= val_batches:
                    break
                losses.append(plain_loss(task, batch))
        if sched and sched.get("monitor") and losses:
            sched["scheduler"].step(torch.stack(losses).mean())
    clock.fit_seconds = time.perf_counter() - start
    return clock


def lightning_fit(cli: SeqlitCLI) -> Clock:
    clock = Clock()
    cli.trainer.callbacks.append(clock)
    start = time.perf_counter()
    with contextlib.redirect_stderr(open(os.devnull, "w")), contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
        cli.trainer.fit(cli.model, datamodule=cli.datamodule)
    clock.fit_seconds = time.perf_counter() - start
    clock.flush()
    return clock


def bare_fit(task: Any, dm: Any, epochs: int, train_batches: int | None, val_batches: int | None, clip: Any) -> Clock:
    """The same task in a bare Lightning Trainer: no logger, checkpoints, progress bar, summary or sanity check.

    What Lightning's loop and the task's own validation cost without anything ``seqlit fit`` adds to a run."""
    clock = Clock()
    trainer = L.Trainer(max_epochs=epochs, limit_train_batches=train_batches or 1.0,
                        limit_val_batches=1.0 if val_batches is None else val_batches, gradient_clip_val=clip,
                        logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, num_sanity_val_steps=0, callbacks=[clock])  # fmt: skip
    start = time.perf_counter()
    with contextlib.redirect_stderr(open(os.devnull, "w")), contextlib.redirect_stdout(open(os.devnull, "w")):  # noqa: SIM115
        trainer.fit(task, datamodule=dm)
    clock.fit_seconds = time.perf_counter() - start
    clock.flush()
    return clock


def limits(epochs: int, train_batches: int | None, val_batches: int | None) -> list[str]:
    out = ["--trainer.max_epochs", str(epochs), "--trainer.max_steps", "-1", "--trainer.max_time", "null"]
    out += ["--trainer.limit_train_batches", str(train_batches or 1.0)]
    out += ["--trainer.limit_val_batches", str(1.0 if val_batches is None else val_batches)]
    return out


def overhead_case(case: dict[str, Any], repeats: int, root: str) -> dict[str, Any]:
    """Run one config ``repeats`` times on each side (plain, seqlit, bare Trainer), rotating which side goes first."""
    runs: dict[str, list[Clock]] = {"plain": [], "lightning": [], "bare": []}
    args = [*case["overrides"], *limits(case["epochs"], case["train_batches"], case["val_batches"])]
    for r in range(repeats):
        cli = make_cli(case["config"], args, root)
        plain_task = copy.deepcopy(cli.model)  # unbuilt: it builds from the data below, like the Trainer's copy
        bare_task = copy.deepcopy(cli.model)
        clip = cli.trainer.gradient_clip_val
        sides = ["plain", "lightning", "bare"]
        epochs, tb, vb = case["epochs"], case["train_batches"], case["val_batches"]
        for side in sides[r % 3 :] + sides[: r % 3]:
            if side == "plain":
                runs["plain"].append(plain_fit(plain_task, cli.datamodule, epochs, tb, vb, clip))
            elif side == "bare":
                runs["bare"].append(bare_fit(bare_task, cli.datamodule, epochs, tb, vb, clip))
            else:
                runs["lightning"].append(lightning_fit(cli))
    p, lt, bare = runs["plain"], runs["lightning"], runs["bare"]
    steps = p[0].steps
    assert all(c.steps == steps for c in p + lt + bare), "every side must train the same number of steps"
    step_p = [c.step_seconds / steps for c in p]
    step_l = [c.step_seconds / steps for c in lt]
    epoch_p = [(c.fit_seconds - c.step_seconds) / case["epochs"] for c in p]
    epoch_l = [(c.fit_seconds - c.step_seconds) / case["epochs"] for c in lt]
    return {
        "name": case["name"],
        "steps": steps,
        "epochs": case["epochs"],
        "fit_ratio": median([a.fit_seconds / b.fit_seconds for a, b in zip(lt, p, strict=True)]),
        "bare_ratio": median([a.fit_seconds / b.fit_seconds for a, b in zip(bare, p, strict=True)]),
        "step_ratio": median([a / b for a, b in zip(step_l, step_p, strict=True)]),
        "step_ms": (1000 * median(step_p), 1000 * median(step_l)),
        "epoch_ms": (1000 * median(epoch_p), 1000 * median(epoch_l)),
        "tokens_per_s": median([c.tokens / c.step_seconds for c in lt]),
        "lightning_step_seconds": median([c.step_seconds for c in lt]),
        "tokens": lt[0].tokens,
    }


def overhead_section(cases: list[dict[str, Any]], repeats: int, root: str) -> str:
    rows = []
    for case in cases:
        res = overhead_case(case, repeats, root)
        (sp, sl), (ep, el) = res["step_ms"], res["epoch_ms"]
        rows.append([res["name"], res["steps"], res["epochs"], res["fit_ratio"], res["step_ratio"], sp, sl, sl - sp,
                     ep, el, el - ep, res["bare_ratio"]])  # fmt: skip
    header = ["config", "steps", "epochs", "**fit ratio** (seqlit ÷ plain)", "per-step ratio", "plain ms/step",
              "seqlit ms/step", "extra ms/step", "plain ms/epoch outside steps", "seqlit ms/epoch outside steps",
              "extra ms/epoch", "bare Trainer ÷ plain"]  # fmt: skip
    note = (f"Median of {repeats} alternating repeats. Goal: fit ratio <= 1.10. 'Outside steps' is everything but "
            "the training steps: validation, checkpoints, logging, the start of each epoch (plain: its validation "
            "loss pass). 'Bare Trainer': the same task in a Lightning Trainer with no logger, checkpoints, progress "
            "bar, summary or sanity check, the floor of any Lightning loop.")  # fmt: skip
    return "## 1. Lightning overhead\n\n" + note + "\n\n" + table(header, rows)


# --- 2. Throughput against the matmul limit -----------------------------------------------------------------------
def matmul_flops(n: int, repeats: int, device: str = "cpu", dtype: torch.dtype = torch.float32) -> float:
    """Best FLOP/s of an n×n by n×n matmul."""
    a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats + 1):
        sync(device)
        t = time.perf_counter()
        a @ b
        sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def recurrent_flops_per_token(module: torch.nn.Module) -> int:
    """Forward+backward matmul FLOPs per token of every recurrent layer and direction in ``module``.

    Forward 2·(in + hidden)·gates·hidden per layer and direction (the weight_ih and weight_hh matrices), backward twice
    that (input and weight gradients).
    """
    n = sum(p.numel() for name, p in module.named_parameters() if ".weight_ih_l" in f".{name}" or ".weight_hh_l" in
            f".{name}")  # fmt: skip
    return 3 * 2 * n


def time_fn(fn: Callable[[], Any], repeats: int, device: str = "cpu") -> float:
    """Best seconds of ``fn`` after one warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeats):
        sync(device)
        t = time.perf_counter()
        fn()
        sync(device)
        best = min(best, time.perf_counter() - t)
    return best


def lstm_dense(B: int, T: int, H: int, repeats: int, device: str = "cpu", bf16: bool = False) -> float:
    """FLOP/s of nn.LSTM forward+backward on a dense batch (B, T, H)→H."""
    lstm = torch.nn.LSTM(H, H, batch_first=True).to(device)
    x = torch.randn(B, T, H, device=device)

    def step() -> None:
        with torch.autocast(device, dtype=torch.bfloat16, enabled=bf16):
            out, _ = lstm(x)
        out.float().sum().backward()

    return recurrent_flops_per_token(lstm) * B * T / time_fn(step, repeats, device)


def imdb_options(base: dict[str, Any]) -> list[tuple[str, str, list[str], bool]]:
    """(name, correctness, overrides, padded) for the three ways to feed variable-length reviews to the LSTM."""
    return [
        ("packed, variable lengths", "exact", ["--data.equal_length", "false"], False),
        (
            "equal-length buckets (data.equal_length true)",
            "exact on the cut batch (drops ~2 % of tokens)",
            ["--data.equal_length", "true"],
            False,
        ),  # fmt: skip
        (
            "padded, masked pooling (no packing)",
            "inexact: the backward direction reads padding first",
            ["--data.equal_length", "false"],
            True,
        ),  # fmt: skip
    ]


def unpacked(encoder: torch.nn.Module) -> None:
    """Make ``encoder`` run over the padded batch as if dense (pooling still masks the padding)."""
    forward = encoder.forward
    encoder.forward = lambda x, lengths=None, state=None: forward(x, None, state)


def throughput_section(imdb: dict[str, Any], sizes: dict[str, Any], root: str, repeats: int) -> tuple[str, float]:
    peak = matmul_flops(sizes["matmul"], 3 * repeats)
    rows = []
    B, T, H = sizes["lstm"]
    # best of several: one oversubscribed moment on a shared machine can slow a multi-threaded kernel tenfold
    dense = lstm_dense(B, T, H, max(3, repeats))
    rows.append([f"nn.LSTM dense B={B} T={T} {H}→{H}, forward+backward", "exact", dense / 1e9, dense / peak])
    for name, correct, extra, padded in imdb_options(imdb):
        fracs, rates = [], []
        for _ in range(repeats):
            args = [*imdb["overrides"], *extra, *limits(1, imdb["throughput_batches"], 0)]
            cli = make_cli(imdb["config"], args, root)
            if padded:
                build_outside_trainer(cli.model, cli.datamodule)
                unpacked(cli.model.net.encoder)
            clock = lightning_fit(cli)
            per_token = recurrent_flops_per_token(cli.model.net)  # every encoder of the network (or ensemble)
            rate = per_token * clock.tokens / clock.step_seconds
            rates.append(rate)
            fracs.append(rate / peak)
        rows.append([f"IMDB `{imdb['config']}` loop end to end: {name}", correct, median(rates) / 1e9, median(fracs)])
    header = ["what", "correct", "GFLOP/s (recurrent layers)", "**÷ matmul**"]
    note = (f"Large float32 matmul ({sizes['matmul']}²): {peak / 1e9:.1f} GFLOP/s on {torch.get_num_threads()} "
            "threads. FLOPs count only the recurrent cells' matmuls on real tokens (the IMDB rows: Lightning, data, "
            "embedding, pooling, head and optimizer all in the time). Goal: the IMDB loop >= 0.45.")  # fmt: skip
    return "## 2. Throughput against the machine's matmul limit\n\n" + note + "\n\n" + table(header, rows), peak


# --- 3. The from-scratch cell ---------------------------------------------------------------------------------------
def scratch_section(sizes: dict[str, Any], repeats: int, compile_too: bool) -> str:
    B, T, H = sizes["scratch"]
    x = torch.randn(B, T, H)
    torch.manual_seed(0)
    reference = torch.nn.RNN(H, H, batch_first=True)

    def run(module: torch.nn.Module) -> Callable[[], None]:
        def step() -> None:
            out, _ = module(x)
            out.sum().backward()

        return step

    impls = ["eager", "fast", "script"] + (["compile"] if compile_too else [])
    modules = {"nn.RNN": reference}
    compile_seconds: dict[str, float] = {}
    for impl in impls:
        m = ScratchRNN(input_size=H, hidden_size=H, impl=impl)
        m.load_state_dict(reference.state_dict())
        t = time.perf_counter()
        run(m)()  # the first call builds (script, compile) the loop
        compile_seconds[impl] = time.perf_counter() - t
        modules[impl] = m
    times: dict[str, list[float]] = {k: [] for k in modules}
    for _ in range(repeats):  # interleaved: every implementation once per round
        for k, m in modules.items():
            times[k].append(time_fn(run(m), 2))
    base = median(times["nn.RNN"])
    rows = [["nn.RNN (torch's C++ loop)", 1000 * base, 1.0, "-"]]
    names = {
        "eager": "scratch `eager` (Python loop, autograd)",
        "fast": "scratch `fast` (hand-written BPTT, default)",
        "script": "scratch `script` (torch.jit.script of the loop)",
        "compile": "scratch `compile` (torch.compile)",
    }
    for impl in impls:
        t = median(times[impl])
        first = f"{compile_seconds[impl]:.2f}" if impl in ("script", "compile") else "-"
        rows.append([names[impl], 1000 * t, t / base, first])
    if not compile_too:
        rows.append([names["compile"], "skipped (--quick or --no-compile)", "-", "-"])
    header = ["implementation", "ms forward+backward", "**÷ nn.RNN**", "first call incl. compiling (s)"]
    note = f"B={B}, T={T}, {H}→{H}, tanh, median of {repeats} interleaved rounds (best of 2 each). Goal: <= 1.5."
    return "## 3. The from-scratch cell\n\n" + note + "\n\n" + table(header, rows)


# --- 4. Data pipeline -------------------------------------------------------------------------------------------------
def pipeline_section(imdb: dict[str, Any], root: str) -> str:
    from seqlit.data.text.readers import read_table
    from seqlit.data.text.tokenizer import TextTokenizer

    rows = []
    cache = tempfile.mkdtemp(prefix="seqlit-bench-cache-", dir=root)
    for label in ("cold (empty cache)", "warm (cache filled)"):
        args = [*imdb["overrides"], "--data.cache_dir", cache, *limits(1, 1, 0)]
        start = time.perf_counter()
        cli = make_cli(imdb["config"], args, root)
        clock = lightning_fit(cli)
        rows.append([f"time to first training step, {label}", f"{clock.first_step_end - start:.2f} s"])
    data_root = Path(cli.datamodule.hparams.root)
    if data_root.is_file():
        texts = read_table(data_root, "text", "label").texts
        t = time.perf_counter()
        tok = TextTokenizer.train(texts, "word", 30_000, 2, True)
        train_s = time.perf_counter() - t
        t = time.perf_counter()
        ids, _ = tok.encode(texts)
        encode_s = time.perf_counter() - t
        rows.append([f"tokenizer training (word, {len(texts):,} documents)", f"{len(ids) / train_s:,.0f} tokens/s"])
        rows.append(["encoding", f"{len(ids) / encode_s:,.0f} tokens/s"])
    else:
        rows.append(["tokens/s", "see the cold-start time (a real IMDB folder is read file by file)"])
    note = "In this process (imports excluded); cold includes reading, training the tokenizer and encoding."
    return "## 4. Data pipeline (IMDB)\n\n" + note + "\n\n" + table(["what", "measured"], rows)


# --- 5. GPU -------------------------------------------------------------------------------------------------------
def gpu_section(sizes: dict[str, Any], repeats: int) -> str:
    if not torch.cuda.is_available():
        return "## 5. GPU\n\nNo CUDA device here: skipped (the same rows appear when one is present)."
    peak32 = matmul_flops(4096, repeats, "cuda")
    peak16 = matmul_flops(4096, repeats, "cuda", torch.bfloat16)
    B, T, H = sizes["lstm"]
    f32 = lstm_dense(B, T, H, repeats, "cuda")
    bf16 = lstm_dense(B, T, H, repeats, "cuda", bf16=True)
    rows = [
        [f"cuDNN LSTM float32, B={B} T={T} {H}→{H}", f32 / 1e9, f32 / peak32, "fp32 matmul"],
        ["cuDNN LSTM bf16 autocast, same", bf16 / 1e9, bf16 / peak16, "bf16 matmul"],
    ]
    note = f"{torch.cuda.get_device_name()}: matmul fp32 {peak32 / 1e12:.1f} TFLOP/s, bf16 {peak16 / 1e12:.1f} TFLOP/s."
    return "## 5. GPU\n\n" + note + "\n\n" + table(["what", "GFLOP/s", "÷ matmul", "against"], rows)


# --- the synthetic IMDB-shaped corpus ---------------------------------------------------------------------------------
def synthetic_corpus(path: Path, docs: int, vocab: int, seed: int = 0) -> Path:
    """JSONL reviews of IMDB's shape: Zipf word frequencies, log-normal lengths (median ~230 words), two labels
    that a few marker words predict (so training is not pure noise)."""
    rng = np.random.default_rng(seed)
    words = np.array([f"w{i}" for i in range(vocab)])
    p = 1.0 / np.arange(1, vocab + 1)
    p /= p.sum()
    lengths = np.clip(rng.lognormal(np.log(230), 0.75, docs).astype(int), 10, 2500)
    with path.open("w") as f:
        for n in lengths:
            label = int(rng.integers(2))
            text = rng.choice(words, size=n, p=p)
            text[rng.integers(n, size=3)] = "great" if label else "awful"
            f.write(json.dumps({"text": " ".join(text), "label": ["neg", "pos"][label]}) + "\n")
    return path


def settings(args: argparse.Namespace, root: str) -> dict[str, Any]:
    quick = args.quick
    if args.imdb_root:
        data = ["--data.root", args.imdb_root]
    else:
        corpus = synthetic_corpus(Path(root) / "reviews.jsonl", 300 if quick else 6000, 2000 if quick else 30_000)
        data = ["--data.root", str(corpus), "--data.test_fraction", "0.1"]
    imdb_overrides = [*data, "--data.cache_dir", str(Path(root) / "cache")]
    if quick:  # tiny model and reviews: checks the plumbing only
        imdb_overrides += ["--model.init_args.hidden_size", "16", "--model.init_args.embedding_dim", "16",
                           "--data.max_length", "48"]  # fmt: skip
    imdb = {"config": args.imdb_config, "overrides": imdb_overrides, "throughput_batches": 3 if quick else 30}
    if quick:
        cases = [
            {
                "name": "sine.yaml",
                "config": "sine.yaml",
                "overrides": [],
                "epochs": 2,
                "train_batches": 5,
                "val_batches": 2,
            },  # fmt: skip
            {
                "name": f"{args.imdb_config} (tiny)",
                "config": args.imdb_config,
                "overrides": imdb_overrides,
                "epochs": 1,
                "train_batches": 3,
                "val_batches": 2,
            },  # fmt: skip
        ]
        sizes = {"matmul": 256, "lstm": (8, 16, 16), "scratch": (8, 16, 16)}
    else:
        cases = [
            {
                "name": "sine.yaml (as shipped: 30 epochs)",
                "config": "sine.yaml",
                "overrides": [],
                "epochs": 30,
                "train_batches": None,
                "val_batches": None,
            },  # fmt: skip
            {
                "name": "sine_rnn.yaml (tutorial setup, 20 of its 100 epochs)",
                "config": "sine_rnn.yaml",
                "overrides": [],
                "epochs": 20,
                "train_batches": None,
                "val_batches": None,
            },  # fmt: skip
            {
                "name": "synth_gru.yaml --model.cell lstm (5 of its 30 epochs)",
                "config": "synth_gru.yaml",
                "overrides": ["--model.cell", "lstm"],
                "epochs": 5,
                "train_batches": None,
                "val_batches": None,
            },  # fmt: skip
            {
                "name": f"{args.imdb_config} (2 epochs of 30 batches)",
                "config": args.imdb_config,
                "overrides": imdb_overrides,
                "epochs": 2,
                "train_batches": 30,
                "val_batches": 5,
            },  # fmt: skip
        ]
        sizes = {"matmul": 2048, "lstm": (64, 256, 128), "scratch": (64, 128, 128)}
    return {"imdb": imdb, "cases": cases, "sizes": sizes}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--out", default="bench.md", help="Markdown file to write (also printed)")
    parser.add_argument("--quick", action="store_true", help="tiny settings: checks the script end to end")
    parser.add_argument("--repeats", type=int, default=None, help="alternating repeats per comparison (3; quick 1)")
    parser.add_argument("--imdb-root", default=None, help="an extracted aclImdb folder (default: synthetic corpus)")
    parser.add_argument("--imdb-config", default="imdb_best.yaml", help="the IMDB config measured")
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile of the scratch loop (slow)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--sections", default="12345", help="which sections to run, e.g. 13")
    parser.add_argument("--cases", default=None, help="section 1: only these configs, e.g. sine,sine_rnn,synth_gru")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    logging.disable(logging.WARNING)  # Lightning's info lines and warnings, once per run, would bury the report
    repeats = args.repeats or (1 if args.quick else 3)
    root = tempfile.mkdtemp(prefix="seqlit-bench-")
    s = settings(args, root)
    if args.cases:  # by config file name, without .yaml
        wanted = set(args.cases.split(","))
        s["cases"] = [c for c in s["cases"] if c["config"].removesuffix(".yaml") in wanted]
    started = time.perf_counter()
    command = " ".join(["python scripts/bench.py", *(sys.argv[1:] if argv is None else argv)])
    kind = "quick" if args.quick else "full"
    machine = f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    parts = [f"# seqlit performance ({kind} run)\n\n{machine}, `{command}`"]
    if "1" in args.sections:
        parts.append(overhead_section(s["cases"], repeats, root))
    if "2" in args.sections:
        parts.append(throughput_section(s["imdb"], s["sizes"], root, repeats)[0])
    if "3" in args.sections:
        parts.append(scratch_section(s["sizes"], max(3, repeats), not (args.quick or args.no_compile)))
    if "4" in args.sections:
        parts.append(pipeline_section(s["imdb"], root))
    if "5" in args.sections:
        parts.append(gpu_section(s["sizes"], repeats))
    parts.append(f"Total {time.perf_counter() - started:.0f} s.")
    report = "\n\n".join(parts) + "\n"
    print(report)
    Path(args.out).write_text(report)


if __name__ == "__main__":
    main()
