"""The one place that touches private attributes of Lightning and other libraries, each with the reason it must.

Everything else in seqlit uses public APIs only (``tests/test_layering.py`` greps for private names outside this file).
When an upstream release offers a public way, replace the function body here and nothing else changes.
"""

from __future__ import annotations

from typing import Any


def batches_that_stepped(trainer: Any) -> int:
    """The loop's count of batches that stepped, which decides when Lightning writes step metrics.

    Lightning logs step metrics when ``(batches_that_stepped + 1) % log_every_n_steps == 0``; ``global_step`` differs
    from it under gradient accumulation and on resume, and no public property exposes the loop's own count.
    """
    return getattr(trainer.fit_loop.epoch_loop, "_batches_that_stepped", trainer.global_step)


def request_graceful_stop(trainer: Any) -> None:
    """Ask the Trainer to stop at the next batch boundary exactly as it does on SIGTERM (save, then raise).

    Lightning's signal connector turns SIGTERM into ``SIGTERMException`` but handles SIGUSR1 (and SIGINT) only under
    SLURM auto-requeue; setting its flag is the only way to reuse that path for other signals.
    """
    trainer._signal_connector.received_sigterm = True
