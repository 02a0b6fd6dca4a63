"""Quiet by default: a Quickstart run prints progress, metrics and paths, and no library banner or warning line;
``--verbose`` brings the libraries' own output back."""

from __future__ import annotations

import os
import re
import subprocess
import sys

from conftest import CONFIGS

# the Quickstart's own config, shortened; progress bars stay on, as a user sees them
QUICKSTART = ["fit", "--config", str(CONFIGS / "sine.yaml"), "--trainer.max_epochs", "2", "--data.length", "400",
              "--data.val_size", "60", "--data.test_size", "80"]  # fmt: skip


def run(args: list[str], cwd) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONWARNINGS", "SEQLIT_VERBOSE")}  # as a user has it
    return subprocess.run([sys.executable, "-m", "seqlit", *args], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)  # fmt: skip


def test_a_quickstart_run_prints_no_warning_and_no_banner(tmp_path):
    proc = run(QUICKSTART, tmp_path)
    assert proc.returncode == 0, proc.stderr
    output = (proc.stdout + proc.stderr).replace("\r", "\n")
    assert not [line for line in output.splitlines() if re.search(r"warn", line, re.IGNORECASE)], output[-3000:]
    for noise in ("GPU available", "TPU available", "litlogger", "weights_only", "LightningCLI's args"):
        assert noise not in output, noise
    assert "test/mse" in output and "Best checkpoint:" in output and "TensorBoard run:" in output


def test_verbose_brings_the_libraries_output_back(tmp_path):
    proc = run([*QUICKSTART, "--trainer.max_epochs", "1", "--verbose"], tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "GPU available" in proc.stdout + proc.stderr
