"""Finding and reading checkpoints: ``last`` and ``best`` per experiment, and the config stored inside a checkpoint.

Runs live in ``<root>/<experiment>/version_<n>/`` with checkpoints in its ``checkpoints/`` folder. ``last`` is the
newest run's ``last.ckpt``; ``best`` is the best checkpoint that run's ModelCheckpoint recorded. Both are resolved
here, before anything runs, so a missing checkpoint is one clear error instead of Lightning's warning followed by a
silent restart from scratch.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Any

import torch

from seqlit.errors import InputError

_VERSION = re.compile(r"version_(\d+)$")


def versions(experiment_dir: Path) -> list[Path]:
    """The run folders of an experiment, oldest first."""
    if not experiment_dir.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in experiment_dir.iterdir() if (m := _VERSION.search(p.name)) and p.is_dir()]
    return [p for _, p in sorted(found)]


def load_checkpoint(path: Path | str) -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True``; a missing, truncated or foreign file is one clear error."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"ckpt_path={str(path)!r} does not exist: give a .ckpt file, 'last' or 'best'")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - torch raises many types for a bad file; all mean the same to a user
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        if first.startswith("Weights only load failed"):  # torch's advice on weights_only misleads here: say what it is
            head = path.read_bytes()[:2]
            first = "not a PyTorch file" if head not in (b"PK", b"\x80\x02") else "it holds code, not only data"
        raise InputError(f"ckpt_path={str(path)!r} is not a readable checkpoint ({first})") from None
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt:
        raise InputError(f"ckpt_path={str(path)!r} is not a Lightning checkpoint (no state_dict inside)")
    return ckpt


def resolve(ckpt_path: str, experiment_dir: Path) -> tuple[Path, Path | None]:
    """Turn ``last``/``best``/a path into a checkpoint file and the run folder it belongs to (if it is one of ours)."""
    if ckpt_path in ("last", "best"):
        runs = [v for v in versions(experiment_dir) if (v / "checkpoints" / "last.ckpt").is_file()]
        if not runs:
            raise InputError(
                f"ckpt_path={ckpt_path!r} found no checkpoint: there is no {experiment_dir}/version_*/checkpoints/"
                "last.ckpt yet; run `seqlit fit` for this experiment first, or give a .ckpt file"
            )
        run = runs[-1]
        path = run / "checkpoints" / "last.ckpt"
        if ckpt_path == "best":
            path = best_of_run(run, last=path)
        return path, run
    path = Path(ckpt_path)  # read (and so checked) by the caller, once
    run = path.parent.parent if path.parent.name == "checkpoints" and _VERSION.search(path.parent.parent.name) else None
    return path, run


def best_of_run(run: Path, *, last: Path) -> Path:
    """The best checkpoint a run recorded, or its ``last.ckpt`` with a note when there is none (it never validated).

    The recorded path is relative to the folder the run was started from; the same file name inside the run's own
    ``checkpoints/`` is found from anywhere.
    """
    callbacks = load_checkpoint(last).get("callbacks", {})
    best = next((s.get("best_model_path") for k, s in callbacks.items() if "ModelCheckpoint" in k), None)
    for candidate in [Path(best), run / "checkpoints" / Path(best).name] if best else []:
        if candidate.is_file():
            return candidate
    why = "it never validated" if not best else f"{Path(best).name} no longer exists"
    print(f"Note: ckpt_path='best': {run} has no best checkpoint ({why}); using {last}", file=sys.stderr)
    return last


def stored_config(ckpt: dict[str, Any]) -> dict[str, Any]:
    """The model and data configuration a loaded checkpoint carries, as a LightningCLI config (class_path,
    init_args)."""
    config: dict[str, Any] = {}
    hparams = dict(ckpt.get("hyper_parameters", {}))
    hparams.pop("_instantiator", None)
    if "_class_path" in hparams:
        config["model"] = {"class_path": hparams.pop("_class_path"), "init_args": hparams}
    data_hparams = dict(ckpt.get("datamodule_hyper_parameters") or {})
    data_hparams.pop("_instantiator", None)
    if "_class_path" in data_hparams:
        config["data"] = {"class_path": data_hparams.pop("_class_path"), "init_args": data_hparams}
    return config
