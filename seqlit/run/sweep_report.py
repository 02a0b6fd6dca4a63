"""What ``seqlit sweep`` prints and writes: a line per trial, ``trials.csv``, the tally and ``best.yaml``.

The best trial's config is the one ``seqlit fit --print_config`` resolves from the sweep's flags and the trial's values
(:func:`resolve_config`), so ``best.yaml`` is a complete config that trains the winner with nothing else.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

from seqlit.errors import InputError
from seqlit.run.sweep_space import as_flags


def resolve_config(fit_args: list[str]) -> str:
    """The fully resolved config of ``seqlit fit FIT_ARGS`` as YAML text (``--print_config``), or an InputError."""
    from seqlit.run.cli import main

    out, err = io.StringIO(), io.StringIO()
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            main(["fit", *fit_args, "--print_config"])
    except SystemExit as exc:
        if exc.code not in (0, None):
            line = (err.getvalue().strip().splitlines() or [f"exit status {exc.code}"])[-1]
            line = line.removeprefix("seqlit: error: ").split("  (see: ")[0]
            raise InputError(f"{line} (checking --config and --space)") from None
    return out.getvalue()


def error_of(trial: Any) -> str:
    """Why a trial failed: its recorded error, or "interrupted" for a failed trial that recorded none."""
    return trial.user_attrs.get("error") or ("interrupted" if trial.state.name == "FAIL" else "")


def progress(trial: Any, plan: dict, best: Any) -> str:
    """One line for a finished trial: its result, its values, its time and the best so far."""
    params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in trial.params.items())
    took = f"{trial.user_attrs.get('seconds', 0):.1f} s"
    state = trial.state.name.lower()
    if state == "complete":
        result = f"{plan['metric']}={trial.value:.6g}"
    elif state == "pruned":
        result = f"pruned after epoch {trial.user_attrs.get('pruned_at_epoch', '?')}"
    else:
        result = f"failed: {error_of(trial)} (log: {trial.user_attrs.get('log')})"
    best_note = f"   best so far: #{best.number} {best.value:.6g}" if best is not None else ""
    return f"trial {trial.number:>3} {result}   {params}   {took}{best_note}"


def best_trial(study: Any) -> Any:
    """The best complete trial, or None before the first."""
    try:
        return study.best_trial
    except ValueError:  # no complete trial yet
        return None


def write_trials_csv(study: Any, path: Path) -> None:
    """Every trial as one row: number, state, value, the sampled values, seconds, run folder, error."""
    keys = sorted({k for t in study.trials for k in t.params})
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["number", "state", "value", *keys, "seconds", "run", "error"])
        for t in study.trials:
            a = t.user_attrs
            w.writerow([t.number, t.state.name, t.value, *(t.params.get(k) for k in keys), a.get("seconds"),
                        a.get("run"), error_of(t)])  # fmt: skip


def report(study: Any, plan: dict, fit_args: list[str], experiment: str, folder: Path) -> None:
    """Print the tally and the best trial's config as YAML, and write it to ``best.yaml``."""
    states = [t.state.name.lower() for t in study.trials]
    tally = ", ".join(f"{states.count(s)} {s}" for s in ("complete", "pruned", "fail") if states.count(s))
    best = best_trial(study)
    if best is None:
        failed = [t for t in study.trials if error_of(t)]
        first = f"; first error: {error_of(failed[0])} (log: {failed[0].user_attrs.get('log')})" if failed else ""
        raise RuntimeError(f"no trial of sweep {plan['name']!r} completed ({tally}){first}")
    config = resolve_config(fit_args + as_flags(best.params) + ["--experiment", f"{experiment}_best"])
    path = folder / "best.yaml"
    header = (
        f"# Best of sweep {plan['name']!r}: trial {best.number}, {plan['metric']}={best.value:.6g} "
        f"({len(states)} trials: {tally}).\n# Its run: {best.user_attrs.get('run')}\n"
        f"# Train it: seqlit fit --config {path}\n"
    )
    text = header + config
    tmp = path.with_suffix(".yaml.tmp")  # write then rename: never a half-written file
    tmp.write_text(text)
    tmp.replace(path)
    print(f"\nSweep {plan['name']!r}: {len(states)} trials ({tally}); best: trial {best.number}, "
          f"{plan['metric']}={best.value:.6g}, {' '.join(as_flags(best.params))}\n")  # fmt: skip
    print(text)
    print(f"Best config written to {path}   (seqlit fit --config {path})")
    print(f"All trials: {folder / 'trials.csv'}   TensorBoard: tensorboard --logdir {folder / 'lightning_logs'}")
