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
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import sys
import tempfile
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
from seqlit.tasks.outputs import run_dir, write_text

STAGES = {"fit": "fit", "validate": "validate", "test": "test", "predict": "predict"}


def _reorder_with_overlay(argv: list[str], subcommand: str, overlay: str) -> list[str]:
    """Put config files first, then the checkpoint's config, then every other flag (which therefore wins)."""
    i = argv.index(subcommand) + 1
    configs, others, rest = [], [], argv[i:]
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg in ("--config", "-c") and j + 1 < len(rest):
            configs += rest[j : j + 2]
            j += 2
            continue
        (configs if arg.startswith("--config=") else others).append(arg)
        j += 1
    return argv[:i] + configs + ["--config", overlay] + others


def _scan_argv(argv: list[str]) -> dict[str, Any] | None:
    """Read the subcommand, ``ckpt_path``, ``experiment``, ``trainer.default_root_dir`` and the model and data classes
    that the config files and flags choose, before the real parse.

    A checkpoint's stored config must be known before parsing (it supplies required options such as the model), and
    ``last``/``best`` need the experiment's folder; later flags and config files override earlier ones, as in the parse.
    """
    sub = next((a for a in argv if a in STAGES), None)
    if sub is None:
        return None
    found: dict[str, Any] = {"subcommand": sub, "ckpt_path": None, "experiment": "seqlit", "default_root_dir": None}
    found |= {"model": None, "data": None}  # the classes the config files and flags choose
    rest = argv[argv.index(sub) + 1 :]
    for j, arg in enumerate(rest):
        key, _, value = arg.partition("=")
        if not value and j + 1 < len(rest):
            value = rest[j + 1]
        if key in ("--config", "-c") and Path(value).is_file():
            data = yaml.safe_load(Path(value).read_text()) or {}
            if isinstance(data, dict):
                found["experiment"] = data.get("experiment", found["experiment"])
                trainer = data.get("trainer") or {}
                found["default_root_dir"] = trainer.get("default_root_dir", found["default_root_dir"])
                for part in ("model", "data"):
                    found[part] = _class_path(data.get(part)) or found[part]
        elif key == "--ckpt_path":
            found["ckpt_path"] = value
        elif key == "--experiment":
            found["experiment"] = value
        elif key == "--trainer.default_root_dir":
            found["default_root_dir"] = value
        elif key in ("--model", "--model.class_path", "--data", "--data.class_path"):
            found[key[2:].split(".")[0]] = _class_path(value) or found[key[2:].split(".")[0]]
    return found


def _class_path(value: Any) -> str | None:
    """The class a config section names: ``Forecaster``, ``seqlit.tasks.Forecaster`` or ``{class_path: ...}``."""
    if isinstance(value, dict):
        value = value.get("class_path")
    return value if isinstance(value, str) and value and not value.lstrip().startswith("{") else None


def same_class(a: str, b: str) -> bool:
    """Whether two class paths name one class (``seqlit.tasks.Forecaster``, ``seqlit.tasks.forecaster.Forecaster``)."""

    def resolve(path: str) -> Any:
        module, _, name = path.rpartition(".")
        candidates = [module] if module else ["seqlit.tasks", "seqlit.data"]  # short names, as jsonargparse takes them
        for mod in candidates:
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        return path

    return a == b or resolve(a) == resolve(b)


def condense_parse_error(message: str) -> str:
    """One line out of jsonargparse's nested error text: the full key and the innermost reason.

    jsonargparse reports a bad value inside a class as a tree (Union alternatives, class paths, keys); the user needs
    the dotted key (``model.cell``) and the reason (``Expected a Literal['rnn', ...]. Got value: transformer``).
    """
    keys = re.findall(r'Parser key "([^"]+)"', message)
    reasons = [
        line.strip()
        for line in message.splitlines()
        if re.search(r"Expected|not accepted|Got value|does not exist|required|Unrecognized|invalid|must", line)
        and "NoneType" not in line
    ]
    if not reasons:
        return " ".join(message.split())
    return f"{'.'.join(keys)}: {reasons[0]}" if keys else reasons[0]


class SeqlitParser(LightningArgumentParser):
    """LightningCLI's parser, with errors printed as one line instead of the whole usage text."""

    def error(self, message: str, ex: Exception | None = None) -> NoReturn:
        if not self.exit_on_error:  # jsonargparse is probing alternatives: let it handle the exception itself
            super().error(message, ex)
        sys.stderr.write(f"seqlit: error: {condense_parse_error(message)}  (see: seqlit <subcommand> --help)\n")
        self.exit(2)


