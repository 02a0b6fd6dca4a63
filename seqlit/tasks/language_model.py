"""Character-level language modelling: train a :class:`~seqlit.models.RecurrentLM` on text, then generate from it.

The loss is the mean cross-entropy of the next character in nats; ``{stage}/bpc`` (bits per character, loss / ln 2)
and ``{stage}/ppl`` (perplexity, e^loss) are logged beside it, computed from the epoch's mean loss. When batches come
as parallel streams (they carry a ``chunk`` index: :class:`~seqlit.data.CorpusDataModule` in ``tbptt`` mode), the
recurrent state is carried from one chunk to the next and detached in between (truncated back-propagation through
time); it starts from zero at every epoch and whenever a stream starts (chunk 0). Such a model has almost never read
from a zero state, so at the end of each validation it keeps a carried state in the checkpoint (``start_state``) and
generation starts from it; a model trained on windows starts from zeros, as it was trained. After every validation a
sample generated from a fixed prompt goes to TensorBoard (``val/sample``).

The character vocabulary is a plain hyperparameter, so ``LanguageModel.load_from_checkpoint(path).generate("ROMEO:")``
needs nothing else; characters never seen in training read as the unknown symbol (with a warning).
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import BasePredictionWriter
from torch import Tensor
from torchmetrics import MeanMetric

from seqlit.errors import require, say
from seqlit.models.encoder import Cell, State
from seqlit.models.language_model import RecurrentLM, detach_state
from seqlit.tasks.base import Optimizer, ScheduleBy, Scheduler, SeqlitTask
from seqlit.vocab import check_generation, decode, encode


class LanguageModel(SeqlitTask):
    """Next-character model with sampling (see the module docstring).

    Args:
        cell: recurrent cell: ``rnn``, ``lstm``, ``gru`` or ``scratch``.
        hidden_size: recurrent units per layer.
        num_layers: stacked recurrent layers.
        embedding_dim: width of the character embedding; ``null`` means ``hidden_size``.
        dropout: dropout on the embedding, between layers and before the output layer.
        tie_weights: share the embedding and output matrices (needs ``embedding_dim`` = ``hidden_size``).
        nonlinearity: ``tanh`` or ``relu`` (``rnn`` and ``scratch`` cells).
        optimizer: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``rmsprop``.
        lr: learning rate.
        weight_decay: L2 penalty (decoupled for ``adamw``).
        scheduler: ``none``, ``cosine`` or ``linear`` decay to zero, or ``plateau`` (halve on a flat ``val/loss``).
        warmup_steps: linear learning-rate warm-up steps.
        schedule_by: what the decay spans: ``steps`` (the step budget) or ``time`` (``trainer.max_time``).
        sample_prompt: prompt of the sample logged after each validation.
        sample_length: characters of that sample (0: no sample).
        sample_temperature: its softmax temperature.
        sample_top_k: its top-k (``null``: all characters).
        vocab_size: characters in the vocabulary, the unknown symbol included; taken from the data when left empty.
        vocab: the vocabulary, index 0 (the empty string) being the unknown symbol; taken from the data when left empty.
    """

    required_sizes = ("vocab_size",)
    optional_sizes = ("vocab",)

    def __init__(
        self,
        cell: Cell = "lstm",
        hidden_size: int = 256,
        num_layers: int = 1,
        embedding_dim: int | None = None,
        dropout: float = 0.0,
        tie_weights: bool = False,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        optimizer: Optimizer = "adam",
        lr: float = 2e-3,
        weight_decay: float = 0.0,
        scheduler: Scheduler = "cosine",
        warmup_steps: int = 0,
        schedule_by: ScheduleBy = "steps",
        sample_prompt: str = "\n",
        sample_length: int = 300,
        sample_temperature: float = 0.8,
        sample_top_k: int | None = None,
        vocab_size: int | None = None,
        vocab: list[str] | None = None,
    ) -> None:
        super().__init__()
        if vocab is not None and vocab_size is None:
            vocab_size = len(vocab)
        require(vocab is None or len(vocab) == vocab_size, "model.vocab_size", vocab_size, "the length of model.vocab")
        check_generation(sample_prompt, sample_length, sample_temperature, sample_top_k, prefix="model.sample_")
        self.save_hyperparameters()
        self.hparams.vocab_size = vocab_size
        self.val_loss = MeanMetric()
        self.test_loss = MeanMetric()
        self._state: dict[str, State | None] = {"train": None, "val": None, "test": None}
        self.last_sample: str | None = None
        self.build_if_sized()

    def build(self) -> None:
        hp = self.hparams
        keys = ("hidden_size", "cell", "num_layers", "embedding_dim", "dropout", "tie_weights", "nonlinearity")
        self.net = RecurrentLM(vocab_size=hp.vocab_size, **{k: hp[k] for k in keys})
        # where generation starts: (S, L, D), S = 2 (h, c) for an LSTM, else 1; all zeros means a zero start
        parts = 2 if hp.cell == "lstm" else 1
        self.register_buffer("start_state", torch.zeros(parts, hp.num_layers, hp.hidden_size))

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        weights = checkpoint.get("state_dict")
        if weights is not None and hasattr(self, "start_state"):  # older checkpoints lack it: a zero start
            weights.setdefault("start_state", torch.zeros_like(self.start_state))

    def _keep_start_state(self) -> None:
        """Keep the state the first validation stream ended with as the start of generation (zeros for windows).

        Why one stream's final state and not a mean of carried states: it is a state the model really reaches after
        reading a long stretch of text, like every state it was trained from; a mean over streams and steps is a point
        no text leads to (an LSTM's cell values average towards zero), which is the very problem of the zero start.
        """
        state = self._state["val"]  # None unless validation ran as TBPTT streams
        if state is None:
            self.start_state.zero_()
            return
        parts = state if isinstance(state, tuple) else (state,)  # each (L, B, D)
        self.start_state.copy_(torch.stack([p[:, 0] for p in parts]))  # (S, L, D): stream 0

    def _start(self) -> State | None:
        """The kept start state as the encoder takes it, (L, 1, D) or (h, c) for an LSTM; None for a zero start."""
        start = getattr(self, "start_state", None)
        if start is None or not bool(start.any()):
            return None
        parts = tuple(p.unsqueeze(1) for p in start)  # (L, 1, D) each
        return parts if self.hparams.cell == "lstm" else parts[0]

    def forward(self, ids: Tensor, state: State | None = None) -> tuple[Tensor, State]:
        """Ids (B, T) → logits (B, T, V) and the state after the last step."""
        return self.net(ids, state)

    # --- training ---------------------------------------------------------------------------------------------------
    def _carried_state(self, batch: dict[str, Tensor], stage: str) -> State | None:
        """The state left by the previous chunk of the same streams, or None (windows, or a stream starts here)."""
        state = self._state[stage]
        if "chunk" not in batch or state is None or int(batch["chunk"][0]) == 0:
            return None
        h = state[0] if isinstance(state, tuple) else state
        return state if h.shape[1] == len(batch["x"]) else None

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        x, y = batch["x"], batch["y"]  # (B, T) each
        logits, state = self(x, self._carried_state(batch, stage))  # (B, T, V)
        if "chunk" in batch:
            # detach: the next chunk starts from these values, but its gradient stops here (truncated BPTT)
            self._state[stage] = detach_state(state)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))  # nats per character
        if stage == "train":
            self.log_loss(stage, loss, y.numel())  # weighted by characters, not sequences
        else:  # the epoch's mean loss, from which bpc and perplexity follow (_log_epoch)
            getattr(self, f"{stage}_loss").update(loss.detach(), weight=y.numel())
        return loss

    def step_extras(self, loss: Tensor) -> dict[str, Tensor]:
        return {"train/bpc": loss / math.log(2)}  # bits per character

    def on_train_epoch_start(self) -> None:
        self._state["train"] = None

    def on_validation_epoch_start(self) -> None:
        self._state["val"] = None

    def on_test_epoch_start(self) -> None:
        self._state["test"] = None

    def _log_epoch(self, stage: str) -> None:
        metric: MeanMetric = getattr(self, f"{stage}_loss")
        if metric.update_count == 0:
            return
        loss = metric.compute()
        metric.reset()
        self.log(f"{stage}/loss", loss, prog_bar=stage == "val")
        self.log(f"{stage}/bpc", loss / math.log(2))
        self.log(f"{stage}/ppl", torch.exp(loss))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")
        if not self.trainer.sanity_checking:  # before the sample below, which starts from it
            self._keep_start_state()
        hp = self.hparams
        if self.trainer.sanity_checking or hp.sample_length == 0 or not hp.vocab or not self.trainer.is_global_zero:
            return
        with warnings.catch_warnings():  # a prompt character the text lacks is harmless in a monitoring sample
            warnings.simplefilter("ignore")
            text = self.generate(hp.sample_prompt, hp.sample_length, hp.sample_temperature, hp.sample_top_k, seed=0)
        self.last_sample = text
        block = "\n".join("    " + line for line in text.split("\n"))  # indented: TensorBoard's markdown keeps it
        for logger in self.loggers:
            if hasattr(logger.experiment, "add_text"):
                logger.experiment.add_text("val/sample", block, global_step=self.global_step)

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")

    # --- generation -------------------------------------------------------------------------------------------------
    def unknown_characters(self, text: str) -> list[str]:
        """The distinct characters of ``text`` that the vocabulary lacks (they would read as the unknown symbol)."""
        return encode(text, self._vocab())[1]

    def _vocab(self) -> list[str]:
        vocab = self.hparams.get("vocab")
        require(bool(vocab), "model.vocab", vocab, "a character vocabulary: train on text first, or load a checkpoint")
        return vocab

    def generate(
        self,
        prompt: str,
        length: int = 500,
        temperature: float = 0.8,
        top_k: int | None = None,
        seed: int | None = 0,
    ) -> str:
        """``prompt`` followed by ``length`` sampled characters; the same ``seed`` gives the same text.

        ``temperature`` 0 always takes the most likely character; ``top_k`` samples among the k most likely only.
        Characters of the prompt never seen in training read as the unknown symbol, with a warning. Reading the prompt
        starts from the state kept at the last validation of a TBPTT model, or from zeros (see the module docstring).
        """
        check_generation(prompt, length, temperature, top_k)
        vocab = self._vocab()
        ids, unknown = encode(prompt, vocab)
        if unknown:
            warnings.warn(unknown_message(unknown), stacklevel=2)
        generator = torch.Generator(device=self.device)
        if seed is not None:
            generator.manual_seed(seed)
        else:
            generator.seed()
        was_training, threads = self.training, torch.get_num_threads()
        self.eval()  # no dropout while sampling
        if self.device.type == "cpu":
            # one character at a time is far too little work to split across threads; on a busy machine the
            # hand-off between them cost 25x the work itself (measured: 55 ms vs 2 ms per step)
            torch.set_num_threads(1)
        try:
            out = self.net.sample(ids.to(self.device), length, temperature, top_k, generator, state=self._start())
        finally:
            self.train(was_training)
            torch.set_num_threads(threads)
        return prompt + decode(out, vocab)

    def predict_step(self, batch: dict[str, Any], batch_idx: int) -> dict[str, Any]:
        """One sample per 'batch' from :meth:`CorpusDataModule.predict_dataloader`: its prompt and decoding options."""
        unknown = self.unknown_characters(batch["prompt"])
        if unknown and batch_idx == 0:
            print(f"seqlit: note: {unknown_message(unknown)}", file=sys.stderr)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # already said once, above
            text = self.generate(
                batch["prompt"], batch["generate_length"], batch["temperature"], batch["top_k"], batch["seed"]
            )
        return {"seed": batch["seed"], "text": text}

    def configure_callbacks(self) -> list[L.Callback]:
        return [GeneratedTextWriter()]


def unknown_message(unknown: list[str]) -> str:
    chars = ", ".join(repr(c) for c in unknown)
    return f"prompt characters never seen in training ({chars}) are read as the unknown symbol"


class GeneratedTextWriter(BasePredictionWriter):
    """Write the samples of ``seqlit predict`` to ``<run>/generated.txt`` and print them."""

    def __init__(self, filename: str = "generated.txt") -> None:
        super().__init__(write_interval="epoch")
        self.filename = filename

    def write_on_epoch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, predictions: Any, batch_indices: Any
    ) -> None:
        from seqlit.tasks.outputs import gather, write_text  # predict only: the task loads without the run files

        samples = predictions[0] if predictions and isinstance(predictions[0], list) else predictions
        samples = [s for rank in gather(trainer, samples) for s in rank]
        if trainer.global_rank != 0 or not samples:
            return
        if len(samples) == 1:
            body = samples[0]["text"]
        else:  # a header per sample, so several of them stay apart
            body = "\n\n".join(f"----- sample {i} (seed {s['seed']}) -----\n{s['text']}" for i, s in enumerate(samples))
        path = write_text(trainer, self.filename, body + "\n")
        say(body)
        if path is not None:
            say(f"Generated text: {path}")
