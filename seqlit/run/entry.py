"""The front door of the ``seqlit`` command: answers ``--help``, ``--version`` and a mistyped subcommand at once, and
hands everything else to the part that does the work.

Importing torch and Lightning takes seconds; a user who asks for help or mistypes a word should not wait for it. This
module imports neither: it reads the first word, answers what it can by itself, and imports the LightningCLI command
(``seqlit.run.cli``) or another tool (data downloads, sweeps, export, serving) only for a real subcommand.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import signal
import sys
import threading

from seqlit import __version__

TRAINER = ("fit", "validate", "test", "predict")  # LightningCLI's subcommands
FLAGS = ("--verbose", "--help", "--version")  # options of the front door that take no value
TOOLS = {  # the other subcommands: word -> (module with main(argv), one-line summary)
    "data": ("seqlit.run.datasets", "download a benchmark data set (seqlit data list | get NAME)"),
    "sweep": ("seqlit.run.sweep", "search hyperparameters of a config with Optuna"),
    "export": ("seqlit.run.export", "write a checkpoint as a stand-alone ONNX model folder"),
    "serve": ("seqlit.run.serve", "serve a checkpoint or an export over HTTP"),
    "backtest": ("seqlit.run.backtest", "score a forecaster from rolling origins over its test span, beside baselines"),
}
SUMMARIES = {
    "fit": "train a model (then test its best checkpoint)",
    "validate": "run one validation epoch of a checkpoint",
    "test": "test a checkpoint; metrics go to the run's test_metrics.json",
    "predict": "predict with a checkpoint; predictions go to the run's predictions.csv",
}
EPILOG = """examples:
  seqlit fit --config configs/sine.yaml
  seqlit test --config configs/sine.yaml --ckpt_path best
  seqlit predict --ckpt_path best --experiment sine
  seqlit fit --help                  every option of fit (configs, trainer, model, data)

--verbose (or SEQLIT_VERBOSE=1) shows the libraries' own logs and warnings, which are hidden by default."""


def available_tools() -> dict[str, tuple[str, str]]:
    """The tool subcommands whose module is installed in this version of the package."""
    return {word: spec for word, spec in TOOLS.items() if importlib.util.find_spec(spec[0]) is not None}


def usage() -> str:
    lines = [
        f"usage: seqlit {{{','.join(TRAINER)}}} --config CONFIG [options]",
        f"       seqlit {{{','.join(available_tools())}}} [options]",
        "",
        "subcommands:",
    ]
    lines += [f"  {word:<10}{SUMMARIES[word]}" for word in TRAINER]
    lines += [f"  {word:<10}{summary}" for word, (_, summary) in available_tools().items()]
    return "\n".join([*lines, "", EPILOG])


def subcommand(argv: list[str]) -> str | None:
    """The first word that is neither a flag nor the value of a global ``-c/--config`` flag."""
    skip = False
    for arg in argv:
        if skip:
            skip = False
        elif arg in ("-c", "--config"):
            skip = True  # LightningCLI takes a config file before the subcommand too
        elif not arg.startswith("-"):
            return arg
    return None


class StoppedAtStartup(BaseException):
    """SIGINT or SIGTERM arrived while a training subcommand was still starting (imports, data, model): no run to save
    yet. Not KeyboardInterrupt: one raised inside a C extension's start-up code makes Python end with -2 even when
    caught, instead of the exit status chosen below."""


STARTUP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
DEFAULTS = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}


def _say_stopped(name: str) -> None:
    print(f"seqlit: stopped by a signal ({name}): no checkpoint was written", file=sys.stderr, flush=True)


_importing = False  # True while the heavy imports of a training subcommand run


def _stop_at_startup(signum: int, frame: object) -> None:
    name = signal.Signals(signum).name
    if _importing:
        # an exception raised inside a library's import can leave it half-built (numpy's lazy submodules then recurse
        # without end instead of failing); nothing is written before the imports end, so leave at once
        _say_stopped(name)
        os._exit(130 if signum == signal.SIGINT else 143)
    raise StoppedAtStartup(name)


def startup_over() -> None:
    """Hand SIGINT and SIGTERM back to their defaults just before the Trainer starts: Lightning and
    :class:`~seqlit.run.fault_tolerance.LastCheckpoint` then install their own handlers, which finish the batch and
    save ``last.ckpt`` (Lightning would also call ours, and ours must not interrupt a save)."""
    if threading.current_thread() is threading.main_thread():
        for sig in STARTUP_SIGNALS:
            if signal.getsignal(sig) is _stop_at_startup:
                signal.signal(sig, DEFAULTS[sig])


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``seqlit`` command."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if os.getcwd() not in sys.path and "" not in sys.path:
        # class paths of your own (--model my_pkg.net.MyNet) resolve from the folder you run in, as with `python -m`
        sys.path.insert(0, os.getcwd())
    if subcommand(argv) not in TRAINER or threading.current_thread() is not threading.main_thread():
        _dispatch(argv)
        return
    # Ctrl-C or SIGTERM before training starts (imports take seconds) would print a traceback or end the process
    # without a word; answer them like a signal during training: one line, and exit 130 or 143
    previous = {sig: signal.signal(sig, _stop_at_startup) for sig in STARTUP_SIGNALS}
    try:
        _dispatch(argv)
    except (KeyboardInterrupt, StoppedAtStartup) as exc:
        name = str(exc) if isinstance(exc, StoppedAtStartup) else "SIGINT"
        _say_stopped(name)
        sys.exit(130 if name == "SIGINT" else 143)
    finally:
        for sig, handler in previous.items():
            if signal.getsignal(sig) is _stop_at_startup:
                signal.signal(sig, handler)


def _dispatch(argv: list[str]) -> None:
    first = subcommand(argv)
    if first is None:
        if "--version" in argv:
            print(f"seqlit {__version__}")
            return
        if not argv or "-h" in argv or "--help" in argv:
            print(usage())
            return
    tools = available_tools()
    if first in tools:
        rest = [a for a in argv if a != first]
        importlib.import_module(tools[first][0]).main(rest)
        return
    if first not in TRAINER:
        words = [*TRAINER, *tools]
        before = argv[: argv.index(first)] if first in argv else []
        if before and before[-1].startswith("--") and "=" not in before[-1] and before[-1] not in FLAGS:
            # `seqlit --experiment x`: the word is an option's value, not a mistyped subcommand
            print(f"seqlit: error: subcommand is missing: start with one of {', '.join(words)} "
                  f"(then {before[-1]} {first})", file=sys.stderr)  # fmt: skip
            sys.exit(2)
        close = difflib.get_close_matches(str(first), words, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        given = first if first is not None else " ".join(argv)
        print(f"seqlit: error: subcommand={given!r} is not known{hint}: one of {', '.join(words)}", file=sys.stderr)
        sys.exit(2)
    if first == "predict" and "--onnx" in argv:  # predict from an exported folder: ONNX Runtime, no torch
        from seqlit.run.predict_onnx import main as predict_onnx

        predict_onnx([a for a in argv if a not in ("predict", "--onnx")])
        return
    global _importing
    _importing = True
    try:
        from seqlit.run.cli import main as run  # the heavy import, only for a real training subcommand
    finally:
        _importing = False
    run(argv)
