"""Hostile input, table-driven: every task and the command itself against wrong values, broken configs, checkpoints and
data files, unwritable or odd output folders, signals and two commands at once.

Each refused case must exit non-zero with exactly one ``seqlit: error:`` line naming what was wrong, print no
traceback, and leave every file that was in the working folder (which holds one real fitted run per task family)
exactly as it was.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
import random
import shutil
import signal
import stat
import subprocess
import sys
import time
import zipfile
from dataclasses import dataclass, field
from datetime import date, timedelta
from fnmatch import fnmatch
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import CONFIGS, QUIET, wait_for_checkpoint

from seqlit import __version__
from seqlit.run.entry import main as seqlit_entry

# --- one tiny fit per task family, shared by every case --------------------------------------------------------------
SINE = ["--config", str(CONFIGS / "sine_rnn.yaml"), "--model.cell", "gru", "--experiment", "sine_gru",
        "--data.length", "240", "--data.val_size", "40", "--data.test_size", "60", "--data.window", "8",
        "--model.hidden_size", "8", "--trainer.max_epochs", "1", *QUIET]  # fmt: skip
CSV = ["--config", str(CONFIGS / "csv_gru.yaml"), "--data.path", "weather.csv", "--data.target", "Temp",
       "--data.time_column", "Date", "--trainer.max_epochs", "1", "--model.hidden_size", "4", "--data.window", "8",
       "--data.horizon", "3", "--data.season", "7", "--data.ar_order", "4", "--data.batch_size", "64",
       *QUIET]  # fmt: skip
SYNTH = ["--config", str(CONFIGS / "synth_gru.yaml"), "--data.train_size", "64", "--data.val_size", "32",
         "--data.test_size", "32", "--data.batch_size", "32", "--data.seq_len", "12", "--model.hidden_size", "8",
         "--trainer.max_epochs", "1", *QUIET]  # fmt: skip
NPZ = ["--config", str(CONFIGS / "synth_gru.yaml"), "--experiment", "npz", "--data.mode", "file", "--data.path",
       "good.npz", "--data.val_size", "8", "--data.test_size", "8", "--data.batch_size", "16", "--data.seq_len", "6",
       "--data.crop_min_length", "null", "--data.num_classes", "3", "--model.hidden_size", "8",
       "--trainer.max_epochs", "1", *QUIET]  # fmt: skip
TEXT = ["--config", str(CONFIGS / "imdb_best.yaml"), "--data.root", "corpus", "--model.hidden_size", "8",
        "--model.embedding_dim", "8", "--model.warmup_steps", "0", "--data.batch_size", "8", "--data.min_freq", "1",
        "--trainer.max_epochs", "1", *QUIET]  # fmt: skip
CHARLM = ["--config", str(CONFIGS / "charlm_lstm.yaml"), "--data.path", "periodic.txt", "--model.hidden_size", "8",
          "--model.embedding_dim", "8", "--model.sample_length", "10", "--data.seq_len", "16", "--data.batch_size",
          "8", "--trainer.max_steps", "4", "--trainer.val_check_interval", "4", "--trainer.max_time", "null",
          "--model.schedule_by", "steps",
          "--data.generate_length", "10", *QUIET]  # fmt: skip
NO_TEST = ["--test_after_fit", "false"]
TASKS = {"sine": SINE, "csv": CSV, "synth": SYNTH, "text": TEXT, "charlm": CHARLM}
EXPERIMENTS = {"sine": "sine_gru", "csv": "csv_gru", "synth": "synth_gru", "text": "imdb_best", "charlm": "charlm_lstm"}
PERIOD = "the quick brown fox jumps over the lazy dog. "
WORDS = {"pos": ["great", "wonderful", "loved"], "neg": ["awful", "boring", "hated"]}
FILLER = "the a movie film plot actor scene story it was and of to".split()


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` with a hash of its bytes: names, sizes and contents in one comparable value."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in root.rglob("*") if p.is_file()
    }


def write_csv(path: Path, values: list[str], n: int | None = None) -> None:
    start = date(2024, 1, 1)
    lines = ["Date,Temp,Humidity"]
    lines += [f"{start + timedelta(days=t)},{v},{50 + t % 7}" for t, v in enumerate(values[:n])]
    path.write_text("\n".join(lines) + "\n")


def make_corpus(root: Path, per_class: dict[str, int]) -> None:
    rng = random.Random(0)
    for split, n in per_class.items():
        for label, words in WORDS.items():
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(n):
                tokens = [rng.choice(FILLER) for _ in range(rng.randint(3, 12))] + [rng.choice(words)]
                (folder / f"{i}_7.txt").write_text(" ".join(tokens))


def make_inputs(root: Path) -> None:
    """The good data files of each family, and the bad ones under ``bad/``."""
    sine = [f"{10 + 5 * math.sin(t / 3):.3f}" for t in range(90)]
    write_csv(root / "weather.csv", sine)
    rng = np.random.default_rng(0)
    np.savez(root / "good.npz", x=rng.normal(size=(48, 6, 2)).astype(np.float32), y=np.arange(48) % 3)
    make_corpus(root / "corpus", {"train": 12, "test": 6})
    (root / "periodic.txt").write_text(PERIOD * 20)
    bad = root / "bad"
    bad.mkdir()
    # CSV
    (bad / "empty.csv").write_bytes(b"")
    (bad / "header.csv").write_text("Date,Temp,Humidity\n")
    (bad / "binary.csv").write_bytes(bytes(range(256)) * 8)
    (bad / "latin1.csv").write_bytes((root / "weather.csv").read_text().replace("Temp", "Températ").encode("latin-1"))
    (bad / "utf16.csv").write_bytes((root / "weather.csv").read_text().encode("utf-16"))
    write_csv(bad / "huge.csv", [f"{v}e300" for v in sine])
    write_csv(bad / "nan.csv", [*sine[:40], "nan", *sine[41:]])
    write_csv(bad / "inf.csv", [*sine[:40], "inf", *sine[41:]])
    write_csv(bad / "short.csv", sine, n=6)
    # character corpus
    (bad / "empty.txt").write_bytes(b"")
    (bad / "binary.txt").write_bytes(bytes(range(256)) * 40)
    (bad / "latin1.txt").write_bytes(("caf\xe9 " + PERIOD * 20).encode("latin-1"))
    (bad / "utf16.txt").write_bytes((PERIOD * 20).encode("utf-16"))
    (bad / "short.txt").write_text("the fox")
    # text to predict
    (bad / "reviews_latin1.txt").write_bytes("a wonderful caf\xe9 film\nawful\n".encode("latin-1"))
    (bad / "reviews_utf16.txt").write_bytes("a wonderful film\nawful\n".encode("utf-16"))
    # npz
    (bad / "empty.npz").write_bytes(b"")
    (bad / "text.npz").write_text("x,y\n1,2\n")
    x = rng.normal(size=(48, 6, 2)).astype(np.float32)
    x_nan, x_inf = x.copy(), x.copy()
    x_nan[3, 2, 1], x_inf[5, 1, 0] = np.nan, np.inf
    np.savez(bad / "nan.npz", x=x_nan, y=np.arange(48) % 3)
    np.savez(bad / "inf.npz", x=x_inf, y=np.arange(48) % 3)
    np.savez(bad / "huge.npz", x=x.astype(np.float64) * 1e300, y=np.arange(48) % 3)
    np.savez(bad / "short.npz", x=x[:3], y=np.arange(3) % 3)
    np.savez(bad / "nox.npz", y=np.arange(48) % 3)
    # configs
    (bad / "empty.yaml").write_text("")
    (bad / "invalid.yaml").write_text("model: [unclosed\n  cell: {gru\n")
    (bad / "list.yaml").write_text("- fit\n- model\n")
    (bad / "latin1.yaml").write_bytes("experiment: caf\xe9\n".encode("latin-1"))
    # checkpoints that are not
    (bad / "text.ckpt").write_text("not a checkpoint\n")
    with zipfile.ZipFile(bad / "archive.ckpt", "w") as z:
        z.writestr("hello.txt", "a zip, not a checkpoint")
    torch.save(torch.zeros(3), bad / "tensor.pt")
    (bad / "no run").mkdir()


@dataclass
class World:
    root: Path
    ckpt: dict[str, Path] = field(default_factory=dict)


def _run_in_process(args: list[str]) -> int:
    try:
        seqlit_entry(args)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 1
    return 0


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> World:
    """A working folder with one small real fitted run per task family (and an npz classifier), and bad inputs."""
    root = tmp_path_factory.mktemp("hostile")
    make_inputs(root)
    w = World(root)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(root)
        mp.setattr(sys, "argv", ["seqlit"])
        mp.setattr(logging, "raiseExceptions", False)
        for name, args in [*TASKS.items(), ("npz", NPZ)]:
            assert _run_in_process(["fit", *args, *NO_TEST]) == 0, name
            exp = EXPERIMENTS.get(name, name)
            w.ckpt[name] = root / "lightning_logs" / exp / "version_0" / "checkpoints" / "last.ckpt"
            assert w.ckpt[name].is_file(), name
    ckpt = w.ckpt["sine"].read_bytes()
    (root / "bad" / "truncated.ckpt").write_bytes(ckpt[: len(ckpt) // 2])
    (root / "reviews.txt").write_text("a wonderful great film\n\nthe plot was awful and boring\n")
    return w


@pytest.fixture
def hostile(world, monkeypatch, capsys):
    """``hostile(args, cwd=None)`` runs the command in-process in the shared folder: ``(code, stdout, stderr)``."""
    monkeypatch.chdir(world.root)
    monkeypatch.setattr(sys, "argv", ["seqlit"])
    monkeypatch.setattr(logging, "raiseExceptions", False)

    def run(args: list[str], cwd: Path | None = None) -> tuple[int, str, str]:
        if cwd is not None:
            os.chdir(cwd)
        capsys.readouterr()
        code = _run_in_process(args)
        out, err = capsys.readouterr()
        os.chdir(world.root)
        return code, out, err

    return run


def assert_refused(code: int, out: str, err: str, expected_code: int, message: str) -> None:
    lines = [line for line in err.splitlines() if line.startswith("seqlit: error:")]
    assert code == expected_code, f"exit {code}\n--- stdout\n{out}\n--- stderr\n{err}"
    assert len(lines) == 1, err
    assert message in lines[0], lines[0]
    assert "Traceback" not in out + err, err
    assert "seqlit: error" not in out


def assert_untouched(before: dict[str, str], after: dict[str, str], allowed: tuple[str, ...] = ()) -> None:
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    assert not changed, f"changed or removed: {changed}"
    new = [name for name in after.keys() - before.keys() if not any(fnmatch(name, a) for a in allowed)]
    assert not new, f"new files: {new}"


# --- the cases --------------------------------------------------------------------------------------------------------
@dataclass
class Case:
    args: list[str]
    code: int = 2
    message: str = ""  # a substring of the one error line; "" with code 0: it must work
    allowed: tuple[str, ...] = ()  # new files the case may create (fnmatch patterns)
    marks: tuple = ()


def _fit(task: str, *extra: str) -> list[str]:
    return ["fit", *TASKS[task], *extra]


VALUE_CASES: dict[str, Case] = {}
for _task in TASKS:
    VALUE_CASES |= {
        f"{_task}-hidden_size-abc": Case(_fit(_task, "--model.hidden_size", "abc"), message="hidden_size"),
        f"{_task}-hidden_size-negative": Case(_fit(_task, "--model.hidden_size", "-3"), message="hidden_size"),
        f"{_task}-lr-negative": Case(_fit(_task, "--model.lr", "-1"), message="lr=-1"),
        f"{_task}-unknown-cell": Case(_fit(_task, "--model.cell", "transformerz"), message="transformerz"),
        f"{_task}-unknown-key": Case(_fit(_task, "--model.hiden_size", "8"), message="hiden_size"),
    }
VALUE_CASES |= {
    "sine-window-0": Case(_fit("sine", "--data.window", "0"), message="window=0 is not allowed: at least 1"),
    "csv-window-0": Case(_fit("csv", "--data.window", "0"), message="window=0 is not allowed: at least 1"),
    "synth-seq_len-0": Case(_fit("synth", "--data.seq_len", "0"), message="seq_len=0 is not allowed: at least 1"),
    "npz-seq_len-0": Case(["fit", *NPZ, "--data.seq_len", "0"], message="seq_len=0 is not allowed: at least 1"),
    "charlm-seq_len-0": Case(_fit("charlm", "--data.seq_len", "0"), message="seq_len=0 is not allowed: at least 1"),
    "text-max_length-0": Case(_fit("text", "--data.max_length", "0"), message="data.max_length=0"),
}

CONFIG_CASES = {
    "empty": Case(["fit", "--config", "bad/empty.yaml"], message="bad/empty.yaml"),
    "invalid-yaml": Case(["fit", "--config", "bad/invalid.yaml"], message="bad/invalid.yaml"),
    "yaml-list": Case(["fit", "--config", "bad/list.yaml"], message="bad/list.yaml"),
    "not-utf8": Case(["fit", "--config", "bad/latin1.yaml"], message="bad/latin1.yaml"),
    "missing": Case(["fit", "--config", "bad/nothere.yaml"], message="bad/nothere.yaml"),
    "directory": Case(["fit", "--config", "bad"], message="'bad'"),
}
_OTHER = {"sine": "synth", "csv": "text", "synth": "charlm", "text": "sine", "charlm": "csv"}
for _task, _other in _OTHER.items():
    for _sub in ("fit", "test"):
        CONFIG_CASES[f"{_sub}-{_task}-config-{_other}-ckpt"] = Case(
            [_sub, *TASKS[_task], "--ckpt_path", f"@{_other}"], message="checkpoint"
        )
CONFIG_CASES["sine.yaml-classifier-ckpt"] = Case(
    ["test", "--config", str(CONFIGS / "sine.yaml"), "--ckpt_path", "@synth"], message="Classifier"
)

CKPT_CASES: dict[str, Case] = {}
for _sub in ("predict", "test", "validate"):
    CKPT_CASES |= {
        f"{_sub}-missing": Case([_sub, "--ckpt_path", "bad/nothere.ckpt"], message="bad/nothere.ckpt"),
        f"{_sub}-truncated": Case([_sub, "--ckpt_path", "bad/truncated.ckpt"], message="bad/truncated.ckpt"),
        f"{_sub}-text-file": Case([_sub, "--ckpt_path", "bad/text.ckpt"], message="not a PyTorch file"),
        f"{_sub}-zip": Case([_sub, "--ckpt_path", "bad/archive.ckpt"], message="bad/archive.ckpt"),
        f"{_sub}-plain-tensor": Case([_sub, "--ckpt_path", "bad/tensor.pt"], message="bad/tensor.pt"),
        f"{_sub}-directory": Case([_sub, "--ckpt_path", "bad"], message="'bad'"),
    }
CKPT_CASES |= {
    "fit-truncated-resume": Case(_fit("sine", "--ckpt_path", "bad/truncated.ckpt"), message="bad/truncated.ckpt"),
    "fit-text-resume": Case(_fit("sine", "--ckpt_path", "bad/text.ckpt"), message="bad/text.ckpt"),
    "predict-best-no-runs": Case(["predict", "--ckpt_path", "best", "--experiment", "nothing"], message="nothing"),
    "fit-last-no-runs": Case(_fit("sine", "--ckpt_path", "last", "--experiment", "nothing"), message="nothing"),
    "test-last-no-runs": Case(["test", *SINE, "--ckpt_path", "last", "--experiment", "nothing"], message="nothing"),
    "predict-last-checkpointless-runs": Case(
        ["predict", *SINE, "--ckpt_path", "last", "--experiment", "results_only"], message="results_only"
    ),
}

_csv = ["--data.path"]
DATA_CASES: dict[str, Case] = {
    "csv-empty": Case(_fit("csv", *_csv, "bad/empty.csv"), message="bad/empty.csv"),
    "csv-header-only": Case(_fit("csv", *_csv, "bad/header.csv"), message="bad/header.csv"),
    "csv-binary": Case(_fit("csv", *_csv, "bad/binary.csv"), message="bad/binary.csv"),
    "csv-latin1": Case(_fit("csv", *_csv, "bad/latin1.csv", "--data.target", "Températ"), message="UTF-8"),
    "csv-utf16": Case(_fit("csv", *_csv, "bad/utf16.csv"), message="UTF-8"),
    "csv-1e300": Case(_fit("csv", *_csv, "bad/huge.csv"), message="in data row 1: numeric columns need magnitudes"),
    "csv-nan": Case(_fit("csv", *_csv, "bad/nan.csv"), message="missing values in 'Temp' at data rows 41"),
    "csv-inf": Case(_fit("csv", *_csv, "bad/inf.csv"), message="non-numeric value 'inf' in data row 41"),
    "csv-too-short": Case(_fit("csv", *_csv, "bad/short.csv"), message="window + horizon=11 is not allowed"),
    "csv-missing": Case(_fit("csv", *_csv, "bad/nothere.csv"), message="bad/nothere.csv"),
    "csv-directory": Case(_fit("csv", *_csv, "bad"), message="'bad'"),
    "corpus-empty": Case(_fit("charlm", "--data.path", "bad/empty.txt"), message="bad/empty.txt"),
    "corpus-binary": Case(_fit("charlm", "--data.path", "bad/binary.txt"), message="bad/binary.txt"),
    "corpus-latin1": Case(_fit("charlm", "--data.path", "bad/latin1.txt"), message="UTF-8"),
    "corpus-utf16": Case(_fit("charlm", "--data.path", "bad/utf16.txt"), message="UTF-8"),
    "corpus-too-short": Case(_fit("charlm", "--data.path", "bad/short.txt"), message="bad/short.txt"),
    "corpus-missing": Case(_fit("charlm", "--data.path", "bad/nothere.txt"), message="bad/nothere.txt"),
    "text-root-missing": Case(_fit("text", "--data.root", "bad/nothere"), message="bad/nothere"),
    "text-root-empty-folder": Case(_fit("text", "--data.root", "bad/no run"), message="bad/no run"),
    "predict-text-binary": Case(
        ["predict", "--ckpt_path", "@text", "--data.predict_path", "bad/binary.txt"], message="bad/binary.txt"
    ),
    "predict-text-empty": Case(
        ["predict", "--ckpt_path", "@text", "--data.predict_path", "bad/empty.txt"], message="bad/empty.txt"
    ),
    "predict-text-utf16": Case(
        ["predict", "--ckpt_path", "@text", "--data.predict_path", "bad/reviews_utf16.txt"], message="UTF-8"
    ),
    "predict-text-latin1": Case(
        ["predict", "--ckpt_path", "@text", "--data.predict_path", "bad/reviews_latin1.txt"], message="UTF-8"
    ),
    "sine-too-short": Case(_fit("sine", "--data.length", "30"), message="fewer than the series' 30 steps"),
    "sine-noise-1e300": Case(_fit("sine", "--data.noise", "1e300"), message="noise=1e+300 is not allowed"),
    "predict-text-missing": Case(
        ["predict", "--ckpt_path", "@text", "--data.predict_path", "bad/nothere.txt"], message="bad/nothere.txt"
    ),
    "npz-empty": Case(["fit", *NPZ, "--data.path", "bad/empty.npz"], message="bad/empty.npz"),
    "npz-text": Case(["fit", *NPZ, "--data.path", "bad/text.npz"], message="bad/text.npz"),
    "npz-binary": Case(["fit", *NPZ, "--data.path", "bad/binary.csv"], message="bad/binary.csv"),
    "npz-nan": Case(["fit", *NPZ, "--data.path", "bad/nan.npz"], message="bad/nan.npz"),
    "npz-inf": Case(["fit", *NPZ, "--data.path", "bad/inf.npz"], message="bad/inf.npz"),
    "npz-1e300": Case(["fit", *NPZ, "--data.path", "bad/huge.npz"], message="bad/huge.npz"),
    "npz-too-short": Case(
        ["fit", *NPZ, "--data.path", "bad/short.npz"], message="val_size + test_size=16 is not allowed"
    ),
    "npz-no-x": Case(["fit", *NPZ, "--data.path", "bad/nox.npz"], message="bad/nox.npz"),
}

COMMAND_CASES = {
    "typo": Case(["fti", *SINE], message="'fti'"),
    "typo-tool": Case(["exprot"], message="'exprot'"),
    "typo-after-verbose": Case(["--verbose", "fti"], message="subcommand='fti' is not known (did you mean 'fit'?)"),
    "only-flags": Case(["--experiment", "x"], message="subcommand is missing: start with one of fit"),
    "predict-no-arguments": Case(["predict"], message="--ckpt_path"),
    "fit-no-config": Case(["fit"], message="fit needs a config (--config"),
    "verbose-bad-value": Case(["fit", *SINE, "--verbose", "--model.hidden_size", "abc"], message="hidden_size"),
}


def _resolve(args: list[str], world: World) -> list[str]:
    return [str(world.ckpt[a[1:]]) if a.startswith("@") else a for a in args]


def _cases(table: dict[str, Case]) -> list:
    return [pytest.param(case, id=name, marks=case.marks) for name, case in table.items()]


@pytest.fixture(scope="module")
def results_only_runs(world) -> None:
    """An experiment whose runs hold results but no checkpoint (earlier test/predict runs)."""
    run = world.root / "lightning_logs" / "results_only" / "version_0"
    run.mkdir(parents=True, exist_ok=True)
    (run / "test_metrics.json").write_text('{"test/mse": 0.5}\n')


def _check(case: Case, world: World, hostile) -> None:
    before = snapshot(world.root)
    code, out, err = hostile(_resolve(case.args, world))
    assert_refused(code, out, err, case.code, case.message)
    assert_untouched(before, snapshot(world.root), case.allowed)


@pytest.mark.parametrize("case", _cases(VALUE_CASES))
def test_wrong_types_and_ranges(case, world, hostile):
    _check(case, world, hostile)


@pytest.mark.parametrize("case", _cases(CONFIG_CASES))
def test_config_files(case, world, hostile):
    _check(case, world, hostile)


@pytest.mark.parametrize("case", _cases(CKPT_CASES))
def test_checkpoints(case, world, hostile, results_only_runs):
    _check(case, world, hostile)


@pytest.mark.parametrize("case", _cases(DATA_CASES))
def test_data_files(case, world, hostile):
    _check(case, world, hostile)


@pytest.mark.parametrize("case", _cases(COMMAND_CASES))
def test_the_command(case, world, hostile):
    _check(case, world, hostile)


@pytest.mark.parametrize("args", [[], ["--help"], ["-h"], ["fit", "--help"]], ids=["no-args", "help", "h", "fit-help"])
def test_help_answers_and_changes_nothing(args, world, hostile):
    before = snapshot(world.root)
    code, out, err = hostile(args)
    assert code == 0 and "usage" in out.lower() and "Traceback" not in err
    assert_untouched(before, snapshot(world.root))


def test_version(world, hostile):
    code, out, err = hostile(["--version"])
    assert code == 0 and out.strip() == f"seqlit {__version__}" and not err


def test_verbose_passes_through_and_works(world, hostile):
    before = snapshot(world.root)
    code, out, err = hostile(["validate", "--ckpt_path", str(world.ckpt["sine"]), "--verbose", *QUIET])
    assert code == 0, err
    assert "Traceback" not in err
    assert_untouched(before, snapshot(world.root), ("lightning_logs/sine_gru/version_*/*",))


# --- output folders ---------------------------------------------------------------------------------------------------
def _data_in(task: str, folder: str) -> list[str]:
    """The task's tiny fit with its data file copied to ``folder`` (a name with a space and non-ASCII letters)."""
    names = {"csv": "wëather ü.csv", "charlm": "tëxt ü.txt", "text": "córpus ü", "npz": "dätä ü.npz"}
    args = list(NPZ if task == "npz" else TASKS[task])
    if task in names:
        key = "--data.root" if task == "text" else "--data.path"
        args[args.index(key) + 1] = f"{folder}/{names[task]}"
    return args


