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

import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any, NoReturn

import yaml
from jsonargparse import Namespace
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from lightning.pytorch.cli import LightningArgumentParser, LightningCLI
from lightning.pytorch.utilities.exceptions import SIGTERMException

from seqlit.errors import InputError, say
from seqlit.run import checkpoints, fault_tolerance
from seqlit.run.argv import check_config_files, condense_parse_error, reorder_with_overlay, same_class, scan_argv
from seqlit.run.entry import StoppedAtStartup, startup_over
from seqlit.run.failures import EXIT_BAD_INPUT, explain
from seqlit.run.layout import (
    CommandRecord,
    finite_or_none,
    is_rank_zero,
    open_run,
    remove_partial_run,
    run_loggers,
    write_json,
)
from seqlit.run.quiet import silence_libraries, take_verbose
from seqlit.tasks.outputs import run_dir


class SeqlitParser(LightningArgumentParser):
    """LightningCLI's parser, with errors printed as one line instead of the whole usage text."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse is probing alternatives: let it handle the exception itself
            super().error(message, ex)
        missing = re.search(r"arguments are required: (fit|validate|test|predict)\.model\b", message)
        if missing:  # no config and no checkpoint: the user never heard of "predict.model"; say what to give
            sub = missing.group(1)
            given = "a checkpoint (--ckpt_path PATH, or best|last with --experiment NAME) or " if sub != "fit" else ""
            message = f"{sub} needs {given}a config (--config configs/NAME.yaml) that names the model"
            sys.stderr.write(f"seqlit: error: {message}  (see: seqlit {sub} --help)\n")
            self.exit(2)
        sys.stderr.write(f"seqlit: error: {condense_parse_error(message)}  (see: seqlit <subcommand> --help)\n")
        self.exit(2)


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
        parser.add_lightning_class_args(fault_tolerance.ValidateBeforeStop, "validate_before_stop")
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
        # only fit continues the checkpoint's run; validate/test/predict get a run folder of their own
        self._resume_run = run if sub == "fit" else None
        self._resume_note = f"Resuming from {path} (epoch {ckpt.get('epoch')}, step {ckpt.get('global_step')})"

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
        if cfg.trainer.get("logger") is False:
            return  # nothing logged, so no run folder to claim
        experiment_dir = Path(cfg.trainer.get("default_root_dir") or ".") / "lightning_logs" / cfg.experiment
        if sub:  # a command claims (or, resuming, locks) its run folder; library use (run=False) leaves it to Lightning
            version = open_run(experiment_dir=experiment_dir, resume_run=self._resume_run, record=self.record)
        else:
            version = int(self._resume_run.name.split("_")[-1]) if self._resume_run is not None else None
        if self._resume_run is not None and is_rank_zero():
            print(self._resume_note, flush=True)  # only once the run's lock is held: a refusal prints nothing before
        # one stable folder per experiment, lightning_logs/<experiment>/version_<n>, whatever loggers a preset adds
        logger = cfg.trainer.get("logger")
        cfg.trainer.logger = run_loggers(
            logger, save_dir=str(experiment_dir.parent), name=cfg.experiment, version=version
        )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        self.record.trainer = self.trainer

    # --- running ----------------------------------------------------------------------------------------------------
    def _set_up_data(self, stage: str) -> None:
        """Load and validate the data before the Trainer creates a run folder: bad data leaves nothing behind."""
        if self.datamodule is not None:
            if os.environ.get("LOCAL_RANK", "0") == "0":  # DDP children skip it: rank 0 ran it before launching them
                self.datamodule.prepare_data()
            self.datamodule.setup(stage)
        startup_over()  # the Trainer starts next: SIGTERM is Lightning's from here (it saves last.ckpt)

    def before_fit(self) -> None:
        trainer = self.trainer
        if trainer.max_epochs == 0 or trainer.max_steps == 0:  # a test of untrained weights is no result
            key, value = ("max_epochs", 0) if trainer.max_epochs == 0 else ("max_steps", 0)
            raise InputError(f"trainer.{key}={value} trains nothing: give at least 1 (to evaluate a trained model, "
                             "use `seqlit test --ckpt_path ...`)")  # fmt: skip
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
        last = next((c.path for c in trainer.callbacks if isinstance(c, fault_tolerance.LastCheckpoint)), None)
        if self.config.fit.test_after_fit:
            capped = isinstance(trainer.limit_train_batches, int) or trainer.limit_train_batches < 1.0  # int: a count
            if capped and trainer.limit_test_batches == 1.0:
                trainer.limit_test_batches = trainer.limit_train_batches  # a capped try is tested capped, too
                print(f"Testing on limit_test_batches={trainer.limit_test_batches}, as training was capped "
                      "(--trainer.limit_test_batches 1.0 tests everything)", flush=True)  # fmt: skip
            trainer.test(self.model, datamodule=self.datamodule, ckpt_path=best or last, verbose=True)
            self.after_test()
        if trainer.is_global_zero:
            run = run_dir(trainer)
            if run is not None:  # None: no logger, so no run folder
                print(f"TensorBoard run:  {run}   (tensorboard --logdir {run.parent.parent})")
            print(f"Best checkpoint:  {best}")
            if last is not None:
                print(f"Last checkpoint:  {last}   (resume: --ckpt_path last)")

    def after_test(self) -> None:
        """Write the test metrics to ``<run>/test_metrics.json`` for scripts and people; print the model's note."""
        trainer = self.trainer
        metrics = {k: finite_or_none(float(v)) for k, v in trainer.callback_metrics.items() if k.startswith("test/")}
        if trainer.is_global_zero and metrics:
            run = run_dir(trainer)
            if run is not None:  # no logger, no run folder: nothing is written
                write_json(run / "test_metrics.json", metrics)  # a NaN metric is null: the file stays JSON
        note = getattr(trainer.lightning_module, "metrics_note", None)
        if trainer.is_global_zero and metrics and callable(note):
            say(note())  # under the table: test/loss and the metrics beside it are on different scales


