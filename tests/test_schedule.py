"""Schedules that span the wall clock: the factor follows a fake clock (validation not counted as training), a real fit
ends by ``max_time`` with the learning rate at zero and a checkpoint written, and a resumed run continues the schedule
from the saved elapsed time exactly as a run that never stopped."""

from __future__ import annotations

import math
import types
import warnings
from pathlib import Path

import lightning as L
import pytest
import torch
from conftest import CONFIGS, QUIET
from lightning.pytorch.callbacks import Timer
from lightning.pytorch.callbacks import timer as timer_module

from seqlit.data.chars import CorpusDataModule
from seqlit.errors import InputError
from seqlit.tasks import LanguageModel
from seqlit.tasks import schedule as schedule_module
from seqlit.tasks.base import decay, step_factor
from seqlit.tasks.schedule import ValidationClock, time_factor

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


class FakeClock:
    """A ``time.monotonic`` that moves only when a test (or a :class:`Tick`) moves it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Lightning's Timer and seqlit's validation clock both read the fake clock; nothing else does."""
    fake = FakeClock()
    fake_time = types.SimpleNamespace(monotonic=fake.monotonic)
    monkeypatch.setattr(timer_module, "time", fake_time)
    monkeypatch.setattr(schedule_module, "time", fake_time)
    return fake


class Tick(L.Callback):
    """Each training batch takes ``train`` fake seconds and each validation batch ``val``; records each step's lr."""

    def __init__(self, clock: FakeClock, train: float = 1.0, val: float = 0.0) -> None:
        self.clock, self.train, self.val = clock, train, val
        self.lrs: list[float] = []

    def on_train_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        self.clock.now += self.train
        self.lrs.append(trainer.optimizers[0].param_groups[0]["lr"])

    def on_validation_batch_start(self, trainer: L.Trainer, pl_module: L.LightningModule, *args) -> None:
        if not trainer.sanity_checking:
            self.clock.now += self.val


def test_the_time_factor_follows_the_clock_to_the_floor(clock):
    timer, validation = Timer(duration="00:00:01:40"), ValidationClock()  # a 100-second budget
    timer.on_train_start(None, None)  # the training clock starts

    def factor(step: int = 1000) -> float:
        return time_factor(scheduler="cosine", step=step, warmup_steps=50, progress=validation.progress(timer))

    assert factor() == 1.0
    clock.now += 50
    assert factor() == pytest.approx(0.5)  # halfway through the budget, the cosine is halfway down
    clock.now += 50
    assert factor() == pytest.approx(0.0, abs=1e-12)
    clock.now += 30
    assert factor() == 0.0  # past the budget it stays at the floor, never climbs back
    assert time_factor(scheduler="cosine", step=4, warmup_steps=10, progress=0.0) == 0.5  # warm-up counts steps
    assert time_factor(scheduler="linear", step=0, warmup_steps=0, progress=0.25) == 0.75
    assert time_factor(scheduler="none", step=0, warmup_steps=0, progress=0.9) == 1.0


def test_time_spent_validating_is_taken_from_the_budget_not_counted_as_training(clock):
    timer, validation = Timer(duration="00:00:01:40"), ValidationClock()
    timer.on_train_start(None, None)
    clock.now += 20  # training
    validation.start()
    clock.now += 20  # validating
    assert validation.state_dict() == {"validation_seconds": 20.0}  # a checkpoint saved mid-validation counts it
    validation.stop()
    assert validation.progress(timer) == pytest.approx(20 / 80)  # 20 s trained of the 80 s left for training
    clock.now += 60  # the clock runs out exactly when the training time does
    assert validation.progress(timer) == pytest.approx(1.0)
    restored = ValidationClock()
    restored.load_state_dict(validation.state_dict())
    assert restored.seconds == 20.0


def test_the_step_schedule_is_unchanged():
    assert [step_factor(scheduler="cosine", step=s, warmup_steps=2, total_steps=12) for s in (0, 1, 2, 7, 12, 20)] == [
        0.5,
        1.0,
        1.0,
        pytest.approx(0.5),
        0.0,
        0.0,
    ]
    assert decay("linear", -1.0) == 1.0


