"""What every seqlit LightningModule shares: sizes settled from the data, optimizers from plain arguments, logging.

Sizes the data decides (input features, horizon, classes, vocabulary) meet the task's hyperparameters in Lightning's
``configure_model`` hook through one pure function, :func:`settle_sizes`, and are saved as hyperparameters: checkpoints
and loggers hold them, and ``load_from_checkpoint`` rebuilds the network with no argument repeated. Optimizers are plain
hyperparameters too: strings and numbers that LightningCLI reads, sweeps search and ``torch.load(weights_only=True)``
loads. A schedule spans the step budget or the time budget ``max_time`` (:mod:`seqlit.tasks.schedule`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any, Literal

import lightning as L
import torch

from seqlit.compat import batches_that_stepped
from seqlit.errors import InputError, require

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
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


__all__ = ["Optimizer", "ScheduleBy", "Scheduler", "SeqlitTask", "data_spec", "settle_sizes"]

_OPTIMIZERS = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
}


def data_spec(datamodule: Any) -> dict[str, Any]:
    """The facts a data module's ``spec()`` gives (a typed record or a dict) as a dict; empty without a data module."""
    spec = datamodule.spec() if datamodule is not None and hasattr(datamodule, "spec") else {}
    if dataclasses.is_dataclass(spec):  # shallow: arrays such as embedding vectors are not copied
        return {f.name: getattr(spec, f.name) for f in dataclasses.fields(spec)}
    return dict(spec)


def settle_sizes(
    *, given: Mapping[str, Any], spec: Mapping[str, Any], required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any]:
    """The sizes to fill from the data: each name of ``required`` + ``optional`` that ``given`` leaves empty (None)
    and ``spec`` provides. A size given by hand must equal the data's; a required size must come from one of them.

    >>> settle_sizes(given={"horizon": 2, "input_size": None}, spec={"horizon": 2, "input_size": 3},
    ...              required=("horizon", "input_size"))
    {'input_size': 3}
    """
    filled = {}
    for name in required + optional:
        mine, theirs = given.get(name), spec.get(name)
        if mine is None and theirs is None and name in required:
            raise InputError(f"model.{name} is empty and the data module does not provide it: set model.{name}")
        if mine is None and theirs is not None:
            filled[name] = theirs
        elif theirs is not None:  # both known: a typo in the config must not silently win over the data
            require(mine == theirs, f"model.{name}", mine, f"{theirs!r}, the data's value (or leave it empty)")
    return filled


