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

import signal
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
    """Stop training before an optimizer step on a NaN or inf loss (see the module docstring)."""

    def on_before_backward(self, trainer: L.Trainer, pl_module: L.LightningModule, loss: torch.Tensor) -> None:
        bad = not bool(torch.isfinite(loss.detach()).all())
        if trainer.world_size > 1:  # every process must stop together, or the others hang in the gradient all-reduce
            bad = trainer.strategy.reduce_boolean_decision(bad, all=False)
        if bad:
            raise TrainingDiverged(
                f"the training loss is {loss.item()} at step {trainer.global_step} (epoch {trainer.current_epoch}); "
                f"stopped before the optimizer step, so the weights are untouched; last good checkpoint: "
                f"{_last_good_checkpoint(trainer)} (lower model.lr, or keep trainer.gradient_clip_val on)"
            )


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
                request_graceful_stop(trainer)

            signal.signal(signal.SIGUSR1, stop)

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

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        if isinstance(exception, SIGTERMException):
            self.save(trainer)
            self.saved_on_signal = True
