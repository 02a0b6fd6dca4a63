"""Several machines, simulated: two "nodes" of one process each, started by ``torchrun --nnodes 2`` on 127.0.0.1.

Each node is its own torchrun (its own node rank), as on a real cluster; they meet at a rendezvous on this machine.
The test metrics of the two-node run of a checkpoint must equal those of one process: every test sample goes to
exactly one process, and the metrics are reduced over both.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest
from conftest import CONFIGS, QUIET

SINE = ["--config", str(CONFIGS / "sine.yaml"), "--data.length", "400", "--data.window", "8", "--data.val_size", "40",
        "--data.test_size", "103", "--data.batch_size", "16", "--model.hidden_size", "8"]  # fmt: skip


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_nodes_report_the_one_process_test_metrics(seqlit_cli):
    cwd = seqlit_cli.cwd
    seqlit_cli(["fit", *SINE, "--trainer.max_epochs", "2", "--test_after_fit", "false", *QUIET])
    best = "lightning_logs/sine/version_0/checkpoints/last.ckpt"
    seqlit_cli(["test", "--ckpt_path", best, *QUIET])  # one process: version_1
    one = json.loads((cwd / "lightning_logs" / "sine" / "version_1" / "test_metrics.json").read_text())

    port = free_port()
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    nodes = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "torch.distributed.run",
                "--nnodes",
                "2",
                "--nproc-per-node",
                "1",
                "--node-rank",
                str(rank),
                "--master-addr",
                "127.0.0.1",
                "--master-port",
                str(port),
                "-m",
                "seqlit",
                "test",
                "--ckpt_path",
                best,
                "--trainer.num_nodes",
                "2",
                "--trainer.devices",
                "1",
                "--trainer.accelerator",
                "cpu",
                "--trainer.strategy",
                "ddp",
                *QUIET,
            ],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )  # fmt: skip
        for rank in (0, 1)
    ]
    outputs = [node.communicate(timeout=300)[0] for node in nodes]
    assert [node.returncode for node in nodes] == [0, 0], "\n".join(outputs)
    runs = sorted(p.name for p in (cwd / "lightning_logs" / "sine").iterdir())
    assert runs == ["version_0", "version_1", "version_2"]  # one run folder for both nodes, written by rank 0
    two = json.loads((cwd / "lightning_logs" / "sine" / "version_2" / "test_metrics.json").read_text())
    assert two["test/mse"] == pytest.approx(one["test/mse"], rel=1e-5, abs=1e-7)
    assert two["test/mae"] == pytest.approx(one["test/mae"], rel=1e-5, abs=1e-7)
