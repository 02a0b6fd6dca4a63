"""The ``seqlit`` command: LightningCLI with a stable run layout, checkpoint-only inference and clear errors.

What it adds to LightningCLI, and why:

* **One folder per experiment.** Runs go to ``lightning_logs/<experiment>/version_<n>/`` (TensorBoard events, the
  resolved ``config.yaml``, ``checkpoints/``, figures, predictions). ``--ckpt_path last`` (or ``best``) finds the
  newest run's checkpoint and ``fit`` continues logging into that same run; a missing checkpoint is an error, never
  a silent restart from scratch.
* **Checkpoints stand alone.** With ``--ckpt_path``, the model and data configuration stored in the checkpoint sit
  between your config files and your command-line flags: ``seqlit predict --ckpt_path X`` needs nothing else, while
  ``--data.predict_path`` or any other explicit flag still wins.
* **Bad input fails before anything is written.** The data module is set up before the Trainer creates a run
  folder, and every :class:`~seqlit.errors.InputError` becomes one line on stderr with exit status 2.
* ``fit`` ends by testing the best checkpoint and printing where the run and its best checkpoint are
  (``--test_after_fit false`` to skip).
* **Every run saves and logs the same way**: a best checkpoint by ``val/loss`` (``checkpoint``), ``last.ckpt``
  (``last_checkpoint``) and the learning rate (``lr_monitor``); ``--print_config`` shows their settings.

Nothing that changes how a model trains is added here: gradient clipping and the stop on a NaN loss are written in each
config's ``trainer`` section, so the YAML file is the whole recipe.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import Namespace
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException

from seqlit.errors import InputError
from seqlit.run import checkpoints, fault_tolerance
from seqlit.run.argv import condense_parse_error, reorder_with_overlay, same_class, scan_argv
from seqlit.tasks.outputs import run_dir


class SeqlitParser(LightningArgumentParser):
    """LightningCLI's parser, with errors printed as one line instead of the whole usage text."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse is probing alternatives: let it handle the exception itself
            super().error(message, ex)
        sys.stderr.write(f"seqlit: error: {condense_parse_error(message)}  (see: seqlit <subcommand> --help)\n")
        self.exit(2)


@dataclass
class CommandRecord:
    """What :func:`main` needs when the CLI's constructor raises: the run folder this command made, and its trainer.

    LightningCLI runs the whole command inside ``__init__``, so on an error no CLI object is returned; this record,
    handed in and filled while the classes are created, is how the error path still finds them.
    """

    own_run: Path | None = None  # a run folder that did not exist before this command's logger chose it
    trainer: Any = None