@pytest.fixture(scope="module")
def odd_folders(world) -> None:
    folder = world.root / "data dir ü"
    folder.mkdir()
    shutil.copy(world.root / "weather.csv", folder / "wëather ü.csv")
    shutil.copy(world.root / "periodic.txt", folder / "tëxt ü.txt")
    shutil.copy(world.root / "good.npz", folder / "dätä ü.npz")
    shutil.copytree(world.root / "corpus", folder / "córpus ü")
    (world.root / "blocked").mkdir()
    (world.root / "blocked" / "lightning_logs").write_text("a file where the log folder should be\n")
    (world.root / "blocked_exp" / "lightning_logs").mkdir(parents=True)
    for exp in EXPERIMENTS.values():
        (world.root / "blocked_exp" / "lightning_logs" / exp).write_text("a file where the experiment should be\n")


@pytest.mark.parametrize("task", [*TASKS, "npz"])
def test_paths_with_spaces_and_unicode_work(task, world, hostile, odd_folders):
    before = snapshot(world.root)
    code, out, err = hostile(["fit", *_data_in(task, "data dir ü"), "--trainer.default_root_dir", "out dir/ü"])
    assert code == 0, err
    assert "Traceback" not in err
    exp = EXPERIMENTS.get(task, task)
    runs = sorted((world.root / "out dir" / "ü" / "lightning_logs" / exp).glob("version_*/checkpoints/last.ckpt"))
    assert runs, out
    assert_untouched(before, snapshot(world.root), ("out dir/ü/*", ".cache/*"))
    code, out, err = hostile(["predict", "--ckpt_path", str(runs[-1]), "--trainer.default_root_dir", "out dir/ü",
                              *(["--data.predict_path", "reviews.txt"] if task == "text" else []), *QUIET])  # fmt: skip
    assert code == 0, err