def main(args: list[str] | None = None) -> None:
    """Run one training subcommand (``fit``, ``validate``, ``test``, ``predict``); see :mod:`seqlit.run.entry`."""
    argv, verbose = take_verbose(list(sys.argv[1:] if args is None else args))
    if not verbose:
        silence_libraries()
    record = CommandRecord()  # filled while the command runs; read below when it fails
    try:
        check_config_files(argv)
        sys.argv[1:] = argv  # LightningCLI reads sys.argv itself (given a list as well, it warns that both exist)
        SeqlitCLI(args=None, record=record)
    except SIGTERMException:
        callbacks = record.trainer.callbacks if record.trainer is not None else []
        last = next((c for c in callbacks if isinstance(c, fault_tolerance.LastCheckpoint)), None)
        saved = last is not None and last.saved_on_signal
        where = f"saved {last.path}; continue with --ckpt_path last" if saved else "no checkpoint was written"
        signal_name = last.signal_name if last is not None else "SIGTERM"
        print(f"seqlit: stopped by a signal ({signal_name}): {where}", file=sys.stderr)
        sys.exit(fault_tolerance.EXIT_INTERRUPTED if signal_name == "SIGINT" else fault_tolerance.EXIT_SIGNALLED)
    except StoppedAtStartup:
        remove_partial_run(record)  # stopped before training: a run folder it claimed holds nothing worth keeping
        raise  # the front door prints the line and exits 130 or 143
    except fault_tolerance.TrainingDiverged as exc:
        print(f"seqlit: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        line = explain(exc)
        if line is None:
            raise
        remove_partial_run(record)
        print(f"seqlit: error: {line}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)
    finally:
        record.release()


if __name__ == "__main__":
    main()
