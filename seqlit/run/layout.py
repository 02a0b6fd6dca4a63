"""Where a command writes, and how it owns it: the run folder of each command, its lock, and what a failure removes.

Runs live in ``<root>/lightning_logs/<experiment>/version_<n>/``. A new run (any ``fit``, ``validate``, ``test`` or
``predict`` that does not continue a run) claims the next free version atomically; a resumed ``fit`` writes into the
run it continues. Either way the command holds ``<run>/.lock`` while it runs (see :mod:`seqlit.run.lock`), so two
commands never write into one folder. Only global rank 0 claims and locks: the other processes of a DDP run log nothing.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from jsonargparse import Namespace
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger

from seqlit.run.lock import RunLock, claim_new_version


def is_rank_zero() -> bool:
    """Whether this process is global rank 0, read from the launchers' variables (torchrun, Lightning, SLURM)."""
    return all(os.environ.get(name, "0") == "0" for name in ("RANK", "LOCAL_RANK", "NODE_RANK", "SLURM_PROCID"))


@dataclass
class CommandRecord:
    """What :func:`seqlit.run.cli.main` needs when the CLI's constructor raises: the run folder this command made, its
    lock and its trainer.

    LightningCLI runs the whole command inside ``__init__``, so on an error no CLI object is returned; this record,
    handed in and filled while the classes are created, is how the error path still finds them.
    """

    own_run: Path | None = None  # a run folder this command created (a resumed run's folder is never its own)
    own_parents: tuple[Path, ...] = ()  # the experiment and log folders, if this command made them
    lock: RunLock | None = None
    trainer: Any = None

    def release(self) -> None:
        """Give up the run's lock (at the end of the command, whatever the outcome)."""
        if self.lock is not None:
            self.lock.release()


def open_run(*, experiment_dir: Path, resume_run: Path | None, record: CommandRecord) -> int | None:
    """Claim (or, to resume, lock) this command's run folder on rank 0 and return its version number.

    Other ranks return the resumed run's version, or None: they never write into the run folder.
    """
    if not is_rank_zero():
        return int(resume_run.name.split("_")[-1]) if resume_run is not None else None
    if resume_run is None:
        record.own_parents = tuple(p for p in (experiment_dir, experiment_dir.parent) if not p.exists())
    run = resume_run if resume_run is not None else claim_new_version(experiment_dir)
    if resume_run is None:
        record.own_run = run  # made by this command: a failure before its first checkpoint removes it again
    lock = RunLock(run)
    lock.acquire()  # a run another live command writes into is refused here, with one line
    record.lock = lock
    return int(run.name.split("_")[-1])


TENSORBOARD = "seqlit.run.layout.RunTensorBoardLogger"
SAME_FOLDER = ("TensorBoardLogger", "RunTensorBoardLogger", "CSVLogger", "RunCSVLogger")  # all in the run folder


def public_hparams(params: Any) -> dict[str, Any]:
    """The hyperparameters a reader wants: without LightningCLI's bookkeeping entries (``_class_path``,
    ``_instantiator``), which the checkpoint keeps to rebuild the model."""
    params = vars(params) if isinstance(params, Namespace) else dict(params)
    return {k: v for k, v in params.items() if not str(k).startswith("_")}


class RunTensorBoardLogger(TensorBoardLogger):
    """Lightning's TensorBoard logger; ``hparams.yaml`` and the HPARAMS tab show :func:`public_hparams` only."""

    def log_hyperparams(self, params: Any, metrics: Any = None) -> None:
        super().log_hyperparams(public_hparams(params), metrics)


class RunCSVLogger(CSVLogger):
    """Lightning's CSV logger; its ``hparams.yaml`` (the same file as TensorBoard's) shows :func:`public_hparams`."""

    def log_hyperparams(self, params: Any) -> None:
        super().log_hyperparams(public_hparams(params))


def run_loggers(user: Any, *, save_dir: str, name: str, version: int | None) -> Any:
    """The loggers of a run: TensorBoard in the run folder first (the layout ``last``/``best`` and the figures rely
    on), then the user's own (a preset such as ``configs/logger/csv.yaml``), pointed at the same run where they can be.

    ``trainer.logger: false`` stays false (no run folder, nothing logged).
    """
    if user is False:
        return False
    given = [] if user in (None, True) else list(user) if isinstance(user, list) else [user]
    if not any("TensorBoard" in str(g.class_path) for g in given):
        given.insert(0, Namespace(class_path=TENSORBOARD, init_args=Namespace(default_hp_metric=False)))
    for logger in given:
        args = logger.init_args if logger.get("init_args") is not None else Namespace()
        kind = str(logger.class_path).rsplit(".", 1)[-1]
        if kind in SAME_FOLDER:
            args.save_dir, args.name, args.version = save_dir, name, version
        if kind == "CSVLogger":  # it writes hparams.yaml into the run folder too: the same public entries
            logger.class_path = "seqlit.run.layout.RunCSVLogger"
        elif kind == "MLFlowLogger":  # its own store (mlruns/); named after the experiment and the run folder
            if args.get("experiment_name") in (None, "lightning_logs"):
                args.experiment_name = name
            if args.get("run_name") is None and version is not None:
                args.run_name = f"version_{version}"
            if str(args.get("tracking_uri") or "").startswith("file:"):  # a local store, as the preset asks for:
                os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses it unless told so
        logger.init_args = args
    return given


def remove_partial_run(record: CommandRecord) -> None:
    """Delete the run folder this command created, if it holds no checkpoint: a failed start leaves nothing behind.

    Only a folder this very command claimed is touched, and the experiment and log folders above it only if this
    command made them and they are empty; every other run (earlier results, another process's run) stays as it is.
    """
    run = record.own_run
    if run is None or not run.is_dir() or any(run.rglob("*.ckpt")):
        return
    record.release()  # the lock file lives in the folder
    shutil.rmtree(run, ignore_errors=True)
    for parent in record.own_parents:
        try:
            parent.rmdir()  # only if empty: another command may have started a run in it meanwhile
        except OSError:
            break


def finite_or_none(value: float) -> float | None:
    """JSON has no NaN or infinity: a metric that is not a number is written as null."""
    return value if math.isfinite(value) else None


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Write ``data`` as strict JSON (no bare NaN), atomically: a temporary file, then a rename."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True, allow_nan=False) + "\n")
    tmp.replace(path)
