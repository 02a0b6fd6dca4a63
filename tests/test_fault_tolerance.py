"""Resume equivalence with shuffling on, kills (SIGKILL, SIGTERM, SIGUSR1), NaN stops, safe checkpoints."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import CONFIGS, QUIET, wait_for_checkpoint

from seqlit.data import SineDataModule
from seqlit.errors import InputError
from seqlit.run.checkpoints import load_checkpoint
from seqlit.run.fault_tolerance import LastCheckpoint, StopOnNonFinite, TrainingDiverged
from seqlit.tasks import Forecaster

# A small sine run: 220 training points, windows of 8, batches of 16 -> 14 shuffled steps per epoch.
SMALL = [
    "--config", str(CONFIGS / "sine.yaml"),
    "--data.length", "300", "--data.window", "8", "--data.val_size", "40", "--data.test_size", "40",
    "--data.batch_size", "16", "--model.hidden_size", "8", "--test_after_fit", "false", *QUIET,
]  # fmt: skip
STEPS_PER_EPOCH = 14


def _weights(path: Path) -> dict[str, torch.Tensor]:
    return torch.load(path, weights_only=True)["state_dict"]


def test_resume_at_an_epoch_boundary_ends_with_exactly_the_same_weights(seqlit_main):
    # shuffling on, dropout on (the torch RNG travels in the checkpoint), deterministic mode; no LR schedule, so
    # stopping after 2 of 4 epochs (max_epochs 2) changes nothing but where the run stops
    common = [*SMALL, "--trainer.deterministic", "true", "--model.num_layers", "2", "--model.dropout", "0.3",
              "--model.scheduler", "none"]  # fmt: skip
    assert seqlit_main(["fit", *common, "--experiment", "straight", "--trainer.max_epochs", "4"])[0] == 0
    assert seqlit_main(["fit", *common, "--experiment", "split", "--trainer.max_epochs", "2"])[0] == 0
    code, out, _ = seqlit_main(["fit", *common, "--experiment", "split", "--trainer.max_epochs", "4",
                                "--ckpt_path", "last"])  # fmt: skip
    assert code == 0 and f"(epoch 1, step {2 * STEPS_PER_EPOCH})" in out
    logs = seqlit_main.cwd / "lightning_logs"
    straight = _weights(logs / "straight" / "version_0" / "checkpoints" / "last.ckpt")
    split = _weights(logs / "split" / "version_0" / "checkpoints" / "last.ckpt")
    assert straight.keys() == split.keys()
    assert all(torch.equal(straight[k], split[k]) for k in straight)
    # and the shuffle did shuffle: epoch 1's training batches are not epoch 0's
    loader = _sine().train_dataloader()
    first = [b["position"].tolist() for b in loader]
    loader.sampler.set_epoch(1)
    assert [b["position"].tolist() for b in loader] != first


def _sine() -> SineDataModule:
    dm = SineDataModule(length=300, window=8, val_size=40, test_size=40, batch_size=16, scaler="standard")
    dm.setup("fit")
    return dm


class _Record(L.Callback):
    """The positions of every training batch, in the order trained."""

    def __init__(self) -> None:
        self.seen: list[list[int]] = []

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        self.seen.append(batch["position"].tolist())


class _Interrupt(Exception):
    pass


class _StopAt(L.Callback):
    """Crash at the start of step ``step`` (after the checkpoint of the step before was written)."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        if trainer.global_step == self.step:
            raise _Interrupt


def _trainer(tmp_path: Path, *callbacks: L.Callback) -> L.Trainer:
    return L.Trainer(max_epochs=3, deterministic=True, logger=False, default_root_dir=tmp_path,
                     enable_progress_bar=False, enable_model_summary=False, callbacks=list(callbacks))  # fmt: skip


def test_resume_mid_epoch_continues_with_the_batches_the_epoch_had_not_seen(tmp_path):
    L.seed_everything(0)
    straight, model = _Record(), Forecaster(cell="gru", hidden_size=8)
    _trainer(tmp_path / "a", straight).fit(model, _sine())

    L.seed_everything(0)
    before, stop_at = _Record(), STEPS_PER_EPOCH + 7  # epoch 1 after its 7th batch (a save: every 3 steps)
    trainer = _trainer(tmp_path / "b", _StopAt(stop_at), before, LastCheckpoint(every_n_train_steps=3))
    with pytest.raises(_Interrupt):
        trainer.fit(Forecaster(cell="gru", hidden_size=8), _sine())
    last = tmp_path / "b" / "checkpoints" / "last.ckpt"
    assert torch.load(last, weights_only=True)["global_step"] == stop_at

    L.seed_everything(123)  # a different seed: what the resumed run sees must come from the checkpoint
    after = _Record()
    resumed = _trainer(tmp_path / "b", after, LastCheckpoint())
    resumed.fit(Forecaster(cell="gru", hidden_size=8), _sine(), ckpt_path=last)
    assert before.seen + after.seen == straight.seen  # epoch 1 continued with its 8th batch, nothing repeated
    assert resumed.global_step == 3 * STEPS_PER_EPOCH
    expected, final = model.state_dict(), resumed.lightning_module.state_dict()
    assert all(torch.equal(expected[k], final[k]) for k in expected)  # and ended with the same weights


