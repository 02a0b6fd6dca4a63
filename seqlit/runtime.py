"""Run an exported seqlit folder with ONNX Runtime and numpy alone: no torch, no Lightning.

``load(folder)`` reads ``seqlit.json`` and ``model.onnx`` written by ``seqlit export`` and returns an
:class:`ExportedModel`: ``predict(texts)`` for a classifier (labels and probabilities; a text classifier tokenizes with
the ``tokenizers`` JSON stored in the folder), ``forecast(history_rows)`` for a forecaster (point forecast and quantiles
in data units, from the last ``window`` rows), ``generate(prompt, ...)`` for a character language model (carrying its
recurrent state, one character per step). :meth:`ExportedModel.stream` starts a streaming forecaster that takes new
rows as they arrive and carries its encoder state, so no window is ever re-read: its forecast is the one the network
gives after reading the whole history so far (equal to one pass over that history).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort

from seqlit.errors import InputError, require


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads  # small recurrent graphs gain little from many threads
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class ExportedModel:
    """One exported task: its side-car facts (``meta``) and its ONNX Runtime session."""

    def __init__(self, folder: str | Path, threads: int = 1) -> None:
        folder = Path(folder)
        meta_path = folder / "seqlit.json"
        if not meta_path.is_file():
            raise InputError(f"folder={str(folder)!r} holds no seqlit.json: give a folder written by `seqlit export`")
        self.meta: dict[str, Any] = json.loads(meta_path.read_text())
        self.kind: str = self.meta["task"]
        self.session = _session(folder / self.meta["file"], threads)
        step = self.meta.get("step")
        self.step_session = _session(folder / step["file"], threads) if step else None
        self.tokenizer = None
        if self.meta.get("tokenizer"):
            from tokenizers import Tokenizer

            self.tokenizer = Tokenizer.from_str(self.meta["tokenizer"])

    def _need(self, kind: str, method: str) -> None:
        require(self.kind == kind, "task", self.kind, f"a {kind} for {method}()")

    # --- classification --------------------------------------------------------------------------------------------
    def encode(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """Texts → padded ids (B, T) int64 and lengths (B,), truncated as in training; an empty text reads as <unk>."""
        require(self.tokenizer is not None, "texts", "...", "a text classifier (this one reads feature sequences)")
        encodings = self.tokenizer.encode_batch(list(texts), add_special_tokens=False)
        limit, keep = self.meta.get("max_length"), self.meta.get("truncation", "head")
        docs = []
        for enc in encodings:
            ids = np.asarray(enc.ids, dtype=np.int64)
            if limit and len(ids) > limit:
                half = limit // 2
                ids = {"head": ids[:limit], "tail": ids[len(ids) - limit :]}.get(
                    keep, np.concatenate([ids[: limit - half], ids[len(ids) - half :]])
                )
            docs.append(ids if len(ids) else np.array([self.meta["unk_id"]], dtype=np.int64))
        return _pad(docs, self.meta["pad_id"])

    def classify(self, x: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """Padded batch ``x`` (B, T) ids or (B, T, C) features and ``lengths`` (B,) → probabilities (B, K)."""
        return self.session.run(["probabilities"], {"x": x, "lengths": lengths.astype(np.int64)})[0]

    def predict(self, texts: Sequence[Any]) -> list[dict[str, Any]]:
        """Texts (or, for a features classifier, arrays (T, C)) → one ``{label, probability, probabilities}`` each."""
        self._need("classifier", "predict")
        if self.meta["input"] == "tokens":
            x, lengths = self.encode(texts)
        else:
            x, lengths = _pad([np.asarray(s, dtype=np.float32) for s in texts], 0.0)
        probs = self.classify(x, lengths)
        names = self.meta["label_names"]
        return [
            {
                "label": names[int(p.argmax())],
                "probability": float(p.max()),
                "probabilities": dict(zip(names, map(float, p), strict=True)),
            }  # fmt: skip
            for p in probs
        ]

    # --- forecasting ------------------------------------------------------------------------------------------------
    def check_rows(self, rows: Any, name: str = "rows", least: int = 1) -> np.ndarray:
        """Rows (N, C) of finite numbers in data units, at least ``least`` of them."""
        C = self.meta["input_size"]
        arr = np.asarray(rows, dtype=np.float32)
        arr = arr.reshape(-1, 1) if arr.ndim == 1 and C == 1 else arr
        require(arr.ndim == 2 and arr.shape[1] == C, name, f"shape {arr.shape}", f"rows of {C} values (N, {C})")
        require(len(arr) >= least, name, f"{len(arr)} rows", f"at least {least} rows (the model's window)")
        require(bool(np.isfinite(arr).all()), name, "a NaN or infinite value", "finite numbers only")
        return arr

    def _forecast_dict(self, outs: list[np.ndarray]) -> dict[str, Any]:
        result: dict[str, Any] = {"point": outs[0]}
        if self.meta["quantiles"]:
            result["quantiles"] = outs[1]
            result["levels"] = list(self.meta["quantiles"])
        return result

    def forecast(self, history_rows: Any) -> dict[str, Any]:
        """The next ``horizon`` steps after ``history_rows`` (N >= window, C): ``point`` (H, K) and, for a quantile
        model, ``quantiles`` (H, K, Q) at ``levels``, all in data units."""
        self._need("forecaster", "forecast")
        rows = self.check_rows(history_rows, "history_rows", self.meta["window"])
        outs = self.session.run(self.meta["outputs"], {"x": rows[None, -self.meta["window"] :]})
        return {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in self._forecast_dict(outs).items()}

    def forecast_batch(self, windows: np.ndarray) -> dict[str, Any]:
        """Windows (B, W, C) in data units → ``point`` (B, H, K) [``quantiles`` (B, H, K, Q)]."""
        self._need("forecaster", "forecast_batch")
        return self._forecast_dict(self.session.run(self.meta["outputs"], {"x": np.asarray(windows, np.float32)}))

    def stream(self, num_series: int = 1) -> ForecastStream:
        """A streaming forecaster starting from an empty history (unidirectional forecasters only); with
        ``num_series`` > 1 it carries that many series side by side, each new step of all of them in one call."""
        self._need("forecaster", "stream")
        require(self.step_session is not None, "task", "bidirectional", "a unidirectional forecaster for stream()")
        require(num_series >= 1, "num_series", num_series, "at least 1")
        return ForecastStream(self, num_series)

    # --- generation -------------------------------------------------------------------------------------------------
    def zero_state(self, batch: int = 1) -> list[np.ndarray]:
        layers, hidden = self.meta["state"]["shape"]
        return [np.zeros((layers, batch, hidden), np.float32) for _ in self.meta["state"]["names"]]

    def lm_step(self, ids: np.ndarray, state: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """Ids (B, T) and state → logits (B, T, V) and the state after step T."""
        feed = {"ids": ids.astype(np.int64), **dict(zip(self.meta["state"]["names"], state, strict=True))}
        logits, *new_state = self.session.run(self.meta["outputs"], feed)
        return logits, new_state

    def generate(
        self, prompt: str, length: int = 200, temperature: float = 0.8, top_k: int | None = None, seed: int | None = 0
    ) -> str:
        """``prompt`` followed by ``length`` sampled characters; the same ``seed`` gives the same text. Temperature 0
        always takes the most likely character (as the PyTorch model does); unknown characters read as id 0."""
        for text in self.generate_stream(prompt, length, temperature, top_k, seed):
            prompt += text
        return prompt

    def generate_stream(
        self, prompt: str, length: int = 200, temperature: float = 0.8, top_k: int | None = None, seed: int | None = 0
    ):
        """Yield the sampled characters one at a time (the prompt is read once, then one step per character)."""
        self._need("language_model", "generate")
        require(isinstance(prompt, str) and len(prompt) > 0, "prompt", prompt, "a non-empty string")
        require(isinstance(length, int) and length >= 0, "length", length, "0 or more characters")
        require(np.isfinite(temperature) and temperature >= 0, "temperature", temperature, "a number >= 0")
        require(top_k is None or top_k >= 1, "top_k", top_k, "null (all characters) or at least 1")
        vocab = self.meta["vocab"]
        index = {ch: i for i, ch in enumerate(vocab) if i}
        ids = np.array([[index.get(ch, 0) for ch in prompt]], dtype=np.int64)
        rng = np.random.default_rng(seed)
        logits, state = self.lm_step(ids, self.zero_state())
        for _ in range(length):
            scores = logits[0, -1].astype(np.float64)
            scores[0] = -np.inf  # the unknown symbol is never produced
            if top_k is not None and top_k < len(scores):
                scores[scores < np.sort(scores)[-top_k]] = -np.inf
            if temperature == 0:
                token = int(scores.argmax())
            else:
                p = np.exp((scores - scores.max()) / temperature)
                token = int(rng.choice(len(p), p=p / p.sum()))
            yield vocab[token]
            logits, state = self.lm_step(np.array([[token]]), state)


class ForecastStream:
    """A forecaster fed rows as they arrive; the state is the encoder's after every row so far, per series."""

    def __init__(self, model: ExportedModel, num_series: int = 1) -> None:
        self.model, self.meta, self.num_series = model, model.meta["step"], num_series
        self.state = model.zero_state(num_series)
        if self.meta["lags"]:
            self.state.append(np.zeros((num_series, self.meta["lags"], model.meta["num_targets"]), np.float32))
        self.seen = 0

    def update(self, rows: Any) -> dict[str, Any]:
        """Read new ``rows`` in data units, one or many: (N, C) for one series, (S, N, C) for ``num_series`` S.
        Returns the forecast after them: ``point`` (H, K) [``quantiles`` (H, K, Q)], with a leading S axis for S > 1."""
        if self.num_series == 1:
            batch = self.model.check_rows(rows)[None]  # (1, N, C)
        else:
            batch = np.asarray(rows, dtype=np.float32)
            S, C = self.num_series, self.model.meta["input_size"]
            require(batch.ndim == 3 and batch.shape[0] == S and batch.shape[2] == C, "rows", f"shape {batch.shape}",
                    f"(num_series, N, C) = ({S}, N, {C}): the same new steps of every series")  # fmt: skip
            require(bool(np.isfinite(batch).all()), "rows", "a NaN or infinite value", "finite numbers only")
        feed = {"x": batch, **dict(zip(self.meta["inputs"][1:], self.state, strict=True))}
        outs = self.model.step_session.run(self.meta["outputs"], feed)
        n = len(self.model.meta["outputs"])
        self.state, self.seen = outs[n:], self.seen + batch.shape[1]
        result = self.model._forecast_dict(outs[:n])
        if self.num_series > 1:
            return result
        return {k: (v[0] if isinstance(v, np.ndarray) else v) for k, v in result.items()}


def _pad(docs: list[np.ndarray], value: float) -> tuple[np.ndarray, np.ndarray]:
    """Sequences → a padded batch (B, T, ...) and their lengths (B,)."""
    require(len(docs) > 0, "texts", "[]", "at least one input")
    lengths = np.array([len(d) for d in docs], dtype=np.int64)
    require(bool((lengths > 0).all()), "sequence", "of length 0", "at least one step each")
    out = np.full((len(docs), int(lengths.max()), *docs[0].shape[1:]), value, dtype=docs[0].dtype)
    for row, d in enumerate(docs):
        out[row, : len(d)] = d
    return out, lengths


def load(folder: str | Path, threads: int = 1) -> ExportedModel:
    """The exported model in ``folder`` (written by ``seqlit export``), ready to predict, forecast or generate."""
    return ExportedModel(folder, threads)
