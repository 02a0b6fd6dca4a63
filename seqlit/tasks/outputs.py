"""What the tasks write: the run folder, figures published to loggers, and a CSV prediction writer.

Files go into the run's folder (the first logger's), and only on global rank 0: under DDP each process predicts a
shard, the shards are gathered, and one file is written. A Trainer without a logger has no run folder: then no file
is written at all (never into the current folder), and figures go to no logger either.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import BasePredictionWriter

from seqlit.errors import say


def run_dir(trainer: L.Trainer) -> Path | None:
    """The folder of this run (the first logger's version folder), created if needed; None without a logger.

    Read from the logger, not ``trainer.log_dir``: under DDP that property is a collective broadcast, which would hang
    when only rank 0 asks (as it does before writing a figure or a file).
    """
    folder = getattr(trainer.loggers[0], "log_dir", None) if trainer.loggers else None
    if folder is None:  # no logger, or one without a folder: nowhere that belongs to this run
        return None
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_text(trainer: L.Trainer, filename: str, text: str) -> Path | None:
    """Write ``text`` to ``filename`` in the run folder, atomically; None (nothing written) without a run folder."""
    folder = run_dir(trainer)
    if folder is None:
        return None
    path = folder / filename
    tmp = path.with_name(path.name + ".tmp")  # write then rename: never a half-written file
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def publish_figure(trainer: L.Trainer, fig: Any, tag: str, filename: str) -> None:
    """Save a matplotlib figure as a PNG in the run folder (if any), log it to every logger that takes figures, close
    it."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    folder = run_dir(trainer)
    if folder is not None:
        fig.savefig(folder / filename, dpi=100)
    for logger in trainer.loggers:
        if hasattr(logger.experiment, "add_figure"):
            logger.experiment.add_figure(tag, fig, global_step=trainer.global_step, close=False)
    plt.close(fig)


def gather(trainer: L.Trainer, obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order (just ``[obj]`` in one process)."""
    if trainer.world_size == 1 or not torch.distributed.is_initialized():
        return [obj]
    out: list[Any] = [None] * trainer.world_size
    torch.distributed.all_gather_object(out, obj)
    return out


def _columns(rows: list[dict[str, Any]]) -> dict[str, list]:
    """Join per-batch dicts of equal-length columns into one dict of lists."""
    cols: dict[str, list] = {}
    for batch in rows:
        for key, values in batch.items():
            values = values.tolist() if hasattr(values, "tolist") else list(values)
            cols.setdefault(key, []).extend(values)
    return cols


def _fmt(v: Any) -> Any:
    if isinstance(v, float):
        return "" if math.isnan(v) else f"{v:.6g}"
    return v


class PredictionWriter(BasePredictionWriter):
    """Write what ``predict_step`` returns (a dict of equal-length columns per batch) to ``predictions.csv``."""

    def __init__(self, filename: str = "predictions.csv") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename
        self.path: Path | None = None

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        batches = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        gathered = gather(trainer, batches)
        if trainer.global_rank != 0:
            return
        cols = _columns([b for rank in gathered for b in rank])
        out = io.StringIO()
        writer = csv.writer(out)
        writer.writerow(cols)
        for row in zip(*cols.values(), strict=True):
            writer.writerow([_fmt(v) for v in row])
        self.path = write_text(trainer, self.filename, out.getvalue())
        if self.path is not None:
            say(f"Predictions: {self.path} ({len(next(iter(cols.values()), []))} rows)")
