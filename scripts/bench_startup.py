"""Start-up cost of the ``seqlit`` command, as ratios to the imports it cannot avoid, measured side by side.

Rows: ``python -c "import torch"``, ``python -c "import lightning.pytorch"``, ``seqlit --help``, ``seqlit --version``,
a mistyped subcommand, and the time from starting ``seqlit fit --config configs/sine.yaml`` to the start of its first
training step (a callback notes the time and ends the process there). Each is run ``--repeats`` times, alternating,
and the median is reported. Goals: ``seqlit --help`` ≤ 0.3 × ``import torch``; first sine training step ≤ 1.3 ×
``import lightning.pytorch``.

    python scripts/bench_startup.py --repeats 5
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import lightning as L

REPO = Path(__file__).resolve().parents[1]


class FirstStep(L.Callback):
    """Print the wall-clock time when the first training step starts, then end the process at once."""

    def on_train_batch_start(self, *args: object) -> None:
        print(f"FIRST_STEP {time.time():.6f}", flush=True)
        os._exit(0)  # the measurement ends here; nothing after this step matters


def timed(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds from starting ``cmd`` to its end, or to the FIRST_STEP time it prints."""
    start = time.time()
    out = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
    marks = [line.split()[1] for line in out.stdout.splitlines() if line.startswith("FIRST_STEP")]
    end = float(marks[0]) if marks else time.time()
    if not marks and out.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(cmd)} failed:\n{out.stderr[-2000:]}")
    return end - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    py = sys.executable
    work = Path(tempfile.mkdtemp(prefix="bench-startup-"))
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'scripts'}:{os.environ.get('PYTHONPATH', '')}"}
    fit = [py, "-m", "seqlit", "fit", "--config", str(REPO / "configs" / "sine.yaml"),
           "--trainer.callbacks+=bench_startup.FirstStep", "--test_after_fit", "false"]  # fmt: skip
    rows = {
        "python -c 'import torch'": [py, "-c", "import torch"],
        "python -c 'import lightning.pytorch'": [py, "-c", "import lightning.pytorch"],
        "seqlit --help": [py, "-m", "seqlit", "--help"],
        "seqlit --version": [py, "-m", "seqlit", "--version"],
        "seqlit fitt (a typo)": [py, "-m", "seqlit", "fitt"],
        "seqlit fit configs/sine.yaml → first training step": fit,
    }
    times: dict[str, list[float]] = {name: [] for name in rows}
    for _ in range(args.repeats):  # alternate the rows, so a busy moment of the machine spreads over all of them
        for name, cmd in rows.items():
            times[name].append(timed(cmd, work, env))
    median = {name: statistics.median(t) for name, t in times.items()}
    torch_s, lightning_s = median["python -c 'import torch'"], median["python -c 'import lightning.pytorch'"]
    print(f"Start-up, median of {args.repeats} runs each, alternating\n")
    print("| command | seconds | ÷ import torch | ÷ import lightning.pytorch |\n|---|---:|---:|---:|")
    for name, seconds in median.items():
        print(f"| `{name}` | {seconds:.2f} | {seconds / torch_s:.2f} | {seconds / lightning_s:.2f} |")
    help_ratio = median["seqlit --help"] / torch_s
    step_ratio = median["seqlit fit configs/sine.yaml → first training step"] / lightning_s
    print(f"\nseqlit --help ÷ import torch: {help_ratio:.2f} (goal ≤ 0.3)")
    print(f"first sine training step ÷ import lightning.pytorch: {step_ratio:.2f} (goal ≤ 1.3)")


if __name__ == "__main__":
    main()
