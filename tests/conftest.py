"""Shared test helpers: run the real ``seqlit`` command in a subprocess, inside a temporary folder."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "configs"

# Quiet, quick trainer settings for subprocess runs: no progress bars, no model summary.
QUIET = ["--trainer.enable_progress_bar", "false", "--trainer.enable_model_summary", "false"]


def run_seqlit(args: list[str], cwd: Path, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run ``python -m seqlit ARGS`` in ``cwd``; on an unexpected exit status, fail with its output."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    proc = subprocess.run(
        [sys.executable, "-m", "seqlit", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        pytest.fail(
            f"seqlit {' '.join(args)} exited {proc.returncode}\n--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}"
        )
    return proc


@pytest.fixture
def seqlit_main(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture):
    """``seqlit_main(args)`` runs the ``seqlit`` entry point in this process (fast: no new interpreter, no re-import),
    in ``tmp_path``, and returns ``(exit_code, stdout, stderr)``. For checks of argument handling and bad input."""
    from seqlit.run.entry import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["seqlit"])  # the command sets sys.argv[1:] to its arguments
    # Lightning's log handlers may hold a stream an earlier test's capture closed; don't report that as an error
    monkeypatch.setattr(logging, "raiseExceptions", False)

    def run(args: list[str]) -> tuple[int, str, str]:
        code = 0
        try:
            main(args)
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        out, err = capsys.readouterr()
        return code, out, err

    run.cwd = tmp_path  # type: ignore[attr-defined]
    return run


@pytest.fixture
def seqlit_cli(tmp_path: Path):
    """``seqlit_cli(args, check=True)`` runs the real command with ``tmp_path`` as the working folder."""

    def run(args: list[str], check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess:
        return run_seqlit(args, tmp_path, check=check, timeout=timeout)

    run.cwd = tmp_path  # type: ignore[attr-defined]
    return run


def wait_for_checkpoint(path: Path, proc: subprocess.Popen, timeout: float = 120) -> int:
    """Wait until ``path`` holds a checkpoint past step 0 while ``proc`` runs; return its step."""
    import time

    import torch

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.communicate()
        if path.is_file():
            try:
                step = torch.load(path, weights_only=True)["global_step"]
            except Exception:  # noqa: BLE001 - being replaced right now; try again
                step = 0
            if step > 0:
                return step
        time.sleep(0.1)
    proc.kill()
    pytest.fail(f"no checkpoint at {path} after {timeout} s")


@pytest.fixture
def one_thread():
    """Tiny models run fastest on one thread; two threads on a busy machine are far slower still."""
    import torch  # here, not at the top: most tests run seqlit in a subprocess and never need torch in this one

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