def _popen(args: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "seqlit", *args], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip


@pytest.mark.slow
def test_sigkill_mid_fit_then_resume_continues_from_the_saved_step(tmp_path):
    last = tmp_path / "lightning_logs" / "sine" / "version_0" / "checkpoints" / "last.ckpt"
    args = [*SMALL, "--trainer.max_epochs", "1000", "--last_checkpoint.every_n_train_steps", "5"]
    proc = _popen(["fit", *args], tmp_path)
    wait_for_checkpoint(last, proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    saved = torch.load(last, weights_only=True)  # the kill never leaves a half-written last.ckpt
    step, epoch = saved["global_step"], saved["epoch"]
    assert step > 0

    resume = _popen(["fit", *SMALL, "--trainer.max_epochs", str(epoch + 2), "--ckpt_path", "last"], tmp_path)
    out, err = resume.communicate(timeout=300)
    assert resume.returncode == 0, err
    assert f"Resuming from {last.relative_to(tmp_path)} (epoch {epoch}, step {step})" in out
    final = torch.load(last, weights_only=True)
    assert final["global_step"] == (epoch + 2) * STEPS_PER_EPOCH > step  # went on from the step, to the end
    assert not (last.parent.parent.parent / "version_1").exists()  # in the same run folder


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGUSR1], ids=["SIGTERM", "SIGUSR1"])
def test_a_stop_signal_saves_a_checkpoint_and_exits_non_zero(tmp_path, sig):
    last = tmp_path / "lightning_logs" / "sine" / "version_0" / "checkpoints" / "last.ckpt"
    proc = _popen(["fit", *SMALL, "--trainer.max_epochs", "1000"], tmp_path)
    first = wait_for_checkpoint(last, proc)  # the end of epoch 0: training is under way
    time.sleep(0.5)
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 143, err
    assert "seqlit: stopped by a signal" in err and "continue with --ckpt_path last" in err
    saved = load_checkpoint(last)  # weights-only loadable
    assert saved["global_step"] >= first
    assert not list(last.parent.glob("*.tmp"))


class _Diverging(Forecaster):
    """A forecaster whose loss turns NaN at the fourth step of epoch 1."""

    def training_step(self, batch, batch_idx):
        loss = super().training_step(batch, batch_idx)
        return loss * float("nan") if self.trainer.global_step == STEPS_PER_EPOCH + 3 else loss


def test_a_nan_loss_stops_before_the_update_and_names_the_step_and_checkpoint(tmp_path):
    L.seed_everything(0)
    model = _Diverging(cell="gru", hidden_size=8)
    trainer = _trainer(tmp_path, StopOnNonFinite(), LastCheckpoint())
    snapshot: dict[str, torch.Tensor] = {}

    class _Snapshot(L.Callback):
        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            snapshot.update({k: v.clone() for k, v in pl_module.state_dict().items()})

    trainer.callbacks.append(_Snapshot())
    with pytest.raises(TrainingDiverged) as info:
        trainer.fit(model, _sine())
    message = str(info.value)
    assert f"the training loss is nan at step {STEPS_PER_EPOCH + 3} (epoch 1)" in message
    assert str(tmp_path / "checkpoints" / "last.ckpt") in message
    now = model.state_dict()
    assert all(torch.equal(now[k], snapshot[k]) for k in now)  # the NaN step did not touch the weights
    assert all(torch.isfinite(v).all() for v in now.values() if v.is_floating_point())


def test_a_nan_loss_through_the_cli_is_one_line_and_a_failure(seqlit_main):
    # an absurd learning rate without clipping: the loss is inf by the second step
    code, _, err = seqlit_main(["fit", *SMALL, "--model.optimizer", "sgd", "--model.lr", "1e30",
                                "--trainer.gradient_clip_val", "null", "--trainer.max_epochs", "2"])  # fmt: skip
    assert code == 1
    (line,) = [ln for ln in err.splitlines() if ln.startswith("seqlit: error:")]
    assert "the training loss is" in line and "at step" in line and "last good checkpoint" in line


def test_a_truncated_checkpoint_and_one_of_another_task_are_one_clear_line(seqlit_main):
    code, _, _ = seqlit_main(["fit", *SMALL, "--trainer.max_epochs", "1"])
    assert code == 0
    last = seqlit_main.cwd / "lightning_logs" / "sine" / "version_0" / "checkpoints" / "last.ckpt"
    cut = seqlit_main.cwd / "cut.ckpt"
    cut.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    code, _, err = seqlit_main(["test", "--ckpt_path", str(cut)])
    assert code == 2 and "is not a readable checkpoint" in err and "Traceback" not in err
    with pytest.raises(InputError, match="not a readable checkpoint"):
        load_checkpoint(cut)

    code, _, err = seqlit_main(["test", "--ckpt_path", str(last), "--model", "seqlit.tasks.Classifier"])
    assert code == 2, err
    assert "is a checkpoint of seqlit.tasks.Forecaster, but the model given is seqlit.tasks.Classifier" in err
