"""A run owns its folder: new run folders are claimed atomically, and a lock file names the process writing to one.

Two commands on one experiment at once used to pick the same ``version_N`` (or both resume it) and interleave their
TensorBoard events and checkpoints, the last writer winning. Now a new run claims the next free version with
``os.mkdir`` (atomic: exactly one process can create a folder), and every command that writes into a run folder holds
``<run>/.lock`` (created with ``O_EXCL``, holding the process id and host). A second command on a held run refuses with
one line; a lock whose process is gone (a killed run) is recognised as stale and taken over.
"""

from __future__ import annotations

import json
import os
import re
import socket
from pathlib import Path

from seqlit.errors import InputError

LOCK_NAME = ".lock"
_VERSION = re.compile(r"version_(\d+)$")


def claim_new_version(experiment_dir: Path) -> Path:
    """Create and return the next free ``version_N`` folder; a folder another process created first is skipped."""
    experiment_dir.mkdir(parents=True, exist_ok=True)
    taken = [int(m.group(1)) for p in experiment_dir.iterdir() if (m := _VERSION.search(p.name))]
    version = max(taken, default=-1) + 1
    while True:
        run = experiment_dir / f"version_{version}"
        try:
            run.mkdir()  # atomic: of two processes racing for one number, exactly one succeeds
            return run
        except FileExistsError:
            version += 1  # someone else claimed it between the listing and now


def _alive(pid: int, host: str) -> bool:
    """Whether the process that wrote a lock still runs (a lock from another host is assumed alive: cannot tell)."""
    if host != socket.gethostname():
        return True
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by another user
    return True


class RunLock:
    """``<run>/.lock`` held by this process from :meth:`acquire` until :meth:`release` (or the process's end)."""

    def __init__(self, run: Path) -> None:
        self.path = run / LOCK_NAME
        self.held = False

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; raise :class:`InputError` if another live process holds it."""
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        for _ in range(2):  # a second try after removing a stale lock
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                owner = self._owner()
                if owner is not None and _alive(owner["pid"], owner["host"]):
                    raise InputError(
                        f"run folder {str(self.path.parent)!r} is in use by process {owner['pid']} on "
                        f"{owner['host']}: wait for it to finish or stop it, then run the command again"
                    ) from None
                self.path.unlink(missing_ok=True)  # stale: its process is gone (killed, crashed)
                continue
            with os.fdopen(fd, "w") as f:
                f.write(me)
            self.held = True
            return
        raise InputError(f"run folder {str(self.path.parent)!r}: could not take its lock; run the command again")

    def _owner(self) -> dict | None:
        try:
            data = json.loads(self.path.read_text())
            return {"pid": int(data["pid"]), "host": str(data["host"])}
        except (OSError, ValueError, KeyError, TypeError):
            return None  # unreadable or half-written by a killed process: treat as stale

    def release(self) -> None:
        """Remove the lock if this process holds it."""
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False