OUTPUT_CASES = {
    **{
        f"{task}-lightning_logs-is-a-file": Case(
            _fit(task, "--trainer.default_root_dir", "blocked"), message="blocked/lightning_logs"
        )
        for task in TASKS
    },
    **{
        f"{task}-experiment-is-a-file": Case(
            _fit(task, "--trainer.default_root_dir", "blocked_exp"), message=f"blocked_exp/lightning_logs/{exp}"
        )
        for task, exp in EXPERIMENTS.items()
    },
    "predict-lightning_logs-is-a-file": Case(
        ["predict", "--ckpt_path", "@sine", "--trainer.default_root_dir", "blocked"], message="blocked/lightning_logs"
    ),
}


@pytest.mark.parametrize("case", _cases(OUTPUT_CASES))
def test_output_folder_that_is_a_file(case, world, hostile, odd_folders):
    _check(case, world, hostile)


@pytest.mark.parametrize("where", ["cwd", "experiment"])
def test_read_only_output_folder(where, world, hostile, tmp_path):
    """A folder the command cannot write to: one line, nothing changed. Needs permissions that are enforced."""
    root = tmp_path / "ro"
    target = root if where == "cwd" else root / "lightning_logs" / "sine_gru"
    target.mkdir(parents=True)
    target.chmod(stat.S_IRUSR | stat.S_IXUSR)
    try:
        if os.access(target, os.W_OK):
            pytest.skip("permissions are not enforced for this user (root): see the *-is-a-file cases")
        before = snapshot(root)
        code, out, err = hostile(["fit", *SINE, "--trainer.default_root_dir", str(root)])
        assert_refused(code, out, err, 2, "permission denied")
        assert_untouched(before, snapshot(root))
    finally:
        target.chmod(stat.S_IRWXU)


