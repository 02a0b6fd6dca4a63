"""One error type for bad user input, and one helper that words it.

Every check at the boundary (config values, files, command line) raises :class:`InputError` with the parameter's name,
the value given and what is allowed. The CLI turns it into a single line on stderr and exit status 2, so a user never
sees a traceback from deep inside torch for a mistake in their config.
"""

from __future__ import annotations

from typing import Any


class InputError(ValueError):
    """A user-supplied value is not acceptable; the message names the parameter, the value and what is allowed."""


def require(ok: bool, name: str, value: Any, allowed: str) -> None:
    """Raise :class:`InputError` as ``name=value: allowed`` unless ``ok``."""
    if not ok:
        raise InputError(f"{name}={value!r} is not allowed: {allowed}")
