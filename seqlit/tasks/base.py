"""What every seqlit LightningModule shares: optimizer and schedule from plain arguments, and sizes from the data.

Two conventions live here once:

* **Sizes flow from the data.** A task lists in ``linked`` the constructor arguments that the data decides (input
  features, horizon, classes, vocabulary). Left at ``None``, they are filled from the data module's ``spec()`` in
  ``setup`` and written back into the hyperparameters, so the checkpoint holds them and ``load_from_checkpoint``
  rebuilds the network with no arguments repeated. A value given by hand must agree with the data.
* **Optimizers are plain hyperparameters** (``optimizer``, ``lr``, ``weight_decay``, ``scheduler``,
  ``warmup_steps``): strings and numbers that LightningCLI reads, sweeps can search, and
  ``torch.load(weights_only=True)`` can load.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, ClassVar, Literal

import lightning as L
import torch

from seqlit.compat import batches_that_stepped
from seqlit.errors import InputError, require

Optimizer = Literal["adam", "adamw", "sgd", "rmsprop"]
Scheduler = Literal["none", "cosine", "linear", "plateau"]

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


class SeqlitTask(L.LightningModule):
    """Base LightningModule: subclasses build their network in :meth:`build` and list data-decided args in ``linked``.

    Subclasses call ``self.save_hyperparameters()`` in their ``__init__`` and then ``self.maybe_build()``.
    """

    linked: ClassVar[tuple[str, ...]] = ()  # data-decided args the network cannot be built without
    optional_linked: ClassVar[tuple[str, ...]] = ()  # data-decided args filled when the data provides them
    _train_loss: torch.Tensor | None = None  # this epoch's batch-weighted training-loss sum (see log_loss)
    _train_count: int = 0

    def maybe_build(self) -> None:
        """Build the network now if every data-decided size is known (for example when loading a checkpoint)."""
        self._built = False
        if all(self.hparams.get(name) is not None for name in self.linked):
            self.build()
            self._built = True

    def build(self) -> None:
        """Create the network from ``self.hparams``; every linked size is set when this runs."""
        raise NotImplementedError

    def apply_spec(self, spec: dict[str, Any]) -> None:
        """Take further facts from the data (scaling, label names, a noise floor); nothing by default."""

    def configure_model(self) -> None:
        """Build the network from the data before anything copies the model.

        Lightning's weight-averaging callbacks (``EMAWeightAveraging``, ``StochasticWeightAveraging``) copy the module
        in their own ``setup``, which runs before this module's; they call ``configure_model`` first, so the network
        must exist once it returns. ``setup`` runs again later for the stage; every step of it is idempotent.
        """
        if not self._built and self._trainer is not None:
            self.setup("configure")

    def setup(self, stage: str) -> None:
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        spec = data_spec(datamodule)
        for name in self.linked + self.optional_linked:
            given, from_data = self.hparams.get(name), spec.get(name)
            if given is None and from_data is None and name in self.optional_linked:
                continue
            if given is None and from_data is None:
                raise InputError(f"model.{name} is not set and the data module does not provide it: pass it")
            if given is None:
                self.hparams[name] = from_data
                self._hparams_initial[name] = from_data  # what the loggers record as the run's hyperparameters
            elif from_data is not None and given != from_data:
                raise InputError(f"model.{name}={given!r} disagrees with the data, which has {from_data!r}")
        if not self._built:
            self.build()
            self._built = True
        self.apply_spec(spec)

    # Lightning does not restore the global torch RNG (dropout) on resume; keeping it in the checkpoint makes a resumed
    # run draw the same dropout masks as one that never stopped. A uint8 tensor: it loads with weights_only=True.
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["seqlit_rng"] = {"torch": torch.get_rng_state()}

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("seqlit_rng")
        fitting = self._trainer is not None and self.trainer.state.fn == "fit"
        if state is not None and fitting:  # only a resumed fit; loading weights elsewhere leaves the RNG alone
            torch.set_rng_state(state["torch"])

    def log_loss(self, stage: str, loss: torch.Tensor, batch_size: int) -> None:
        """Log ``<stage>/loss``. For training, the same keys and values as ``self.log(on_step=True, on_epoch=True)``
        (``train/loss_step`` at every logging step, ``train/loss_epoch`` the batch-weighted epoch mean) without calling
        ``self.log`` on every step: each call costs Lightning ~1-2 ms of bookkeeping, as much as a small model's step.
        """
        if self._trainer is None:  # called outside a Trainer (a plain loop): nowhere to log to
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
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = hp.warmup_steps

        def factor(step: int) -> float:
            # linear warm-up, then the chosen decay over the remaining steps
            if step < warmup:
                return (step + 1) / warmup
            progress = min(1.0, (step - warmup) / max(1, total - warmup))
            if hp.scheduler == "cosine":
                return 0.5 * (1 + math.cos(math.pi * progress))
            if hp.scheduler == "linear":
                return 1.0 - progress
            return 1.0

        if hp.scheduler == "none" and warmup == 0:
            return opt
        sched = torch.optim.lr_scheduler.LambdaLR(opt, factor)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "interval": "step"}}