# --- signals (real processes) -----------------------------------------------------------------------------------------
LONG = ["--config", str(CONFIGS / "sine.yaml"), "--data.length", "300", "--data.window", "8", "--data.val_size", "40",
        "--data.test_size", "40", "--data.batch_size", "16", "--model.hidden_size", "8", "--test_after_fit", "false",
        *QUIET]  # fmt: skip
SIGNALS = {"SIGINT": (signal.SIGINT, 130), "SIGTERM": (signal.SIGTERM, 143), "SIGKILL": (signal.SIGKILL, -9)}


def _popen(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "seqlit", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


def _finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"still running after {timeout} s\n{out}\n{err}")


def _assert_signalled(proc: subprocess.Popen, name: str, err: str) -> None:
    sig, code = SIGNALS[name]
    assert proc.returncode == code, err
    if name != "SIGKILL":
        lines = [line for line in err.splitlines() if line.startswith("seqlit:")]
        assert lines and f"seqlit: stopped by a signal ({name})" in lines[-1], err
        assert "Traceback" not in err, err


def _last_is_whole_or_absent(last: Path) -> dict | None:
    from seqlit.run.checkpoints import load_checkpoint

    return load_checkpoint(last) if last.exists() else None  # weights-only: a cut-short file fails here


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_at_startup(name, world, odd_folders):
    exp = f"startup_{name}"
    before = snapshot(world.root)
    proc = _popen(["fit", *LONG, "--experiment", exp, "--trainer.max_epochs", "1000"], world.root)
    time.sleep(1.0)  # importing torch and Lightning: no step has run yet
    proc.send_signal(SIGNALS[name][0])
    out, err = _finish(proc)
    _assert_signalled(proc, name, err)
    assert "Resuming" not in out
    if name == "SIGKILL":  # no chance to clean up: at most an empty run folder with its lock
        assert_untouched(before, snapshot(world.root), (f"lightning_logs/{exp}/version_0/*",))
        assert not list((world.root / "lightning_logs").glob(f"{exp}/*/checkpoints/*.ckpt"))
    else:  # nothing half-made is left: not even an empty run folder
        assert not (world.root / "lightning_logs" / exp).exists()
        assert_untouched(before, snapshot(world.root))


