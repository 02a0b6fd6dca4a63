"""``seqlit sweep``: hyperparameter search over any seqlit config with Optuna, resumable and parallel on one machine.

    seqlit sweep --config configs/sine.yaml --space "model.hidden_size: [32, 64, 128]" \\
                 --space "model.lr: loguniform(1e-4, 1e-2)" --trials 20 --jobs 2

Each trial is a real ``seqlit fit`` run (see :mod:`seqlit.run.sweep_trial`) with the sampled values as flags; any other
flag given to ``sweep`` (``--trainer.max_epochs 5``) is passed to every trial. Optuna's TPE sampler proposes values
and a median pruner stops trials whose validation curve falls behind the median of earlier trials at the same epoch.

Everything lives in one folder, ``sweeps/<name>/``: the study (an Optuna journal file, which several processes can
share safely), every trial's run (``lightning_logs/trial_<n>/``) and output log, ``trials.csv`` and ``best.yaml``.
``--trials N`` is the number of finished trials the study should hold: rerunning the same command after an
interruption continues the study, and a larger N adds trials. ``--jobs N`` runs N worker processes (never threads:
Lightning is not thread-safe), each taking the next trial from the shared study. At the end the best trial's full
config is printed and written to ``best.yaml``, ready for ``seqlit fit --config sweeps/<name>/best.yaml``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import yaml

from seqlit.errors import InputError, require
from seqlit.run.sweep_report import best_trial, progress, report, resolve_config, write_trials_csv
from seqlit.run.sweep_space import as_flags, parse_space
from seqlit.run.sweep_trial import TrialFailed, check_metric_name, run_trial

INSTALL_HINT = "seqlit sweep needs Optuna, which is not installed: pip install 'seqlit[sweep]'"
PRUNE_STARTUP_TRIALS = 5  # the median of fewer curves says little about a new one
PRUNE_WARMUP_EPOCHS = 1  # the first epoch's validation is too noisy to judge a run by


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise InputError(f"{message} (see: seqlit sweep --help)")


def _parser() -> _Parser:
    p = _Parser(prog="seqlit sweep", allow_abbrev=False, description=__doc__.split("\n\n")[0])
    p.add_argument("--config", "-c", action="append", required=True, help="config file(s), stacked as for fit")
    p.add_argument("--space", action="append", required=True, help="'key: [a, b]' or 'key: loguniform(a, b)' ...")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should hold (default 20)")
    p.add_argument("--jobs", type=int, default=1, help="worker processes running trials at once (default 1)")
    p.add_argument("--metric", default="val/loss", help="logged metric to optimise (default val/loss)")
    p.add_argument("--direction", choices=("minimize", "maximize"), default="minimize")
    p.add_argument("--pruner", choices=("median", "none"), default="median")
    p.add_argument("--name", help="study name (default <experiment>_sweep)")
    p.add_argument("--dir", help="sweep folder (default sweeps/<name>)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampler")
    return p


def _plan(opts: argparse.Namespace, fit_args: list[str], folder: Path, name: str) -> dict:
    return {
        "name": name,
        "folder": str(folder),
        "space": opts.space,
        "fit_args": fit_args,
        "metric": opts.metric,
        "maximize": opts.direction == "maximize",
        "pruner": opts.pruner,
        "seed": opts.seed,
        "jobs": opts.jobs,
    }


def _open_study(plan: dict, worker: int, n_start: int) -> Any:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # seqlit prints its own line per trial
    from optuna.storages.journal import JournalFileBackend, JournalStorage

    storage = JournalStorage(JournalFileBackend(str(Path(plan["folder"]) / "study.journal")))
    # a different seed per worker and per resumption, so no two of them propose the same first values
    sampler = optuna.samplers.TPESampler(seed=plan["seed"] + 1000 * n_start + worker, constant_liar=plan["jobs"] > 1)
    pruner = (
        optuna.pruners.MedianPruner(n_startup_trials=PRUNE_STARTUP_TRIALS, n_warmup_steps=PRUNE_WARMUP_EPOCHS)
        if plan["pruner"] == "median"
        else optuna.pruners.NopPruner()
    )
    direction = "maximize" if plan["maximize"] else "minimize"
    return optuna.create_study(
        study_name=plan["name"], storage=storage, sampler=sampler, pruner=pruner, direction=direction,
        load_if_exists=True,
    )  # fmt: skip


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive lock across processes: taking the next trial and checking the count must be one step.

    Optuna's own lock for journal files: a lock file created with O_CREAT | O_EXCL, portable to any OS and to NFS,
    and broken after 30 s if its holder died (the section it guards takes milliseconds).
    """
    from optuna.storages.journal import JournalFileOpenLock

    lock = JournalFileOpenLock(str(path))
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def work(plan: dict, worker: int, stop_at: int, announce: Any = None) -> None:
    """Run trials until the study holds ``stop_at`` trials; a trial with bad input stops this worker (InputError)."""
    import optuna

    dims = parse_space(plan["space"])
    folder = Path(plan["folder"])
    study = _open_study(plan, worker, stop_at)
    while True:
        with _locked(folder / "ask"):
            if len(study.get_trials(deepcopy=False)) >= stop_at:
                return
            trial = study.ask()
        params = {d.key: d.sample(trial) for d in dims}
        fit_args = plan["fit_args"] + as_flags(params)
        try:
            value, _ = run_trial(trial, fit_args, plan["metric"], plan["maximize"], folder)
            study.tell(trial, value)
        except optuna.TrialPruned:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        except TrialFailed as exc:
            trial.set_user_attr("error", str(exc))
            trial.set_user_attr("bad_input", exc.bad_input)
            study.tell(trial, state=optuna.trial.TrialState.FAIL)
            if exc.bad_input:
                raise InputError(f"trial {trial.number} ({' '.join(as_flags(params))}): {exc}") from None
        if announce is not None:
            announce(study.get_trials(deepcopy=False)[trial.number])


