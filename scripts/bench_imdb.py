"""IMDB sentiment benchmark: test accuracy, fit time, training tokens per second, padding and tokenization time.

Trains every given config (default: the two tutorial models and our best) on the IMDB reviews exactly as
``seqlit fit --config configs/imdb_<name>.yaml --data.root <aclImdb>`` would, then tests the best checkpoint on the
25,000 test reviews, and prints one Markdown table. The tokenization time is measured once, with an empty cache.

    python scripts/bench_imdb.py --root /path/to/aclImdb                      # full run (about an hour on 2 cores)
    python scripts/bench_imdb.py --quick                                      # a few hundred reviews, 1 epoch
    python scripts/bench_imdb.py --configs imdb_best --set trainer.max_epochs=3 data.max_length=300

Without ``--root`` it reads ``data/imdb/aclImdb``, where ``seqlit data get imdb`` puts the reviews. ``--quick``
copies 150 reviews per class and split into a scratch folder and trains one epoch: it checks the script end to end,
not the models.
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import yaml
from lightning.pytorch.callbacks import ModelCheckpoint

REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO / "data" / "imdb" / "aclImdb"  # where `seqlit data get imdb` puts the reviews
ANCHORS = """Anchors: Keras 2×BiLSTM(64) 84.3%; tuned LSTM (Dai & Le, 2015) 86.5%; GRU + GloVe 88.7%;
fastText with bigrams 90.6%; NBSVM 91.2%. Goal: ≥ 90% from scratch in ≤ 15 min of training on the 2-core CPU."""


class TokenMeter(L.Callback):
    """Training tokens and the time spent in training steps (validation excluded)."""

    def __init__(self) -> None:
        self.tokens, self.seconds, self._t = 0, 0.0, 0.0

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, idx: int) -> None:
        self._t = time.perf_counter()

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, out: Any, batch: Any, idx: int
    ) -> None:
        self.seconds += time.perf_counter() - self._t
        self.tokens += int(
            batch["x"].shape[0] * batch["x"].shape[1] if "lengths" not in batch else batch["lengths"].sum()
        )


class EpochLog(L.Callback):
    """One line per validation: the epoch's validation loss and accuracy (which epoch the checkpoint came from)."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:  # the task logs its epoch metrics after the callbacks' epoch-end hooks
            m = trainer.callback_metrics
            print(f"epoch {trainer.current_epoch}: val/loss {float(m['val/loss']):.4f}, "
                  f"val/acc {float(m['val/acc']):.2%}", flush=True)  # fmt: skip


def build(spec: dict[str, Any], **overrides: Any) -> Any:
    module, _, name = spec["class_path"].rpartition(".")
    return getattr(importlib.import_module(module), name)(**{**spec.get("init_args", {}), **overrides})


def imdb_root(args: argparse.Namespace) -> Path:
    root = Path(args.root) if args.root else DEFAULT_ROOT
    if not (root / "train").is_dir():
        raise SystemExit(f"bench_imdb: --root {root} holds no train/ folder: run `seqlit data get imdb` or give --root")
    return root


def quick_subset(root: Path, per_class: int) -> Path:
    """A small copy of the IMDB layout: the first ``per_class`` reviews of every split and label."""
    out = Path(tempfile.mkdtemp(prefix="imdb-quick-"))
    for split in ("train", "test"):
        for label in ("neg", "pos"):
            (out / split / label).mkdir(parents=True)
            for f in sorted((root / split / label).glob("*.txt"))[:per_class]:
                shutil.copy(f, out / split / label / f.name)
    return out


def run(config: Path, root: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    cfg = yaml.safe_load(config.read_text())
    L.seed_everything(cfg.get("seed_everything", 0), workers=True)
    for item in args.set:  # e.g. data.equal_length=true, model.hidden_size=64, trainer.max_epochs=2
        key, _, value = item.partition("=")
        section, _, name = key.partition(".")
        target = cfg[section] if section == "trainer" else cfg[section].setdefault("init_args", {})
        target[name] = yaml.safe_load(value)
    dm = build(cfg["data"], root=str(root), cache_dir=str(workdir / "cache"))
    model = build(cfg["model"])
    t = time.perf_counter()
    dm.setup("fit")
    setup_s = time.perf_counter() - t
    meter = TokenMeter()
    # the config's checkpoint choice, as `seqlit fit` would make it (the CLI's default: the lowest val/loss)
    chosen = {"monitor": "val/loss", "mode": "min", **(cfg.get("checkpoint") or {})}
    ckpt = ModelCheckpoint(monitor=chosen["monitor"], mode=chosen["mode"], save_top_k=1)
    trainer_cfg = {"gradient_clip_val": 1.0, **(cfg.get("trainer") or {})}  # the seqlit CLI's default clip
    extra = [build(spec) for spec in trainer_cfg.pop("callbacks", None) or []]  # e.g. weight averaging
    if args.quick:
        trainer_cfg["max_epochs"] = 1
    trainer = L.Trainer(
        **trainer_cfg, default_root_dir=str(workdir / config.stem), callbacks=[meter, ckpt, EpochLog(), *extra],
        logger=False, enable_progress_bar=not args.no_progress, enable_model_summary=False, enable_checkpointing=True,
    )  # fmt: skip
    t = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    fit_s = time.perf_counter() - t
    test = trainer.test(model, datamodule=dm, ckpt_path=ckpt.best_model_path or None, verbose=False)[0]
    equal = bool(dm.hparams.get("equal_length"))
    return {
        "config": config.stem,
        "test_acc": test["test/acc"],
        "fit_min": fit_s / 60,
        "tok_s": meter.tokens / max(meter.seconds, 1e-9),
        "padding": 0.0 if equal else dm.stats["padding"],
        "dropped": dm.stats["padding"] if equal else 0.0,
        "setup_s": setup_s,
        "epochs": trainer.current_epoch,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="the unpacked aclImdb folder (default: data/imdb/aclImdb)")
    parser.add_argument("--configs", nargs="+", default=["imdb_rnn", "imdb_lstm", "imdb_best"])
    parser.add_argument("--quick", action="store_true", help="150 reviews per class and split, 1 epoch")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="override, e.g. data.max_length=200")
    args = parser.parse_args()
    root = imdb_root(args)
    if args.quick:
        root = quick_subset(root, 150)
    workdir = Path(tempfile.mkdtemp(prefix="bench-imdb-"))
    try:
        rows = []
        for name in args.configs:
            rows.append(run(REPO / "configs" / f"{name}.yaml", root, args, workdir))
            print(rows[-1], flush=True)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
        if args.quick:
            shutil.rmtree(root, ignore_errors=True)
    title = "quick check, 300 train reviews, 1 epoch" if args.quick else "25k train (10% validation), 25k test"
    print(f"\n### IMDB sentiment ({title})\n")
    print("| config | test acc | fit time | epochs | train tokens/s | padding | cut (equal_length) | tokenization |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['config']} | {r['test_acc']:.2%} | {r['fit_min']:.1f} min | {r['epochs']} | {r['tok_s']:,.0f} | "
            f"{r['padding']:.1%} | {r['dropped']:.1%} | {r['setup_s']:.1f} s |"
        )
    print("\ntokenization = reading every review, training the tokenizer and encoding, with an empty cache (a second "
          "run with the same settings loads the cache in seconds).\n" + ANCHORS)  # fmt: skip


if __name__ == "__main__":
    main()
