"""Stopping safely: a checkpoint when the scheduler says stop, and no training on after the loss turns NaN.

Two callbacks:

* :class:`LastCheckpoint` — added by the ``seqlit`` command to every run (``--last_checkpoint.*``): keeps
  ``last.ckpt`` current (every epoch, every few minutes, every N steps), written atomically. On SIGTERM (what cluster
  schedulers send before they kill a job) or SIGUSR1 (SLURM's usual requeue signal), Lightning finishes the current
  batch and raises ``SIGTERMException``; this callback then writes ``last.ckpt``, so ``--ckpt_path last`` continues
  from that exact step. The command exits with status 143 (128 + SIGTERM), so a job script can tell the run was
  interrupted.
* :class:`StopOnNonFinite` — listed in every shipped config's ``trainer.callbacks`` (it changes training, so the config
  says so): checks the loss before every backward pass. Lightning by default goes on training after a NaN or inf
  loss, and the next optimizer step fills every weight with NaN; this stops before that step, naming the step and the
  last good checkpoint. Under DDP the check is agreed on by all processes, so none is left waiting.
"""

from __future__ import annotations

import math
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import Checkpoint
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from lightning.pytorch.utilities.exceptions import SIGTERMException

from seqlit.compat import request_graceful_stop

CLOCK_EVERY = 20  # steps between checks of LastCheckpoint's timer
EXIT_SIGNALLED = 143  # 128 + SIGTERM: the shell's convention for "ended by SIGTERM"
EXIT_INTERRUPTED = 130  # 128 + SIGINT: what a shell reports for a command stopped with Ctrl-C
SMOOTHING = 0.1  # weight of the newest loss in the moving average that the divergence check compares


class TrainingDiverged(RuntimeError):
    """The training loss became NaN or inf; the message names the step and the last good checkpoint."""


def _last_good_checkpoint(trainer: L.Trainer) -> str:
    ckpt = trainer.checkpoint_callback
    paths = [c.path for c in trainer.callbacks if isinstance(c, LastCheckpoint)]
    paths += [getattr(ckpt, "last_model_path", ""), getattr(ckpt, "best_model_path", "")]
    for path in paths:
        if path and Path(path).is_file():
            return str(path)
    return "none yet (the run diverged before its first checkpoint)"


class StopOnNonFinite(L.Callback):
    """Stop training before an optimizer step on a NaN or inf loss, or on a loss that has grown out of all proportion.

    A run with far too high a learning rate rarely reaches NaN at once: its loss climbs by orders of magnitude while
    every step still "succeeds", and the command would report the wreck as a result. This callback keeps a moving
    average of the training loss and stops (naming the step, the growth and the last good checkpoint) once it exceeds
    ``max_growth`` times its value over the first steps.

    Args:
        max_growth: stop when the smoothed loss exceeds this many times its starting value (0 = only NaN and inf).
    """

    def __init__(self, max_growth: float = 1000.0) -> None:
        self.max_growth = max_growth
        self._start: float | None = None  # the smoothed loss after the first few steps: the scale of "normal"
        self._smooth: float | None = None
        self._steps = 0

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start, self._smooth, self._steps = None, None, 0  # a resumed run measures its own start

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        value = float(loss.detach().float().mean())  # one host sync per step, as the NaN check always needed
        growth = self._track(value)
        bad = not math.isfinite(value) or (self.max_growth > 0 and growth > self.max_growth)
        if trainer.world_size > 1:  # every process must stop together, or the others hang in the gradient all-reduce
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if not bad:
            return
        where = f"at step {trainer.global_step} (epoch {trainer.current_epoch})"
        what = (
            f"the training loss is {value} {where}"
            if not math.isfinite(value)
            else f"the training loss grew {growth:.3g} times, from {self._start:.4g} to {self._smooth:.4g} {where}"
        )
        raise TrainingDiverged(
            f"{what}: training diverged; stopped before the optimizer step, so the weights are untouched; last good "
            f"checkpoint: {_last_good_checkpoint(trainer)} (lower model.lr, or keep trainer.gradient_clip_val on)"
        )

    def _track(self, value: float) -> float:
        """Update the moving average with ``value``; return how many times it exceeds the starting level."""
        if not math.isfinite(value):
            return math.inf
        self._steps += 1
        self._smooth = value if self._smooth is None else (1 - SMOOTHING) * self._smooth + SMOOTHING * value
        if self._steps == 10:  # the start is measured once the average has seen a few steps
            self._start = self._smooth
        if self._start is None or self._start <= 0:
            return 0.0
        return self._smooth / self._start


class ValidateBeforeStop(L.Callback):
    """Validate once before a run that has not validated yet stops at ``max_steps``, so it always has a best checkpoint.

    A config that validates every 250 steps, run for 100, would otherwise end with no best checkpoint and no
    ``val/loss``, and ``--ckpt_path best`` would have nothing to find. Asking Lightning to stop after the last step
    makes its loop validate first (as it does for early stopping); ``max_time`` stops validate that way already.
    """

    def __init__(self) -> None:
        self._validated = False

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._validated = self._validated or not trainer.sanity_checking

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        last_step = trainer.max_steps > 0 and trainer.global_step >= trainer.max_steps
        if last_step and not self._validated and trainer.enable_validation:
            trainer.should_stop = True  # public flag: the loop validates, then stops