class SeqlitCLI(LightningCLI):
    """LightningCLI for seqlit; see the module docstring for what it adds."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._resume_run: Path | None = None
        self._own_run: Path | None = None  # the run folder this very command made, once its logger has chosen it
        kwargs.setdefault("parser_class", SeqlitParser)
        kwargs.setdefault("save_config_kwargs", {"overwrite": True})  # a resumed run rewrites its config.yaml
        kwargs.setdefault("auto_configure_optimizers", False)  # optimizers are model hyperparameters here
        # always on, whatever callbacks a config adds: a stop before a NaN loss's update
        kwargs.setdefault(
            "trainer_defaults",
            {
                "gradient_clip_val": 1.0,
                "callbacks": [fault_tolerance.StopOnNonFinite()],
            },
        )
        super().__init__(*args, **kwargs)

    def add_arguments_to_parser(self, parser: LightningArgumentParser) -> None:
        parser.add_argument("--experiment", type=str, default="seqlit", help="Name of the run folder's parent.")
        parser.add_argument(
            "--test_after_fit", type=bool, default=True, help="After fit, test the best checkpoint (fit only)."
        )
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
    def _experiment_dir(self, cfg: Namespace) -> Path:
        root = Path(cfg.trainer.get("default_root_dir") or ".") / "lightning_logs"
        return root / cfg.experiment

    def parse_arguments(self, parser: LightningArgumentParser, args: Any) -> None:
        argv = list(sys.argv[1:] if args is None else args) if not isinstance(args, (dict, Namespace)) else None
        scan = _scan_argv(argv) if argv is not None else None
        if not scan or not scan["ckpt_path"]:
            super().parse_arguments(parser, args)
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
            super().parse_arguments(parser, _reorder_with_overlay(argv, sub, f.name))
        finally:
            os.unlink(f.name)
        self.config[sub].ckpt_path = str(path)
        if sub == "fit" and os.environ.get("LOCAL_RANK", "0") == "0":
            print(f"Resuming from {path} (epoch {ckpt.get('epoch')}, step {ckpt.get('global_step')})", flush=True)
        # only fit continues the checkpoint's run; validate/test/predict get a run folder of their own
        self._resume_run = run if sub == "fit" else None

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

    def _parse_ckpt_path(self) -> None:
        """Replaced by :meth:`parse_arguments`, which lets explicit flags override the checkpoint's values."""

    def before_instantiate_classes(self) -> None:
        sub = self.config.get("subcommand")
        cfg = self.config[sub] if sub else self.config  # run=False (library use) has no subcommand level
        experiment_dir = self._experiment_dir(cfg)
        if cfg.trainer.get("logger") in (None, True):
            version = int(self._resume_run.name.split("_")[-1]) if self._resume_run is not None else None
            cfg.trainer.logger = Namespace(
                class_path="lightning.pytorch.loggers.TensorBoardLogger",
                init_args=Namespace(
                    save_dir=str(experiment_dir.parent), name=cfg.experiment, version=version, default_hp_metric=False
                ),
            )

    def instantiate_classes(self) -> None:
        super().instantiate_classes()
        logger = self.trainer.logger
        if isinstance(logger, TensorBoardLogger) and self._resume_run is None:
            run = Path(logger.log_dir)  # fixes the version number; the folder itself appears at the first write
            self._own_run = None if run.exists() else run

    # --- running ----------------------------------------------------------------------------------------------------
    def _run_subcommand(self, subcommand: str) -> None:
        # Load and validate the data before the Trainer creates a run folder: bad data leaves nothing behind.
        # Child processes of a DDP launch skip prepare_data; rank 0 already ran it before launching them.
        if self.datamodule is not None:
            if os.environ.get("LOCAL_RANK", "0") == "0":
                self.datamodule.prepare_data()
            self.datamodule.setup(STAGES[subcommand])
        super()._run_subcommand(subcommand)

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
            if run is not None:  # None: no logger, so no run folder
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
            write_text(trainer, "test_metrics.json", json.dumps(metrics, indent=1, sort_keys=True) + "\n")

    def remove_partial_runs(self) -> None:
        """Delete the run folder this command created, if it holds no checkpoint: a failed start leaves nothing behind.

        Only the folder that did not exist when this command's logger chose it is touched; every other run (earlier
        results, another process's run) stays as it is.
        """
        run = getattr(self, "_own_run", None)
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
    # created before __init__ runs, so a failure inside it can still clean up the run folder it made
    cli = SeqlitCLI.__new__(SeqlitCLI)
    try:
        cli.__init__(args=args)
    except SIGTERMException:
        last = [c for c in _callbacks(cli) if isinstance(c, fault_tolerance.LastCheckpoint) and c.saved_on_signal]
        saved = last[0].path if last else None
        where = f"saved {saved}; continue with --ckpt_path last" if saved else "no checkpoint was written"
        print(f"seqlit: stopped by a signal (SIGTERM/SIGUSR1): {where}", file=sys.stderr)
        sys.exit(fault_tolerance.EXIT_SIGNALLED)
    except fault_tolerance.TrainingDiverged as exc:
        print(f"seqlit: error: {exc}", file=sys.stderr)
        sys.exit(1)
    except Exception as exc:
        err = _input_error(exc)
        if err is None:
            raise
        cli.remove_partial_runs()
        print(f"seqlit: error: {err}", file=sys.stderr)
        sys.exit(2)


def _callbacks(cli: SeqlitCLI) -> list[Any]:
    trainer = getattr(cli, "trainer", None)
    return list(trainer.callbacks) if trainer is not None else []


if __name__ == "__main__":
    main()
