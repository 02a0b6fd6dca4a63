"""Learning-rate schedules that span a step budget or the wall clock.

``scheduler`` picks the shape (``cosine`` or ``linear`` decay to zero, or ``none``); ``schedule_by`` picks what it
spans. ``steps``: the Trainer's step budget (``max_steps``, or the epochs' batches), after ``warmup_steps`` of linear
warm-up. ``time``: the time budget ``trainer.max_time``, so the decay ends when the clock runs out however fast the
steps are. Progress is then

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

import math
import time
from collections.abc import Callable
from typing import Any, Literal

import lightning as L
from lightning.pytorch.callbacks import Timer

from seqlit.errors import InputError, require

Scheduler = Literal["none", "cosine", "linear", "plateau"]
ScheduleBy = Literal["steps", "time"]
SCHEDULE_BY = ("steps", "time")


def decay(scheduler: str, progress: float) -> float:
    """The decay's factor at ``progress`` (clipped to [0, 1]): cosine or linear from 1 to 0, constant 1 for ``none``.

    >>> round(decay("cosine", 0.5), 12), decay("linear", 0.25), decay("cosine", 2.0)
    (0.5, 0.75, 0.0)
    """
    progress = min(1.0, max(0.0, progress))
    if scheduler == "cosine":
        return 0.5 * (1 + math.cos(math.pi * progress))
    if scheduler == "linear":
        return 1.0 - progress
    return 1.0


def step_factor(*, scheduler: str, step: int, warmup_steps: int, total_steps: int) -> float:
    """Factor of the learning rate at ``step`` of ``total_steps``: linear warm-up, then the decay over the rest."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return decay(scheduler, (step - warmup_steps) / max(1, total_steps - warmup_steps))


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


def lr_lambda(*, task: L.LightningModule, clock: ValidationClock) -> Callable[[int], float]:
    """The ``LambdaLR`` factor of ``task``'s hyperparameters (``scheduler``, ``warmup_steps``, ``schedule_by``)."""
    hp, trainer = task.hparams, task.trainer
    schedule_by = hp.get("schedule_by", "steps")  # a task of your own without the argument schedules by steps
    require(schedule_by in SCHEDULE_BY, "model.schedule_by", schedule_by, f"one of {', '.join(SCHEDULE_BY)}")
    if schedule_by == "time":
        timer = budget_timer(trainer)

        def by_time(step: int) -> float:
            # every process takes the first one's clock: their learning rates must not drift apart
            progress = trainer.strategy.broadcast(clock.progress(timer))
            return time_factor(scheduler=hp.scheduler, step=step, warmup_steps=hp.warmup_steps, progress=progress)

        return by_time
    total = trainer.estimated_stepping_batches
    if not math.isfinite(total):  # max_time alone ends the run: no step count for the schedule to span
        raise InputError(
            "model.schedule_by='steps' needs a step budget: set trainer.max_steps or trainer.max_epochs, or use "
            "model.schedule_by time with trainer.max_time"
        )

    def by_steps(step: int) -> float:
        return step_factor(scheduler=hp.scheduler, step=step, warmup_steps=hp.warmup_steps, total_steps=int(total))

    return by_steps