class SeqlitCLI(LightningCLI):
    """LightningCLI for seqlit; see the module docstring for what it adds."""

    def __init__(self, *args: Any, record: CommandRecord | None = None, **kwargs: Any) -> None:
        self.record = record if record is not None else CommandRecord()
        self._resume_run: Path | None = None
        self._ckpt_path: str | None = None  # held back from the config until the classes are created (see below)
        kwargs.setdefault("parser_class", SeqlitParser)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})  # a resumed run rewrites its config.yaml
        kwargs.setdefault("auto_configure_optimizers", False)  # optimizers are model hyperparameters here
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument(
            "--experiment",
            type=str,
            default="seqlit",
            help="Runs go to lightning_logs/EXPERIMENT/version_N; --ckpt_path last or best looks there.",
        )
        parser.add_argument(
            "--test_after_fit",
            type=bool,
            default=True,
            help="After fit, test the best checkpoint and write test_metrics.json (fit only).",
        )
        # Callbacks every run gets; none of them changes what is trained, only what is saved and logged.
        parser.add_lightning_class_args(ModelCheckpoint, "checkpoint")
        parser.set_defaults(
            {
                "checkpoint.monitor": "val/loss",
                "checkpoint.mode": "min",
                "checkpoint.save_last": False,  # last.ckpt: LastCheckpoint's (Lightning's refreshes only on a new best)
                "checkpoint.save_top_k": 1,
                "checkpoint.filename": "epoch={epoch}-step={step}",
                "checkpoint.auto_insert_metric_name": False,
            }
        )
        parser.add_lightning_class_args(fault_tolerance.LastCheckpoint, "last_checkpoint")
        parser.add_lightning_class_args(LearningRateMonitor, "lr_monitor")
        parser.set_defaults({"lr_monitor.logging_interval": "epoch"})

    # --- checkpoints ------------------------------------------------------------------------------------------------
    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        """Parse, with the checkpoint's stored config between the config files and the flags when ``--ckpt_path``."""
        argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, (dict, Namespace)) else None
        scan = scan_argv(argv) if argv is not None else None
        if not scan or not scan["ckpt_path"]:
            super().parse_arguments(parser, args)
            self._hold_ckpt_path()
            return
        sub = scan["subcommand"]
        experiment_dir = Path(scan["default_root_dir"] or ".") / "lightning_logs" / scan["experiment"]
        path, run = checkpoints.resolve(scan["ckpt_path"], experiment_dir)
        ckpt = checkpoints.load_checkpoint(path)  # a missing, truncated or foreign file fails here, clearly
        overlay = checkpoints.stored_config(ckpt)
        self._check_same_task(path, overlay, scan)  # before anything is parsed, run or written
        if run is not None:
            overlay["experiment"] = run.parent.name
        with tempfile.NamedTemporaryFile("w", suffix=".yaml", prefix="seqlit-ckpt-", delete=False) as f:
            yaml.safe_dump(overlay, f)
        try:
            super().parse_arguments(parser, reorder_with_overlay(argv, sub, f.name))
        finally:
            os.unlink(f.name)
        self._hold_ckpt_path()
        self._ckpt_path = str(path)  # "last" and "best" resolved
        if sub == "fit" and os.environ.get("LOCAL_RANK", "0") == "0":
            print(f"Resuming from {path} (epoch {ckpt.get('epoch')}, step {ckpt.get('global_step')})", flush=True)
        # only fit continues the checkpoint's run; validate/test/predict get a run folder of their own
        self._resume_run = run if sub == "fit" else None

    def _hold_ckpt_path(self) -> None:
        """Take ``ckpt_path`` out of the config until :meth:`before_instantiate_classes` puts it back.

        Right after parsing, LightningCLI re-reads a checkpoint's hyperparameters into the model's config, over the
        user's explicit flags. The overlay of :meth:`parse_arguments` already did that with the right precedence, and
        LightningCLI only does it when the config holds a checkpoint path at that moment: so it holds none.
        """
        sub = self.config.get("subcommand")
        if sub:
            self._ckpt_path = self.config[sub].get("ckpt_path")
            self.config[sub].ckpt_path = None

    @staticmethod
    def _check_same_task(path: Path, overlay: dict[str, Any], scan: dict[str, Any]) -> None:
        """A checkpoint of another task than the config's (or ``--model``'s) is one clear line naming both classes.

        Without this the checkpoint's stored classes would silently win over the config: a sine config given an IMDB
        checkpoint would test, or resume and overwrite, the IMDB run.
        """
        for part in ("model", "data"):
            stored = (overlay.get(part) or {}).get("class_path")
            chosen = scan[part]
            if stored and chosen and not same_class(stored, chosen):
                what = "a checkpoint of" if part == "model" else "a checkpoint trained on"
                raise InputError(
                    f"ckpt_path={str(path)!r} is {what} {stored}, but the {part} given is {chosen} (by --config or "
                    f"--{part}): give a checkpoint of the same task, or leave them out to take the checkpoint's"
                )

    def before_instantiate_classes(self) -> None:
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config  # run=False (library use) has no subcommand level
        if sub:
            cfg.ckpt_path = self._ckpt_path
        if cfg.trainer.get("logger") in (None, True):
            # one stable folder per experiment: lightning_logs/<experiment>/version_<n>, the resumed run's on resume
            save_dir = Path(cfg.trainer.get("default_root_dir") or ".") / "lightning_logs"
            version = int(self._resume_run.name.split("_")[-1]) if self._resume_run is not None else None
            cfg.trainer.logger = Namespace(
                class_path="lightning.pytorch.loggers.TensorBoardLogger",
                init_args=Namespace(
                    save_dir=str(save_dir), name=cfg.experiment, version=version, default_hp_metric=False
                ),
            )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        self.record.trainer = self.trainer
        logger = self.trainer.logger
        if isinstance(logger, TensorBoardLogger) and self._resume_run is None:
            run = Path(logger.log_dir)  # fixes the version number; the folder itself appears at the first write
            self.record.own_run = None if run.exists() else run

    # --- running ----------------------------------------------------------------------------------------------------
    def _set_up_data(self, stage: str) -> None:
        """Load and validate the data before the Trainer creates a run folder: bad data leaves nothing behind."""
        if self.datamodule is None:
            return
        if os.environ.get("LOCAL_RANK", "0") == "0":  # DDP children skip it: rank 0 ran it before launching them
            self.datamodule.prepare_data()
        self.datamodule.setup(stage)

    def before_fit(self) -> None:
        self._set_up_data("fit")

    def before_validate(self) -> None:
        self._set_up_data("validate")

    def before_test(self) -> None:
        self._set_up_data("test")

    def before_predict(self) -> None:
        self._set_up_data("predict")

    def after_fit(self) -> None:
        trainer = self.trainer
        if trainer.interrupted:
            return
        ckpt = trainer.checkpoint_callback
        best = getattr(ckpt, "best_model_path", "") or None
        if self.config.fit.test_after_fit:
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best, verbose=True)
            self.after_test()
        if trainer.is_global_zero:
            run = run_dir(trainer)
            print(f"TensorBoard run:  {run}   (tensorboard --logdir {run.parent.parent})")
            print(f"Best checkpoint:  {best}")
            last = next((c.path for c in trainer.callbacks if isinstance(c, fault_tolerance.LastCheckpoint)), None)
            if last is not None:
                print(f"Last checkpoint:  {last}   (resume: --ckpt_path last)")

    def after_test(self) -> None:
        """Write the test metrics to ``<run>/test_metrics.json``: one file that scripts and people can read back."""
        trainer = self.trainer
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        if trainer.is_global_zero and metrics:
            path = run_dir(trainer) / "test_metrics.json"
            tmp = path.with_suffix(".json.tmp")
            tmp.write_text(json.dumps(metrics, indent=1, sort_keys=True) + "\n")
            tmp.replace(path)


