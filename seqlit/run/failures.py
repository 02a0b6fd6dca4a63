"""What a failed command prints: one line naming the setting, the value and what is allowed, and its exit status.

Most bad input is caught where it enters (:class:`~seqlit.errors.InputError`). A few mistakes surface only as
exceptions from inside Lightning or the operating system (a GPU preset on a machine without one, a folder that cannot
be written); they are worded here, so a user never reads a traceback for a mistake in a command.
"""

from __future__ import annotations

from pathlib import Path

from lightning.fabric.utilities.exceptions import MisconfigurationException

from seqlit.errors import InputError

EXIT_BAD_INPUT = 2


def _chain(exc: BaseException | None) -> list[BaseException]:
    """``exc`` and every exception it was raised from or during (jsonargparse wraps errors of instantiation)."""
    found: list[BaseException] = []
    while exc is not None and all(exc is not seen for seen in found):
        found.append(exc)
        exc = exc.__cause__ or exc.__context__
    return found


def explain(exc: BaseException) -> str | None:
    """The one line for an exception caused by the user's command or environment, or None for a real bug."""
    chain = _chain(exc)
    for err in chain:
        if isinstance(err, InputError):
            return str(err)
    for err in chain:
        if isinstance(err, MisconfigurationException):
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            if "gpu" in first.lower() or "accelerator" in first.lower() or "cuda" in first.lower():
                return (
                    f"trainer.accelerator: {first} This machine has no usable GPU: leave out the GPU preset "
                    "(configs/trainer/gpu.yaml) or pass --trainer.accelerator cpu"
                )
            return f"trainer: {first}"
        if isinstance(err, (NotADirectoryError, FileExistsError)) and err.filename:
            # a file where the run folders should go (lightning_logs or an experiment's folder): name that file
            wanted = Path(err.filename)
            blocker = next((p for p in (wanted, *wanted.parents) if p.exists() and not p.is_dir()), None)
            if blocker is not None:
                return (
                    f"cannot write {str(wanted)!r}: {str(blocker)!r} is a file where a folder is needed; move it "
                    "away, or point --trainer.default_root_dir at another folder"
                )
        if isinstance(err, PermissionError):
            where = err.filename or "the output folder"
            return (
                f"cannot write {str(where)!r}: permission denied; run from a folder you can write to, or point "
                "--trainer.default_root_dir at one"
            )
    return None
