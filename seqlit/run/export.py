"""``seqlit export``: write a trained checkpoint as a folder that stands alone — ONNX graphs plus a JSON side-car.

The folder holds ``model.onnx`` and ``seqlit.json`` (task kind, input and output names, and every fact needed to
prepare inputs and read outputs: the ``tokenizers`` JSON and truncation of a text classifier, label names, the
character vocabulary, quantile levels, window, horizon, target and column names, the recurrent state's shape). A
forecaster's graph takes rows in data units and returns forecasts in data units: the target transform, the scaler,
the unscaling and the conformal margin are inside it. A character LM's graph takes and returns its recurrent state, so
generation streams one character at a time; a unidirectional forecaster also gets ``model_step.onnx``, the same
network carrying its state across calls (see :mod:`seqlit.runtime`). The folder is written under a temporary name
and renamed when complete, so a failed export leaves nothing behind.

    python -m seqlit.run.export --ckpt_path best --experiment sine --out exported/sine [--overwrite]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch

from seqlit.errors import InputError, require
from seqlit.run import onnx_graphs as graphs

FORMAT = "seqlit-onnx"
OPSET = 17
META = "seqlit.json"


def task_kind(task: Any) -> str:
    """``classifier``, ``forecaster`` or ``language_model``; anything else cannot be exported."""
    from seqlit.tasks.classifier import Classifier
    from seqlit.tasks.forecaster import Forecaster
    from seqlit.tasks.language_model import LanguageModel

    for cls, kind in ((Classifier, "classifier"), (Forecaster, "forecaster"), (LanguageModel, "language_model")):
        if isinstance(task, cls):
            return kind
    raise InputError(f"ckpt_path holds a {type(task).__name__}: export knows Classifier, Forecaster, LanguageModel")


def _expm1(g: Any, x: Any) -> Any:
    # ONNX has no expm1; exp(x) - 1 differs from it by float32 rounding only, far inside the parity tolerance
    return g.op("Sub", g.op("Exp", x), g.op("Constant", value_t=torch.tensor(1.0)))


def _onnx(module: torch.nn.Module, args: tuple, path: Path, inputs: dict[str, dict], outputs: dict[str, dict]) -> None:
    """Trace ``module`` on ``args`` into ``path`` with the named inputs/outputs and their dynamic axes."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the tracer's notes on shape arithmetic; the parity tests are the proof
        torch.onnx.register_custom_op_symbolic("aten::expm1", _expm1, OPSET)  # the log1p target transform's inverse
        torch.onnx.export(
            module.eval(),
            args,
            str(path),
            input_names=list(inputs),
            output_names=list(outputs),
            dynamic_axes={**inputs, **outputs},
            opset_version=OPSET,
            dynamo=False,  # the TorchScript exporter handles nn.LSTM/GRU/RNN with dynamic batch and time reliably
        )


def _state_axes(names: list[str], suffix: str = "") -> dict[str, dict]:
    return {f"{n}{suffix}": {1: "batch"} for n in names}


def _classifier(task: Any, folder: Path, data: dict[str, Any]) -> dict[str, Any]:
    hp = task.hparams
    tokens = hp.get("vocab_size") is not None
    B, T = 2, 5
    x = torch.ones(B, T, dtype=torch.long) if tokens else torch.zeros(B, T, hp.input_size)
    axes = {"x": {0: "batch", 1: "time"}, "lengths": {0: "batch"}}
    _onnx(graphs.ClassifierGraph(task), (x, torch.tensor([T, T - 2])), folder / "model.onnx", axes,
          {"probabilities": {0: "batch"}})  # fmt: skip
    meta: dict[str, Any] = {
        "inputs": ["x", "lengths"],
        "outputs": ["probabilities"],
        "input": "tokens" if tokens else "features",
        "label_names": list(task.label_names),
        "input_size": hp.get("input_size"),
    }
    if tokens:
        from seqlit.data.text.tokenizer import PAD_ID, UNK_ID

        meta.update(pad_id=PAD_ID, unk_id=UNK_ID, vocab_size=hp.vocab_size)
        if "tokenizer" in data:
            meta.update(tokenizer=data["tokenizer"], max_length=data.get("max_length"),
                        truncation=data.get("truncation") or "head")  # fmt: skip
    return meta