@pytest.mark.slow
@pytest.mark.parametrize("name", list(SIGNALS))
def test_a_signal_mid_epoch_then_resume(name, world, odd_folders):
    exp = f"mid_{name}"
    last = world.root / "lightning_logs" / exp / "version_0" / "checkpoints" / "last.ckpt"
    before = snapshot(world.root)
    args = ["fit", *LONG, "--experiment", exp, "--last_checkpoint.every_n_train_steps", "5"]
    proc = _popen([*args, "--trainer.max_epochs", "1000"], world.root)
    first = wait_for_checkpoint(last, proc)
    time.sleep(0.3)
    proc.send_signal(SIGNALS[name][0])
    out, err = _finish(proc)
    _assert_signalled(proc, name, err)
    saved = _last_is_whole_or_absent(last)
    assert saved is not None and saved["global_step"] >= first
    if name != "SIGKILL":  # a stop it could handle finishes its write: no temporary file is left
        assert not list(last.parent.glob("*.tmp"))
    assert_untouched(before, snapshot(world.root), (f"lightning_logs/{exp}/*",))
    resume = _popen([*args, "--trainer.max_epochs", str(saved["epoch"] + 2), "--ckpt_path", "last"], world.root)
    out, err = _finish(resume)
    assert resume.returncode == 0, err
    assert f"step {saved['global_step']})" in out
    assert not (last.parents[2] / "version_1").exists()