def worker_entry(plan_path: str, worker: str, stop_at: str) -> None:
    """A worker process of ``--jobs N``; exit status 2 when a trial had bad input (the parent reports it)."""
    try:
        work(json.loads(Path(plan_path).read_text()), int(worker), int(stop_at))
    except InputError:
        sys.exit(2)


def _run_workers(plan: dict, folder: Path, stop_at: int, study: Any, n_start: int) -> None:
    """Start ``jobs`` worker processes and print a line per finished trial until they are done."""
    from optuna.trial import TrialState

    plan_path = folder / "plan.json"
    plan_path.write_text(json.dumps(plan, indent=1))
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // plan["jobs"])))  # no oversubscription
    code = "import sys; from seqlit.run.sweep import worker_entry; worker_entry(*sys.argv[1:])"
    procs = []
    for i in range(plan["jobs"]):
        with (folder / f"worker_{i}.log").open("a") as log:
            cmd = [sys.executable, "-c", code, str(plan_path), str(i), str(stop_at)]
            procs.append(subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT))
    shown: set[int] = set()
    try:
        while True:
            running = [p for p in procs if p.poll() is None]
            for t in study.get_trials(deepcopy=False):
                if t.number >= n_start and t.number not in shown and t.state != TrialState.RUNNING:
                    shown.add(t.number)
                    print(progress(t, plan, best_trial(study)), flush=True)
                    if t.user_attrs.get("bad_input"):
                        raise InputError(f"trial {t.number}: {t.user_attrs.get('error')}")
            crashed = [i for i, p in enumerate(procs) if p.returncode not in (None, 0, 2)]
            if crashed:
                raise RuntimeError(f"sweep worker {crashed[0]} crashed; see {folder / f'worker_{crashed[0]}.log'}")
            if not running:
                return
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                p.wait()


def _sweep(argv: list[str]) -> None:
    opts, extra = _parser().parse_known_args(argv)
    try:
        import optuna  # noqa: F401 - only to say at once, in one line, how to install it
    except ImportError:
        raise InputError(INSTALL_HINT) from None
    require(opts.trials >= 1, "--trials", opts.trials, "at least 1")
    require(opts.jobs >= 1, "--jobs", opts.jobs, "at least 1 worker process")
    check_metric_name(opts.metric)
    dims = parse_space(opts.space)
    fit_args = [a for c in opts.config for a in ("--config", c)] + extra
    # parse the config once with a value from every dimension: an unknown key or a bad value fails here, not in a trial
    resolved = yaml.safe_load(resolve_config(fit_args + as_flags({d.key: d.first() for d in dims})))
    experiment = resolved.get("experiment") or "seqlit"
    name = opts.name or f"{experiment}_sweep"
    folder = Path(opts.dir or Path("sweeps") / name)
    created = not (folder / "study.journal").exists()
    folder.mkdir(parents=True, exist_ok=True)
    try:
        _run_study(opts, fit_args, folder, name, experiment)
    except InputError:
        # a new sweep that failed on bad input before any trial left a checkpoint leaves no folder behind
        if created and not any(folder.glob("lightning_logs/*/*/checkpoints/*.ckpt")):
            shutil.rmtree(folder, ignore_errors=True)
        raise


def fail_interrupted(study: Any) -> list[int]:
    """Mark the trials an interrupted sweep left running as failed, and return their numbers.

    One sweep command runs per study at a time, so a running trial found at the start will never finish. A failed
    trial without an ``error`` attribute reads as interrupted (:func:`seqlit.run.sweep_report.error_of`).
    """
    from optuna.trial import TrialState

    numbers = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))]
    for number in numbers:
        study.tell(number, state=TrialState.FAIL)
    return numbers


def _run_study(opts: argparse.Namespace, fit_args: list[str], folder: Path, name: str, experiment: str) -> None:
    import optuna

    plan = _plan(opts, fit_args, folder, name)
    study = _open_study(plan, 0, 0)
    started = study.user_attrs.get("fit_args")
    if started is not None and (started != fit_args or study.user_attrs.get("metric") != opts.metric):
        raise InputError(
            f"--name {name!r}: this study was started with {' '.join(started)} and --metric "
            f"{study.user_attrs.get('metric')}; give the same, or a new --name for a new study"
        )
    study.set_user_attr("fit_args", fit_args)
    study.set_user_attr("metric", opts.metric)
    fail_interrupted(study)
    finished = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    done = len(study.get_trials(deepcopy=False, states=finished))
    n_start = len(study.get_trials(deepcopy=False))
    todo = opts.trials - done
    print(f"Sweep {name!r} in {folder}: {done} finished trial(s) so far, {max(todo, 0)} to run, {opts.jobs} worker(s)")
    if todo > 0:
        stop_at = n_start + todo
        if opts.jobs == 1:  # no second process needed: run the trials here
            work(plan, 0, stop_at, announce=lambda t: print(progress(t, plan, best_trial(study)), flush=True))
        else:
            _run_workers(plan, folder, stop_at, study, n_start)
    write_trials_csv(study, folder / "trials.csv")
    report(study, plan, fit_args, experiment, folder)


def main(argv: list[str]) -> None:
    """Entry point of ``seqlit sweep`` (dispatched from :func:`seqlit.run.cli.main`)."""
    try:
        _sweep(argv)
    except InputError as err:
        print(f"seqlit: error: {err}", file=sys.stderr)
        sys.exit(2)
    except RuntimeError as err:
        print(f"seqlit: error: {err}", file=sys.stderr)
        sys.exit(1)