def scaler_stats(task: Any, data: dict[str, Any]) -> tuple[list[float], list[float]]:
    """The input scaler's shift and scale per column (identity when the data used none)."""
    scaler, C = data.get("scaler") or {}, task.hparams.input_size
    return list(scaler.get("shift") or [0.0] * C), list(scaler.get("scale") or [1.0] * C)


def _forecaster(task: Any, folder: Path, data: dict[str, Any], data_hparams: dict[str, Any]) -> dict[str, Any]:
    hp = task.hparams
    C, K = hp.input_size, hp.num_targets
    shift, scale = scaler_stats(task, data)
    window = int(data_hparams.get("window") or max(graphs.highway_lags(task), 8))
    outputs = ["point", "quantiles"] if task.probabilistic else ["point"]
    out_axes = {name: {0: "batch"} for name in outputs}
    _onnx(graphs.ForecastGraph(task, shift, scale), (torch.ones(2, window, C),), folder / "model.onnx",
          {"x": {0: "batch", 1: "time"}}, out_axes)  # fmt: skip
    names = list(data.get("names") or task.target_names or [f"y{k}" for k in range(K)])
    meta: dict[str, Any] = {
        "inputs": ["x"],
        "outputs": outputs,
        "window": window,
        "horizon": hp.horizon,
        "num_targets": K,
        "input_size": C,
        "target_names": names[:K],
        "column_names": names if len(names) == C else names[:K] + [f"x{j}" for j in range(K, C)],
        "quantiles": [float(v) for v in (hp.quantiles or [0.1, 0.5, 0.9])] if task.probabilistic else [],
        "target_transform": hp.get("target_transform") or "none",
        "categories": data.get("categories"),
    }
    if task.net.encoder.directions == 1:  # a backward direction cannot read a stream that has not ended
        meta["step"] = _forecast_step(task, folder, shift, scale, out_axes)
    return meta


def _forecast_step(task: Any, folder: Path, shift: list[float], scale: list[float], out_axes: dict) -> dict:
    """``model_step.onnx``: rows and the carried state (``h`` [, ``c``] [, ``lags``]) → forecast and next state."""
    layers, hidden = graphs.state_shape(task)
    lags, K = graphs.highway_lags(task), task.hparams.num_targets
    states = graphs.state_names(task)
    zeros = [torch.zeros(layers, 2, hidden) for _ in states]
    if lags:
        states, zeros = [*states, "lags"], [*zeros, torch.zeros(2, lags, K)]
    batch_axis = {s: {0 if s == "lags" else 1: "batch"} for s in states}  # lags are (B, P, K), h and c (L, B, H)
    step_out = {**out_axes, **{f"{s}_out": axes for s, axes in batch_axis.items()}}
    x = torch.ones(2, 3, task.hparams.input_size)
    _onnx(graphs.ForecastStepGraph(task, shift, scale), (x, *zeros), folder / "model_step.onnx",
          {"x": {0: "batch", 1: "time"}, **batch_axis}, step_out)  # fmt: skip
    return {"file": "model_step.onnx", "inputs": ["x", *states], "outputs": list(step_out), "lags": lags}


def _language_model(task: Any, folder: Path) -> dict[str, Any]:
    states = graphs.state_names(task)
    layers, hidden = graphs.state_shape(task)
    zeros = tuple(torch.zeros(layers, 2, hidden) for _ in states)
    _onnx(graphs.LanguageModelGraph(task), (torch.ones(2, 4, dtype=torch.long), *zeros), folder / "model.onnx",
          {"ids": {0: "batch", 1: "time"}, **_state_axes(states)},
          {"logits": {0: "batch", 1: "time"}, **_state_axes(states, "_out")})  # fmt: skip
    return {"inputs": ["ids", *states], "outputs": ["logits", *[f"{s}_out" for s in states]],
            "vocab": list(task.hparams.get("vocab") or []), "vocab_size": task.hparams.vocab_size}  # fmt: skip


def check_out_dir(out_dir: Path, overwrite: bool) -> None:
    """Refuse an existing folder (unless ``overwrite``) and a parent we cannot write, before any work is done."""
    if out_dir.exists() and not overwrite:
        raise InputError(f"out={str(out_dir)!r} already exists: choose a new folder or pass --overwrite")
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"out={str(out_dir)!r} is a file: give a folder path")
    probe = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        probe = tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent)
    except OSError as err:
        raise InputError(f"out={str(out_dir)!r} cannot be written ({err.strerror}): choose a writable folder") from None
    finally:
        if probe:
            shutil.rmtree(probe, ignore_errors=True)


