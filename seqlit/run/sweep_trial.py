"""One trial of ``seqlit sweep``: a real ``seqlit fit`` run with sampled flags, watched by a pruning callback.

The trial goes through :func:`seqlit.run.cli.main`, exactly as a user's ``seqlit fit`` would, so it validates, logs and
checkpoints like any run (into the sweep's folder). The only addition is :class:`SweepReport`, appended to the
trainer's callbacks by a ``--trainer.callbacks+=`` flag: after every validation it hands the metric to Optuna
(``trial.report``) and, when the pruner finds the curve hopeless, stops training cleanly (``trainer.should_stop``)
instead of raising inside Lightning, so a pruned run still ends with its checkpoint and logs. The callback finds its
trial in a module global because a class path on the command line cannot carry a Python object; trials run one at a
time per process, so one global is enough.
"""

from __future__ import annotations

import contextlib
import math
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning as L

from seqlit.errors import InputError
from seqlit.run.fault_tolerance import EXIT_SIGNALLED

CALLBACK = "seqlit.run.sweep_trial.SweepReport"


@dataclass
class TrialWatch:
    """What the callback and the trial runner share: the Optuna trial, the metric, and what was seen so far."""

    trial: Any
    metric: str
    maximize: bool
    values: list[float] = field(default_factory=list)
    pruned_at: int | None = None
    missing: list[str] | None = None  # the metrics that were logged, when ``metric`` was not among them

    def best(self) -> float | None:
        finite = [v for v in self.values if math.isfinite(v)]
        return (max if self.maximize else min)(finite) if finite else None


_WATCH: TrialWatch | None = None


class SweepReport(L.Callback):
    """Report the sweep metric to the running Optuna trial after each validation; stop a trial the pruner rejects."""

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        watch = _WATCH
        if watch is None or trainer.sanity_checking:  # outside a sweep (or before training) there is nothing to do
            return
        value = trainer.callback_metrics.get(watch.metric)
        if value is None:
            watch.missing = sorted(k for k in trainer.callback_metrics if "/" in k)
            trainer.should_stop = True
            return
        value = float(value)
        watch.values.append(value)
        epoch = trainer.current_epoch
        if not math.isfinite(value):  # diverged: nothing to learn from the rest of this run
            trainer.should_stop = True
            return
        watch.trial.report(value, epoch)
        if watch.trial.should_prune():
            watch.pruned_at = epoch
            trainer.should_stop = True


class TrialFailed(Exception):
    """A trial's run ended with an error; ``bad_input`` marks a one-line seqlit error (exit status 2)."""

    def __init__(self, message: str, bad_input: bool) -> None:
        super().__init__(message)
        self.bad_input = bad_input


@contextlib.contextmanager
def _output_to(path: Path):
    """Send everything the run prints (Python's streams and the file descriptors under them) to ``path``."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with path.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
        try:
            yield
        finally:
            log.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0])
            os.close(saved[1])


def _error_line(log: Path) -> str:
    """The ``seqlit: error:`` line a failed run wrote, or its last line."""
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("seqlit: error:")]
    line = errors[-1] if errors else (lines[-1] if lines else "no output")
    return line.removeprefix("seqlit: error: ")


def run_trial(trial: Any, fit_args: list[str], metric: str, maximize: bool, root: Path) -> tuple[float, Path]:
    """Run one ``seqlit fit`` for ``trial`` (``fit_args`` already holds its sampled flags) under ``root``.

    Returns the best value of ``metric`` over the validations and the trial's log file. Raises
    ``optuna.TrialPruned`` for a pruned trial and :class:`TrialFailed` for a failed one.
    """
    import optuna

    from seqlit.run.cli import main

    global _WATCH
    name = f"trial_{trial.number}"
    log = root / f"{name}.log"
    root.mkdir(parents=True, exist_ok=True)
    args = ["fit", *fit_args, "--experiment", name, "--trainer.default_root_dir", str(root)]
    args += ["--test_after_fit", "false", f"--trainer.callbacks+={CALLBACK}", "--trainer.enable_progress_bar", "false"]
    _WATCH = watch = TrialWatch(trial, metric, maximize)
    trial.set_user_attr("run", str(root / "lightning_logs" / name))
    trial.set_user_attr("log", str(log))
    start = time.perf_counter()
    try:
        with _output_to(log):
            main(args)
    except SystemExit as exc:  # main() turns bad input into one printed line and exit status 2
        if exc.code == EXIT_SIGNALLED:  # this worker was told to stop (SIGTERM): stop, do not start another trial
            raise
        if exc.code not in (0, None):
            raise TrialFailed(_error_line(log), bad_input=exc.code == 2) from None
    except Exception as exc:  # noqa: BLE001 - any crash of one trial (NaN, out of memory) fails that trial only
        raise TrialFailed(f"{type(exc).__name__}: {exc}".splitlines()[0], bad_input=False) from None
    finally:
        _WATCH = None
        trial.set_user_attr("seconds", round(time.perf_counter() - start, 1))
    if watch.missing is not None:
        logged = ", ".join(watch.missing) or "nothing"
        raise TrialFailed(f"--metric={metric!r} is not logged by this run; it logs: {logged}", bad_input=True)
    if watch.values and not math.isfinite(watch.values[-1]):
        raise TrialFailed(f"{metric} became {watch.values[-1]} after {len(watch.values)} epochs (diverged)", False)
    if watch.pruned_at is not None:
        trial.set_user_attr("pruned_at_epoch", watch.pruned_at)
        raise optuna.TrialPruned(f"pruned after epoch {watch.pruned_at}")
    best = watch.best()
    if best is None:
        raise TrialFailed(f"{metric} was never logged with a finite value (no validation ran?)", bad_input=False)
    return best, log


def check_metric_name(metric: str) -> None:
    """A metric is a logged key such as ``val/loss``; catch an obviously malformed one before any trial runs."""
    if not metric or metric.strip() != metric:
        raise InputError(f"--metric={metric!r} is not allowed: a logged metric name such as 'val/loss'")
