"""The real ``seqlit`` command on text: fit logs nats, bits and samples; predict generates from the checkpoint alone in
a fresh process, reproducibly; bad files and unseen prompt characters get one clear line."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
import torch
from conftest import CONFIGS, QUIET, run_seqlit
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from seqlit.run.cli import main
from seqlit.tasks import LanguageModel

# YAML and the command line both carry the vocabulary when predict reads it from the checkpoint: so it holds characters
# that YAML treats specially (~ # : - [ { ' " ! & * ?), a tab, a carriage return, a line separator and an emoji
PERIOD = "the quick brown fox: \"jumps\" over #1 lazy-dog [~] {ok}? 'no'! &*\t\u2028😀 é\r\n"
VOCAB = ["", *sorted(set(PERIOD))]
TINY = [
    "--model.hidden_size", "32", "--model.embedding_dim", "16", "--model.lr", "0.01", "--model.sample_length", "40",
    "--data.seq_len", "32", "--data.batch_size", "8", "--trainer.max_steps", "60", "--trainer.val_check_interval", "20",
    "--trainer.max_time", "null", "--model.schedule_by", "steps", "--trainer.log_every_n_steps", "5", *QUIET,
]  # fmt: skip
GENERATE = ["--data.prompt", "the qu", "--data.generate_length", "50", "--data.top_k", "5", "--data.generate_seed", "3"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict:
    """One short fit of configs/charlm_lstm.yaml (TBPTT mode) on a periodic text, shared by the tests below."""
    cwd = tmp_path_factory.mktemp("charlm")
    (cwd / "periodic.txt").write_bytes((PERIOD * 50).encode("utf-8"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("OMP_NUM_THREADS", "1")  # tiny models: one thread is fastest, above all on a busy machine
        out = run_seqlit(
            ["fit", "--config", str(CONFIGS / "charlm_lstm.yaml"), "--data.path", "periodic.txt", *TINY], cwd
        )
    best = next(line.split()[-1] for line in out.stdout.splitlines() if line.startswith("Best checkpoint:"))
    return {"cwd": cwd, "run": cwd / "lightning_logs" / "charlm_lstm" / "version_0", "best": cwd / best}


@pytest.mark.slow
def test_fit_logs_nats_bits_perplexity_and_a_text_sample(trained):
    acc = EventAccumulator(str(trained["run"]))
    acc.Reload()
    scalars = set(acc.Tags()["scalars"])
    for tag in ["train/loss_step", "train/bpc", "val/loss", "val/bpc", "val/ppl"]:
        assert tag in scalars, tag
    val = [e.value for e in acc.Scalars("val/loss")]
    bits = [e.value for e in acc.Scalars("val/bpc")]
    assert len(val) == 3 and bits[-1] == pytest.approx(val[-1] / math.log(2), rel=1e-5)
    assert val[-1] < 0.5 * math.log(len(VOCAB))  # well below a uniform guess
    assert any(t.startswith("val/sample") for t in acc.Tags()["tensors"])  # TensorBoard's text plugin

    ckpt = torch.load(trained["best"], weights_only=True)  # plain data only
    hp = ckpt["hyper_parameters"]
    assert hp["vocab"] == VOCAB and hp["vocab_size"] == len(VOCAB) == 49


@pytest.mark.slow
def test_predict_generates_from_the_checkpoint_alone_in_a_fresh_process(trained, monkeypatch):
    cwd = trained["cwd"]
    elsewhere = cwd / "moved"
    elsewhere.mkdir(exist_ok=True)
    shutil.move(cwd / "periodic.txt", elsewhere / "periodic.txt")  # the training text is gone: checkpoint only
    try:
        monkeypatch.setenv("OMP_NUM_THREADS", "1")
        out = run_seqlit(["predict", "--ckpt_path", str(trained["best"]), *GENERATE, *QUIET], cwd)
    finally:
        shutil.move(elsewhere / "periodic.txt", cwd / "periodic.txt")
    generated = (trained["run"].parent / "version_1" / "generated.txt").read_text(encoding="utf-8")
    assert generated.startswith("the qu") and len(generated) == len("the qu") + 50 + 1  # and a final newline
    assert generated.rstrip("\n") in out.stdout
    # the same seed gives the same text here, through the Python API, in another process
    model = LanguageModel.load_from_checkpoint(trained["best"])
    assert model.generate("the qu", 50, temperature=0.8, top_k=5, seed=3) == generated[:-1]


def test_predict_with_unseen_prompt_characters_notes_them_and_generates(trained, monkeypatch, capsys):
    monkeypatch.chdir(trained["cwd"])
    main(["predict", "--ckpt_path", str(trained["best"]), "--data.prompt", "Zß the", "--data.generate_length", "10",
          *QUIET])  # fmt: skip
    out, err = capsys.readouterr()
    assert "prompt characters never seen in training ('Z', 'ß') are read as the unknown symbol" in err
    assert "Zß the" in out


BAD_FILES = {
    "empty": (b"", "a non-empty text file (this one is empty)"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "is a binary file (NUL byte at offset 8)"),
    "latin1": ("Ophélie".encode("latin-1") * 100, "is not UTF-8 text (byte 0xe9 at offset 3)"),
    "short": (b"To be, or not to be", "its train span has 17 characters"),
}


@pytest.mark.parametrize("kind", list(BAD_FILES))
def test_bad_text_file_is_one_line_and_leaves_no_run(kind, tmp_path, monkeypatch, capsys):
    content, needle = BAD_FILES[kind]
    (tmp_path / "bad.txt").write_bytes(content)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_:
        main(["fit", "--config", str(CONFIGS / "charlm_lstm.yaml"), "--data.path", "bad.txt", *QUIET])
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("seqlit: error: data.path='bad.txt'" if kind != "short" else "seqlit: error: data.seq_len=")
    assert needle in err
    assert not list(Path("lightning_logs").glob("charlm_lstm/version_*"))
