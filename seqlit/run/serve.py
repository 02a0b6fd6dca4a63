"""``seqlit serve``: answer JSON requests for a trained checkpoint over HTTP with LitServe (extra ``seqlit[serve]``).

    python -m seqlit.run.serve --ckpt_path best --experiment sine [--port 8000] [--onnx]

The checkpoint is exported once at start (into a temporary folder removed on exit), which gives the side-car facts
(tokenizer, labels, window, quantiles) and, with ``--onnx``, the graph ONNX Runtime runs. Without ``--onnx`` the same
graph modules run in PyTorch (eager). Endpoints: ``POST /predict`` (see :mod:`seqlit.run.serve_api`), ``GET /health``,
``GET /info``, and the OpenAPI page at ``/docs``. Ctrl-C or SIGTERM stops the server.
"""

from __future__ import annotations

import argparse
import signal
import sys
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from seqlit.errors import InputError


class TorchSession:
    """ONNX Runtime's ``run(output_names, feed)`` over a PyTorch module, so the runtime code serves both backends."""

    def __init__(self, module: Any, inputs: list[str], outputs: list[str]) -> None:
        self.module, self.inputs, self.outputs = module.eval(), inputs, outputs

    def run(self, names: list[str], feed: dict[str, np.ndarray]) -> list[np.ndarray]:
        import torch

        with torch.no_grad():
            out = self.module(*[torch.from_numpy(np.ascontiguousarray(feed[n])) for n in self.inputs])
        out = out if isinstance(out, tuple) else (out,)
        found = dict(zip(self.outputs, out, strict=True))
        return [found[n].numpy() for n in names]


def load_model(folder: str, ckpt_path: str, onnx: bool) -> Any:
    """The exported model in ``folder`` on ONNX Runtime, or (``onnx`` false) on the checkpoint's PyTorch modules."""
    from seqlit import runtime

    model = runtime.load(folder)
    if onnx:
        return model
    import torch

    from seqlit.run import onnx_graphs as graphs
    from seqlit.run.export import load_for_export, scaler_stats

    # one thread, as the ONNX Runtime session has: a small recurrent step is too little work to split, and on a busy
    # machine the hand-off between threads costs more than the step itself
    torch.set_num_threads(1)
    task, data_state, _ = load_for_export(ckpt_path)
    meta = model.meta
    if meta["task"] == "classifier":
        module: Any = graphs.ClassifierGraph(task)
    elif meta["task"] == "forecaster":
        module = graphs.ForecastGraph(task, *scaler_stats(task, data_state))
        if model.step_session is not None:
            step = meta["step"]
            model.step_session = TorchSession(
                graphs.ForecastStepGraph(task, *scaler_stats(task, data_state)), step["inputs"], step["outputs"]
            )
    else:
        module = graphs.LanguageModelGraph(task)
    model.session = TorchSession(module, meta["inputs"], meta["outputs"])
    return model


def build_server(folder: str, ckpt_path: str, *, kind: str, onnx: bool, max_batch_size: int, batch_timeout: float,
                 max_chars: int, workers: int = 1) -> Any:  # fmt: skip
    """The LitServer for one exported model; generation is never batched (each request is its own loop)."""
    import litserve as ls

    from seqlit.run.serve_api import JSONBody, SeqlitAPI

    batch = 1 if kind == "language_model" else max_batch_size
    # LitServe warns that batch/unbatch exist when a language model runs unbatched; they are simply not used then
    warnings.filterwarnings("ignore", message="The LitServer has both batch and unbatch")
    api = SeqlitAPI(folder=folder, ckpt_path=ckpt_path, onnx=onnx, kind=kind, max_chars=max_chars,
                    max_batch_size=batch, batch_timeout=batch_timeout if batch > 1 else 0.0)  # fmt: skip
    return ls.LitServer(api, accelerator="cpu", workers_per_device=workers, timeout=60, middlewares=[JSONBody],
                        model_metadata={"task": kind, "backend": "onnxruntime" if onnx else "pytorch"})  # fmt: skip


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="seqlit serve", description="Serve a checkpoint over HTTP (JSON).")
    p.add_argument("--ckpt_path", required=True, help="a .ckpt file, or best/last of --experiment")
    p.add_argument("--experiment", default=None, help="experiment name under --root (for best/last)")
    p.add_argument("--root", default="lightning_logs", help="folder holding the experiments")
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default: this machine only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--onnx", action="store_true", help="run the exported graph on ONNX Runtime instead of PyTorch")
    p.add_argument("--max_batch_size", type=int, default=16, help="requests run together (1: no dynamic batching)")
    p.add_argument("--batch_timeout", type=float, default=0.005, help="seconds to wait to fill a batch")
    p.add_argument("--max_chars", type=int, default=100_000, help="longest text or prompt accepted, in characters")
    p.add_argument("--workers", type=int, default=1, help="inference worker processes")
    args = p.parse_args(argv)
    checks = [("port", args.port, 0 < args.port < 65536, "in 1..65535"),
              ("max_batch_size", args.max_batch_size, args.max_batch_size >= 1, "at least 1"),
              ("batch_timeout", args.batch_timeout, args.batch_timeout >= 0, "0 or more seconds"),
              ("max_chars", args.max_chars, args.max_chars >= 1, "at least 1"),
              ("workers", args.workers, args.workers >= 1, "at least 1")]  # fmt: skip
    for name, value, ok, allowed in checks:
        if not ok:
            raise InputError(f"{name}={value!r} is not allowed: {allowed}")
    return args


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> None:
    """``seqlit serve --ckpt_path X [--experiment NAME] [--port 8000] [--onnx] [--max_batch_size N] ...``."""
    try:
        args = parse(argv)
        from seqlit.run.export import export, resolve_ckpt

        ckpt = resolve_ckpt(args.ckpt_path, args.experiment, args.root)
        with tempfile.TemporaryDirectory(prefix="seqlit-serve-") as tmp:
            folder = export(ckpt, Path(tmp) / "model")
            from seqlit import runtime

            kind = runtime.load(folder).kind
            options = {k: getattr(args, k) for k in ("onnx", "max_batch_size", "batch_timeout", "max_chars", "workers")}
            server = build_server(str(folder), ckpt, kind=kind, **options)
            print(f"seqlit serve: {kind} from {ckpt} on http://{args.host}:{args.port} (docs at /docs)", flush=True)
            # SIGTERM as Ctrl-C: LitServe's shutdown then stops its API and inference processes too (on a plain
            # SIGTERM only this process would end, and they would live on as orphans)
            signal.signal(signal.SIGTERM, _interrupt)
            try:
                server.run(host=args.host, port=args.port, generate_client_file=False, log_level="warning")
            except KeyboardInterrupt:
                pass
    except InputError as err:
        print(f"seqlit serve: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
