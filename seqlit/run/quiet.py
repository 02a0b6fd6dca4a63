"""Quiet by default: a normal run shows its progress bar, metrics and paths, not the libraries' banners and warnings.

Lightning announces the hardware (``GPU available: False ...``), advertises a cloud logger, reports every checkpoint
load at INFO level, and torch, torchmetrics and Lightning raise warnings that a user of seqlit can do nothing about
(deprecations inside Lightning, a metric without positive samples in the sanity check). They drown the lines that
matter, and an error line must be the only thing printed. ``--verbose`` (or ``SEQLIT_VERBOSE=1``) brings them all
back; seqlit's own messages are printed, never routed through these channels, so they always show.
"""

from __future__ import annotations

import logging
import os
import warnings

VERBOSE_FLAG = "--verbose"
VERBOSE_ENV = "SEQLIT_VERBOSE"
# the libraries whose INFO logs and warnings are silenced; a prefix matches the package and everything below it
LIBRARIES = (
    "lightning",
    "pytorch_lightning",
    "lightning_fabric",
    "torch",
    "torchmetrics",
    "jsonargparse",
    "tensorboard",
)


def take_verbose(argv: list[str]) -> tuple[list[str], bool]:
    """Remove ``--verbose`` from ``argv`` (LightningCLI does not know it) and say whether it, or the variable, asked."""
    rest = [arg for arg in argv if arg != VERBOSE_FLAG]
    return rest, len(rest) != len(argv) or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def silence_libraries() -> None:
    """Hide the libraries' INFO logs and warnings for the rest of this process (DDP ranks and sweep trials rerun the
    command, so they call this too)."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning", "lightning_fabric"):
        logging.getLogger(name).setLevel(logging.ERROR)  # banners, tips, "Restoring states ..." are INFO
    pattern = r"(" + "|".join(LIBRARIES) + r")(\.|$)"
    warnings.filterwarnings("ignore", module=pattern)  # warnings attributed to a library frame
