"""Use a trained model from its checkpoint alone: load any seqlit task, or a text classifier with its tokenizer, and
predict.

This is the one module that knows both a task and the data that feeds it (a checkpoint holds the model's weights and
the data module's state, such as the tokenizer), so it sits above both layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from seqlit.data.text.tokenizer import PAD_ID, UNK_ID, TextTokenizer, truncate
from seqlit.errors import InputError


def load_task(path: str) -> Any:
    """The LightningModule a checkpoint holds, rebuilt from its stored class and hyperparameters, in eval mode."""
    import importlib

    from seqlit.run.checkpoints import load_checkpoint

    class_path = load_checkpoint(path).get("hyper_parameters", {}).get("_class_path")
    if not class_path:
        raise InputError(f"ckpt_path={path!r} names no task class: it was not written by the seqlit command")
    module, _, name = class_path.rpartition(".")
    task = getattr(importlib.import_module(module), name).load_from_checkpoint(
        path, map_location="cpu", weights_only=True
    )
    return task.eval()


def load_text_checkpoint(path: str) -> tuple[Any, TextTokenizer, dict[str, Any]]:
    """A trained text classifier, its tokenizer and the data settings, from one checkpoint file and nothing else.

    Returns ``(model, tokenizer, settings)``, the model in eval mode on the CPU; ``settings`` holds ``max_length``,
    ``truncation`` and ``label_names``. Loads with ``torch.load(weights_only=True)``.
    """
    from seqlit.run.checkpoints import load_checkpoint
    from seqlit.tasks.classifier import Classifier

    ckpt = load_checkpoint(path)
    state = ckpt.get("TextDataModule")
    if not state or "tokenizer" not in state:
        raise InputError(f"ckpt_path={path!r} holds no tokenizer: it was not trained with seqlit.data.TextDataModule")
    model = Classifier.load_from_checkpoint(path, map_location="cpu", weights_only=True)
    model.eval()
    return model, TextTokenizer.from_json(state["tokenizer"]), state


def predict_sentiment(
    model: Any,
    sentence: str | Sequence[str],
    tokenizer: TextTokenizer,
    max_length: int | None = None,
    truncation: Literal["head", "tail", "both"] = "head",
) -> tuple[str, float] | list[tuple[str, float]]:
    """The tutorial's ``predict_sentiment(model, sentence, vocab)``: the predicted label name and its probability.

    ``sentence`` may be one text or a list of texts (then a list of results). A text with no tokens at all is
    read as a single ``<unk>``, so every input gets an answer.
    """
    import torch

    texts = [sentence] if isinstance(sentence, str) else list(sentence)
    ids, offsets = tokenizer.encode(texts)
    docs, _ = truncate(ids, offsets[:-1], offsets[1:], max_length, truncation)
    docs = [d if len(d) else np.array([UNK_ID], dtype=np.int32) for d in docs]
    lengths = torch.tensor([len(d) for d in docs])
    x = torch.full((len(docs), int(lengths.max())), PAD_ID, dtype=torch.long)  # (B, T)
    for row, d in enumerate(docs):
        x[row, : len(d)] = torch.from_numpy(d.astype(np.int64))
    with torch.no_grad():
        rows = model.predict_step({"x": x.to(model.device), "lengths": lengths, "id": torch.arange(len(docs))}, 0)
    out = [(label, float(p)) for label, p in zip(rows["label"], rows["probability"], strict=True)]
    return out[0] if isinstance(sentence, str) else out
