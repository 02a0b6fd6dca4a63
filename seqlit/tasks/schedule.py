"""Learning-rate schedules that span the wall clock (``schedule_by: time``); loaded only by tasks that use one.

``scheduler`` picks the shape (``cosine`` or ``linear`` decay to zero, or ``none``; :func:`seqlit.tasks.base.decay`);
``schedule_by`` picks what it spans. ``steps`` (in :mod:`seqlit.tasks.base`): the Trainer's step budget. ``time``
(here): the time budget ``trainer.max_time``, so the decay ends when the clock runs out however fast the steps are.
Progress is then

    training seconds so far / (max_time - seconds spent validating so far)

Validation is not training: each validation takes its own duration from the budget, and the rest of the schedule
fits into what is left, reaching its end exactly when Lightning's Timer stops the run. The warm-up still counts steps
(it lets the optimizer's first updates settle, whatever they cost) and multiplies the decay, which is near 1 then.

The seconds come from Lightning's :class:`~lightning.pytorch.callbacks.Timer` (public ``time_elapsed`` and
``time_remaining``), which ``max_time`` creates and whose elapsed time checkpoints keep; the seconds spent validating
are kept by :class:`ValidationClock` and saved beside them, so a run resumed from ``last.ckpt`` continues the schedule
where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Timer

from seqlit.errors import InputError
from seqlit.tasks.base import decay


def time_factor(*, scheduler: str, step: int, warmup_steps: int, progress: float) -> float:
    """Factor of the learning rate at ``step`` and ``progress`` through the time budget (see the module docstring)."""
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    return warm * decay(scheduler, progress)


def budget_timer(trainer: L.Trainer) -> Timer:
    """The Timer holding the run's time budget; an :class:`InputError` when the Trainer has none."""
    timer = next((c for c in trainer.callbacks if isinstance(c, Timer)), None)
    if timer is None or timer.time_remaining("train") is None:
        raise InputError(
            "model.schedule_by='time' needs a time budget: set trainer.max_time (DD:HH:MM:SS), or use "
            "model.schedule_by steps with trainer.max_steps"
        )
    return timer


class ValidationClock:
    """Seconds spent validating while fitting, the one time the Timer's training clock holds that is not training."""

    def __init__(self) -> None:
        self.seconds = 0.0  # finished validations
        self._since: float | None = None  # start of the validation running now (the Timer's clock, time.monotonic)

    def start(self) -> None:
        self._since = time.monotonic()

    def stop(self) -> None:
        if self._since is not None:
            self.seconds += time.monotonic() - self._since
            self._since = None

    def total(self) -> float:
        """Finished validations plus the one running now (a checkpoint is saved in the middle of one)."""
        running = time.monotonic() - self._since if self._since is not None else 0.0
        return self.seconds + running

    def progress(self, timer: Timer) -> float:
        """Training seconds so far / (budget - seconds validating so far), in [0, 1]."""
        elapsed, remaining = timer.time_elapsed("train"), timer.time_remaining("train") or 0.0
        validating = self.total()
        training, budget = max(0.0, elapsed - validating), elapsed + remaining - validating
        return min(1.0, training / budget) if budget > 0 else 1.0

    def state_dict(self) -> dict[str, float]:
        return {"validation_seconds": self.total()}  # a plain float: loads with weights_only=True

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.seconds, self._since = float(state.get("validation_seconds", 0.0)), None


def time_lambda(*, task: L.LightningModule, clock: ValidationClock) -> Callable[[int], float]:
    """The ``LambdaLR`` factor of a time-driven schedule (``schedule_by: time``) over ``trainer.max_time``."""
    hp, trainer = task.hparams, task.trainer
    timer = budget_timer(trainer)

    def by_time(step: int) -> float:
        # every process takes the first one's clock: their learning rates must not drift apart
        progress = trainer.strategy.broadcast(clock.progress(timer))
        return time_factor(scheduler=hp.scheduler, step=step, warmup_steps=hp.warmup_steps, progress=progress)

    return by_time
