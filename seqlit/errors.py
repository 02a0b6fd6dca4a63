"""What the user reads: one error type for bad input, the helper that words it, and ``say`` for seqlit's own lines.

Every check at the boundary (config values, files, command line) raises :class:`InputError` with the parameter's name,
the value given and what is allowed. The CLI turns it into a single line on stderr and exit status 2, so a user never
sees a traceback from deep inside torch for a mistake in their config. Everything else seqlit tells the user (what the
data holds, where a file went) goes through :func:`say`, never through Lightning's loggers or Python warnings, which
the command silences by default.
"""

from __future__ import annotations

import os
import sys
from typing import Any


class InputError(ValueError):
    """A user-supplied value is not acceptable; the message names the parameter, the value and what is allowed."""


def require(ok: bool, name: str, value: Any, allowed: str) -> None:
    """Raise :class:`InputError` as ``name=value: allowed`` unless ``ok``."""
    if not ok:
        raise InputError(f"{name}={value!r} is not allowed: {allowed}")


def say(text: str) -> None:
    """Print ``text`` on lines of its own, above any progress bar still drawn; only the first process of a DDP run."""
    if any(os.environ.get(name, "0") != "0" for name in ("RANK", "LOCAL_RANK")):
        return  # the other processes would repeat every line
    from tqdm import tqdm  # Lightning's bars are tqdm bars: tqdm.write clears them, prints, and redraws them

    tqdm.write(text, file=sys.stdout)
