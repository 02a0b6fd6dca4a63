"""The command line read before LightningCLI parses it: pure functions over ``argv`` lists and parser messages.

A checkpoint's stored config has to be known before the real parse (it supplies required options such as the model,
and ``--ckpt_path last`` needs the experiment's folder), so :func:`scan_argv` reads the few keys that decide it, in the
order the parse would apply them. :func:`reorder_with_overlay` places that stored config between the user's config
files and flags; :func:`same_class` and :func:`condense_parse_error` turn what is found into clear messages. Nothing
here parses a whole config or touches the file system beyond reading the YAML files named by ``--config``.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path
from typing import Any

import yaml

from seqlit.errors import InputError

SUBCOMMANDS = ("fit", "validate", "test", "predict")
CONFIG_FLAGS = ("--config", "-c")
CLASS_FLAGS = ("--model", "--model.class_path", "--data", "--data.class_path")


def reorder_with_overlay(argv: list[str], subcommand: str, overlay: str) -> list[str]:
    """Config files first, then the checkpoint's config file ``overlay``, then every other flag (which therefore wins).

    >>> reorder_with_overlay(["fit", "--model.lr", "1", "-c", "a.yaml"], "fit", "ckpt.yaml")
    ['fit', '-c', 'a.yaml', '--config', 'ckpt.yaml', '--model.lr', '1']
    """
    start = argv.index(subcommand) + 1
    configs: list[str] = []
    others: list[str] = []
    rest = argv[start:]
    j = 0
    while j < len(rest):
        arg = rest[j]
        if arg in CONFIG_FLAGS and j + 1 < len(rest):  # "--config FILE": the flag and its value move together
            configs += rest[j : j + 2]
            j += 2
            continue
        (configs if arg.startswith("--config=") else others).append(arg)
        j += 1
    return argv[:start] + configs + ["--config", overlay] + others


def scan_argv(argv: list[str]) -> dict[str, Any] | None:
    """The subcommand, ``ckpt_path``, ``experiment``, ``default_root_dir`` and the model and data classes that the
    config files and flags choose, or None without a subcommand. Later flags and files override earlier ones, as in
    the real parse; ``--key=value`` and ``--key value`` are both read.
    """
    sub = next((a for a in argv if a in SUBCOMMANDS), None)
    if sub is None:
        return None
    found: dict[str, Any] = {"subcommand": sub, "ckpt_path": None, "experiment": "seqlit", "default_root_dir": None}
    found |= {"model": None, "data": None}  # the classes the config files and flags choose
    rest = argv[argv.index(sub) + 1 :]
    for j, arg in enumerate(rest):
        key, _, value = arg.partition("=")
        if not value and j + 1 < len(rest):
            value = rest[j + 1]
        if key in CONFIG_FLAGS and Path(value).is_file():
            _read_config(Path(value), found)
        elif key == "--ckpt_path":
            found["ckpt_path"] = value
        elif key == "--experiment":
            found["experiment"] = value
        elif key == "--trainer.default_root_dir":
            found["default_root_dir"] = value
        elif key in CLASS_FLAGS:
            part = key[2:].split(".")[0]  # "model" or "data"
            found[part] = class_path(value) or found[part]
    return found


def check_config_files(argv: list[str]) -> None:
    """Every ``--config`` file must exist and hold a non-empty YAML mapping; raise one clear InputError otherwise.

    jsonargparse would answer an empty file with "Unexpected config:" and invalid YAML with a traceback from the
    YAML parser; the user needs the file's name and the line that is wrong.
    """
    for j, arg in enumerate(argv):
        key, eq, value = arg.partition("=")
        if key not in CONFIG_FLAGS or (not eq and j + 1 >= len(argv)):
            continue
        value = value if eq else argv[j + 1]
        path = Path(value)
        if not path.is_file():
            raise InputError(f"config={value!r} does not exist: give the path of a YAML config file")
        try:
            data = yaml.safe_load(path.read_bytes().decode("utf-8"))
        except UnicodeDecodeError:
            raise InputError(f"config={value!r} is not UTF-8 text: give a YAML config file") from None
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
            problem = getattr(err, "problem", None) or str(err).splitlines()[0]
            raise InputError(f"config={value!r} is not valid YAML{where}: {problem}") from None
        if not isinstance(data, dict) or not data:
            raise InputError(
                f"config={value!r} is empty or not a mapping: give sections such as model:, data:, trainer:"
            )


def _read_config(path: Path, found: dict[str, Any]) -> None:
    """Update ``found`` with what one config file sets; a file that is not a mapping is left to the real parse."""
    data = yaml.safe_load(path.read_text()) or {}
    if not isinstance(data, dict):
        return
    found["experiment"] = data.get("experiment", found["experiment"])
    trainer = data.get("trainer") or {}
    found["default_root_dir"] = trainer.get("default_root_dir", found["default_root_dir"])
    for part in ("model", "data"):
        found[part] = class_path(data.get(part)) or found[part]


def class_path(value: Any) -> str | None:
    """The class a config section names: ``Forecaster``, ``seqlit.tasks.Forecaster`` or ``{class_path: ...}``.

    None for anything else, such as an inline JSON/YAML mapping given on the command line (left to the real parse).
    """
    if isinstance(value, dict):
        value = value.get("class_path")
    return value if isinstance(value, str) and value and not value.lstrip().startswith("{") else None


def same_class(a: str, b: str) -> bool:
    """Whether two class paths name one class (``seqlit.tasks.Forecaster``, ``seqlit.tasks.forecaster.Forecaster``,
    or the short ``Forecaster`` that jsonargparse also accepts)."""

    def resolve(path: str) -> Any:
        module, _, name = path.rpartition(".")
        candidates = [module] if module else ["seqlit.tasks", "seqlit.data"]  # where short names are found
        for mod in candidates:
            try:
                return getattr(importlib.import_module(mod), name)
            except (ImportError, AttributeError):
                continue
        return path  # an unknown class is only equal to itself

    return a == b or resolve(a) == resolve(b)


def condense_parse_error(message: str) -> str:
    """One line out of jsonargparse's nested error text: the full key and the innermost reason.

    jsonargparse reports a bad value inside a class as a tree (Union alternatives, class paths, keys); the user needs
    the dotted key (``model.cell``) and the reason (``Expected a Literal['rnn', ...]. Got value: transformer``).
    """
    keys = re.findall(r'Parser key "([^"]+)"', message)
    reasons = [
        line.strip()
        for line in message.splitlines()
        if re.search(r"Expected|not accepted|Got value|does not exist|required|Unrecognized|invalid|must", line)
        and "NoneType" not in line  # the Optional alternative's complaint is never the user's problem
    ]
    if not reasons:
        return " ".join(message.split())
    return f"{'.'.join(keys)}: {reasons[0]}" if keys else reasons[0]