def remove_partial_run(run: Path | None) -> None:
    """Delete the run folder this command created, if it holds no checkpoint: a failed start leaves nothing behind.

    Only the folder that did not exist when this command's logger chose it is touched; every other run (earlier
    results, another process's run) stays as it is.
    """
    if run is not None and run.is_dir() and not any(run.rglob("*.ckpt")):
        shutil.rmtree(run, ignore_errors=True)


def _input_error(exc: BaseException | None) -> InputError | None:
    """The InputError behind ``exc``, if any: jsonargparse wraps errors raised while instantiating classes."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, InputError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def main(args: list[str] | None = None) -> None:
    """Entry point of the ``seqlit`` command."""
    argv = list(sys.argv[1:] if args is None else args)
    if argv[:1] == ["sweep"]:  # hyperparameter search: its own parser, it runs `fit` trials itself
        from seqlit.run.sweep import main as sweep_main

        sweep_main(argv[1:])
        return
    record = CommandRecord()  # filled while the command runs; read below when it fails
    try:
        SeqlitCLI(args=args, record=record)
    except SIGTERMException:
        callbacks = record.trainer.callbacks if record.trainer is not None else []
        last = [c for c in callbacks if isinstance(c, fault_tolerance.LastCheckpoint) and c.saved_on_signal]
        where = f"saved {last[0].path}; continue with --ckpt_path last" if last else "no checkpoint was written"
        print(f"seqlit: stopped by a signal (SIGTERM/SIGUSR1): {where}", file=sys.stderr)
        sys.exit(fault_tolerance.EXIT_SIGNALLED)
    except fault_tolerance.TrainingDiverged as exc:
        print(f"seqlit: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        err = _input_error(exc)
        if err is None:
            raise
        remove_partial_run(record.own_run)
        print(f"seqlit: error: {err}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