def corpus(tmp_path: Path) -> CorpusDataModule:
    path = tmp_path / "t.txt"
    path.write_text("".join("abcdefgh"[(i * 3 + i // 7) % 8] for i in range(3000)))
    return CorpusDataModule(path=str(path), seq_len=10, batch_size=4, mode="tbptt", val_fraction=0.1)


def fit(tmp_path: Path, tick: Tick, ckpt_path: Path | None = None, max_steps: int = -1) -> L.Trainer:
    """A tiny TBPTT language model with a cosine over a 20-second budget, validated every 5 steps (fake seconds)."""
    torch.manual_seed(0)
    model = LanguageModel(hidden_size=8, embedding_dim=4, lr=0.01, warmup_steps=3, schedule_by="time", sample_length=0)
    trainer = L.Trainer(
        max_time={"seconds": 20}, max_steps=max_steps, val_check_interval=5, limit_val_batches=2, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False, callbacks=[tick],
    )  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer.fit(model, corpus(tmp_path), ckpt_path=ckpt_path)
    return trainer


def test_a_resumed_run_continues_the_schedule_from_the_saved_elapsed_time(clock, tmp_path):
    whole = Tick(clock, train=1.0, val=1.0)  # each validation of 2 batches takes 2 s from the budget
    fit(tmp_path, whole)
    assert len(whole.lrs) == 16  # 16 steps and 3 validations (6 s) fill the 20 s
    assert whole.lrs[-1] < 0.01 * 0.05  # the last steps run near the floor

    first = Tick(clock, train=1.0, val=1.0)
    stopped = fit(tmp_path, first, max_steps=10)  # stops early, as a killed run would, after two validations
    stopped.save_checkpoint(tmp_path / "mid.ckpt")
    saved = torch.load(tmp_path / "mid.ckpt", weights_only=True)
    assert saved["callbacks"]["Timer"]["time_elapsed"]["train"] == 14.0  # Lightning's Timer keeps the elapsed time
    assert saved["seqlit_clock"] == {"validation_seconds": 4.0}  # and the task the part of it spent validating
    clock.now += 3600  # the time between the runs is not training time
    rest = Tick(clock, train=1.0, val=1.0)
    fit(tmp_path, rest, ckpt_path=tmp_path / "mid.ckpt")
    assert first.lrs + rest.lrs == pytest.approx(whole.lrs)  # the same learning rate at every step


def test_a_time_schedule_without_a_time_budget_is_one_clear_error(tmp_path):
    model = LanguageModel(hidden_size=8, embedding_dim=4, schedule_by="time", sample_length=0)
    trainer = L.Trainer(max_steps=2, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(InputError, match=r"model.schedule_by='time' needs a time budget: set trainer.max_time"):
        trainer.fit(model, corpus(tmp_path))
    model = LanguageModel(hidden_size=8, embedding_dim=4, schedule_by="steps", sample_length=0)
    trainer = L.Trainer(max_time={"seconds": 5}, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    with pytest.raises(InputError, match=r"model.schedule_by='steps' needs a step budget: set trainer.max_steps"):
        trainer.fit(model, corpus(tmp_path))


@pytest.mark.slow
def test_the_config_trains_until_max_time_and_ends_with_the_schedule(seqlit_main):
    (seqlit_main.cwd / "t.txt").write_text("the quick brown fox jumps over the lazy dog. " * 80)
    code, out, err = seqlit_main(
        ["fit", "--config", str(CONFIGS / "charlm_lstm.yaml"), "--data.path", "t.txt", "--model.hidden_size", "8",
         "--model.embedding_dim", "8", "--model.sample_length", "0", "--data.seq_len", "16", "--data.batch_size", "4",
         "--trainer.max_time", "00:00:00:02", *QUIET]
    )  # fmt: skip
    assert code == 0, err
    run = seqlit_main.cwd / "lightning_logs" / "charlm_lstm" / "version_0"
    ckpt = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["hyper_parameters"]["schedule_by"] == "time" and ckpt["global_step"] > 0
    assert ckpt["callbacks"]["Timer"]["time_elapsed"]["train"] >= 2.0  # no step budget: the clock ended it
    assert ckpt["seqlit_clock"]["validation_seconds"] > 0  # the validation that closes a run stopped by time
    (last_lr,) = ckpt["lr_schedulers"][0]["_last_lr"]
    assert last_lr < 0.05 * 3e-3 and math.isfinite(last_lr)  # the cosine has run its course