@pytest.mark.slow
def test_kills_during_checkpoint_writes_never_leave_a_truncated_last_ckpt(world, odd_folders):
    exp = "kill_during_write"
    last = world.root / "lightning_logs" / exp / "version_0" / "checkpoints" / "last.ckpt"
    before = snapshot(world.root)
    args = [
        "fit",
        *LONG,
        "--experiment",
        exp,
        "--last_checkpoint.every_n_train_steps",
        "1",
        "--model.hidden_size",
        "256",
        "--trainer.max_epochs",
        "1000",
    ]  # fmt: skip  (a bigger model: each write takes longer)
    rng = random.Random(0)
    steps = []
    for attempt in range(3):
        proc = _popen(args + (["--ckpt_path", "last"] if attempt else []), world.root)
        steps.append(wait_for_checkpoint(last, proc))
        time.sleep(rng.uniform(0.05, 0.5))
        proc.send_signal(signal.SIGKILL)
        _finish(proc)
        assert proc.returncode == -9
        saved = _last_is_whole_or_absent(last)
        assert saved is not None and saved["global_step"] >= steps[-1]
    assert steps == sorted(steps)  # every start went on from the last save
    assert_untouched(before, snapshot(world.root), (f"lightning_logs/{exp}/*",))


# --- two commands on one experiment -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_two_resumes_of_one_run_at_once_one_refuses(world, hostile):
    exp = "twice"
    assert hostile(["fit", *LONG, "--experiment", exp, "--trainer.max_epochs", "1"])[0] == 0
    lock = world.root / "lightning_logs" / exp / "version_0" / ".lock"
    args = ["fit", *LONG, "--experiment", exp, "--trainer.max_epochs", "1000", "--ckpt_path", "last"]
    first = _popen(args, world.root)
    end = time.monotonic() + 120
    while not lock.exists() and time.monotonic() < end and first.poll() is None:
        time.sleep(0.1)
    assert lock.exists(), first.communicate()
    second = _popen(args, world.root)
    out, err = _finish(second)
    first.send_signal(signal.SIGTERM)
    _finish(first)
    assert second.returncode == 2, err
    lines = [line for line in err.splitlines() if line.startswith("seqlit: error:")]
    assert len(lines) == 1 and "is in use by process" in lines[0] and "Traceback" not in err
    assert first.returncode == 143


@pytest.mark.slow
def test_two_fresh_fits_at_once_get_two_run_folders(world):
    exp = "together"
    args = ["fit", *LONG, "--experiment", exp, "--trainer.max_epochs", "1"]
    procs = [_popen(args, world.root) for _ in range(2)]
    errs = [_finish(p)[1] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], errs
    runs = sorted((world.root / "lightning_logs" / exp).glob("version_*/checkpoints/last.ckpt"))
    assert [r.parts[-3] for r in runs] == ["version_0", "version_1"]
