"""Benchmark the sine forecaster: the tutorial's own code, its configuration in seqlit, and seqlit's default.

All three train on the same noisy sine series (one per seed) and are tested on windows inside the last 200 points.
Columns: test MSE; MSE ÷ the noise floor (1/3, the variance of the uniform noise: the best any forecaster can do on
average); MSE ÷ the oracle (the noise-free signal's own MSE on the very same test points, which removes the luck of
the particular noise draw); the persistence baseline's MSE; and wall time for training plus testing, in this process.

    python scripts/bench_sine.py                 # 3 seeds, prints a Markdown table
    python scripts/bench_sine.py --seeds 0 --quick
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from seqlit.data import SineDataModule
from seqlit.run.cli import SeqlitCLI

CONFIGS = Path(__file__).resolve().parents[1] / "configs"


def tutorial_code(seed: int, epochs: int) -> dict[str, float]:
    """The classic tutorial as written: windows of 3 as ONE step of 3 features, nn.RNN(128), Adam 1e-4, no shuffle."""
    dm = SineDataModule(seed=seed)
    dm.setup("fit")
    x = dm.series[:, 0].astype(np.float32)
    torch.manual_seed(seed)

    def create_labels(data: np.ndarray, step: int) -> tuple[np.ndarray, np.ndarray]:
        xs = np.stack([data[i : i + step] for i in range(len(data) - step)])
        return xs, data[step:]

    train_x, train_y = create_labels(x[:800], 3)
    test_x, test_y = create_labels(x[800:], 3)
    train_x, test_x = torch.tensor(train_x).unsqueeze(1), torch.tensor(test_x).unsqueeze(1)  # (N, 1, 3)
    train_y, test_y = torch.tensor(train_y).unsqueeze(1), torch.tensor(test_y).unsqueeze(1)
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(train_x, train_y), batch_size=32)

    class SimpleRNN(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.rnn = nn.RNN(3, 128, batch_first=True)
            self.fc = nn.Linear(128, 1)

        def forward(self, v: torch.Tensor) -> torch.Tensor:
            out, _ = self.rnn(v)
            return self.fc(out[:, -1, :])

    start = time.perf_counter()
    model = SimpleRNN()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for _ in range(epochs):
        model.train()
        for bx, by in loader:
            opt.zero_grad()
            loss = nn.functional.mse_loss(model(bx), by)
            loss.backward()
            opt.step()
    model.eval()
    with torch.no_grad():
        pred = model(test_x)
    wall = time.perf_counter() - start
    mse = nn.functional.mse_loss(pred, test_y).item()
    positions = np.arange(803, 1000)
    oracle = float(np.mean((x[positions] - dm.signal()[positions]) ** 2))
    persistence = float(np.mean((x[positions] - x[positions - 1]) ** 2))
    return {"mse": mse, "oracle": oracle, "persistence": persistence, "wall": wall}


def seqlit_run(config: str, seed: int, root: str, extra: list[str]) -> dict[str, float]:
    """``seqlit fit --config CONFIG`` (which ends by testing the best checkpoint), in this process."""
    args = ["fit", "--config", str(CONFIGS / config), "--seed_everything", str(seed), "--data.seed", str(seed),
            "--trainer.default_root_dir", root, "--trainer.enable_progress_bar", "false",
            "--trainer.enable_model_summary", "false", *extra]  # fmt: skip
    start = time.perf_counter()
    cli = SeqlitCLI(args=args)
    wall = time.perf_counter() - start
    metrics = {k: float(v) for k, v in cli.trainer.callback_metrics.items()}
    dm = cli.datamodule
    positions = dm.datasets["test"].tensors["position"].numpy()
    oracle = float(np.mean((dm.series[positions, 0] - dm.signal()[positions]) ** 2))
    return {"mse": metrics["test/mse"], "oracle": oracle, "persistence": metrics["test/persistence_mse"], "wall": wall}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--quick", action="store_true", help="2 epochs each: checks the script, measures nothing")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    logging.getLogger("lightning.fabric").setLevel(logging.ERROR)
    quick = ["--trainer.max_epochs", "2"] if args.quick else []
    rows = {
        "tutorial code (plain PyTorch loop)": lambda s, root: tutorial_code(s, 2 if args.quick else 100),
        "seqlit `configs/sine_rnn.yaml` (tutorial's setup)": lambda s, root: seqlit_run(
            "sine_rnn.yaml", s, root, quick
        ),
        "seqlit `configs/sine.yaml` (default)": lambda s, root: seqlit_run("sine.yaml", s, root, quick),
    }
    results: dict[str, list[dict[str, float]]] = {name: [] for name in rows}
    with tempfile.TemporaryDirectory() as root:
        for seed in args.seeds:
            for name, fn in rows.items():
                results[name].append(fn(seed, root))
                r = results[name][-1]
                print(f"seed {seed} | {name}: mse {r['mse']:.4f}, {r['wall']:.1f}s", flush=True)
    floor = 1 / 3
    threads = torch.get_num_threads()
    print(f"\nNoisy sine, {len(args.seeds)} seed(s) {args.seeds}, mean over seeds; torch threads: {threads}\n")
    print("| run | test MSE | MSE ÷ noise floor (1/3) | MSE ÷ oracle, same points | persistence MSE | wall time (s) |")
    print("|---|---|---|---|---|---|")
    for name, rs in results.items():
        mse = np.mean([r["mse"] for r in rs])
        ratio_oracle = np.mean([r["mse"] / r["oracle"] for r in rs])
        pers = np.mean([r["persistence"] for r in rs])
        wall = np.mean([r["wall"] for r in rs])
        print(f"| {name} | {mse:.3f} | {mse / floor:.3f} | {ratio_oracle:.3f} | {pers:.3f} | {wall:.1f} |")


if __name__ == "__main__":
    main()
