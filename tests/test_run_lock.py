"""Run folders are owned: new versions are claimed atomically, a held run refuses a second writer, stale locks pass."""

from __future__ import annotations

import json
import multiprocessing
import socket
import subprocess
import sys

import pytest

from seqlit.errors import InputError
from seqlit.run.lock import RunLock, claim_new_version


def test_new_versions_are_claimed_in_order_skipping_taken_ones(tmp_path):
    exp = tmp_path / "lightning_logs" / "sine"
    assert claim_new_version(exp).name == "version_0"
    (exp / "version_3").mkdir()
    assert claim_new_version(exp).name == "version_4"
    assert sorted(p.name for p in exp.iterdir()) == ["version_0", "version_3", "version_4"]


def _claim(exp, queue) -> None:
    queue.put(claim_new_version(exp).name)


def test_racing_processes_never_share_a_version(tmp_path):
    exp = tmp_path / "exp"
    queue = multiprocessing.get_context("fork").Queue()
    procs = [multiprocessing.get_context("fork").Process(target=_claim, args=(exp, queue)) for _ in range(6)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    names = [queue.get(timeout=5) for _ in procs]
    assert sorted(names) == [f"version_{i}" for i in range(6)]


def test_a_held_run_refuses_a_second_writer_and_frees_on_release(tmp_path):
    first, second = RunLock(tmp_path), RunLock(tmp_path)
    first.acquire()
    with pytest.raises(InputError, match=r"is in use by process \d+"):
        second.acquire()
    first.release()
    assert not (tmp_path / ".lock").exists()
    second.acquire()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] > 0


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / ".lock").write_text(json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()}))
    lock = RunLock(tmp_path)
    lock.acquire()
    assert lock.held


def test_an_unreadable_lock_counts_as_stale(tmp_path):
    (tmp_path / ".lock").write_text("{half")
    lock = RunLock(tmp_path)
    lock.acquire()
    assert lock.held
