"""Sequence classification: one LightningModule for every classification task, synthetic sequences and text alike.

A :class:`~seqlit.models.classifier.ClassifierNet` (optional embedding → recurrent encoder → pooling → linear head)
trained with cross-entropy, or with BCE-with-logits on a single logit for two classes. It logs accuracy and macro-F1
for every stage, AUROC for two classes, and, when the data module knows it, the Bayes accuracy (the best any model can
reach on that data) beside the model's own: ``{stage}/bayes_acc`` and ``{stage}/acc_vs_bayes``. At test time a
confusion-matrix figure goes to TensorBoard and to ``confusion_matrix_test.png`` in the run folder; ``predict``
writes the predicted label and every class probability of each sequence to ``predictions.csv``.

Sizes come from the data module's ``spec()``: ``num_classes``, ``label_names``, and either ``input_size`` (float
features) or ``vocab_size`` + ``pad_id`` (token ids); an optional ``embedding_vectors`` tensor (V, E) initialises the
embedding when training starts.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import MetricCollection
from torchmetrics.classification import BinaryAUROC, MulticlassAccuracy, MulticlassConfusionMatrix, MulticlassF1Score

from seqlit.errors import InputError, require
from seqlit.models.classifier import ClassifierNet
from seqlit.models.encoder import Cell
from seqlit.models.pooling import PoolingMode
from seqlit.tasks.base import Optimizer, ScheduleBy, Scheduler, SeqlitTask, data_spec

DEFAULT_EMBEDDING_DIM = 64  # used when embedding_dim is left empty and the data brings no pretrained vectors


class Classifier(SeqlitTask):
    """Classify whole sequences (float features or token ids) into ``num_classes`` classes.

    Args:
        cell: recurrent cell: ``rnn``, ``lstm``, ``gru`` or ``scratch``.
        hidden_size: units per layer and direction.
        num_layers: stacked recurrent layers.
        dropout: dropout between stacked layers.
        bidirectional: read each sequence in both directions.
        nonlinearity: ``tanh`` or ``relu`` (``rnn`` and ``scratch`` cells).
        gate_init: ``default`` (torch's initialisation) or ``chrono`` (gate biases set for memories of up to
            ``chrono_t_max`` steps, for ``lstm`` and ``gru``; see :class:`~seqlit.models.encoder.RecurrentEncoder`).
        chrono_t_max: the longest dependency ``chrono`` prepares for; empty = the data's sequence length.
        pooling: ``last`` (state at the last real step), ``mean``, ``max`` or ``maxmean`` over the real steps.
        embedding_dim: token embedding width (token inputs only); empty = the pretrained vectors' width, else 64.
        embedding_dropout: dropout on embedded tokens.
        freeze_embedding: keep the (pretrained) embedding fixed during training.
        head_dropout: dropout on the pooled vector before the linear head.
        bigram_buckets: token inputs: hash every pair of neighbouring tokens into this many buckets of class weights
            and add their sum to the logits (fastText's word-pair features as a linear model beside the network,
            :class:`~seqlit.models.classifier.PairBag`); 0: off.
        members: networks trained side by side, each from its own initialisation and on its own loss, predicting with
            the mean of their probabilities (:class:`~seqlit.models.ensemble.ClassifierEnsemble`); 1: one network.
        loss: ``ce`` (cross-entropy over all classes) or ``bce`` (BCE-with-logits on one logit; two classes only).
        label_smoothing: train towards ``1 - label_smoothing`` on the true class and the rest spread evenly over all
            classes (0: off), which keeps the model from growing over-confident on the examples it gets wrong.
        optimizer: ``adam``, ``adamw``, ``sgd`` (momentum 0.9) or ``rmsprop``.
        lr: learning rate.
        weight_decay: L2 penalty (decoupled for ``adamw``).
        scheduler: ``none``, ``cosine`` or ``linear`` decay to zero, or ``plateau`` (halve on a flat ``val/loss``).
        warmup_steps: linear learning-rate warm-up steps.
        schedule_by: what the decay spans: ``steps`` (the step budget) or ``time`` (``trainer.max_time``).
        num_classes: number of classes; taken from the data when left empty.
        input_size: features per step of float inputs; taken from the data when left empty.
        vocab_size: vocabulary size of token-id inputs; taken from the data when left empty.
        pad_id: padding token id; taken from the data when left empty.
        label_names: a name per class, used in predictions; taken from the data (else ``"0"``, ``"1"``, ...).
    """

    required_sizes = ("num_classes",)
    optional_sizes = ("input_size", "vocab_size", "pad_id", "label_names", "embedding_dim", "chrono_t_max")

    def __init__(
        self,
        cell: Cell = "lstm",
        hidden_size: int = 64,
        num_layers: int = 1,
        dropout: float = 0.0,
        bidirectional: bool = False,
        nonlinearity: Literal["tanh", "relu"] = "tanh",
        gate_init: Literal["default", "chrono"] = "default",
        chrono_t_max: int | None = None,
        pooling: PoolingMode = "last",
        embedding_dim: int | None = None,
        embedding_dropout: float = 0.0,
        freeze_embedding: bool = False,
        head_dropout: float = 0.0,
        bigram_buckets: int = 0,
        members: int = 1,
        loss: Literal["ce", "bce"] = "ce",
        label_smoothing: float = 0.0,
        optimizer: Optimizer = "adam",
        lr: float = 1e-3,
        weight_decay: float = 0.0,
        scheduler: Scheduler = "none",
        warmup_steps: int = 0,
        schedule_by: ScheduleBy = "steps",
        num_classes: int | None = None,
        input_size: int | None = None,
        vocab_size: int | None = None,
        pad_id: int | None = None,
        label_names: list[str] | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters()
        require(loss in ("ce", "bce"), "model.loss", loss, "one of 'ce', 'bce'")
        require(0.0 <= label_smoothing < 1.0, "model.label_smoothing", label_smoothing, "a number in [0, 1)")
        if gate_init == "chrono":  # chrono prepares memories as long as the sequences: by hand or the data's length
            self.required_sizes = ("num_classes", "chrono_t_max")
        self.bayes_accuracy: float | None = None
        self._vectors_loaded = False
        self._predicted = 0  # rows predicted so far, the id of a sequence when the batch carries none
        self.build_if_sized()

    # --- building ---------------------------------------------------------------------------------------------------
    def sizes_known(self) -> bool:
        """Every required size, and the input kind: float features (input_size) or token ids (vocab_size)."""
        hp = self.hparams
        return super().sizes_known() and (hp.get("input_size") is not None or hp.get("vocab_size") is not None)

    def data_sizes(self, spec: dict[str, Any]) -> dict[str, Any]:
        sizes = dict(spec)
        vectors = spec.get("embedding_vectors")
        if vectors is not None:  # pretrained vectors decide the embedding width
            sizes["embedding_dim"] = int(vectors.shape[1])
        chrono = self.hparams.get("gate_init") == "chrono" and self.hparams.get("chrono_t_max") is None
        sizes["chrono_t_max"] = spec.get("seq_len") if chrono else None  # a hand-set horizon may differ from it
        return sizes

    @property
    def label_names(self) -> list[str]:
        """A name per class: the data's or the config's, else ``"0"``, ``"1"``, ..."""
        names = self.hparams.get("label_names")
        return list(names) if names is not None else [str(i) for i in range(self.hparams.num_classes)]

    def build(self) -> None:
        hp = self.hparams
        n = hp.num_classes
        require(n >= 2, "model.num_classes", n, "at least 2 classes")
        require(hp.loss != "bce" or n == 2, "model.loss", hp.loss, f"'ce' for {n} classes ('bce' needs exactly 2)")
        if (hp.input_size is None) == (hp.vocab_size is None):  # neither given (nor found in the data), or both
            how = "both set" if hp.input_size is not None else "both empty and the data module provides neither"
            raise InputError(f"model.input_size={hp.input_size!r} and model.vocab_size={hp.vocab_size!r} are {how}: "
                             "give input_size for float features or vocab_size for token ids")  # fmt: skip
        names = hp.label_names
        require(names is None or (len(names) == n and len(set(names)) == n), "model.label_names", names,
                f"{n} distinct names, one per class")  # fmt: skip
        settings = dict(
            num_outputs=1 if hp.loss == "bce" else n,  # one logit for BCE
            input_size=hp.input_size,
            vocab_size=hp.vocab_size,
            pad_id=hp.pad_id,
            embedding_dim=hp.embedding_dim or DEFAULT_EMBEDDING_DIM,
            embedding_dropout=hp.embedding_dropout,
            hidden_size=hp.hidden_size,
            cell=hp.cell,
            num_layers=hp.num_layers,
            dropout=hp.dropout,
            bidirectional=hp.bidirectional,
            nonlinearity=hp.nonlinearity,
            pooling=hp.pooling,
            head_dropout=hp.head_dropout,
            gate_init=hp.get("gate_init", "default"),  # absent from checkpoints older than the option
            chrono_t_max=hp.get("chrono_t_max"),
            bigram_buckets=hp.get("bigram_buckets", 0),  # absent from checkpoints older than the option
        )
        members = hp.get("members", 1)  # absent from checkpoints older than the option
        require(members >= 1, "model.members", members, "at least 1 network")
        if members == 1:
            self.net = ClassifierNet(**settings)
        else:
            from seqlit.models.ensemble import ClassifierEnsemble  # only an ensemble loads it

            self.net = ClassifierEnsemble(members=members, binary=hp.loss == "bce", **settings)
        for net in getattr(self.net, "members", [self.net]):
            if net.embedding is not None and hp.freeze_embedding:
                net.embedding.weight.requires_grad_(False)
        metrics = MetricCollection(
            {"acc": MulticlassAccuracy(n, average="micro"), "f1": MulticlassF1Score(n, average="macro")}
        )
        # "train" cannot be a ModuleDict key (nn.Module.train exists), hence the suffix
        self.metrics = nn.ModuleDict({f"{s}_": metrics.clone(prefix=f"{s}/") for s in ("train", "val", "test")})
        self.auroc = nn.ModuleDict({f"{s}_": BinaryAUROC() for s in ("val", "test")}) if n == 2 else None
        self.confusion = MulticlassConfusionMatrix(n)

    def configure_model(self) -> None:
        super().configure_model()
        # at the start of training only, before a resumed fit restores its weights; a checkpoint then overrides them
        if self.fitting() and not self._vectors_loaded:
            vectors = data_spec(self.trainer.datamodule).get("embedding_vectors")
            if vectors is not None:
                self.net.load_embedding(vectors)
                self._vectors_loaded = True

    def apply_spec(self, spec: dict[str, Any]) -> None:
        bayes = spec.get("bayes_accuracy")
        self.bayes_accuracy = float(bayes) if bayes is not None else None

    # --- computing --------------------------------------------------------------------------------------------------
    def forward(self, x: Tensor, lengths: Tensor | None = None) -> Tensor:
        """Features (B, T, C) or token ids (B, T), optional lengths (B,) → logits (B, N), or (B, 1) with ``bce``."""
        return self.net(x, lengths)

    def probabilities(self, logits: Tensor) -> Tensor:
        """Logits → class probabilities (B, N); a single BCE logit gives [1 - p, p]."""
        if self.hparams.loss == "bce":
            p = torch.sigmoid(logits[:, 0])  # (B,)
            return torch.stack([1 - p, p], dim=1)  # (B, 2)
        return logits.softmax(dim=-1)

    def loss_fn(self, logits: Tensor, y: Tensor) -> Tensor:
        smoothing = self.hparams.get("label_smoothing", 0.0)  # absent from checkpoints older than the option
        if self.hparams.loss == "bce":
            target = y.to(logits.dtype) * (1 - smoothing) + 0.5 * smoothing  # the two-class form of CE's smoothing
            return F.binary_cross_entropy_with_logits(logits[:, 0], target)
        return F.cross_entropy(logits, y, label_smoothing=smoothing)

    def _check_labels(self, y: Tensor, stage: str) -> None:
        # a label out of range would otherwise surface as an index error deep inside the loss or the metrics
        n = self.hparams.num_classes
        lo, hi = int(y.min()), int(y.max())
        if lo < 0 or hi >= n:
            bad = lo if lo < 0 else hi
            raise InputError(f"{stage} label={bad} is not allowed: class ids must be in [0, {n}) for {n} classes")

    def _shared_step(self, batch: dict[str, Tensor], stage: str) -> Tensor:
        x, y, lengths = batch["x"], batch["y"], batch.get("lengths")
        self._check_labels(y, stage)
        if stage == "train" and hasattr(self.net, "member_logits"):  # an ensemble: each member on its own loss
            member_logits = self.net.member_logits(x, lengths)  # (M, B, N)
            loss = torch.stack([self.loss_fn(logits, y) for logits in member_logits]).mean()
            logits = self.net.combine(member_logits)
        else:
            logits = self(x, lengths)  # (B, N) or (B, 1)
            loss = self.loss_fn(logits, y)
        self.log_loss(stage, loss, len(y))
        probs = self.probabilities(logits.detach())  # (B, N)
        # metrics are updated every step and logged once per epoch (_log_epoch_metrics): logging a torchmetrics
        # object from every step costs Lightning ~1 ms of bookkeeping per metric and step, for the same epoch value
        self.metrics[f"{stage}_"].update(probs, y)
        if self.auroc is not None and stage != "train":
            self.auroc[f"{stage}_"].update(probs[:, 1], y)
        if stage == "test":
            self.confusion.update(probs.argmax(dim=-1), y)
        return loss

    def _log_epoch_metrics(self, stage: str) -> None:
        """Log the epoch's accuracy, F1, AUROC and the Bayes references, and reset the metrics."""
        metrics = self.metrics[f"{stage}_"]
        if not metrics["acc"].update_called:
            return
        values = metrics.compute()  # synchronised across processes by torchmetrics
        metrics.reset()
        if self.auroc is not None and stage != "train":
            values[f"{stage}/auroc"] = self.auroc[f"{stage}_"].compute()
            self.auroc[f"{stage}_"].reset()
        self.log_dict({k: v for k, v in values.items() if k != f"{stage}/auroc"}, prog_bar=stage != "train")
        if f"{stage}/auroc" in values:
            self.log(f"{stage}/auroc", values[f"{stage}/auroc"])
        if self.bayes_accuracy:
            self.log(f"{stage}/bayes_acc", self.bayes_accuracy)
            self.log(f"{stage}/acc_vs_bayes", values[f"{stage}/acc"] / self.bayes_accuracy)

    def on_train_epoch_end(self) -> None:
        super().on_train_epoch_end()  # the epoch's training loss
        self._log_epoch_metrics("train")

    def on_validation_epoch_end(self) -> None:
        self._log_epoch_metrics("val")

    def on_test_epoch_start(self) -> None:
        self.confusion.reset()

    def on_test_epoch_end(self) -> None:
        self._log_epoch_metrics("test")

    def on_predict_epoch_start(self) -> None:
        self._predicted = 0

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> dict[str, Any]:
        """One row per sequence: its id, the predicted label, that label's probability, and every class probability."""
        probs = self.probabilities(self(batch["x"], batch.get("lengths"))).cpu()  # (B, N)
        confidence, pred = probs.max(dim=-1)
        n = len(probs)
        ids = batch["id"].cpu() if "id" in batch else torch.arange(self._predicted, self._predicted + n)
        self._predicted += n
        labels = [self.label_names[i] for i in pred.tolist()]
        rows: dict[str, Any] = {"id": ids, "label": labels, "probability": confidence}
        return rows | {f"prob_{name}": probs[:, k] for k, name in enumerate(self.label_names)}

    def configure_callbacks(self) -> list:
        # the writer and the figure act in predict and test only: their modules load with them, not with the task
        from seqlit.tasks.classifier_figures import ConfusionMatrixFigure
        from seqlit.tasks.outputs import PredictionWriter

        return [PredictionWriter(), ConfusionMatrixFigure()]