class SeqlitTask(L.LightningModule):
    """Base LightningModule. A subclass calls ``self.save_hyperparameters()``, then ``self.build_if_sized()`` in its
    ``__init__``; names its data-decided arguments in ``required_sizes`` and ``optional_sizes``; creates ``self.net``
    in :meth:`build`; and runs every stage through its ``_shared_step(batch, stage)``."""

    # class attributes; an instance may widen them (the classifier's chrono init also needs a sequence length)
    required_sizes: tuple[str, ...] = ()  # data-decided args the network cannot be built without
    optional_sizes: tuple[str, ...] = ()  # data-decided args filled when the data provides them
    _train_loss: torch.Tensor | None = None  # this epoch's batch-weighted training-loss sum (see log_loss)
    _train_count: int = 0
    _validation_clock: Any = None  # seconds spent validating while fitting (see validation_clock)

    @property
    def running_trainer(self) -> L.Trainer | None:
        """The Trainer running this task, or None: plain PyTorch, or ``load_from_checkpoint`` rebuilding it."""
        try:
            return self.trainer
        except RuntimeError:  # how Lightning's public property says that no Trainer is attached
            return None

    def fitting(self) -> bool:
        """Whether a Trainer is running ``fit`` with this task (training starts or resumes)."""
        trainer = self.running_trainer
        return trainer is not None and trainer.state.fn == "fit"

    @property
    def built(self) -> bool:
        """Whether the network exists."""
        return hasattr(self, "net")

    def sizes_known(self) -> bool:
        """Whether every required size is set, so the network can be built without the data."""
        return all(self.hparams.get(name) is not None for name in self.required_sizes)

    def build_if_sized(self) -> None:
        """Build now when every size is known: a task given all its sizes, or one loaded from a checkpoint."""
        if self.sizes_known():
            self.build()

    def build(self) -> None:
        """Create ``self.net`` (and any buffer it needs) from ``self.hparams``; every required size is set."""
        raise NotImplementedError

    def data_sizes(self, spec: dict[str, Any]) -> dict[str, Any]:
        """The data's facts under the names of this task's size arguments; the spec as it is by default."""
        return spec

    def apply_spec(self, spec: dict[str, Any]) -> None:
        """Take further facts from the data (scaling, label names, a noise floor); nothing by default."""

    def configure_model(self) -> None:
        """Settle the data-decided sizes, build the network if it does not exist yet, take the data's other facts.

        Lightning calls this hook before it restores a checkpoint's weights and once per ``fit``/``validate``/``test``/
        ``predict``; weight-averaging callbacks (``EMAWeightAveraging``) call it too, before they copy the module, and
        so does ``load_from_checkpoint``, with no Trainer (then there is no data: every size is in the checkpoint). It
        is idempotent: the network is built once, and a second call finds every size already agreeing with the data.
        """
        trainer = self.running_trainer
        spec = data_spec(trainer.datamodule if trainer is not None else None)
        filled = settle_sizes(
            given=self.hparams, spec=self.data_sizes(spec), required=self.required_sizes, optional=self.optional_sizes
        )
        if filled:  # a dict merges into hparams and into hparams_initial: the checkpoint and the loggers record it
            self.save_hyperparameters(filled)
        if not self.built:
            self.build()
        self.apply_spec(spec)

    # Lightning does not restore the global torch RNG (dropout) on resume; keeping it in the checkpoint makes a resumed
    # run draw the same dropout masks as one that never stopped. A uint8 tensor: it loads with weights_only=True.
    # The validation seconds go with it: a time-driven schedule resumes from the training time, not the wall time.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["seqlit_rng"] = {"torch": torch.get_rng_state()}
        if self.validation_clock is not None:
            checkpoint["seqlit_clock"] = self.validation_clock.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        if not self.fitting():  # only a resumed fit; loading weights elsewhere leaves the RNG and the clock alone
            return
        state = checkpoint.get("seqlit_rng")
        if state is not None:
            torch.set_rng_state(state["torch"])
        if self.validation_clock is not None:
            self.validation_clock.load_state_dict(checkpoint.get("seqlit_clock", {}))

    @property
    def validation_clock(self) -> Any:
        """Seconds spent validating while fitting, which a time-driven schedule does not count as training (a
        :class:`~seqlit.tasks.schedule.ValidationClock`); None unless ``schedule_by`` is ``time``."""
        if self._validation_clock is None and self.hparams.get("schedule_by") == "time":
            from seqlit.tasks.schedule import ValidationClock  # only a time-driven schedule keeps the clock

            self._validation_clock = ValidationClock()
        return self._validation_clock

    def on_validation_start(self) -> None:
        clock = self.validation_clock
        if clock is not None and self.fitting() and not self.trainer.sanity_checking:  # before the Timer starts
            clock.start()

    def on_validation_end(self) -> None:
        if self.validation_clock is not None:
            self.validation_clock.stop()

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """Log ``<stage>/loss``. For training, the keys and values of ``self.log(on_step=True, on_epoch=True)``
        (``train/loss_step`` at logging steps, ``train/loss_epoch`` the batch-weighted mean) without calling
        ``self.log`` on every step, whose bookkeeping a small model feels (a GRU of 8 units on sine windows of batch
        8: 2.1 ms per step with it, 1.6 ms with this, on one CPU thread)."""
        if self.running_trainer is None:  # called outside a Trainer (a plain loop): nowhere to log to
            return
        if stage != "train":  # few batches; reduced over processes so every rank sees the same val/loss
            self.log(f"{stage}/loss", loss, on_epoch=True, prog_bar=True, batch_size=batch_size, sync_dist=True)
            return
        weighted = loss.detach() * batch_size
        self._train_loss = weighted if self._train_loss is None else self._train_loss + weighted
        self._train_count += batch_size
        # Lightning writes step metrics when (batches stepped + 1) is a multiple of log_every_n_steps
        stepped = batches_that_stepped(self.trainer)
        if (stepped + 1) % max(1, self.trainer.log_every_n_steps) == 0:
            self.log("train/loss_step", loss, on_step=True, on_epoch=False, prog_bar=True, batch_size=batch_size)
            for name, value in self.step_extras(loss).items():  # at the same steps, at the same saving
                self.log(name, value, on_step=True, on_epoch=False, batch_size=batch_size)

    def step_extras(self, loss: torch.Tensor) -> dict[str, torch.Tensor]:
        """Further training values derived from the loss, logged beside ``train/loss_step``; none by default."""
        return {}

    def on_train_epoch_end(self) -> None:
        if self._train_loss is not None:
            mean = self._train_loss / self._train_count
            self.log("train/loss_epoch", mean, on_step=False, on_epoch=True, sync_dist=True)
            self._train_loss, self._train_count = None, 0

    # One shared step serves every stage; subclasses implement _shared_step(batch, stage) and return the loss.
    def _shared_step(self, batch: Any, stage: str) -> torch.Tensor:
        raise NotImplementedError

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        return self._shared_step(batch, "train")

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._shared_step(batch, "test")

    def lr_factor(self) -> Any:
        """The ``LambdaLR`` factor of ``scheduler``, ``warmup_steps`` and ``schedule_by`` (steps or the time budget)."""
        hp = self.hparams
        schedule_by = hp.get("schedule_by", "steps")  # a task of your own without the argument schedules by steps
        require(schedule_by in SCHEDULE_BY, "model.schedule_by", schedule_by, f"one of {', '.join(SCHEDULE_BY)}")
        if schedule_by == "time":
            from seqlit.tasks.schedule import time_lambda  # the clock-driven parts load only where they are used

            return time_lambda(task=self, clock=self.validation_clock)
        total = self.trainer.estimated_stepping_batches
        if not math.isfinite(total):  # max_time alone ends the run: no step count for the schedule to span
            raise InputError(
                "model.schedule_by='steps' needs a step budget: set trainer.max_steps or trainer.max_epochs, or use "
                "model.schedule_by time with trainer.max_time"
            )

        def by_steps(step: int) -> float:
            return step_factor(scheduler=hp.scheduler, step=step, warmup_steps=hp.warmup_steps, total_steps=int(total))

        return by_steps

    def configure_optimizers(self) -> Any:
        hp = self.hparams
        require(hp.lr > 0, "model.lr", hp.lr, "a learning rate > 0")
        require(hp.weight_decay >= 0, "model.weight_decay", hp.weight_decay, "a number >= 0")
        require(hp.optimizer in _OPTIMIZERS, "model.optimizer", hp.optimizer, f"one of {', '.join(_OPTIMIZERS)}")
        kwargs = {"momentum": 0.9} if hp.optimizer == "sgd" else {}
        opt = _OPTIMIZERS[hp.optimizer](self.parameters(), lr=hp.lr, weight_decay=hp.weight_decay, **kwargs)
        if hp.scheduler == "plateau":
            sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, factor=0.5, patience=5)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val/loss"}}
        if hp.scheduler == "none" and hp.warmup_steps == 0:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, self.lr_factor())
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