def export_task(
    task: Any,
    out_dir: str | Path,
    *,
    data_state: dict[str, Any] | None = None,
    data_hparams: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> Path:
    """Export a task object (eval mode, CPU) to ``out_dir``; ``data_state`` is its data module's checkpoint state."""
    out_dir = Path(out_dir)
    check_out_dir(out_dir, overwrite)
    kind = task_kind(task)
    # many series: each window's scale comes from its series' statistics and its inputs hold covariate blocks that
    # the exported graph (one series' raw columns in, forecast out) does not build
    panel = "wide_as_series" in (data_hparams or {})
    require(kind != "forecaster" or not panel, "ckpt_path", "a PanelDataModule model", "a one-series forecaster: a "
            "model of many series needs each series' statistics, which an export does not carry; use seqlit predict "
            "or seqlit backtest with the checkpoint")  # fmt: skip
    task = task.cpu().eval()
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        if kind == "classifier":
            meta = _classifier(task, tmp, data_state or {})
        elif kind == "forecaster":
            meta = _forecaster(task, tmp, data_state or {}, data_hparams or {})
        else:
            meta = _language_model(task, tmp)
        enc = task.net.encoder
        meta = {"format": FORMAT, "version": 1, "task": kind, "file": "model.onnx", "cell": enc.cell,
                "state": {"names": graphs.state_names(task), "shape": graphs.state_shape(task)}, **meta}  # fmt: skip
        (tmp / META).write_text(json.dumps(meta, indent=1))
        if out_dir.exists():  # overwrite: swap the old folder out only once the new one is complete
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
            out_dir.rename(old / "old")
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


def load_for_export(ckpt_path: str | Path) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    """The task a checkpoint holds (eval, CPU), its data module's state and its data hyperparameters."""
    from seqlit.inference import load_task
    from seqlit.run.checkpoints import load_checkpoint

    ckpt = load_checkpoint(ckpt_path)
    data_hparams = dict(ckpt.get("datamodule_hyper_parameters") or {})
    # Lightning stores the data module's state under its class name (the tokenizer, the scaler statistics)
    data_name = str(data_hparams.get("_class_path", "")).rpartition(".")[2]
    data_state = ckpt.get(data_name) if data_name else None
    return load_task(str(ckpt_path)), data_state if isinstance(data_state, dict) else {}, data_hparams


def export(ckpt_path: str | Path, out_dir: str | Path, overwrite: bool = False) -> Path:
    """Export the checkpoint at ``ckpt_path`` to the folder ``out_dir``; returns the folder."""
    check_out_dir(Path(out_dir), overwrite)
    task, data_state, data_hparams = load_for_export(ckpt_path)
    return export_task(task, out_dir, data_state=data_state, data_hparams=data_hparams, overwrite=overwrite)


def main(argv: list[str] | None = None) -> None:
    """``seqlit export --ckpt_path PATH|best|last [--experiment NAME] --out DIR [--overwrite]``."""
    parser = argparse.ArgumentParser(prog="seqlit export", description="Export a checkpoint to ONNX + seqlit.json.")
    parser.add_argument("--ckpt_path", required=True, help="a .ckpt file, or best/last of --experiment")
    parser.add_argument("--experiment", default=None, help="experiment name under --root (for best/last)")
    parser.add_argument("--root", default="lightning_logs", help="folder holding the experiments")
    parser.add_argument("--out", required=True, help="folder to create")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    try:
        ckpt = resolve_ckpt(args.ckpt_path, args.experiment, args.root)
        out = export(ckpt, args.out, overwrite=args.overwrite)
    except InputError as err:
        print(f"seqlit export: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    print(f"exported {ckpt} -> {out}")


def resolve_ckpt(ckpt_path: str, experiment: str | None, root: str = "lightning_logs") -> str:
    """A checkpoint file from a path or ``best``/``last`` of an experiment (shared by export and serve)."""
    from seqlit.run.checkpoints import resolve

    if ckpt_path in ("best", "last") and not experiment:
        raise InputError(f"ckpt_path={ckpt_path!r} needs --experiment NAME (the run folder under {root}/)")
    return str(resolve(ckpt_path, Path(root) / (experiment or ""))[0])


if __name__ == "__main__":
    main()