class LastCheckpoint(Checkpoint):
    """Keep ``<run>/checkpoints/last.ckpt`` current: the state to continue from with ``--ckpt_path last``.

    Lightning's ModelCheckpoint refreshes ``last.ckpt`` only when it also saves a new best, so a run whose validation
    loss stopped improving would resume from an old step. This callback writes it at the end of every training epoch,
    every ``every_n_train_steps`` steps, every ``every_n_minutes`` minutes within an epoch (the clock is read every 20
    steps; a SIGKILL loses at most that much), and when SIGTERM or SIGUSR1 stops the run. Each write goes to a
    temporary file that then replaces ``last.ckpt``: a kill during the write leaves the previous checkpoint intact,
    never a truncated one. As a :class:`~lightning.pytorch.callbacks.Checkpoint`, Lightning runs it after every other
    callback (ModelCheckpoint included), so the state it saves already holds that epoch's best checkpoint.

    Args:
        every_n_minutes: also save within an epoch after this much wall time since the last save (0 = never).
        every_n_train_steps: also save every this many optimizer steps (0 = never).
    """

    def __init__(self, every_n_minutes: float = 5.0, every_n_train_steps: int = 0) -> None:
        self.every_n_minutes, self.every_n_train_steps = every_n_minutes, every_n_train_steps
        self.path: Path | None = None  # where the last save went
        self.saved_on_signal = False
        self.signal_name = "SIGTERM"  # the signal that stopped the run, for the command's last line
        self._last_save = time.monotonic()

    def _dirpath(self, trainer: L.Trainer) -> Path:
        ckpt = trainer.checkpoint_callback
        if ckpt is not None and getattr(ckpt, "dirpath", None):
            return Path(ckpt.dirpath)
        return Path(trainer.log_dir or trainer.default_root_dir) / "checkpoints"  # all ranks ask: broadcast is fine

    def save(self, trainer: L.Trainer) -> None:
        """Write ``last.ckpt`` (every process must call this: saving synchronises them; only rank 0 writes)."""
        path = self._dirpath(trainer) / "last.ckpt"
        tmp = path.with_name("last.ckpt.tmp")
        trainer.save_checkpoint(tmp)
        if trainer.is_global_zero:
            tmp.replace(path)
        trainer.strategy.barrier("seqlit.last_checkpoint")
        self.path, self._last_save = path, time.monotonic()

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        fit_state = checkpoint.get("loops", {}).get("fit_loop", {}).get("state_dict", {})
        self._loader_states = list(fit_state.get("combined_loader", []))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._last_save = time.monotonic()
        # Lightning hands the training loader its saved position only if it had not built that loader before
        # restoring the checkpoint, and it has whenever an LR schedule asked for estimated_stepping_batches. Hand it
        # over here (the loaders start iterating only after this hook; a second hand-over sets the same value).
        states, self._loader_states = getattr(self, "_loader_states", []), []
        loaders = [dl for dl in CombinedLoader(trainer.train_dataloader).flattened if hasattr(dl, "load_state_dict")]
        if states and len(states) == len(loaders):
            for loader, state in zip(loaders, states, strict=True):
                loader.load_state_dict(state)
        # Lightning turns SIGTERM into SIGTERMException at the next batch boundary; SIGUSR1 it handles only under
        # SLURM with auto-requeue. Otherwise treat SIGUSR1 like SIGTERM, so a requeue signal also saves and stops.
        if hasattr(signal, "SIGUSR1") and signal.getsignal(signal.SIGUSR1) in (signal.SIG_DFL, None):

            def stop(signum: int, frame: Any) -> None:
                self.signal_name = "SIGUSR1"
                request_graceful_stop(trainer)

            signal.signal(signal.SIGUSR1, stop)
        # Ctrl-C too: finish the batch, save last.ckpt, exit 130. Lightning's own answer to KeyboardInterrupt exits 1
        # with no checkpoint. A second Ctrl-C raises KeyboardInterrupt at once (the default handler is back).
        if threading.current_thread() is threading.main_thread():

            def interrupt(signum: int, frame: Any) -> None:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                self.signal_name = "SIGINT"
                print("\nStopping after this batch to save last.ckpt (Ctrl-C again to stop at once)", file=sys.stderr)
                request_graceful_stop(trainer)

            signal.signal(signal.SIGINT, interrupt)

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: L.LightningModule, *args: Any) -> None:
        due = bool(self.every_n_train_steps) and trainer.global_step % self.every_n_train_steps == 0
        # the clock is read every CLOCK_EVERY steps: rank 0's reading is broadcast, a collective under DDP
        if self.every_n_minutes > 0 and trainer.global_step % CLOCK_EVERY == 0:
            late = time.monotonic() - self._last_save >= 60 * self.every_n_minutes
            due = due or trainer.strategy.broadcast(late, src=0)  # rank 0's clock decides for all processes
        if due:
            self.save(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.save(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGINT, signal.default_int_handler)  # testing after fit: Ctrl-C stops at once

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.save(trainer)
            self.saved_on_signal = True
