"""``seqlit sweep``: the --space grammar, bad input as one line, a real 3-trial sweep whose best.yaml then fits through
the real CLI, resuming a study, and pruning that really stops a trial."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from conftest import CONFIGS, QUIET

from seqlit.errors import InputError
from seqlit.run.sweep_space import as_flags, parse_dimension, parse_space

optuna = pytest.importorskip("optuna")

BASE = ["--config", str(CONFIGS / "sine.yaml"), "--config", str(CONFIGS / "trainer" / "debug.yaml")]
SPACE = ["--space", "model.hidden_size: [4, 8]", "--space", "model.lr: loguniform(1e-3, 1e-1)"]


def test_space_grammar():
    assert parse_dimension("model.hidden_size: [32, 64, 128]").values == (32, 64, 128)
    assert parse_dimension("model.cell: [lstm, gru]").values == ("lstm", "gru")
    dim = parse_dimension("--model.lr: loguniform(1e-4, 1e-2)")
    assert (dim.key, dim.kind, dim.values) == ("model.lr", "loguniform", (1e-4, 1e-2))
    assert parse_dimension("data.window: int(8, 64)").values == (8, 64)
    assert parse_dimension("model.dropout: uniform(0, 0.5)").kind == "uniform"
    assert as_flags({"model.lr": 0.001, "model.bidirectional": True, "model.cell": "gru"}) == [
        "--model.lr", "0.001", "--model.bidirectional", "true", "--model.cell", "gru",
    ]  # fmt: skip


@pytest.mark.parametrize(
    "spec",
    [
        "model.lr loguniform(1e-4, 1e-2)",  # no colon
        "lr: [1, 2]",  # not a dotted config key
        "model.lr: lognormal(1, 2)",  # unknown distribution
        "model.lr: loguniform(0, 1)",  # log scale needs bounds > 0
        "model.lr: uniform(1, 1)",  # empty range
        "model.hidden_size: int(1.5, 8)",  # int with a fractional bound
        "model.hidden_size: []",  # no choices
        "model.hidden_size: [8, 8]",  # a choice twice
    ],
)
def test_bad_space_spec_names_it(spec):
    with pytest.raises(InputError, match="--space"):
        parse_dimension(spec)


def test_same_key_twice_is_an_error():
    with pytest.raises(InputError, match="given 2 times"):
        parse_space(["model.lr: [0.1]", "model.lr: [0.2]"])


@pytest.mark.parametrize(
    "args, expected",
    [
        (["--space", "model.lr: lognormal(1, 2)"], "lognormal"),
        (["--space", "model.hiden_size: [4, 8]"], "hiden_size"),  # unknown key: caught before any trial
        (["--space", "model.lr: [0.1]", "--trials", "0"], "--trials=0"),
    ],
)
def test_bad_sweep_input_is_one_line(seqlit_main, args, expected):
    code, out, err = seqlit_main(["sweep", *BASE, *args])
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("seqlit: error:") and expected in err
    assert not (seqlit_main.cwd / "sweeps").exists() or not any((seqlit_main.cwd / "sweeps").iterdir())


def test_optuna_missing_says_how_to_install(seqlit_main, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna", None)  # import optuna now raises ImportError
    code, _, err = seqlit_main(["sweep", *BASE, "--space", "model.lr: [0.1]"])
    assert code == 2 and "pip install 'seqlit[sweep]'" in err and err.count("\n") == 1


def test_sweep_best_yaml_fits_and_study_resumes_with_two_workers(seqlit_main):
    cmd = ["sweep", *BASE, *SPACE, "--name", "tiny"]
    code, out, err = seqlit_main([*cmd, "--trials", "3"])
    assert code == 0, err
    folder = seqlit_main.cwd / "sweeps" / "tiny"
    lines = [line for line in out.splitlines() if line.startswith("trial ")]
    assert len(lines) == 3 and all("val/loss=" in line for line in lines), out  # one progress line per trial
    best = folder / "best.yaml"
    config = yaml.safe_load(best.read_text())
    assert config["model"]["init_args"]["hidden_size"] in (4, 8)
    assert 1e-3 <= config["model"]["init_args"]["lr"] <= 1e-1
    assert config["experiment"] == "sine_best" and config["trainer"]["max_epochs"] == 2  # the debug overlay kept
    assert "seed_everything: 42" in out  # the best config is printed as YAML too
    study = optuna.load_study(study_name="tiny", storage=optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(folder / "study.journal"))))  # fmt: skip
    assert [t.state.name for t in study.trials] == ["COMPLETE"] * 3
    assert study.best_trial.params["model.hidden_size"] == config["model"]["init_args"]["hidden_size"]
    for t in study.trials:  # every trial is a real fit run with its own checkpoint
        assert list((Path(t.user_attrs["run"])).glob("version_0/checkpoints/*.ckpt")), t.user_attrs["run"]

    # the best YAML is ready to run with the `seqlit` command (its entry point, in this process: the workers above
    # were the subprocesses), nothing else needed
    code, out, err = seqlit_main(["fit", "--config", str(best), *QUIET, "--test_after_fit", "false"])
    assert code == 0, err
    assert list((seqlit_main.cwd / "lightning_logs" / "sine_best").glob("version_0/checkpoints/*.ckpt"))

    # the same command with a larger --trials continues the stored study, here in two worker processes
    code, out, err = seqlit_main([*cmd, "--trials", "5", "--jobs", "2"])
    assert code == 0, err
    assert "3 finished trial(s) so far, 2 to run, 2 worker(s)" in out
    assert sorted(line.split()[1] for line in out.splitlines() if line.startswith("trial ")) == ["3", "4"]
    trials = optuna.load_study(study_name="tiny", storage=study._storage).trials
    assert [t.state.name for t in trials] == ["COMPLETE"] * 5
    assert (folder / "worker_0.log").is_file() and (folder / "worker_1.log").is_file()


class _AlwaysPrune(optuna.pruners.BasePruner):
    def prune(self, study, trial) -> bool:
        return True


def test_pruned_trial_stops_after_its_first_validation(tmp_path, monkeypatch):
    from seqlit.run.sweep_trial import TrialFailed, run_trial

    monkeypatch.chdir(tmp_path)
    study = optuna.create_study(pruner=_AlwaysPrune())
    trial = study.ask()
    with pytest.raises(optuna.TrialPruned):
        run_trial(trial, [*BASE, "--trainer.max_epochs", "5"], "val/loss", False, tmp_path / "sweep")
    assert trial.user_attrs["pruned_at_epoch"] == 0
    run = tmp_path / "sweep" / "lightning_logs" / "trial_0" / "version_0"
    assert len(list(run.glob("events.out.tfevents.*"))) == 1
    # stopped after epoch 0 of 5: the saved checkpoint is of the first epoch
    assert [p.name for p in (run / "checkpoints").glob("epoch=*.ckpt")] == ["epoch=0-step=5.ckpt"]

    # a metric the run does not log fails the trial as bad input, naming what it does log
    trial = study.ask()
    with pytest.raises(TrialFailed, match="val/mse_vs_floor") as info:
        run_trial(trial, BASE, "val/nothing", False, tmp_path / "sweep")
    assert info.value.bad_input


def test_trials_left_running_are_failed_as_interrupted_and_the_lock_is_released(tmp_path):
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    from seqlit.run.sweep import _locked, fail_interrupted
    from seqlit.run.sweep_report import error_of

    storage = JournalStorage(JournalFileBackend(str(tmp_path / "study.journal")))
    study = optuna.create_study(study_name="s", storage=storage)
    study.tell(study.ask(), 1.0)
    study.ask()  # a trial whose sweep was killed: it stays RUNNING in the journal
    again = optuna.load_study(study_name="s", storage=storage)  # what the next sweep command sees
    assert fail_interrupted(again) == [1]
    states = [t.state.name for t in again.get_trials()]
    assert states == ["COMPLETE", "FAIL"]
    assert [error_of(t) for t in again.get_trials()] == ["", "interrupted"]
    for _ in range(2):  # taken and released: the second take does not wait for a stale lock
        with _locked(tmp_path / "ask"):
            assert (tmp_path / "ask.lock").exists()
        assert not (tmp_path / "ask.lock").exists()
