"""The real ``seqlit`` command on a tiny corpus made here: fit, predict from the checkpoint alone, bad input."""

from __future__ import annotations

import csv
import random
import re
import shutil
from pathlib import Path

from conftest import CONFIGS, QUIET

from seqlit.inference import load_text_checkpoint, predict_sentiment

POSITIVE, NEGATIVE = ["great", "wonderful", "loved"], ["awful", "boring", "hated"]
FILLER = "the a movie film plot actor scene story it was and of to".split()


def make_corpus(root: Path, per_class: dict[str, int], seed: int = 0) -> Path:
    """IMDB's layout; each review is filler words plus one word that decides its label."""
    rng = random.Random(seed)
    for split, n in per_class.items():
        for label, words in (("pos", POSITIVE), ("neg", NEGATIVE)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                tokens = [rng.choice(FILLER) for _ in range(rng.randint(3, 25))] + [rng.choice(words)]
                rng.shuffle(tokens)
                (folder / f"{i}_{rng.randint(1, 10)}.txt").write_text(" ".join(tokens) + "<br /><br />")
    return root


def test_fit_then_predict_from_the_checkpoint_alone(seqlit_cli):
    cwd: Path = seqlit_cli.cwd
    make_corpus(cwd / "corpus", {"train": 64, "test": 25})
    small = ["--model.hidden_size", "16", "--model.embedding_dim", "16", "--model.lr", "0.02", "--model.warmup_steps",
             "0", "--model.embedding_dropout", "0", "--data.batch_size", "8", "--trainer.max_epochs", "6"]  # fmt: skip
    fit = seqlit_cli(["fit", "--config", str(CONFIGS / "imdb_best.yaml"), "--data.root", "corpus", *QUIET, *small])
    assert "padding with length buckets" in fit.stdout + fit.stderr
    acc = float(re.search(r"test/acc\s+([\d.]+)", fit.stdout).group(1))
    assert acc > 0.8, fit.stdout  # chance is 0.5; one word decides each label
    ckpt = next((cwd / "lightning_logs" / "imdb_best" / "version_0" / "checkpoints").glob("epoch=*.ckpt"))
    shutil.rmtree(cwd / "corpus")  # nothing but the checkpoint may be needed from here on
    shutil.rmtree(cwd / ".cache")
    (cwd / "reviews.txt").write_text("a wonderful great film\n\n the plot was awful and boring\n")
    seqlit_cli(["predict", "--ckpt_path", str(ckpt), "--data.predict_path", "reviews.txt", *QUIET])
    with (cwd / "lightning_logs" / "imdb_best" / "version_1" / "predictions.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["id"] for r in rows] == ["0", "2"]  # line numbers; the blank line is skipped
    assert [r["label"] for r in rows] == ["pos", "neg"]
    assert set(rows[0]) == {"id", "label", "probability", "prob_neg", "prob_pos"}
    # the tutorial's one-call helper, on the checkpoint alone
    model, tokenizer, settings = load_text_checkpoint(str(ckpt))
    label, probability = predict_sentiment(model, "I loved it, wonderful", tokenizer, settings["max_length"])
    assert label == "pos" and 0.5 < probability <= 1.0
    assert [lab for lab, _ in predict_sentiment(model, ["hated it", "great"], tokenizer)] == ["neg", "pos"]


def test_a_single_class_fails_in_one_line_before_a_run_folder(seqlit_cli):
    cwd: Path = seqlit_cli.cwd
    one = cwd / "one"
    (one / "pos").mkdir(parents=True)
    (one / "pos" / "a.txt").write_text("good")
    proc = seqlit_cli(["fit", "--config", str(CONFIGS / "imdb_rnn.yaml"), "--data.root", "one", *QUIET], check=False)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("seqlit: error: labels=['pos'] is not allowed")
    runs = cwd / "lightning_logs" / "imdb_rnn"
    assert not runs.exists() or not any(runs.iterdir())
